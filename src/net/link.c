/*
 * Node-to-node links: libuv TCP -> TLS (tls.c) -> join proof + chunk framing
 * -> two nghttp2 sessions -> streams. See link.h for the wire format and the
 * ownership rules.
 *
 * Re-entrancy: nghttp2 is only driven (mem_recv/mem_send) from the top of a
 * libuv callback: the read callback, and the idle callback that API calls
 * schedule with link_kick(). Streams are freed only from nghttp2's stream
 * close callback or from teardown, right after their on_close; links are
 * freed from the last uv_close callback. So an app calling anything from
 * inside any callback never frees what is on the stack.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>
#include <sodium.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "net/frame.h"
#include "net/link.h"
#include "net/tls.h"

/* The wire constants of link.h are those of the framing (frame.h). */
_Static_assert(LINK_CTL_MAX == FRAME_CTL_MAX, "control chunk cap");
_Static_assert(LINK_DENY_PROOF == FRAME_DENY_PROOF, "DENY reason");

#define PLAIN_MAX (256 * 1024)
#define PLAIN_FLUSH (64 * 1024)
#define RBUF_LEN (64 * 1024)
#define LINGER_MS 1000

enum link_state {
	LS_RESOLVE, /* dialer: name lookup */
	LS_CONNECT, /* dialer: TCP connect */
	LS_TLS, /* TLS handshake */
	LS_JOIN, /* join proofs */
	LS_UP,
	LS_DEAD, /* torn down; handles closing */
};

struct link_ctx {
	struct tls_ctx *tls;
	const struct identity *id; /* the caller's; certifies new link keys */
	uint8_t pk[ID_PK_LEN];
	uint8_t *secret; /* sodium_malloc'd */
	size_t secret_len;
	join_proof_fn proof;
	void *proof_arg;
	struct link_opts opts;
	struct link_stats stats;
	size_t npreauth;
};

struct link_listener {
	uv_tcp_t tcp;
	struct link_ctx *ctx;
	struct link_cb cb;
	void *arg;
};

struct wreq {
	uv_write_t req;
	struct link *l;
	size_t len;
	uint8_t data[];
};

struct lstream {
	struct link *l;
	nghttp2_session *sess;
	int32_t id;
	bool outgoing;
	bool app; /* the app knows it: on_close is owed */
	bool closed; /* on_close delivered or being delivered */
	bool responded; /* incoming: response submitted */
	bool ended; /* lstream_end() called */
	bool reset; /* lstream_reset() called: deliver nothing more */
	bool deferred; /* data provider is waiting for lstream_write/end */
	bool want_drain; /* queue went above LSTREAM_LOWAT */
	bool drain_due;
	bool hdr_done;
	bool end_recv;
	bool cb_set;
	bool queued; /* outgoing: waiting in l's queue, not yet submitted */
	bool dropped; /* reset while queued: in l->dropped, on_close due */
	bool submitted; /* outgoing: handed to nghttp2 (l->nout or nctl) */
	bool ctl; /* lstream_open_ctl(): never queued, uses the reserve */
	uint64_t queued_ms; /* uv_now() when it entered the queue */
	struct lstream *qprev, *qnext;
	int32_t window; /* our receive window for it */
	uint64_t rx_total; /* body bytes received */
	uint64_t grow_at; /* rx_total at which the window may grow */
	struct lstream_cb cb;
	void *arg;
	struct buf out; /* body bytes queued by the app */
	size_t unconsumed;
	/* Header collection: "name\0value\0" pairs in hb. */
	struct buf hb;
	uint16_t hoff[LSTREAM_MAX_HDRS][2];
	size_t nh;
	int method_off, path_off, status;
	struct lstream *prev, *next;
};

struct link {
	struct link_ctx *ctx;
	uv_loop_t *loop;
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_timer_t qtimer; /* the queue head's deadline */
	uv_idle_t idle;
	uv_getaddrinfo_t gai;
	uv_connect_t conn;
	uv_shutdown_t shut;
	int nhandles;
	bool gai_pending;
	bool connected;
	bool handles_closing;
	bool hard;
	bool closing; /* teardown scheduled */
	int close_reason;
	enum link_state state;
	bool dialer;
	bool app_knows; /* on_close owed to the app */
	bool preauth; /* counted in ctx->npreauth */
	bool goaway_sent, goaway_recv;
	struct link_cb cb;
	void *arg;
	struct tls_conn tls;
	nghttp2_session *cli; /* we are the client */
	nghttp2_session *srv; /* we are the server */
	uint8_t peer[ID_PK_LEN];
	uint8_t exporter[TLS_EXPORTER_LEN];
	size_t wq_bytes;
	struct buf plain; /* outgoing plaintext, framed */
	uint8_t *rbuf;
	/* Chunk parser: control only during LS_JOIN, HTTP/2 only in LS_UP. */
	struct frame_rx rx;
	/* Liveness. */
	uint64_t ping_sent_ms; /* 0: none outstanding */
	uint64_t ping_sent_ns;
	uint64_t last_rx_ms;
	bool ping_confirm; /* timed out once: check again after a poll */
	double rtt_ms;
	struct lstream *streams;
	size_t nstreams;
	size_t ndrain;
	/* Outgoing streams: submitted to nghttp2, and waiting (FIFO). */
	size_t nout, nctl;
	struct lstream *qhead, *qtail;
	size_t nqueued;
	struct lstream *dropped; /* left the queue, on_close due (qnext) */
};

const double link_queue_bounds_ms[LINK_QUEUE_BUCKETS - 1] = {
    1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000};

static void link_fail(struct link *l, int reason);
static void link_kick(struct link *l);
static void pump(struct link *l);
static void queue_run(struct link *l);

static void
peer_short(const struct link *l, char out[17])
{
	char hex[ID_HEX_LEN + 1];

	sm_hex(hex, l->peer, ID_PK_LEN);
	memcpy(out, hex, 16);
	out[16] = '\0';
}

/* ---- streams ---------------------------------------------------------- */

static struct lstream *
stream_new(struct link *l, nghttp2_session *sess, bool outgoing)
{
	struct lstream *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->l = l;
	s->sess = sess;
	s->outgoing = outgoing;
	s->method_off = -1;
	s->path_off = -1;
	s->window = LINK_STREAM_WINDOW_INIT;
	s->grow_at = LINK_STREAM_WINDOW_INIT;
	buf_init(&s->out, LSTREAM_SEND_MAX);
	buf_init(&s->hb, LSTREAM_HDR_BYTES);
	return s;
}

static void
stream_link(struct link *l, struct lstream *s)
{
	s->prev = NULL;
	s->next = l->streams;
	if (l->streams != NULL)
		l->streams->prev = s;
	l->streams = s;
	l->nstreams++;
}

/* Account for a stream leaving the queue after waiting since queued_ms. */
static void
queue_note(struct link *l, struct lstream *s)
{
	struct link_stats *st = &l->ctx->stats;
	double ms = (double)(uv_now(l->loop) - s->queued_ms);
	size_t i;

	for (i = 0; i < LINK_QUEUE_BUCKETS - 1; i++)
		if (ms <= link_queue_bounds_ms[i])
			break;
	st->queue_hist[i]++;
	st->queue_sum_s += ms / 1000;
	st->queue_count++;
}

static void
queue_remove(struct link *l, struct lstream *s)
{
	if (!s->queued)
		return;
	s->queued = false;
	if (s->qprev != NULL)
		s->qprev->qnext = s->qnext;
	else
		l->qhead = s->qnext;
	if (s->qnext != NULL)
		s->qnext->qprev = s->qprev;
	else
		l->qtail = s->qprev;
	s->qprev = s->qnext = NULL;
	l->nqueued--;
	l->ctx->stats.queued_now--;
	queue_note(l, s);
}

static void
dropped_remove(struct link *l, struct lstream *s)
{
	if (!s->dropped)
		return;
	s->dropped = false;
	if (s->qprev != NULL)
		s->qprev->qnext = s->qnext;
	else
		l->dropped = s->qnext;
	if (s->qnext != NULL)
		s->qnext->qprev = s->qprev;
	s->qprev = s->qnext = NULL;
}

