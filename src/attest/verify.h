/*
 * Attestation verifier: turns a gossiped message into a cached verdict.
 *
 * Run it when a blob arrives (gossip ingest) or after an activation, on the
 * verifier's worker, never under a lock on the request path; routing reads
 * the cached verdict plus the liveness state (challenge.h) through
 * att_route_ok().
 *
 * Checks, in order (the first failure gives the reason):
 *  1. message structure (att_msg_parse)                 ATT_R_MALFORMED
 *  2. claimed level within what the provider can give    ATT_R_LEVEL_CLAIM
 *     (a software key claiming tpm), secure_enclave      ATT_R_UNSUPPORTED
 *  3. software: ECDSA over the blob by the carried key   ATT_R_BAD_SIGNATURE
 *     tpm: AK is a restricted fixedTPM P-256 signer      ATT_R_BAD_AK
 *          quote signed by the AK                        ATT_R_BAD_SIGNATURE
 *          quote extraData = SHA-256(blob)               ATT_R_QUOTE_MISMATCH
 *          PCR selection sha256:0-7, digest of the
 *          carried PCR values = quoted digest            ATT_R_PCR_MISMATCH
 *          EK certificate chains to a --tpm-ca anchor    ATT_R_EK_UNTRUSTED
 *          (not revoked by a --tpm-crl CRL)              ATT_R_EK_REVOKED
 *          EK leaf profile (TCG EK credential profile):
 *            EKU 2.23.133.8.1 (tcg-kp-EKCertificate)     ATT_R_EK_NOT_EK
 *            keyUsage with keyEncipherment               ATT_R_EK_KEY_USAGE
 *            not a CA (basicConstraints CA:TRUE)         ATT_R_EK_IS_CA
 *  4. node id = the announcing node                     ATT_R_WRONG_NODE_ID
 *  5. inference key and epoch = the announced ones       ATT_R_WRONG_INFKEY
 *  6. tpm: AK or EK pinned for another node id          ATT_R_AK_PINNED_
 *                                                        ELSEWHERE, ATT_R_EK_
 *                                                        PINNED_ELSEWHERE
 *          AK pinned for this node id and equal          ATT_R_AK_CHANGED
 *          (not pinned yet: status UNVERIFIED,           ATT_R_AK_NOT_ACTIVATED
 *           run credential activation, then verify again)
 *  7. binary hash in --allowed-binaries when given ATT_R_BINARY_NOT_ALLOWED
 *  8. level >= --min-trust                               ATT_R_BELOW_MIN_TRUST
 *
 * A software blob reaches level self_signed at most; tpm only through the EK
 * chain plus an activated (pinned) AK. The posture is returned as signed;
 * read it with tri == TRI_TRUE only: unknown means false.
 */
#ifndef SM_ATTEST_VERIFY_H
#define SM_ATTEST_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/blob.h"
#include "attest/cred.h"
#include "attest/pins.h"
#include "attest/quote.h"
#include "core/err.h"

#define ATT_EK_SPKI_MAX 1024

enum att_status {
	ATT_UNVERIFIED = 0, /* nothing yet, or waiting for activation */
	ATT_VERIFIED,
	ATT_FAILED,
};

enum att_reason {
	ATT_R_OK = 0,
	ATT_R_NONE, /* no attestation */
	ATT_R_MALFORMED,
	ATT_R_UNSUPPORTED,
	ATT_R_LEVEL_CLAIM,
	ATT_R_BAD_SIGNATURE,
	ATT_R_BAD_AK,
	ATT_R_QUOTE_MISMATCH,
	ATT_R_PCR_MISMATCH,
	ATT_R_EK_UNTRUSTED,
	ATT_R_WRONG_NODE_ID,
	ATT_R_WRONG_INFKEY,
	ATT_R_AK_NOT_ACTIVATED,
	ATT_R_AK_CHANGED,
	ATT_R_ACTIVATION_FAILED,
	ATT_R_BINARY_NOT_ALLOWED,
	ATT_R_BELOW_MIN_TRUST,
	/* Issue 10 (appended: keep the numbering of the ones above). */
	ATT_R_EK_NOT_EK, /* leaf lacks the TCG EK EKU 2.23.133.8.1 */
	ATT_R_EK_KEY_USAGE, /* leaf keyUsage lacks keyEncipherment */
	ATT_R_EK_IS_CA, /* leaf is a CA (basicConstraints CA:TRUE) */
	ATT_R_EK_REVOKED, /* leaf revoked by a --tpm-crl CRL */
	ATT_R_AK_PINNED_ELSEWHERE, /* this AK is pinned for another node id */
	ATT_R_EK_PINNED_ELSEWHERE, /* this EK is pinned for another node id */
};

