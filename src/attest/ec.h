/*
 * P-256 ECDSA helpers over OpenSSL, shared by the software provider and the
 * verifier. Internal to src/attest. Keys on the wire are uncompressed points
 * (0x04 || X || Y, 65 bytes); signatures are raw r || s (32 + 32 bytes).
 */
#ifndef SM_ATTEST_EC_H
#define SM_ATTEST_EC_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define ATT_EC_COORD_LEN 32

struct evp_pkey_st;

/*
 * Verify an ECDSA-P256-SHA256 signature (r, s big-endian, each at most 32
 * bytes; high-S accepted) over 'msg' by the point (x, y). 0 or
 * SM_ERR_VERIFY (also for a point off the curve).
 */
int att_ec_verify(const uint8_t *x, size_t xlen, const uint8_t *y, size_t ylen,
    const uint8_t *r, size_t rlen, const uint8_t *s, size_t slen,
    const uint8_t *msg, size_t msglen) SM_MUST_CHECK;

/* Uncompressed point form of att_ec_verify(). */
int att_ec_verify_point(const uint8_t pub[65], const uint8_t sig[64],
    const uint8_t *msg, size_t msglen) SM_MUST_CHECK;

/*
 * Sign with ECDSA-P256-SHA256; writes raw r || s. 0 or SM_ERR_INTERNAL.
 */
int att_ec_sign(struct evp_pkey_st *key, const uint8_t *msg, size_t msglen,
    uint8_t sig[64]) SM_MUST_CHECK;

/* Uncompressed public point of 'key'. 0 or SM_ERR_INTERNAL. */
int att_ec_pub(struct evp_pkey_st *key, uint8_t pub[65]) SM_MUST_CHECK;

/*
 * A P-256 key: fresh when 'priv' is NULL, else from the 32-byte scalar
 * (known-answer vectors and tests only). The caller frees it with
 * EVP_PKEY_free(). 0, SM_ERR_INVAL (scalar out of range), SM_ERR_INTERNAL.
 */
int att_ec_key(const uint8_t *priv, struct evp_pkey_st **out) SM_MUST_CHECK;

#endif
