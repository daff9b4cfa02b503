/*
 * Links end to end in one process on one libuv loop, 127.0.0.1, ephemeral
 * ports: side 'a' listens, side 'b' dials. Every wait is bounded.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <uv.h>

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "mesh/identity.h"
#include "net/join.h"
#include "net/link.h"
#include "net/tls.h"

#define WAIT_MS 10000
#define MIB (1024 * 1024)

struct T;

struct side {
	struct T *t;
	struct identity id;
	struct link_ctx *ctx;
	struct link_listener *ls;
	uint16_t port;
	/* Link events. */
	struct link *link;
	int up, closed, goaway, reason;
	uint8_t peer[ID_PK_LEN];
	uint64_t closed_at;
	/* Incoming streams. */
	int in_streams, in_closed, in_last_err;
	uint32_t in_last_h2;
	bool sink_consume;
	size_t sink_rx;
	size_t kill_after; /* sink: abort the link after this many bytes */
	struct lstream *sink_s;
};

struct T {
	uv_loop_t loop;
	struct side a, b;
	uint8_t secret[32];
};

/* ---- loop helpers ------------------------------------------------------ */

static void
tick_cb(uv_timer_t *t)
{
}

/* Run the loop until cond(arg) or 'ms' passed. Returns cond(arg). */
static bool
spin(struct T *t, bool (*cond)(void *), void *arg, uint64_t ms)
{
	uv_timer_t tick;
	uint64_t end;

	uv_update_time(&t->loop);
	end = uv_now(&t->loop) + ms;
	uv_timer_init(&t->loop, &tick);
	uv_timer_start(&tick, tick_cb, 10, 10);
	while (!cond(arg) && uv_now(&t->loop) < end)
		uv_run(&t->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(&t->loop, UV_RUN_NOWAIT);
	return cond(arg);
}

static bool
never(void *arg)
{
	return false;
}

static void
spin_ms(struct T *t, uint64_t ms)
{
	(void)spin(t, never, NULL, ms);
}

/* Run until nothing is left on the loop (bounded). */
static void
drain(struct T *t)
{
	uint64_t end = sm_now_ms() + 5000;

	while (uv_loop_alive(&t->loop) && sm_now_ms() < end) {
		uv_run(&t->loop, UV_RUN_NOWAIT);
		usleep(500);
	}
	assert_false(uv_loop_alive(&t->loop));
}

/* ---- link callbacks ---------------------------------------------------- */

static void
on_up(struct link *l, void *arg)
{
	struct side *sd = arg;

	sd->up++;
	sd->link = l;
	memcpy(sd->peer, link_peer_id(l), ID_PK_LEN);
}

static void
on_goaway(struct link *l, uint32_t h2_error, void *arg)
{
	struct side *sd = arg;

	sd->goaway++;
}

static void
on_close(struct link *l, int reason, void *arg)
{
	struct side *sd = arg;

	sd->closed++;
	sd->reason = reason;
	sd->link = NULL;
	sd->closed_at = sm_now_ms();
}

/* Incoming stream state (server side): echo, sink or reset. */
enum mode { M_ECHO, M_SINK, M_RESET };

struct srv {
	struct side *sd;
	enum mode mode;
	size_t held;
};

static void
srv_data(struct lstream *s, const uint8_t *p, size_t n, void *arg)
{
	struct srv *v = arg;
	struct side *sd = v->sd;

	switch (v->mode) {
	case M_ECHO:
		/* The relay pattern of link.h, onto the same stream. */
		assert_int_equal(lstream_write(s, p, n), 0);
		v->held += n;
		if (lstream_queued(s) <= LSTREAM_LOWAT) {
			lstream_consume(s, v->held);
			v->held = 0;
		}
		break;
	case M_SINK:
		sd->sink_rx += n;
		if (sd->sink_consume)
			lstream_consume(s, lstream_unconsumed(s));
		if (sd->kill_after != 0 && sd->sink_rx >= sd->kill_after) {
			sd->kill_after = 0;
			link_abort(
			    lstream_link(s)); /* from inside a callback */
		}
		break;
	case M_RESET:
		lstream_reset(s, LINK_H2_CANCEL); /* from inside a callback */
		lstream_consume(s, n);
		break;
	}
}

static void
srv_drain(struct lstream *s, void *arg)
{
	struct srv *v = arg;

	lstream_consume(s, v->held);
	v->held = 0;
}

static void
srv_end(struct lstream *s, void *arg)
{
	struct srv *v = arg;

	if (v->mode == M_ECHO || v->mode == M_SINK)
		assert_int_equal(lstream_end(s), 0);
}

static void
srv_close(struct lstream *s, int err, uint32_t h2_error, void *arg)
{
	struct srv *v = arg;

	if (v->sd->sink_s == s)
		v->sd->sink_s = NULL;
	v->sd->in_closed++;
	v->sd->in_last_err = err;
	v->sd->in_last_h2 = h2_error;
	free(v);
}

static const struct lstream_cb srv_cb = {
    .on_data = srv_data,
    .on_end = srv_end,
    .on_drain = srv_drain,
    .on_close = srv_close,
};

static int
on_stream(
    struct link *l, struct lstream *s, const struct lstream_req *req, void *arg)
{
	struct side *sd = arg;
	struct link_hdr h = {"content-type", "application/octet-stream"};
	struct srv *v;

	sd->in_streams++;
	if (strcmp(req->method, "POST") != 0)
		return -1;
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return -1;
	v->sd = sd;
	if (strcmp(req->path, "/echo") == 0)
		v->mode = M_ECHO;
	else if (strcmp(req->path, "/sink") == 0) {
		v->mode = M_SINK;
		sd->sink_s = s;
	} else if (strcmp(req->path, "/reset") == 0)
		v->mode = M_RESET;
	else {
		free(v);
		return -1;
	}
	assert_int_equal(req->nhdrs, 1);
	assert_string_equal(req->hdrs[0].name, "x-test");
	lstream_set_cb(s, &srv_cb, v);
	assert_int_equal(lstream_respond(s, 200, &h, 1), 0);
	return 0;
}

static const struct link_cb side_cb = {
    .on_up = on_up,
    .on_stream = on_stream,
    .on_goaway = on_goaway,
    .on_close = on_close,
};

/* ---- client streams ---------------------------------------------------- */

struct xfer {
	struct lstream *s;
	const uint8_t *data;
	size_t total, sent;
	size_t wrap; /* data repeats every 'wrap' bytes (0: no repeat) */
	uint8_t *rx;
	size_t rxlen, rxcap;
	bool consume;
	bool stop_sending;
	int status;
	bool got_hdrs, ended, closed;
	int err;
	uint32_t h2;
	uint64_t closed_at;
};

static void
x_send(struct xfer *x)
{
	size_t n;
	int r;

	while (!x->stop_sending && x->sent < x->total &&
	    lstream_queued(x->s) < 2 * LSTREAM_LOWAT) {
		n = x->total - x->sent < 16384 ? x->total - x->sent : 16384;
		if (x->wrap != 0 && n > x->wrap - x->sent % x->wrap)
			n = x->wrap - x->sent % x->wrap;
		if ((r = lstream_write(x->s,
			 x->data + (x->wrap ? x->sent % x->wrap : x->sent),
			 n)) != 0) {
			assert_int_equal(r, SM_ERR_CLOSED);
			return;
		}
		x->sent += n;
	}
	if (x->sent == x->total && !x->stop_sending)
		(void)lstream_end(x->s);
}

static void
x_headers(struct lstream *s, int status, const struct link_hdr *h, size_t n,
    void *arg)
{
	struct xfer *x = arg;

	x->status = status;
	x->got_hdrs = true;
	assert_int_equal(n, 1);
	assert_string_equal(h[0].name, "content-type");
}

static void
x_data(struct lstream *s, const uint8_t *p, size_t n, void *arg)
{
	struct xfer *x = arg;

	if (x->rx != NULL) {
		assert_true(x->rxlen + n <= x->rxcap);
		memcpy(x->rx + x->rxlen, p, n);
	}
	x->rxlen += n;
	if (x->consume)
		lstream_consume(s, n);
}

static void
x_end(struct lstream *s, void *arg)
{
	((struct xfer *)arg)->ended = true;
}

static void
x_drain(struct lstream *s, void *arg)
{
	x_send(arg);
}

static void
x_close(struct lstream *s, int err, uint32_t h2_error, void *arg)
{
	struct xfer *x = arg;

	x->closed = true;
	x->err = err;
	x->h2 = h2_error;
	x->closed_at = sm_now_ms();
	x->s = NULL;
}

static const struct lstream_cb x_cb = {
    .on_headers = x_headers,
    .on_data = x_data,
    .on_end = x_end,
    .on_drain = x_drain,
    .on_close = x_close,
};

/* Open a stream and start sending; 'hold' keeps the body back. */
static void
x_open_hold(struct link *l, const char *path, struct xfer *x,
    const uint8_t *data, size_t total, size_t rxcap, bool hold)
{
	struct link_hdr h = {"x-test", "1"};

	memset(x, 0, sizeof(*x));
	x->data = data;
	x->total = total;
	x->consume = true;
	x->stop_sending = hold;
	x->rxcap = rxcap;
	if (rxcap > 0)
		assert_non_null(x->rx = malloc(rxcap));
	assert_int_equal(
	    lstream_open(l, "POST", path, &h, 1, &x_cb, x, &x->s), 0);
	x_send(x);
}

static void
x_open(struct link *l, const char *path, struct xfer *x, const uint8_t *data,
    size_t total, size_t rxcap)
{
	x_open_hold(l, path, x, data, total, rxcap, false);
}

static bool
x_done(void *arg)
{
	return ((struct xfer *)arg)->closed;
}

/* ---- fixtures ---------------------------------------------------------- */

static void
side_init(struct T *t, struct side *sd, const uint8_t *secret,
    const struct link_opts *o)
{
	sd->t = t;
	assert_int_equal(identity_ephemeral(&sd->id), 0);
	assert_int_equal(link_ctx_new(&sd->ctx, &sd->id, secret, 32, o), 0);
}

static void
setup_opts(struct T *t, const struct link_opts *o)
{
	memset(t, 0, sizeof(*t));
	assert_int_equal(uv_loop_init(&t->loop), 0);
	randombytes_buf(t->secret, sizeof(t->secret));
	side_init(t, &t->a, t->secret, o);
	side_init(t, &t->b, t->secret, o);
	assert_int_equal(link_listen(t->a.ctx, &t->loop, "127.0.0.1", 0,
			     &side_cb, &t->a, &t->a.ls, &t->a.port),
	    0);
	assert_true(t->a.port != 0);
}

static void
setup(struct T *t)
{
	setup_opts(t, NULL);
}

static void
finish(struct T *t)
{
	if (t->a.link != NULL)
		link_close(t->a.link);
	if (t->b.link != NULL)
		link_close(t->b.link);
	link_listener_close(t->a.ls);
	drain(t);
	assert_int_equal(uv_loop_close(&t->loop), 0);
	link_ctx_free(t->a.ctx);
	link_ctx_free(t->b.ctx);
	identity_clear(&t->a.id);
	identity_clear(&t->b.id);
}

static bool
both_up(void *arg)
{
	struct T *t = arg;

	return t->a.up && t->b.up;
}

static bool
b_closed(void *arg)
{
	return ((struct T *)arg)->b.closed > 0;
}

static bool
both_closed(void *arg)
{
	struct T *t = arg;

	return t->a.closed > 0 && t->b.closed > 0;
}

static void
dial(struct T *t)
{
	struct link *l;

	assert_int_equal(link_dial(t->b.ctx, &t->loop, "127.0.0.1", t->a.port,
			     t->a.id.pk, &side_cb, &t->b, &l),
	    0);
	t->b.link = l;
}

static void
connect_pair(struct T *t)
{
	dial(t);
	assert_true(spin(t, both_up, t, WAIT_MS));
}

/* ---- tests ------------------------------------------------------------- */

static void
test_handshake(void **state)
{
	struct T t;
	struct link_stats st;
	uint64_t t0;
	int i;

	setup(&t);
	t0 = sm_now_ns();
	connect_pair(&t);
	print_message("handshake (TCP+TLS+join, in-process): %.2f ms\n",
	    (double)(sm_now_ns() - t0) / 1e6);
	assert_memory_equal(t.a.peer, t.b.id.pk, ID_PK_LEN);
	assert_memory_equal(t.b.peer, t.a.id.pk, ID_PK_LEN);
	assert_true(link_is_dialer(t.b.link));
	assert_false(link_is_dialer(t.a.link));
	assert_true(link_is_up(t.a.link) && link_is_up(t.b.link));
	/* An RTT shows up after the first ping (1 s interval). */
	spin_ms(&t, 1300);
	assert_true(link_rtt_ms(t.b.link) >= 0);
	assert_true(link_rtt_ms(t.a.link) >= 0);
	link_ctx_stats(t.a.ctx, &st);
	assert_int_equal(st.accepted, 1);
	assert_int_equal(st.up, 1);
	assert_int_equal(st.refused, 0);

	/* Average over several fresh links. */
	link_close(t.b.link);
	assert_true(spin(&t, both_closed, &t, WAIT_MS));
	t0 = sm_now_ns();
	for (i = 0; i < 20; i++) {
		t.a.up = t.b.up = t.a.closed = t.b.closed = 0;
		dial(&t);
		assert_true(spin(&t, both_up, &t, WAIT_MS));
		link_close(t.b.link);
		assert_true(spin(&t, both_closed, &t, WAIT_MS));
	}
	print_message("handshake + close, mean of 20: %.2f ms\n",
	    (double)(sm_now_ns() - t0) / 1e6 / 20);
	finish(&t);
}

static void
test_wrong_node_id(void **state)
{
	struct T t;
	struct identity other;
	struct link_stats st;
	struct link *l;

	setup(&t);
	assert_int_equal(identity_ephemeral(&other), 0);
	assert_int_equal(link_dial(t.b.ctx, &t.loop, "127.0.0.1", t.a.port,
			     other.pk, &side_cb, &t.b, &l),
	    0);
	t.b.link = l;
	assert_true(spin(&t, b_closed, &t, WAIT_MS));
	assert_int_equal(t.b.reason, SM_ERR_VERIFY);
	assert_int_equal(t.b.up, 0);
	spin_ms(&t, 50);
	assert_int_equal(t.a.up, 0);
	link_ctx_stats(t.a.ctx, &st);
	assert_int_equal(st.refused, 1);
	identity_clear(&other);
	finish(&t);
}

static void
test_wrong_secret(void **state)
{
	struct T t;
	struct link_stats st;
	struct xfer x;
	uint8_t bad[32];

	setup(&t);
	/* b holds another mesh's secret. */
	link_ctx_free(t.b.ctx);
	randombytes_buf(bad, sizeof(bad));
	assert_int_equal(link_ctx_new(&t.b.ctx, &t.b.id, bad, 32, NULL), 0);
	dial(&t);
	/* A stream opened before the link is up must never reach 'a'. */
	x_open(t.b.link, "/echo", &x, (const uint8_t *)"hello", 5, 0);
	assert_true(spin(&t, b_closed, &t, WAIT_MS));
	assert_int_equal(t.b.reason, SM_ERR_PERM);
	assert_true(x.closed);
	assert_int_equal(x.err, SM_ERR_PERM);
	spin_ms(&t, 50);
	assert_int_equal(t.a.up, 0);
	assert_int_equal(t.a.in_streams, 0);
	link_ctx_stats(t.a.ctx, &st);
	assert_int_equal(st.refused, 1);
	assert_int_equal(st.up, 0);
	finish(&t);
}

/* Records the first proof b makes, then replays it on later sessions. */
struct replay {
	const uint8_t *self;
	uint8_t saved[JOIN_PROOF_LEN];
	int made;
};

static int
replay_proof(uint8_t out[JOIN_PROOF_LEN], const uint8_t *secret,
    size_t secret_len, const uint8_t exporter[JOIN_EXPORTER_LEN],
    const uint8_t prover[JOIN_ID_LEN], const uint8_t verifier[JOIN_ID_LEN],
    void *arg)
{
	struct replay *rp = arg;
	int r;

	if (memcmp(prover, rp->self, JOIN_ID_LEN) != 0 || rp->made == 0) {
		r = join_proof(
		    out, secret, secret_len, exporter, prover, verifier, NULL);
		if (r == 0 && memcmp(prover, rp->self, JOIN_ID_LEN) == 0) {
			memcpy(rp->saved, out, JOIN_PROOF_LEN);
			rp->made++;
		}
		return r;
	}
	memcpy(out, rp->saved, JOIN_PROOF_LEN);
	return 0;
}

static void
test_replayed_proof(void **state)
{
	struct T t;
	struct replay rp = {0};
	struct link_stats st;

	setup(&t);
	rp.self = t.b.id.pk;
	link_ctx_set_proof(t.b.ctx, replay_proof, &rp);
	connect_pair(&t); /* session 1: genuine proof, recorded */
	assert_int_equal(rp.made, 1);
	link_close(t.b.link);
	assert_true(spin(&t, both_closed, &t, WAIT_MS));
	memset(&t.a.up, 0, sizeof(int));
	t.a.closed = t.b.closed = t.b.up = 0;
	dial(&t); /* session 2: the same proof, another TLS session */
	assert_true(spin(&t, b_closed, &t, WAIT_MS));
	assert_int_equal(t.b.reason, SM_ERR_PERM);
	assert_int_equal(t.b.up, 0);
	assert_int_equal(t.a.up, 0);
	link_ctx_stats(t.a.ctx, &st);
	assert_int_equal(st.up, 1);
	assert_int_equal(st.refused, 1);
	finish(&t);
}

/* The acceptor's proof is checked too. */
static int
bad_proof(uint8_t out[JOIN_PROOF_LEN], const uint8_t *secret, size_t secret_len,
    const uint8_t exporter[JOIN_EXPORTER_LEN],
    const uint8_t prover[JOIN_ID_LEN], const uint8_t verifier[JOIN_ID_LEN],
    void *arg)
{
	if (memcmp(prover, arg, JOIN_ID_LEN) == 0) {
		memset(out, 0x5a, JOIN_PROOF_LEN);
		return 0;
	}
	return join_proof(
	    out, secret, secret_len, exporter, prover, verifier, NULL);
}

static void
test_acceptor_proof_checked(void **state)
{
	struct T t;

	setup(&t);
	link_ctx_set_proof(t.a.ctx, bad_proof, t.a.id.pk);
	dial(&t);
	assert_true(spin(&t, b_closed, &t, WAIT_MS));
	assert_int_equal(t.b.reason, SM_ERR_VERIFY);
	assert_int_equal(t.b.up, 0);
	finish(&t);
}

static bool
xfers_done(void *arg)
{
	struct xfer *x = arg;

	return x[0].closed && x[1].closed;
}

static void
test_echo_both_directions(void **state)
{
	struct T t;
	struct xfer x[2];
	uint8_t *data;

	assert_non_null(data = malloc(MIB));
	randombytes_buf(data, MIB);
	setup(&t);
	connect_pair(&t);
	/* Dialer -> acceptor, and acceptor -> dialer, at the same time. */
	x_open(t.b.link, "/echo", &x[0], data, MIB, MIB);
	x_open(t.a.link, "/echo", &x[1], data, MIB, MIB);
	assert_true(spin(&t, xfers_done, x, WAIT_MS));
	for (int i = 0; i < 2; i++) {
		assert_int_equal(x[i].err, 0);
		assert_int_equal(x[i].status, 200);
		assert_true(x[i].ended);
		assert_int_equal(x[i].rxlen, MIB);
		assert_memory_equal(x[i].rx, data, MIB);
		free(x[i].rx);
	}
	assert_int_equal(t.a.in_streams, 1);
	assert_int_equal(t.b.in_streams, 1);
	assert_int_equal(t.a.in_closed, 1);
	assert_int_equal(t.b.in_closed, 1);
	assert_int_equal(link_nstreams(t.a.link), 0);
	assert_int_equal(link_nstreams(t.b.link), 0);
	free(data);
	finish(&t);
}

static bool
sink_settled(void *arg)
{
	struct T *t = arg;

	return t->a.sink_rx >= LINK_STREAM_WINDOW_INIT;
}

static bool
sink_full(void *arg)
{
	struct T *t = arg;

	return t->a.sink_rx == 4 * MIB;
}

static void
test_flow_control(void **state)
{
	struct T t;
	struct xfer x;
	uint8_t *data;

	assert_non_null(data = calloc(1, 4 * MIB));
	setup(&t);
	connect_pair(&t);
	/* The acceptor's app holds everything and consumes nothing. */
	x_open(t.b.link, "/sink", &x, data, 4 * MIB, 0);
	assert_true(spin(&t, sink_settled, &t, WAIT_MS));
	spin_ms(&t, 300);
	/* The receiver holds the initial window only (a stream that never
	 * consumed never grows it); the sender holds its queue cap. */
	assert_int_equal(t.a.sink_rx, LINK_STREAM_WINDOW_INIT);
	assert_true(lstream_queued(x.s) <= LSTREAM_SEND_MAX);
	assert_int_equal(x.sent, t.a.sink_rx + lstream_queued(x.s));
	assert_true(x.sent < 4 * MIB);
	print_message("stalled: receiver holds %zu, sender queue %zu\n",
	    t.a.sink_rx, lstream_queued(x.s));
	/* The queue has a hard cap: all or nothing past LSTREAM_SEND_MAX. */
	while (x.sent + 16384 <= 4 * MIB &&
	    lstream_write(x.s, data + x.sent, 16384) == 0)
		x.sent += 16384;
	assert_true(lstream_queued(x.s) <= LSTREAM_SEND_MAX);
	assert_true(lstream_queued(x.s) > LSTREAM_SEND_MAX - 16384);
	assert_int_equal(lstream_write(x.s, data, 16384), SM_ERR_TOOBIG);
	spin_ms(&t, 100);
	assert_int_equal(t.a.sink_rx, LINK_STREAM_WINDOW_INIT);
	/* The receiver wakes up: all of it arrives. */
	t.a.sink_consume = true;
	assert_non_null(t.a.sink_s);
	assert_int_equal(
	    lstream_unconsumed(t.a.sink_s), LINK_STREAM_WINDOW_INIT);
	lstream_consume(t.a.sink_s, lstream_unconsumed(t.a.sink_s));
	assert_true(spin(&t, sink_full, &t, WAIT_MS));
	assert_true(spin(&t, x_done, &x, WAIT_MS));
	assert_int_equal(x.err, 0);
	finish(&t);
	free(data);
}

static bool
xfers2_closed(void *arg)
{
	struct xfer *x = arg;

	return x[0].closed && x[1].closed;
}

/*
 * The stream limit and the queue: beyond the limit streams wait (the peer
 * never sees them), open in order as slots free, leave when reset, are
 * refused with SM_ERR_BUSY at the deadline; a full queue refuses at once;
 * control streams use the reserve and never wait.
 */
static void
test_stream_queue(void **state)
{
	struct link_opts o = {
	    .max_streams = 2, .queue_max = 2, .queue_timeout_ms = 1500};
	struct link_hdr h = {"x-test", "1"};
	struct link_stats st;
	struct xfer x[6], xc;
	struct T t;
	struct lstream *s;
	uint8_t data[64];
	uint64_t t0;

	memset(data, 7, sizeof(data));
	setup_opts(&t, &o);
	connect_pair(&t);
	/* Two open streams fill the limit (held: no END yet). */
	x_open_hold(t.b.link, "/sink", &x[0], data, sizeof(data), 0, true);
	x_open_hold(t.b.link, "/sink", &x[1], data, sizeof(data), 0, true);
	x_open_hold(t.b.link, "/echo", &x[2], data, sizeof(data), 64, false);
	x_open_hold(t.b.link, "/echo", &x[3], data, sizeof(data), 64, false);
	spin_ms(&t, 100);
	assert_int_equal(t.a.in_streams, 2); /* the peer sees only two */
	link_ctx_stats(t.b.ctx, &st);
	assert_int_equal(st.queued_now, 2);
	/* The queue (2) is full: refused at once. */
	assert_int_equal(
	    lstream_open(t.b.link, "POST", "/echo", &h, 1, &x_cb, &x[4], &s),
	    SM_ERR_BUSY);
	/* A control stream does not wait. */
	memset(&xc, 0, sizeof(xc));
	xc.data = data;
	xc.total = sizeof(data);
	xc.consume = true;
	xc.rxcap = sizeof(data);
	assert_non_null(xc.rx = malloc(xc.rxcap));
	assert_int_equal(lstream_open_ctl(t.b.link, "POST", "/echo", &h, 1,
			     &x_cb, &xc, &xc.s),
	    0);
	x_send(&xc);
	assert_true(spin(&t, x_done, &xc, WAIT_MS));
	assert_int_equal(xc.err, 0);
	assert_int_equal(xc.rxlen, sizeof(data));
	/* A queued stream the app resets leaves the queue, never sent. */
	lstream_reset(x[3].s, LINK_H2_CANCEL);
	assert_true(spin(&t, x_done, &x[3], WAIT_MS));
	assert_int_equal(x[3].err, SM_ERR_CLOSED);
	assert_int_equal(x[3].h2, LINK_H2_CANCEL);
	/* A slot frees: the head of the queue opens and completes. */
	x[0].stop_sending = false;
	x_send(&x[0]);
	assert_true(spin(&t, x_done, &x[2], WAIT_MS));
	assert_int_equal(x[2].err, 0);
	assert_int_equal(x[2].rxlen, sizeof(data));
	assert_memory_equal(x[2].rx, data, sizeof(data));
	/* Full again (x[1] held, x[5] waits): refused at the deadline. */
	x_open_hold(t.b.link, "/sink", &x[4], data, sizeof(data), 0, true);
	t0 = sm_now_ms();
	x_open_hold(t.b.link, "/echo", &x[5], data, sizeof(data), 64, false);
	assert_true(spin(&t, x_done, &x[5], WAIT_MS));
	assert_int_equal(x[5].err, SM_ERR_BUSY);
	assert_int_equal(x[5].h2, LINK_H2_REFUSED_STREAM);
	assert_false(x[5].got_hdrs);
	assert_true(sm_now_ms() - t0 >= 1400);
	link_ctx_stats(t.b.ctx, &st);
	assert_int_equal(st.queued_now, 0);
	assert_int_equal(st.queue_full, 1);
	assert_int_equal(st.queue_timeouts, 1);
	assert_int_equal(st.queue_count, 3); /* x[2], x[3], x[5] waited */
	/* The peer saw x[0], x[1], the control stream, x[2], x[4] only. */
	assert_int_equal(t.a.in_streams, 5);
	/* The link is fine: the held ones end normally. */
	x[1].stop_sending = false;
	x_send(&x[1]);
	x[4].stop_sending = false;
	x_send(&x[4]);
	assert_true(spin(&t, xfers2_closed, &x[0], WAIT_MS));
	assert_true(link_is_up(t.b.link));
	for (int i = 0; i < 6; i++)
		free(x[i].rx);
	free(xc.rx);
	finish(&t);
}

static bool
xfers4_closed(void *arg)
{
	struct xfer *x = arg;

	return x[0].closed && x[1].closed && x[2].closed && x[3].closed;
}

/* A link that closes with streams still queued closes them too. */
static void
test_stream_queue_link_closed(void **state)
{
	struct link_opts o = {.max_streams = 1, .queue_timeout_ms = 60000};
	struct link_stats st;
	struct xfer x[4];
	uint8_t data[16] = {0};
	struct T t;

	setup_opts(&t, &o);
	connect_pair(&t);
	for (int i = 0; i < 4; i++)
		x_open_hold(
		    t.b.link, "/sink", &x[i], data, sizeof(data), 0, true);
	spin_ms(&t, 50);
	link_ctx_stats(t.b.ctx, &st);
	assert_int_equal(st.queued_now, 3);
	link_close(t.b.link);
	assert_true(spin(&t, xfers4_closed, x, WAIT_MS));
	for (int i = 0; i < 4; i++)
		assert_int_equal(x[i].err, SM_ERR_CLOSED);
	link_ctx_stats(t.b.ctx, &st);
	assert_int_equal(st.queued_now, 0);
	assert_int_equal(st.queue_timeouts, 0);
	finish(&t);
}

static void
test_reset_one_stream(void **state)
{
	struct T t;
	struct xfer x[3];
	uint8_t *data;

	assert_non_null(data = malloc(MIB));
	randombytes_buf(data, MIB);
	setup(&t);
	connect_pair(&t);
	x_open(t.b.link, "/echo", &x[0], data, MIB, MIB);
	x_open(t.b.link, "/reset", &x[1], data, MIB, MIB); /* peer resets */
	x_open(t.b.link, "/sink", &x[2], data, MIB, 0); /* we reset */
	spin_ms(&t, 20);
	lstream_reset(x[2].s, LINK_H2_CANCEL);
	assert_true(spin(&t, xfers_done, x, WAIT_MS));
	assert_true(spin(&t, x_done, &x[2], WAIT_MS));
	assert_int_equal(x[0].err, 0);
	assert_int_equal(x[0].rxlen, MIB);
	assert_memory_equal(x[0].rx, data, MIB);
	assert_int_equal(x[1].err, SM_ERR_CLOSED);
	assert_int_equal(x[1].h2, LINK_H2_CANCEL);
	assert_int_equal(x[2].err, SM_ERR_CLOSED);
	assert_int_equal(x[2].h2, LINK_H2_CANCEL);
	spin_ms(&t, 20);
	assert_int_equal(t.a.in_closed, 3);
	assert_true(link_is_up(t.b.link));
	/* A refused stream (wrong method) closes alone too. */
	{
		struct link_hdr h = {"x-test", "1"};
		free(x[1].rx);
		memset(&x[1], 0, sizeof(x[1]));
		assert_int_equal(lstream_open(t.b.link, "GET", "/echo", &h, 1,
				     &x_cb, &x[1], &x[1].s),
		    0);
		assert_int_equal(lstream_end(x[1].s), 0);
		assert_true(spin(&t, x_done, &x[1], WAIT_MS));
		assert_int_equal(x[1].h2, LINK_H2_REFUSED_STREAM);
	}
	assert_true(link_is_up(t.b.link));
	free(x[0].rx);
	free(x[1].rx);
	free(data);
	finish(&t);
}

static void
test_goaway(void **state)
{
	struct T t;
	struct xfer x;
	struct lstream *s;
	uint8_t data[100000];

	randombytes_buf(data, sizeof(data));
	setup(&t);
	connect_pair(&t);
	/* A stream in flight when 'a' announces it is leaving... */
	x_open_hold(
	    t.b.link, "/echo", &x, data, sizeof(data), sizeof(data), true);
	spin_ms(&t, 20);
	link_goaway(t.a.link);
	assert_true(spin(&t, both_closed, &t, 200) == false);
	assert_int_equal(t.b.goaway, 1);
	/* ...no new stream either way... */
	assert_int_equal(
	    lstream_open(t.b.link, "POST", "/echo", NULL, 0, &x_cb, NULL, &s),
	    SM_ERR_CLOSED);
	assert_int_equal(
	    lstream_open(t.a.link, "POST", "/echo", NULL, 0, &x_cb, NULL, &s),
	    SM_ERR_CLOSED);
	/* ...but the open one finishes, then the link closes cleanly. */
	x.stop_sending = false;
	x_send(&x);
	assert_true(spin(&t, x_done, &x, WAIT_MS));
	assert_int_equal(x.err, 0);
	assert_memory_equal(x.rx, data, sizeof(data));
	assert_true(spin(&t, both_closed, &t, WAIT_MS));
	assert_int_equal(t.a.reason, 0);
	assert_int_equal(t.b.reason, 0);
	free(x.rx);
	finish(&t);
}

static void
test_peer_killed(void **state)
{
	struct T t;
	struct xfer x[2];
	uint8_t *data;
	uint64_t t0;

	assert_non_null(data = calloc(1, MIB));
	setup(&t);
	connect_pair(&t);
	/* Two open streams; 'a' dies (TCP RST, no goodbye) mid-stream. */
	x_open(t.b.link, "/sink", &x[0], data, MIB, 0);
	x_open_hold(t.b.link, "/echo", &x[1], data, MIB, MIB, true);
	t.a.sink_consume = true;
	t.a.kill_after = 200000;
	t0 = sm_now_ms();
	assert_true(spin(&t, xfers_done, x, WAIT_MS));
	assert_true(spin(&t, b_closed, &t, WAIT_MS));
	print_message("peer killed: streams closed after %llu ms\n",
	    (unsigned long long)(x[0].closed_at - t0));
	assert_true(x[0].closed_at - t0 < 1000);
	assert_int_equal(x[0].err, SM_ERR_CLOSED);
	assert_int_equal(x[1].err, SM_ERR_CLOSED);
	assert_int_equal(t.b.reason, SM_ERR_CLOSED);
	assert_int_equal(t.a.closed, 1);
	assert_int_equal(t.a.in_closed, 2);
	free(x[1].rx);
	free(data);
	finish(&t);
}

/* ---- a TCP proxy that can turn into a black hole ----------------------- */

struct pconn;

struct proxy {
	uv_loop_t *loop;
	uv_tcp_t ls;
	uint16_t port, target;
	bool blackhole;
	struct pconn *conns[8];
	int n;
};

struct pconn {
	struct proxy *p;
	uv_tcp_t a, b; /* a: from the dialer, b: to the target */
	uv_connect_t cr;
	bool b_up;
	uint8_t *early;
	size_t early_len;
	int nclosed;
	bool closing;
	char ra[65536], rb[65536];
};

struct pw {
	uv_write_t req;
	char data[];
};

static void
pw_done(uv_write_t *req, int status)
{
	free(req);
}

static void
pforward(uv_tcp_t *to, const char *p, size_t n)
{
	struct pw *w = malloc(sizeof(*w) + n);
	uv_buf_t b;

	assert_non_null(w);
	memcpy(w->data, p, n);
	b = uv_buf_init(w->data, (unsigned int)n);
	if (uv_write(&w->req, (uv_stream_t *)to, &b, 1, pw_done) != 0)
		free(w);
}

static void
pconn_closed(uv_handle_t *h)
{
	struct pconn *c = h->data;

	if (++c->nclosed == 2) {
		for (int i = 0; i < c->p->n; i++)
			if (c->p->conns[i] == c)
				c->p->conns[i] = NULL;
		free(c->early);
		free(c);
	}
}

static void
pconn_close(struct pconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->a, pconn_closed);
	uv_close((uv_handle_t *)&c->b, pconn_closed);
}

