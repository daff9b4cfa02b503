/*
 * E2E sealed request: seal, open, padding buckets, replay cache.
 * Layout and key schedule in envelope.h and doc/PROTOCOL.md.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/util.h"
#include "crypto/envelope.h"

#define KDF_REQ "sealmesh-e2e-req" /* BLAKE2b personal: exactly 16 bytes */
#define KDF_H2C "sealmesh-e2e-h2c"
#define REQ_KN_LEN (crypto_secretbox_KEYBYTES + crypto_secretbox_NONCEBYTES)
#define REPLAY_MAX_ENTRIES (1u << 24)

_Static_assert(sizeof(KDF_REQ) - 1 == crypto_generichash_blake2b_PERSONALBYTES,
    "label size");
_Static_assert(sizeof(KDF_H2C) - 1 == crypto_generichash_blake2b_PERSONALBYTES,
    "label size");
_Static_assert(ENV_MAC_LEN == crypto_secretbox_MACBYTES, "mac size");
_Static_assert(INFKEY_SHARED_LEN == crypto_box_BEFORENMBYTES, "K size");
_Static_assert(ENV_PT_MAX < UINT32_MAX - ENV_MAC_LEN, "u32 body length");

/* Ids recorded for one asking member in one generation. */
struct replay_member {
	uint8_t id[ENV_NODE_ID_LEN];
	uint32_t count; /* 0: slot free */
};

struct replay_gen {
	uint8_t (*ids)[ENV_REQID_LEN];
	uint8_t *used;
	size_t count;
	struct replay_member *members; /* ENV_REPLAY_MEMBER_SLOTS */
	size_t nmembers;
};

struct env_replay {
	uint8_t hkey[crypto_shorthash_KEYBYTES];
	struct replay_gen gen[2];
	unsigned cur;
	size_t mask;
	size_t max;
	size_t member_max; /* ids one member may hold per generation */
	uint64_t window;
	uint64_t start; /* wall time the current generation began */
	bool started;
};

void
env_session_clear(struct env_session *s)
{
	sodium_memzero(s, sizeof(*s));
}

size_t
env_bucket(size_t n)
{
	size_t b;

	if (n <= ENV_BUCKET_MIN)
		return ENV_BUCKET_MIN;
	if (n <= ENV_BUCKET_STEP) {
		for (b = ENV_BUCKET_MIN; b < n; b *= 2)
			;
		return b;
	}
	if (n > ENV_PT_MAX)
		return 0;
	return (n + ENV_BUCKET_STEP - 1) / ENV_BUCKET_STEP * ENV_BUCKET_STEP;
}

/* Header length of an envelope of 'version'; 0 if unknown. */
static size_t
hdr_len(uint8_t version)
{
	return version == ENV_VERSION  ? ENV_HDR_LEN
	    : version == ENV_VERSION_2 ? ENV_HDR2_LEN
				       : 0;
}

/* Keyed BLAKE2b with a 16-byte personal label over hdr || host_pk || extra,
 * where hdr is the whole cleartext header of hdr[1]'s version. */
static void
kdf(uint8_t *out, size_t outlen, const char *label,
    const uint8_t k[INFKEY_SHARED_LEN], const uint8_t *hdr,
    const uint8_t host_pk[INFKEY_PK_LEN], const uint8_t *extra,
    size_t extra_len)
{
	static const uint8_t salt[crypto_generichash_blake2b_SALTBYTES];
	uint8_t msg[ENV_HDR_MAX + INFKEY_PK_LEN + ENV_REQID_LEN];
	size_t hl = hdr_len(hdr[1]), n = hl + INFKEY_PK_LEN;

	memcpy(msg, hdr, hl);
	memcpy(msg + hl, host_pk, INFKEY_PK_LEN);
	if (extra_len > 0) {
		memcpy(msg + n, extra, extra_len);
		n += extra_len;
	}
	crypto_generichash_blake2b_salt_personal(out, outlen, msg, n, k,
	    INFKEY_SHARED_LEN, salt, (const uint8_t *)label);
	sodium_memzero(msg, sizeof(msg));
}

