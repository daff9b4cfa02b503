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

/* Keyed BLAKE2b with a 16-byte personal label over hdr || host_pk || extra. */
static void
kdf(uint8_t *out, size_t outlen, const char *label,
    const uint8_t k[INFKEY_SHARED_LEN], const uint8_t hdr[ENV_HDR_LEN],
    const uint8_t host_pk[INFKEY_PK_LEN], const uint8_t *extra,
    size_t extra_len)
{
	static const uint8_t salt[crypto_generichash_blake2b_SALTBYTES];
	uint8_t msg[ENV_HDR_LEN + INFKEY_PK_LEN + ENV_REQID_LEN];
	size_t n = ENV_HDR_LEN + INFKEY_PK_LEN;

	memcpy(msg, hdr, ENV_HDR_LEN);
	memcpy(msg + ENV_HDR_LEN, host_pk, INFKEY_PK_LEN);
	if (extra_len > 0) {
		memcpy(msg + n, extra, extra_len);
		n += extra_len;
	}
	crypto_generichash_blake2b_salt_personal(out, outlen, msg, n, k,
	    INFKEY_SHARED_LEN, salt, (const uint8_t *)label);
	sodium_memzero(msg, sizeof(msg));
}

/*
 * Reserve room in 'wire' and write the cleartext header for a 'pt_len'
 * plaintext. Returns a pointer to the header; the plaintext goes at
 * hdr + ENV_HDR_LEN + ENV_MAC_LEN. Nothing is marked as data yet.
 */
static int
seal_begin(uint8_t **hdr, struct buf *wire, const struct env_target *t,
    const uint8_t eph_sk[ENV_EPH_SK_LEN], size_t pt_len)
{
	uint8_t *h;
	int r;

	*hdr = NULL;
	if ((r = buf_reserve(wire, ENV_HDR_LEN + ENV_MAC_LEN + pt_len)) != 0)
		return r;
	h = buf_tail(wire);
	h[0] = ENV_MAGIC;
	h[1] = ENV_VERSION;
	sm_put_be32(h + 2, t->key.epoch);
	crypto_scalarmult_base(h + ENV_EPH_OFF, eph_sk);
	sm_put_be32(h + ENV_BODYLEN_OFF, (uint32_t)(ENV_MAC_LEN + pt_len));
	*hdr = h;
	return 0;
}

/*
 * Box the plaintext in place after the header, derive the response key
 * into 'rkey' when 'request_id' is given, and mark the envelope as data.
 * On failure wipes the plaintext and leaves 'wire' as it was.
 */
static int
seal_finish(struct buf *wire, uint8_t *hdr, size_t pt_len,
    const struct env_target *t, const uint8_t eph_sk[ENV_EPH_SK_LEN],
    const uint8_t *request_id, uint8_t rkey[RS_KEY_LEN])
{
	uint8_t k[INFKEY_SHARED_LEN], kn[REQ_KN_LEN];
	uint8_t *body = hdr + ENV_HDR_LEN;
	int r = SM_ERR_INVAL;

	/* X25519 + HSalsa20; refuses a low-order host key. */
	if (crypto_box_beforenm(k, t->key.pk, eph_sk) != 0) {
		sodium_memzero(hdr, ENV_HDR_LEN + ENV_MAC_LEN + pt_len);
		goto out;
	}
	kdf(kn, sizeof(kn), KDF_REQ, k, hdr, t->key.pk, NULL, 0);
	/* In place: libsodium allows c and m to overlap. */
	crypto_secretbox_easy(body, body + ENV_MAC_LEN, pt_len,
	    kn + crypto_secretbox_KEYBYTES, kn);
	if (request_id != NULL)
		kdf(rkey, RS_KEY_LEN, KDF_H2C, k, hdr, t->key.pk, request_id,
		    ENV_REQID_LEN);
	buf_advance(wire, ENV_HDR_LEN + ENV_MAC_LEN + pt_len);
	r = 0;
out:
	sodium_memzero(k, sizeof(k));
	sodium_memzero(kn, sizeof(kn));
	return r;
}

