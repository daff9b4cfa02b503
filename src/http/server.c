#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <llhttp.h>

#include "core/log.h"
#include "core/util.h"
#include "http/io.h"
#include "http/oai.h"
#include "http/server.h"

#define PENDING_MAX (64 * 1024)

struct hconn {
	uv_tcp_t tcp; /* first: the handle pointer is the conn pointer */
	const struct hconn_io *io;
	void *io_ctx;
	struct hsrv *srv;
	struct hparse hp;
	struct hreq req;
	bool busy; /* a request is with the handler */
	bool paused; /* parser paused at a message boundary */
	bool reading; /* uv_read_start active */
	bool closing;
	bool close_after; /* close once the response is written */
	struct buf pending;
	/* A Content-Length response head, held back to go out in one write
	 * (one TCP segment, one sealed chunk) with the first body bytes. */
	struct buf head;
	struct hconn *next, *prev;
};

static void conn_close(struct hconn *c);
static void conn_feed(struct hconn *c, const char *data, size_t len);
static void req_set_id(struct hreq *r, const char *given);

const char *
http_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 411:
		return "Length Required";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	}
	return status < 300 ? "OK"
	    : status < 500  ? "Client Error"
			    : "Server Error";
}

/* --- parsing ------------------------------------------------------------ */

static void
write_raw(struct hconn *c, const char *s, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)s, (unsigned)len);

	if (c->io->write(c, &b, 1) != 0)
		conn_close(c);
}

static int
on_head(struct hparse *hp, void *user)
{
	struct hconn *c = user;
	struct hreq *r = &c->req;
	const char *expect;

	buf_reset(&r->body);
	r->start_ns = sm_now_ns();
	r->method = hp->method;
	r->path = hp->path;
	r->query = hp->query;
	r->hdrs = hp->hdrs;
	r->nhdrs = hp->nhdrs;
	if (hp->content_length > (int64_t)c->srv->cfg.max_body) {
		hp->reject = 413;
		return -1;
	}
	expect = hparse_header(hp, "expect");
	if (expect != NULL && strcasecmp(expect, "100-continue") == 0) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

		write_raw(c, cont, sizeof(cont) - 1);
	}
	return 0;
}

static int
on_body(struct hparse *hp, void *user, const char *at, size_t len)
{
	struct hconn *c = user;

	if (buf_append(&c->req.body, at, len) != 0) {
		hp->reject = 413;
		return -1;
	}
	return 0;
}

static int
on_done(struct hparse *hp, void *user)
{
	struct hconn *c = user;
	struct hreq *r = &c->req;

	r->keep_alive = hp->keep_alive;
	r->on_abort = NULL;
	r->on_drain = NULL;
	r->user = NULL;
	r->status = 0;
	r->head_sent = false;
	r->chunked = false;
	r->done = false;
	r->bytes_out = 0;
	r->cors_origin = NULL;
	req_set_id(r, hparse_header(hp, "x-request-id"));
	c->busy = true;
	return HPE_PAUSED;
}

static const struct hparse_cbs req_cbs = {on_head, on_body, on_done};

bool
hreq_http11(const struct hreq *req)
{
	const llhttp_t *p = &req->conn->hp.llh;

	return p->http_major > 1 || (p->http_major == 1 && p->http_minor >= 1);
}

bool
hreq_id_valid(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (n == HREQ_ID_MAX ||
		    !(isalnum((unsigned char)s[n]) || s[n] == '.' ||
			s[n] == '_' || s[n] == '-'))
			return false;
	return n > 0;
}

/* The client's x-request-id when well-formed, else 16 random hex digits. */
static void
req_set_id(struct hreq *r, const char *given)
{
	static uint64_t fallback;
	uint8_t rnd[8];

	if (given != NULL && hreq_id_valid(given)) {
		snprintf(r->id, sizeof(r->id), "%s", given);
		return;
	}
	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		for (size_t i = 0; i < sizeof(rnd); i++)
			rnd[i] =
			    (uint8_t)((sm_now_ns() + ++fallback) >> (i * 3));
	sm_hex(r->id, rnd, sizeof(rnd));
}

const char *
hreq_header(const struct hreq *req, const char *name)
{
	return hparse_header(&req->conn->hp, name);
}

/* --- connection --------------------------------------------------------- */

void
hconn_free(struct hconn *c)
{
	struct hsrv *srv = c->srv;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	srv->nconns--;
	hparse_clear(&c->hp);
	buf_clear(&c->req.body);
	buf_clear(&c->pending);
	buf_clear(&c->head);
	free(c);
}

