#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "mesh/gossip.h"
#include "proto/mesh.pb-c.h"

#define GOSSIP_V2_MAX_FIELDS                                                   \
	(GOSSIP_MAX_ANNOUNCEMENTS + GOSSIP_MAX_ENTRIES + GOSSIP_MAX_WANT +     \
	    GOSSIP_MAX_REVOCATIONS + 16)

uint64_t
gossip_refresh_ms(uint64_t interval_ms)
{
	uint64_t r = interval_ms * GOSSIP_REFRESH_INTERVALS;

	return r < GOSSIP_REFRESH_MS ? r : GOSSIP_REFRESH_MS;
}

static void
put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t
get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

void
gossip_entry_hash(
    const uint8_t id[ID_PK_LEN], uint64_t seq, uint8_t out[GOSSIP_HASH_LEN])
{
	uint8_t in[sizeof(GOSSIP_HASH_DOMAIN) + GOSSIP_ENTRY_LEN];

	memcpy(in, GOSSIP_HASH_DOMAIN, sizeof(GOSSIP_HASH_DOMAIN));
	memcpy(in + sizeof(GOSSIP_HASH_DOMAIN), id, ID_PK_LEN);
	put_be64(in + sizeof(GOSSIP_HASH_DOMAIN) + ID_PK_LEN, seq);
	crypto_generichash(out, GOSSIP_HASH_LEN, in, sizeof(in), NULL, 0);
}

void
gossip_digest_xor(struct gossip_digest *d, const uint8_t id[ID_PK_LEN],
    const uint8_t h[GOSSIP_HASH_LEN])
{
	uint8_t *b = d->b[gossip_bucket_of(id)];

	for (size_t i = 0; i < GOSSIP_HASH_LEN; i++)
		b[i] ^= h[i];
}

void
gossip_digest_root(const struct gossip_digest *d, uint8_t out[GOSSIP_HASH_LEN])
{
	memset(out, 0, GOSSIP_HASH_LEN);
	for (size_t b = 0; b < GOSSIP_BUCKETS; b++)
		for (size_t i = 0; i < GOSSIP_HASH_LEN; i++)
			out[i] ^= d->b[b][i];
}

/* --- wire ----------------------------------------------------------------- */