/*
 * Reserve room in 'wire' and write the cleartext header of 'version' for a
 * 'pt_len' plaintext, with ephemeral public key 'eph_pk' and (version 2)
 * 'salt'. Returns a pointer to the header; the plaintext goes at
 * hdr + hdr_len + ENV_MAC_LEN. Nothing is marked as data yet.
 */
static int
seal_begin(uint8_t **hdr, struct buf *wire, uint8_t version,
    const struct env_target *t, const uint8_t eph_pk[INFKEY_PK_LEN],
    const uint8_t salt[ENV_SALT_LEN], size_t pt_len)
{
	size_t hl = hdr_len(version);
	uint8_t *h;
	int r;

	*hdr = NULL;
	if ((r = buf_reserve(wire, hl + ENV_MAC_LEN + pt_len)) != 0)
		return r;
	h = buf_tail(wire);
	h[0] = ENV_MAGIC;
	h[1] = version;
	sm_put_be32(h + 2, t->key.epoch);
	memcpy(h + ENV_EPH_OFF, eph_pk, INFKEY_PK_LEN);
	if (version == ENV_VERSION_2)
		memcpy(h + ENV_SALT_OFF, salt, ENV_SALT_LEN);
	sm_put_be32(h + hl - 4, (uint32_t)(ENV_MAC_LEN + pt_len));
	*hdr = h;
	return 0;
}

/*
 * Box the plaintext in place after the header under K, derive the response
 * key into 'rkey' when 'request_id' is given, and mark the envelope as data.
 */
static void
seal_finish(struct buf *wire, uint8_t *hdr, size_t pt_len,
    const struct env_target *t, const uint8_t k[INFKEY_SHARED_LEN],
    const uint8_t *request_id, uint8_t rkey[RS_KEY_LEN])
{
	size_t hl = hdr_len(hdr[1]);
	uint8_t kn[REQ_KN_LEN];
	uint8_t *body = hdr + hl;

	kdf(kn, sizeof(kn), KDF_REQ, k, hdr, t->key.pk, NULL, 0);
	/* In place: libsodium allows c and m to overlap. */
	crypto_secretbox_easy(body, body + ENV_MAC_LEN, pt_len,
	    kn + crypto_secretbox_KEYBYTES, kn);
	if (request_id != NULL)
		kdf(rkey, RS_KEY_LEN, KDF_H2C, k, hdr, t->key.pk, request_id,
		    ENV_REQID_LEN);
	buf_advance(wire, hl + ENV_MAC_LEN + pt_len);
	sodium_memzero(kn, sizeof(kn));
}

/* X25519 + HSalsa20 of a fresh or given ephemeral secret with the host key;
 * refuses a low-order host key (SM_ERR_INVAL). */
static int
eph_shared(uint8_t k[INFKEY_SHARED_LEN], uint8_t eph_pk[INFKEY_PK_LEN],
    const struct env_target *t, const uint8_t eph_sk[ENV_EPH_SK_LEN])
{
	crypto_scalarmult_base(eph_pk, eph_sk);
	if (crypto_box_beforenm(k, t->key.pk, eph_sk) != 0) {
		sodium_memzero(k, INFKEY_SHARED_LEN);
		return SM_ERR_INVAL;
	}
	return 0;
}

