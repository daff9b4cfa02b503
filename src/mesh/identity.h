/*
 * Node identity: a long-term Ed25519 key. The node id is the lowercase hex of
 * the public key. The secret key lives in sodium_malloc'd, mlocked memory and
 * on disk as a 32-byte seed in STATE_DIR/identity.key (mode 0600, directory
 * 0700); a key file that group or others can read is refused.
 */
#ifndef SM_MESH_IDENTITY_H
#define SM_MESH_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define ID_PK_LEN 32
#define ID_SK_LEN 64
#define ID_SEED_LEN 32
#define ID_SIG_LEN 64
#define ID_HEX_LEN (ID_PK_LEN * 2)
#define ID_KEY_FILE "identity.key"

struct identity {
	uint8_t pk[ID_PK_LEN];
	uint8_t *sk; /* ID_SK_LEN bytes, sodium_malloc'd; NULL when empty */
	char id_hex[ID_HEX_LEN + 1];
};

/*
 * Load STATE_DIR/identity.key; if absent and 'create' is set, make the
 * directory (0700) and a new key (0600). Refuses (SM_ERR_PERM) a key file or
 * directory that group/others can access, or one not owned by this user.
 * On success 'id' owns its secret; free with identity_clear().
 */
int identity_load(
    struct identity *id, const char *state_dir, bool create) SM_MUST_CHECK;
/* Create a new key file; SM_ERR_INVAL if one exists and !overwrite. */
int identity_create(
    struct identity *id, const char *state_dir, bool overwrite) SM_MUST_CHECK;
/* A fresh identity that lives only in memory (clients, tests). */
int identity_ephemeral(struct identity *id) SM_MUST_CHECK;
/* Wipe and free the secret key. */
void identity_clear(struct identity *id);
/* Ed25519 signature over msg. */
int identity_sign(const struct identity *id, const uint8_t *msg, size_t len,
    uint8_t sig[ID_SIG_LEN]) SM_MUST_CHECK;
/* Verify an Ed25519 signature by public key 'pk'. 0 or SM_ERR_VERIFY. */
int identity_verify(const uint8_t pk[ID_PK_LEN], const uint8_t *msg, size_t len,
    const uint8_t sig[ID_SIG_LEN]) SM_MUST_CHECK;
/* Default state dir: $HOME/.sealmesh. Writes into out (NUL-terminated). */
int identity_default_dir(char *out, size_t len) SM_MUST_CHECK;

#endif
