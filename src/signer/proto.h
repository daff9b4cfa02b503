/*
 * The worker ↔ signer protocol (privilege separation, doc/PRIVSEP.md).
 *
 * A blocking request/response exchange over a SOCK_STREAM socketpair, one
 * request then its response, no pipelining. Frame:
 *
 *   u8 version = 1 | u8 op | u16 status | u32 body_len | body[body_len]
 *
 * (big-endian). Requests carry status 0; a response repeats the op and
 * carries status 0 and the op's answer, or a non-zero status (the negated
 * SM_ERR_* code) and no body. Bodies are fixed layouts per op (below), each
 * with its own maximum; anything else is refused with SM_ERR_PROTO and the
 * signer stops (a worker that sends garbage is not trusted any more).
 *
 * No I/O here: signer_frame_parse() and the body parsers are pure, fuzzed
 * by fuzz/fuzz_signer.c, with vectors in tests/vectors/signer.json.
 */
#ifndef SM_SIGNER_PROTO_H
#define SM_SIGNER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define SIGNER_VERSION 1
#define SIGNER_HDR_LEN 8
#define SIGNER_REQ_MAX (64 * 1024 + 64) /* an announcement and a key byte */
#define SIGNER_RESP_MAX (1024 * 1024) /* a measurement with its logs */

enum signer_op {
	/* -> (empty)
	 * <- node_pk[32] | owner_pk[32] | flags u8 | kind u8 | level u8 |
	 *    tpm_manufacturer u32 | posture_len u16 | posture[posture_len]
	 *    flags: 0x01 owner key held, 0x02 provider can measure */
	SIGNER_OP_HELLO = 1,
	/* -> key u8 (1 identity, 2 owner) | message (1..64 KiB)
	 * <- sig[64]. Only messages in the key's domains are signed. */
	SIGNER_OP_SIGN = 2,
	/* -> (empty)
	 * <- n u8 (1 or 2) | n × (epoch u32 | pk[32]) (current first) |
	 *    next_s u32 (seconds until the ring changes) */
	SIGNER_OP_INF_STATE = 3,
	/* -> epoch u32 | peer_pk[32]
	 * <- shared[32] | self_pk[32]  (crypto_box_beforenm) */
	SIGNER_OP_INF_DH = 4,
	/* -> canonical attestation blob (att_blob_write bytes)
	 * <- the provider's evidence for it */
	SIGNER_OP_ATT_EVIDENCE = 5,
	/* -> nonce[32] | blob_hash[32]
	 * <- challenge answer evidence */
	SIGNER_OP_ATT_ANSWER = 6,
	/* -> nonce[32] | blob_hash[32] | ima_from u32
	 * <- measurement section */
	SIGNER_OP_ATT_MEASURE = 7,
	/* -> cred_len u16 | cred | seed_len u16 | seed
	 * <- secret[32] */
	SIGNER_OP_ATT_ACTIVATE = 8,
	/* -> (empty)
	 * <- 1 | the bytes of the --api-key-file the signer was started
	 *    with (read with apikeys_load's checks; SIGHUP reloads ask for
	 *    it), or 0 | why it could not be read (text, no key material) */
	SIGNER_OP_APIKEYS = 9,
};
#define SIGNER_OP_MAX SIGNER_OP_APIKEYS

#define SIGNER_KEY_IDENTITY 1
#define SIGNER_KEY_OWNER 2
#define SIGNER_HELLO_OWNER 0x01
#define SIGNER_HELLO_MEASURE 0x02
#define SIGNER_HELLO_FIXED (32 + 32 + 1 + 1 + 1 + 4 + 2)
#define SIGNER_NONCE_LEN 32
#define SIGNER_HASH_LEN 32
#define SIGNER_CRED_MAX 1024 /* TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET */

struct signer_frame {
	uint8_t op;
	uint16_t status; /* responses: -SM_ERR_* or 0 */
	const uint8_t *body; /* view into the input */
	size_t body_len;
};

/*
 * Write a frame header for 'op' with 'status' and 'body_len' into 'hdr'.
 * SM_ERR_TOOBIG when body_len is over 'max'.
 */
int signer_hdr_write(uint8_t hdr[SIGNER_HDR_LEN], uint8_t op, uint16_t status,
    size_t body_len, size_t max) SM_MUST_CHECK;

/*
 * Parse one whole frame of 'len' bytes: the version must be 1, the op known,
 * body_len exactly the rest and at most 'max'. A request ('request' true)
 * must carry status 0. '*out' views into 'in'. SM_ERR_PROTO otherwise.
 */
int signer_frame_parse(const uint8_t *in, size_t len, size_t max, bool request,
    struct signer_frame *out) SM_MUST_CHECK;
/*
 * The header alone (read first from a stream): version, op and status as
 * above; '*body_len' is checked against 'max'. SM_ERR_PROTO.
 */
int signer_hdr_parse(const uint8_t hdr[SIGNER_HDR_LEN], size_t max,
    bool request, struct signer_frame *out) SM_MUST_CHECK;

/*
 * Check a request body's fixed layout for its op (lengths only; values are
 * the signer's to judge). 0 or SM_ERR_PROTO.
 */
int signer_req_check(const struct signer_frame *f) SM_MUST_CHECK;

/* A parsed ATT_ACTIVATE request body (views into it). */
struct signer_activate {
	const uint8_t *cred;
	size_t cred_len;
	const uint8_t *seed;
	size_t seed_len;
};
int signer_activate_parse(
    const uint8_t *in, size_t len, struct signer_activate *out) SM_MUST_CHECK;

/* Name of an op for log lines ("sign", "inf-dh", ...; "?" if unknown). */
const char *signer_op_str(uint8_t op);

#endif