static void
stream_unlink(struct link *l, struct lstream *s)
{
	queue_remove(l, s);
	dropped_remove(l, s);
	if (s->submitted && s->ctl) {
		s->submitted = false;
		l->nctl--;
	} else if (s->submitted) {
		s->submitted = false;
		l->nout--;
		if (l->qhead != NULL)
			link_kick(l); /* a slot opened: the queue moves */
	}
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		l->streams = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	l->nstreams--;
	if (s->drain_due) {
		s->drain_due = false;
		l->ndrain--;
	}
}

static void
stream_free(struct lstream *s)
{
	buf_clear(&s->out);
	buf_clear(&s->hb);
	free(s);
}

/* Unlink, tell the app (once), free. */
static void
stream_finish(struct lstream *s, int err, uint32_t h2_error)
{
	struct link *l = s->l;

	stream_unlink(l, s);
	if (s->app && !s->closed) {
		s->closed = true;
		if (s->cb.on_close != NULL)
			s->cb.on_close(s, err, h2_error, s->arg);
	}
	stream_free(s);
}

static struct lstream *
stream_find(struct link *l, nghttp2_session *sess, int32_t id)
{
	struct lstream *s;

	for (s = l->streams; s != NULL; s = s->next)
		if (s->sess == sess && s->id == id)
			return s;
	return NULL;
}