int
gossip_msg_write(const struct gossip_msg *m, struct buf *out)
{
	Sealmesh__GossipMessage gm = SEALMESH__GOSSIP_MESSAGE__INIT;
	ProtobufCBinaryData *items = NULL, *ents = NULL, *want = NULL,
			    *revs = NULL;
	uint8_t *ebytes = NULL;
	size_t i;
	int r = SM_ERR_INVAL;

	if (m->n_items > GOSSIP_MAX_ANNOUNCEMENTS ||
	    m->n_entries > GOSSIP_MAX_ENTRIES || m->n_want > GOSSIP_MAX_WANT ||
	    m->n_bucket_ids > GOSSIP_BUCKETS ||
	    m->n_revs > GOSSIP_MAX_REVOCATIONS)
		goto out;
	r = SM_ERR_NOMEM;
	if (m->n_revs > 0 && (revs = calloc(m->n_revs, sizeof(*revs))) == NULL)
		goto out;
	for (i = 0; i < m->n_revs; i++) {
		r = SM_ERR_INVAL;
		if (m->rev_lens[i] == 0 ||
		    m->rev_lens[i] > GOSSIP_REVOCATION_MAX_LEN)
			goto out;
		revs[i].data = (uint8_t *)m->revs[i];
		revs[i].len = m->rev_lens[i];
	}
	r = SM_ERR_NOMEM;
	if ((m->n_items > 0 &&
		(items = calloc(m->n_items, sizeof(*items))) == NULL) ||
	    (m->n_entries > 0 &&
		((ents = calloc(m->n_entries, sizeof(*ents))) == NULL ||
		    (ebytes = malloc(m->n_entries * GOSSIP_ENTRY_LEN)) ==
			NULL)) ||
	    (m->n_want > 0 &&
		(want = calloc(m->n_want, sizeof(*want))) == NULL))
		goto out;
	for (i = 0; i < m->n_items; i++) {
		r = SM_ERR_INVAL;
		if (m->lens[i] == 0 || m->lens[i] > ANN_MAX_LEN)
			goto out;
		items[i].data = (uint8_t *)m->items[i];
		items[i].len = m->lens[i];
	}
	for (i = 0; i < m->n_entries; i++) {
		uint8_t *e = ebytes + i * GOSSIP_ENTRY_LEN;

		memcpy(e, m->entries[i].id, ID_PK_LEN);
		put_be64(e + ID_PK_LEN, m->entries[i].seq);
		ents[i].data = e;
		ents[i].len = GOSSIP_ENTRY_LEN;
	}
	for (i = 0; i < m->n_want; i++) {
		want[i].data = (uint8_t *)m->want[i];
		want[i].len = ID_PK_LEN;
	}
	gm.n_announcements = m->n_items;
	gm.announcements = items;
	gm.has_request_full = m->request_full;
	gm.request_full = m->request_full;
	gm.has_version = m->version != 0;
	gm.version = m->version;
	gm.has_root = m->has_root;
	gm.root.data = (uint8_t *)m->root;
	gm.root.len = GOSSIP_HASH_LEN;
	gm.has_buckets = m->buckets != NULL;
	gm.buckets.data = (uint8_t *)m->buckets;
	gm.buckets.len = GOSSIP_BUCKETS_LEN;
	gm.has_bucket_ids = m->n_bucket_ids > 0;
	gm.bucket_ids.data = (uint8_t *)m->bucket_ids;
	gm.bucket_ids.len = m->n_bucket_ids;
	gm.n_entries = m->n_entries;
	gm.entries = ents;
	gm.n_want = m->n_want;
	gm.want = want;
	gm.n_revocations = m->n_revs;
	gm.revocations = revs;
	r = announce_pb_append(out, &gm.base, GOSSIP_MAX_LEN);
out:
	free(items);
	free(ents);
	free(ebytes);
	free(want);
	free(revs);
	return r;
}

void
gossip_msg_free(struct gossip_msg *m)
{
	if (m == NULL)
		return;
	if (m->priv_ != NULL)
		sealmesh__gossip_message__free_unpacked(m->priv_, NULL);
	free((void *)m->entries);
	free((void *)m->want);
	free((void *)m->items);
	free((void *)m->lens);
	free((void *)m->revs);
	free((void *)m->rev_lens);
	memset(m, 0, sizeof(*m));
}

