#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util_vectors.h"
#include <sodium.h>

#include "cJSON.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/util.h"
#include "crypto/envelope.h"
#include "crypto/infkey.h"
#include "crypto/rstream.h"

#define VECTORS "tests/vectors/envelope.json"
#define NOW 1700000000u
#define MONO 5000u
#define WINDOW 120u

static const char req[] =
    "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
    "Content-Type: application/json\r\nContent-Length: 62\r\n"
    "Connection: close\r\n\r\n"
    "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"
    "}";

/*
 * The version under test: most tests are registered twice, the second time
 * with a version 2 sender (v2_setup), and seal() follows it.
 */
static struct env_sender *sender;

static int
v2_setup(void **state)
{
	return env_sender_new(&sender);
}

static int
v2_teardown(void **state)
{
	env_sender_free(sender);
	sender = NULL;
	return 0;
}

static size_t
hdr_len(void)
{
	return sender != NULL ? ENV_HDR2_LEN : ENV_HDR_LEN;
}

/* One host: a keyring, a node id and a replay cache. */
struct host {
	struct infkey *keys;
	struct env_replay *rc;
	uint8_t id[ENV_NODE_ID_LEN];
};

static void
host_new(struct host *h)
{
	assert_int_equal(infkey_new(&h->keys, 3600, 600, MONO), 0);
	assert_int_equal(env_replay_new(&h->rc, WINDOW, 1000), 0);
	randombytes_buf(h->id, sizeof(h->id));
}

static void
host_free(struct host *h)
{
	infkey_free(h->keys);
	env_replay_free(h->rc);
}

/* What a client learns from the host's signed announcement. */
static void
target_of(struct env_target *t, const struct host *h)
{
	memcpy(t->node_id, h->id, ENV_NODE_ID_LEN);
	infkey_current(h->keys, &t->key);
}

static void
seal(struct buf *wire, struct env_session *s, const struct env_target *t,
    const char *http, uint64_t now)
{
	buf_init(wire, ENV_WIRE_MAX);
	if (sender != NULL)
		assert_int_equal(env_seal_request2(wire, s, sender, t, 0,
				     (const uint8_t *)http, strlen(http), now),
		    0);
	else
		assert_int_equal(env_seal_request(wire, s, t,
				     (const uint8_t *)http, strlen(http), now),
		    0);
}

static int
host_open(struct host *h, struct buf *http, struct env_session *s,
    const struct buf *wire, uint64_t now)
{
	return env_open_request(
	    http, s, h->keys, h->id, h->rc, buf_data(wire), wire->len, now);
}

static void
test_roundtrip_and_response(void **state)
{
	struct host h;
	struct env_target t;
	struct env_session cs, hs;
	struct buf wire, http, resp;
	struct rs_writer wr;
	struct rs_reader rd;
	struct rs_event ev;
	size_t used, total;

	host_new(&h);
	target_of(&t, &h);
	seal(&wire, &cs, &t, req, NOW);
	assert_int_equal(wire.len, hdr_len() + ENV_MAC_LEN + ENV_BUCKET_MIN);
	assert_int_equal(env_peek(&total, buf_data(&wire), wire.len), 0);
	assert_int_equal(total, wire.len);
	/* No cleartext of the request on the wire. */
	assert_null(memmem(buf_data(&wire), wire.len, "qwen", 4));
	assert_int_equal(host_open(&h, &http, &hs, &wire, NOW + 3), 0);
	assert_int_equal(http.len, strlen(req));
	assert_memory_equal(buf_data(&http), req, http.len);
	assert_memory_equal(cs.rkey, hs.rkey, RS_KEY_LEN);
	assert_memory_equal(cs.request_id, hs.request_id, ENV_REQID_LEN);
	assert_int_equal(hs.timestamp, NOW);

	/* The host answers under the session key; the client reads it. */
	buf_init(&resp, 1 << 20);
	assert_int_equal(rs_writer_init(&wr, &resp, hs.rkey), 0);
	assert_int_equal(rs_write_data(&wr, &resp,
			     (const uint8_t *)"HTTP/1.1 200 OK\r\n\r\n", 19),
	    0);
	assert_int_equal(rs_write_end(&wr, &resp), 0);
	rs_writer_clear(&wr);
	rs_reader_init(&rd, cs.rkey);
	assert_int_equal(
	    rs_reader_feed(&rd, &ev, &used, buf_data(&resp), resp.len), 0);
	assert_int_equal(ev.type, RS_EV_DATA);
	assert_int_equal(ev.len, 19);
	assert_int_equal(rs_reader_feed(&rd, &ev, &used, buf_data(&resp) + used,
			     resp.len - used),
	    0);
	assert_int_equal(ev.type, RS_EV_END);
	assert_int_equal(rs_reader_finish(&rd), 0);
	rs_reader_clear(&rd);

	/* Two seals of the same request differ entirely: from the ephemeral
	 * key on in version 1; version 2 reuses the key, and everything from
	 * the salt on differs. */
	{
		size_t off = sender != NULL ? ENV_SALT_OFF : ENV_EPH_OFF;
		struct buf w2;
		struct env_session s2;

		seal(&w2, &s2, &t, req, NOW);
		if (sender != NULL)
			assert_memory_equal(buf_data(&w2) + ENV_EPH_OFF,
			    buf_data(&wire) + ENV_EPH_OFF, INFKEY_PK_LEN);
		for (size_t i = off; i < wire.len; i += 8)
			assert_memory_not_equal(buf_data(&w2) + i,
			    buf_data(&wire) + i,
			    wire.len - i < 8 ? wire.len - i : 8);
		assert_memory_not_equal(s2.rkey, cs.rkey, RS_KEY_LEN);
		env_session_clear(&s2);
		buf_clear(&w2);
	}
	env_session_clear(&cs);
	env_session_clear(&hs);
	assert_true(sodium_is_zero(cs.rkey, RS_KEY_LEN));
	buf_clear(&http);
	buf_clear(&resp);
	buf_clear(&wire);
	host_free(&h);
}