static void
conn_close(struct hconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->busy && c->req.on_abort != NULL) {
		hreq_abort_cb cb = c->req.on_abort;

		c->req.on_abort = NULL;
		cb(&c->req, c->req.user);
	}
	c->busy = false;
	c->io->close(c);
}

static void
reject(struct hconn *c, int status)
{
	const char *msg = status == 413 ? "request body too large"
	    : status == 431             ? "request headers too large"
					: "malformed HTTP request";

	c->req.keep_alive = false;
	c->req.cors_origin = NULL;
	req_set_id(&c->req, NULL);
	c->busy = true;
	c->paused = true; /* hold whatever else arrives; we are closing */
	c->close_after = true;
	(void)hres_error(&c->req, status, "invalid_request_error",
	    status == 413 ? "request_too_large" : NULL, msg, NULL);
}

static void
conn_feed(struct hconn *c, const char *data, size_t len)
{
	enum llhttp_errno err;
	size_t used;

	if (c->paused || c->busy) {
		if (buf_append(&c->pending, data, len) != 0) {
			conn_close(c);
			return;
		}
		if (c->pending.len >= PENDING_MAX && c->reading) {
			c->io->read_stop(c);
			c->reading = false;
		}
		return;
	}
	err = hparse_feed(&c->hp, data, len, &used);
	if (err == HPE_OK)
		return;
	if (err == HPE_PAUSED) {
		c->paused = true;
		if (used < len &&
		    buf_append(&c->pending, data + used, len - used) != 0) {
			conn_close(c);
			return;
		}
		c->srv->cfg.handler(&c->req, c->srv->cfg.ctx);
		return;
	}
	log_debug("http: parse error %s", llhttp_errno_name(err));
	reject(c, c->hp.reject);
}

static void
conn_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct hconn *c = (struct hconn *)s;

	if (n < 0) {
		/* EOF or error: the client is gone; cancel what it asked for.
		 */
		conn_close(c);
		return;
	}
	if (n > 0)
		conn_feed(c, b->base, (size_t)n);
}

/* The current response is complete: serve the next request or close. */
static void
conn_next(struct hconn *c)
{
	struct buf held;

	c->busy = false;
	if (!c->req.keep_alive || c->close_after) {
		c->io->finish(c);
		return;
	}
	c->paused = false;
	hparse_resume(&c->hp);
	if (!c->reading && !c->closing) {
		c->io->read_start(c);
		c->reading = true;
	}
	if (c->pending.len > 0) {
		held = c->pending;
		buf_init(&c->pending, PENDING_MAX * 2);
		conn_feed(c, (const char *)buf_data(&held), held.len);
		buf_clear(&held);
	}
}

void
hconn_drained(struct hconn *c)
{
	if (c->busy && c->req.on_drain != NULL && !c->closing &&
	    c->io->queued(c) < HTTP_WRITE_LOW_WATER)
		c->req.on_drain(&c->req, c->req.user);
}

static int
conn_write(struct hreq *req, const uv_buf_t *bufs, unsigned n)
{
	struct hconn *c = req->conn;

	if (c->closing)
		return SM_ERR_CLOSED;
	for (unsigned i = 0; i < n; i++)
		req->bytes_out += bufs[i].len;
	if (c->io->write(c, bufs, n) != 0) {
		conn_close(c);
		return SM_ERR_IO;
	}
	return 0;
}

struct hconn *
hconn_new(struct hsrv *srv, const struct hconn_io *io, void *io_ctx)
{
	struct hconn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->io = io;
	c->io_ctx = io_ctx;
	c->srv = srv;
	c->req.conn = c;
	hparse_init(
	    &c->hp, HTTP_REQUEST, srv->cfg.max_header_bytes, &req_cbs, c);
	buf_init(&c->req.body, srv->cfg.max_body);
	buf_init(&c->pending, PENDING_MAX * 2);
	c->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
	c->reading = true;
	return c;
}

void *
hconn_io_ctx(const struct hconn *c)
{
	return c->io_ctx;
}

void
hconn_input(struct hconn *c, const char *data, size_t len)
{
	if (!c->closing)
		conn_feed(c, data, len);
}

void
hconn_abort(struct hconn *c)
{
	conn_close(c);
}

/* --- the TCP transport -------------------------------------------------- */

