/*
 * Challenge-response liveness and credential activation on the wire, plus
 * the verifier's bookkeeping. No I/O: the caller carries the messages on an
 * HTTP/2 stream and passes the verifier's monotonic time in (ms).
 *
 * Challenge (verifier -> host):
 *   u8 format (1) | nonce[32] | u16 cred_len | cred | u16 seed_len | seed
 *   [| u8 flags [| u32 ima_from]]  optional; bit 0 ATT_CHAL_WANT_MEASURE,
 *                 bit 1 ATT_CHAL_IMA_FROM: u32 follows (attest/measure.h)
 *   (cred/seed empty unless the verifier asks for credential activation)
 * Answer (host -> verifier):
 *   u8 format (1) | nonce[32] | blob_hash[32] | u8 provider |
 *   u16 ev_len | ev | u8 act_len (0 or 32) | activated secret
 *   [| u32 meas_len | meas]  only when asked (attest/measure.h)
 *   ev, software: ECDSA-P256-SHA256 raw r||s over S
 *   ev, tpm:      u16 attest_len | TPMS_ATTEST | u16 sig_len | TPMT_SIGNATURE,
 *                 a TPM2_Quote over PCRs sha256:0-7, qualifyingData
 *                 = SHA-256(S)
 *   S = "sealmesh-attest-challenge-v1\0" (29 bytes) || nonce || blob_hash
 *
 * Busy answer (host -> verifier), when the host will not run TPM work now
 * (per-peer rate limit, full queue):
 *   u8 ATT_ANSWER_BUSY (0xB5) | u16 retry_after_ms
 *
 * A host is attested while its last successful answer is younger than the
 * freshness window (default 11 min) on the *verifier's* clock, no answer
 * failed its checks since (bad signature or quote, changed PCRs, another
 * blob, wrong nonce, failed activation: ineligible at once, until a later
 * challenge succeeds) and fewer than three challenges in a row went
 * unanswered. Each nonce is answered at most once: an answer for any nonce
 * but the one outstanding is refused (SM_ERR_REPLAY). A new blob starts
 * freshness from nothing (att_live_reset). A busy answer is not a failure:
 * the next challenge waits retry_after_ms.
 */
#ifndef SM_ATTEST_CHALLENGE_H
#define SM_ATTEST_CHALLENGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/blob.h"
#include "attest/measure.h"
#include "attest/provider.h"
#include "attest/verify.h"
#include "core/buf.h"
#include "core/err.h"

#define ATT_CHAL_DOMAIN "sealmesh-attest-challenge-v1"
#define ATT_CHAL_DOMAIN_LEN 29 /* with the NUL */
#define ATT_CHAL_SIGNED_LEN (ATT_CHAL_DOMAIN_LEN + ATT_NONCE_LEN + ATT_HASH_LEN)
#define ATT_CHAL_FORMAT 1
#define ATT_CHAL_MAX 1024
#define ATT_ANSWER_MAX 2048

#define ATT_LIVE_INTERVAL_MS (5 * 60 * 1000ULL)
#define ATT_LIVE_WINDOW_MS (11 * 60 * 1000ULL)
#define ATT_LIVE_TIMEOUT_MS (30 * 1000ULL)
#define ATT_LIVE_MAX_FAILURES 3
#define ATT_ANSWER_BUSY 0xB5
#define ATT_ANSWER_BUSY_LEN 3
#define ATT_BUSY_MIN_MS 100

/* S above, for signing and verifying. */
void att_chal_signed_bytes(const uint8_t nonce[ATT_NONCE_LEN],
    const uint8_t blob_hash[ATT_HASH_LEN], uint8_t out[ATT_CHAL_SIGNED_LEN]);

struct att_chal {
	uint8_t nonce[ATT_NONCE_LEN];
	const uint8_t *cred; /* view; NULL when no activation */
	size_t cred_len;
	const uint8_t *seed;
	size_t seed_len;
	uint8_t flags; /* ATT_CHAL_WANT_MEASURE; 0: the byte is not sent */
	uint32_t ima_from; /* with ATT_CHAL_IMA_FROM: entries already seen */
};

int att_chal_write(const struct att_chal *c, struct buf *out) SM_MUST_CHECK;
/*
 * Ask for measurements: append the flags byte (and, when 'ima_from' > 0,
 * ATT_CHAL_IMA_FROM and the u32 count of IMA entries the verifier already
 * holds) to a challenge just written without flags (att_live_challenge).
 */
int att_chal_add_measure(struct buf *chal, uint32_t ima_from) SM_MUST_CHECK;
/* Views into 'in'. SM_ERR_INVAL, SM_ERR_TOOBIG, SM_ERR_UNSUPP. */
int att_chal_parse(
    const uint8_t *in, size_t len, struct att_chal *out) SM_MUST_CHECK;

struct att_answer {
	uint8_t nonce[ATT_NONCE_LEN];
	uint8_t blob_hash[ATT_HASH_LEN];
	enum att_provider_kind provider;
	const uint8_t *sw_sig; /* software: ATT_SW_SIG_LEN */
	const uint8_t *attest; /* tpm */
	size_t attest_len;
	const uint8_t *sig;
	size_t sig_len;
	bool activated;
	uint8_t secret[ATT_SECRET_LEN];
	uint32_t retry_after_ms; /* busy answers only */
	const uint8_t *meas; /* measurement section, NULL when none */
	size_t meas_len;
};

