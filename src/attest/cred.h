/*
 * Credential activation, verifier side: TPM2_MakeCredential done in software
 * (TPM 2.0 Part 1, "Credential Protection"; Part 3, MakeCredential) for an
 * RSA 2048 EK made from the TCG default template (nameAlg SHA-256, AES-128
 * CFB): a random 32-byte seed is encrypted to the EK with RSA-OAEP-SHA256,
 * label "IDENTITY\0"; symKey = KDFa(SHA-256, seed, "STORAGE", akName, -, 128);
 * encIdentity = AES-128-CFB(symKey, IV 0, TPM2B_DIGEST(secret));
 * hmacKey = KDFa(SHA-256, seed, "INTEGRITY", -, -, 256);
 * outerHMAC = HMAC-SHA256(hmacKey, encIdentity || akName).
 * Only the TPM that holds the EK's private key *and* a loaded object with
 * exactly this name can recover the secret (TPM2_ActivateCredential).
 */
#ifndef SM_ATTEST_CRED_H
#define SM_ATTEST_CRED_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define ATT_CRED_MAX 256 /* TPM2B_ID_OBJECT contents */
#define ATT_SEED_MAX 512 /* TPM2B_ENCRYPTED_SECRET contents */

/*
 * 'ek_spki' is the EK's DER SubjectPublicKeyInfo (from its certificate);
 * 'name' the AK's TPM name (34 bytes for SHA-256). Appends the credential
 * blob (TPM2B_ID_OBJECT contents: u16 32 || outerHMAC || encIdentity) to
 * 'cred' and the encrypted seed (TPM2B_ENCRYPTED_SECRET contents) to 'seed'.
 * The seed and derived keys are wiped. 0, SM_ERR_INVAL (EK not RSA 2048,
 * secret longer than 32 bytes), SM_ERR_INTERNAL.
 */
int att_make_credential(const uint8_t *ek_spki, size_t ek_spki_len,
    const uint8_t *name, size_t name_len, const uint8_t *secret,
    size_t secret_len, struct buf *cred, struct buf *seed) SM_MUST_CHECK;

/*
 * TPM 2.0 KDFa with SHA-256 (SP 800-108 counter mode, HMAC). 'label' is
 * written with its terminating NUL. 'out_len' bytes. 0 or SM_ERR_INTERNAL.
 */
int att_kdfa(const uint8_t *key, size_t key_len, const char *label,
    const uint8_t *ctx_u, size_t u_len, const uint8_t *ctx_v, size_t v_len,
    uint8_t *out, size_t out_len) SM_MUST_CHECK;

#endif
