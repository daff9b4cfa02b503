#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/util.h"
#include "mesh/announce.h"
#include "mesh/identity.h"
#include "mesh/peers.h"

#define IV 1000 /* gossip interval in the tests, ms */

static uint8_t mesh[ANN_MESH_ID_LEN] = {7};

static void
seeded(struct identity *id, uint32_t n)
{
	uint8_t seed[ID_SEED_LEN] = {0};

	memcpy(seed, &n, sizeof(n));
	memset(id, 0, sizeof(*id));
	assert_non_null(id->sk = sodium_malloc(ID_SK_LEN));
	assert_int_equal(crypto_sign_seed_keypair(id->pk, id->sk, seed), 0);
	sm_hex(id->id_hex, id->pk, ID_PK_LEN);
}

struct opts {
	uint32_t role;
	const char *model;
	bool hosted_known;
	bool leaving;
	bool relay;
	const uint8_t (*linked)[ID_PK_LEN];
	size_t n_linked;
	const uint8_t *mesh_id;
};

/* Sign an announcement by 'id' with 'seq' into 'out' (signed bytes). */
static void
signed_by(const struct identity *id, uint64_t seq, const struct opts *o,
    struct buf *out)
{
	struct announce a;
	const char *models[1];

	memset(&a, 0, sizeof(a));
	memcpy(a.mesh_id, o != NULL && o->mesh_id ? o->mesh_id : mesh,
	    ANN_MESH_ID_LEN);
	a.seq = seq;
	if (o != NULL) {
		a.role = o->role;
		if (o->model != NULL) {
			models[0] = o->model;
			a.serving = a.hosted = models;
			a.n_serving = 1;
			a.n_hosted = o->hosted_known ? 1 : 0;
			a.hosted_known = o->hosted_known;
		}
		a.leaving = o->leaving;
		a.relay_allowed = o->relay;
		a.linked = o->linked;
		a.n_linked = o->n_linked;
	}
	buf_init(out, ANN_MAX_LEN);
	assert_int_equal(announce_sign(&a, id, out), 0);
}

/* Receive the signed bytes as a peer would: verify, then merge. */
static int
receive(struct peers *t, const uint8_t *p, size_t len, uint64_t now,
    enum peer_change *ch)
{
	struct announce a;
	int r;

	assert_int_equal(announce_verify_parse(p, len, &a), 0);
	/* signed just now: the wall clock reads the seq */
	if ((r = peers_merge(t, &a, now, a.seq, ch)) != 0)
		announce_free(&a);
	else
		assert_null(a.wire); /* ownership moved */
	return r;
}

static int
announce_to(struct peers *t, const struct identity *id, uint64_t seq,
    const struct opts *o, uint64_t now, enum peer_change *ch)
{
	struct buf w;
	int r;

	signed_by(id, seq, o, &w);
	r = receive(t, buf_data(&w), w.len, now, ch);
	buf_clear(&w);
	return r;
}

static void
test_merge_seq(void **state)
{
	struct identity self, b;
	struct peers t;
	enum peer_change ch;
	struct peer *p;

	seeded(&self, 1);
	seeded(&b, 2);
	peers_init(&t, self.pk, mesh, IV);
	assert_int_equal(announce_to(&t, &b, 10, NULL, 0, &ch), 0);
	assert_int_equal(ch, PEER_CHANGE_NEW);
	assert_non_null(p = peers_find(&t, b.pk));
	assert_true(p->ann.seq == 10);
	assert_int_equal(p->state, PEER_ALIVE);
	assert_int_equal(p->rtt_ms, -1);
	assert_int_equal(p->link, PEER_LINK_NONE);
	/* equal and older: dropped */
	assert_int_equal(announce_to(&t, &b, 10, NULL, 5, &ch), SM_ERR_STALE);
	assert_int_equal(ch, PEER_CHANGE_NONE);
	assert_int_equal(announce_to(&t, &b, 9, NULL, 5, &ch), SM_ERR_STALE);
	assert_true(p->ann.seq == 10);
	assert_true(p->last_heard_ms == 0);
	/* newer: replaces */
	assert_int_equal(announce_to(&t, &b, 11, NULL, 7, &ch), 0);
	assert_int_equal(ch, PEER_CHANGE_UPDATED);
	assert_ptr_equal(peers_find(&t, b.pk), p);
	assert_true(p->ann.seq == 11);
	assert_true(p->last_heard_ms == 7);
	assert_int_equal(t.n, 1);

	/* never store ourselves; never another mesh */
	assert_int_equal(
	    announce_to(&t, &self, 99, NULL, 0, NULL), SM_ERR_PERM);
	{
		uint8_t other[ANN_MESH_ID_LEN] = {8};
		struct opts o = {.mesh_id = other};
		struct identity c;

		seeded(&c, 3);
		assert_int_equal(
		    announce_to(&t, &c, 1, &o, 0, NULL), SM_ERR_PERM);
		assert_null(peers_find(&t, c.pk));
		identity_clear(&c);
	}
	assert_int_equal(t.n, 1);
	peers_clear(&t);
	assert_int_equal(t.n, 0);
	identity_clear(&self);
	identity_clear(&b);
}