static void
tcp_write_done(uv_stream_t *s, int status)
{
	struct hconn *c = (struct hconn *)s;

	if (status != 0)
		conn_close(c);
	else
		hconn_drained(c);
}

static int
tcp_write(struct hconn *c, const uv_buf_t *bufs, unsigned n)
{
	return io_write((uv_stream_t *)&c->tcp, bufs, n, tcp_write_done);
}

static size_t
tcp_queued(const struct hconn *c)
{
	return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
}

static void
tcp_read_stop(struct hconn *c)
{
	uv_read_stop((uv_stream_t *)&c->tcp);
}

static void
tcp_read_start(struct hconn *c)
{
	uv_read_start((uv_stream_t *)&c->tcp, io_alloc_cb, conn_read_cb);
}

static void
tcp_finish(struct hconn *c)
{
	uv_shutdown_t *sd = malloc(sizeof(*sd));

	if (sd == NULL ||
	    uv_shutdown(sd, (uv_stream_t *)&c->tcp,
		(uv_shutdown_cb)(void (*)(void))free) != 0) {
		free(sd);
		conn_close(c);
	}
	/* Keep reading: the client's FIN closes the connection. */
}

static void
tcp_closed_cb(uv_handle_t *h)
{
	hconn_free((struct hconn *)h);
}

static void
tcp_close(struct hconn *c)
{
	uv_close((uv_handle_t *)&c->tcp, tcp_closed_cb);
}

static const struct hconn_io tcp_io = {tcp_write, tcp_queued, tcp_read_stop,
    tcp_read_start, tcp_finish, tcp_close};

static void
accept_cb(uv_stream_t *server, int status)
{
	struct hsrv *srv = (struct hsrv *)server;
	struct hconn *c;

	if (status != 0 || (c = hconn_new(srv, &tcp_io, NULL)) == NULL)
		return;
	uv_tcp_init(srv->loop, &c->tcp);
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		tcp_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	tcp_read_start(c);
}

void
hsrv_init(struct hsrv *srv, uv_loop_t *loop, const struct hsrv_config *cfg)
{
	memset(srv, 0, sizeof(*srv));
	srv->loop = loop;
	srv->cfg = *cfg;
	if (srv->cfg.max_body == 0)
		srv->cfg.max_body = HTTP_DEFAULT_MAX_BODY;
	if (srv->cfg.max_header_bytes == 0)
		srv->cfg.max_header_bytes = HTTP_DEFAULT_MAX_HEADER_BYTES;
}