/* Lay out and seal one request under K (either version). */
static int
seal_with(struct buf *wire, struct env_session *s, uint8_t version,
    const struct env_target *t, uint8_t flags, const uint8_t *http,
    size_t http_len, uint64_t now, const uint8_t k[INFKEY_SHARED_LEN],
    const uint8_t eph_pk[INFKEY_PK_LEN], const uint8_t salt[ENV_SALT_LEN],
    const uint8_t request_id[ENV_REQID_LEN])
{
	uint8_t *hdr, *pt;
	size_t pt_len;
	int r;

	env_session_clear(s);
	if (http_len == 0)
		return SM_ERR_INVAL;
	if (http_len > ENV_HTTP_MAX)
		return SM_ERR_TOOBIG;
	if ((flags & ~ENV_F_KNOWN) != 0)
		return SM_ERR_INVAL;
	pt_len = env_bucket(ENV_INNER_LEN + http_len);
	if ((r = seal_begin(&hdr, wire, version, t, eph_pk, salt, pt_len)) != 0)
		return r;
	pt = hdr + hdr_len(version) + ENV_MAC_LEN;
	pt[0] = flags;
	memcpy(pt + 1, request_id, ENV_REQID_LEN);
	sm_put_be64(pt + 17, now);
	memcpy(pt + 25, t->node_id, ENV_NODE_ID_LEN);
	sm_put_be32(pt + 57, (uint32_t)http_len);
	memcpy(pt + ENV_INNER_LEN, http, http_len);
	memset(pt + ENV_INNER_LEN + http_len, 0,
	    pt_len - ENV_INNER_LEN - http_len);
	seal_finish(wire, hdr, pt_len, t, k, request_id, s->rkey);
	memcpy(s->request_id, request_id, ENV_REQID_LEN);
	s->timestamp = now;
	return 0;
}

int
env_seal_request_det(struct buf *wire, struct env_session *s,
    const struct env_target *t, const uint8_t *http, size_t http_len,
    uint64_t now, const uint8_t eph_sk[ENV_EPH_SK_LEN],
    const uint8_t request_id[ENV_REQID_LEN])
{
	uint8_t k[INFKEY_SHARED_LEN], eph_pk[INFKEY_PK_LEN];
	int r;

	env_session_clear(s);
	if ((r = eph_shared(k, eph_pk, t, eph_sk)) == 0)
		r = seal_with(wire, s, ENV_VERSION, t, 0, http, http_len, now,
		    k, eph_pk, NULL, request_id);
	sodium_memzero(k, sizeof(k));
	return r;
}

int
env_seal_request_flags(struct buf *wire, struct env_session *s,
    const struct env_target *t, uint8_t flags, const uint8_t *http,
    size_t http_len, uint64_t now)
{
	uint8_t k[INFKEY_SHARED_LEN], eph_pk[INFKEY_PK_LEN];
	uint8_t eph_sk[ENV_EPH_SK_LEN], id[ENV_REQID_LEN];
	int r;

	env_session_clear(s);
	randombytes_buf(eph_sk, sizeof(eph_sk));
	randombytes_buf(id, sizeof(id));
	if ((r = eph_shared(k, eph_pk, t, eph_sk)) == 0)
		r = seal_with(wire, s, ENV_VERSION, t, flags, http, http_len,
		    now, k, eph_pk, NULL, id);
	sodium_memzero(k, sizeof(k));
	sodium_memzero(eph_sk, sizeof(eph_sk));
	sodium_memzero(id, sizeof(id));
	return r;
}

int
env_seal_request(struct buf *wire, struct env_session *s,
    const struct env_target *t, const uint8_t *http, size_t http_len,
    uint64_t now)
{
	return env_seal_request_flags(wire, s, t, 0, http, http_len, now);
}

int
env_seal_request2_det(struct buf *wire, struct env_session *s,
    const struct env_target *t, const uint8_t *http, size_t http_len,
    uint64_t now, const uint8_t eph_sk[ENV_EPH_SK_LEN],
    const uint8_t salt[ENV_SALT_LEN], const uint8_t request_id[ENV_REQID_LEN])
{
	uint8_t k[INFKEY_SHARED_LEN], eph_pk[INFKEY_PK_LEN];
	int r;

	env_session_clear(s);
	if ((r = eph_shared(k, eph_pk, t, eph_sk)) == 0)
		r = seal_with(wire, s, ENV_VERSION_2, t, 0, http, http_len, now,
		    k, eph_pk, salt, request_id);
	sodium_memzero(k, sizeof(k));
	return r;
}

/* --- version 2 sender cache --- */

