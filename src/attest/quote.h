/*
 * TPM 2.0 structure checks done in software (OpenSSL + tss2-mu), shared by
 * the blob verifier and the challenge verifier. Internal to src/attest.
 */
#ifndef SM_ATTEST_QUOTE_H
#define SM_ATTEST_QUOTE_H

#include <stddef.h>
#include <stdint.h>

#include "attest/blob.h"
#include "core/err.h"

#define ATT_TPM_NAME_LEN 34 /* nameAlg (0x000b) || SHA-256(TPMT_PUBLIC) */

/*
 * Check that 'pub' (marshalled TPMT_PUBLIC) is an attestation key we accept:
 * ECC P-256, nameAlg SHA-256, fixedTPM, fixedParent, sensitiveDataOrigin,
 * restricted, sign, not decrypt, scheme ECDSA-SHA256. Writes its TPM name.
 * 0 or SM_ERR_VERIFY.
 */
int att_ak_check(const uint8_t *pub, size_t pub_len,
    uint8_t name[ATT_TPM_NAME_LEN]) SM_MUST_CHECK;

/*
 * Verify a quote: the TPMT_SIGNATURE 'sig' by the AK 'pub' over SHA-256 of
 * 'attest'; TPMS_ATTEST magic and type QUOTE; extraData equal to 'extra';
 * PCR selection exactly sha256:0-7. Writes the quoted PCR digest.
 * 0, SM_ERR_VERIFY (signature or structure), SM_ERR_PROTO (extraData
 * differs: the quote is for something else), SM_ERR_INVAL (selection).
 */
int att_quote_check(const uint8_t *pub, size_t pub_len, const uint8_t *attest,
    size_t attest_len, const uint8_t *sig, size_t sig_len,
    const uint8_t extra[ATT_HASH_LEN],
    uint8_t pcr_digest[ATT_HASH_LEN]) SM_MUST_CHECK;

#endif