static void
p_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct pconn *c = h->data;

	*b = uv_buf_init(h == (uv_handle_t *)&c->a ? c->ra : c->rb, 65536);
}

static void
p_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct pconn *c = st->data;
	bool from_a = st == (uv_stream_t *)&c->a;

	if (n < 0) {
		pconn_close(c);
		return;
	}
	if (n == 0 || c->p->blackhole)
		return;
	if (from_a && !c->b_up) {
		assert_non_null(
		    c->early = realloc(c->early, c->early_len + (size_t)n));
		memcpy(c->early + c->early_len, b->base, (size_t)n);
		c->early_len += (size_t)n;
		return;
	}
	pforward(from_a ? &c->b : &c->a, b->base, (size_t)n);
}

static void
pconnected(uv_connect_t *req, int status)
{
	struct pconn *c = req->data;

	if (status < 0) {
		pconn_close(c);
		return;
	}
	c->b_up = true;
	if (c->early_len > 0 && !c->p->blackhole)
		pforward(&c->b, (const char *)c->early, c->early_len);
	uv_read_start((uv_stream_t *)&c->b, p_alloc, p_read);
}

static void
pconnection(uv_stream_t *server, int status)
{
	struct proxy *p = server->data;
	struct sockaddr_in sin;
	struct pconn *c;

	assert_non_null(c = calloc(1, sizeof(*c)));
	c->p = p;
	uv_tcp_init(p->loop, &c->a);
	uv_tcp_init(p->loop, &c->b);
	c->a.data = c->b.data = c->cr.data = c;
	assert_int_equal(uv_accept(server, (uv_stream_t *)&c->a), 0);
	assert_true(p->n < 8);
	p->conns[p->n++] = c;
	uv_read_start((uv_stream_t *)&c->a, p_alloc, p_read);
	uv_ip4_addr("127.0.0.1", p->target, &sin);
	assert_int_equal(
	    uv_tcp_connect(&c->cr, &c->b, (struct sockaddr *)&sin, pconnected),
	    0);
}

