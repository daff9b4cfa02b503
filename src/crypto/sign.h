/*
 * Ed25519 signing keys, below net/ and mesh/: the node identity type, sign and
 * verify. No I/O here (loading the key file is mesh/identity.c).
 *
 * A key is either held here (sk: sodium_malloc'd, read-only) or delegated:
 * sk is NULL and 'remote' signs on behalf of the process that holds it (the
 * privilege-separated signer, see doc/PRIVSEP.md). identity_sign() works
 * the same for both.
 */
#ifndef SM_CRYPTO_SIGN_H
#define SM_CRYPTO_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define ID_PK_LEN 32
#define ID_SK_LEN 64
#define ID_SEED_LEN 32
#define ID_SIG_LEN 64
#define ID_HEX_LEN (ID_PK_LEN * 2)

/* Signs 'msg' with a key held elsewhere. 0 or a negative SM_ERR_*. */
typedef int (*identity_remote_fn)(
    void *ctx, const uint8_t *msg, size_t len, uint8_t sig[ID_SIG_LEN]);

struct identity {
	uint8_t pk[ID_PK_LEN];
	uint8_t *sk; /* ID_SK_LEN bytes, sodium_malloc'd; NULL when empty */
	char id_hex[ID_HEX_LEN + 1];
	identity_remote_fn remote; /* sk == NULL: who signs for us */
	void *remote_ctx;
};

/* A key from a 32-byte seed ('id' is zeroed first). */
int identity_from_seed(
    struct identity *id, const uint8_t seed[ID_SEED_LEN]) SM_MUST_CHECK;
/* A fresh identity that lives only in memory (clients, tests). */
int identity_ephemeral(struct identity *id) SM_MUST_CHECK;
/* The public half of a key whose secret is held by 'fn' elsewhere. */
void identity_delegated(struct identity *id, const uint8_t pk[ID_PK_LEN],
    identity_remote_fn fn, void *ctx);
/* True when identity_sign() can sign: a held key or a remote signer. */
static inline bool
identity_can_sign(const struct identity *id)
{
	return id->sk != NULL || id->remote != NULL;
}
/* Wipe and free the secret key. */
void identity_clear(struct identity *id);
/* Ed25519 signature over msg (held key, or the remote signer). */
int identity_sign(const struct identity *id, const uint8_t *msg, size_t len,
    uint8_t sig[ID_SIG_LEN]) SM_MUST_CHECK;
/* Verify an Ed25519 signature by public key 'pk'. 0 or SM_ERR_VERIFY. */
int identity_verify(const uint8_t pk[ID_PK_LEN], const uint8_t *msg, size_t len,
    const uint8_t sig[ID_SIG_LEN]) SM_MUST_CHECK;

#endif