int
gossip_msg_parse(const uint8_t *p, size_t len, struct gossip_msg *out)
{
	Sealmesh__GossipMessage *gm;
	struct gossip_entry *ents = NULL;
	uint8_t(*want)[ID_PK_LEN] = NULL;
	const uint8_t **items = NULL;
	size_t *lens = NULL, i;
	int r = SM_ERR_TOOBIG;

	memset(out, 0, sizeof(*out));
	if (len > GOSSIP_MAX_LEN || (len > 0 && p == NULL))
		goto out;
	r = SM_ERR_PROTO;
	if (announce_scan_fields(p, len, GOSSIP_V2_MAX_FIELDS) != 0)
		goto out;
	if ((gm = sealmesh__gossip_message__unpack(NULL, len, p)) == NULL)
		goto out;
	out->priv_ = gm;
	if (gm->n_announcements > GOSSIP_MAX_ANNOUNCEMENTS ||
	    gm->n_entries > GOSSIP_MAX_ENTRIES ||
	    gm->n_want > GOSSIP_MAX_WANT ||
	    gm->n_revocations > GOSSIP_MAX_REVOCATIONS)
		goto out;
	if ((gm->has_root && gm->root.len != GOSSIP_HASH_LEN) ||
	    (gm->has_buckets && gm->buckets.len != GOSSIP_BUCKETS_LEN) ||
	    (gm->has_bucket_ids && gm->bucket_ids.len > GOSSIP_BUCKETS))
		goto out;
	out->version = gm->has_version ? gm->version : 0;
	out->request_full = gm->has_request_full && gm->request_full;
	if (gm->has_root) {
		out->has_root = true;
		memcpy(out->root, gm->root.data, GOSSIP_HASH_LEN);
	}
	if (gm->has_buckets)
		out->buckets = gm->buckets.data;
	if (gm->has_bucket_ids && gm->bucket_ids.len > 0) {
		out->bucket_ids = gm->bucket_ids.data;
		out->n_bucket_ids = gm->bucket_ids.len;
	}
	r = SM_ERR_NOMEM;
	if ((gm->n_entries > 0 &&
		(ents = calloc(gm->n_entries, sizeof(*ents))) == NULL) ||
	    (gm->n_want > 0 &&
		(want = calloc(gm->n_want, ID_PK_LEN)) == NULL) ||
	    (gm->n_announcements > 0 &&
		((items = calloc(gm->n_announcements, sizeof(*items))) ==
			NULL ||
		    (lens = calloc(gm->n_announcements, sizeof(*lens))) ==
			NULL))) {
		free(ents);
		free(want);
		free(items);
		free(lens);
		goto out;
	}
	out->entries = ents;
	out->want = (const uint8_t(*)[ID_PK_LEN])want;
	out->items = items;
	out->lens = lens;
	r = SM_ERR_PROTO;
	for (i = 0; i < gm->n_entries; i++) {
		if (gm->entries[i].len != GOSSIP_ENTRY_LEN)
			goto out;
		memcpy(ents[i].id, gm->entries[i].data, ID_PK_LEN);
		ents[i].seq = get_be64(gm->entries[i].data + ID_PK_LEN);
	}
	out->n_entries = gm->n_entries;
	for (i = 0; i < gm->n_want; i++) {
		if (gm->want[i].len != ID_PK_LEN)
			goto out;
		memcpy(want[i], gm->want[i].data, ID_PK_LEN);
	}
	out->n_want = gm->n_want;
	for (i = 0; i < gm->n_announcements; i++) {
		if (gm->announcements[i].len == 0 ||
		    gm->announcements[i].len > ANN_MAX_LEN)
			goto out;
		items[i] = gm->announcements[i].data;
		lens[i] = gm->announcements[i].len;
	}
	out->n_items = gm->n_announcements;
	if (gm->n_revocations > 0) {
		const uint8_t **rv;
		size_t *rl;

		r = SM_ERR_NOMEM;
		rv = calloc(gm->n_revocations, sizeof(*rv));
		rl = calloc(gm->n_revocations, sizeof(*rl));
		out->revs = rv;
		out->rev_lens = rl;
		if (rv == NULL || rl == NULL)
			goto out;
		r = SM_ERR_PROTO;
		for (i = 0; i < gm->n_revocations; i++) {
			if (gm->revocations[i].len == 0 ||
			    gm->revocations[i].len > GOSSIP_REVOCATION_MAX_LEN)
				goto out;
			rv[i] = gm->revocations[i].data;
			rl[i] = gm->revocations[i].len;
		}
		out->n_revs = gm->n_revocations;
	}
	r = 0;
out:
	if (r != 0)
		gossip_msg_free(out);
	return r;
}

/* --- the exchange ----------------------------------------------------------
 */

int
gossip_open(const struct gossip_store *s, const uint8_t *mine, size_t mine_len,
    struct buf *out)
{
	return gossip_open_revs(s, mine, mine_len, NULL, NULL, 0, out);
}

int
gossip_open_revs(const struct gossip_store *s, const uint8_t *mine,
    size_t mine_len, const uint8_t *const *revs, const size_t *rev_lens,
    size_t n_revs, struct buf *out)
{
	struct gossip_msg m;

	memset(&m, 0, sizeof(m));
	m.version = GOSSIP_VERSION;
	m.has_root = true;
	if (mine != NULL) {
		m.items = &mine;
		m.lens = &mine_len;
		m.n_items = 1;
	}
	m.revs = revs;
	m.rev_lens = rev_lens;
	m.n_revs = n_revs;
	gossip_digest_root(s->digest(s->arg), m.root);
	return gossip_msg_write(&m, out);
}

