#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#include "core/log.h"
#include "http/io.h"
#include "http/upstream.h"

/*
 * The idle pool is sized by demand: every connection a request finished with
 * goes back (a load that had N requests in flight finds N connections when it
 * comes back, instead of paying connect() and TIME_WAIT for most of them),
 * and a sweep closes those idle longer than UPSTREAM_IDLE_TIMEOUT_MS, so the
 * pool shrinks back when the load does. UPSTREAM_IDLE_MAX is only a ceiling
 * against descriptor exhaustion.
 */
struct pool {
	struct bconn *head, *tail; /* idle; head: most recently used */
	uv_timer_t sweep;
	bool sweeping;
};

/*
 * A connection to a backend. It carries one request at a time and, when the
 * backend keeps it alive, waits in the backend's idle pool for the next.
 */
struct bconn {
	uv_tcp_t tcp; /* first: the handle pointer is the bconn pointer */
	uv_connect_t connect;
	struct backend *b;
	struct up_tcp *u; /* the request on it; NULL while idle */
	struct bconn *next, *prev; /* idle list */
	uint64_t idle_since; /* uv_now() when it went idle */
	bool idle;
	bool reused; /* from the pool: the backend may have closed it */
	bool closing;
};

struct up_tcp {
	struct upstream base;
	uv_loop_t *loop;
	struct backend *b;
	struct bconn *c;
	uv_timer_t timer;
	struct upstream_opts opts;
	struct buf request;
	struct hparse hp;
	bool got_bytes; /* any response byte on the current connection */
	bool paused;
	bool retried;
};

static void bc_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
static int up_send(struct up_tcp *u);

/* --- connections and the pool ------------------------------------------- */

static void
bc_free_cb(uv_handle_t *h)
{
	free(h);
}

static void
pool_unlink(struct bconn *c)
{
	struct pool *p = c->b->idle;

	if (!c->idle)
		return;
	c->idle = false;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		p->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		p->tail = c->prev;
	c->next = c->prev = NULL;
	c->b->nidle--;
}

/* Close a connection; 'reset' sends an RST (the backend sees us leave). */
static void
bc_close(struct bconn *c, bool reset)
{
	if (c->closing)
		return;
	c->closing = true;
	pool_unlink(c);
	c->u = NULL;
	if (!reset || uv_tcp_close_reset(&c->tcp, bc_free_cb) != 0)
		uv_close((uv_handle_t *)&c->tcp, bc_free_cb);
}

#ifdef SM_TEST_BUILD
uint64_t upstream_idle_timeout_ms = UPSTREAM_IDLE_TIMEOUT_MS;
#endif

/* Close the connections idle for longer than the timeout (oldest last). */
static void
pool_sweep(uv_timer_t *t)
{
	struct backend *b = t->data;
	struct pool *p = b->idle;
	uint64_t now = uv_now(t->loop);

	while (p->tail != NULL &&
	    now - p->tail->idle_since >= upstream_idle_timeout_ms)
		bc_close(p->tail, false);
	if (p->tail == NULL) {
		p->sweeping = false;
		uv_timer_stop(t);
	}
}

/* The backend's pool, made on first use (its timer never holds the loop). */
static struct pool *
pool_of(struct backend *b, uv_loop_t *loop)
{
	struct pool *p = b->idle;

	if (p == NULL && (p = calloc(1, sizeof(*p))) != NULL) {
		uv_timer_init(loop, &p->sweep);
		uv_unref((uv_handle_t *)&p->sweep);
		p->sweep.data = b;
		b->idle = p;
	}
	return p;
}

/* Done with a request: keep the connection for the next one if we may. */
static void
bc_release(struct bconn *c, bool keep)
{
	struct backend *b = c->b;
	uv_loop_t *loop = c->tcp.loop;
	struct pool *p;

	c->u = NULL;
	if (!keep || b->nidle >= UPSTREAM_IDLE_MAX || !b->up ||
	    (p = pool_of(b, loop)) == NULL) {
		bc_close(c, false);
		return;
	}
	c->idle = true;
	c->reused = true;
	c->idle_since = uv_now(loop);
	c->prev = NULL;
	c->next = p->head;
	if (p->head != NULL)
		p->head->prev = c;
	else
		p->tail = c;
	p->head = c;
	b->nidle++;
	if (!p->sweeping) {
		p->sweeping = true;
		uv_timer_start(&p->sweep, pool_sweep,
		    upstream_idle_timeout_ms / 4 + 1,
		    upstream_idle_timeout_ms / 4 + 1);
	}
	/* Keep reading: an idle connection's EOF removes it from the pool. */
	uv_read_start((uv_stream_t *)&c->tcp, io_alloc_cb, bc_read_cb);
}

/* The most recently used idle connection: the warmest, the least likely
 * to have been closed by the backend. */
static struct bconn *
pool_take(struct backend *b)
{
	struct pool *p = b->idle;
	struct bconn *c;

	if (p == NULL || (c = p->head) == NULL)
		return NULL;
	pool_unlink(c);
	return c;
}