static ssize_t
data_read_cb(nghttp2_session *sess, int32_t id, uint8_t *dst, size_t length,
    uint32_t *flags, nghttp2_data_source *src, void *user)
{
	struct lstream *s = src->ptr;
	struct link *l = user;
	size_t n = s->out.len < length ? s->out.len : length;

	if (l->state == LS_DEAD) {
		s->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	if (n > 0) {
		memcpy(dst, buf_data(&s->out), n);
		buf_consume(&s->out, n);
	}
	if (s->out.len == 0 && s->ended) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	} else if (n == 0) {
		s->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	if (s->want_drain && !s->drain_due && s->out.len <= LSTREAM_LOWAT) {
		s->drain_due = true;
		l->ndrain++;
	}
	return (ssize_t)n;
}

/* Wake the data provider after the app queued bytes or ended the body. */
static void
stream_resume(struct lstream *s)
{
	if (s->deferred && (s->outgoing || s->responded)) {
		s->deferred = false;
		(void)nghttp2_session_resume_data(s->sess, s->id);
	}
	link_kick(s->l);
}

static bool
stream_dead(const struct lstream *s)
{
	return s == NULL || s->closed || s->l->state == LS_DEAD ||
	    s->l->closing;
}

/* ---- nghttp2 callbacks ------------------------------------------------ */

static int
on_begin_headers(nghttp2_session *sess, const nghttp2_frame *f, void *user)
{
	struct link *l = user;
	struct lstream *s;

	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (f->headers.cat == NGHTTP2_HCAT_REQUEST) {
		if (sess != l->srv)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		if ((s = stream_new(l, sess, false)) == NULL)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		s->id = f->hd.stream_id;
		if (nghttp2_session_set_stream_user_data(sess, s->id, s) != 0) {
			stream_free(s);
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		}
		stream_link(l, s);
	}
	return 0;
}

static int
on_header(nghttp2_session *sess, const nghttp2_frame *f, const uint8_t *name,
    size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
    void *user)
{
	struct lstream *s;
	size_t off;
	int v;

	if (f->hd.type != NGHTTP2_HEADERS ||
	    (f->headers.cat != NGHTTP2_HCAT_REQUEST &&
		f->headers.cat != NGHTTP2_HCAT_RESPONSE))
		return 0;
	s = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
	if (s == NULL || s->hdr_done)
		return 0;
	if (namelen > 0 && name[0] == ':') {
		if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
			v = 0;
			for (off = 0; off < valuelen && off < 3; off++)
				v = v * 10 + (value[off] - '0');
			s->status = v;
			return 0;
		}
		if (!(namelen == 7 && memcmp(name, ":method", 7) == 0) &&
		    !(namelen == 5 && memcmp(name, ":path", 5) == 0))
			return 0;
	} else if (s->nh >= LSTREAM_MAX_HDRS) {
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	off = s->hb.len;
	if (buf_append(&s->hb, name, namelen) != 0 ||
	    buf_append(&s->hb, "", 1) != 0 ||
	    buf_append(&s->hb, value, valuelen) != 0 ||
	    buf_append(&s->hb, "", 1) != 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (name[0] == ':') {
		if (name[1] == 'm')
			s->method_off = (int)(off + namelen + 1);
		else
			s->path_off = (int)(off + namelen + 1);
		return 0;
	}
	s->hoff[s->nh][0] = (uint16_t)off;
	s->hoff[s->nh][1] = (uint16_t)(off + namelen + 1);
	s->nh++;
	return 0;
}

static size_t
stream_hdrs(struct lstream *s, struct link_hdr *out)
{
	const char *base = (const char *)buf_data(&s->hb);
	size_t i;

	for (i = 0; i < s->nh; i++) {
		out[i].name = base + s->hoff[i][0];
		out[i].value = base + s->hoff[i][1];
	}
	return s->nh;
}

static void
deliver_request(struct link *l, struct lstream *s)
{
	struct link_hdr hv[LSTREAM_MAX_HDRS];
	struct lstream_req req;
	const char *base = (const char *)buf_data(&s->hb);
	int r = -1;

	s->hdr_done = true;
	if (base != NULL && s->method_off >= 0 && s->path_off >= 0 &&
	    l->cb.on_stream != NULL && !l->goaway_sent && !l->closing) {
		req.method = base + s->method_off;
		req.path = base + s->path_off;
		req.nhdrs = stream_hdrs(s, hv);
		req.hdrs = hv;
		s->app = true; /* lstream_set_cb may be called inside */
		r = l->cb.on_stream(l, s, &req, l->arg);
	}
	buf_clear(&s->hb);
	if (r != 0 || !s->cb_set) {
		s->app = false;
		s->reset = true;
		(void)nghttp2_submit_rst_stream(
		    s->sess, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_REFUSED_STREAM);
	}
}

static void
deliver_response(struct lstream *s)
{
	struct link_hdr hv[LSTREAM_MAX_HDRS];
	size_t n;

	s->hdr_done = true;
	if (s->app && !s->reset && s->cb.on_headers != NULL) {
		n = stream_hdrs(s, hv);
		s->cb.on_headers(s, s->status, hv, n, s->arg);
	}
	buf_clear(&s->hb);
}

static void
deliver_end(struct lstream *s)
{
	s->end_recv = true;
	if (s->app && !s->reset && !s->closed && s->cb.on_end != NULL)
		s->cb.on_end(s, s->arg);
}

static int
on_frame_recv(nghttp2_session *sess, const nghttp2_frame *f, void *user)
{
	struct link *l = user;
	struct lstream *s;

	switch (f->hd.type) {
	case NGHTTP2_HEADERS:
		s = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
		if (s == NULL)
			break;
		if (!s->hdr_done && f->headers.cat == NGHTTP2_HCAT_REQUEST)
			deliver_request(l, s);
		else if (!s->hdr_done &&
		    f->headers.cat == NGHTTP2_HCAT_RESPONSE)
			deliver_response(s);
		if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
			deliver_end(s);
		break;
	case NGHTTP2_DATA:
		s = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
		if (s != NULL && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
			deliver_end(s);
		break;
	case NGHTTP2_PING:
		if ((f->hd.flags & NGHTTP2_FLAG_ACK) && sess == l->cli &&
		    l->ping_sent_ms != 0) {
			l->rtt_ms =
			    (double)(sm_now_ns() - l->ping_sent_ns) / 1e6;
			l->ping_sent_ms = 0;
		}
		break;
	case NGHTTP2_GOAWAY:
		if (!l->goaway_recv) {
			l->goaway_recv = true;
			if (l->cb.on_goaway != NULL && !l->closing)
				l->cb.on_goaway(
				    l, f->goaway.error_code, l->arg);
		}
		break;
	default:
		break;
	}
	return 0;
}

static int
on_data_chunk(nghttp2_session *sess, uint8_t flags, int32_t id,
    const uint8_t *p, size_t n, void *user)
{
	struct lstream *s;

	/* Credit the connection at once: only streams hold back the peer. */
	(void)nghttp2_session_consume_connection(sess, n);
	s = nghttp2_session_get_stream_user_data(sess, id);
	if (s == NULL || !s->app || s->reset || s->closed ||
	    s->cb.on_data == NULL) {
		(void)nghttp2_session_consume_stream(sess, id, n);
		return 0;
	}
	s->unconsumed += n;
	s->rx_total += n;
	s->cb.on_data(s, p, n, s->arg);
	return 0;
}

static int
on_stream_close(
    nghttp2_session *sess, int32_t id, uint32_t h2_error, void *user)
{
	struct lstream *s = nghttp2_session_get_stream_user_data(sess, id);

	if (s == NULL)
		return 0;
	stream_finish(s,
	    h2_error == NGHTTP2_NO_ERROR && s->end_recv ? 0 : SM_ERR_CLOSED,
	    h2_error);
	return 0;
}

static int
on_frame_not_send(
    nghttp2_session *sess, const nghttp2_frame *f, int err, void *user)
{
	struct link *l = user;
	struct lstream *s;

	/* A request that never opened (GOAWAY, reset first): close it here. */
	if (f->hd.type != NGHTTP2_HEADERS ||
	    f->headers.cat != NGHTTP2_HCAT_REQUEST ||
	    nghttp2_session_get_stream_user_data(sess, f->hd.stream_id) != NULL)
		return 0;
	if ((s = stream_find(l, sess, f->hd.stream_id)) != NULL)
		stream_finish(s, SM_ERR_CLOSED, NGHTTP2_REFUSED_STREAM);
	return 0;
}

static int
h2_session_new(struct link *l, bool server, nghttp2_session **out)
{
	nghttp2_session_callbacks *cbs = NULL;
	nghttp2_option *opt = NULL;
	uint32_t max = l->ctx->opts.max_streams;
	nghttp2_settings_entry iv[] = {
	    {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max + LINK_CTL_STREAMS},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, LINK_STREAM_WINDOW_INIT},
	    {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 2 * LSTREAM_HDR_BYTES},
	    {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	};
	int r = SM_ERR_NOMEM;

	*out = NULL;
	if (nghttp2_session_callbacks_new(&cbs) != 0 ||
	    nghttp2_option_new(&opt) != 0)
		goto out;
	nghttp2_session_callbacks_set_on_begin_headers_callback(
	    cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(
	    cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
	    cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(
	    cbs, on_stream_close);
	nghttp2_session_callbacks_set_on_frame_not_send_callback(
	    cbs, on_frame_not_send);
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_no_closed_streams(opt, 1);
	nghttp2_option_set_peer_max_concurrent_streams(
	    opt, max + LINK_CTL_STREAMS);
	if ((server ? nghttp2_session_server_new2(out, cbs, l, opt)
		    : nghttp2_session_client_new2(out, cbs, l, opt)) != 0)
		goto out;
	/* ENABLE_PUSH is a client-only setting. */
	if (nghttp2_submit_settings(*out, NGHTTP2_FLAG_NONE, iv,
		server ? SM_ARRAY_LEN(iv) - 1 : SM_ARRAY_LEN(iv)) != 0 ||
	    nghttp2_session_set_local_window_size(
		*out, NGHTTP2_FLAG_NONE, 0, LINK_CONN_WINDOW) != 0) {
		nghttp2_session_del(*out);
		*out = NULL;
		goto out;
	}
	r = 0;
out:
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cbs);
	return r;
}

/* ---- output ----------------------------------------------------------- */

static void
on_write(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct link *l = w->l;

	l->wq_bytes -= w->len;
	free(w);
	if (status < 0) {
		if (status != UV_ECANCELED)
			link_fail(l, SM_ERR_CLOSED);
		return;
	}
	if (l->state == LS_UP && !l->closing && l->wq_bytes < LINK_WQ_HIGH)
		link_kick(l);
}

/* Move TLS ciphertext to the socket. */
static void
flush_tls(struct link *l)
{
	struct wreq *w;
	uv_buf_t b;
	size_t pend;

	while (l->connected && !uv_is_closing((uv_handle_t *)&l->tcp) &&
	    (pend = tls_conn_pending(&l->tls)) > 0) {
		if ((w = malloc(sizeof(*w) + pend)) == NULL) {
			link_fail(l, SM_ERR_NOMEM);
			return;
		}
		w->l = l;
		w->len = tls_conn_take(&l->tls, w->data, pend);
		b = uv_buf_init((char *)w->data, (unsigned int)w->len);
		if (uv_write(&w->req, (uv_stream_t *)&l->tcp, &b, 1,
			on_write) != 0) {
			free(w);
			link_fail(l, SM_ERR_IO);
			return;
		}
		l->wq_bytes += w->len;
	}
}

/* Encrypt the framed plaintext and send it. */
static void
flush_plain(struct link *l)
{
	if (l->plain.len > 0) {
		if (tls_conn_write(
			&l->tls, buf_data(&l->plain), l->plain.len) != 0) {
			link_fail(l, SM_ERR_PROTO);
			return;
		}
		buf_reset(&l->plain);
	}
	flush_tls(l);
}

static int
put_chunk(struct link *l, uint8_t chan, const uint8_t *p, size_t n)
{
	uint8_t h[FRAME_HDR_LEN];
	size_t take;
	int r;

	while (n > 0) {
		take = n > FRAME_LEN_MAX ? FRAME_LEN_MAX : n;
		if (l->plain.len + FRAME_HDR_LEN + take > PLAIN_MAX)
			flush_plain(l);
		if ((r = frame_hdr_write(h, chan, take)) != 0 ||
		    (r = buf_append(&l->plain, h, sizeof(h))) != 0 ||
		    (r = buf_append(&l->plain, p, take)) != 0)
			return r;
		p += take;
		n -= take;
	}
	return 0;
}

static void
send_ctl(struct link *l, const uint8_t *msg, size_t n)
{
	if (put_chunk(l, FRAME_CHAN_CTL, msg, n) != 0) {
		link_fail(l, SM_ERR_NOMEM);
		return;
	}
	flush_plain(l);
}

static uint8_t
chan_of(const struct link *l, const nghttp2_session *sess)
{
	return (sess == l->cli) == l->dialer ? FRAME_CHAN_DIALER
					     : FRAME_CHAN_ACCEPTOR;
}

static void
deliver_drains(struct link *l)
{
	struct lstream *s, *next;

	for (s = l->streams; s != NULL && l->ndrain > 0 && !l->closing;
	     s = next) {
		next = s->next;
		if (!s->drain_due)
			continue;
		s->drain_due = false;
		l->ndrain--;
		s->want_drain = false;
		if (s->app && !s->closed && s->cb.on_drain != NULL)
			s->cb.on_drain(s, s->arg);
	}
}

/* Move HTTP/2 output to TLS while the socket queue has room. */
static void
pump(struct link *l)
{
	nghttp2_session *ss[2];
	const uint8_t *d;
	ssize_t n;
	bool progress, cli_done, srv_done;
	size_t i;

	if (l->qhead != NULL || l->dropped != NULL)
		queue_run(l);
	if (l->state != LS_UP || l->closing)
		return;
	ss[0] = l->cli;
	ss[1] = l->srv;
	do {
		progress = false;
		for (i = 0; i < 2; i++) {
			if ((n = nghttp2_session_mem_send(ss[i], &d)) < 0) {
				log_warn("link: http/2 send: %s",
				    nghttp2_strerror((int)n));
				link_fail(l, SM_ERR_PROTO);
				return;
			}
			if (n == 0)
				continue;
			progress = true;
			if (put_chunk(l, chan_of(l, ss[i]), d, (size_t)n) !=
			    0) {
				link_fail(l, SM_ERR_NOMEM);
				return;
			}
		}
		if (l->plain.len >= PLAIN_FLUSH)
			flush_plain(l);
	} while (progress && !l->closing && l->wq_bytes < LINK_WQ_HIGH);
	flush_plain(l);
	if (l->ndrain > 0)
		deliver_drains(l);
	if (l->closing)
		return;
	/*
	 * A session is done after GOAWAY with no stream left. Both done: a
	 * graceful end. One done without our or the peer's GOAWAY: nghttp2
	 * terminated it on a protocol error.
	 */
	cli_done = !nghttp2_session_want_read(l->cli) &&
	    !nghttp2_session_want_write(l->cli);
	srv_done = !nghttp2_session_want_read(l->srv) &&
	    !nghttp2_session_want_write(l->srv);
	if (cli_done && srv_done)
		link_fail(l, 0);
	else if ((cli_done || srv_done) && !l->goaway_sent && !l->goaway_recv)
		link_fail(l, SM_ERR_PROTO);
}

/* ---- lifecycle -------------------------------------------------------- */

static void
link_free(struct link *l)
{
	tls_conn_clear(&l->tls);
	frame_rx_clear(&l->rx);
	buf_clear(&l->plain);
	free(l->rbuf);
	sodium_memzero(l->exporter, sizeof(l->exporter));
	free(l);
}

static void
on_handle_closed(uv_handle_t *h)
{
	struct link *l = h->data;

	if (--l->nhandles == 0 && !l->gai_pending)
		link_free(l);
}

static void
close_handles(struct link *l)
{
	if (l->handles_closing)
		return;
	l->handles_closing = true;
	if (!uv_is_closing((uv_handle_t *)&l->tcp))
		uv_close((uv_handle_t *)&l->tcp, on_handle_closed);
	uv_close((uv_handle_t *)&l->timer, on_handle_closed);
	uv_close((uv_handle_t *)&l->qtimer, on_handle_closed);
	uv_close((uv_handle_t *)&l->idle, on_handle_closed);
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
	close_handles(req->data);
}

static void
on_linger(uv_timer_t *t)
{
	close_handles(t->data);
}

/*
 * A local close of a working link: tell the peer with GOAWAY (both sessions)
 * so it sees a node leaving, not a broken link. Only control frames go out:
 * data providers defer once the link is dead.
 */
static void
final_goaway(struct link *l)
{
	nghttp2_session *ss[2] = {l->srv, l->cli};
	const uint8_t *d;
	ssize_t n;
	size_t i;

	for (i = 0; i < 2; i++) {
		if (!l->goaway_sent)
			(void)nghttp2_submit_goaway(ss[i], NGHTTP2_FLAG_NONE,
			    nghttp2_session_get_last_proc_stream_id(ss[i]),
			    NGHTTP2_NO_ERROR, NULL, 0);
		while ((n = nghttp2_session_mem_send(ss[i], &d)) > 0)
			if (put_chunk(l, chan_of(l, ss[i]), d, (size_t)n) != 0)
				break;
	}
	l->goaway_sent = true;
	flush_plain(l);
}

/* From the top of a loop callback only: notify everyone, release. */
static void
teardown(struct link *l)
{
	int reason = l->close_reason;
	bool was_up = l->state == LS_UP;
	char who[17];

	l->state = LS_DEAD;
	uv_timer_stop(&l->timer);
	uv_timer_stop(&l->qtimer);
	uv_idle_stop(&l->idle);
	if (l->connected && !uv_is_closing((uv_handle_t *)&l->tcp))
		uv_read_stop((uv_stream_t *)&l->tcp);
	if (l->gai_pending)
		(void)uv_cancel((uv_req_t *)&l->gai);
	if (l->preauth) {
		l->preauth = false;
		l->ctx->npreauth--;
	}
	if (!was_up && reason != 0)
		l->ctx->stats.refused++;
	peer_short(l, who);
	if (reason != 0)
		log_info("link %s %s: closed: %s", l->dialer ? "to" : "from",
		    who, sm_strerror(reason));
	else
		log_debug("link %s %s: closed", l->dialer ? "to" : "from", who);
	if (was_up && reason == 0 && !l->hard)
		final_goaway(l);
	while (l->streams != NULL)
		stream_finish(l->streams, reason != 0 ? reason : SM_ERR_CLOSED,
		    NGHTTP2_CANCEL);
	nghttp2_session_del(l->cli);
	nghttp2_session_del(l->srv);
	l->cli = l->srv = NULL;
	if (l->app_knows) {
		l->app_knows = false;
		if (l->cb.on_close != NULL)
			l->cb.on_close(l, reason, l->arg);
	}
	if (l->hard || !l->connected || uv_is_closing((uv_handle_t *)&l->tcp)) {
		close_handles(l);
		return;
	}
	/* Graceful: close_notify, let queued bytes (a DENY) reach the peer. */
	tls_conn_shutdown(&l->tls);
	flush_tls(l);
	l->shut.data = l;
	if (uv_shutdown(&l->shut, (uv_stream_t *)&l->tcp, on_shutdown) != 0) {
		close_handles(l);
		return;
	}
	uv_timer_start(&l->timer, on_linger, LINGER_MS, 0);
}

static void
on_idle(uv_idle_t *h)
{
	struct link *l = h->data;

	uv_idle_stop(h);
	if (l->state == LS_DEAD)
		return;
	if (l->closing)
		teardown(l);
	else
		pump(l);
}

static void
link_kick(struct link *l)
{
	if (l->state != LS_DEAD)
		uv_idle_start(&l->idle, on_idle);
}

/* Schedule teardown with 'reason'; the first reason wins. */
static void
link_fail(struct link *l, int reason)
{
	if (l->closing || l->state == LS_DEAD)
		return;
	l->closing = true;
	l->close_reason = reason;
	if (l->connected && !uv_is_closing((uv_handle_t *)&l->tcp))
		uv_read_stop((uv_stream_t *)&l->tcp);
	uv_idle_start(&l->idle, on_idle);
}

static void
on_handshake_timeout(uv_timer_t *t)
{
	struct link *l = t->data;

	log_warn("link: handshake timed out");
	link_fail(l, SM_ERR_TIMEOUT);
}

static void
on_ping_timer(uv_timer_t *t)
{
	struct link *l = t->data;
	uint64_t now = uv_now(l->loop), opaque;
	uint32_t to = l->ctx->opts.ping_timeout_ms;
	char who[17];

	if (l->state != LS_UP || l->closing)
		return;
	if (l->ping_sent_ms != 0) {
		if (now - l->ping_sent_ms < to || now - l->last_rx_ms < to) {
			l->ping_confirm = false;
			return;
		}
		/*
		 * Timers run before the loop polls for I/O: after a long busy
		 * stretch of our own (thousands of streams opening at once)
		 * the answer may be waiting unread. Look again right after the
		 * next poll; only silence then is the peer's.
		 */
		if (!l->ping_confirm) {
			l->ping_confirm = true;
			/* 1 ms, not 0: libuv would run it in this very
			 * timer phase, before polling. */
			uv_timer_start(&l->timer, on_ping_timer, 1,
			    l->ctx->opts.ping_interval_ms);
			return;
		}
		peer_short(l, who);
		log_warn("link %s: no answer for %u ms", who, to);
		link_fail(l, SM_ERR_TIMEOUT);
		return;
	}
	opaque = sm_now_ns();
	if (nghttp2_submit_ping(
		l->cli, NGHTTP2_FLAG_NONE, (const uint8_t *)&opaque) != 0)
		return;
	l->ping_sent_ms = now ? now : 1;
	l->ping_sent_ns = opaque;
	link_kick(l);
}

/*
 * Before a new link: once half of the link key's certified lifetime has
 * passed, make a fresh TLS context (new link key, certified by c->id) for
 * this and later links. Links already up keep their SSL objects, which hold
 * their own reference to the old OpenSSL context. On failure the old context
 * stays (logged); the next link tries again.
 */
static void
link_ctx_renew(struct link_ctx *c)
{
	struct tls_ctx *fresh;
	uint64_t na = tls_ctx_not_after(c->tls);
	int r;

	if (na == 0 || sm_wall_s() + c->opts.key_renew_s < na)
		return;
	if ((r = tls_ctx_new(&fresh, c->id)) != 0) {
		log_warn(
		    "link: cannot renew the TLS link key (%s); keeping the "
		    "old one",
		    sm_strerror(r));
		return;
	}
	tls_ctx_free(c->tls);
	c->tls = fresh;
	c->stats.key_renewals++;
	log_info("link: TLS link key renewed");
}

static struct link *
link_new(
    struct link_ctx *c, uv_loop_t *loop, bool dialer, const uint8_t *expect)
{
	struct link *l;

	link_ctx_renew(c);
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->ctx = c;
	l->loop = loop;
	l->dialer = dialer;
	l->rtt_ms = -1;
	buf_init(&l->plain, PLAIN_MAX);
	frame_rx_init(&l->rx, 0); /* nothing before the TLS handshake */
	if (expect != NULL)
		memcpy(l->peer, expect, ID_PK_LEN);
	if ((l->rbuf = malloc(RBUF_LEN)) == NULL ||
	    tls_conn_init(&l->tls, c->tls, dialer, expect) != 0 ||
	    h2_session_new(l, false, &l->cli) != 0 ||
	    h2_session_new(l, true, &l->srv) != 0) {
		nghttp2_session_del(l->cli);
		nghttp2_session_del(l->srv);
		link_free(l);
		return NULL;
	}
	uv_tcp_init(loop, &l->tcp);
	uv_timer_init(loop, &l->timer);
	uv_timer_init(loop, &l->qtimer);
	uv_idle_init(loop, &l->idle);
	l->tcp.data = l->timer.data = l->qtimer.data = l->idle.data = l;
	l->nhandles = 4;
	return l;
}

/* ---- input ------------------------------------------------------------ */

static void
go_up(struct link *l)
{
	uint32_t iv = l->ctx->opts.ping_interval_ms;

	l->state = LS_UP;
	frame_rx_allow(&l->rx, FRAME_ALLOW_H2);
	if (l->preauth) {
		l->preauth = false;
		l->ctx->npreauth--;
	}
	l->ctx->stats.up++;
	l->app_knows = true;
	uv_timer_stop(&l->timer);
	uv_timer_start(&l->timer, on_ping_timer, iv, iv);
	if (l->cb.on_up != NULL)
		l->cb.on_up(l, l->arg);
	link_kick(l);
}

static void
send_join(struct link *l)
{
	uint8_t proof[JOIN_PROOF_LEN], msg[FRAME_JOIN_LEN];
	struct link_ctx *c = l->ctx;

	if (c->proof(proof, c->secret, c->secret_len, l->exporter, c->pk,
		l->peer, c->proof_arg) != 0) {
		link_fail(l, SM_ERR_INTERNAL);
		goto out;
	}
	frame_ctl_write_join(msg, proof);
	send_ctl(l, msg, sizeof(msg));
out:
	sodium_memzero(proof, sizeof(proof));
	sodium_memzero(msg, sizeof(msg));
}

static void
handle_join(struct link *l, const uint8_t *proof)
{
	uint8_t want[JOIN_PROOF_LEN], deny[FRAME_DENY_LEN];
	struct link_ctx *c = l->ctx;
	char who[17];

	if (c->proof(want, c->secret, c->secret_len, l->exporter, l->peer,
		c->pk, c->proof_arg) != 0) {
		link_fail(l, SM_ERR_INTERNAL);
		goto out;
	}
	if (sodium_memcmp(want, proof, JOIN_PROOF_LEN) != 0) {
		peer_short(l, who);
		log_warn("link %s %s: join proof refused",
		    l->dialer ? "to" : "from", who);
		if (!l->dialer) {
			frame_ctl_write_deny(deny, LINK_DENY_PROOF);
			send_ctl(l, deny, sizeof(deny));
		}
		link_fail(l, SM_ERR_VERIFY);
		goto out;
	}
	if (!l->dialer)
		send_join(l);
	if (!l->closing)
		go_up(l);
out:
	sodium_memzero(want, sizeof(want));
}

/* One whole control message (chan 0; only accepted during LS_JOIN). */
static void
handle_ctl(struct link *l, const uint8_t *m, size_t n)
{
	struct frame_ctl ctl;
	char who[17];

	if (frame_ctl_parse(m, n, &ctl) != 0 || l->state != LS_JOIN) {
		link_fail(l, SM_ERR_PROTO);
	} else if (ctl.type == FRAME_CTL_JOIN) {
		handle_join(l, ctl.proof);
	} else if (ctl.type == FRAME_CTL_DENY && l->dialer) {
		peer_short(l, who);
		log_warn("link to %s: peer refused our join proof (reason %u)",
		    who, (unsigned)ctl.reason);
		link_fail(l, SM_ERR_PERM);
	} else {
		link_fail(l, SM_ERR_PROTO);
	}
}

/*
 * Split TLS plaintext into chunks (frame.c): control messages or HTTP/2
 * bytes. Which channels are allowed follows l->state (tls_done, go_up), and
 * is checked at each chunk header.
 */
static void
demux(struct link *l, const uint8_t *p, size_t n)
{
	nghttp2_session *sess;
	struct frame f;
	size_t used;
	ssize_t rv;
	int r;

	while (n > 0 && !l->closing) {
		r = frame_feed(&l->rx, p, n, &used, &f);
		p += used;
		n -= used;
		if (r == SM_ERR_AGAIN)
			break;
		if (r != 0) {
			link_fail(l, SM_ERR_PROTO);
			return;
		}
		if (f.chan == FRAME_CHAN_CTL) {
			handle_ctl(l, f.p, f.n);
			continue;
		}
		sess = chan_of(l, l->cli) == f.chan ? l->cli : l->srv;
		rv = nghttp2_session_mem_recv(sess, f.p, f.n);
		if (rv < 0) {
			log_warn("link: http/2 receive: %s",
			    nghttp2_strerror((int)rv));
			link_fail(l, SM_ERR_PROTO);
			return;
		}
	}
}

static void
tls_done(struct link *l)
{
	char who[17];

	memcpy(l->peer, l->tls.peer_pk, ID_PK_LEN);
	if (sodium_memcmp(l->peer, l->ctx->pk, ID_PK_LEN) == 0) {
		log_warn("link: peer has our own node id");
		link_fail(l, SM_ERR_VERIFY);
		return;
	}
	if (tls_conn_exporter(&l->tls, l->exporter) != 0) {
		link_fail(l, SM_ERR_INTERNAL);
		return;
	}
	peer_short(l, who);
	log_debug("link %s %s: tls up", l->dialer ? "to" : "from", who);
	l->state = LS_JOIN;
	frame_rx_allow(&l->rx, FRAME_ALLOW_CTL);
	if (l->dialer)
		send_join(l);
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct link *l = h->data;

	*b = uv_buf_init((char *)l->rbuf, RBUF_LEN);
}

static void
on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct link *l = st->data;
	uint8_t pt[16 * 1024];
	size_t n;
	int r;

	if (l->closing || l->state == LS_DEAD || nread == 0)
		return;
	if (nread < 0) {
		if (nread != UV_EOF)
			log_debug("link: read: %s", uv_strerror((int)nread));
		link_fail(l, SM_ERR_CLOSED);
		return;
	}
	l->last_rx_ms = uv_now(l->loop);
	if (tls_conn_feed(&l->tls, (const uint8_t *)b->base, (size_t)nread) !=
	    0) {
		link_fail(l, SM_ERR_NOMEM);
		return;
	}
	if (!l->tls.done) {
		r = tls_conn_handshake(&l->tls);
		flush_tls(l);
		if (r == SM_ERR_AGAIN)
			return;
		if (r != 0) {
			link_fail(l, r);
			return;
		}
		tls_done(l);
	}
	while (!l->closing) {
		r = tls_conn_read(&l->tls, pt, sizeof(pt), &n);
		if (r == SM_ERR_AGAIN)
			break;
		if (r != 0) {
			link_fail(l,
			    r == SM_ERR_CLOSED &&
				    (l->goaway_recv || l->goaway_sent)
				? 0
				: r);
			break;
		}
		demux(l, pt, n);
	}
	sodium_memzero(pt, sizeof(pt));
	flush_tls(l); /* post-handshake TLS messages */
	pump(l);
}

static void
on_connect(uv_connect_t *req, int status)
{
	struct link *l = req->data;
	int r;

	if (status == UV_ECANCELED || l->closing)
		return;
	if (status < 0) {
		log_info("link: connect: %s", uv_strerror(status));
		link_fail(l, SM_ERR_IO);
		return;
	}
	l->connected = true;
	l->state = LS_TLS;
	(void)uv_tcp_nodelay(&l->tcp, 1);
	if (uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read) != 0) {
		link_fail(l, SM_ERR_IO);
		return;
	}
	r = tls_conn_handshake(&l->tls); /* ClientHello */
	flush_tls(l);
	if (r != SM_ERR_AGAIN && r != 0)
		link_fail(l, r);
}

static void
start_connect(struct link *l, const struct sockaddr *sa)
{
	int r;

	l->state = LS_CONNECT;
	l->conn.data = l;
	if ((r = uv_tcp_connect(&l->conn, &l->tcp, sa, on_connect)) != 0) {
		log_info("link: connect: %s", uv_strerror(r));
		link_fail(l, SM_ERR_IO);
	}
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct link *l = req->data;

	l->gai_pending = false;
	if (l->state == LS_DEAD) {
		if (res != NULL)
			uv_freeaddrinfo(res);
		if (l->nhandles == 0)
			link_free(l);
		return;
	}
	if (!l->closing) {
		if (status < 0 || res == NULL) {
			log_info("link: resolve: %s", uv_strerror(status));
			link_fail(l, SM_ERR_IO);
		} else {
			start_connect(l, res->ai_addr);
		}
	}
	if (res != NULL)
		uv_freeaddrinfo(res);
}

/* ---- public: context -------------------------------------------------- */

int
link_ctx_new(struct link_ctx **out, const struct identity *id,
    const uint8_t *join_secret, size_t join_secret_len,
    const struct link_opts *opts)
{
	struct link_ctx *c = NULL;
	int r = SM_ERR_INVAL;

	*out = NULL;
	if (id == NULL || join_secret == NULL ||
	    join_secret_len < JOIN_SECRET_MIN ||
	    join_secret_len > JOIN_SECRET_MAX)
		goto out;
	r = SM_ERR_NOMEM;
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->secret = sodium_malloc(join_secret_len)) == NULL)
		goto out;
	(void)sodium_mlock(c->secret, join_secret_len);
	memcpy(c->secret, join_secret, join_secret_len);
	c->secret_len = join_secret_len;
	memcpy(c->pk, id->pk, ID_PK_LEN);
	c->id = id;
	c->proof = join_proof;
	c->opts.handshake_timeout_ms = LINK_HANDSHAKE_TIMEOUT_MS;
	c->opts.ping_interval_ms = LINK_PING_INTERVAL_MS;
	c->opts.ping_timeout_ms = LINK_PING_TIMEOUT_MS;
	c->opts.max_streams = LINK_MAX_STREAMS;
	c->opts.queue_max = LINK_QUEUE_MAX;
	c->opts.queue_timeout_ms = LINK_QUEUE_TIMEOUT_MS;
	c->opts.key_renew_s = TLS_LINKCERT_LIFETIME_S / 2;
	if (opts != NULL) {
		if (opts->handshake_timeout_ms != 0)
			c->opts.handshake_timeout_ms =
			    opts->handshake_timeout_ms;
		if (opts->ping_interval_ms != 0)
			c->opts.ping_interval_ms = opts->ping_interval_ms;
		if (opts->ping_timeout_ms != 0)
			c->opts.ping_timeout_ms = opts->ping_timeout_ms;
		if (opts->max_streams != 0)
			c->opts.max_streams = opts->max_streams;
		if (opts->queue_max != 0)
			c->opts.queue_max = opts->queue_max;
		if (opts->queue_timeout_ms != 0)
			c->opts.queue_timeout_ms = opts->queue_timeout_ms;
		if (opts->key_renew_s != 0)
			c->opts.key_renew_s = opts->key_renew_s;
	}
	r = SM_ERR_INVAL;
	if (c->opts.max_streams > LINK_MAX_STREAMS_MAX)
		goto out;
	if ((r = tls_ctx_new(&c->tls, id)) != 0)
		goto out;
	*out = c;
	c = NULL;
	r = 0;
out:
	link_ctx_free(c);
	return r;
}