struct att_verdict {
	enum att_status status;
	enum att_level level; /* proven level (also set when below min) */
	enum att_reason reason;
	enum att_provider_kind provider;
	/* From the blob, meaningful once the signature verified. */
	uint8_t node_id[ATT_NODE_ID_LEN];
	struct infkey_pub infkey;
	uint8_t blob_hash[ATT_HASH_LEN];
	bool binary_hash_known;
	uint8_t binary_hash[ATT_HASH_LEN];
	struct posture posture;
	char cpu_model[ATT_CPU_MODEL_MAX + 1];
	uint64_t mem_bytes;
	uint32_t tpm_manufacturer;
	uint64_t timestamp; /* the signer's claim; informational */
	/* Keys for challenges and activation. */
	uint8_t sw_pub[ATT_SW_PUB_LEN];
	uint8_t ak_pub[ATT_TPM_PUB_MAX];
	size_t ak_pub_len;
	uint8_t ak_name[ATT_TPM_NAME_LEN];
	uint8_t pcr_digest[ATT_HASH_LEN];
	uint8_t ek_spki[ATT_EK_SPKI_MAX]; /* DER, from the EK certificate */
	size_t ek_spki_len;
	uint8_t ek_hash[ATT_HASH_LEN]; /* SHA-256 of ek_spki (pins) */
};

/* Trusted EK CA certificates (--tpm-ca DIR). Opaque (an X509_STORE). */
struct att_trust;

/*
 * Load every *.pem, *.crt, *.cer and *.der certificate in 'dir' as a trust
 * anchor (roots and intermediates alike: the operator vouches for the whole
 * directory). 0, SM_ERR_IO (unreadable dir), SM_ERR_NOTFOUND (no
 * certificate), SM_ERR_INVAL (a file that does not parse).
 */
int att_trust_load_dir(const char *dir, struct att_trust **out) SM_MUST_CHECK;
/*
 * --tpm-crl DIR: load every *.pem, *.crl and *.der CRL in 'dir' into 't' and
 * turn on X509_V_FLAG_CRL_CHECK: from then on every EK leaf needs a current
 * CRL from its issuer in 'dir' (missing CRL: ATT_R_EK_UNTRUSTED; listed:
 * ATT_R_EK_REVOKED). 0, SM_ERR_IO, SM_ERR_NOTFOUND (no CRL), SM_ERR_INVAL.
 */
int att_trust_load_crls(struct att_trust *t, const char *dir) SM_MUST_CHECK;
void att_trust_free(struct att_trust *t);

/* What the verifier requires. 'trust' and 'pins' are needed for tpm. */
struct att_policy {
	enum att_level min_level; /* --min-trust, default ATT_LEVEL_TPM */
	const struct att_trust *trust;
	const struct att_pins *pins;
	const uint8_t (*allowed)[ATT_HASH_LEN]; /* NULL: any binary */
	size_t nallowed;
};

/*
 * Verify 'msg' (announcement field 38) from the node 'node_id' that
 * announced inference key 'ik'. Always fills '*v' (zeroed first). Returns 0
 * when v->status is ATT_VERIFIED, SM_ERR_AGAIN when the AK must first be
 * activated (UNVERIFIED, ATT_R_AK_NOT_ACTIVATED), otherwise SM_ERR_VERIFY
 * (FAILED; reason in v->reason).
 */
int att_verify(const struct att_policy *pol, const uint8_t *msg, size_t len,
    const uint8_t node_id[ATT_NODE_ID_LEN], const struct infkey_pub *ik,
    struct att_verdict *v) SM_MUST_CHECK;

/* Static text for a reason; never NULL. */
const char *att_reason_str(enum att_reason r);

/*
 * Credential activation, verifier side. att_activation_new() takes a
 * verdict that stopped at ATT_R_AK_NOT_ACTIVATED (or is VERIFIED at tpm, to
 * re-prove), draws a random secret and makes the credential for the EK in the
 * certificate and the AK's name. Send a->cred and a->seed to the host (in a
 * challenge); give the host's answer to att_activation_finish(), which
 * compares in constant time and on success pins the AK and EK for the node
 * id. 0, SM_ERR_DECRYPT (wrong secret: the AK is not in that EK's TPM),
 * SM_ERR_PERM (another AK is pinned for this node, or this AK or EK for
 * another node). The secret is wiped by
 * finish and by att_activation_clear().
 */
struct att_activation {
	uint8_t node_id[ATT_NODE_ID_LEN];
	uint8_t ak_hash[ATT_HASH_LEN];
	uint8_t ek_hash[ATT_HASH_LEN]; /* pinned with the AK */
	uint8_t secret[ATT_SECRET_LEN];
	uint8_t cred[ATT_CRED_MAX];
	size_t cred_len;
	uint8_t seed[ATT_SEED_MAX];
	size_t seed_len;
	bool pending;
};

int att_activation_new(
    const struct att_verdict *v, struct att_activation *a) SM_MUST_CHECK;
int att_activation_finish(struct att_activation *a, const uint8_t *secret,
    size_t secret_len, struct att_pins *pins) SM_MUST_CHECK;
void att_activation_clear(struct att_activation *a);

/*
 * --allowed-binaries FILE: one lowercase or uppercase hex SHA-256 per line,
 * '#' comments. '*out' is malloc'd (free()). 0, SM_ERR_IO, SM_ERR_INVAL,
 * SM_ERR_TOOBIG (over 4096 lines).
 */
int att_allowed_load(
    const char *path, uint8_t (**out)[ATT_HASH_LEN], size_t *n) SM_MUST_CHECK;

/* True when the posture field is measured and true: unknown is false. */
static inline bool
att_tri_true(enum tri t)
{
	return t == TRI_TRUE;
}

#endif