static int
by_entry_id(const void *x, const void *y)
{
	return memcmp(((const struct gossip_entry *)x)->id,
	    ((const struct gossip_entry *)y)->id, ID_PK_LEN);
}

/* An answer under construction: growable arrays, bounded by the limits. */
struct answer {
	const uint8_t **items;
	size_t *lens;
	size_t n_items, ann_bytes;
	uint8_t (*want)[ID_PK_LEN];
	size_t n_want;
	struct gossip_entry *entries;
	size_t n_entries;
	uint8_t bucket_ids[GOSSIP_BUCKETS];
	size_t n_bucket_ids;
	bool send_buckets;
};

static void
add_item(
    const struct gossip_store *s, struct answer *a, const uint8_t id[ID_PK_LEN])
{
	const uint8_t *p;
	size_t len;

	if (a->n_items >= GOSSIP_MAX_ANNOUNCEMENTS ||
	    !s->wire(s->arg, id, &p, &len) || len == 0 || len > ANN_MAX_LEN ||
	    a->ann_bytes + len > GOSSIP_ANN_BUDGET)
		return;
	for (size_t i = 0; i < a->n_items; i++)
		if (a->items[i] == p)
			return; /* asked twice */
	a->items[a->n_items] = p;
	a->lens[a->n_items++] = len;
	a->ann_bytes += len;
}

static void
add_want(struct answer *a, const uint8_t id[ID_PK_LEN])
{
	if (a->n_want < GOSSIP_MAX_WANT)
		memcpy(a->want[a->n_want++], id, ID_PK_LEN);
}

/* Compare the complete buckets the other side listed with ours. */
static int
diff_entries(
    const struct gossip_store *s, const struct gossip_msg *in, struct answer *a)
{
	struct gossip_entry *theirs = NULL, *mine = NULL, key;
	bool seen[GOSSIP_BUCKETS] = {false};
	size_t i, j, n_mine;
	int r = SM_ERR_NOMEM;

	if (in->n_entries > 0) {
		if ((theirs = malloc(in->n_entries * sizeof(*theirs))) == NULL)
			goto out;
		memcpy(theirs, in->entries, in->n_entries * sizeof(*theirs));
		qsort(theirs, in->n_entries, sizeof(*theirs), by_entry_id);
	}
	if ((mine = malloc(GOSSIP_MAX_ENTRIES * sizeof(*mine))) == NULL)
		goto out;
	/* What they hold newer than we do (or we lack): ask for it. */
	for (i = 0; i < in->n_entries; i++) {
		const struct gossip_entry *e = &in->entries[i];
		bool listed = false;

		for (j = 0; j < in->n_bucket_ids && !listed; j++)
			listed = in->bucket_ids[j] == gossip_bucket_of(e->id);
		if (listed && e->seq > s->seq_of(s->arg, e->id))
			add_want(a, e->id);
	}
	/* What we hold newer (or they lack): send it. */
	for (j = 0; j < in->n_bucket_ids; j++) {
		unsigned b = in->bucket_ids[j];

		if (seen[b])
			continue;
		seen[b] = true;
		n_mine = s->bucket(s->arg, b, mine, GOSSIP_MAX_ENTRIES);
		if (n_mine > GOSSIP_MAX_ENTRIES)
			n_mine = GOSSIP_MAX_ENTRIES;
		for (i = 0; i < n_mine; i++) {
			const struct gossip_entry *t = NULL;

			key = mine[i];
			if (theirs != NULL)
				t = bsearch(&key, theirs, in->n_entries,
				    sizeof(*theirs), by_entry_id);
			if (t == NULL || t->seq < mine[i].seq)
				add_item(s, a, mine[i].id);
		}
	}
	r = 0;
out:
	free(theirs);
	free(mine);
	return r;
}