static void
proxy_start(struct proxy *p, uv_loop_t *loop, uint16_t target)
{
	struct sockaddr_in sin;
	int len = sizeof(sin);

	memset(p, 0, sizeof(*p));
	p->loop = loop;
	p->target = target;
	uv_tcp_init(loop, &p->ls);
	p->ls.data = p;
	uv_ip4_addr("127.0.0.1", 0, &sin);
	assert_int_equal(uv_tcp_bind(&p->ls, (struct sockaddr *)&sin, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&p->ls, 8, pconnection), 0);
	assert_int_equal(
	    uv_tcp_getsockname(&p->ls, (struct sockaddr *)&sin, &len), 0);
	p->port = ntohs(sin.sin_port);
}

static void
proxy_stop(struct proxy *p)
{
	for (int i = 0; i < p->n; i++)
		if (p->conns[i] != NULL)
			pconn_close(p->conns[i]);
	uv_close((uv_handle_t *)&p->ls, NULL);
}

static void
test_peer_vanished(void **state)
{
	struct link_opts o = {.ping_interval_ms = 100, .ping_timeout_ms = 500};
	struct proxy px;
	struct T t;
	struct xfer x;
	struct link *l;
	uint8_t data[1000] = {0};
	uint64_t t0;

	setup_opts(&t, &o);
	proxy_start(&px, &t.loop, t.a.port);
	assert_int_equal(link_dial(t.b.ctx, &t.loop, "127.0.0.1", px.port,
			     t.a.id.pk, &side_cb, &t.b, &l),
	    0);
	t.b.link = l;
	assert_true(spin(&t, both_up, &t, WAIT_MS));
	x_open_hold(
	    t.b.link, "/echo", &x, data, sizeof(data), sizeof(data), true);
	spin_ms(&t, 300); /* pings flow, the link stays */
	assert_true(link_is_up(t.b.link));
	assert_true(link_rtt_ms(t.b.link) >= 0);
	/* The network path dies silently: no FIN, no RST. */
	px.blackhole = true;
	t0 = sm_now_ms();
	assert_true(spin(&t, both_closed, &t, WAIT_MS));
	assert_true(x.closed);
	print_message("silent peer: stream closed after %llu ms "
		      "(ping every %u ms, timeout %u ms)\n",
	    (unsigned long long)(x.closed_at - t0), o.ping_interval_ms,
	    o.ping_timeout_ms);
	assert_true(x.closed_at - t0 < 1500);
	assert_int_equal(x.err, SM_ERR_TIMEOUT);
	assert_int_equal(t.b.reason, SM_ERR_TIMEOUT);
	/* 'a' times out too, or sees the proxy drop b's side first. */
	assert_true(
	    t.a.reason == SM_ERR_TIMEOUT || t.a.reason == SM_ERR_CLOSED);
	proxy_stop(&px);
	free(x.rx);
	finish(&t);
}

