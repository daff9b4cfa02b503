/*
 * Inference keyring. Two slots; 'cur' indexes the current key, the other
 * slot holds the previous key while it is in grace. The two secrets share
 * one sodium_malloc'd block that stays PROT_NONE except inside the calls
 * that read or write it.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/infkey.h"

struct infkey_slot {
	bool live;
	uint32_t epoch;
	uint64_t retire; /* previous key: wiped at this time */
	uint8_t pk[INFKEY_PK_LEN];
};

/* One cached DH result (infkey_shared_cached). */
struct infkey_kc {
	uint32_t epoch; /* 0: empty */
	uint8_t peer[INFKEY_PK_LEN];
	uint8_t shared[INFKEY_SHARED_LEN];
};

struct infkey {
	uint8_t (*sk)[INFKEY_SK_LEN]; /* [2], sodium_malloc'd */
	struct infkey_kc *kc; /* [INFKEY_KCACHE_SLOTS], sodium_malloc'd */
	uint8_t kc_key[crypto_shorthash_KEYBYTES];
	struct infkey_slot slot[2];
	unsigned cur;
	uint64_t epoch_s;
	uint64_t grace_s;
	uint64_t next_rotate;
	struct infkey_remote rem; /* rem.shared != NULL: secrets elsewhere */
};

static void
slot_wipe(struct infkey *k, unsigned i)
{
	size_t j;

	if (k->sk != NULL) {
		sodium_mprotect_readwrite(k->sk);
		sodium_memzero(k->sk[i], INFKEY_SK_LEN);
		sodium_mprotect_noaccess(k->sk);
	}
	/* Cached results of this key go with it. */
	for (j = 0; j < INFKEY_KCACHE_SLOTS; j++)
		if (k->kc[j].epoch == k->slot[i].epoch)
			sodium_memzero(&k->kc[j], sizeof(k->kc[j]));
	sodium_memzero(&k->slot[i], sizeof(k->slot[i]));
}

static uint32_t
fresh_epoch(const struct infkey *k)
{
	uint32_t e;

	do {
		e = randombytes_random();
	} while (e == 0 || e == k->slot[0].epoch || e == k->slot[1].epoch);
	return e;
}

/* Move the current key to the previous slot, return the slot to fill. */
static unsigned
retire_current(struct infkey *k, uint64_t now)
{
	unsigned old = k->cur, nxt = k->cur ^ 1;

	if (k->slot[nxt].live)
		slot_wipe(k, nxt);
	if (k->slot[old].live)
		k->slot[old].retire = now + k->grace_s;
	k->cur = nxt;
	k->next_rotate = now + k->epoch_s;
	return nxt;
}

/* The cache: locked, between guard pages, readable (see infkey_new). */
static int
kcache_new(struct infkey *k)
{
	if ((k->kc = sodium_malloc(INFKEY_KCACHE_SLOTS * sizeof(*k->kc))) ==
	    NULL)
		return SM_ERR_NOMEM;
	sodium_memzero(k->kc, INFKEY_KCACHE_SLOTS * sizeof(*k->kc));
	crypto_shorthash_keygen(k->kc_key);
	return 0;
}

int
infkey_new(
    struct infkey **out, uint64_t epoch_s, uint64_t grace_s, uint64_t now)
{
	struct infkey *k = NULL;
	int r = SM_ERR_INVAL;

	*out = NULL;
	if (grace_s == 0 || grace_s > epoch_s)
		goto out;
	r = SM_ERR_NOMEM;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		goto out;
	if ((k->sk = sodium_malloc(2 * INFKEY_SK_LEN)) == NULL)
		goto out;
	sodium_memzero(k->sk, 2 * INFKEY_SK_LEN);
	sodium_mprotect_noaccess(k->sk);
	/* The cache is locked, between guard pages, but left readable: unlike
	 * the secret keys it is read on every version 2 request, and two
	 * mprotect calls per request cost more than all of its cryptography
	 * (perf: a quarter of the host's CPU). */
	if ((r = kcache_new(k)) != 0)
		goto out;
	k->epoch_s = epoch_s;
	k->grace_s = grace_s;
	k->cur = 1; /* the first rotation fills slot 0 */
	if ((r = infkey_rotate(k, now)) != 0)
		goto out;
	*out = k;
	k = NULL;
out:
	infkey_free(k);
	return r;
}

