/*
 * E2E sealed request (doc/PROTOCOL.md, "E2E sealed request (0xE1)").
 *
 * Version 1 wire (all integers big-endian):
 *   0   1   magic 0xE1
 *   1   1   version 0x01
 *   2   4   epoch id of the host inference key sealed to
 *   6   32  ephemeral X25519 public key (fresh per request attempt)
 *   38  4   body length L = 16 + bucket
 *   42  L   XSalsa20-Poly1305: tag(16) || ciphertext(bucket)
 * Plaintext (padded with zeros to 'bucket', see env_bucket()):
 *   0   1   flags: ENV_F_RS2 or 0 (other bits refused)
 *   1   16  request id (random)
 *   17  8   timestamp, Unix seconds
 *   25  32  host node id (the host's Ed25519 public key)
 *   57  4   n = HTTP request length
 *   61  n   the HTTP request
 *
 * K = crypto_box_beforenm(eph_pk, host_sk) (X25519 + HSalsa20). The box key
 * and nonce are BLAKE2b(key K, personal "sealmesh-e2e-req", header[0..42) ||
 * host_pk), so every cleartext byte is authenticated; the response stream
 * key is BLAKE2b(key K, personal "sealmesh-e2e-h2c", header || host_pk ||
 * request id). No I/O here; the caller moves the bytes.
 *
 * Version 2 (doc/PROTOCOL.md, "Sealed request version 2") inserts a random
 * 16-byte salt before the body length, so the header is 58 bytes:
 *   0 magic, 1 version 0x02, 2 epoch, 6 ephemeral key, 38 salt, 54 body
 *   length, 58 tag || ciphertext; plaintext as in version 1.
 * The key schedule is the same over the longer header. Because the salt
 * makes every header unique, the asking node may reuse one ephemeral key
 * (and its K) for many requests to the same host key: struct env_sender
 * keeps one per (host key, epoch) for ENV_SENDER_LIFETIME_S, and the host
 * caches K per (epoch, ephemeral key) inside its keyring
 * (infkey_shared_cached). Each request still gets its own box key, nonce
 * and response key.
 */
#ifndef SM_CRYPTO_ENVELOPE_H
#define SM_CRYPTO_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "crypto/infkey.h"
#include "crypto/rstream.h"

#define ENV_MAGIC 0xE1
#define ENV_VERSION 0x01
#define ENV_VERSION_2 0x02
#define ENV_VERSION_MAX ENV_VERSION_2 /* the newest this build opens */
#define ENV_HDR_LEN 42 /* magic, version, epoch, eph_pk, body length */
#define ENV_HDR2_LEN 58 /* version 2: ... eph_pk, salt, body length */
#define ENV_HDR_MAX ENV_HDR2_LEN
#define ENV_EPH_OFF 6
#define ENV_BODYLEN_OFF 38
#define ENV_SALT_OFF 38 /* version 2 */
#define ENV_SALT_LEN 16
#define ENV_BODYLEN2_OFF 54 /* version 2 */
#define ENV_SENDER_LIFETIME_S 60 /* reuse of one ephemeral key, at most */
#define ENV_SENDER_SLOTS 256 /* host keys an asking node caches */
#define ENV_MAC_LEN 16
#define ENV_EPH_SK_LEN 32
#define ENV_REQID_LEN 16
#define ENV_NODE_ID_LEN 32 /* Ed25519 public key */
#define ENV_INNER_LEN 61 /* flags, request id, timestamp, node id, n */
#define ENV_BUCKET_MIN 1024
#define ENV_BUCKET_STEP 65536 /* powers of two up to here, then multiples */
#define ENV_HTTP_MAX (8u << 20)
#define ENV_PT_MAX (ENV_HTTP_MAX + ENV_BUCKET_STEP) /* largest bucket */
#define ENV_WIRE_MIN (ENV_HDR_LEN + ENV_MAC_LEN + ENV_BUCKET_MIN)
#define ENV_WIRE_MAX (ENV_HDR_MAX + ENV_MAC_LEN + ENV_PT_MAX)
#define ENV_WINDOW_DEFAULT_S 120
/* Plaintext flags. Set only for a host whose signed announcement says it
 * knows them: an older host refuses any non-zero flags (SM_ERR_UNSUPP). */