static void
test_handshake_timeout(void **state)
{
	struct link_opts o = {.handshake_timeout_ms = 300};
	struct proxy px;
	struct T t;
	struct link *l;
	uint64_t t0 = sm_now_ms();

	setup_opts(&t, &o);
	proxy_start(&px, &t.loop, t.a.port);
	px.blackhole = true; /* accepts TCP, never answers */
	assert_int_equal(link_dial(t.b.ctx, &t.loop, "127.0.0.1", px.port,
			     t.a.id.pk, &side_cb, &t.b, &l),
	    0);
	t.b.link = l;
	assert_true(spin(&t, b_closed, &t, WAIT_MS));
	assert_int_equal(t.b.reason, SM_ERR_TIMEOUT);
	assert_true(sm_now_ms() - t0 < 2000);
	/* Nothing listens here: connect fails, on_close says so. */
	t.b.closed = 0;
	proxy_stop(&px);
	spin_ms(&t, 20);
	assert_int_equal(link_dial(t.b.ctx, &t.loop, "127.0.0.1", px.port,
			     t.a.id.pk, &side_cb, &t.b, &l),
	    0);
	t.b.link = l;
	assert_true(spin(&t, b_closed, &t, WAIT_MS));
	assert_int_equal(t.b.reason, SM_ERR_IO);
	/* A name, resolved asynchronously. */
	t.b.closed = 0;
	t.b.up = 0;
	assert_int_equal(link_dial(t.b.ctx, &t.loop, "localhost", t.a.port,
			     t.a.id.pk, &side_cb, &t.b, &l),
	    0);
	t.b.link = l;
	assert_true(spin(&t, both_up, &t, WAIT_MS));
	finish(&t);
}

