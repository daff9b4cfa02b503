/* Software attestation provider: a P-256 key in process memory. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "attest/challenge.h"
#include "attest/ec.h"
#include "attest/provider.h"

struct sw_provider {
	struct att_provider base; /* first: the provider is cast to this */
	EVP_PKEY *key;
	uint8_t pub[ATT_SW_PUB_LEN];
};

static int
sw_evidence(
    struct att_provider *p, const uint8_t *blob, size_t len, struct buf *out)
{
	struct sw_provider *s = (struct sw_provider *)p;
	uint8_t sig[ATT_SW_SIG_LEN];
	int r;

	/* The blob starts with its own domain prefix: sign the bytes. */
	if ((r = att_ec_sign(s->key, blob, len, sig)) != 0)
		return r;
	if ((r = buf_append(out, s->pub, ATT_SW_PUB_LEN)) != 0)
		return r;
	return buf_append(out, sig, ATT_SW_SIG_LEN);
}

static int
sw_answer(struct att_provider *p, const uint8_t nonce[ATT_NONCE_LEN],
    const uint8_t blob_hash[ATT_HASH_LEN], struct buf *out)
{
	struct sw_provider *s = (struct sw_provider *)p;
	uint8_t msg[ATT_CHAL_SIGNED_LEN], sig[ATT_SW_SIG_LEN];
	int r;

	att_chal_signed_bytes(nonce, blob_hash, msg);
	if ((r = att_ec_sign(s->key, msg, sizeof(msg), sig)) != 0)
		return r;
	return buf_append(out, sig, sizeof(sig));
}

static int
sw_activate(struct att_provider *p, const uint8_t *cred, size_t cred_len,
    const uint8_t *seed, size_t seed_len, uint8_t secret[ATT_SECRET_LEN])
{
	memset(secret, 0, ATT_SECRET_LEN);
	return SM_ERR_UNSUPP;
}

static void
sw_describe(struct att_provider *p, struct att_blob *b)
{
	b->provider = ATT_PROV_SOFTWARE;
	b->level = ATT_LEVEL_SELF_SIGNED;
	b->tpm_manufacturer = 0;
}

static void
sw_free(struct att_provider *p)
{
	struct sw_provider *s = (struct sw_provider *)p;

	EVP_PKEY_free(s->key);
	free(s);
}

static const struct att_provider_ops sw_ops = {
    .evidence = sw_evidence,
    .answer = sw_answer,
    .activate = sw_activate,
    .describe = sw_describe,
    .free = sw_free,
};

static int
sw_new(const uint8_t *priv, struct att_provider **out)
{
	struct sw_provider *s;
	int r;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return SM_ERR_NOMEM;
	s->base.ops = &sw_ops;
	s->base.kind = ATT_PROV_SOFTWARE;
	s->base.level = ATT_LEVEL_SELF_SIGNED;
	if ((r = att_ec_key(priv, &s->key)) != 0 ||
	    (r = att_ec_pub(s->key, s->pub)) != 0) {
		sw_free(&s->base);
		return r;
	}
	*out = &s->base;
	return 0;
}

int
att_software_new(struct att_provider **out)
{
	return sw_new(NULL, out);
}

int
att_software_new_det(const uint8_t priv[32], struct att_provider **out)
{
	return sw_new(priv, out);
}

int
att_software_pub(const struct att_provider *p, uint8_t pub[ATT_SW_PUB_LEN])
{
	if (p == NULL || p->kind != ATT_PROV_SOFTWARE)
		return SM_ERR_INVAL;
	memcpy(pub, ((const struct sw_provider *)p)->pub, ATT_SW_PUB_LEN);
	return 0;
}
