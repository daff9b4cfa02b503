/*
 * Attestation providers behind one interface (--attest none|software|tpm).
 *
 *  software  a P-256 key in process memory (OpenSSL). Trust level
 *            self_signed: it proves only that whoever holds the node's
 *            identity also holds this key. Never enough for
 *            --require-attested-hosts unless the operator lowers the bar with
 *            --min-trust self_signed.
 *  tpm       tpm2-tss ESYS over a TCTI (--tpm TCTI). An attestation key (AK):
 *            a restricted ECDSA P-256 signing key, an ordinary key under an
 *            endorsement-hierarchy storage primary, with a random authValue;
 *            kept in the state directory (attest.ak, 0600) so the same AK
 *            comes back after a restart and pins survive. The blob is bound by
 * TPM2_Quote over PCRs sha256:0-7 with qualifyingData = SHA-256(blob);
 * challenge answers quote SHA-256("sealmesh-attest-challenge-v1\0" || nonce
 *            || blob hash). The EK certificate (NV 0x01C00002) travels in
 *            the evidence; credential activation uses the RSA EK at
 *            0x81010001. Trust level tpm.
 *  secure_enclave  macOS only, see attest/secure_enclave.h; not built here.
 *
 * TPM operations are slow on real chips (~200 ms per signature): call them
 * from a worker or at startup and on challenges, never on the request path.
 * A provider is not thread-safe: one owner calls it.
 */
#ifndef SM_ATTEST_PROVIDER_H
#define SM_ATTEST_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/blob.h"
#include "core/buf.h"
#include "core/err.h"

struct att_provider;

struct att_provider_ops {
	/* Append the evidence for canonical blob bytes (message layout). */
	int (*evidence)(struct att_provider *p, const uint8_t *blob,
	    size_t blob_len, struct buf *out);
	/*
	 * Append the answer evidence for a challenge (challenge.h layout):
	 * software: raw ECDSA r||s; tpm: quote + signature.
	 */
	int (*answer)(struct att_provider *p,
	    const uint8_t nonce[ATT_NONCE_LEN],
	    const uint8_t blob_hash[ATT_HASH_LEN], struct buf *out);
	/*
	 * TPM2_ActivateCredential: recover the verifier's secret from a
	 * credential blob (TPM2B_ID_OBJECT contents) and encrypted seed
	 * (TPM2B_ENCRYPTED_SECRET contents). SM_ERR_UNSUPP for software.
	 */
	int (*activate)(struct att_provider *p, const uint8_t *cred,
	    size_t cred_len, const uint8_t *seed, size_t seed_len,
	    uint8_t secret[ATT_SECRET_LEN]);
	/* Fill provider, level and tpm_manufacturer of 'b'. */
	void (*describe)(struct att_provider *p, struct att_blob *b);
	void (*free)(struct att_provider *p);
	/*
	 * Append a measurement section (attest/measure.h): a quote over
	 * PCRs sha256:0-7,10 for (nonce, blob hash), the PCR values and the
	 * logs read from evlog_path / ima_path; the IMA list from entry
	 * 'ima_from' on (the verifier holds the rest; 0: whole list). NULL: not
	 * supported (software). Logs that cannot be read or exceed their caps
	 * are sent empty.
	 */
	int (*measure)(struct att_provider *p,
	    const uint8_t nonce[ATT_NONCE_LEN],
	    const uint8_t blob_hash[ATT_HASH_LEN], uint32_t ima_from,
	    struct buf *out);
};

struct att_provider {
	const struct att_provider_ops *ops;
	enum att_provider_kind kind;
	enum att_level level;
	/* Measured boot / IMA logs to send (NULL: the securityfs paths). */
	const char *evlog_path; /* --event-log */
	const char *ima_path; /* --ima-log */
};

/* A software provider with a fresh P-256 key. */
int att_software_new(struct att_provider **out) SM_MUST_CHECK;
/*
 * A software provider with a fixed 32-byte P-256 scalar: known-answer vectors
 * and tests only. SM_ERR_INVAL for a scalar out of range.
 */
int att_software_new_det(
    const uint8_t priv[32], struct att_provider **out) SM_MUST_CHECK;
/* The software provider's public point (65 bytes). SM_ERR_INVAL otherwise. */
int att_software_pub(
    const struct att_provider *p, uint8_t pub[ATT_SW_PUB_LEN]) SM_MUST_CHECK;

/*
 * Open a TPM through the TCTI string 'tcti' (e.g. "device:/dev/tpmrm0",
 * "swtpm:host=127.0.0.1,port=2321"): Startup(CLEAR) if needed, read the EK
 * certificate from NV 0x01C00002, create the AK (kept loaded until
 * att_provider_free, which flushes it). SM_ERR_IO when the TPM cannot be
 * reached, SM_ERR_NOTFOUND without an EK or EK certificate, SM_ERR_INTERNAL
 * for other TPM errors (logged with Tss2_RC_Decode).
 */
int att_tpm_open(const char *tcti, struct att_provider **out) SM_MUST_CHECK;

#define ATT_AK_AUTH_LEN 32
#define ATT_AK_FILE "attest.ak"

struct att_tpm_opts {
	const char *tcti;
	/*
	 * The AK file (state dir/attest.ak, 0600: authValue, public and
	 * wrapped private blob). Loaded when present, created when missing.
	 * NULL: a new AK every open, kept in memory only (pins do not survive
	 * a restart).
	 */
	const char *ak_path;
	bool new_ak; /* replace the AK in ak_path (sealmesh attest --new-ak) */
	/*
	 * Tests only: TPMA_OBJECT bits to clear from the AK template, to show
	 * that the verifier refuses such a key (ATT_R_BAD_AK). 0 otherwise.
	 */
	uint32_t ak_attrs_clear;
};

/*
 * att_tpm_open() with an AK that only this process can use: an ordinary
 * restricted ECDSA P-256 signing key created under an endorsement-hierarchy
 * storage primary, with a random 32-byte authValue. SM_ERR_PERM when the AK
 * file is readable by group or others; SM_ERR_INTERNAL when a saved AK does
 * not load (TPM cleared: re-create it deliberately with new_ak).
 */
int att_tpm_open_opts(
    const struct att_tpm_opts *o, struct att_provider **out) SM_MUST_CHECK;

/* Free a provider (TPM: flush every handle, finalize ESYS). NULL no-op. */
void att_provider_free(struct att_provider *p);

/*
 * Make the gossiped message for 'in' (node id, inference key, posture and
 * platform from the caller): copies it, lets the provider fill provider,
 * level and TPM manufacturer, stamps the wall clock when in->timestamp is 0,
 * writes the canonical blob, signs or quotes it, and appends the message to
 * 'out'. '*blob_hash' (may be NULL) gets SHA-256 of the blob, which the host
 * keeps for challenge answers. Re-run after each inference key rotation.
 */
int att_attest(struct att_provider *p, const struct att_blob *in,
    struct buf *out, uint8_t blob_hash[ATT_HASH_LEN]) SM_MUST_CHECK;

/* CPU model (/proc/cpuinfo) and physical memory into 'b'; best effort. */
void att_platform_probe(struct att_blob *b);

/*
 * --attest default: 'flag' is "none", "software", "tpm" or NULL (choose):
 * tpm when 'tcti' is set or /dev/tpmrm0 exists, else software. '*tcti_out'
 * gets 'tcti' or "device:/dev/tpmrm0". SM_ERR_INVAL for another flag.
 */
int att_provider_choose(const char *flag, const char *tcti,
    enum att_provider_kind *out, const char **tcti_out) SM_MUST_CHECK;

#endif