void
link_ctx_free(struct link_ctx *c)
{
	if (c == NULL)
		return;
	tls_ctx_free(c->tls);
	if (c->secret != NULL)
		sodium_free(c->secret); /* wipes */
	free(c);
}

void
link_ctx_set_proof(struct link_ctx *c, join_proof_fn fn, void *arg)
{
	c->proof = fn != NULL ? fn : join_proof;
	c->proof_arg = arg;
}

void
link_ctx_stats(const struct link_ctx *c, struct link_stats *out)
{
	*out = c->stats;
}

/* ---- public: listen / dial -------------------------------------------- */

static void
on_reject_closed(uv_handle_t *h)
{
	free(h);
}

static void
on_connection(uv_stream_t *server, int status)
{
	struct link_listener *ls = server->data;
	struct link_ctx *c = ls->ctx;
	struct link *l;
	uv_tcp_t *t;

	if (status < 0) {
		log_warn("link: accept: %s", uv_strerror(status));
		return;
	}
	if (c->npreauth >= LINK_MAX_PREAUTH ||
	    (l = link_new(c, server->loop, false, NULL)) == NULL) {
		/* Take it off the backlog and drop it. */
		if ((t = malloc(sizeof(*t))) == NULL)
			return;
		uv_tcp_init(server->loop, t);
		(void)uv_accept(server, (uv_stream_t *)t);
		uv_close((uv_handle_t *)t, on_reject_closed);
		log_warn("link: connection dropped (too many pending)");
		return;
	}
	c->stats.accepted++;
	c->npreauth++;
	l->preauth = true;
	l->cb = ls->cb;
	l->arg = ls->arg;
	l->state = LS_TLS;
	uv_timer_start(
	    &l->timer, on_handshake_timeout, c->opts.handshake_timeout_ms, 0);
	if (uv_accept(server, (uv_stream_t *)&l->tcp) != 0) {
		link_fail(l, SM_ERR_IO);
		return;
	}
	l->connected = true;
	(void)uv_tcp_nodelay(&l->tcp, 1);
	if (uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read) != 0)
		link_fail(l, SM_ERR_IO);
}

