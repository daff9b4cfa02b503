/*
 * Measured boot and runtime measurement (IMA) as evidence: what a TPM host
 * sends with its challenge answer when the verifier asks for it, and the
 * verifier's checks. No I/O here (the host reads its logs in tpm.c).
 *
 * The challenge asks with flag ATT_CHAL_WANT_MEASURE (challenge.h, optional
 * trailing flags byte); the answer then ends with u32 meas_len | meas:
 *
 *   u8  format (1)
 *   u16 attest_len | TPMS_ATTEST    TPM2_Quote over PCRs sha256:0-7,10 with
 *                                   qualifyingData = SHA-256(
 *                                   "sealmesh-measure-v1\0" || nonce ||
 *                                   blob_hash)
 *   u16 sig_len | TPMT_SIGNATURE    by the same AK as the blob's quote
 *   u8  npcr (9) | 9 x 32 bytes     PCR 0..7 and 10 values (SHA-256 bank)
 *   u32 evlog_len | event log       0: none (eventlog.h), <= EVLOG_MAX
 *   u32 ima_from                    entries of the list left out (the
 *                                   verifier asked from there), else 0
 *   u32 ima_len | IMA list          0: none (ima.h), <= IMA_LIST_MAX
 *
 * Integers big-endian (the logs inside keep their own little-endian
 * layouts). Verifier checks, in order (the first failure is the reason):
 *  quote signed by the verdict's AK, qualifying data, selection, carried PCR
 *  values hash to the quoted digest; PCR 0-7 equal the blob's (they cannot
 *  change without a reboot); --pcr-policy; the event log replays to PCR 0-7;
 *  the IMA list replays (a prefix of it: the kernel may append after the
 *  quote) to PCR 10; the claimed binary hash is a measured file in that
 *  prefix; every measured file is in --ima-allowlist.
 *
 * Claim levels (per claim, shown by /api/status and `sealmesh attest`):
 *  kernel_measured  the claim comes from a log the verifier replayed against
 *                   a quote: binary hash from IMA, secure boot from PCR 7
 *  signer_measured  reserved for a privilege-separated signer (not built)
 *  self_reported    the reporting process said so itself
 */
#ifndef SM_ATTEST_MEASURE_H
#define SM_ATTEST_MEASURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/eventlog.h"
#include "attest/ima.h"
#include "attest/verify.h"
#include "core/buf.h"
#include "core/err.h"

#define ATT_MEAS_DOMAIN "sealmesh-measure-v1"
#define ATT_MEAS_DOMAIN_LEN 20 /* with the NUL */
#define ATT_MEAS_FORMAT 1
#define ATT_MEAS_NPCR 9 /* sha256: 0-7, 10 */
#define ATT_MEAS_MAX                                                           \
	(1 + 2 + ATT_TPM_ATTEST_MAX + 2 + ATT_TPM_SIG_MAX + 1 +                \
	    ATT_MEAS_NPCR * ATT_PCR_LEN + 4 + EVLOG_MAX + 4 + 4 +              \
	    IMA_LIST_MAX)
#define ATT_CHAL_WANT_MEASURE 0x01
#define ATT_CHAL_IMA_FROM 0x02 /* a u32 entry count follows the flags */
/* An answer with measurements: the answer's own cap plus the section. */
#define ATT_ANSWER_MEAS_MAX (ATT_ANSWER_MAX + 4 + ATT_MEAS_MAX)

/* Where a host reads its logs (NULL: the kernel's securityfs paths). */
#define ATT_EVLOG_PATH "/sys/kernel/security/tpm0/binary_bios_measurements"
#define ATT_IMA_PATH "/sys/kernel/security/ima/binary_runtime_measurements"

struct att_meas_src {
	const char *evlog_path; /* --event-log, NULL: ATT_EVLOG_PATH */
	const char *ima_path; /* --ima-log, NULL: ATT_IMA_PATH */
};

/* The section, decoded: views into the input. */
struct att_meas {
	const uint8_t *attest;
	size_t attest_len;
	const uint8_t *sig;
	size_t sig_len;
	const uint8_t *pcrs; /* ATT_MEAS_NPCR * ATT_PCR_LEN: 0..7, 10 */
	const uint8_t *evlog;
	size_t evlog_len;
	uint32_t ima_from; /* entries before 'ima' that were left out */
	const uint8_t *ima;
	size_t ima_len;
};

int att_meas_write(const struct att_meas *m, struct buf *out) SM_MUST_CHECK;
/* Strict: every field within its cap, no trailing bytes. SM_ERR_INVAL,
 * SM_ERR_TOOBIG, SM_ERR_UNSUPP (other format). */
int att_meas_parse(
    const uint8_t *in, size_t len, struct att_meas *out) SM_MUST_CHECK;
/* SHA-256("sealmesh-measure-v1\0" || nonce || blob_hash). */
int att_meas_qualifying(const uint8_t nonce[ATT_NONCE_LEN],
    const uint8_t blob_hash[ATT_HASH_LEN],
    uint8_t out[ATT_HASH_LEN]) SM_MUST_CHECK;

enum att_claim {
	ATT_CLAIM_SELF_REPORTED = 0,
	ATT_CLAIM_SIGNER_MEASURED = 1, /* a separate signer measured it */
	ATT_CLAIM_KERNEL_MEASURED = 2,
};
/* "self_reported", "signer_measured", "kernel_measured". */
const char *att_claim_str(enum att_claim c);

