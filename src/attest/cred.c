/* TPM2_MakeCredential in software (OpenSSL). */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "attest/cred.h"

#define SEED_LEN 32 /* digest size of the EK's nameAlg (SHA-256) */
#define SYM_LEN 16 /* AES-128 */
#define MAC_LEN 32

int
att_kdfa(const uint8_t *key, size_t key_len, const char *label,
    const uint8_t *ctx_u, size_t u_len, const uint8_t *ctx_v, size_t v_len,
    uint8_t *out, size_t out_len)
{
	uint8_t blk[MAC_LEN], be[4];
	uint32_t i, bits = (uint32_t)out_len * 8;
	size_t done = 0, n;
	EVP_MAC *mac = NULL;
	EVP_MAC_CTX *m = NULL;
	OSSL_PARAM params[2];
	int r = SM_ERR_INTERNAL;

	params[0] = OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		goto out;
	for (i = 1; done < out_len; i++) {
		size_t outl = 0;

		EVP_MAC_CTX_free(m);
		if ((m = EVP_MAC_CTX_new(mac)) == NULL ||
		    EVP_MAC_init(m, key, key_len, params) != 1)
			goto out;
		be[0] = (uint8_t)(i >> 24);
		be[1] = (uint8_t)(i >> 16);
		be[2] = (uint8_t)(i >> 8);
		be[3] = (uint8_t)i;
		if (EVP_MAC_update(m, be, 4) != 1 ||
		    EVP_MAC_update(
			m, (const uint8_t *)label, strlen(label) + 1) != 1 ||
		    (u_len > 0 && EVP_MAC_update(m, ctx_u, u_len) != 1) ||
		    (v_len > 0 && EVP_MAC_update(m, ctx_v, v_len) != 1))
			goto out;
		be[0] = (uint8_t)(bits >> 24);
		be[1] = (uint8_t)(bits >> 16);
		be[2] = (uint8_t)(bits >> 8);
		be[3] = (uint8_t)bits;
		if (EVP_MAC_update(m, be, 4) != 1 ||
		    EVP_MAC_final(m, blk, &outl, sizeof(blk)) != 1 ||
		    outl != MAC_LEN)
			goto out;
		n = out_len - done < MAC_LEN ? out_len - done : MAC_LEN;
		memcpy(out + done, blk, n);
		done += n;
	}
	r = 0;
out:
	if (r != 0)
		sodium_memzero(out, out_len);
	sodium_memzero(blk, sizeof(blk));
	EVP_MAC_CTX_free(m);
	EVP_MAC_free(mac);
	return r;
}

static int
oaep_encrypt(EVP_PKEY *ek, const uint8_t *in, size_t in_len, struct buf *out)
{
	static const char label[] = "IDENTITY"; /* with its NUL: 9 bytes */
	EVP_PKEY_CTX *ctx = NULL;
	unsigned char *lab = NULL;
	size_t n = 0;
	int r = SM_ERR_INTERNAL;

	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, ek, NULL)) == NULL ||
	    EVP_PKEY_encrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) != 1 ||
	    (lab = OPENSSL_memdup(label, sizeof(label))) == NULL)
		goto out;
	if (EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, lab, sizeof(label)) != 1)
		goto out;
	lab = NULL; /* owned by ctx */
	if (EVP_PKEY_encrypt(ctx, NULL, &n, in, in_len) != 1 ||
	    n > ATT_SEED_MAX || (r = buf_reserve(out, n)) != 0)
		goto out;
	r = SM_ERR_INTERNAL;
	if (EVP_PKEY_encrypt(ctx, buf_tail(out), &n, in, in_len) != 1)
		goto out;
	buf_advance(out, n);
	r = 0;
out:
	OPENSSL_free(lab);
	EVP_PKEY_CTX_free(ctx);
	return r;
}

int
att_make_credential(const uint8_t *ek_spki, size_t ek_spki_len,
    const uint8_t *name, size_t name_len, const uint8_t *secret,
    size_t secret_len, struct buf *cred, struct buf *seed_out)
{
	uint8_t seed[SEED_LEN], sym[SYM_LEN], hkey[MAC_LEN], mac[MAC_LEN];
	uint8_t plain[2 + 32], enc[2 + 32], iv[16];
	const unsigned char *p = ek_spki;
	EVP_PKEY *ek = NULL;
	EVP_CIPHER_CTX *c = NULL;
	unsigned int mlen = 0;
	int n1 = 0, n2 = 0, r = SM_ERR_INVAL;

	memset(iv, 0, sizeof(iv));
	if (secret_len == 0 || secret_len > 32 || name_len == 0 ||
	    name_len > 128)
		goto out;
	if ((ek = d2i_PUBKEY(NULL, &p, (long)ek_spki_len)) == NULL ||
	    EVP_PKEY_get_base_id(ek) != EVP_PKEY_RSA ||
	    EVP_PKEY_get_bits(ek) != 2048)
		goto out;
	r = SM_ERR_INTERNAL;
	if (RAND_bytes(seed, sizeof(seed)) != 1)
		goto out;
	if ((r = att_kdfa(seed, sizeof(seed), "STORAGE", name, name_len, NULL,
		 0, sym, sizeof(sym))) != 0 ||
	    (r = att_kdfa(seed, sizeof(seed), "INTEGRITY", NULL, 0, NULL, 0,
		 hkey, sizeof(hkey))) != 0)
		goto out;
	r = SM_ERR_INTERNAL;
	plain[0] = (uint8_t)(secret_len >> 8);
	plain[1] = (uint8_t)secret_len;
	memcpy(plain + 2, secret, secret_len);
	if ((c = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_EncryptInit_ex(c, EVP_aes_128_cfb(), NULL, sym, iv) != 1 ||
	    EVP_EncryptUpdate(c, enc, &n1, plain, (int)(2 + secret_len)) != 1 ||
	    EVP_EncryptFinal_ex(c, enc + n1, &n2) != 1 ||
	    (size_t)(n1 + n2) != 2 + secret_len)
		goto out;
	{
		uint8_t hin[sizeof(enc) + 128];

		memcpy(hin, enc, 2 + secret_len);
		memcpy(hin + 2 + secret_len, name, name_len);
		if (HMAC(EVP_sha256(), hkey, sizeof(hkey), hin,
			2 + secret_len + name_len, mac, &mlen) == NULL ||
		    mlen != MAC_LEN)
			goto out;
	}
	{
		uint8_t hdr[2] = {0, MAC_LEN};

		if ((r = buf_append(cred, hdr, 2)) != 0 ||
		    (r = buf_append(cred, mac, MAC_LEN)) != 0 ||
		    (r = buf_append(cred, enc, 2 + secret_len)) != 0)
			goto out;
	}
	if ((r = oaep_encrypt(ek, seed, sizeof(seed), seed_out)) != 0)
		goto out;
	r = 0;
out:
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(sym, sizeof(sym));
	sodium_memzero(hkey, sizeof(hkey));
	sodium_memzero(plain, sizeof(plain));
	EVP_CIPHER_CTX_free(c);
	EVP_PKEY_free(ek);
	return r;
}