struct sender_slot {
	bool used;
	uint32_t epoch;
	uint64_t born; /* wall seconds */
	uint8_t host_pk[INFKEY_PK_LEN];
	uint8_t eph_pk[INFKEY_PK_LEN];
	uint8_t k[INFKEY_SHARED_LEN];
};

struct env_sender {
	struct sender_slot *slot; /* [ENV_SENDER_SLOTS], sodium_malloc'd */
};

int
env_sender_new(struct env_sender **out)
{
	struct env_sender *snd;

	*out = NULL;
	if ((snd = calloc(1, sizeof(*snd))) == NULL)
		return SM_ERR_NOMEM;
	snd->slot = sodium_malloc(ENV_SENDER_SLOTS * sizeof(*snd->slot));
	if (snd->slot == NULL) {
		free(snd);
		return SM_ERR_NOMEM;
	}
	sodium_memzero(snd->slot, ENV_SENDER_SLOTS * sizeof(*snd->slot));
	*out = snd;
	return 0;
}

void
env_sender_free(struct env_sender *snd)
{
	if (snd == NULL)
		return;
	sodium_free(snd->slot); /* wipes */
	free(snd);
}

/* The slot for host key 't', made anew when missing or older than the
 * lifetime (a clock that stepped back also renews it). */
static int
sender_slot(struct sender_slot **out, struct env_sender *snd,
    const struct env_target *t, uint64_t now)
{
	struct sender_slot *s, *victim = &snd->slot[0];
	uint8_t eph_sk[ENV_EPH_SK_LEN];
	size_t i;
	int r;

	*out = NULL;
	for (i = 0; i < ENV_SENDER_SLOTS; i++) {
		s = &snd->slot[i];
		if (s->used && s->epoch == t->key.epoch &&
		    memcmp(s->host_pk, t->key.pk, INFKEY_PK_LEN) == 0) {
			victim = s;
			if (now >= s->born &&
			    now - s->born < ENV_SENDER_LIFETIME_S) {
				*out = s;
				return 0;
			}
			break;
		}
		if (!s->used || (victim->used && s->born < victim->born))
			victim = s;
	}
	sodium_memzero(victim, sizeof(*victim));
	randombytes_buf(eph_sk, sizeof(eph_sk));
	r = eph_shared(victim->k, victim->eph_pk, t, eph_sk);
	sodium_memzero(eph_sk, sizeof(eph_sk));
	if (r != 0)
		return r;
	victim->used = true;
	victim->epoch = t->key.epoch;
	victim->born = now;
	memcpy(victim->host_pk, t->key.pk, INFKEY_PK_LEN);
	*out = victim;
	return 0;
}

int
env_seal_request2(struct buf *wire, struct env_session *s,
    struct env_sender *snd, const struct env_target *t, uint8_t flags,
    const uint8_t *http, size_t http_len, uint64_t now)
{
	uint8_t salt[ENV_SALT_LEN], id[ENV_REQID_LEN];
	struct sender_slot *slot;
	int r;

	env_session_clear(s);
	if ((r = sender_slot(&slot, snd, t, now)) != 0)
		return r;
	randombytes_buf(salt, sizeof(salt));
	randombytes_buf(id, sizeof(id));
	r = seal_with(wire, s, ENV_VERSION_2, t, flags, http, http_len, now,
	    slot->k, slot->eph_pk, salt, id);
	sodium_memzero(id, sizeof(id));
	return r;
}

int
env_seal_raw_det(struct buf *wire, const struct env_target *t, uint8_t version,
    const uint8_t eph_sk[ENV_EPH_SK_LEN], const uint8_t *pt, size_t pt_len)
{
	static const uint8_t zero_salt[ENV_SALT_LEN];
	uint8_t k[INFKEY_SHARED_LEN], eph_pk[INFKEY_PK_LEN];
	uint8_t *hdr;
	int r;

	if (hdr_len(version) == 0)
		return SM_ERR_INVAL;
	if (pt_len > ENV_PT_MAX)
		return SM_ERR_TOOBIG;
	if ((r = eph_shared(k, eph_pk, t, eph_sk)) != 0)
		goto out;
	if ((r = seal_begin(
		 &hdr, wire, version, t, eph_pk, zero_salt, pt_len)) != 0)
		goto out;
	if (pt_len > 0)
		memcpy(hdr + hdr_len(version) + ENV_MAC_LEN, pt, pt_len);
	seal_finish(wire, hdr, pt_len, t, k, NULL, NULL);
out:
	sodium_memzero(k, sizeof(k));
	return r;
}

