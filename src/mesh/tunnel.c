#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "http/gateway.h"
#include "mesh/tunnel.h"

#define PUMP_CHUNK (64 * 1024)

#ifdef SM_TEST_BUILD
int tunnel_test_record_fd = -1;

static void
record(const uint8_t *p, size_t n)
{
	if (tunnel_test_record_fd >= 0 && n > 0 &&
	    write(tunnel_test_record_fd, p, n) != (ssize_t)n)
		log_warn("relay record: short write");
}
#else
#define record(p, n) ((void)0)
#endif

/* Move queued bytes into a stream as its send buffer has room. */
static int
pump(struct lstream *s, struct buf *pending)
{
	int r;

	while (pending->len > 0) {
		size_t q = lstream_queued(s), n;

		if (q >= LSTREAM_SEND_MAX - PUMP_CHUNK)
			break;
		n = pending->len < PUMP_CHUNK ? pending->len : PUMP_CHUNK;
		if ((r = lstream_write(s, buf_data(pending), n)) != 0)
			return r;
		buf_consume(pending, n);
	}
	return 0;
}

/* === the asking side: an upstream carried by a stream ==================== */

struct up_tun {
	struct upstream base;
	struct mesh *m;
	struct lstream *s;
	struct upstream_cbs cbs;
	void *user;
	struct hparse hp;
	struct buf pending; /* request bytes not yet in the stream */
	uv_timer_t timer;
	size_t held; /* received bytes not consumed while paused */
	bool ended;  /* END_STREAM sent */
	bool head_seen;
	bool finished; /* on_end delivered or cancelled */
	bool paused;
	bool stream_gone;
	bool timer_gone;
};

static void
ut_maybe_free(struct up_tun *u)
{
	if (!u->stream_gone || !u->timer_gone)
		return;
	hparse_clear(&u->hp);
	buf_clear(&u->pending);
	free(u);
}

static void
ut_timer_closed(uv_handle_t *h)
{
	struct up_tun *u = h->data;

	u->timer_gone = true;
	ut_maybe_free(u);
}

static void
ut_finish(struct up_tun *u, int err)
{
	if (u->finished)
		return;
	u->finished = true;
	uv_close((uv_handle_t *)&u->timer, ut_timer_closed);
	u->cbs.on_end(u->user, err);
	if (err != 0 && !u->stream_gone)
		lstream_reset(u->s, LINK_H2_CANCEL);
}

static int
ut_head(struct hparse *hp, void *user)
{
	struct up_tun *u = user;

	u->head_seen = true;
	uv_timer_stop(&u->timer);
	u->cbs.on_head(u->user, hp->status, hp->hdrs, hp->nhdrs,
	    hp->content_length);
	return u->finished ? -1 : 0;
}

static int
ut_body(struct hparse *hp, void *user, const char *at, size_t len)
{
	struct up_tun *u = user;

	u->cbs.on_body(u->user, (const uint8_t *)at, len);
	return u->finished ? -1 : 0;
}

static int
ut_done(struct hparse *hp, void *user)
{
	ut_finish(user, 0);
	return HPE_PAUSED;
}

static const struct hparse_cbs ut_parse_cbs = { ut_head, ut_body, ut_done };

static void
ut_on_headers(struct lstream *s, int status, const struct link_hdr *h,
    size_t n, void *arg)
{
	struct up_tun *u = arg;

	/* The tunnel's own status: anything but 200 means not taken. */
	if (status != 200) {
		log_warn("tunnel refused by host: HTTP/2 status %d", status);
		ut_finish(u, SM_ERR_IO);
	}
}

static void
ut_on_data(struct lstream *s, const uint8_t *p, size_t n, void *arg)
{
	struct up_tun *u = arg;
	size_t used;
	enum llhttp_errno e;

	if (u->finished) {
		lstream_consume(s, n);
		return;
	}
	e = hparse_feed(&u->hp, (const char *)p, n, &used);
	if (e != HPE_OK && e != HPE_PAUSED && !u->finished)
		ut_finish(u, u->head_seen ? SM_ERR_CLOSED : SM_ERR_PROTO);
	if (u->stream_gone)
		return;
	if (u->paused && !u->finished)
		u->held += n;
	else
		lstream_consume(s, n);
}

static void
ut_on_end(struct lstream *s, void *arg)
{
	struct up_tun *u = arg;

	if (!u->finished && hparse_finish(&u->hp) == HPE_OK && u->finished)
		return;
	ut_finish(u, u->head_seen ? SM_ERR_CLOSED : SM_ERR_IO);
}

