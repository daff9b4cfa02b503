/* P-256 ECDSA over OpenSSL 3 (EVP and OSSL_PARAM; no deprecated EC_KEY). */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "attest/ec.h"

static EVP_PKEY *
key_from_params(const uint8_t *pub, size_t publen, const BIGNUM *priv)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;

	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(
		bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(
		bld, OSSL_PKEY_PARAM_PUB_KEY, pub, publen) ||
	    (priv != NULL &&
		!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv)) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key,
		priv != NULL ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
		params) != 1)
		key = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return key;
}

int
att_ec_verify(const uint8_t *x, size_t xlen, const uint8_t *y, size_t ylen,
    const uint8_t *r, size_t rlen, const uint8_t *s, size_t slen,
    const uint8_t *msg, size_t msglen)
{
	uint8_t pt[1 + 2 * ATT_EC_COORD_LEN];
	ECDSA_SIG *sig = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *md = NULL;
	unsigned char *der = NULL;
	int derlen, ret = SM_ERR_VERIFY;

	if (xlen > ATT_EC_COORD_LEN || ylen > ATT_EC_COORD_LEN ||
	    rlen > ATT_EC_COORD_LEN || slen > ATT_EC_COORD_LEN || rlen == 0 ||
	    slen == 0)
		goto out;
	memset(pt, 0, sizeof(pt));
	pt[0] = 0x04;
	memcpy(pt + 1 + ATT_EC_COORD_LEN - xlen, x, xlen);
	memcpy(pt + 1 + 2 * ATT_EC_COORD_LEN - ylen, y, ylen);
	if ((key = key_from_params(pt, sizeof(pt), NULL)) == NULL)
		goto out;
	if ((sig = ECDSA_SIG_new()) == NULL ||
	    (br = BN_bin2bn(r, (int)rlen, NULL)) == NULL ||
	    (bs = BN_bin2bn(s, (int)slen, NULL)) == NULL)
		goto out;
	if (ECDSA_SIG_set0(sig, br, bs) != 1)
		goto out;
	br = bs = NULL; /* owned by sig */
	if ((derlen = i2d_ECDSA_SIG(sig, &der)) <= 0)
		goto out;
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestVerify(md, der, (size_t)derlen, msg, msglen) != 1)
		goto out;
	ret = 0;
out:
	OPENSSL_free(der);
	EVP_MD_CTX_free(md);
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(sig);
	EVP_PKEY_free(key);
	return ret;
}

int
att_ec_verify_point(const uint8_t pub[65], const uint8_t sig[64],
    const uint8_t *msg, size_t msglen)
{
	if (pub[0] != 0x04)
		return SM_ERR_VERIFY;
	return att_ec_verify(pub + 1, ATT_EC_COORD_LEN,
	    pub + 1 + ATT_EC_COORD_LEN, ATT_EC_COORD_LEN, sig, ATT_EC_COORD_LEN,
	    sig + ATT_EC_COORD_LEN, ATT_EC_COORD_LEN, msg, msglen);
}

int
att_ec_sign(EVP_PKEY *key, const uint8_t *msg, size_t msglen, uint8_t out[64])
{
	uint8_t der[80];
	const unsigned char *p = der;
	size_t derlen = sizeof(der);
	ECDSA_SIG *sig = NULL;
	EVP_MD_CTX *md = NULL;
	const BIGNUM *r, *s;
	int ret = SM_ERR_INTERNAL;

	memset(out, 0, 64);
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, der, &derlen, msg, msglen) != 1)
		goto out;
	if ((sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen)) == NULL)
		goto out;
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2binpad(r, out, ATT_EC_COORD_LEN) != ATT_EC_COORD_LEN ||
	    BN_bn2binpad(s, out + ATT_EC_COORD_LEN, ATT_EC_COORD_LEN) !=
		ATT_EC_COORD_LEN) {
		memset(out, 0, 64);
		goto out;
	}
	ret = 0;
out:
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(md);
	return ret;
}

int
att_ec_pub(EVP_PKEY *key, uint8_t pub[65])
{
	size_t n = 0;

	if (EVP_PKEY_get_octet_string_param(
		key, OSSL_PKEY_PARAM_PUB_KEY, pub, 65, &n) != 1 ||
	    n != 65 || pub[0] != 0x04) {
		memset(pub, 0, 65);
		return SM_ERR_INTERNAL;
	}
	return 0;
}

int
att_ec_key(const uint8_t *priv, EVP_PKEY **out)
{
	uint8_t pt[65];
	EC_GROUP *g = NULL;
	EC_POINT *pp = NULL;
	BIGNUM *d = NULL;
	BN_CTX *bn = NULL;
	int r = SM_ERR_INTERNAL;

	*out = NULL;
	if (priv == NULL) {
		if ((*out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) ==
		    NULL)
			return SM_ERR_INTERNAL;
		return 0;
	}
	if ((g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1)) == NULL ||
	    (bn = BN_CTX_new()) == NULL ||
	    (d = BN_bin2bn(priv, ATT_EC_COORD_LEN, NULL)) == NULL ||
	    (pp = EC_POINT_new(g)) == NULL)
		goto out;
	if (BN_is_zero(d) || BN_cmp(d, EC_GROUP_get0_order(g)) >= 0) {
		r = SM_ERR_INVAL;
		goto out;
	}
	if (EC_POINT_mul(g, pp, d, NULL, NULL, bn) != 1 ||
	    EC_POINT_point2oct(g, pp, POINT_CONVERSION_UNCOMPRESSED, pt,
		sizeof(pt), bn) != sizeof(pt))
		goto out;
	if ((*out = key_from_params(pt, sizeof(pt), d)) == NULL)
		goto out;
	r = 0;
out:
	BN_clear_free(d);
	EC_POINT_free(pp);
	BN_CTX_free(bn);
	EC_GROUP_free(g);
	return r;
}
