#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#include "core/log.h"
#include "http/io.h"
#include "http/upstream.h"

struct upstream {
	uv_tcp_t tcp; /* first: handle pointer is the upstream pointer */
	uv_connect_t connect;
	uv_timer_t timer;
	int nclosing;
	struct upstream_cbs cbs;
	void *user;
	struct upstream_opts opts;
	struct buf request;
	llhttp_t parser;
	struct buf meta;
	size_t name_off[HTTP_MAX_HEADERS];
	size_t value_off[HTTP_MAX_HEADERS];
	size_t nfields;
	bool connected;
	bool head_seen;
	bool finished; /* on_end delivered or cancelled: no more callbacks */
	bool reading;
	bool paused;
};

static llhttp_settings_t rsettings;

static void
up_closed_cb(uv_handle_t *h)
{
	struct upstream *u = h->data;

	if (--u->nclosing > 0)
		return;
	buf_clear(&u->request);
	buf_clear(&u->meta);
	free(u);
}

static void
up_close(struct upstream *u)
{
	if (u->nclosing > 0)
		return;
	u->nclosing = 2;
	uv_close((uv_handle_t *)&u->timer, up_closed_cb);
	uv_close((uv_handle_t *)&u->tcp, up_closed_cb);
}

/* Deliver on_end once, then close. */
static void
up_finish(struct upstream *u, int err)
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
rs_append(struct upstream *u, const char *at, size_t len, bool lower)
{
	size_t start = u->meta.len;

	if (buf_append(&u->meta, at, len) != 0)
		return -1;
	if (lower)
		for (size_t i = start; i < u->meta.len; i++)
			buf_data(&u->meta)[i] =
			    (uint8_t)tolower(buf_data(&u->meta)[i]);
	return 0;
}

static int
rs_field(llhttp_t *p, const char *at, size_t len)
{
	struct upstream *u = p->data;

	if (u->nfields >= HTTP_MAX_HEADERS)
		return -1;
	if (u->name_off[u->nfields] == (size_t)-1)
		u->name_off[u->nfields] = u->meta.len;
	return rs_append(u, at, len, true);
}

static int
rs_field_done(llhttp_t *p)
{
	struct upstream *u = p->data;

	u->value_off[u->nfields] = (size_t)-1;
	return rs_append(u, "", 1, false);
}

static int
rs_value(llhttp_t *p, const char *at, size_t len)
{
	struct upstream *u = p->data;

	if (u->value_off[u->nfields] == (size_t)-1)
		u->value_off[u->nfields] = u->meta.len;
	return rs_append(u, at, len, false);
}

static int
rs_value_done(llhttp_t *p)
{
	struct upstream *u = p->data;

	if (u->value_off[u->nfields] == (size_t)-1)
		u->value_off[u->nfields] = u->meta.len;
	if (rs_append(u, "", 1, false) != 0)
		return -1;
	u->nfields++;
	if (u->nfields < HTTP_MAX_HEADERS)
		u->name_off[u->nfields] = (size_t)-1;
	return 0;
}

static int
rs_headers_done(llhttp_t *p)
{
	struct upstream *u = p->data;
	struct hdr hdrs[HTTP_MAX_HEADERS];
	const char *base = (const char *)buf_data(&u->meta);
	int64_t clen = (p->flags & F_CONTENT_LENGTH) &&
	    !(p->flags & F_CHUNKED) ? (int64_t)p->content_length : -1;

	if (p->status_code < 200) /* 1xx: wait for the real answer */
		return 0;
	for (size_t i = 0; i < u->nfields; i++) {
		hdrs[i].name = base + u->name_off[i];
		hdrs[i].value = base + u->value_off[i];
	}
	u->head_seen = true;
	uv_timer_stop(&u->timer);
	u->cbs.on_head(u->user, p->status_code, hdrs, u->nfields, clen);
	return u->finished ? -1 : 0;
}

static int
rs_body(llhttp_t *p, const char *at, size_t len)
{
	struct upstream *u = p->data;

	u->cbs.on_body(u->user, (const uint8_t *)at, len);
	return u->finished ? -1 : 0;
}