#define ENV_F_RS2 0x01 /* the asker reads response stream v2 (padded) */
#define ENV_F_KNOWN ENV_F_RS2
/* Replay cache shares: one asking member may always hold 1/16 of the ids
 * of a generation, and more only while it and the cache hold less than
 * half of it (so a lone busy member is not capped, a flooder never takes
 * more than half); the table of members per generation has this many slots
 * (half of them usable). */
#define ENV_REPLAY_SHARE_DIV 16
#define ENV_REPLAY_MEMBER_SLOTS 4096

/* Where a request goes: from the host's verified, signed announcement. */
struct env_target {
	uint8_t node_id[ENV_NODE_ID_LEN];
	struct infkey_pub key;
};

/*
 * One request's secrets, on either side: the response stream key (for
 * rs_reader_init() on the client, rs_writer_init() on the host), the
 * request id and timestamp. The ephemeral secret and K are wiped inside
 * the seal/open calls and never kept. Wipe with env_session_clear().
 */
struct env_session {
	uint8_t rkey[RS_KEY_LEN];
	uint8_t request_id[ENV_REQID_LEN];
	uint64_t timestamp;
	uint8_t flags; /* the request's ENV_F_* flags */
};

struct env_replay;
struct env_sender;

void env_session_clear(struct env_session *s);

/* Padded plaintext size for 'n' plaintext bytes; 0 if over ENV_PT_MAX. */
size_t env_bucket(size_t n);

/*
 * Seal 'http' (1..ENV_HTTP_MAX bytes) for host 't' at wall time 'now',
 * with a fresh ephemeral key and request id: appends the envelope to
 * 'wire' and fills 's' (the caller keeps it for the response and wipes it).
 * SM_ERR_INVAL for an empty request or a low-order host key,
 * SM_ERR_TOOBIG past ENV_HTTP_MAX or 'wire' max. On failure 'wire' is as
 * it was and 's' is zeroed.
 */
int env_seal_request(struct buf *wire, struct env_session *s,
    const struct env_target *t, const uint8_t *http, size_t http_len,
    uint64_t now) SM_MUST_CHECK;
/* Same with plaintext 'flags' (ENV_F_*; SM_ERR_INVAL for unknown bits). */
int env_seal_request_flags(struct buf *wire, struct env_session *s,
    const struct env_target *t, uint8_t flags, const uint8_t *http,
    size_t http_len, uint64_t now) SM_MUST_CHECK;
/* Same with the random inputs given: tests and known-answer vectors only. */
int env_seal_request_det(struct buf *wire, struct env_session *s,
    const struct env_target *t, const uint8_t *http, size_t http_len,
    uint64_t now, const uint8_t eph_sk[ENV_EPH_SK_LEN],
    const uint8_t request_id[ENV_REQID_LEN]) SM_MUST_CHECK;
/*
 * Version 2: seal as env_seal_request() does, but with the ephemeral key
 * 'snd' holds for this host key (made, and its K computed, on first use
 * and after ENV_SENDER_LIFETIME_S seconds of wall time 'now'), a fresh
 * salt and a fresh request id, with plaintext 'flags' (ENV_F_*). Same errors
 * and outputs as env_seal_request(); SM_ERR_NOMEM if the cache cannot grow.
 */
int env_seal_request2(struct buf *wire, struct env_session *s,
    struct env_sender *snd, const struct env_target *t, uint8_t flags,
    const uint8_t *http, size_t http_len, uint64_t now) SM_MUST_CHECK;
/* Version 2 with every random input given: known-answer vectors only. */
int env_seal_request2_det(struct buf *wire, struct env_session *s,
    const struct env_target *t, const uint8_t *http, size_t http_len,
    uint64_t now, const uint8_t eph_sk[ENV_EPH_SK_LEN],
    const uint8_t salt[ENV_SALT_LEN],
    const uint8_t request_id[ENV_REQID_LEN]) SM_MUST_CHECK;