static bool
is_bucket(size_t n)
{
	return n >= ENV_BUCKET_MIN && env_bucket(n) == n;
}

int
env_peek(size_t *total, const uint8_t *in, size_t len)
{
	uint32_t body;

	size_t hl;

	*total = 0;
	if (len >= 1 && in[0] != ENV_MAGIC)
		return SM_ERR_PROTO;
	if (len < 2)
		return SM_ERR_AGAIN;
	if ((hl = hdr_len(in[1])) == 0)
		return SM_ERR_UNSUPP;
	if (len < hl)
		return SM_ERR_AGAIN;
	body = sm_get_be32(in + hl - 4);
	if (body < ENV_MAC_LEN || !is_bucket(body - ENV_MAC_LEN))
		return SM_ERR_PROTO;
	*total = hl + (size_t)body;
	return 0;
}

/* --- replay cache --- */

static void
gen_clear(struct env_replay *rc, struct replay_gen *g)
{
	memset(g->ids, 0, (rc->mask + 1) * ENV_REQID_LEN);
	memset(g->used, 0, rc->mask + 1);
	g->count = 0;
	memset(g->members, 0, ENV_REPLAY_MEMBER_SLOTS * sizeof(*g->members));
	g->nmembers = 0;
}

int
env_replay_new(struct env_replay **out, uint64_t window_s, size_t max_entries)
{
	struct env_replay *rc = NULL;
	size_t slots = 16;
	int i, r = SM_ERR_INVAL;

	*out = NULL;
	if (max_entries == 0 || max_entries > REPLAY_MAX_ENTRIES ||
	    window_s > UINT32_MAX)
		goto out;
	while (slots < 2 * max_entries)
		slots *= 2;
	r = SM_ERR_NOMEM;
	if ((rc = calloc(1, sizeof(*rc))) == NULL)
		goto out;
	for (i = 0; i < 2; i++) {
		rc->gen[i].ids = calloc(slots, ENV_REQID_LEN);
		rc->gen[i].used = calloc(slots, 1);
		rc->gen[i].members = calloc(
		    ENV_REPLAY_MEMBER_SLOTS, sizeof(*rc->gen[i].members));
		if (rc->gen[i].ids == NULL || rc->gen[i].used == NULL ||
		    rc->gen[i].members == NULL)
			goto out;
	}
	/* Keyed hash: request ids are chosen by the (untrusted) client. */
	crypto_shorthash_keygen(rc->hkey);
	rc->mask = slots - 1;
	rc->max = max_entries;
	rc->member_max = max_entries / ENV_REPLAY_SHARE_DIV;
	if (rc->member_max == 0)
		rc->member_max = 1;
	rc->window = window_s;
	*out = rc;
	rc = NULL;
	r = 0;
out:
	env_replay_free(rc);
	return r;
}

void
env_replay_free(struct env_replay *rc)
{
	int i;

	if (rc == NULL)
		return;
	for (i = 0; i < 2; i++) {
		free(rc->gen[i].ids);
		free(rc->gen[i].used);
		free(rc->gen[i].members);
	}
	sodium_memzero(rc, sizeof(*rc));
	free(rc);
}

/*
 * Generations of G = 2*window seconds: an id accepted at time t had a
 * timestamp <= t + window, so it must be kept while now - window <= that,
 * i.e. until now > t + 2*window. An id lives in the current generation,
 * then the previous one, so it is dropped only once now > t + G. A clock
 * that steps back restarts the generation (ids are kept longer, never
 * shorter).
 */