/* --- the request -------------------------------------------------------- */

static void
up_timer_closed(uv_handle_t *h)
{
	struct up_tcp *u = h->data;

	buf_clear(&u->request);
	hparse_clear(&u->hp);
	free(u);
}

/* Deliver on_end once; the request frees itself afterwards. */
static void
up_finish(struct up_tcp *u, int err)
{
	if (u->base.finished)
		return;
	u->base.finished = true;
	if (u->c != NULL) {
		u->c->u = NULL;
		bc_close(u->c, err != 0);
		u->c = NULL;
	}
	uv_close((uv_handle_t *)&u->timer, up_timer_closed);
	u->base.cbs.on_end(u->base.user, err);
}

/* --- response parsing, shared by every kind of upstream ------------------ */

static int
parse_head(struct hparse *hp, void *user)
{
	struct upstream *u = user;

	u->head_seen = true;
	if (u->timer != NULL)
		uv_timer_stop(u->timer);
	u->cbs.on_head(
	    u->user, hp->status, hp->hdrs, hp->nhdrs, hp->content_length);
	return u->finished ? -1 : 0;
}

static int
parse_body(struct hparse *hp, void *user, const char *at, size_t len)
{
	struct upstream *u = user;

	u->cbs.on_body(u->user, (const uint8_t *)at, len);
	return u->finished ? -1 : 0;
}

static int
parse_done(struct hparse *hp, void *user)
{
	struct upstream *u = user;

	u->ops->complete(u);
	return HPE_PAUSED;
}

const struct hparse_cbs upstream_parse_cbs = {
    parse_head, parse_body, parse_done};

/* --- I/O ---------------------------------------------------------------- */

/* A pooled connection died before answering: once, try a fresh one. */
static bool
up_retry(struct up_tcp *u)
{
	struct bconn *c = u->c;

	if (u->got_bytes || u->retried || c == NULL || !c->reused)
		return false;
	u->retried = true;
	c->u = NULL;
	bc_close(c, false);
	u->c = NULL;
	return up_send(u) == 0;
}

static void
bc_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct bconn *c = (struct bconn *)s;
	struct up_tcp *u = c->u;
	enum llhttp_errno err;
	size_t used;

	if (u == NULL) {
		/* Idle: the backend closed it, or sent something unasked. */
		if (n != 0)
			bc_close(c, false);
		return;
	}
	if (n < 0) {
		/* EOF may legitimately end a close-delimited body. */
		if (n == UV_EOF && u->got_bytes &&
		    hparse_finish(&u->hp) == HPE_OK && u->base.finished)
			return;
		if (up_retry(u))
			return;
		up_finish(u, u->base.head_seen ? SM_ERR_CLOSED : SM_ERR_IO);
		return;
	}
	if (n == 0)
		return;
	u->got_bytes = true;
	err = hparse_feed(&u->hp, b->base, (size_t)n, &used);
	if (err == HPE_OK || u->base.finished)
		return;
	log_debug("upstream: bad response: %s", llhttp_errno_name(err));
	up_finish(u, u->base.head_seen ? SM_ERR_CLOSED : SM_ERR_PROTO);
}

static void
up_timer_cb(uv_timer_t *t)
{
	up_finish(t->data, SM_ERR_TIMEOUT);
}

static void
bc_written_cb(uv_stream_t *s, int status)
{
	struct bconn *c = (struct bconn *)s;
	struct up_tcp *u = c->u;

	if (status == 0 || u == NULL || u->base.finished)
		return;
	if (!up_retry(u))
		up_finish(u, u->base.head_seen ? SM_ERR_CLOSED : SM_ERR_IO);
}

/* Write the request on u->c and read the answer. */
static void
up_write(struct up_tcp *u)
{
	uv_buf_t b;

	uv_timer_stop(&u->timer);
	uv_timer_start(&u->timer, up_timer_cb, u->opts.header_timeout_ms, 0);
	b = uv_buf_init(
	    (char *)buf_data(&u->request), (unsigned)u->request.len);
	if (io_write((uv_stream_t *)&u->c->tcp, &b, 1, bc_written_cb) != 0) {
		if (!up_retry(u))
			up_finish(u, SM_ERR_IO);
		return;
	}
	if (!u->paused)
		uv_read_start(
		    (uv_stream_t *)&u->c->tcp, io_alloc_cb, bc_read_cb);
	else
		uv_read_stop((uv_stream_t *)&u->c->tcp);
}