/* Our entries of the buckets whose digests differ from theirs. */
static void
diff_buckets(
    const struct gossip_store *s, const uint8_t *theirs, struct answer *a)
{
	const struct gossip_digest *d = s->digest(s->arg);

	for (unsigned b = 0; b < GOSSIP_BUCKETS; b++) {
		size_t n;

		if (sodium_memcmp(d->b[b], theirs + b * GOSSIP_HASH_LEN,
			GOSSIP_HASH_LEN) == 0)
			continue;
		n = s->bucket(s->arg, b, a->entries + a->n_entries,
		    GOSSIP_MAX_ENTRIES - a->n_entries);
		if (a->n_entries + n > GOSSIP_MAX_ENTRIES)
			break; /* the rest on a later contact */
		a->n_entries += n;
		a->bucket_ids[a->n_bucket_ids++] = (uint8_t)b;
	}
}

int
gossip_answer(const struct gossip_store *s, const struct gossip_msg *in,
    struct buf *out, bool *more)
{
	struct gossip_msg m;
	struct answer a;
	uint8_t root[GOSSIP_HASH_LEN];
	int r = SM_ERR_NOMEM;

	*more = false;
	memset(&a, 0, sizeof(a));
	memset(&m, 0, sizeof(m));
	if ((a.items = calloc(GOSSIP_MAX_ANNOUNCEMENTS, sizeof(*a.items))) ==
		NULL ||
	    (a.lens = calloc(GOSSIP_MAX_ANNOUNCEMENTS, sizeof(*a.lens))) ==
		NULL ||
	    (a.want = calloc(GOSSIP_MAX_WANT, ID_PK_LEN)) == NULL)
		goto out;
	for (size_t i = 0; i < in->n_want; i++)
		add_item(s, &a, in->want[i]);
	if (in->n_bucket_ids > 0 && (r = diff_entries(s, in, &a)) != 0)
		goto out;
	if (in->buckets != NULL) {
		r = SM_ERR_NOMEM;
		if ((a.entries = calloc(
			 GOSSIP_MAX_ENTRIES, sizeof(*a.entries))) == NULL)
			goto out;
		diff_buckets(s, in->buckets, &a);
	}
	if (in->has_root) {
		gossip_digest_root(s->digest(s->arg), root);
		a.send_buckets =
		    sodium_memcmp(root, in->root, GOSSIP_HASH_LEN) != 0;
	}
	m.version = GOSSIP_VERSION;
	m.items = a.items;
	m.lens = a.lens;
	m.n_items = a.n_items;
	m.want = (const uint8_t(*)[ID_PK_LEN])a.want;
	m.n_want = a.n_want;
	m.entries = a.entries;
	m.n_entries = a.n_entries;
	m.bucket_ids = a.bucket_ids;
	m.n_bucket_ids = a.n_bucket_ids;
	if (a.send_buckets)
		m.buckets = &s->digest(s->arg)->b[0][0];
	r = gossip_msg_write(&m, out);
	*more = r == 0 &&
	    (m.n_items > 0 || m.n_want > 0 || m.n_bucket_ids > 0 ||
		m.buckets != NULL);
out:
	free(a.items);
	free(a.lens);
	free(a.want);
	free(a.entries);
	return r;
}

/* --- a store over the peer table ------------------------------------------
 */

/* In the set: what v1 gossip forwards (peers_collect). */
static bool
in_set(const struct peer *p)
{
	return p->state == PEER_ALIVE ||
	    (p->state == PEER_GONE && p->ann.leaving);
}

static int
by_peer_id(const void *x, const void *y)
{
	return memcmp((*(const struct peer *const *)x)->ann.id,
	    (*(const struct peer *const *)y)->ann.id, ID_PK_LEN);
}

void
gossip_peers_clear(struct gossip_peers *gp)
{
	free(gp->idx);
	gp->idx = NULL;
}

