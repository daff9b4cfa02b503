/* Gossip anti-entropy v2 (src/mesh/gossip.c): digests, wire format against
 * tests/vectors/gossip.json, the exchange between two peer tables, v1
 * compatibility of the message, and a peer table past the old 1,024 cap. */
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
#include "mesh/announce.h"
#include "mesh/gossip.h"
#include "mesh/identity.h"
#include "mesh/peers.h"
#include "util_vectors.h"

#define VECTORS "tests/vectors/gossip.json"

static const uint8_t mesh[ANN_MESH_ID_LEN] = {9};

static void
seeded(struct identity *id, uint32_t n)
{
	uint8_t seed[ID_SEED_LEN] = {0};

	memcpy(seed, &n, sizeof(n));
	seed[31] = 0x5a;
	memset(id, 0, sizeof(*id));
	assert_non_null(id->sk = sodium_malloc(ID_SK_LEN));
	assert_int_equal(crypto_sign_seed_keypair(id->pk, id->sk, seed), 0);
}

static void
sign(const struct identity *id, uint64_t seq, struct buf *out)
{
	struct announce a;

	memset(&a, 0, sizeof(a));
	memcpy(a.mesh_id, mesh, sizeof(mesh));
	a.seq = seq;
	a.role = ANN_ROLE_HOST;
	a.gossip_version = GOSSIP_VERSION;
	buf_init(out, ANN_MAX_LEN);
	assert_int_equal(announce_sign(&a, id, out), 0);
}

/* Verify and merge signed bytes into a table. */
static int
merge_wire(struct peers *t, const uint8_t *p, size_t len, uint64_t now)
{
	struct announce a;
	int r;

	if ((r = announce_verify_parse(p, len, &a)) != 0)
		return r;
	if ((r = peers_merge(t, &a, now, a.seq, NULL)) != 0)
		announce_free(&a);
	return r;
}

static void
test_vectors(void **state)
{
	cJSON *v = vec_load(VECTORS);
	uint8_t id1[ID_PK_LEN], id2[ID_PK_LEN], h[GOSSIP_HASH_LEN],
	    want[GOSSIP_HASH_LEN], root[GOSSIP_HASH_LEN], msg[256];
	uint64_t seq1 = (uint64_t)cJSON_GetObjectItem(v, "seq1")->valuedouble;
	uint64_t seq2 = (uint64_t)cJSON_GetObjectItem(v, "seq2")->valuedouble;
	struct gossip_digest d;
	struct gossip_msg m, p;
	struct gossip_entry e;
	struct buf out;
	size_t len;

	vec_hex(id1, sizeof(id1), v, "id1");
	vec_hex(id2, sizeof(id2), v, "id2");
	gossip_entry_hash(id1, seq1, h);
	vec_hex(want, sizeof(want), v, "hash1");
	assert_memory_equal(h, want, sizeof(h));
	memset(&d, 0, sizeof(d));
	gossip_digest_xor(&d, id1, h);
	gossip_entry_hash(id2, seq2, h);
	vec_hex(want, sizeof(want), v, "hash2");
	assert_memory_equal(h, want, sizeof(h));
	gossip_digest_xor(&d, id2, h);
	gossip_digest_root(&d, root);
	vec_hex(want, sizeof(want), v, "root");
	assert_memory_equal(root, want, sizeof(root));

	/* The opening message. */
	memset(&m, 0, sizeof(m));
	m.version = GOSSIP_VERSION;
	m.has_root = true;
	memcpy(m.root, root, sizeof(root));
	buf_init(&out, GOSSIP_MAX_LEN);
	assert_int_equal(gossip_msg_write(&m, &out), 0);
	len = strlen(cJSON_GetObjectItem(v, "open_msg")->valuestring) / 2;
	assert_int_equal(out.len, len);
	vec_hex(msg, len, v, "open_msg");
	assert_memory_equal(buf_data(&out), msg, len);

	/* entries + want */
	buf_reset(&out);
	memset(&m, 0, sizeof(m));
	m.version = GOSSIP_VERSION;
	memcpy(e.id, id1, ID_PK_LEN);
	e.seq = seq1;
	m.entries = &e;
	m.n_entries = 1;
	m.bucket_ids = (const uint8_t[]){0};
	m.n_bucket_ids = 1;
	m.want = (const uint8_t(*)[ID_PK_LEN])id2;
	m.n_want = 1;
	assert_int_equal(gossip_msg_write(&m, &out), 0);
	len = strlen(cJSON_GetObjectItem(v, "entries_msg")->valuestring) / 2;
	assert_int_equal(out.len, len);
	vec_hex(msg, len, v, "entries_msg");
	assert_memory_equal(buf_data(&out), msg, len);
	assert_int_equal(gossip_msg_parse(msg, len, &p), 0);
	assert_int_equal(p.version, GOSSIP_VERSION);
	assert_int_equal(p.n_entries, 1);
	assert_memory_equal(p.entries[0].id, id1, ID_PK_LEN);
	assert_true(p.entries[0].seq == seq1);
	assert_int_equal(p.n_bucket_ids, 1);
	assert_int_equal(p.n_want, 1);
	assert_memory_equal(p.want[0], id2, ID_PK_LEN);
	assert_false(p.has_root);
	gossip_msg_free(&p);
	buf_clear(&out);
	cJSON_Delete(v);
}