static void
bc_connect_cb(uv_connect_t *req, int status)
{
	struct bconn *c = req->data;
	struct up_tcp *u = c->u;

	if (u == NULL) /* the request went away while connecting */
		return;
	if (status != 0) {
		log_debug("upstream: connect failed: %s", uv_strerror(status));
		up_finish(
		    u, status == UV_ETIMEDOUT ? SM_ERR_TIMEOUT : SM_ERR_IO);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	up_write(u);
}

/* Put the request on a pooled connection, or on a new one. */
static int
up_send(struct up_tcp *u)
{
	struct bconn *c;
	int r;

	hparse_init(&u->hp, HTTP_RESPONSE, UPSTREAM_MAX_HEADER_BYTES,
	    &upstream_parse_cbs, &u->base);
	u->got_bytes = false;
	if ((c = pool_take(u->b)) != NULL) {
		c->u = u;
		u->c = c;
		up_write(u);
		return 0;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return SM_ERR_NOMEM;
	c->b = u->b;
	c->u = u;
	c->connect.data = c;
	uv_tcp_init(u->loop, &c->tcp);
	if ((r = uv_tcp_connect(&c->connect, &c->tcp,
		 (const struct sockaddr *)&u->b->addr, bc_connect_cb)) != 0) {
		log_debug("upstream: connect: %s", uv_strerror(r));
		c->u = NULL;
		bc_close(c, false);
		return SM_ERR_IO;
	}
	u->c = c;
	/* The connect timeout covers the TCP handshake. */
	uv_timer_start(&u->timer, up_timer_cb, u->opts.connect_timeout_ms, 0);
	return 0;
}

static struct up_tcp *
up_of(struct upstream *base)
{
	return (struct up_tcp *)((char *)base - offsetof(struct up_tcp, base));
}

static void
tcp_pause(struct upstream *base)
{
	struct up_tcp *u = up_of(base);

	u->paused = true;
	if (u->c != NULL)
		uv_read_stop((uv_stream_t *)&u->c->tcp);
}

static void
tcp_resume(struct upstream *base)
{
	struct up_tcp *u = up_of(base);

	u->paused = false;
	if (u->c != NULL && !u->base.finished)
		uv_read_start(
		    (uv_stream_t *)&u->c->tcp, io_alloc_cb, bc_read_cb);
}

/* The answer is complete: the connection goes back to the pool. */
static void
tcp_complete(struct upstream *base)
{
	struct up_tcp *u = up_of(base);
	struct bconn *c = u->c;

	u->c = NULL;
	if (c != NULL)
		bc_release(c, u->hp.keep_alive && !u->paused);
	up_finish(u, 0);
}

static void
tcp_cancel(struct upstream *base)
{
	struct up_tcp *u = up_of(base);

	if (u->base.finished)
		return;
	u->base.finished = true;
	if (u->c != NULL) {
		u->c->u = NULL;
		bc_close(u->c, true); /* RST: the backend stops generating */
		u->c = NULL;
	}
	uv_close((uv_handle_t *)&u->timer, up_timer_closed);
}

static const struct upstream_ops tcp_ops = {
    tcp_pause, tcp_resume, tcp_cancel, tcp_complete};

int
upstream_tcp_start(struct upstream **out, uv_loop_t *loop, struct backend *b,
    const struct buf *request, const struct upstream_opts *opts,
    const struct upstream_cbs *cbs, void *user)
{
	struct up_tcp *u;
	int r;

	*out = NULL;
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return SM_ERR_NOMEM;
	u->base.ops = &tcp_ops;
	u->base.timer = &u->timer;
	u->loop = loop;
	u->b = b;
	u->base.cbs = *cbs;
	u->base.user = user;
	u->opts = *opts;
	buf_init(&u->request, request->len + 1);
	if ((r = buf_append(&u->request, buf_data(request), request->len)) !=
	    0) {
		buf_clear(&u->request);
		free(u);
		return r;
	}
	uv_timer_init(loop, &u->timer);
	u->timer.data = u;
	if ((r = up_send(u)) != 0) {
		u->base.finished = true;
		hparse_clear(&u->hp);
		uv_close((uv_handle_t *)&u->timer, up_timer_closed);
		return r;
	}
	*out = &u->base;
	return 0;
}

/* Hop-by-hop headers and those we set ourselves. */
static bool
skip_header(const char *name)
{
	static const char *const skip[] = {"host", "connection", "keep-alive",
	    "proxy-connection", "proxy-authorization", "te", "trailer",
	    "transfer-encoding", "upgrade", "content-length", "expect",
	    /* Credentials for this node (API keys) or for other local sites
	     * (a browser's cookies for 127.0.0.1) never leave it. */
	    "authorization", "x-api-key", "cookie"};

	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (strcmp(name, skip[i]) == 0)
			return true;
	return false;
}

static int
build(struct buf *out, const struct hreq *req, const char *path,
    const char *host, int port, bool keep_alive)
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
	if ((r = buf_appendf(out,
		 "Content-Length: %zu\r\nConnection: %s"
		 "\r\n\r\n",
		 req->body.len, keep_alive ? "keep-alive" : "close")) != 0)
		return r;
	return buf_append(out, buf_data(&req->body), req->body.len);
}

int
upstream_build_request(
    struct buf *out, const struct backend *b, const struct hreq *req)
{
	char path[1024];
	int r;

	if ((r = backend_path(b, req->path, path, sizeof(path))) != 0)
		return r;
	return build(out, req, path, b->host, b->port, true);
}

int
upstream_build_tunnel_request(struct buf *out, const struct hreq *req)
{
	return build(out, req, req->path, "sealmesh", 0, false);
}