static void
test_buckets(void **state)
{
	static const struct {
		size_t http, bucket;
	} cases[] = {
	    {1, 1024},
	    {1024 - ENV_INNER_LEN, 1024},
	    {1025 - ENV_INNER_LEN, 2048},
	    {4096 - ENV_INNER_LEN, 4096},
	    {65536 - ENV_INNER_LEN, 65536},
	    {65537 - ENV_INNER_LEN, 131072},
	    {200000, 262144},
	    {ENV_HTTP_MAX - ENV_INNER_LEN, ENV_HTTP_MAX},
	    {ENV_HTTP_MAX, ENV_PT_MAX},
	};
	struct host h;
	struct env_target t;
	struct env_session cs, hs;
	struct buf wire, http;
	uint8_t *body;
	size_t i;

	assert_int_equal(env_bucket(0), 1024);
	assert_int_equal(env_bucket(ENV_PT_MAX), ENV_PT_MAX);
	assert_int_equal(env_bucket(ENV_PT_MAX + 1), 0);
	host_new(&h);
	target_of(&t, &h);
	body = malloc(ENV_HTTP_MAX + 1);
	assert_non_null(body);
	memset(body, 'a', ENV_HTTP_MAX + 1);
	for (i = 0; i < SM_ARRAY_LEN(cases); i++) {
		assert_int_equal(
		    env_bucket(ENV_INNER_LEN + cases[i].http), cases[i].bucket);
		buf_init(&wire, ENV_WIRE_MAX);
		assert_int_equal(
		    env_seal_request(&wire, &cs, &t, body, cases[i].http, NOW),
		    0);
		assert_int_equal(
		    wire.len, ENV_HDR_LEN + ENV_MAC_LEN + cases[i].bucket);
		assert_int_equal(host_open(&h, &http, &hs, &wire, NOW), 0);
		assert_int_equal(http.len, cases[i].http);
		assert_memory_equal(buf_data(&http), body, http.len);
		buf_clear(&http);
		buf_clear(&wire);
	}
	buf_init(&wire, ENV_WIRE_MAX);
	assert_int_equal(
	    env_seal_request(&wire, &cs, &t, body, ENV_HTTP_MAX + 1, NOW),
	    SM_ERR_TOOBIG);
	assert_int_equal(
	    env_seal_request(&wire, &cs, &t, body, 0, NOW), SM_ERR_INVAL);
	assert_int_equal(wire.len, 0);
	buf_clear(&wire);
	/* A 'wire' too small for the envelope is left as it was. */
	buf_init(&wire, 100);
	assert_int_equal(buf_append(&wire, "\x04", 1), 0);
	assert_int_equal(
	    env_seal_request(&wire, &cs, &t, body, 10, NOW), SM_ERR_TOOBIG);
	assert_int_equal(wire.len, 1);
	assert_true(sodium_is_zero(cs.rkey, RS_KEY_LEN));
	buf_clear(&wire);
	free(body);
	host_free(&h);
}