/* Closing a link from inside its own callbacks, streams still open. */
static void
close_in_headers(struct lstream *s, int status, const struct link_hdr *h,
    size_t n, void *arg)
{
	struct lstream *s2;

	link_close(lstream_link(s));
	assert_int_equal(lstream_write(s, "x", 1), SM_ERR_CLOSED);
	assert_int_equal(lstream_open(lstream_link(s), "POST", "/echo", NULL, 0,
			     &x_cb, arg, &s2),
	    SM_ERR_CLOSED);
}

static void
test_close_from_callback(void **state)
{
	struct lstream_cb cb = x_cb;
	struct T t;
	struct xfer x[2];
	struct link_hdr h = {"x-test", "1"};

	setup(&t);
	connect_pair(&t);
	x_open(t.b.link, "/sink", &x[1], NULL, 0, 0);
	memset(&x[0], 0, sizeof(x[0]));
	cb.on_headers = close_in_headers;
	assert_int_equal(
	    lstream_open(t.b.link, "POST", "/sink", &h, 1, &cb, &x[0], &x[0].s),
	    0);
	assert_true(spin(&t, xfers_done, x, WAIT_MS));
	assert_true(spin(&t, both_closed, &t, WAIT_MS));
	assert_int_equal(t.b.reason, 0);
	assert_int_equal(x[0].err, SM_ERR_CLOSED);
	assert_int_equal(x[1].err, SM_ERR_CLOSED);
	/* The peer saw a GOAWAY, then a clean close; its stream was cut. */
	assert_int_equal(t.a.goaway, 1);
	assert_int_equal(t.a.reason, 0);
	assert_int_equal(t.a.in_closed, 2);
	assert_int_equal(t.a.in_last_err, SM_ERR_CLOSED);
	finish(&t);
}