void
gossip_peers_init(struct gossip_peers *gp, const struct peers *t,
    const uint8_t self[ID_PK_LEN], uint64_t self_seq, const uint8_t *self_wire,
    size_t self_len)
{
	uint8_t h[GOSSIP_HASH_LEN];

	memset(gp, 0, sizeof(*gp));
	gp->t = t;
	memcpy(gp->self, self, ID_PK_LEN);
	gp->self_seq = self_seq;
	gp->self_wire = self_wire;
	gp->self_len = self_len;
	if (self_wire != NULL) {
		gossip_entry_hash(self, self_seq, h);
		gossip_digest_xor(&gp->d, self, h);
	}
	for (size_t i = 0; i < t->n; i++) {
		const struct peer *p = t->v[i];

		if (!in_set(p))
			continue;
		gossip_entry_hash(p->ann.id, p->ann.seq, h);
		gossip_digest_xor(&gp->d, p->ann.id, h);
	}
	if (t->n > 0 && (gp->idx = malloc(t->n * sizeof(*gp->idx))) != NULL) {
		memcpy(gp->idx, t->v, t->n * sizeof(*gp->idx));
		qsort(gp->idx, t->n, sizeof(*gp->idx), by_peer_id);
	}
}

/* The first index entry whose id is >= key[0..klen). */
static size_t
idx_lower(const struct gossip_peers *gp, const uint8_t *key, size_t klen)
{
	size_t lo = 0, hi = gp->t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(gp->idx[mid]->ann.id, key, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const struct gossip_digest *
gp_digest(void *arg)
{
	return &((struct gossip_peers *)arg)->d;
}

static size_t
gp_bucket(void *arg, unsigned b, struct gossip_entry *out, size_t max)
{
	struct gossip_peers *gp = arg;
	size_t n = 0;

	if (gp->self_wire != NULL && gossip_bucket_of(gp->self) == b) {
		if (n < max) {
			memcpy(out[n].id, gp->self, ID_PK_LEN);
			out[n].seq = gp->self_seq;
		}
		n++;
	}
	uint8_t first = (uint8_t)b;
	size_t i = gp->idx != NULL ? idx_lower(gp, &first, 1) : 0;

	for (; i < gp->t->n; i++) {
		const struct peer *p =
		    gp->idx != NULL ? gp->idx[i] : gp->t->v[i];

		if (gossip_bucket_of(p->ann.id) != b) {
			if (gp->idx != NULL)
				break; /* sorted: the bucket is over */
			continue;
		}
		if (!in_set(p))
			continue;
		if (n < max) {
			memcpy(out[n].id, p->ann.id, ID_PK_LEN);
			out[n].seq = p->ann.seq;
		}
		n++;
	}
	return n;
}

static const struct peer *
gp_lookup(const struct gossip_peers *gp, const uint8_t id[ID_PK_LEN])
{
	if (gp->idx != NULL) {
		size_t i = idx_lower(gp, id, ID_PK_LEN);

		return i < gp->t->n &&
			memcmp(gp->idx[i]->ann.id, id, ID_PK_LEN) == 0
		    ? gp->idx[i]
		    : NULL;
	}
	for (size_t i = 0; i < gp->t->n; i++)
		if (memcmp(gp->t->v[i]->ann.id, id, ID_PK_LEN) == 0)
			return gp->t->v[i];
	return NULL;
}

static uint64_t
gp_seq_of(void *arg, const uint8_t id[ID_PK_LEN])
{
	struct gossip_peers *gp = arg;
	const struct peer *p;

	if (memcmp(id, gp->self, ID_PK_LEN) == 0)
		return UINT64_MAX; /* never ask for ourselves */
	p = gp_lookup(gp, id);
	return p != NULL ? p->ann.seq : 0;
}

static bool
gp_wire(void *arg, const uint8_t id[ID_PK_LEN], const uint8_t **p, size_t *len)
{
	struct gossip_peers *gp = arg;
	const struct peer *pe;

	if (memcmp(id, gp->self, ID_PK_LEN) == 0) {
		*p = gp->self_wire;
		*len = gp->self_len;
		return gp->self_wire != NULL;
	}
	if ((pe = gp_lookup(gp, id)) == NULL || !in_set(pe) ||
	    pe->ann.wire == NULL)
		return false;
	*p = pe->ann.wire;
	*len = pe->ann.wire_len;
	return true;
}

void
gossip_peers_store(struct gossip_peers *gp, struct gossip_store *s)
{
	s->arg = gp;
	s->digest = gp_digest;
	s->bucket = gp_bucket;
	s->seq_of = gp_seq_of;
	s->wire = gp_wire;
}