static void
test_wrong_key_and_epoch(void **state)
{
	struct host h, other;
	struct env_target t;
	struct env_session cs, hs;
	struct buf wire, http;

	host_new(&h);
	host_new(&other);
	/* Right epoch id, wrong key: authentication fails. */
	target_of(&t, &other);
	infkey_current(h.keys, &t.key);
	t.key.pk[0] ^= 1;
	seal(&wire, &cs, &t, req, NOW);
	assert_int_equal(host_open(&h, &http, &hs, &wire, NOW), SM_ERR_DECRYPT);
	assert_null(http.p);
	assert_true(sodium_is_zero(hs.rkey, RS_KEY_LEN));
	buf_clear(&wire);
	/* Epoch the host does not have. */
	target_of(&t, &h);
	t.key.epoch ^= 0x80000000u;
	seal(&wire, &cs, &t, req, NOW);
	assert_int_equal(
	    host_open(&h, &http, &hs, &wire, NOW), SM_ERR_NOTFOUND);
	buf_clear(&wire);
	/* A low-order host key is refused by the client. */
	memset(t.key.pk, 0, sizeof(t.key.pk));
	buf_init(&wire, ENV_WIRE_MAX);
	assert_int_equal(env_seal_request(&wire, &cs, &t, (const uint8_t *)req,
			     strlen(req), NOW),
	    SM_ERR_INVAL);
	assert_int_equal(wire.len, 0);
	buf_clear(&wire);
	host_free(&h);
	host_free(&other);
}

static void
test_low_order_ephemeral(void **state)
{
	struct host h;
	struct env_target t;
	struct env_session cs, hs;
	struct buf wire, http;

	host_new(&h);
	target_of(&t, &h);
	seal(&wire, &cs, &t, req, NOW);
	memset(buf_data(&wire) + ENV_EPH_OFF, 0, INFKEY_PK_LEN);
	assert_int_equal(host_open(&h, &http, &hs, &wire, NOW), SM_ERR_DECRYPT);
	buf_clear(&wire);
	host_free(&h);
}

static void
test_every_byte_flip_refused(void **state)
{
	struct host h;
	struct env_target t;
	struct env_session cs, hs;
	struct buf wire, http;
	uint8_t *p;
	size_t i;
	int r;

	host_new(&h);
	target_of(&t, &h);
	seal(&wire, &cs, &t, req, NOW);
	p = buf_data(&wire);
	for (i = 0; i < wire.len; i++) {
		p[i] ^= (i & 1) ? 0x80 : 0x01;
		r = host_open(&h, &http, &hs, &wire, NOW);
		assert_true(r < 0);
		assert_int_not_equal(r, SM_ERR_REPLAY);
		assert_null(http.p);
		p[i] ^= (i & 1) ? 0x80 : 0x01;
	}
	/* Truncated or extended by a byte. */
	assert_int_equal(env_open_request(&http, &hs, h.keys, h.id, h.rc, p,
			     wire.len - 1, NOW),
	    SM_ERR_PROTO);
	assert_int_equal(buf_append(&wire, "", 1), 0);
	assert_int_equal(host_open(&h, &http, &hs, &wire, NOW), SM_ERR_PROTO);
	wire.len--;
	/* Untouched, it still opens (nothing was recorded on failure). */
	assert_int_equal(host_open(&h, &http, &hs, &wire, NOW), 0);
	buf_clear(&http);
	env_session_clear(&hs);
	buf_clear(&wire);
	host_free(&h);
}

static void
test_replay_and_window(void **state)
{
	struct host h;
	struct env_target t;
	struct env_session cs, hs;
	struct buf wire, w2, http;

	host_new(&h);
	target_of(&t, &h);
	seal(&wire, &cs, &t, req, NOW);
	assert_int_equal(host_open(&h, &http, &hs, &wire, NOW), 0);
	buf_clear(&http);
	assert_int_equal(host_open(&h, &http, &hs, &wire, NOW), SM_ERR_REPLAY);
	assert_int_equal(
	    host_open(&h, &http, &hs, &wire, NOW + WINDOW), SM_ERR_REPLAY);
	assert_int_equal(
	    host_open(&h, &http, &hs, &wire, NOW + WINDOW + 1), SM_ERR_STALE);
	buf_clear(&wire);

	/* Timestamps: +- window accepted, one second beyond refused. */
	seal(&wire, &cs, &t, req, NOW + WINDOW);
	assert_int_equal(host_open(&h, &http, &hs, &wire, NOW), 0);
	buf_clear(&http);
	buf_clear(&wire);
	seal(&wire, &cs, &t, req, NOW - WINDOW);
	assert_int_equal(host_open(&h, &http, &hs, &wire, NOW), 0);
	buf_clear(&http);
	buf_clear(&wire);
	seal(&wire, &cs, &t, req, NOW + WINDOW + 1);
	assert_int_equal(host_open(&h, &http, &hs, &wire, NOW), SM_ERR_STALE);
	buf_clear(&wire);
	seal(&wire, &cs, &t, req, NOW - WINDOW - 1);
	assert_int_equal(host_open(&h, &http, &hs, &wire, NOW), SM_ERR_STALE);
	buf_clear(&wire);

	/*
	 * Worst case for the cache's aging: accepted at the earliest moment
	 * (timestamp a full window ahead), replayed at the last moment, with
	 * traffic in between that makes the cache rotate.
	 */
	seal(&w2, &cs, &t, req, NOW + 1000 - 2 * WINDOW + 1);
	assert_int_equal(
	    host_open(&h, &http, &hs, &w2, NOW + 1000 - 2 * WINDOW + 1),
	    0); /* starts a cache generation just before */
	buf_clear(&http);
	buf_clear(&w2);
	seal(&wire, &cs, &t, req, NOW + 1000 + WINDOW);
	assert_int_equal(host_open(&h, &http, &hs, &wire, NOW + 1000), 0);
	buf_clear(&http);
	for (uint64_t now = NOW + 1000; now <= NOW + 1000 + 2 * WINDOW; now++) {
		seal(&w2, &cs, &t, req, now);
		assert_int_equal(host_open(&h, &http, &hs, &w2, now), 0);
		buf_clear(&http);
		buf_clear(&w2);
		assert_int_equal(
		    host_open(&h, &http, &hs, &wire, now), SM_ERR_REPLAY);
	}
	assert_int_equal(
	    host_open(&h, &http, &hs, &wire, NOW + 1000 + 2 * WINDOW),
	    SM_ERR_REPLAY);
	assert_int_equal(
	    host_open(&h, &http, &hs, &wire, NOW + 1000 + 2 * WINDOW + 1),
	    SM_ERR_STALE);
	buf_clear(&wire);
	host_free(&h);
}