static void
test_digest_toggle(void **state)
{
	struct gossip_digest d, zero;
	uint8_t id[ID_PK_LEN] = {0x42}, h[GOSSIP_HASH_LEN], h2[GOSSIP_HASH_LEN];

	memset(&d, 0, sizeof(d));
	memset(&zero, 0, sizeof(zero));
	gossip_entry_hash(id, 5, h);
	gossip_entry_hash(id, 6, h2);
	assert_memory_not_equal(h, h2, sizeof(h));
	gossip_digest_xor(&d, id, h);
	assert_memory_not_equal(&d, &zero, sizeof(d));
	assert_memory_equal(d.b[0x42], h, sizeof(h));
	/* seq 5 -> 6: out with the old, in with the new */
	gossip_digest_xor(&d, id, h);
	gossip_digest_xor(&d, id, h2);
	assert_memory_equal(d.b[0x42], h2, sizeof(h2));
	gossip_digest_xor(&d, id, h2);
	assert_memory_equal(&d, &zero, sizeof(d));
}

/* Malformed v2 fields are refused as a whole message. */
static void
test_parse_refuses(void **state)
{
	static const uint8_t bad_root[] = {0x20, 0x02, 0x2a, 0x01, 0x00};
	static const uint8_t bad_buckets[] = {0x32, 0x02, 0x00, 0x00};
	uint8_t bad_entry[2 + 39] = {0x42, 39};
	uint8_t bad_want[2 + 31] = {0x4a, 31};
	uint8_t ids[3 + 257] = {0x3a, 0x81, 0x02}; /* 257 bucket ids */
	static const uint8_t group[] = {0x0b}; /* wire type 3 */
	struct gossip_msg m;

	assert_int_equal(
	    gossip_msg_parse(bad_root, sizeof(bad_root), &m), SM_ERR_PROTO);
	assert_int_equal(gossip_msg_parse(bad_buckets, sizeof(bad_buckets), &m),
	    SM_ERR_PROTO);
	assert_int_equal(
	    gossip_msg_parse(bad_entry, sizeof(bad_entry), &m), SM_ERR_PROTO);
	assert_int_equal(
	    gossip_msg_parse(bad_want, sizeof(bad_want), &m), SM_ERR_PROTO);
	assert_int_equal(gossip_msg_parse(ids, sizeof(ids), &m), SM_ERR_PROTO);
	assert_int_equal(
	    gossip_msg_parse(group, sizeof(group), &m), SM_ERR_PROTO);
	assert_int_equal(
	    gossip_msg_parse(bad_root, GOSSIP_MAX_LEN + 1, &m), SM_ERR_TOOBIG);
	/* An empty message is a valid v1 message that says nothing. */
	assert_int_equal(gossip_msg_parse(NULL, 0, &m), 0);
	assert_int_equal(m.version, 0);
	gossip_msg_free(&m);
}

/* v1 and v2 read each other's messages: a v1 node sees the items of a v2
 * message (it skips the new fields), a v2 node sees a v1 message as such. */