static void
ut_on_drain(struct lstream *s, void *arg)
{
	struct up_tun *u = arg;

	if (u->ended || u->finished)
		return;
	if (pump(s, &u->pending) != 0) {
		ut_finish(u, SM_ERR_IO);
		return;
	}
	if (u->pending.len == 0) {
		u->ended = true;
		(void)lstream_end(s);
	}
}

static void
ut_on_close(struct lstream *s, int err, uint32_t h2, void *arg)
{
	struct up_tun *u = arg;

	u->stream_gone = true;
	if (!u->finished)
		ut_finish(u, u->head_seen ? SM_ERR_CLOSED : SM_ERR_IO);
	ut_maybe_free(u);
}

static const struct lstream_cb ut_stream_cbs = {
	.on_headers = ut_on_headers,
	.on_data = ut_on_data,
	.on_end = ut_on_end,
	.on_drain = ut_on_drain,
	.on_close = ut_on_close,
};

static struct up_tun *
ut_of(struct upstream *base)
{
	return (struct up_tun *)((char *)base - offsetof(struct up_tun, base));
}

static void
ut_pause(struct upstream *base)
{
	ut_of(base)->paused = true;
}

static void
ut_resume(struct upstream *base)
{
	struct up_tun *u = ut_of(base);

	u->paused = false;
	if (u->held > 0 && !u->stream_gone) {
		lstream_consume(u->s, u->held);
		u->held = 0;
	}
}

static void
ut_cancel(struct upstream *base)
{
	struct up_tun *u = ut_of(base);

	if (u->finished)
		return;
	u->finished = true;
	uv_close((uv_handle_t *)&u->timer, ut_timer_closed);
	if (!u->stream_gone)
		lstream_reset(u->s, LINK_H2_CANCEL);
}

static const struct upstream_ops ut_ops = { ut_pause, ut_resume, ut_cancel };

static void
ut_timeout(uv_timer_t *t)
{
	ut_finish(t->data, SM_ERR_TIMEOUT);
}

/* Pick how to reach host 'id': its link, or a relay's. */
static struct link *
path_to(struct mesh *m, const uint8_t id[ID_PK_LEN], bool *relayed,
    uint8_t via[ID_PK_LEN])
{
	struct peer *relays[8];
	struct link *l = mesh_link_to(m, id);
	size_t n;

	*relayed = false;
	if (l != NULL)
		return l;
	n = peers_relays_for(&m->peers, id, relays, SM_ARRAY_LEN(relays));
	for (size_t i = 0; i < n; i++) {
		if (!relays[i]->ann.relay_allowed ||
		    (l = mesh_link_to(m, relays[i]->ann.id)) == NULL)
			continue;
		*relayed = true;
		memcpy(via, relays[i]->ann.id, ID_PK_LEN);
		return l;
	}
	return NULL;
}

bool
tunnel_reachable(struct mesh *m, struct peer *p)
{
	uint8_t via[ID_PK_LEN];
	bool relayed;

	return path_to(m, p->ann.id, &relayed, via) != NULL;
}

int
tunnel_start(void *arg, const struct route_target *t, const struct hreq *req,
    const struct oai_peek *pk, const struct upstream_cbs *cbs, void *user,
    struct upstream **out)
{
	struct mesh *m = arg;
	char target[ID_HEX_LEN + 1];
	struct link_hdr hdr = { RELAY_TARGET_HDR, target };
	uint8_t via[ID_PK_LEN];
	struct peer *p;
	struct link *l;
	struct up_tun *u;
	bool relayed;
	int r;

	*out = NULL;
	if ((l = path_to(m, t->peer, &relayed, via)) == NULL)
		return SM_ERR_UNAVAIL;
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return SM_ERR_NOMEM;
	u->base.ops = &ut_ops;
	u->m = m;
	u->cbs = *cbs;
	u->user = user;
	hparse_init(&u->hp, HTTP_RESPONSE, UPSTREAM_MAX_HEADER_BYTES,
	    &ut_parse_cbs, u);
	buf_init(&u->pending, req->body.len + 64 * 1024);
	if ((r = upstream_build_tunnel_request(&u->pending, req)) != 0)
		goto fail;
	sm_hex(target, t->peer, ID_PK_LEN);
	if ((r = lstream_open(l, "POST", relayed ? RELAY_PATH : TUNNEL_PATH,
	    relayed ? &hdr : NULL, relayed ? 1 : 0, &ut_stream_cbs, u,
	    &u->s)) != 0)
		goto fail;
	uv_timer_init(m->loop, &u->timer);
	u->timer.data = u;
	uv_timer_start(&u->timer, ut_timeout, m->gw->opts.backend_timeout_ms,
	    0);
	if ((p = peers_find(&m->peers, t->peer)) != NULL && relayed) {
		p->link = PEER_LINK_RELAY;
		memcpy(p->via, via, ID_PK_LEN);
	}
	m->tunnels_out++;
	*out = &u->base;
	ut_on_drain(u->s, u); /* write what fits now */
	return 0;
fail:
	hparse_clear(&u->hp);
	buf_clear(&u->pending);
	free(u);
	return r;
}

