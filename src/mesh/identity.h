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
#include "crypto/sign.h"

#define ID_KEY_FILE "identity.key"

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
/* Default state dir: $HOME/.sealmesh. Writes into out (NUL-terminated). */
int identity_default_dir(char *out, size_t len) SM_MUST_CHECK;

#endif