static void
test_stale_and_prune(void **state)
{
	struct opts host = {
	    .role = ANN_ROLE_HOST, .model = "m", .hosted_known = true};
	struct identity self, b;
	struct peers t;
	struct peer *p, *hosts[4];
	const uint8_t *items[4];
	size_t lens[4];

	seeded(&self, 1);
	seeded(&b, 2);
	peers_init(&t, self.pk, mesh, IV);
	assert_int_equal(announce_to(&t, &b, 1, &host, 100, NULL), 0);
	p = peers_find(&t, b.pk);
	assert_int_equal(peers_tick(&t, 100 + 3 * IV - 1), 0);
	assert_int_equal(p->state, PEER_ALIVE);
	assert_int_equal(peers_hosts_for_model(&t, "m", hosts, 4), 1);
	assert_int_equal(peers_collect(&t, items, lens, 4), 1);

	/* a forwarded copy of the same announcement is not news */
	assert_int_equal(
	    announce_to(&t, &b, 1, &host, 100 + 2 * IV, NULL), SM_ERR_STALE);
	assert_int_equal(peers_tick(&t, 100 + 3 * IV), 0);
	assert_int_equal(p->state, PEER_STALE);
	assert_string_equal(peers_state_name(p->state), "stale");
	assert_int_equal(peers_hosts_for_model(&t, "m", hosts, 4), 0);
	assert_int_equal(peers_collect(&t, items, lens, 4), 0);
	assert_ptr_equal(peers_find(&t, b.pk), p); /* still listed */

	/* a newer announcement revives it */
	assert_int_equal(announce_to(&t, &b, 2, &host, 100 + 4 * IV, NULL), 0);
	assert_int_equal(p->state, PEER_ALIVE);
	/* so does a live direct link */
	assert_int_equal(peers_tick(&t, 100 + 8 * IV), 0);
	assert_int_equal(p->state, PEER_STALE);
	assert_int_equal(peers_touch(&t, b.pk, 100 + 8 * IV), 0);
	assert_int_equal(p->state, PEER_ALIVE);
	assert_int_equal(peers_touch(&t, self.pk, 0), SM_ERR_NOTFOUND);

	/* six intervals of silence: gone */
	assert_int_equal(peers_tick(&t, 100 + 14 * IV - 1), 0);
	assert_int_equal(p->state, PEER_STALE);
	assert_int_equal(peers_tick(&t, 100 + 14 * IV), 1);
	assert_null(peers_find(&t, b.pk));
	assert_int_equal(t.n, 0);
	peers_clear(&t);
	identity_clear(&self);
	identity_clear(&b);
}