/* Take the remote ring's state: slot 'cur' the current key. */
static int
remote_sync(struct infkey *k, uint64_t now, bool *rotated)
{
	struct infkey_pub p[2];
	uint64_t next_in = 0;
	size_t n = 0, i, j;
	uint32_t old = k->slot[k->cur].epoch;
	int r;

	*rotated = false;
	if ((r = k->rem.state(k->rem.ctx, p, &n, &next_in)) != 0)
		return r;
	if (n < 1 || n > 2 || p[0].epoch == 0 ||
	    (n == 2 && (p[1].epoch == 0 || p[1].epoch == p[0].epoch)))
		return SM_ERR_PROTO;
	/* Results cached for an epoch that is gone go with it. */
	for (i = 0; i < 2; i++) {
		bool kept = false;

		for (j = 0; j < n; j++)
			kept |=
			    k->slot[i].live && k->slot[i].epoch == p[j].epoch;
		if (k->slot[i].live && !kept)
			slot_wipe(k, i);
	}
	memset(k->slot, 0, sizeof(k->slot));
	for (i = 0; i < n; i++) {
		k->slot[i].live = true;
		k->slot[i].epoch = p[i].epoch;
		memcpy(k->slot[i].pk, p[i].pk, INFKEY_PK_LEN);
	}
	k->cur = 0;
	k->next_rotate = now + (next_in > 0 ? next_in : 1);
	*rotated = old != 0 && old != p[0].epoch;
	return 0;
}

int
infkey_new_remote(
    struct infkey **out, const struct infkey_remote *rem, uint64_t now)
{
	struct infkey *k = NULL;
	bool rotated;
	int r = SM_ERR_INVAL;

	*out = NULL;
	if (rem == NULL || rem->shared == NULL || rem->state == NULL)
		goto out;
	r = SM_ERR_NOMEM;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		goto out;
	k->rem = *rem;
	if ((r = kcache_new(k)) != 0 ||
	    (r = remote_sync(k, now, &rotated)) != 0)
		goto out;
	*out = k;
	k = NULL;
out:
	infkey_free(k);
	return r;
}

void
infkey_free(struct infkey *k)
{
	if (k == NULL)
		return;
	if (k->sk != NULL)
		sodium_free(k->sk); /* wipes */
	if (k->kc != NULL)
		sodium_free(k->kc);
	sodium_memzero(k, sizeof(*k));
	free(k);
}

int
infkey_rotate(struct infkey *k, uint64_t now)
{
	unsigned i;
	struct infkey_slot *s;

	if (k->sk == NULL)
		return SM_ERR_UNSUPP;
	i = retire_current(k, now);
	s = &k->slot[i];

	s->epoch = fresh_epoch(k);
	sodium_mprotect_readwrite(k->sk);
	randombytes_buf(k->sk[i], INFKEY_SK_LEN);
	crypto_scalarmult_base(s->pk, k->sk[i]);
	sodium_mprotect_noaccess(k->sk);
	s->retire = 0;
	s->live = true;
	return 0;
}

int
infkey_install_det(struct infkey *k, uint32_t epoch,
    const uint8_t sk[INFKEY_SK_LEN], uint64_t now)
{
	unsigned i;

	if (k->sk == NULL)
		return SM_ERR_UNSUPP;
	if (epoch == 0 || (k->slot[0].live && k->slot[0].epoch == epoch) ||
	    (k->slot[1].live && k->slot[1].epoch == epoch))
		return SM_ERR_INVAL;
	i = retire_current(k, now);
	k->slot[i].epoch = epoch;
	sodium_mprotect_readwrite(k->sk);
	memcpy(k->sk[i], sk, INFKEY_SK_LEN);
	crypto_scalarmult_base(k->slot[i].pk, k->sk[i]);
	sodium_mprotect_noaccess(k->sk);
	k->slot[i].retire = 0;
	k->slot[i].live = true;
	return 0;
}

int
infkey_install_hex(struct infkey *k, const char *hex, uint64_t now)
{
	uint8_t sk[INFKEY_SK_LEN];
	size_t n = 0;
	int r = SM_ERR_INVAL;

	if (sodium_hex2bin(sk, sizeof(sk), hex, strlen(hex), NULL, &n, NULL) ==
		0 &&
	    n == sizeof(sk))
		r = infkey_install_det(k, INFKEY_TEST_EPOCH, sk, now);
	sodium_memzero(sk, sizeof(sk));
	return r;
}

void
infkey_expire(struct infkey *k, uint64_t now)
{
	unsigned prev = k->cur ^ 1;

	if (k->sk == NULL)
		return; /* the remote side expires its keys */
	if (k->slot[prev].live && now >= k->slot[prev].retire)
		slot_wipe(k, prev);
}