static int
rs_message_done(llhttp_t *p)
{
	struct upstream *u = p->data;

	if (!u->head_seen) { /* a 1xx ended: reset for the real response */
		buf_reset(&u->meta);
		u->nfields = 0;
		u->name_off[0] = (size_t)-1;
		return 0;
	}
	up_finish(u, 0);
	return HPE_PAUSED;
}

static void
rsettings_init(void)
{
	static bool done;

	if (done)
		return;
	llhttp_settings_init(&rsettings);
	rsettings.on_header_field = rs_field;
	rsettings.on_header_field_complete = rs_field_done;
	rsettings.on_header_value = rs_value;
	rsettings.on_header_value_complete = rs_value_done;
	rsettings.on_headers_complete = rs_headers_done;
	rsettings.on_body = rs_body;
	rsettings.on_message_complete = rs_message_done;
	done = true;
}

/* --- connection --------------------------------------------------------- */

static void
up_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct upstream *u = (struct upstream *)s;
	enum llhttp_errno err;

	if (u->finished)
		return;
	if (n < 0) {
		/* EOF may legitimately end a close-delimited body. */
		if (n == UV_EOF && llhttp_finish(&u->parser) == HPE_OK &&
		    u->finished)
			return;
		up_finish(u, u->head_seen ? SM_ERR_CLOSED : SM_ERR_IO);
		return;
	}
	if (n == 0)
		return;
	err = llhttp_execute(&u->parser, b->base, (size_t)n);
	if (err == HPE_OK || u->finished)
		return;
	log_debug("upstream: bad response: %s", llhttp_errno_name(err));
	up_finish(u, u->head_seen ? SM_ERR_CLOSED : SM_ERR_PROTO);
}

static void
up_timer_cb(uv_timer_t *t)
{
	struct upstream *u = t->data;

	up_finish(u, SM_ERR_TIMEOUT);
}

static void
up_written_cb(uv_stream_t *s, int status)
{
	struct upstream *u = (struct upstream *)s;

	if (status != 0 && !u->finished)
		up_finish(u, u->head_seen ? SM_ERR_CLOSED : SM_ERR_IO);
}

static void
up_connect_cb(uv_connect_t *req, int status)
{
	struct upstream *u = req->data;
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

int
upstream_tcp_start(struct upstream **out, uv_loop_t *loop,
    const struct backend *b, const struct buf *request,
    const struct upstream_opts *opts, const struct upstream_cbs *cbs,
    void *user)
{
	struct upstream *u;
	int r;

	*out = NULL;
	rsettings_init();
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return SM_ERR_NOMEM;
	u->cbs = *cbs;
	u->user = user;
	u->opts = *opts;
	buf_init(&u->request, request->len + 1);
	buf_init(&u->meta, UPSTREAM_MAX_HEADER_BYTES);
	u->name_off[0] = (size_t)-1;
	if ((r = buf_append(&u->request, buf_data(request), request->len)) != 0) {
		buf_clear(&u->request);
		free(u);
		return r;
	}
	llhttp_init(&u->parser, HTTP_RESPONSE, &rsettings);
	u->parser.data = u;
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
	*out = u;
	return 0;
}

void
upstream_pause(struct upstream *u)
{
	u->paused = true;
	if (u->reading) {
		uv_read_stop((uv_stream_t *)&u->tcp);
		u->reading = false;
	}
}

void
upstream_resume(struct upstream *u)
{
	u->paused = false;
	if (!u->reading && u->connected && !u->finished) {
		uv_read_start((uv_stream_t *)&u->tcp, io_alloc_cb, up_read_cb);
		u->reading = true;
	}
}

void
upstream_cancel(struct upstream *u)
{
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

int
upstream_build_request(struct buf *out, const struct backend *b,
    const struct hreq *req)
{
	char path[1024];
	int r;

	if ((r = backend_path(b, req->path, path, sizeof(path))) != 0)
		return r;
	if ((r = buf_appendf(out, "%s %s%s%s HTTP/1.1\r\nHost: %s:%d\r\n",
	    req->method, path, *req->query ? "?" : "", req->query, b->host,
	    b->port)) != 0)
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