static void
replay_age(struct env_replay *rc, uint64_t now)
{
	uint64_t g = rc->window > 0 ? 2 * rc->window : 1;

	if (!rc->started || now < rc->start) {
		rc->started = true;
		rc->start = now;
		return;
	}
	if (now - rc->start <= g)
		return;
	if (now - rc->start > 2 * g)
		gen_clear(rc, &rc->gen[rc->cur]);
	rc->cur ^= 1;
	gen_clear(rc, &rc->gen[rc->cur]);
	rc->start = now;
}

static bool
gen_has(const struct env_replay *rc, const struct replay_gen *g,
    const uint8_t id[ENV_REQID_LEN], size_t *slot)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v = 0;
	size_t i;
	int k;

	crypto_shorthash(h, id, ENV_REQID_LEN, rc->hkey);
	for (k = 0; k < 8; k++)
		v |= (uint64_t)h[k] << (8 * k);
	/* Load stays <= 1/2, so an empty slot is always found. */
	for (i = (size_t)v & rc->mask; g->used[i]; i = (i + 1) & rc->mask)
		if (memcmp(g->ids[i], id, ENV_REQID_LEN) == 0) /* not secret */
			return true;
	*slot = i;
	return false;
}

/*
 * The slot of 'member' in generation 'g' (found, or the free one where it
 * goes); NULL when it is new and the table is at half load.
 */
static struct replay_member *
gen_member(const struct env_replay *rc, struct replay_gen *g,
    const uint8_t member[ENV_NODE_ID_LEN])
{
	const size_t mask = ENV_REPLAY_MEMBER_SLOTS - 1;
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v = 0;
	size_t i;
	int k;

	crypto_shorthash(h, member, ENV_NODE_ID_LEN, rc->hkey);
	for (k = 0; k < 8; k++)
		v |= (uint64_t)h[k] << (8 * k);
	for (i = (size_t)v & mask; g->members[i].count != 0; i = (i + 1) & mask)
		if (memcmp(g->members[i].id, member, ENV_NODE_ID_LEN) == 0)
			return &g->members[i];
	if (g->nmembers >= ENV_REPLAY_MEMBER_SLOTS / 2)
		return NULL;
	return &g->members[i];
}

/* Record 'id' for 'member' (may be NULL) at wall time 'now'. SM_ERR_REPLAY
 * if seen, SM_ERR_UNAVAIL if the cache or the member's share is full. */
static int
replay_check(struct env_replay *rc, const uint8_t id[ENV_REQID_LEN],
    const uint8_t *member, uint64_t now)
{
	struct replay_member *mb = NULL;
	struct replay_gen *cur;
	size_t slot = 0, unused;

	replay_age(rc, now);
	cur = &rc->gen[rc->cur];
	if (gen_has(rc, &rc->gen[rc->cur ^ 1], id, &unused) ||
	    gen_has(rc, cur, id, &slot))
		return SM_ERR_REPLAY;
	if (cur->count >= rc->max)
		return SM_ERR_UNAVAIL;
	if (member != NULL) {
		/* A member may always hold its share. Beyond it, only while
		 * both it and the cache hold less than half the cache: a busy
		 * member alone (one gateway in front of many users) is not
		 * held to 1/16, and a flooder never takes more than half. */
		if ((mb = gen_member(rc, cur, member)) == NULL ||
		    (mb->count >= rc->member_max &&
			(mb->count >= rc->max / 2 ||
			    cur->count >= rc->max / 2)))
			return SM_ERR_UNAVAIL;
		if (mb->count == 0) {
			memcpy(mb->id, member, ENV_NODE_ID_LEN);
			cur->nmembers++;
		}
		mb->count++;
	}
	memcpy(cur->ids[slot], id, ENV_REQID_LEN);
	cur->used[slot] = 1;
	cur->count++;
	return 0;
}

/* --- open --- */

