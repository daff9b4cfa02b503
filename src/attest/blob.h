/*
 * The attestation blob (announcement field 38) and its evidence.
 *
 * What a node gossips is one self-describing byte string, the *message*:
 *
 *   u8  format (ATT_MSG_FORMAT)
 *   u16 blob_len      blob: the canonical signed statement (below)
 *   u16 evidence_len  evidence: what binds the blob to a key; layout chosen by
 *                     the blob's provider byte (software / tpm)
 *
 * The blob starts with the domain "sealmesh-attest-v1\0" and carries, in a
 * fixed order with every variable field length-prefixed and capped: the node
 * id, the inference key and epoch, the provider and claimed trust level, the
 * signer's timestamp (informational only), the binary SHA-256, platform facts
 * (CPU model, memory, TPM manufacturer) and the full posture (posture_write
 * bytes). All integers are big-endian. Layouts: doc/PROTOCOL.md, "Attestation
 * blob and challenges". Parsers do no I/O and return views into the input.
 */
#ifndef SM_ATTEST_BLOB_H
#define SM_ATTEST_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "crypto/infkey.h"
#include "harden/harden.h"

#define ATT_DOMAIN "sealmesh-attest-v1" /* followed by one NUL on the wire */
#define ATT_DOMAIN_LEN 19 /* including the NUL */
#define ATT_MSG_FORMAT 1
#define ATT_MSG_MAX 16384 /* announcement field 38 cap */
#define ATT_BLOB_MAX 1024
#define ATT_NODE_ID_LEN 32
#define ATT_HASH_LEN 32 /* SHA-256 */
#define ATT_CPU_MODEL_MAX 128
#define ATT_NONCE_LEN 32
#define ATT_SECRET_LEN 32 /* credential activation secret */

/* Software provider: uncompressed P-256 point and raw r||s signature. */
#define ATT_SW_PUB_LEN 65
#define ATT_SW_SIG_LEN 64
#define ATT_SW_EVIDENCE_LEN (ATT_SW_PUB_LEN + ATT_SW_SIG_LEN)

/* TPM provider: boot PCRs 0..7 of the SHA-256 bank. */
#define ATT_PCR_COUNT 8
#define ATT_PCR_LEN 32
#define ATT_TPM_PUB_MAX 512 /* marshalled TPMT_PUBLIC of the AK */
#define ATT_TPM_ATTEST_MAX 1024 /* marshalled TPMS_ATTEST */
#define ATT_TPM_SIG_MAX 256 /* marshalled TPMT_SIGNATURE */
#define ATT_CERT_MAX 4096 /* one DER certificate */
#define ATT_CERTS_MAX 4 /* EK certificate + up to 3 intermediates */

enum att_provider_kind {
	ATT_PROV_NONE = 0,
	ATT_PROV_SOFTWARE = 1,
	ATT_PROV_TPM = 2,
	ATT_PROV_SECURE_ENCLAVE = 3, /* reserved: macOS, not built on Linux */
};

/* Ordered: a higher level is stronger. */
enum att_level {
	ATT_LEVEL_NONE = 0,
	ATT_LEVEL_SELF_SIGNED = 1,
	ATT_LEVEL_TPM = 2,
};

/* The signed statement, decoded. Strings point into the parsed input. */
struct att_blob {
	uint8_t node_id[ATT_NODE_ID_LEN];
	struct infkey_pub infkey;
	enum att_provider_kind provider;
	enum att_level level; /* what the signer claims */
	uint64_t
	    timestamp; /* signer's wall clock, s; never used for freshness */
	bool binary_hash_known;
	uint8_t binary_hash[ATT_HASH_LEN];
	char cpu_model[ATT_CPU_MODEL_MAX + 1]; /* NUL-terminated, printable */
	uint64_t mem_bytes;
	uint32_t tpm_manufacturer; /* TPM_PT_MANUFACTURER, 0 when no TPM */
	struct posture posture;
};