/* A learns C through B's gossip, and that B relays to C. */
static void
test_transitive_learn(void **state)
{
	struct identity a, b, c;
	struct peers t;
	struct buf wb, wc, g;
	struct announce_msg m;
	struct peer *relays[4], *pb, *pc;
	const uint8_t *items[2];
	size_t lens[2], i;
	uint8_t links[1][ID_PK_LEN];
	struct opts ob = {.role = ANN_ROLE_HOST, .relay = true};
	int r;

	seeded(&a, 1);
	seeded(&b, 2);
	seeded(&c, 3);
	memcpy(links[0], c.pk, ID_PK_LEN);
	ob.linked = (const uint8_t(*)[ID_PK_LEN])links;
	ob.n_linked = 1;
	signed_by(&b, 5, &ob, &wb);
	signed_by(&c, 8, NULL, &wc);
	/* B's gossip to A: its own announcement, then C's as B received it */
	items[0] = buf_data(&wb);
	lens[0] = wb.len;
	items[1] = buf_data(&wc);
	lens[1] = wc.len;
	buf_init(&g, GOSSIP_MAX_LEN);
	assert_int_equal(announce_msg_write(items, lens, 2, false, &g), 0);

	peers_init(&t, a.pk, mesh, IV);
	assert_int_equal(announce_msg_parse(buf_data(&g), g.len, &m), 0);
	for (i = 0; i < m.n; i++) {
		r = receive(&t, m.items[i], m.lens[i], 50, NULL);
		assert_int_equal(r, 0);
	}
	announce_msg_free(&m);
	assert_non_null(pb = peers_find(&t, b.pk));
	assert_non_null(pc = peers_find(&t, c.pk));
	assert_true(pc->ann.seq == 8);
	/* C's bytes are kept exactly, to be passed on */
	assert_int_equal(pc->ann.wire_len, wc.len);
	assert_memory_equal(pc->ann.wire, buf_data(&wc), wc.len);

	/* relay: only once the link layer says B is directly linked */
	assert_int_equal(peers_relays_for(&t, c.pk, relays, 4), 0);
	pb->link = PEER_LINK_DIRECT;
	assert_int_equal(peers_relays_for(&t, c.pk, relays, 4), 1);
	assert_ptr_equal(relays[0], pb);
	assert_int_equal(peers_relays_for(&t, b.pk, relays, 4), 0);

	/* A's own gossip carries both, byte for byte */
	{
		const uint8_t *out[4];
		size_t ol[4], n = peers_collect(&t, out, ol, 4), k;
		bool seen_b = false, seen_c = false;

		assert_int_equal(n, 2);
		for (k = 0; k < n; k++) {
			seen_b |= ol[k] == wb.len &&
			    memcmp(out[k], buf_data(&wb), wb.len) == 0;
			seen_c |= ol[k] == wc.len &&
			    memcmp(out[k], buf_data(&wc), wc.len) == 0;
		}
		assert_true(seen_b && seen_c);
		assert_int_equal(peers_collect(&t, out, ol, 1), 1);
	}
	buf_clear(&g);
	buf_clear(&wb);
	buf_clear(&wc);
	peers_clear(&t);
	identity_clear(&a);
	identity_clear(&b);
	identity_clear(&c);
}

static void
test_leaving(void **state)
{
	struct opts host = {.role = ANN_ROLE_HOST, .model = "m"};
	struct opts bye = {.leaving = true};
	struct identity self, b, c;
	struct peers t;
	struct peer *hosts[2];
	enum peer_change ch;
	const uint8_t *items[4];
	size_t lens[4];

	seeded(&self, 1);
	seeded(&b, 2);
	seeded(&c, 3);
	peers_init(&t, self.pk, mesh, IV);
	assert_int_equal(announce_to(&t, &b, 1, &host, 0, NULL), 0);
	assert_int_equal(announce_to(&t, &c, 1, &host, 0, NULL), 0);
	assert_int_equal(peers_hosts_for_model(&t, "m", hosts, 2), 2);

	/* B says it is leaving (signed): gone at once, news passed on */
	assert_int_equal(announce_to(&t, &b, 2, &bye, 10, &ch), 0);
	assert_int_equal(ch, PEER_CHANGE_LEFT);
	assert_null(peers_find(&t, b.pk));
	assert_int_equal(peers_hosts_for_model(&t, "m", hosts, 2), 1);
	assert_int_equal(peers_collect(&t, items, lens, 4), 2);
	assert_int_equal(peers_touch(&t, b.pk, 11), SM_ERR_NOTFOUND);
	/* an old copy still circulating does not bring it back */
	assert_int_equal(announce_to(&t, &b, 1, &host, 20, NULL), SM_ERR_STALE);
	assert_null(peers_find(&t, b.pk));
	/* a restart (higher seq) does */
	assert_int_equal(announce_to(&t, &b, 3, &host, 30, &ch), 0);
	assert_int_equal(ch, PEER_CHANGE_NEW);
	assert_non_null(peers_find(&t, b.pk));

	/* GOAWAY on C's link: removed at once, not gossiped */
	assert_int_equal(peers_remove(&t, c.pk), 0);
	assert_int_equal(peers_remove(&t, c.pk), SM_ERR_NOTFOUND);
	assert_null(peers_find(&t, c.pk));
	assert_int_equal(peers_collect(&t, items, lens, 4), 1);
	assert_int_equal(peers_hosts_for_model(&t, "m", hosts, 2), 1);
	assert_int_equal(announce_to(&t, &c, 1, &host, 40, NULL), SM_ERR_STALE);
	/* the tombstone is pruned on the usual clock */
	assert_int_equal(peers_tick(&t, 6 * IV), 1);
	assert_int_equal(t.n, 1);
	peers_clear(&t);
	identity_clear(&self);
	identity_clear(&b);
	identity_clear(&c);
}