/* Check the decrypted plaintext; on success 'http' holds only the request. */
static int
check_inner(struct buf *http, struct env_session *s,
    const uint8_t self_id[ENV_NODE_ID_LEN], struct env_replay *rc,
    const uint8_t *member, uint64_t now)
{
	const uint8_t *pt = buf_data(http);
	size_t pt_len = http->len, n;
	uint64_t ts, skew;
	int r;

	if ((pt[0] & ~ENV_F_KNOWN) != 0)
		return SM_ERR_UNSUPP;
	n = sm_get_be32(pt + 57);
	if (n == 0 || n > ENV_HTTP_MAX ||
	    env_bucket(ENV_INNER_LEN + n) != pt_len)
		return SM_ERR_PROTO;
	if (!sodium_is_zero(pt + ENV_INNER_LEN + n, pt_len - ENV_INNER_LEN - n))
		return SM_ERR_PROTO;
	if (memcmp(pt + 25, self_id, ENV_NODE_ID_LEN) != 0) /* public */
		return SM_ERR_PERM;
	ts = sm_get_be64(pt + 17);
	skew = ts > now ? ts - now : now - ts;
	if (skew > rc->window)
		return SM_ERR_STALE;
	if ((r = replay_check(rc, pt + 1, member, now)) != 0)
		return r;
	memcpy(s->request_id, pt + 1, ENV_REQID_LEN);
	s->timestamp = ts;
	s->flags = pt[0];
	/* Drop the inner header (wiped) and the padding: no copy. */
	buf_consume(http, ENV_INNER_LEN);
	http->len = n;
	return 0;
}

int
env_open_request(struct buf *http, struct env_session *s, struct infkey *keys,
    const uint8_t self_id[ENV_NODE_ID_LEN], struct env_replay *rc,
    const uint8_t *in, size_t len, uint64_t now)
{
	return env_open_request_from(
	    http, s, keys, self_id, rc, NULL, in, len, now);
}

int
env_open_request_from(struct buf *http, struct env_session *s,
    struct infkey *keys, const uint8_t self_id[ENV_NODE_ID_LEN],
    struct env_replay *rc, const uint8_t *member, const uint8_t *in, size_t len,
    uint64_t now)
{
	uint8_t k[INFKEY_SHARED_LEN], kn[REQ_KN_LEN], host_pk[INFKEY_PK_LEN];
	size_t total, pt_len, hl;
	int r;

	buf_init(http, ENV_PT_MAX);
	env_session_clear(s);
	if ((r = env_peek(&total, in, len)) != 0) {
		if (r == SM_ERR_AGAIN)
			r = SM_ERR_PROTO;
		goto out;
	}
	if (total != len) {
		r = SM_ERR_PROTO;
		goto out;
	}
	hl = hdr_len(in[1]);
	pt_len = len - hl - ENV_MAC_LEN;
	/* Version 2 reuses ephemeral keys: its K may be cached. */
	r = in[1] == ENV_VERSION_2
	    ? infkey_shared_cached(
		  keys, sm_get_be32(in + 2), in + ENV_EPH_OFF, k, host_pk)
	    : infkey_shared(
		  keys, sm_get_be32(in + 2), in + ENV_EPH_OFF, k, host_pk);
	if (r != 0)
		goto out;
	kdf(kn, sizeof(kn), KDF_REQ, k, in, host_pk, NULL, 0);
	if ((r = buf_reserve(http, pt_len)) != 0)
		goto out;
	if (crypto_secretbox_open_easy(buf_tail(http), in + hl,
		ENV_MAC_LEN + pt_len, kn + crypto_secretbox_KEYBYTES,
		kn) != 0) {
		r = SM_ERR_DECRYPT;
		goto out;
	}
	buf_advance(http, pt_len);
	if ((r = check_inner(http, s, self_id, rc, member, now)) != 0)
		goto out;
	kdf(s->rkey, RS_KEY_LEN, KDF_H2C, k, in, host_pk, s->request_id,
	    ENV_REQID_LEN);
out:
	sodium_memzero(k, sizeof(k));
	sodium_memzero(kn, sizeof(kn));
	if (r != 0) {
		buf_clear(http);
		env_session_clear(s);
	}
	return r;
}