static int
parse_addr(const char *host, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0 ||
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
		return 0;
	return SM_ERR_INVAL;
}

static void
on_listener_closed(uv_handle_t *h)
{
	free(h->data);
}

int
link_listen(struct link_ctx *c, uv_loop_t *loop, const char *bind_addr,
    uint16_t port, const struct link_cb *cb, void *arg,
    struct link_listener **out, uint16_t *bound_port)
{
	struct link_listener *ls;
	struct sockaddr_storage ss;
	int len = sizeof(ss), r;

	*out = NULL;
	*bound_port = 0;
	if (cb == NULL ||
	    parse_addr(bind_addr != NULL ? bind_addr : "0.0.0.0", port, &ss) !=
		0)
		return SM_ERR_INVAL;
	if ((ls = calloc(1, sizeof(*ls))) == NULL)
		return SM_ERR_NOMEM;
	ls->ctx = c;
	ls->cb = *cb;
	ls->arg = arg;
	uv_tcp_init(loop, &ls->tcp);
	ls->tcp.data = ls;
	if ((r = uv_tcp_bind(&ls->tcp, (struct sockaddr *)&ss, 0)) != 0 ||
	    (r = uv_listen((uv_stream_t *)&ls->tcp, 128, on_connection)) != 0 ||
	    (r = uv_tcp_getsockname(&ls->tcp, (struct sockaddr *)&ss, &len)) !=
		0) {
		log_error("link: listen on %s:%u: %s",
		    bind_addr != NULL ? bind_addr : "0.0.0.0", port,
		    uv_strerror(r));
		uv_close((uv_handle_t *)&ls->tcp, on_listener_closed);
		return SM_ERR_IO;
	}
	*bound_port = ntohs(ss.ss_family == AF_INET6
		? ((struct sockaddr_in6 *)&ss)->sin6_port
		: ((struct sockaddr_in *)&ss)->sin_port);
	*out = ls;
	return 0;
}