/* === the host side: a virtual HTTP connection on a stream ================ */

struct tun_host {
	struct mesh *m;
	struct lstream *s;
	struct hconn *c;
	bool responded;
	bool stream_gone;
};

static int
th_write(struct hconn *c, const uv_buf_t *bufs, unsigned n)
{
	struct tun_host *th = hconn_io_ctx(c);

	if (th->stream_gone)
		return SM_ERR_CLOSED;
	if (!th->responded) {
		if (lstream_respond(th->s, 200, NULL, 0) != 0)
			return SM_ERR_IO;
		th->responded = true;
	}
	for (unsigned i = 0; i < n; i++)
		if (lstream_write(th->s, bufs[i].base, bufs[i].len) != 0)
			return SM_ERR_IO;
	return 0;
}

static size_t
th_queued(const struct hconn *c)
{
	struct tun_host *th = hconn_io_ctx(c);

	return th->stream_gone ? 0 : lstream_queued(th->s);
}

static void
th_noop(struct hconn *c)
{
}

static void
th_finish(struct hconn *c)
{
	struct tun_host *th = hconn_io_ctx(c);

	if (!th->stream_gone)
		(void)lstream_end(th->s);
}

static void
th_close(struct hconn *c)
{
	struct tun_host *th = hconn_io_ctx(c);

	th->c = NULL;
	hconn_free(c);
	if (th->stream_gone)
		free(th);
	else
		lstream_reset(th->s, LINK_H2_CANCEL);
}

static const struct hconn_io th_io = { th_write, th_queued, th_noop, th_noop,
	th_finish, th_close };

static void
th_on_data(struct lstream *s, const uint8_t *p, size_t n, void *arg)
{
	struct tun_host *th = arg;

	if (th->c != NULL)
		hconn_input(th->c, (const char *)p, n);
	if (!th->stream_gone)
		lstream_consume(s, n);
}

static void
th_on_drain(struct lstream *s, void *arg)
{
	struct tun_host *th = arg;

	if (th->c != NULL)
		hconn_drained(th->c);
}

static void
th_on_close(struct lstream *s, int err, uint32_t h2, void *arg)
{
	struct tun_host *th = arg;

	th->stream_gone = true;
	if (th->c != NULL)
		hconn_abort(th->c); /* ends in th_close, which frees th */
	else
		free(th);
}

static const struct lstream_cb th_cbs = {
	.on_data = th_on_data,
	.on_drain = th_on_drain,
	.on_close = th_on_close,
};

/* === relays ============================================================= */

struct relay {
	struct mesh *m;
	struct lstream *in, *out; /* in: from the asker; out: to the host */
	size_t in_held, out_held; /* received, not yet consumed */
	bool in_gone, out_gone;
};

static void
relay_maybe_free(struct relay *r)
{
	if (r->in_gone && r->out_gone)
		free(r);
}

/* Copy n bytes from 'from' to 'to'; consume once 'to' has drained. */
static void
relay_copy(struct lstream *from, struct lstream *to, bool to_gone,
    const uint8_t *p, size_t n, size_t *held)
{
	record(p, n);
	if (to_gone || lstream_write(to, p, n) != 0) {
		lstream_reset(from, LINK_H2_CANCEL);
		return;
	}
	if (lstream_queued(to) <= LSTREAM_LOWAT)
		lstream_consume(from, n);
	else
		*held += n;
}

static void
rin_data(struct lstream *s, const uint8_t *p, size_t n, void *arg)
{
	struct relay *r = arg;

	relay_copy(s, r->out, r->out_gone, p, n, &r->in_held);
}