static void
test_mixed_messages(void **state)
{
	struct identity id;
	struct buf ann, out;
	struct announce_msg v1;
	struct gossip_msg m;
	const uint8_t *items[1];
	size_t lens[1];

	seeded(&id, 1);
	sign(&id, 100, &ann);
	items[0] = buf_data(&ann);
	lens[0] = ann.len;
	buf_init(&out, GOSSIP_MAX_LEN);
	assert_int_equal(announce_msg_write(items, lens, 1, false, &out), 0);
	assert_int_equal(gossip_msg_parse(buf_data(&out), out.len, &m), 0);
	assert_int_equal(m.version, 0);
	assert_int_equal(m.n_items, 1);
	assert_int_equal(m.lens[0], ann.len);
	gossip_msg_free(&m);

	buf_reset(&out);
	memset(&m, 0, sizeof(m));
	m.version = GOSSIP_VERSION;
	m.has_root = true;
	m.items = items;
	m.lens = lens;
	m.n_items = 1;
	assert_int_equal(gossip_msg_write(&m, &out), 0);
	assert_int_equal(announce_msg_parse(buf_data(&out), out.len, &v1), 0);
	assert_int_equal(v1.n, 1);
	assert_memory_equal(v1.items[0], buf_data(&ann), ann.len);
	announce_msg_free(&v1);

	/* Membership revocations (field 3) ride along verbatim, both ways. */
	{
		static const uint8_t rev[137] = {0xaa};
		const uint8_t *revs[1] = {rev};
		size_t rev_lens[1] = {sizeof(rev)};
		uint8_t big[3 + 300] = {0x1a, 0xac, 0x02}; /* 300 bytes */

		buf_reset(&out);
		m.revs = revs;
		m.rev_lens = rev_lens;
		m.n_revs = 1;
		assert_int_equal(gossip_msg_write(&m, &out), 0);
		assert_int_equal(
		    announce_msg_parse(buf_data(&out), out.len, &v1), 0);
		assert_int_equal(v1.n_revs, 1);
		assert_memory_equal(v1.revs[0], rev, sizeof(rev));
		announce_msg_free(&v1);
		assert_int_equal(
		    gossip_msg_parse(buf_data(&out), out.len, &m), 0);
		assert_int_equal(m.n_revs, 1);
		assert_int_equal(m.rev_lens[0], sizeof(rev));
		assert_memory_equal(m.revs[0], rev, sizeof(rev));
		gossip_msg_free(&m);
		/* one over GOSSIP_REVOCATION_MAX_LEN: the message is refused */
		assert_int_equal(
		    gossip_msg_parse(big, sizeof(big), &m), SM_ERR_PROTO);
	}
	buf_clear(&out);
	buf_clear(&ann);
	identity_clear(&id);
}

struct side {
	struct peers t;
	struct identity id;
	struct buf mine;
	uint64_t seq;
	struct gossip_peers gp;
	struct gossip_store st;
	size_t sent;
};

static void
side_refresh(struct side *s)
{
	gossip_peers_clear(&s->gp);
	gossip_peers_init(
	    &s->gp, &s->t, s->id.pk, s->seq, buf_data(&s->mine), s->mine.len);
	gossip_peers_store(&s->gp, &s->st);
}

/* 'to' receives 'in': merge its items, answer into 'out'. */
static void
side_deliver(struct side *to, const struct buf *in, struct buf *out, bool *more,
    size_t *merged)
{
	struct gossip_msg m;

	assert_int_equal(gossip_msg_parse(buf_data(in), in->len, &m), 0);
	for (size_t i = 0; i < m.n_items; i++)
		if (merge_wire(&to->t, m.items[i], m.lens[i], 1) == 0)
			(*merged)++;
	side_refresh(to);
	buf_reset(out);
	assert_int_equal(gossip_answer(&to->st, &m, out, more), 0);
	gossip_msg_free(&m);
}

/* One contact opened by a with b, as node.c runs it. Returns messages. */
static int
contact(struct side *a, struct side *b, size_t *merged)
{
	struct buf req, resp;
	bool more = true;
	int msgs = 0;

	buf_init(&req, GOSSIP_MAX_LEN);
	buf_init(&resp, GOSSIP_MAX_LEN);
	side_refresh(a);
	assert_int_equal(gossip_open(&a->st, NULL, 0, &req), 0);
	while (more && msgs < 16) {
		a->sent += req.len;
		side_deliver(b, &req, &resp, &more, merged);
		b->sent += resp.len;
		side_deliver(a, &resp, &req, &more, merged);
		msgs += 2;
	}
	buf_clear(&req);
	buf_clear(&resp);
	return msgs;
}

static void
side_init(struct side *s, uint32_t n)
{
	memset(s, 0, sizeof(*s));
	seeded(&s->id, n);
	s->seq = 1000 + n;
	sign(&s->id, s->seq, &s->mine);
	peers_init(&s->t, s->id.pk, mesh, 1000);
}

static void
side_clear(struct side *s)
{
	gossip_peers_clear(&s->gp);
	peers_clear(&s->t);
	buf_clear(&s->mine);
	identity_clear(&s->id);
}

/* Two tables that differ both ways end equal after one contact, and the
 * next contact is one short round trip that sends no announcement. */