static void
test_replay_cache_full(void **state)
{
	struct host h;
	struct env_target t;
	struct env_session cs, hs;
	struct buf wire, http;
	int i;

	assert_int_equal(env_replay_new(&h.rc, WINDOW, 0), SM_ERR_INVAL);
	assert_int_equal(infkey_new(&h.keys, 3600, 600, MONO), 0);
	assert_int_equal(env_replay_new(&h.rc, WINDOW, 3), 0);
	randombytes_buf(h.id, sizeof(h.id));
	target_of(&t, &h);
	for (i = 0; i < 3; i++) {
		seal(&wire, &cs, &t, req, NOW);
		assert_int_equal(host_open(&h, &http, &hs, &wire, NOW), 0);
		buf_clear(&http);
		buf_clear(&wire);
	}
	seal(&wire, &cs, &t, req, NOW);
	assert_int_equal(host_open(&h, &http, &hs, &wire, NOW), SM_ERR_UNAVAIL);
	assert_int_equal(rs_refusal_for(SM_ERR_UNAVAIL), RS_REFUSE_BUSY);
	buf_clear(&wire);
	/* Once the old ids age out (after 2 * window), there is room again. */
	seal(&wire, &cs, &t, req, NOW + 2 * WINDOW);
	assert_int_equal(
	    host_open(&h, &http, &hs, &wire, NOW + 2 * WINDOW), SM_ERR_UNAVAIL);
	buf_clear(&wire);
	seal(&wire, &cs, &t, req, NOW + 2 * WINDOW + 1);
	assert_int_equal(
	    host_open(&h, &http, &hs, &wire, NOW + 2 * WINDOW + 1), 0);
	buf_clear(&http);
	buf_clear(&wire);
	host_free(&h);
}

static int
member_open(struct host *h, const uint8_t member[ENV_NODE_ID_LEN],
    const struct env_target *t, uint64_t now)
{
	struct env_session cs, hs;
	struct buf wire, http;
	int r;

	seal(&wire, &cs, t, req, now);
	r = env_open_request_from(&http, &hs, h->keys, h->id, h->rc, member,
	    buf_data(&wire), wire.len, now);
	buf_clear(&http);
	buf_clear(&wire);
	env_session_clear(&cs);
	env_session_clear(&hs);
	return r;
}

/*
 * One member filling its share of the replay cache gets SM_ERR_UNAVAIL
 * (busy); another member's requests still open, and the flooder gets room
 * again when its ids age out.
 */