static void
rout_data(struct lstream *s, const uint8_t *p, size_t n, void *arg)
{
	struct relay *r = arg;

	relay_copy(s, r->in, r->in_gone, p, n, &r->out_held);
}

static void
rout_headers(struct lstream *s, int status, const struct link_hdr *h,
    size_t n, void *arg)
{
	struct relay *r = arg;

	if (!r->in_gone && lstream_respond(r->in, status, NULL, 0) != 0)
		lstream_reset(r->in, LINK_H2_INTERNAL_ERROR);
}

static void
rin_end(struct lstream *s, void *arg)
{
	struct relay *r = arg;

	if (!r->out_gone)
		(void)lstream_end(r->out);
}

static void
rout_end(struct lstream *s, void *arg)
{
	struct relay *r = arg;

	if (!r->in_gone)
		(void)lstream_end(r->in);
}

/* 'to' drained: take what we held back from the other side. */
static void
rin_drain(struct lstream *s, void *arg)
{
	struct relay *r = arg;

	if (r->out_held > 0 && !r->out_gone) {
		lstream_consume(r->out, r->out_held);
		r->out_held = 0;
	}
}

static void
rout_drain(struct lstream *s, void *arg)
{
	struct relay *r = arg;

	if (r->in_held > 0 && !r->in_gone) {
		lstream_consume(r->in, r->in_held);
		r->in_held = 0;
	}
}

static void
rin_close(struct lstream *s, int err, uint32_t h2, void *arg)
{
	struct relay *r = arg;

	r->in_gone = true;
	if (!r->out_gone && err != 0)
		lstream_reset(r->out, LINK_H2_CANCEL);
	relay_maybe_free(r);
}

static void
rout_close(struct lstream *s, int err, uint32_t h2, void *arg)
{
	struct relay *r = arg;

	r->out_gone = true;
	if (!r->in_gone && err != 0)
		lstream_reset(r->in, LINK_H2_CANCEL);
	relay_maybe_free(r);
}

static const struct lstream_cb rin_cbs = {
	.on_data = rin_data,
	.on_end = rin_end,
	.on_drain = rin_drain,
	.on_close = rin_close,
};
static const struct lstream_cb rout_cbs = {
	.on_headers = rout_headers,
	.on_data = rout_data,
	.on_end = rout_end,
	.on_drain = rout_drain,
	.on_close = rout_close,
};

static int
relay_open(struct mesh *m, struct lstream *in, const struct lstream_req *req)
{
	uint8_t target[ID_PK_LEN];
	const char *hex = NULL;
	struct link *to;
	struct relay *r;

	if (m->opts.no_relay)
		return SM_ERR_PERM;
	for (size_t i = 0; i < req->nhdrs; i++)
		if (strcmp(req->hdrs[i].name, RELAY_TARGET_HDR) == 0)
			hex = req->hdrs[i].value;
	if (hex == NULL || sm_unhex(target, ID_PK_LEN, hex) != 0)
		return SM_ERR_PROTO;
	if ((to = mesh_link_to(m, target)) == NULL)
		return SM_ERR_UNAVAIL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return SM_ERR_NOMEM;
	r->m = m;
	r->in = in;
	if (lstream_open(to, "POST", TUNNEL_PATH, NULL, 0, &rout_cbs, r,
	    &r->out) != 0) {
		free(r);
		return SM_ERR_UNAVAIL;
	}
	lstream_set_cb(in, &rin_cbs, r);
	m->relayed++;
	return 0;
}

int
tunnel_on_stream(struct mesh *m, struct link *l, struct lstream *s,
    const struct lstream_req *req)
{
	struct tun_host *th;

	if (strcmp(req->path, RELAY_PATH) == 0)
		return relay_open(m, s, req);
	if (strcmp(req->path, TUNNEL_PATH) != 0)
		return SM_ERR_NOTFOUND;
	if ((th = calloc(1, sizeof(*th))) == NULL)
		return SM_ERR_NOMEM;
	th->m = m;
	th->s = s;
	if ((th->c = hconn_new(&m->gw->tunnel, &th_io, th)) == NULL) {
		free(th);
		return SM_ERR_NOMEM;
	}
	lstream_set_cb(s, &th_cbs, th);
	m->tunnels_in++;
	return 0;
}

int
tunnel_init(struct mesh *m)
{
	return 0;
}

void
tunnel_fill_announce(struct mesh *m, struct announce *a)
{
}

void
tunnel_status_peer(struct mesh *m, const struct peer *p, cJSON *o)
{
}