void
link_listener_close(struct link_listener *ls)
{
	if (ls != NULL && !uv_is_closing((uv_handle_t *)&ls->tcp))
		uv_close((uv_handle_t *)&ls->tcp, on_listener_closed);
}

int
link_dial(struct link_ctx *c, uv_loop_t *loop, const char *host, uint16_t port,
    const uint8_t *expect, const struct link_cb *cb, void *arg,
    struct link **out)
{
	struct addrinfo hints;
	struct sockaddr_storage ss;
	struct link *l;
	char portstr[8];
	int r;

	*out = NULL;
	if (host == NULL || expect == NULL || cb == NULL || port == 0)
		return SM_ERR_INVAL;
	if ((l = link_new(c, loop, true, expect)) == NULL)
		return SM_ERR_NOMEM;
	l->cb = *cb;
	l->arg = arg;
	uv_timer_start(
	    &l->timer, on_handshake_timeout, c->opts.handshake_timeout_ms, 0);
	if (parse_addr(host, port, &ss) == 0) {
		start_connect(l, (struct sockaddr *)&ss);
	} else {
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		snprintf(portstr, sizeof(portstr), "%u", port);
		l->state = LS_RESOLVE;
		l->gai.data = l;
		if ((r = uv_getaddrinfo(loop, &l->gai, on_resolved, host,
			 portstr, &hints)) != 0) {
			log_info("link: resolve %s: %s", host, uv_strerror(r));
			/* app_knows is unset: no on_close for this link. */
			link_fail(l, SM_ERR_IO);
			return SM_ERR_INVAL;
		}
		l->gai_pending = true;
	}
	l->app_knows = true;
	*out = l;
	return 0;
}