static void
test_hosts_for_model(void **state)
{
	struct opts host = {
	    .role = ANN_ROLE_HOST, .model = "m", .hosted_known = true};
	struct opts serving_only = {.role = ANN_ROLE_HOST, .model = "m"};
	struct opts worker = {
	    .role = ANN_ROLE_WORKER, .model = "m", .hosted_known = true};
	struct identity self, id[5];
	struct peers t;
	struct peer *h[8], *sorted[8];
	size_t n, i, j, rot;

	seeded(&self, 100);
	peers_init(&t, self.pk, mesh, IV);
	for (i = 0; i < 5; i++) {
		seeded(&id[i], 200 + (uint32_t)i);
		assert_int_equal(announce_to(&t, &id[i], 1,
				     i == 4       ? &worker
					 : i == 3 ? &serving_only
						  : &host,
				     0, NULL),
		    0);
	}
	assert_int_equal(peers_hosts_for_model(&t, "other", h, 8), 0);
	n = peers_hosts_for_model(&t, "m", h, 8);
	assert_int_equal(n, 4); /* not the worker */
	/* the result is the id-sorted list rotated by some offset */
	memcpy(sorted, h, n * sizeof(h[0]));
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (memcmp(sorted[j]->ann.id, sorted[i]->ann.id,
				ID_PK_LEN) < 0) {
				struct peer *x = sorted[i];
				sorted[i] = sorted[j];
				sorted[j] = x;
			}
	for (rot = 0; rot < n && sorted[rot] != h[0]; rot++)
		;
	assert_true(rot < n);
	for (i = 0; i < n; i++)
		assert_ptr_equal(h[i], sorted[(i + rot) % n]);
	/* stable from call to call, and bounded by max */
	assert_int_equal(peers_hosts_for_model(&t, "m", sorted, 2), 2);
	assert_ptr_equal(sorted[0], h[0]);
	assert_ptr_equal(sorted[1], h[1]);
	peers_clear(&t);
	for (i = 0; i < 5; i++)
		identity_clear(&id[i]);
	identity_clear(&self);
}

#define CAP 1024
static void
test_table_cap(void **state)
{
	struct identity self, id;
	struct peers t;
	uint32_t i;

	seeded(&self, 1);
	peers_init(&t, self.pk, mesh, 0);
	assert_true(t.interval_ms == PEERS_DEFAULT_INTERVAL_MS);
	assert_true(t.max == PEERS_MAX);
	peers_set_max(&t, CAP); /* the default cap is tested in test_gossip */
	for (i = 0; i < CAP; i++) {
		seeded(&id, 1000 + i);
		assert_int_equal(announce_to(&t, &id, 1, NULL, 0, NULL), 0);
		identity_clear(&id);
	}
	seeded(&id, 5000);
	assert_int_equal(announce_to(&t, &id, 1, NULL, 0, NULL), SM_ERR_TOOBIG);
	identity_clear(&id);
	assert_int_equal(t.n, CAP);
	assert_int_equal(peers_tick(&t, 6ull * PEERS_DEFAULT_INTERVAL_MS), CAP);
	peers_clear(&t);
	identity_clear(&self);
}

/* Merge signed bytes at wall time 'wall' (not the signer's seq). */
static int
receive_at(struct peers *t, const uint8_t *p, size_t len, uint64_t now,
    uint64_t wall, enum peer_change *ch)
{
	struct announce a;
	int r;

	assert_int_equal(announce_verify_parse(p, len, &a), 0);
	if ((r = peers_merge(t, &a, now, wall, ch)) != 0)
		announce_free(&a);
	return r;
}

/* Signed at 'seq' (wall ms); older than 4 intervals + skew: refused, also for
 * a peer we do not hold, and also after it was pruned. */