static void
test_replay_member_share(void **state)
{
	const size_t max = 64, share = max / ENV_REPLAY_SHARE_DIV;
	uint8_t flooder[ENV_NODE_ID_LEN], honest[ENV_NODE_ID_LEN];
	struct env_target t;
	struct host h;
	size_t i;

	assert_int_equal(infkey_new(&h.keys, 3600, 600, MONO), 0);
	assert_int_equal(env_replay_new(&h.rc, WINDOW, max), 0);
	randombytes_buf(h.id, sizeof(h.id));
	memset(flooder, 0xf1, sizeof(flooder));
	memset(honest, 0x42, sizeof(honest));
	target_of(&t, &h);
	assert_true(share == 4);
	/* Alone, a member may go past its share up to half the cache... */
	for (i = 0; i < max / 2; i++)
		assert_int_equal(member_open(&h, flooder, &t, NOW), 0);
	/* ...and no further: busy, for it alone */
	for (i = 0; i < 8; i++)
		assert_int_equal(
		    member_open(&h, flooder, &t, NOW), SM_ERR_UNAVAIL);
	/* the other half is there for others, each its share once the
	 * cache is half full */
	for (i = 0; i < share; i++)
		assert_int_equal(member_open(&h, honest, &t, NOW), 0);
	assert_int_equal(member_open(&h, honest, &t, NOW), SM_ERR_UNAVAIL);
	/* without a member (old callers): only the total counts */
	assert_int_equal(member_open(&h, NULL, &t, NOW), 0);
	/* a new generation: room again */
	assert_int_equal(member_open(&h, flooder, &t, NOW + 2 * WINDOW + 1), 0);
	host_free(&h);
}

/* Many members: each may hold its share until the cache total is reached. */
static void
test_replay_member_share_total(void **state)
{
	const size_t max = 32; /* share 2 */
	uint8_t member[ENV_NODE_ID_LEN];
	struct env_target t;
	struct host h;
	size_t i;

	assert_int_equal(infkey_new(&h.keys, 3600, 600, MONO), 0);
	assert_int_equal(env_replay_new(&h.rc, WINDOW, max), 0);
	randombytes_buf(h.id, sizeof(h.id));
	target_of(&t, &h);
	for (i = 0; i < max; i++) {
		memset(member, (int)(i / 2) + 1, sizeof(member));
		assert_int_equal(member_open(&h, member, &t, NOW), 0);
	}
	memset(member, 0xee, sizeof(member));
	assert_int_equal(member_open(&h, member, &t, NOW), SM_ERR_UNAVAIL);
	host_free(&h);
}

static void
test_wrong_host(void **state)
{
	struct host a, b, a2;
	struct env_target t;
	struct env_session cs, hs;
	struct buf wire, http;

	host_new(&a);
	host_new(&b);
	target_of(&t, &a);
	seal(&wire, &cs, &t, req, NOW);
	/* B does not hold A's key. */
	assert_int_equal(
	    host_open(&b, &http, &hs, &wire, NOW), SM_ERR_NOTFOUND);
	/* Even a node that holds A's key (shared or stolen) refuses it. */
	a2 = a;
	randombytes_buf(a2.id, sizeof(a2.id));
	assert_int_equal(host_open(&a2, &http, &hs, &wire, NOW), SM_ERR_PERM);
	assert_int_equal(host_open(&a, &http, &hs, &wire, NOW), 0);
	buf_clear(&http);
	buf_clear(&wire);
	host_free(&a);
	host_free(&b);
}

static void
test_epoch_rollover_in_flight(void **state)
{
	struct host h;
	struct env_target t, t2;
	struct env_session cs, hs;
	struct buf wire, http, resp;
	struct rs_writer wr;
	struct rs_reader rd;
	struct rs_event ev;
	size_t used;
	bool rotated;

	host_new(&h);
	target_of(&t, &h);
	/* Client sealed from the old announcement... */
	seal(&wire, &cs, &t, req, NOW);
	/* ...the host rotates before the request arrives. */
	assert_int_equal(infkey_tick(h.keys, MONO + 3600, &rotated), 0);
	assert_true(rotated);
	target_of(&t2, &h);
	assert_int_not_equal(t2.key.epoch, t.key.epoch);
	assert_int_equal(host_open(&h, &http, &hs, &wire, NOW), 0);
	buf_clear(&http);
	/* The previous key is wiped mid-response: the stream is unaffected. */
	assert_int_equal(infkey_tick(h.keys, MONO + 3600 + 600, &rotated), 0);
	buf_init(&resp, 4096);
	assert_int_equal(rs_writer_init(&wr, &resp, hs.rkey), 0);
	assert_int_equal(
	    rs_write_data(&wr, &resp, (const uint8_t *)"ok", 2), 0);
	assert_int_equal(rs_write_end(&wr, &resp), 0);
	rs_writer_clear(&wr);
	rs_reader_init(&rd, cs.rkey);
	assert_int_equal(
	    rs_reader_feed(&rd, &ev, &used, buf_data(&resp), resp.len), 0);
	assert_int_equal(ev.type, RS_EV_DATA);
	assert_int_equal(rs_reader_feed(&rd, &ev, &used, buf_data(&resp) + used,
			     resp.len - used),
	    0);
	assert_int_equal(ev.type, RS_EV_END);
	rs_reader_clear(&rd);
	buf_clear(&resp);
	buf_clear(&wire);
	/* A request sealed to the wiped epoch now is refused as unknown. */
	seal(&wire, &cs, &t, req, NOW + 1);
	assert_int_equal(
	    host_open(&h, &http, &hs, &wire, NOW + 1), SM_ERR_NOTFOUND);
	buf_clear(&wire);
	seal(&wire, &cs, &t2, req, NOW + 1);
	assert_int_equal(host_open(&h, &http, &hs, &wire, NOW + 1), 0);
	buf_clear(&http);
	buf_clear(&wire);
	host_free(&h);
}

