/*
 * Inference keyring: the node's X25519 keys that clients seal requests to.
 *
 * Each key belongs to an epoch, named by a random 32-bit epoch id that is
 * carried in clear in every sealed request (doc/PROTOCOL.md, "E2E sealed
 * request"). The ring holds at most two keys: the current one, and the
 * previous one during its grace period (so requests sealed from a slightly
 * old announcement still open while gossip spreads the new key). Secrets are
 * generated here, live in sodium_malloc'd memory (guard pages, mlocked,
 * excluded from core dumps), are never written anywhere and never leave this
 * file: callers get a DH result through infkey_shared(), not the secret.
 *
 * All times are passed in ('now', seconds on a monotonic clock the caller
 * chooses), so the schedule is testable with a fake clock. Not thread-safe:
 * one owner (the event loop) calls everything.
 */
#ifndef SM_CRYPTO_INFKEY_H
#define SM_CRYPTO_INFKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define INFKEY_PK_LEN 32 /* X25519 public key */
#define INFKEY_SK_LEN 32 /* X25519 secret key */
#define INFKEY_SHARED_LEN 32 /* crypto_box_beforenm() output */
#define INFKEY_EPOCH_DEFAULT_S 3600
#define INFKEY_GRACE_DEFAULT_S 600
#define INFKEY_KCACHE_SLOTS 4096

struct infkey;

/* A public key and its epoch, as published in the signed announcement. */
struct infkey_pub {
	uint32_t epoch;
	uint8_t pk[INFKEY_PK_LEN];
};

/*
 * Make a keyring with a fresh current key. The key is replaced every
 * 'epoch_s' seconds (by infkey_tick()); a replaced key keeps working for
 * 'grace_s' seconds, then is wiped. Requires 0 < grace_s <= epoch_s
 * (SM_ERR_INVAL otherwise), so at most two keys are ever live. On success
 * '*out' is owned by the caller (infkey_free()); on failure it is NULL.
 */
int infkey_new(struct infkey **out, uint64_t epoch_s, uint64_t grace_s,
    uint64_t now) SM_MUST_CHECK;
/*
 * A ring whose secrets live in another process (the privilege-separated
 * signer, doc/PRIVSEP.md): this side keeps the public slots and the DH cache
 * only. 'shared' has infkey_shared()'s contract; 'state' reports the ring
 * (current key first, then the previous one in grace: '*n' is 1 or 2) and
 * the seconds until it next changes. infkey_tick() asks 'state' and reports
 * a rotation when the current epoch changed; cached results of an epoch
 * that is gone are wiped then. infkey_rotate() and infkey_install_det() are
 * SM_ERR_UNSUPP on such a ring.
 */
struct infkey_remote {
	int (*shared)(void *ctx, uint32_t epoch,
	    const uint8_t peer_pk[INFKEY_PK_LEN],
	    uint8_t shared[INFKEY_SHARED_LEN], uint8_t self_pk[INFKEY_PK_LEN]);
	int (*state)(void *ctx, struct infkey_pub pubs[2], size_t *n,
	    uint64_t *next_in_s);
	void *ctx;
};
int infkey_new_remote(struct infkey **out, const struct infkey_remote *rem,
    uint64_t now) SM_MUST_CHECK;
/* Wipe both keys and free the ring. NULL is a no-op. */
void infkey_free(struct infkey *k);

/*
 * Replace the current key now: the current one becomes the previous one
 * (retired at now + grace), and an older previous key is wiped at once.
 * The new epoch id is random and differs from the two ids in the ring.
 */
int infkey_rotate(struct infkey *k, uint64_t now) SM_MUST_CHECK;
/* Wipe the previous key if its grace period has ended (now >= retire time). */
void infkey_expire(struct infkey *k, uint64_t now);
/*
 * The timer hook: rotate if the current epoch has run out, then expire.
 * '*rotated' tells the caller to re-announce (the public keys changed).
 */
int infkey_tick(struct infkey *k, uint64_t now, bool *rotated) SM_MUST_CHECK;
/* The next time infkey_tick() has work to do (for arming a timer). */
uint64_t infkey_next_deadline(const struct infkey *k);

/* The current public key and epoch: what the announcement carries. */
void infkey_current(const struct infkey *k, struct infkey_pub *out);
/* The previous key while in grace; SM_ERR_NOTFOUND when there is none. */
int
infkey_previous(const struct infkey *k, struct infkey_pub *out) SM_MUST_CHECK;

/*
 * X25519 + HSalsa20 (crypto_box_beforenm) of the secret for 'epoch' with
 * 'peer_pk'. Writes the 32-byte result to 'shared' and this epoch's public
 * key to 'self_pk'. SM_ERR_NOTFOUND when no live key has this epoch (never
 * existed, or already wiped); SM_ERR_DECRYPT when 'peer_pk' is a low-order
 * point (all-zero DH). On failure both outputs are zeroed. The caller wipes
 * 'shared'.
 */
int infkey_shared(const struct infkey *k, uint32_t epoch,
    const uint8_t peer_pk[INFKEY_PK_LEN], uint8_t shared[INFKEY_SHARED_LEN],
    uint8_t self_pk[INFKEY_PK_LEN]) SM_MUST_CHECK;

/*
 * infkey_shared() through a cache of results keyed by (epoch, peer_pk), for
 * sealed requests of version 2 whose senders reuse one ephemeral key for a
 * while. INFKEY_KCACHE_SLOTS entries, direct-mapped by a keyed hash (a
 * colliding key evicts the entry); locked memory between guard pages
 * (readable: see infkey.c); entries of an epoch are wiped with that epoch's
 * key, so a cached result never outlives its key. Same contract as
 * infkey_shared().
 */
int infkey_shared_cached(struct infkey *k, uint32_t epoch,
    const uint8_t peer_pk[INFKEY_PK_LEN], uint8_t shared[INFKEY_SHARED_LEN],
    uint8_t self_pk[INFKEY_PK_LEN]) SM_MUST_CHECK;

/*
 * Tests and known-answer vectors only: make 'sk' the current key under
 * 'epoch', as infkey_rotate() would (the old current becomes previous).
 * SM_ERR_INVAL if 'epoch' is already in the ring.
 */
int infkey_install_det(struct infkey *k, uint32_t epoch,
    const uint8_t sk[INFKEY_SK_LEN], uint64_t now) SM_MUST_CHECK;
/*
 * Test builds' memory scans: infkey_install_det() of a 64-digit hex secret
 * under INFKEY_TEST_EPOCH (the secret is wiped here). SM_ERR_INVAL for hex
 * that is not exactly one key.
 */
#define INFKEY_TEST_EPOCH 0x7e57
int infkey_install_hex(
    struct infkey *k, const char *hex, uint64_t now) SM_MUST_CHECK;

#endif