int
hsrv_open(struct hsrv *srv, uv_loop_t *loop, const char *host, int port,
    const struct hsrv_config *cfg)
{
	struct sockaddr_storage ss;
	int namelen = sizeof(ss);
	int r;

	hsrv_init(srv, loop, cfg);
	srv->listening = true;
	if (strchr(host, ':') != NULL)
		r = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
	else
		r = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
	if (r != 0)
		return SM_ERR_INVAL;
	uv_tcp_init(loop, &srv->tcp);
	if ((r = uv_tcp_bind(&srv->tcp, (struct sockaddr *)&ss, 0)) != 0 ||
	    (r = uv_listen((uv_stream_t *)&srv->tcp, 1024, accept_cb)) != 0) {
		log_error(
		    "cannot listen on %s:%d: %s", host, port, uv_strerror(r));
		uv_close((uv_handle_t *)&srv->tcp, NULL);
		return SM_ERR_IO;
	}
	uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)&ss, &namelen);
	srv->port = ntohs(ss.ss_family == AF_INET6
		? ((struct sockaddr_in6 *)&ss)->sin6_port
		: ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

void
hsrv_close(struct hsrv *srv)
{
	struct hconn *c, *next;

	if (srv->closing)
		return;
	srv->closing = true;
	if (srv->listening)
		uv_close((uv_handle_t *)&srv->tcp, NULL);
	for (c = srv->conns; c != NULL; c = next) {
		next = c->next;
		conn_close(c);
	}
}

/* --- responses ---------------------------------------------------------- */

int
hres_begin(struct hreq *req, int status, const char *content_type,
    const char *extra, int64_t content_length)
{
	bool close = !req->keep_alive || req->conn->close_after;
	struct buf h;
	uv_buf_t b;
	int r;

	if (req->head_sent || req->conn->closing)
		return SM_ERR_INVAL;
	req->status = status;
	req->head_sent = true;
	req->chunked = content_length < 0;
	buf_init(&h, 8192);
	if ((r = buf_appendf(&h, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n",
		 status, http_reason(status),
		 content_type ? content_type : "application/json")) != 0)
		goto out;
	if (req->chunked)
		r = buf_appendf(&h, "Transfer-Encoding: chunked\r\n");
	else
		r = buf_appendf(
		    &h, "Content-Length: %lld\r\n", (long long)content_length);
	if (r == 0 && close)
		r = buf_appendf(&h, "Connection: close\r\n");
	if (r == 0)
		r = buf_appendf(&h, "x-request-id: %s\r\n", req->id);
	if (r == 0 && status >= 400 && status < 500 && status != 408 &&
	    status != 409 && status != 429)
		r = buf_appendf(&h, "x-should-retry: false\r\n");
	if (r == 0 && req->cors_origin != NULL)
		r = buf_appendf(&h,
		    "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n"
		    "Access-Control-Expose-Headers: x-request-id, "
		    "x-should-retry, x-sealmesh-route\r\n",
		    req->cors_origin);
	if (r == 0)
		r = buf_appendf(&h, "%s\r\n", extra ? extra : "");
	if (r != 0)
		goto out;
	if (!req->chunked && content_length > 0) {
		/* Goes out with the body (hres_body) or at hres_end. */
		buf_clear(&req->conn->head);
		req->conn->head = h;
		buf_init(&h, 0);
		goto out;
	}
	b = uv_buf_init((char *)buf_data(&h), (unsigned)h.len);
	r = conn_write(req, &b, 1);
out:
	buf_clear(&h);
	return r;
}

/* Write a held response head, with 'body' when given, in one write. */
static int
head_flush(struct hreq *req, const void *body, size_t len)
{
	struct buf *h = &req->conn->head;
	uv_buf_t b[2];
	int r;

	b[0] = uv_buf_init((char *)buf_data(h), (unsigned)h->len);
	b[1] = uv_buf_init((char *)body, (unsigned)len);
	r = conn_write(req, b, len > 0 ? 2 : 1);
	buf_clear(h);
	return r;
}

int
hres_body(struct hreq *req, const void *data, size_t len)
{
	char size[24];
	uv_buf_t bufs[3];
	int n;

	if (!req->head_sent || req->done)
		return SM_ERR_INVAL;
	if (len == 0)
		return 0;
	if (!req->chunked) {
		if (req->conn->head.len > 0)
			return head_flush(req, data, len);
		bufs[0] = uv_buf_init((char *)data, (unsigned)len);
		return conn_write(req, bufs, 1);
	}
	n = snprintf(size, sizeof(size), "%zx\r\n", len);
	bufs[0] = uv_buf_init(size, (unsigned)n);
	bufs[1] = uv_buf_init((char *)data, (unsigned)len);
	bufs[2] = uv_buf_init("\r\n", 2);
	return conn_write(req, bufs, 3);
}

int
hres_end(struct hreq *req)
{
	int r = 0;

	if (req->done)
		return 0;
	req->done = true;
	if (req->conn->head.len > 0)
		r = head_flush(req, NULL, 0);
	if (req->chunked) {
		uv_buf_t b = uv_buf_init("0\r\n\r\n", 5);

		r = conn_write(req, &b, 1);
	}
	req->on_abort = NULL;
	req->on_drain = NULL;
	if (!req->conn->closing)
		conn_next(req->conn);
	return r;
}

int
hres_send(struct hreq *req, int status, const char *content_type,
    const char *extra, const void *body, size_t len)
{
	int r;

	if ((r = hres_begin(req, status, content_type, extra, (int64_t)len)) !=
	    0)
		return r;
	if (len > 0 && (r = hres_body(req, body, len)) != 0)
		return r;
	return hres_end(req);
}

void
hres_abort(struct hreq *req)
{
	req->on_abort = NULL;
	req->done = true;
	buf_clear(&req->conn->head);
	conn_close(req->conn);
}

size_t
hreq_queued(const struct hreq *req)
{
	return req->conn->io->queued(req->conn);
}

int
hres_error(struct hreq *req, int status, const char *type, const char *code,
    const char *message, const char *extra)
{
	struct buf b;
	int r;

	buf_init(&b, 4096);
	if ((r = oai_error_json(&b, type, code, message)) == 0)
		r = hres_send(req, status, "application/json", extra,
		    buf_data(&b), b.len);
	buf_clear(&b);
	return r;
}