/*
 * --pcr-policy FILE: lines "sha256:INDEX HEX" (64 hex digits), '#' comments.
 * INDEX is a quoted PCR (0-7 or 10); several lines for one index list
 * alternatives (any one matches). Only the SHA-256 bank is quoted.
 * SM_ERR_INVAL with '*bad_line' (1-based), SM_ERR_TOOBIG over 1024 lines.
 */
struct att_pcr_policy;
int att_pcr_policy_parse(const char *text, size_t len,
    struct att_pcr_policy **out, size_t *bad_line) SM_MUST_CHECK;
void att_pcr_policy_free(struct att_pcr_policy *p);
/* -1 when every listed PCR in 'pcrs' (0..7, 10 layout) matches, else the
 * first index that differs. */
int att_pcr_policy_check(
    const struct att_pcr_policy *p, const uint8_t *pcrs) SM_MUST_CHECK;

enum att_meas_reason {
	ATT_M_OK = 0,
	ATT_M_NONE, /* no measurements sent */
	ATT_M_MALFORMED,
	ATT_M_BAD_QUOTE,
	ATT_M_BOOT_PCRS_CHANGED,
	ATT_M_PCR_POLICY,
	ATT_M_EVLOG_BAD,
	ATT_M_EVLOG_REPLAY,
	ATT_M_IMA_BAD,
	ATT_M_IMA_REPLAY,
	ATT_M_NO_IMA,
	ATT_M_BINARY_NOT_MEASURED,
	ATT_M_ALLOWLIST,
	ATT_M_NO_EVLOG,
};

/* What the verifier requires (all optional). */
struct att_meas_policy {
	const struct att_pcr_policy *pcr; /* --pcr-policy */
	const struct ima_allowlist *allow; /* --ima-allowlist */
	bool require_binary; /* --require-measured-binary */
};

struct att_meas_verdict {
	bool present; /* the host sent a measurement section */
	bool quote_ok; /* quote verified, PCR values carried match it */
	bool evlog_ok; /* an event log replayed to quoted PCR 0-7 */
	bool ima_ok; /* an IMA list (prefix) replayed to quoted PCR 10 */
	bool binary_in_ima; /* claimed binary hash measured by IMA */
	bool eligible; /* the policy's requirements are met */
	bool evidence_bad; /* a log the host sent does not hold up */
	bool ima_retry; /* an incremental check failed: ask for all of it */
	bool allow_bad; /* an IMA entry outside --ima-allowlist */
	enum att_meas_reason reason; /* first problem, ATT_M_OK when none */
	int pcr; /* the PCR the reason names, -1 */
	char why[192]; /* human text for 'reason', names PCR or path */
	size_t evlog_events, ima_entries, ima_quoted;
	enum tri secure_boot; /* from PCR 7 events when evlog_ok */
	enum att_claim binary, secure_boot_claim, posture;
	uint8_t pcrs[ATT_MEAS_NPCR][ATT_PCR_LEN]; /* quoted, when quote_ok */
};

/*
 * Check a measurement section ('in' may be NULL: none was sent) against
 * verdict 'v' (VERIFIED at tpm: its AK, blob hash, PCR digest and binary
 * hash) and the challenge 'nonce'. Always fills '*out'. Returns 0 when
 * out->eligible, SM_ERR_VERIFY otherwise (out->reason, out->why). Without
 * any requirement in 'pol' every host is eligible and the levels only say
 * what was proven.
 */
int att_meas_check(const struct att_meas_policy *pol,
    const struct att_verdict *v, const uint8_t nonce[ATT_NONCE_LEN],
    const uint8_t *in, size_t len, struct att_meas_verdict *out) SM_MUST_CHECK;

/*
 * Incremental IMA: what a verifier keeps per host between challenges so a
 * host sends only the entries added since. Zero-initialised = nothing held.
 * Valid for one blob's binary hash and boot PCR digest; judgments of held
 * entries (binary seen, an allowlist violation) carry over.
 */
struct att_ima_state {
	size_t n; /* entries replayed and quoted so far */
	uint8_t pcr[ATT_PCR_LEN]; /* PCR 10 after them */
	uint8_t binary[ATT_HASH_LEN]; /* the claim binary_seen is about */
	uint8_t boot[ATT_HASH_LEN]; /* the blob's PCR 0-7 digest */
	bool binary_seen;
	bool allow_bad;
	char allow_why[192];
};

/* The 'ima_from' to ask for: st->n when 'st' fits verdict 'v', else 0. */
uint32_t
att_ima_state_from(const struct att_ima_state *st, const struct att_verdict *v);

/*
 * att_meas_check with incremental IMA: 'st' (may be NULL: none) supplies the
 * base when the section continues from entry st->n, and is updated on a
 * successful IMA replay, reset on a failed one (out->ima_retry set when the
 * failure may be the base's: ask again from zero).
 */
int att_meas_check_inc(const struct att_meas_policy *pol,
    const struct att_verdict *v, const uint8_t nonce[ATT_NONCE_LEN],
    const uint8_t *in, size_t len, struct att_ima_state *st,
    struct att_meas_verdict *out) SM_MUST_CHECK;

/* A verdict for a host that gave no measurements (levels self_reported). */
void att_meas_verdict_none(
    const struct att_meas_policy *pol, struct att_meas_verdict *out);

#endif