/* ---- public: link ----------------------------------------------------- */

void
link_set_cb(struct link *l, const struct link_cb *cb, void *arg)
{
	l->cb = *cb;
	l->arg = arg;
}

const uint8_t *
link_peer_id(const struct link *l)
{
	return l->peer;
}

bool
link_is_dialer(const struct link *l)
{
	return l->dialer;
}

bool
link_is_up(const struct link *l)
{
	return l->state == LS_UP && !l->closing;
}

double
link_rtt_ms(const struct link *l)
{
	return l->rtt_ms;
}

size_t
link_nstreams(const struct link *l)
{
	return l->nstreams;
}

void
link_goaway(struct link *l)
{
	if (l->closing || l->state == LS_DEAD || l->goaway_sent)
		return;
	if (l->state != LS_UP) {
		link_fail(l, 0);
		return;
	}
	l->goaway_sent = true;
	(void)nghttp2_submit_goaway(l->srv, NGHTTP2_FLAG_NONE,
	    nghttp2_session_get_last_proc_stream_id(l->srv), NGHTTP2_NO_ERROR,
	    NULL, 0);
	(void)nghttp2_submit_goaway(l->cli, NGHTTP2_FLAG_NONE,
	    nghttp2_session_get_last_proc_stream_id(l->cli), NGHTTP2_NO_ERROR,
	    NULL, 0);
	link_kick(l);
}

void
link_close(struct link *l)
{
	link_fail(l, 0);
}

void
link_abort(struct link *l)
{
	if (l->state == LS_DEAD)
		return;
	l->hard = true;
	link_fail(l, 0);
	if (!uv_is_closing((uv_handle_t *)&l->tcp) &&
	    (!l->connected ||
		uv_tcp_close_reset(&l->tcp, on_handle_closed) != 0))
		uv_close((uv_handle_t *)&l->tcp, on_handle_closed);
}

/* ---- public: streams -------------------------------------------------- */

