#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#include "core/log.h"
#include "http/io.h"
#include "http/upstream.h"

struct up_tcp {
	uv_tcp_t tcp; /* first: handle pointer is the upstream pointer */
	struct upstream base;
	uv_connect_t connect;
	uv_timer_t timer;
	int nclosing;
	struct upstream_cbs cbs;
	void *user;
	struct upstream_opts opts;
	struct buf request;
	struct hparse hp;
	bool connected;
	bool head_seen;
	bool finished; /* on_end delivered or cancelled: no more callbacks */
	bool reading;
	bool paused;
};

static void
up_closed_cb(uv_handle_t *h)
{
	struct up_tcp *u = h->data;

	if (--u->nclosing > 0)
		return;
	buf_clear(&u->request);
	hparse_clear(&u->hp);
	free(u);
}

static void
up_close(struct up_tcp *u)
{
	if (u->nclosing > 0)
		return;
	u->nclosing = 2;
	uv_close((uv_handle_t *)&u->timer, up_closed_cb);
	uv_close((uv_handle_t *)&u->tcp, up_closed_cb);
}

/* Deliver on_end once, then close. */
static void
up_finish(struct up_tcp *u, int err)
{
	if (u->finished)
		return;
	u->finished = true;
	uv_timer_stop(&u->timer);
	u->cbs.on_end(u->user, err);
	up_close(u);
}

/* --- response parsing --------------------------------------------------- */

static int
rs_head(struct hparse *hp, void *user)
{
	struct up_tcp *u = user;

	u->head_seen = true;
	uv_timer_stop(&u->timer);
	u->cbs.on_head(u->user, hp->status, hp->hdrs, hp->nhdrs,
	    hp->content_length);
	return u->finished ? -1 : 0;
}

static int
rs_body(struct hparse *hp, void *user, const char *at, size_t len)
{
	struct up_tcp *u = user;

	u->cbs.on_body(u->user, (const uint8_t *)at, len);
	return u->finished ? -1 : 0;
}

static int
rs_done(struct hparse *hp, void *user)
{
	up_finish(user, 0);
	return HPE_PAUSED;
}

static const struct hparse_cbs resp_cbs = { rs_head, rs_body, rs_done };

/* --- connection --------------------------------------------------------- */

static void
up_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct up_tcp *u = (struct up_tcp *)s;
	enum llhttp_errno err;
	size_t used;

	if (u->finished)
		return;
	if (n < 0) {
		/* EOF may legitimately end a close-delimited body. */
		if (n == UV_EOF && hparse_finish(&u->hp) == HPE_OK &&
		    u->finished)
			return;
		up_finish(u, u->head_seen ? SM_ERR_CLOSED : SM_ERR_IO);
		return;
	}
	if (n == 0)
		return;
	err = hparse_feed(&u->hp, b->base, (size_t)n, &used);
	if (err == HPE_OK || u->finished)
		return;
	log_debug("upstream: bad response: %s", llhttp_errno_name(err));
	up_finish(u, u->head_seen ? SM_ERR_CLOSED : SM_ERR_PROTO);
}

static void
up_timer_cb(uv_timer_t *t)
{
	struct up_tcp *u = t->data;

	up_finish(u, SM_ERR_TIMEOUT);
}

static void
up_written_cb(uv_stream_t *s, int status)
{
	struct up_tcp *u = (struct up_tcp *)s;

	if (status != 0 && !u->finished)
		up_finish(u, u->head_seen ? SM_ERR_CLOSED : SM_ERR_IO);
}

static void
up_connect_cb(uv_connect_t *req, int status)
{
	struct up_tcp *u = req->data;
	uv_buf_t b;

	if (u->finished)
		return;
	if (status != 0) {
		log_debug("upstream: connect failed: %s", uv_strerror(status));
		up_finish(u, status == UV_ETIMEDOUT ? SM_ERR_TIMEOUT
						    : SM_ERR_IO);
		return;
	}
	u->connected = true;
	uv_tcp_nodelay(&u->tcp, 1);
	uv_timer_start(&u->timer, up_timer_cb, u->opts.header_timeout_ms, 0);
	b = uv_buf_init((char *)buf_data(&u->request), (unsigned)u->request.len);
	if (io_write((uv_stream_t *)&u->tcp, &b, 1, up_written_cb) != 0) {
		up_finish(u, SM_ERR_IO);
		return;
	}
	if (!u->paused) {
		uv_read_start((uv_stream_t *)&u->tcp, io_alloc_cb, up_read_cb);
		u->reading = true;
	}
}