static void
test_fresh_age_bound(void **state)
{
	const uint64_t t0 = 1700000000000ull;
	struct identity self, b;
	struct peers t;
	enum peer_change ch;
	struct buf w;
	uint64_t bound;

	seeded(&self, 1);
	seeded(&b, 2);
	peers_init(&t, self.pk, mesh, IV);
	assert_true(t.skew_ms == PEERS_SKEW_DEFAULT_MS);
	t.skew_ms = 500;
	bound = PEERS_FRESH_INTERVALS * IV + 500;
	signed_by(&b, t0, NULL, &w);
	/* not held, just inside the bound: adopted */
	assert_int_equal(
	    receive_at(&t, buf_data(&w), w.len, 0, t0 + bound, &ch), 0);
	assert_int_equal(ch, PEER_CHANGE_NEW);
	/* silent until pruned */
	assert_int_equal(peers_tick(&t, PEERS_PRUNE_INTERVALS * IV), 1);
	assert_null(peers_find(&t, b.pk));
	/* the same signed bytes re-injected after pruning: refused */
	assert_int_equal(
	    receive_at(&t, buf_data(&w), w.len, PEERS_PRUNE_INTERVALS * IV,
		t0 + PEERS_PRUNE_INTERVALS * IV, &ch),
	    SM_ERR_REPLAY);
	assert_int_equal(ch, PEER_CHANGE_NONE);
	assert_null(peers_find(&t, b.pk));
	assert_int_equal(t.n, 0);
	assert_true(t.refused_old == 1);
	/* one ms past the bound is already too old */
	assert_int_equal(
	    receive_at(&t, buf_data(&w), w.len, 0, t0 + bound + 1, NULL),
	    SM_ERR_REPLAY);
	assert_true(t.refused_old == 2);
	buf_clear(&w);
	/* held peers too: an old copy never replaces, even with a higher seq */
	signed_by(&b, t0 + 10 * IV, NULL, &w);
	assert_int_equal(
	    receive_at(&t, buf_data(&w), w.len, 0, t0 + 10 * IV, NULL), 0);
	buf_clear(&w);
	signed_by(&b, t0 + 11 * IV, NULL, &w);
	assert_int_equal(receive_at(&t, buf_data(&w), w.len, 0,
			     t0 + 11 * IV + bound + 1, NULL),
	    SM_ERR_REPLAY);
	assert_true(peers_find(&t, b.pk)->ann.seq == t0 + 10 * IV);
	buf_clear(&w);
	peers_clear(&t);
	identity_clear(&self);
	identity_clear(&b);
}

/* Signed more than the skew tolerance in the future: refused. */
static void
test_fresh_future_bound(void **state)
{
	const uint64_t t0 = 1700000000000ull;
	struct identity self, b;
	struct peers t;
	struct buf w;

	seeded(&self, 1);
	seeded(&b, 2);
	peers_init(&t, self.pk, mesh, IV);
	t.skew_ms = 2000;
	signed_by(&b, t0 + 2001, NULL, &w);
	assert_int_equal(
	    receive_at(&t, buf_data(&w), w.len, 0, t0, NULL), SM_ERR_REPLAY);
	assert_true(t.refused_future == 1 && t.refused_old == 0);
	assert_int_equal(t.n, 0);
	/* within the tolerance: a clock slightly ahead is fine */
	assert_int_equal(
	    receive_at(&t, buf_data(&w), w.len, 0, t0 + 1, NULL), 0);
	assert_int_equal(peers_fresh(&t, t0 + 2000, t0), 0);
	assert_int_equal(peers_fresh(&t, t0 + 2001, t0), SM_ERR_UNSUPP);
	assert_int_equal(
	    peers_fresh(&t, t0, t0 + PEERS_FRESH_INTERVALS * IV + 2001),
	    SM_ERR_STALE);
	buf_clear(&w);
	peers_clear(&t);
	identity_clear(&self);
	identity_clear(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_merge_seq),
	    cmocka_unit_test(test_stale_and_prune),
	    cmocka_unit_test(test_transitive_learn),
	    cmocka_unit_test(test_leaving),
	    cmocka_unit_test(test_hosts_for_model),
	    cmocka_unit_test(test_table_cap),
	    cmocka_unit_test(test_fresh_age_bound),
	    cmocka_unit_test(test_fresh_future_bound),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("peers", tests, NULL, NULL);
}