static int
check_hdrs(const struct link_hdr *h, size_t n)
{
	const char *p;
	size_t i;

	if (n > LSTREAM_MAX_HDRS)
		return SM_ERR_TOOBIG;
	for (i = 0; i < n; i++) {
		if (h[i].name == NULL || h[i].value == NULL ||
		    h[i].name[0] == '\0' || h[i].name[0] == ':')
			return SM_ERR_INVAL;
		for (p = h[i].name; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				return SM_ERR_INVAL;
	}
	return 0;
}

static nghttp2_nv
mknv(const char *name, const char *value)
{
	nghttp2_nv nv;

	nv.name = (uint8_t *)(uintptr_t)name;
	nv.namelen = strlen(name);
	nv.value = (uint8_t *)(uintptr_t)value;
	nv.valuelen = strlen(value);
	nv.flags = NGHTTP2_NV_FLAG_NONE;
	return nv;
}

/*
 * Room for one more outgoing data stream: our limit, and the peer's less
 * the LINK_CTL_STREAMS it keeps for control streams (gossip, challenges).
 */
static bool
stream_room(const struct link *l)
{
	uint32_t peer = nghttp2_session_get_remote_settings(
	    l->cli, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
	uint32_t max = l->ctx->opts.max_streams;

	peer =
	    peer > LINK_CTL_STREAMS ? peer - LINK_CTL_STREAMS : (peer + 1) / 2;
	return l->nout < (peer < max ? peer : max);
}

/* Hand an outgoing stream to nghttp2 (HEADERS, then its body). */
static int
stream_submit(struct link *l, struct lstream *s)
{
	nghttp2_nv nva[LSTREAM_MAX_HDRS + 4];
	nghttp2_data_provider prd;
	const char *base = (const char *)buf_data(&s->hb);
	int32_t id;
	size_t i, n = 0;

	nva[n++] = mknv(":method", base + s->method_off);
	nva[n++] = mknv(":scheme", "https");
	nva[n++] = mknv(":authority", "sealmesh");
	nva[n++] = mknv(":path", base + s->path_off);
	for (i = 0; i < s->nh; i++)
		nva[n++] = mknv(base + s->hoff[i][0], base + s->hoff[i][1]);
	prd.source.ptr = s;
	prd.read_callback = data_read_cb;
	/* nghttp2 copies the header block. */
	id = nghttp2_submit_request(l->cli, NULL, nva, n, &prd, s);
	if (id < 0)
		return id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE
		    ? SM_ERR_UNAVAIL
		    : id == NGHTTP2_ERR_NOMEM ? SM_ERR_NOMEM
					      : SM_ERR_INVAL;
	s->id = id;
	s->submitted = true;
	if (s->ctl)
		l->nctl++;
	else
		l->nout++;
	buf_clear(&s->hb); /* now it collects the response head */
	s->nh = 0;
	s->method_off = s->path_off = -1;
	return 0;
}

static void
on_qtimer(uv_timer_t *t)
{
	pump(t->data);
}

/*
 * Move the queue: drop streams the app reset, refuse those past their
 * deadline (SM_ERR_BUSY) or that can no longer open (GOAWAY), submit the
 * head while there is room; arm the timer for the next deadline. From the
 * top of a loop callback only (it calls on_close).
 */
static void
queue_run(struct link *l)
{
	uint32_t to = l->ctx->opts.queue_timeout_ms;
	uint64_t now = uv_now(l->loop);
	struct lstream *s;
	int r;

	while ((s = l->dropped) != NULL && l->state != LS_DEAD && !l->closing)
		stream_finish(s, SM_ERR_CLOSED, NGHTTP2_CANCEL);
	while ((s = l->qhead) != NULL && l->state != LS_DEAD && !l->closing) {
		if (l->goaway_recv || l->goaway_sent) {
			stream_finish(s, SM_ERR_CLOSED, NGHTTP2_REFUSED_STREAM);
		} else if (now - s->queued_ms >= to) {
			l->ctx->stats.queue_timeouts++;
			stream_finish(s, SM_ERR_BUSY, NGHTTP2_REFUSED_STREAM);
		} else if (stream_room(l)) {
			queue_remove(l, s);
			if ((r = stream_submit(l, s)) != 0)
				stream_finish(s, r, NGHTTP2_REFUSED_STREAM);
		} else {
			break;
		}
	}
	if (l->qhead != NULL && l->state != LS_DEAD && !l->closing)
		uv_timer_start(&l->qtimer, on_qtimer,
		    l->qhead->queued_ms + to > now
			? l->qhead->queued_ms + to - now
			: 0,
		    0);
	else if (l->state != LS_DEAD)
		uv_timer_stop(&l->qtimer);
}

static int
open_stream(struct link *l, bool ctl, const char *method, const char *path,
    const struct link_hdr *hdrs, size_t nhdrs, const struct lstream_cb *cb,
    void *arg, struct lstream **out)
{
	struct lstream *s;
	size_t i, n = 0;
	int r = 0;

	*out = NULL;
	if (l->state == LS_DEAD || l->closing || l->goaway_sent ||
	    l->goaway_recv)
		return SM_ERR_CLOSED;
	if (method == NULL || path == NULL || method[0] == '\0' ||
	    path[0] == '\0' || cb == NULL)
		return SM_ERR_INVAL;
	if ((r = check_hdrs(hdrs, nhdrs)) != 0)
		return r;
	if (!ctl && (l->qhead != NULL || !stream_room(l)) &&
	    l->nqueued >= l->ctx->opts.queue_max) {
		l->ctx->stats.queue_full++;
		return SM_ERR_BUSY;
	}
	if ((s = stream_new(l, l->cli, true)) == NULL)
		return SM_ERR_NOMEM;
	s->cb = *cb;
	s->arg = arg;
	s->ctl = ctl;
	/* Keep the request head until it is submitted: "name\0value\0". */
	for (i = 0; i <= nhdrs && r == 0; i++) {
		const char *nm = i == 0 ? ":method" : hdrs[i - 1].name;
		const char *v = i == 0 ? method : hdrs[i - 1].value;
		size_t off = s->hb.len;

		if ((r = buf_append(&s->hb, nm, strlen(nm) + 1)) == 0 &&
		    (r = buf_append(&s->hb, v, strlen(v) + 1)) == 0 && i > 0) {
			s->hoff[n][0] = (uint16_t)off;
			s->hoff[n][1] = (uint16_t)(off + strlen(nm) + 1);
			n++;
		} else if (r == 0) {
			s->method_off = (int)(off + strlen(nm) + 1);
		}
	}
	if (r == 0) {
		size_t off = s->hb.len;

		s->path_off = (int)(off + sizeof(":path"));
		r = buf_append(&s->hb, ":path", sizeof(":path"));
		if (r == 0)
			r = buf_append(&s->hb, path, strlen(path) + 1);
	}
	if (r != 0) {
		stream_free(s);
		return r == SM_ERR_TOOBIG ? SM_ERR_TOOBIG : SM_ERR_NOMEM;
	}
	s->nh = n;
	s->app = true;
	stream_link(l, s);
	if (ctl || (l->qhead == NULL && stream_room(l))) {
		if ((r = stream_submit(l, s)) != 0) {
			s->app = false;
			stream_unlink(l, s);
			stream_free(s);
			return r;
		}
	} else {
		s->queued = true;
		s->queued_ms = uv_now(l->loop);
		s->qprev = l->qtail;
		if (l->qtail != NULL)
			l->qtail->qnext = s;
		else
			l->qhead = s;
		l->qtail = s;
		l->nqueued++;
		l->ctx->stats.queued_now++;
	}
	link_kick(l);
	*out = s;
	return 0;
}

int
lstream_open(struct link *l, const char *method, const char *path,
    const struct link_hdr *hdrs, size_t nhdrs, const struct lstream_cb *cb,
    void *arg, struct lstream **out)
{
	return open_stream(l, false, method, path, hdrs, nhdrs, cb, arg, out);
}

int
lstream_open_ctl(struct link *l, const char *method, const char *path,
    const struct link_hdr *hdrs, size_t nhdrs, const struct lstream_cb *cb,
    void *arg, struct lstream **out)
{
	return open_stream(l, true, method, path, hdrs, nhdrs, cb, arg, out);
}

void
lstream_set_cb(struct lstream *s, const struct lstream_cb *cb, void *arg)
{
	s->cb = *cb;
	s->arg = arg;
	s->cb_set = true;
}

int
lstream_respond(
    struct lstream *s, int status, const struct link_hdr *hdrs, size_t nhdrs)
{
	nghttp2_nv nva[LSTREAM_MAX_HDRS + 1];
	nghttp2_data_provider prd;
	char st[8];
	size_t i, n = 0;
	int r;

	if (s->outgoing || s->responded || status < 100 || status > 999)
		return SM_ERR_INVAL;
	if (stream_dead(s) || s->reset)
		return SM_ERR_CLOSED;
	if ((r = check_hdrs(hdrs, nhdrs)) != 0)
		return r;
	snprintf(st, sizeof(st), "%d", status);
	nva[n++] = mknv(":status", st);
	for (i = 0; i < nhdrs; i++)
		nva[n++] = mknv(hdrs[i].name, hdrs[i].value);
	prd.source.ptr = s;
	prd.read_callback = data_read_cb;
	if (nghttp2_submit_response(s->sess, s->id, nva, n,
		s->ended && s->out.len == 0 ? NULL : &prd) != 0)
		return SM_ERR_CLOSED;
	s->responded = true;
	link_kick(s->l);
	return 0;
}

int
lstream_write(struct lstream *s, const void *p, size_t n)
{
	int r;

	if (stream_dead(s) || s->ended || s->reset)
		return SM_ERR_CLOSED;
	if (n == 0)
		return 0;
	if ((r = buf_append(&s->out, p, n)) != 0)
		return r;
	if (s->out.len > LSTREAM_LOWAT)
		s->want_drain = true;
	stream_resume(s);
	return 0;
}

size_t
lstream_queued(const struct lstream *s)
{
	return s->out.len;
}

int
lstream_end(struct lstream *s)
{
	if (stream_dead(s) || s->reset)
		return SM_ERR_CLOSED;
	if (s->ended)
		return 0;
	s->ended = true;
	stream_resume(s);
	return 0;
}

void
lstream_reset(struct lstream *s, uint32_t h2_error)
{
	if (stream_dead(s) || s->reset)
		return;
	s->reset = true;
	if (s->queued) {
		/* Never sent: leaves the queue now, on_close from the loop. */
		queue_remove(s->l, s);
		s->dropped = true;
		s->qprev = NULL;
		s->qnext = s->l->dropped;
		if (s->l->dropped != NULL)
			s->l->dropped->qprev = s;
		s->l->dropped = s;
	} else {
		(void)nghttp2_submit_rst_stream(
		    s->sess, NGHTTP2_FLAG_NONE, s->id, h2_error);
	}
	link_kick(s->l);
}

void
lstream_consume(struct lstream *s, size_t n)
{
	if (n > s->unconsumed)
		n = s->unconsumed;
	s->unconsumed -= n;
	if (n == 0 || stream_dead(s))
		return;
	(void)nghttp2_session_consume_stream(s->sess, s->id, n);
	/* A bulk transfer that keeps up: let the peer send more at once. */
	if (s->unconsumed == 0 && s->rx_total >= s->grow_at &&
	    s->window < LINK_STREAM_WINDOW &&
	    nghttp2_session_set_local_window_size(
		s->sess, NGHTTP2_FLAG_NONE, s->id, s->window * 2) == 0) {
		s->window *= 2;
		s->grow_at = s->rx_total + (uint64_t)s->window;
	}
	link_kick(s->l);
}

size_t
lstream_unconsumed(const struct lstream *s)
{
	return s->unconsumed;
}

struct link *
lstream_link(const struct lstream *s)
{
	return s->l;
}

bool
lstream_is_outgoing(const struct lstream *s)
{
	return s->outgoing;
}