static void tcp_pause(struct upstream *base);
static void tcp_resume(struct upstream *base);
static void tcp_cancel(struct upstream *base);
static const struct upstream_ops tcp_ops = { tcp_pause, tcp_resume,
	tcp_cancel };

int
upstream_tcp_start(struct upstream **out, uv_loop_t *loop,
    const struct backend *b, const struct buf *request,
    const struct upstream_opts *opts, const struct upstream_cbs *cbs,
    void *user)
{
	struct up_tcp *u;
	int r;

	*out = NULL;
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return SM_ERR_NOMEM;
	u->base.ops = &tcp_ops;
	u->cbs = *cbs;
	u->user = user;
	u->opts = *opts;
	buf_init(&u->request, request->len + 1);
	if ((r = buf_append(&u->request, buf_data(request), request->len)) != 0) {
		buf_clear(&u->request);
		free(u);
		return r;
	}
	hparse_init(&u->hp, HTTP_RESPONSE, UPSTREAM_MAX_HEADER_BYTES, &resp_cbs,
	    u);
	uv_tcp_init(loop, &u->tcp);
	uv_timer_init(loop, &u->timer);
	u->tcp.data = u;
	u->timer.data = u;
	u->connect.data = u;
	/* The connect timeout covers the TCP handshake. */
	uv_timer_start(&u->timer, up_timer_cb, opts->connect_timeout_ms, 0);
	if ((r = uv_tcp_connect(&u->connect, &u->tcp,
	    (const struct sockaddr *)&b->addr, up_connect_cb)) != 0) {
		log_debug("upstream: connect: %s", uv_strerror(r));
		u->finished = true;
		up_close(u);
		return SM_ERR_IO;
	}
	*out = &u->base;
	return 0;
}

static void
tcp_pause(struct upstream *base)
{
	struct up_tcp *u = (struct up_tcp *)((char *)base -
	    offsetof(struct up_tcp, base));

	u->paused = true;
	if (u->reading) {
		uv_read_stop((uv_stream_t *)&u->tcp);
		u->reading = false;
	}
}

static void
tcp_resume(struct upstream *base)
{
	struct up_tcp *u = (struct up_tcp *)((char *)base -
	    offsetof(struct up_tcp, base));

	u->paused = false;
	if (!u->reading && u->connected && !u->finished) {
		uv_read_start((uv_stream_t *)&u->tcp, io_alloc_cb, up_read_cb);
		u->reading = true;
	}
}

static void
tcp_cancel(struct upstream *base)
{
	struct up_tcp *u = (struct up_tcp *)((char *)base -
	    offsetof(struct up_tcp, base));

	if (u->finished)
		return;
	u->finished = true;
	u->nclosing = 2;
	uv_close((uv_handle_t *)&u->timer, up_closed_cb);
	/* An RST tells the backend at once that nobody is listening. */
	if (uv_tcp_close_reset(&u->tcp, up_closed_cb) != 0)
		uv_close((uv_handle_t *)&u->tcp, up_closed_cb);
}

/* Hop-by-hop headers and those we set ourselves. */
static bool
skip_header(const char *name)
{
	static const char *const skip[] = { "host", "connection", "keep-alive",
		"proxy-connection", "proxy-authorization", "te", "trailer",
		"transfer-encoding", "upgrade", "content-length", "expect" };

	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (strcmp(name, skip[i]) == 0)
			return true;
	return false;
}

static int
build(struct buf *out, const struct hreq *req, const char *path,
    const char *host, int port)
{
	int r;

	if ((r = buf_appendf(out, "%s %s%s%s HTTP/1.1\r\nHost: %s:%d\r\n",
	    req->method, path, *req->query ? "?" : "", req->query, host,
	    port)) != 0)
		return r;
	for (size_t i = 0; i < req->nhdrs; i++) {
		if (skip_header(req->hdrs[i].name))
			continue;
		if ((r = buf_appendf(out, "%s: %s\r\n", req->hdrs[i].name,
		    req->hdrs[i].value)) != 0)
			return r;
	}
	if ((r = buf_appendf(out, "Content-Length: %zu\r\nConnection: close"
	    "\r\n\r\n", req->body.len)) != 0)
		return r;
	return buf_append(out, buf_data(&req->body), req->body.len);
}

int
upstream_build_request(struct buf *out, const struct backend *b,
    const struct hreq *req)
{
	char path[1024];
	int r;

	if ((r = backend_path(b, req->path, path, sizeof(path))) != 0)
		return r;
	return build(out, req, path, b->host, b->port);
}

int
upstream_build_tunnel_request(struct buf *out, const struct hreq *req)
{
	return build(out, req, req->path, "sealmesh", 0);
}