/* Authenticated plaintexts that break the layout rules. */
static void
test_bad_inner(void **state)
{
	struct host h;
	struct env_target t;
	struct env_session hs;
	struct buf wire, http;
	uint8_t pt[2048], esk[32];
	int i;

	host_new(&h);
	target_of(&t, &h);
	randombytes_buf(esk, sizeof(esk));
	for (i = 0; i < 9; i++) {
		size_t len = 1024;

		memset(pt, 0, sizeof(pt));
		randombytes_buf(pt + 1, ENV_REQID_LEN);
		pt[17 + 4] = (uint8_t)(NOW >> 24);
		pt[17 + 5] = (uint8_t)(NOW >> 16);
		pt[17 + 6] = (uint8_t)(NOW >> 8);
		pt[17 + 7] = (uint8_t)NOW;
		memcpy(pt + 25, h.id, ENV_NODE_ID_LEN);
		pt[60] = 10; /* n = 10 */
		memset(pt + ENV_INNER_LEN, 'x', 10);
		switch (i) {
		case 0: /* well formed: accepted */
			break;
		case 1:
			pt[0] = 2; /* a flag this version does not know */
			break;
		case 2:
			pt[60] = 0; /* n = 0 */
			break;
		case 3:
			pt[59] = 4; /* n past the bucket */
			break;
		case 4:
			pt[1023] = 1; /* non-zero padding */
			break;
		case 5:
			len = 2048; /* padded past the smallest bucket */
			break;
		case 6:
			len = 1500; /* not a bucket */
			break;
		case 7:
			pt[0] = ENV_F_RS2; /* known flag: accepted, reported */
			break;
		case 8:
			pt[0] = 0x80 | ENV_F_RS2;
			break;
		}
		buf_init(&wire, ENV_WIRE_MAX);
		assert_int_equal(
		    env_seal_raw_det(&wire, &t,
			sender != NULL ? ENV_VERSION_2 : ENV_VERSION, esk, pt,
			len),
		    0);
		assert_int_equal(host_open(&h, &http, &hs, &wire, NOW),
		    i == 0 || i == 7       ? 0
			: i == 1 || i == 8 ? SM_ERR_UNSUPP
					   : SM_ERR_PROTO);
		if (i == 0 || i == 7)
			assert_int_equal(hs.flags, i == 7 ? ENV_F_RS2 : 0);
		if (i == 0 || i == 7) {
			assert_int_equal(http.len, 10);
			assert_memory_equal(buf_data(&http), "xxxxxxxxxx", 10);
		}
		buf_clear(&http);
		buf_clear(&wire);
	}
	host_free(&h);
}