static void
test_throughput(void **state)
{
	struct T t;
	struct xfer x;
	uint8_t *data;
	size_t total = 256 * MIB;
	uint64_t t0;
	double s;

	if (getenv("SM_QUICK") != NULL)
		total = 32 * MIB;
	assert_non_null(data = malloc(MIB));
	randombytes_buf(data, MIB);
	setup(&t);
	connect_pair(&t);
	t.a.sink_consume = true;
	t0 = sm_now_ns();
	x_open_hold(t.b.link, "/sink", &x, data, total, 0, true);
	x.wrap = MIB;
	x.stop_sending = false;
	x_send(&x);
	assert_true(spin(&t, x_done, &x, 60000));
	s = (double)(sm_now_ns() - t0) / 1e9;
	assert_int_equal(x.err, 0);
	assert_int_equal(t.a.sink_rx, total);
	print_message("one stream, in-process loopback: %.0f MB/s "
		      "(%zu MiB in %.2f s)\n",
	    (double)total / 1e6 / s, total / MIB, s);
	free(data);
	finish(&t);
}

/* The in-test signer of a delegated identity. */
struct lk_signer {
	struct identity key;
	int calls;
};

static int
lk_sign(void *ctx, const uint8_t *msg, size_t len, uint8_t sig[ID_SIG_LEN])
{
	struct lk_signer *g = ctx;

	g->calls++;
	return identity_sign(&g->key, msg, len, sig);
}