/*
 * The asking node's cache of ephemeral keys for version 2, one per (host
 * key, epoch), in locked memory; holds only the ephemeral public key and
 * K, never the ephemeral secret. At most ENV_SENDER_SLOTS hosts: the
 * oldest entry makes room. env_sender_free() wipes it; NULL is a no-op.
 */
int env_sender_new(struct env_sender **out) SM_MUST_CHECK;
void env_sender_free(struct env_sender *snd);

/*
 * Box an arbitrary plaintext 'pt' (not laid out or padded here) under a
 * proper header of 'version' (ENV_VERSION or ENV_VERSION_2, zero salt):
 * tests and fuzzing only, to reach the checks that run after decryption.
 */
int env_seal_raw_det(struct buf *wire, const struct env_target *t,
    uint8_t version, const uint8_t eph_sk[ENV_EPH_SK_LEN], const uint8_t *pt,
    size_t pt_len) SM_MUST_CHECK;

/*
 * Length of the envelope that starts at 'in', from its header (ENV_HDR_LEN
 * or ENV_HDR2_LEN bytes), so a stream reader knows how much to buffer. 0 with
 * '*total' set; SM_ERR_AGAIN when fewer bytes than needed to decide;
 * SM_ERR_PROTO (bad magic, a body length that is no bucket), SM_ERR_UNSUPP
 * (version).
 */
int env_peek(size_t *total, const uint8_t *in, size_t len) SM_MUST_CHECK;

/*
 * Open an envelope of either version (exactly 'len' bytes) as host
 * 'self_id' holding 'keys' (version 2 consults and fills the keyring's K
 * cache, hence not const),
 * at wall time 'now'. On success: 'http' (initialised here, so pass one
 * that holds no storage; the caller buf_clear()s it) holds the request
 * bytes, decrypted in place with no extra copy, 's' the session for the
 * response, and the request id is recorded in 'rc'. On failure both are
 * wiped and nothing is recorded. Checks run cheapest first:
 *   SM_ERR_PROTO     framing, length, padding, inner length field
 *   SM_ERR_UNSUPP    version or flags
 *   SM_ERR_NOTFOUND  epoch id unknown or its key already wiped
 *   SM_ERR_DECRYPT   low-order ephemeral key, or authentication failed
 *   SM_ERR_PERM      sealed for another node id
 *   SM_ERR_STALE     timestamp outside now +- the replay window
 *   SM_ERR_REPLAY    request id already seen in the window
 *   SM_ERR_UNAVAIL   replay cache full (refuse rather than forget)
 * rs_refusal_for() maps these to a refusal code for the client.
 */
int
env_open_request(struct buf *http, struct env_session *s, struct infkey *keys,
    const uint8_t self_id[ENV_NODE_ID_LEN], struct env_replay *rc,
    const uint8_t *in, size_t len, uint64_t now) SM_MUST_CHECK;

/*
 * The same, with the request id charged to the asking 'member' (the node
 * id on whose link the envelope came; NULL: no share): on top of the
 * checks above, SM_ERR_UNAVAIL when that member already holds its share,
 * max_entries / ENV_REPLAY_SHARE_DIV ids of the current generation, and
 * either it or the cache already holds half of max_entries; so one member
 * filling the cache cannot make others' requests fail as busy.
 */
int env_open_request_from(struct buf *http, struct env_session *s,
    struct infkey *keys, const uint8_t self_id[ENV_NODE_ID_LEN],
    struct env_replay *rc, const uint8_t *member, const uint8_t *in, size_t len,
    uint64_t now) SM_MUST_CHECK;

/*
 * Replay cache: request ids seen within the timestamp window 'window_s'
 * (the same window env_open_request() applies to timestamps, so the two
 * cannot disagree). Holds up to 'max_entries' ids per 2*window_s; when
 * full, new requests are refused (SM_ERR_UNAVAIL) until old ids age out;
 * each member may hold max_entries / ENV_REPLAY_SHARE_DIV (at least 1) of
 * them. Memory: about 68 * max_entries bytes + 300 KiB for the members.
 */
int env_replay_new(struct env_replay **out, uint64_t window_s,
    size_t max_entries) SM_MUST_CHECK;
void env_replay_free(struct env_replay *rc);

#endif