/* The flag travels inside the box and comes out on the host. */
static void
test_flags(void **state)
{
	struct host h;
	struct env_target t;
	struct env_session cs, hs;
	struct buf wire, http;

	host_new(&h);
	target_of(&t, &h);
	buf_init(&wire, ENV_WIRE_MAX);
	assert_int_equal(
	    env_seal_request_flags(&wire, &cs, &t, 0x02,
		(const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18, NOW),
	    SM_ERR_INVAL);
	assert_int_equal(wire.len, 0);
	assert_int_equal(
	    env_seal_request_flags(&wire, &cs, &t, ENV_F_RS2,
		(const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18, NOW),
	    0);
	assert_int_equal(wire.len, ENV_WIRE_MIN); /* same bucket as flags 0 */
	assert_int_equal(host_open(&h, &http, &hs, &wire, NOW), 0);
	assert_int_equal(hs.flags, ENV_F_RS2);
	assert_memory_equal(hs.rkey, cs.rkey, RS_KEY_LEN);
	buf_clear(&http);
	buf_clear(&wire);
	env_session_clear(&cs);
	env_session_clear(&hs);
	host_free(&h);
}

static void
test_peek(void **state)
{
	uint8_t h[ENV_HDR_LEN] = {ENV_MAGIC, ENV_VERSION};
	size_t total = 1;

	assert_int_equal(env_peek(&total, h, 0), SM_ERR_AGAIN);
	assert_int_equal(total, 0);
	assert_int_equal(env_peek(&total, h, ENV_HDR_LEN - 1), SM_ERR_AGAIN);
	h[ENV_BODYLEN_OFF + 2] = (ENV_MAC_LEN + 1024) >> 8;
	h[ENV_BODYLEN_OFF + 3] = (ENV_MAC_LEN + 1024) & 0xff;
	assert_int_equal(env_peek(&total, h, ENV_HDR_LEN), 0);
	assert_int_equal(total, ENV_WIRE_MIN);
	h[ENV_BODYLEN_OFF + 3]++;
	assert_int_equal(env_peek(&total, h, ENV_HDR_LEN), SM_ERR_PROTO);
	memset(h + ENV_BODYLEN_OFF, 0xff, 4);
	assert_int_equal(env_peek(&total, h, ENV_HDR_LEN), SM_ERR_PROTO);
	memset(h + ENV_BODYLEN_OFF, 0, 4);
	assert_int_equal(env_peek(&total, h, ENV_HDR_LEN), SM_ERR_PROTO);
	h[1] = ENV_VERSION_MAX + 1;
	assert_int_equal(env_peek(&total, h, 2), SM_ERR_UNSUPP);
	h[0] = 'P'; /* plaintext HTTP */
	assert_int_equal(env_peek(&total, h, 1), SM_ERR_PROTO);
}

/* --- version 2 only --- */

/* One ephemeral key per host key, renewed after ENV_SENDER_LIFETIME_S. */
static void
test_v2_sender_reuse(void **state)
{
	struct host h, h2;
	struct env_target t, t2;
	struct env_session cs, hs;
	struct buf w[4], http;
	uint64_t at[4] = {NOW, NOW + ENV_SENDER_LIFETIME_S - 1, NOW,
	    NOW + ENV_SENDER_LIFETIME_S};
	int i;

	host_new(&h);
	host_new(&h2);
	target_of(&t, &h);
	target_of(&t2, &h2);
	for (i = 0; i < 4; i++) {
		seal(&w[i], &cs, i == 2 ? &t2 : &t, req, at[i]);
		env_session_clear(&cs);
		assert_int_equal(
		    host_open(i == 2 ? &h2 : &h, &http, &hs, &w[i], at[i]), 0);
		assert_int_equal(http.len, strlen(req));
		buf_clear(&http);
		env_session_clear(&hs);
	}
	/* Same host within the lifetime: same key; another host or later:
	 * another. */
	assert_memory_equal(buf_data(&w[0]) + ENV_EPH_OFF,
	    buf_data(&w[1]) + ENV_EPH_OFF, INFKEY_PK_LEN);
	assert_memory_not_equal(buf_data(&w[0]) + ENV_EPH_OFF,
	    buf_data(&w[2]) + ENV_EPH_OFF, INFKEY_PK_LEN);
	assert_memory_not_equal(buf_data(&w[0]) + ENV_EPH_OFF,
	    buf_data(&w[3]) + ENV_EPH_OFF, INFKEY_PK_LEN);
	/* A cached K serves only its own header: the same bytes again are a
	 * replay, another salt with the same key still opens. */
	assert_int_equal(
	    host_open(&h, &http, &hs, &w[1], at[1]), SM_ERR_REPLAY);
	for (i = 0; i < 4; i++)
		buf_clear(&w[i]);
	host_free(&h);
	host_free(&h2);
}

static void
test_v2_peek(void **state)
{
	uint8_t h[ENV_HDR2_LEN] = {ENV_MAGIC, ENV_VERSION_2};
	size_t total;

	assert_int_equal(env_peek(&total, h, 1), SM_ERR_AGAIN);
	h[ENV_BODYLEN2_OFF + 2] = 0x04; /* 1024 */
	h[ENV_BODYLEN2_OFF + 3] = 0x10; /* + 16 */
	assert_int_equal(env_peek(&total, h, ENV_HDR2_LEN - 1), SM_ERR_AGAIN);
	assert_int_equal(env_peek(&total, h, ENV_HDR2_LEN), 0);
	assert_int_equal(total, ENV_HDR2_LEN + 16 + 1024);
	/* Where version 1 keeps its length, version 2 keeps salt. */
	h[ENV_BODYLEN_OFF + 3] = 0x77;
	assert_int_equal(env_peek(&total, h, ENV_HDR2_LEN), 0);
	h[ENV_BODYLEN2_OFF + 3] = 0x11;
	assert_int_equal(env_peek(&total, h, ENV_HDR2_LEN), SM_ERR_PROTO);
	h[1] = 3;
	assert_int_equal(env_peek(&total, h, ENV_HDR2_LEN), SM_ERR_UNSUPP);
}

/* --- known-answer vectors --- */

static void
test_vectors(void **state)
{
	cJSON *root = vec_load(VECTORS), *v;
	const cJSON *vecs = cJSON_GetObjectItemCaseSensitive(root, "vectors");
	uint8_t hsk[32], hpk[32], esk[32], rid[16], rkey[32], salt[16], *want;
	const cJSON *ver;
	struct env_target t;
	struct env_session cs, hs;
	struct infkey *keys;
	struct env_replay *rc;
	struct buf wire, http;
	const char *body, *hex;
	uint64_t ts;
	size_t n, nvec = 0;

	assert_true(cJSON_IsArray(vecs));
	cJSON_ArrayForEach(v, vecs)
	{
		vec_hex(hsk, 32, v, "host_x25519_sk");
		vec_hex(hpk, 32, v, "host_x25519_pk");
		vec_hex(t.node_id, 32, v, "host_node_id");
		vec_hex(esk, 32, v, "eph_sk");
		vec_hex(rid, 16, v, "request_id");
		vec_hex(rkey, 32, v, "response_key");
		t.key.epoch =
		    (uint32_t)cJSON_GetObjectItem(v, "epoch")->valuedouble;
		memcpy(t.key.pk, hpk, 32);
		ts = (uint64_t)cJSON_GetObjectItem(v, "timestamp")->valuedouble;
		body = cJSON_GetObjectItem(v, "http")->valuestring;
		hex = cJSON_GetObjectItem(v, "envelope")->valuestring;
		n = strlen(hex) / 2;
		want = malloc(n);
		assert_non_null(want);
		assert_int_equal(sm_unhex(want, n, hex), 0);

		buf_init(&wire, ENV_WIRE_MAX);
		ver = cJSON_GetObjectItem(v, "version");
		if (ver != NULL && ver->valuedouble == 2) {
			vec_hex(salt, 16, v, "salt");
			assert_int_equal(env_seal_request2_det(&wire, &cs, &t,
					     (const uint8_t *)body,
					     strlen(body), ts, esk, salt, rid),
			    0);
		} else {
			assert_int_equal(env_seal_request_det(&wire, &cs, &t,
					     (const uint8_t *)body,
					     strlen(body), ts, esk, rid),
			    0);
		}
		assert_int_equal(wire.len, n);
		assert_memory_equal(buf_data(&wire), want, n);
		assert_memory_equal(cs.rkey, rkey, 32);

		assert_int_equal(infkey_new(&keys, 3600, 600, MONO), 0);
		assert_int_equal(
		    infkey_install_det(keys, t.key.epoch, hsk, MONO), 0);
		assert_int_equal(env_replay_new(&rc, WINDOW, 10), 0);
		assert_int_equal(env_open_request(&http, &hs, keys, t.node_id,
				     rc, want, n, ts),
		    0);
		assert_int_equal(http.len, strlen(body));
		assert_memory_equal(buf_data(&http), body, http.len);
		assert_memory_equal(hs.rkey, rkey, 32);
		assert_memory_equal(hs.request_id, rid, 16);
		buf_clear(&http);
		buf_clear(&wire);
		env_replay_free(rc);
		infkey_free(keys);
		free(want);
		nvec++;
	}
	assert_true(nvec >= 4);
	cJSON_Delete(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip_and_response),
	    cmocka_unit_test(test_buckets),
	    cmocka_unit_test(test_wrong_key_and_epoch),
	    cmocka_unit_test(test_low_order_ephemeral),
	    cmocka_unit_test(test_every_byte_flip_refused),
	    cmocka_unit_test(test_replay_and_window),
	    cmocka_unit_test(test_replay_cache_full),
	    cmocka_unit_test(test_replay_member_share),
	    cmocka_unit_test(test_replay_member_share_total),
	    cmocka_unit_test(test_wrong_host),
	    cmocka_unit_test(test_epoch_rollover_in_flight),
	    cmocka_unit_test(test_bad_inner),
	    cmocka_unit_test(test_flags),
	    cmocka_unit_test(test_peek),
	    cmocka_unit_test(test_vectors),
	    /* The same checks for version 2. */
	    cmocka_unit_test_setup_teardown(
		test_roundtrip_and_response, v2_setup, v2_teardown),
	    cmocka_unit_test_setup_teardown(
		test_wrong_key_and_epoch, v2_setup, v2_teardown),
	    cmocka_unit_test_setup_teardown(
		test_every_byte_flip_refused, v2_setup, v2_teardown),
	    cmocka_unit_test_setup_teardown(
		test_replay_and_window, v2_setup, v2_teardown),
	    cmocka_unit_test_setup_teardown(
		test_wrong_host, v2_setup, v2_teardown),
	    cmocka_unit_test_setup_teardown(
		test_epoch_rollover_in_flight, v2_setup, v2_teardown),
	    cmocka_unit_test_setup_teardown(
		test_bad_inner, v2_setup, v2_teardown),
	    cmocka_unit_test_setup_teardown(
		test_v2_sender_reuse, v2_setup, v2_teardown),
	    cmocka_unit_test(test_v2_peek),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("envelope", tests, NULL, NULL);
}