/*
 * A node whose identity is delegated (no secret key in its struct identity,
 * signatures from a signer elsewhere) links over TCP both ways, and a
 * link_ctx renews its TLS link key before new links when told to; links made
 * before and after a renewal come up with the right node ids. Control: with
 * the default renewal (half of 24 h) nothing is renewed.
 */
static void
test_link_key_delegated_renewal(void **state)
{
	struct T t;
	struct lk_signer g;
	struct link_opts o = {.key_renew_s = TLS_LINKCERT_LIFETIME_S + 1};
	struct link_stats sa, sb;
	int i;

	(void)state;
	setup(&t);
	/* b becomes delegated, renewing before every link */
	link_ctx_free(t.b.ctx);
	identity_clear(&t.b.id);
	assert_int_equal(identity_ephemeral(&g.key), 0);
	g.calls = 0;
	identity_delegated(&t.b.id, g.key.pk, lk_sign, &g);
	assert_null(t.b.id.sk);
	assert_int_equal(link_ctx_new(&t.b.ctx, &t.b.id, t.secret, 32, &o), 0);
	assert_int_equal(g.calls, 1);
	for (i = 0; i < 3; i++) {
		t.a.up = t.b.up = t.a.closed = t.b.closed = 0;
		dial(&t);
		assert_true(spin(&t, both_up, &t, WAIT_MS));
		assert_memory_equal(t.a.peer, g.key.pk, ID_PK_LEN);
		assert_memory_equal(t.b.peer, t.a.id.pk, ID_PK_LEN);
		link_close(t.b.link);
		assert_true(spin(&t, both_closed, &t, WAIT_MS));
	}
	link_ctx_stats(t.b.ctx, &sb);
	assert_int_equal(sb.key_renewals, 3);
	assert_int_equal(g.calls, 4);
	/* control: a (defaults) accepted three links on its first key */
	link_ctx_stats(t.a.ctx, &sa);
	assert_int_equal(sa.key_renewals, 0);
	assert_int_equal(sa.up, 3);
	finish(&t);
	identity_clear(&g.key);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_handshake),
	    cmocka_unit_test(test_link_key_delegated_renewal),
	    cmocka_unit_test(test_wrong_node_id),
	    cmocka_unit_test(test_wrong_secret),
	    cmocka_unit_test(test_replayed_proof),
	    cmocka_unit_test(test_acceptor_proof_checked),
	    cmocka_unit_test(test_echo_both_directions),
	    cmocka_unit_test(test_flow_control),
	    cmocka_unit_test(test_stream_queue),
	    cmocka_unit_test(test_stream_queue_link_closed),
	    cmocka_unit_test(test_reset_one_stream),
	    cmocka_unit_test(test_goaway),
	    cmocka_unit_test(test_peer_killed),
	    cmocka_unit_test(test_peer_vanished),
	    cmocka_unit_test(test_handshake_timeout),
	    cmocka_unit_test(test_close_from_callback),
	    cmocka_unit_test(test_throughput),
	};

	if (sodium_init() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN); /* as serve does: writes to a dead peer */
	log_setup(LOG_PRETTY, LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