int
env_seal_request_det(struct buf *wire, struct env_session *s,
    const struct env_target *t, const uint8_t *http, size_t http_len,
    uint64_t now, const uint8_t eph_sk[ENV_EPH_SK_LEN],
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
	pt_len = env_bucket(ENV_INNER_LEN + http_len);
	if ((r = seal_begin(&hdr, wire, t, eph_sk, pt_len)) != 0)
		goto out;
	pt = hdr + ENV_HDR_LEN + ENV_MAC_LEN;
	pt[0] = 0; /* flags */
	memcpy(pt + 1, request_id, ENV_REQID_LEN);
	sm_put_be64(pt + 17, now);
	memcpy(pt + 25, t->node_id, ENV_NODE_ID_LEN);
	sm_put_be32(pt + 57, (uint32_t)http_len);
	memcpy(pt + ENV_INNER_LEN, http, http_len);
	memset(pt + ENV_INNER_LEN + http_len, 0,
	    pt_len - ENV_INNER_LEN - http_len);
	if ((r = seal_finish(
		 wire, hdr, pt_len, t, eph_sk, request_id, s->rkey)) != 0)
		goto out;
	memcpy(s->request_id, request_id, ENV_REQID_LEN);
	s->timestamp = now;
out:
	if (r != 0)
		env_session_clear(s);
	return r;
}

int
env_seal_request(struct buf *wire, struct env_session *s,
    const struct env_target *t, const uint8_t *http, size_t http_len,
    uint64_t now)
{
	uint8_t eph_sk[ENV_EPH_SK_LEN], id[ENV_REQID_LEN];
	int r;

	randombytes_buf(eph_sk, sizeof(eph_sk));
	randombytes_buf(id, sizeof(id));
	r = env_seal_request_det(wire, s, t, http, http_len, now, eph_sk, id);
	sodium_memzero(eph_sk, sizeof(eph_sk));
	sodium_memzero(id, sizeof(id));
	return r;
}

int
env_seal_raw_det(struct buf *wire, const struct env_target *t,
    const uint8_t eph_sk[ENV_EPH_SK_LEN], const uint8_t *pt, size_t pt_len)
{
	uint8_t *hdr;
	int r;

	if (pt_len > ENV_PT_MAX)
		return SM_ERR_TOOBIG;
	if ((r = seal_begin(&hdr, wire, t, eph_sk, pt_len)) != 0)
		return r;
	if (pt_len > 0)
		memcpy(hdr + ENV_HDR_LEN + ENV_MAC_LEN, pt, pt_len);
	return seal_finish(wire, hdr, pt_len, t, eph_sk, NULL, NULL);
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

	*total = 0;
	if (len >= 1 && in[0] != ENV_MAGIC)
		return SM_ERR_PROTO;
	if (len >= 2 && in[1] != ENV_VERSION)
		return SM_ERR_UNSUPP;
	if (len < ENV_HDR_LEN)
		return SM_ERR_AGAIN;
	body = sm_get_be32(in + ENV_BODYLEN_OFF);
	if (body < ENV_MAC_LEN || !is_bucket(body - ENV_MAC_LEN))
		return SM_ERR_PROTO;
	*total = ENV_HDR_LEN + (size_t)body;
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
		if ((mb = gen_member(rc, cur, member)) == NULL ||
		    mb->count >= rc->member_max)
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

	if (pt[0] != 0)
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
	/* Drop the inner header (wiped) and the padding: no copy. */
	buf_consume(http, ENV_INNER_LEN);
	http->len = n;
	return 0;
}

int
env_open_request(struct buf *http, struct env_session *s,
    const struct infkey *keys, const uint8_t self_id[ENV_NODE_ID_LEN],
    struct env_replay *rc, const uint8_t *in, size_t len, uint64_t now)
{
	return env_open_request_from(
	    http, s, keys, self_id, rc, NULL, in, len, now);
}

int
env_open_request_from(struct buf *http, struct env_session *s,
    const struct infkey *keys, const uint8_t self_id[ENV_NODE_ID_LEN],
    struct env_replay *rc, const uint8_t *member, const uint8_t *in, size_t len,
    uint64_t now)
{
	uint8_t k[INFKEY_SHARED_LEN], kn[REQ_KN_LEN], host_pk[INFKEY_PK_LEN];
	size_t total, pt_len;
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
	pt_len = len - ENV_HDR_LEN - ENV_MAC_LEN;
	if ((r = infkey_shared(
		 keys, sm_get_be32(in + 2), in + ENV_EPH_OFF, k, host_pk)) != 0)
		goto out;
	kdf(kn, sizeof(kn), KDF_REQ, k, in, host_pk, NULL, 0);
	if ((r = buf_reserve(http, pt_len)) != 0)
		goto out;
	if (crypto_secretbox_open_easy(buf_tail(http), in + ENV_HDR_LEN,
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