int
infkey_tick(struct infkey *k, uint64_t now, bool *rotated)
{
	int r = 0;

	*rotated = false;
	if (k->sk == NULL)
		return now >= k->next_rotate ? remote_sync(k, now, rotated) : 0;
	if (now >= k->next_rotate) {
		if ((r = infkey_rotate(k, now)) != 0)
			goto out;
		*rotated = true;
	}
	infkey_expire(k, now);
out:
	return r;
}

uint64_t
infkey_next_deadline(const struct infkey *k)
{
	const struct infkey_slot *prev = &k->slot[k->cur ^ 1];

	if (k->sk == NULL)
		return k->next_rotate; /* the remote side said when */
	if (prev->live && prev->retire < k->next_rotate)
		return prev->retire;
	return k->next_rotate;
}

void
infkey_current(const struct infkey *k, struct infkey_pub *out)
{
	out->epoch = k->slot[k->cur].epoch;
	memcpy(out->pk, k->slot[k->cur].pk, INFKEY_PK_LEN);
}

int
infkey_previous(const struct infkey *k, struct infkey_pub *out)
{
	const struct infkey_slot *prev = &k->slot[k->cur ^ 1];

	memset(out, 0, sizeof(*out));
	if (!prev->live)
		return SM_ERR_NOTFOUND;
	out->epoch = prev->epoch;
	memcpy(out->pk, prev->pk, INFKEY_PK_LEN);
	return 0;
}

int
infkey_shared(const struct infkey *k, uint32_t epoch,
    const uint8_t peer_pk[INFKEY_PK_LEN], uint8_t shared[INFKEY_SHARED_LEN],
    uint8_t self_pk[INFKEY_PK_LEN])
{
	unsigned i;
	int r = SM_ERR_NOTFOUND, dh;

	sodium_memzero(shared, INFKEY_SHARED_LEN);
	memset(self_pk, 0, INFKEY_PK_LEN);
	for (i = 0; i < 2; i++)
		if (k->slot[i].live && k->slot[i].epoch == epoch)
			break;
	if (i == 2)
		goto out;
	if (k->sk == NULL)
		return k->rem.shared(
		    k->rem.ctx, epoch, peer_pk, shared, self_pk);
	sodium_mprotect_readonly(k->sk);
	/* X25519 then HSalsa20; refuses low-order points (all-zero DH). */
	dh = crypto_box_beforenm(shared, peer_pk, k->sk[i]);
	sodium_mprotect_noaccess(k->sk);
	if (dh != 0) {
		sodium_memzero(shared, INFKEY_SHARED_LEN);
		r = SM_ERR_DECRYPT;
		goto out;
	}
	memcpy(self_pk, k->slot[i].pk, INFKEY_PK_LEN);
	r = 0;
out:
	return r;
}

int
infkey_shared_cached(struct infkey *k, uint32_t epoch,
    const uint8_t peer_pk[INFKEY_PK_LEN], uint8_t shared[INFKEY_SHARED_LEN],
    uint8_t self_pk[INFKEY_PK_LEN])
{
	uint8_t in[4 + INFKEY_PK_LEN], h[crypto_shorthash_BYTES];
	struct infkey_kc *e;
	uint64_t v = 0;
	int r, i;

	/* The epoch must still be live: infkey_shared() checks it and gives
	 * this key's public half, which a hit needs too. */
	in[0] = (uint8_t)(epoch >> 24);
	in[1] = (uint8_t)(epoch >> 16);
	in[2] = (uint8_t)(epoch >> 8);
	in[3] = (uint8_t)epoch;
	memcpy(in + 4, peer_pk, INFKEY_PK_LEN);
	crypto_shorthash(h, in, sizeof(in), k->kc_key);
	for (i = 0; i < 8; i++)
		v |= (uint64_t)h[i] << (8 * i);
	sodium_memzero(shared, INFKEY_SHARED_LEN);
	memset(self_pk, 0, INFKEY_PK_LEN);
	for (i = 0; i < 2; i++)
		if (k->slot[i].live && k->slot[i].epoch == epoch)
			break;
	if (i == 2)
		return SM_ERR_NOTFOUND;
	e = &k->kc[v % INFKEY_KCACHE_SLOTS];
	if (e->epoch == epoch &&
	    sodium_memcmp(e->peer, peer_pk, INFKEY_PK_LEN) == 0) {
		memcpy(shared, e->shared, INFKEY_SHARED_LEN);
		memcpy(self_pk, k->slot[i].pk, INFKEY_PK_LEN);
		r = 0;
	} else if ((r = infkey_shared(k, epoch, peer_pk, shared, self_pk)) ==
	    0) {
		e->epoch = epoch;
		memcpy(e->peer, peer_pk, INFKEY_PK_LEN);
		memcpy(e->shared, shared, INFKEY_SHARED_LEN);
	}
	return r;
}