/* TPM evidence, decoded: views into the message. */
struct att_tpm_evidence {
	const uint8_t *ak_pub; /* marshalled TPMT_PUBLIC */
	size_t ak_pub_len;
	const uint8_t *attest; /* marshalled TPMS_ATTEST (the quote) */
	size_t attest_len;
	const uint8_t *sig; /* marshalled TPMT_SIGNATURE */
	size_t sig_len;
	const uint8_t *pcrs; /* ATT_PCR_COUNT * ATT_PCR_LEN bytes */
	const uint8_t *certs[ATT_CERTS_MAX]; /* [0] EK certificate, DER */
	size_t cert_lens[ATT_CERTS_MAX];
	size_t ncerts;
};

/* A whole message, decoded: views into the input plus the parsed blob. */
struct att_msg {
	const uint8_t *blob; /* the canonical signed bytes */
	size_t blob_len;
	const uint8_t *evidence;
	size_t evidence_len;
	struct att_blob b;
	/* provider == ATT_PROV_SOFTWARE */
	const uint8_t *sw_pub; /* ATT_SW_PUB_LEN */
	const uint8_t *sw_sig; /* ATT_SW_SIG_LEN */
	/* provider == ATT_PROV_TPM */
	struct att_tpm_evidence tpm;
};

/*
 * Posture from harden, platform from att_platform_probe(): fills 'b' for a
 * node. The binary hash is the posture's. Does not sign anything.
 */
void att_blob_init(struct att_blob *b, const uint8_t node_id[ATT_NODE_ID_LEN],
    const struct infkey_pub *ik, const struct posture *p);

/*
 * Append the canonical bytes of 'b' to 'out'. SM_ERR_INVAL when a field is
 * out of range (CPU model too long or not printable, unknown provider or
 * level, binary hash disagreeing with the posture's), buf errors.
 */
int att_blob_write(const struct att_blob *b, struct buf *out) SM_MUST_CHECK;

/*
 * Decode canonical blob bytes into '*out' (zeroed first; holds nothing on
 * failure). The encoding is strict: every field present, in order, within
 * its cap, no trailing bytes; the binary hash must equal the posture's.
 * SM_ERR_INVAL, SM_ERR_TOOBIG, SM_ERR_UNSUPP (other domain/version).
 */
int att_blob_parse(
    const uint8_t *in, size_t len, struct att_blob *out) SM_MUST_CHECK;

/* SHA-256 of 'len' bytes (OpenSSL). 0 or SM_ERR_INTERNAL. */
int att_sha256(
    const uint8_t *in, size_t len, uint8_t out[ATT_HASH_LEN]) SM_MUST_CHECK;

/*
 * Append a message: format byte, blob, evidence (each length-prefixed).
 * SM_ERR_TOOBIG past ATT_MSG_MAX.
 */
int att_msg_write(const uint8_t *blob, size_t blob_len, const uint8_t *evidence,
    size_t evidence_len, struct buf *out) SM_MUST_CHECK;

/*
 * Decode a whole message: the framing, the blob (att_blob_parse) and the
 * evidence layout named by the blob's provider. Checks structure only, no
 * signature. '*out' is zeroed first; its pointers are views into 'in'.
 * SM_ERR_INVAL, SM_ERR_TOOBIG, SM_ERR_UNSUPP.
 */
int
att_msg_parse(const uint8_t *in, size_t len, struct att_msg *out) SM_MUST_CHECK;

/*
 * Append TPM evidence in its wire layout (used by the tpm provider and by
 * tests that forge evidence). SM_ERR_INVAL on a length over its cap.
 */
int att_tpm_evidence_write(
    const struct att_tpm_evidence *e, struct buf *out) SM_MUST_CHECK;

/* "none", "software", "tpm", "secure_enclave"; "?" otherwise. */
const char *att_provider_str(enum att_provider_kind k);
/* "none", "self_signed", "tpm"; "?" otherwise. */
const char *att_level_str(enum att_level l);
/* Parse "none" / "self_signed" / "tpm" (--min-trust). 0 or SM_ERR_INVAL. */
int att_level_parse(const char *s, enum att_level *out) SM_MUST_CHECK;

#endif