static void
test_exchange(void **state)
{
	struct side a, b;
	struct identity x;
	struct buf w1, w2, w3;
	uint8_t ra[GOSSIP_HASH_LEN], rb[GOSSIP_HASH_LEN];
	size_t merged = 0;
	int msgs;

	side_init(&a, 1);
	side_init(&b, 2);
	seeded(&x, 3);
	sign(&x, 10, &w1);
	sign(&x, 11, &w2);
	/* a holds x@10, b holds x@11, and 40 others only b knows */
	assert_int_equal(merge_wire(&a.t, buf_data(&w1), w1.len, 1), 0);
	assert_int_equal(merge_wire(&b.t, buf_data(&w2), w2.len, 1), 0);
	for (uint32_t i = 0; i < 40; i++) {
		struct identity y;

		seeded(&y, 100 + i);
		sign(&y, 5, &w3);
		assert_int_equal(merge_wire(&b.t, buf_data(&w3), w3.len, 1), 0);
		buf_clear(&w3);
		identity_clear(&y);
	}
	msgs = contact(&a, &b, &merged);
	/* open -> buckets, entries -> anns + want, wanted anns -> end */
	assert_true(msgs <= 6);
	/* a learned b, x@11 and the 40; b learned a */
	assert_int_equal(merged, 1 + 1 + 40 + 1);
	assert_int_equal(a.t.n, 42);
	assert_int_equal(b.t.n, 42);
	assert_true(peers_find(&a.t, x.pk)->ann.seq == 11);
	side_refresh(&a);
	side_refresh(&b);
	gossip_digest_root(&a.gp.d, ra);
	gossip_digest_root(&b.gp.d, rb);
	assert_memory_equal(ra, rb, sizeof(ra));

	/* In sync: one round trip, no announcement, tens of bytes. */
	a.sent = b.sent = 0;
	merged = 0;
	msgs = contact(&a, &b, &merged);
	assert_int_equal(msgs, 2);
	assert_int_equal(merged, 0);
	assert_true(a.sent + b.sent < 64);

	/* One change (b re-signs): only that announcement travels. */
	b.seq++;
	buf_clear(&b.mine);
	sign(&b.id, b.seq, &b.mine);
	a.sent = b.sent = 0;
	contact(&a, &b, &merged);
	assert_int_equal(merged, 1);
	assert_true(peers_find(&a.t, b.id.pk)->ann.seq == b.seq);
	/* bucket digests + one bucket's entries + one announcement */
	assert_true(a.sent + b.sent < GOSSIP_BUCKETS_LEN + 1024);

	buf_clear(&w1);
	buf_clear(&w2);
	identity_clear(&x);
	side_clear(&a);
	side_clear(&b);
}

/* The old 1,024-peer cap is gone; a configurable cap still holds. */
static void
test_many_peers(void **state)
{
	struct peers t;
	struct identity self, y;
	struct buf w;
	const uint32_t n = 1500;

	seeded(&self, 1);
	peers_init(&t, self.pk, mesh, 1000);
	for (uint32_t i = 0; i < n; i++) {
		seeded(&y, 10000 + i);
		sign(&y, 5, &w);
		assert_int_equal(merge_wire(&t, buf_data(&w), w.len, 1), 0);
		buf_clear(&w);
		identity_clear(&y);
	}
	assert_int_equal(t.n, n);
	peers_set_max(&t, n);
	seeded(&y, 99999);
	sign(&y, 5, &w);
	assert_int_equal(merge_wire(&t, buf_data(&w), w.len, 1), SM_ERR_TOOBIG);
	buf_clear(&w);
	identity_clear(&y);
	peers_clear(&t);
	identity_clear(&self);
}

/* Peers heard only through gossip are judged on the refresh period. */
static void
test_refresh_staleness(void **state)
{
	struct peers t;
	struct identity self, y;
	struct buf w;

	seeded(&self, 1);
	peers_init(&t, self.pk, mesh, 1000);
	peers_set_refresh(&t, gossip_refresh_ms(1000));
	assert_true(t.refresh_ms == 10000);
	seeded(&y, 2);
	sign(&y, 5, &w);
	assert_int_equal(merge_wire(&t, buf_data(&w), w.len, 0), 0);
	peers_tick(&t, 3 * 1000);
	assert_int_equal(peers_find(&t, y.pk)->state, PEER_ALIVE);
	peers_tick(&t, 3 * 10000);
	assert_int_equal(peers_find(&t, y.pk)->state, PEER_STALE);
	assert_true(gossip_refresh_ms(30000) == GOSSIP_REFRESH_MS);
	buf_clear(&w);
	identity_clear(&y);
	peers_clear(&t);
	identity_clear(&self);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_digest_toggle),
	    cmocka_unit_test(test_parse_refuses),
	    cmocka_unit_test(test_mixed_messages),
	    cmocka_unit_test(test_exchange),
	    cmocka_unit_test(test_many_peers),
	    cmocka_unit_test(test_refresh_staleness),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("gossip", tests, NULL, NULL);
}