/*
 * Host side: answer challenge bytes 'chal' for the blob whose hash is
 * 'blob_hash' (att_attest output): quote or sign, and when the challenge
 * carries a credential, activate it (TPM). Appends the answer to 'out'.
 * Parse errors as att_chal_parse; provider errors. A failed activation is
 * an error: the host sends nothing rather than a wrong secret.
 */
int att_answer_make(struct att_provider *p, const uint8_t *chal, size_t len,
    const uint8_t blob_hash[ATT_HASH_LEN], struct buf *out) SM_MUST_CHECK;

/* Append a busy answer (retry_after_ms capped at 65535). */
int
att_answer_busy_write(uint32_t retry_after_ms, struct buf *out) SM_MUST_CHECK;

/*
 * Decode an answer; views into 'in'. SM_ERR_INVAL/TOOBIG/UNSUPP; a busy
 * answer gives SM_ERR_UNAVAIL with out->retry_after_ms set.
 */
int att_answer_parse(
    const uint8_t *in, size_t len, struct att_answer *out) SM_MUST_CHECK;

/*
 * Check an answer against a verdict's keys (no bookkeeping): nonce, blob
 * hash (SM_ERR_STALE when the host answered for another blob: re-fetch the
 * announcement), provider, signature or quote (SM_ERR_VERIFY), quoted PCR
 * digest equal to the blob's (SM_ERR_VERIFY: PCRs changed since the blob).
 */
int att_answer_check(const struct att_verdict *v,
    const uint8_t nonce[ATT_NONCE_LEN],
    const struct att_answer *a) SM_MUST_CHECK;

/* The verifier's per-host liveness state. Zero-initialise or att_live_init. */
struct att_live {
	uint8_t nonce[ATT_NONCE_LEN];
	bool outstanding;
	uint64_t sent_ms;
	bool ever_ok;
	uint64_t last_ok_ms;
	unsigned failures; /* consecutive */
	struct att_activation act; /* pending when a credential was sent */
	bool revoked; /* an answer failed its checks since the last success */
	uint64_t busy_until_ms; /* the host said busy: no challenge before */
	uint64_t busy; /* busy answers received (informational) */
};

struct att_live_cfg {
	uint64_t interval_ms; /* challenge cadence, default 5 min */
	uint64_t window_ms; /* freshness window, default 11 min */
	uint64_t timeout_ms; /* answer deadline, default 30 s */
};

void att_live_init(struct att_live *l);
/*
 * The host's blob changed: its freshness starts from nothing (not attested
 * until a challenge for the new blob succeeds; due at once). Drops an
 * outstanding challenge and a pending activation.
 */
void att_live_reset(struct att_live *l);
void att_live_clear(struct att_live *l); /* wipes a pending activation */
void att_live_cfg_default(struct att_live_cfg *c);

/* True when a challenge should go out now: first contact or interval. */
bool att_live_due(
    const struct att_live *l, const struct att_live_cfg *c, uint64_t now_ms);

/*
 * Start a challenge: fresh random nonce (replacing any outstanding one),
 * remembered with 'now_ms'. With 'act' (from att_activation_new; moved into
 * 'l', the caller's copy is wiped) the credential rides along. Appends the
 * challenge message to 'out'.
 */
int att_live_challenge(struct att_live *l, uint64_t now_ms,
    struct att_activation *act, struct buf *out) SM_MUST_CHECK;

/*
 * Time out an unanswered challenge: after timeout_ms it counts as a failure
 * and its nonce is forgotten.
 */
void att_live_tick(
    struct att_live *l, const struct att_live_cfg *c, uint64_t now_ms);

/*
 * Take an answer. SM_ERR_REPLAY: no outstanding nonce (nothing changes), or
 * another nonce than the outstanding one (revoked; the nonce stays
 * outstanding). SM_ERR_STALE: past the deadline (a failure). SM_ERR_UNAVAIL:
 * a busy answer (no failure; next challenge after its retry time).
 * Otherwise the answer is checked (att_answer_check) and a pending activation
 * finished into 'pins' (may pin the AK). Success: last_ok = now, failures 0,
 * revoked cleared. Any check failure: failures + 1 and revoked (ineligible at
 * once). The nonce is used up either way.
 */
int att_live_answer(struct att_live *l, const struct att_live_cfg *c,
    const struct att_verdict *v, struct att_pins *pins, const uint8_t *in,
    size_t len, uint64_t now_ms) SM_MUST_CHECK;

/*
 * Attested now: answered within the window, no failed answer since, and < 3
 * unanswered challenges in a row.
 */
bool att_live_attested(
    const struct att_live *l, const struct att_live_cfg *c, uint64_t now_ms);

/*
 * The routing gate, reading only cached state: verdict VERIFIED at or
 * above 'min', live, and its attested inference key is 'sealed_to' (the
 * key the request is sealed to).
 */
bool att_route_ok(const struct att_verdict *v, const struct att_live *l,
    const struct att_live_cfg *c, enum att_level min,
    const struct infkey_pub *sealed_to, uint64_t now_ms);

#endif
