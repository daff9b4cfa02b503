#include <string.h>

#include <sodium.h>

#include "core/util.h"
#include "crypto/sign.h"

int
identity_from_seed(struct identity *id, const uint8_t seed[ID_SEED_LEN])
{
	memset(id, 0, sizeof(*id));
	if ((id->sk = sodium_malloc(ID_SK_LEN)) == NULL)
		return SM_ERR_NOMEM;
	if (crypto_sign_seed_keypair(id->pk, id->sk, seed) != 0) {
		identity_clear(id);
		return SM_ERR_INTERNAL;
	}
	sodium_mprotect_readonly(id->sk);
	sm_hex(id->id_hex, id->pk, ID_PK_LEN);
	return 0;
}

int
identity_ephemeral(struct identity *id)
{
	uint8_t seed[ID_SEED_LEN];
	int r;

	randombytes_buf(seed, sizeof(seed));
	r = identity_from_seed(id, seed);
	sodium_memzero(seed, sizeof(seed));
	return r;
}

void
identity_delegated(struct identity *id, const uint8_t pk[ID_PK_LEN],
    identity_remote_fn fn, void *ctx)
{
	memset(id, 0, sizeof(*id));
	memcpy(id->pk, pk, ID_PK_LEN);
	sm_hex(id->id_hex, id->pk, ID_PK_LEN);
	id->remote = fn;
	id->remote_ctx = ctx;
}

void
identity_clear(struct identity *id)
{
	if (id->sk != NULL)
		sodium_free(id->sk); /* wipes */
	memset(id, 0, sizeof(*id));
}

int
identity_sign(const struct identity *id, const uint8_t *msg, size_t len,
    uint8_t sig[ID_SIG_LEN])
{
	if (id->sk == NULL)
		return id->remote != NULL
		    ? id->remote(id->remote_ctx, msg, len, sig)
		    : SM_ERR_INVAL;
	return crypto_sign_detached(sig, NULL, msg, len, id->sk) == 0
	    ? 0
	    : SM_ERR_INTERNAL;
}

int
identity_verify(const uint8_t pk[ID_PK_LEN], const uint8_t *msg, size_t len,
    const uint8_t sig[ID_SIG_LEN])
{
	return crypto_sign_verify_detached(sig, msg, len, pk) == 0
	    ? 0
	    : SM_ERR_VERIFY;
}
