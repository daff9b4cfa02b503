#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "crypto/envelope.h"
#include "crypto/infkey.h"
#include "crypto/rstream.h"
#include "http/gateway.h"
#include "mesh/attest.h"
#include "mesh/tunnel.h"

#define PUMP_CHUNK (64 * 1024)
#define KEY_EPOCH_DEFAULT_S 3600

/* Per-node E2E state: the inference keyring, the replay cache, and the hosts
 * that once offered E2E (never sent plaintext again: downgrade protection). */
struct tunnel_state {
	struct infkey *keys; /* NULL with --no-e2e */
	struct env_replay *replay;
	uv_timer_t key_timer;
	uint8_t (*sticky)[ID_PK_LEN];
	size_t nsticky;
};

static uint64_t
mono_s(void)
{
	return sm_now_ms() / 1000;
}

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
	struct hparse hp;
	struct buf pending; /* request bytes not yet in the stream */
	bool e2e;
	struct env_session sess; /* keys for the answer; wiped */
	struct rs_reader rd;
	uv_timer_t timer;
	size_t held; /* received bytes not consumed while paused */
	bool ended; /* END_STREAM sent */
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
	if (u->e2e) {
		rs_reader_clear(&u->rd);
		env_session_clear(&u->sess);
	}
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
	if (u->base.finished)
		return;
	u->base.finished = true;
	uv_close((uv_handle_t *)&u->timer, ut_timer_closed);
	u->base.cbs.on_end(u->base.user, err);
	if (err != 0 && !u->stream_gone)
		lstream_reset(u->s, LINK_H2_CANCEL);
}

static void
ut_on_headers(struct lstream *s, int status, const struct link_hdr *h, size_t n,
    void *arg)
{
	struct up_tun *u = arg;

	/* The tunnel's own status: anything but 200 means not taken. */
	if (status != 200) {
		log_warn("tunnel refused by host: HTTP/2 status %d", status);
		ut_finish(u, SM_ERR_IO);
	}
}

/* Response bytes of the HTTP/1.1 answer, in order. */
static void
ut_http(struct up_tun *u, const uint8_t *p, size_t n)
{
	enum llhttp_errno e;
	size_t used;

	if (u->base.finished)
		return;
	e = hparse_feed(&u->hp, (const char *)p, n, &used);
	if (e != HPE_OK && e != HPE_PAUSED && !u->base.finished)
		ut_finish(u, u->base.head_seen ? SM_ERR_CLOSED : SM_ERR_PROTO);
}

/* Open the encrypted response stream; every failure is reported. */
static void
ut_e2e(struct up_tun *u, const uint8_t *p, size_t n)
{
	struct rs_event ev;
	size_t off = 0, used;
	int r;

	while (off < n && !u->base.finished) {
		r = rs_reader_feed(&u->rd, &ev, &used, p + off, n - off);
		off += used;
		if (r == SM_ERR_AGAIN)
			break;
		if (r != 0) {
			u->m->e2e_decrypt_failures++;
			log_warn("e2e: response refused: %s", sm_strerror(r));
			ut_finish(u,
			    u->base.head_seen ? SM_ERR_CLOSED : SM_ERR_PROTO);
			break;
		}
		switch (ev.type) {
		case RS_EV_DATA:
			ut_http(u, ev.data, ev.len);
			break;
		case RS_EV_END:
			if (!u->base.finished &&
			    hparse_finish(&u->hp) == HPE_OK && u->base.finished)
				break;
			ut_finish(u,
			    u->base.head_seen ? SM_ERR_CLOSED : SM_ERR_PROTO);
			break;
		case RS_EV_ERROR:
			log_warn("e2e: host reported an error: %u %s",
			    ev.status, ev.reason);
			ut_finish(
			    u, u->base.head_seen ? SM_ERR_CLOSED : SM_ERR_IO);
			break;
		case RS_EV_REFUSED:
			u->m->e2e_decrypt_failures++;
			log_warn(
			    "e2e: host refused the sealed request (code %u)",
			    ev.status);
			ut_finish(u, SM_ERR_IO);
			break;
		}
	}
}

static void
ut_on_data(struct lstream *s, const uint8_t *p, size_t n, void *arg)
{
	struct up_tun *u = arg;

	if (u->e2e)
		ut_e2e(u, p, n);
	else
		ut_http(u, p, n);
	if (u->stream_gone)
		return;
	if (u->paused && !u->base.finished)
		u->held += n;
	else
		lstream_consume(s, n);
}

static void
ut_on_end(struct lstream *s, void *arg)
{
	struct up_tun *u = arg;

	if (u->base.finished)
		return;
	/* A sealed answer ends only with its authenticated END chunk. */
	if (!u->e2e && hparse_finish(&u->hp) == HPE_OK && u->base.finished)
		return;
	ut_finish(u, u->base.head_seen ? SM_ERR_CLOSED : SM_ERR_IO);
}

static void
ut_on_drain(struct lstream *s, void *arg)
{
	struct up_tun *u = arg;

	if (u->ended || u->base.finished)
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
	/* SM_ERR_BUSY: waited in the link's queue past --queue-timeout, the
	 * host never saw it; ENHANCE_YOUR_CALM: the same in a relay's queue. */
	if (!u->base.finished)
		ut_finish(u,
		    err == SM_ERR_BUSY ||
			    (err == SM_ERR_CLOSED &&
				h2 == LINK_H2_ENHANCE_YOUR_CALM)
			? SM_ERR_BUSY
			: u->base.head_seen ? SM_ERR_CLOSED
					    : SM_ERR_IO);
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

	if (u->base.finished)
		return;
	u->base.finished = true;
	uv_close((uv_handle_t *)&u->timer, ut_timer_closed);
	if (!u->stream_gone)
		lstream_reset(u->s, LINK_H2_CANCEL);
}

static void
ut_complete(struct upstream *base)
{
	ut_finish(ut_of(base), 0);
}

static const struct upstream_ops ut_ops = {
    ut_pause, ut_resume, ut_cancel, ut_complete};

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

static bool
sticky(const struct mesh *m, const uint8_t id[ID_PK_LEN])
{
	for (size_t i = 0; i < m->tun->nsticky; i++)
		if (memcmp(m->tun->sticky[i], id, ID_PK_LEN) == 0)
			return true;
	return false;
}

void
tunnel_peer_seen(struct mesh *m, const struct peer *p)
{
	struct tunnel_state *ts = m->tun;

	if (!p->ann.has_inference_key || sticky(m, p->ann.id) ||
	    ts->nsticky >= PEERS_MAX)
		return;
	memcpy(ts->sticky[ts->nsticky++], p->ann.id, ID_PK_LEN);
}

enum tun_mode { TUN_REFUSE, TUN_PLAIN, TUN_E2E };

/*
 * The one policy every prompt-carrying path applies. A host with a key gets a
 * sealed request. A host without one gets plaintext only when the operator
 * allowed it (or this node itself runs --no-e2e, as an old node would), and
 * never when it once offered a key: later gossip cannot downgrade it.
 */
static enum tun_mode
tunnel_policy(struct mesh *m, const struct peer *p, const char **why)
{
	*why = NULL;
	/* Attestation binds the host's key: no attested plaintext path. */
	if (!mesh_att_route_ok(m, p, why))
		return TUN_REFUSE;
	if (m->opts.no_e2e)
		return TUN_PLAIN;
	if (p->ann.has_inference_key)
		return TUN_E2E;
	if (sticky(m, p->ann.id)) {
		*why = "the host once offered end-to-end encryption and now "
		       "does not (downgrade refused)";
		return TUN_REFUSE;
	}
	if (m->opts.allow_plaintext)
		return TUN_PLAIN;
	*why = "the host offers no end-to-end encryption "
	       "(--allow-plaintext-peers allows it)";
	return TUN_REFUSE;
}

const char *
tunnel_refusal(struct mesh *m, struct peer *p)
{
	const char *why;

	return tunnel_policy(m, p, &why) == TUN_REFUSE ? why : NULL;
}

bool
tunnel_eligible(struct mesh *m, struct peer *p)
{
	uint8_t via[ID_PK_LEN];
	const char *why;
	bool relayed;

	return tunnel_policy(m, p, &why) != TUN_REFUSE &&
	    path_to(m, p->ann.id, &relayed, via) != NULL;
}

int
tunnel_start(void *arg, const struct route_target *t, const struct hreq *req,
    const struct oai_peek *pk, const struct upstream_cbs *cbs, void *user,
    struct upstream **out)
{
	struct mesh *m = arg;
	char target[ID_HEX_LEN + 1];
	struct link_hdr hdr = {RELAY_TARGET_HDR, target};
	uint8_t via[ID_PK_LEN];
	struct peer *p;
	struct link *l;
	struct up_tun *u;
	enum tun_mode mode;
	const char *why;
	struct buf http;
	bool relayed;
	int r;

	*out = NULL;
	if ((p = peers_find(&m->peers, t->peer)) == NULL ||
	    p->state != PEER_ALIVE)
		return SM_ERR_UNAVAIL;
	if ((mode = tunnel_policy(m, p, &why)) == TUN_REFUSE) {
		m->e2e_refused++;
		log_warn("not sending to host: %s", why);
		return SM_ERR_PERM;
	}
	if ((l = path_to(m, t->peer, &relayed, via)) == NULL)
		return SM_ERR_UNAVAIL;
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return SM_ERR_NOMEM;
	u->base.ops = &ut_ops;
	u->base.timer = &u->timer;
	u->m = m;
	u->base.cbs = *cbs;
	u->base.user = user;
	hparse_init(&u->hp, HTTP_RESPONSE, UPSTREAM_MAX_HEADER_BYTES,
	    &upstream_parse_cbs, &u->base);
	buf_init(&u->pending, ENV_WIRE_MAX);
	if (mode == TUN_E2E) {
		struct env_target tg;

		/* Sealed to the key in the host's signed announcement. */
		memcpy(tg.node_id, p->ann.id, ID_PK_LEN);
		tg.key.epoch = p->ann.inference_key_epoch;
		memcpy(tg.key.pk, p->ann.inference_key, sizeof(tg.key.pk));
		buf_init(&http, req->body.len + 64 * 1024);
		r = upstream_build_tunnel_request(&http, req);
		if (r == 0)
			r = env_seal_request(&u->pending, &u->sess, &tg,
			    buf_data(&http), http.len, sm_wall_s());
		buf_clear(&http); /* wipes the plaintext copy */
		if (r != 0)
			goto fail;
		u->e2e = true;
		rs_reader_init(&u->rd, u->sess.rkey);
		m->e2e_sealed++;
	} else {
		if ((r = upstream_build_tunnel_request(&u->pending, req)) != 0)
			goto fail;
		m->plaintext_out++;
	}
	sm_hex(target, t->peer, ID_PK_LEN);
	if ((r = lstream_open(l, "POST", relayed ? RELAY_PATH : TUNNEL_PATH,
		 relayed ? &hdr : NULL, relayed ? 1 : 0, &ut_stream_cbs, u,
		 &u->s)) != 0)
		goto fail;
	uv_timer_init(m->loop, &u->timer);
	u->timer.data = u;
	uv_timer_start(
	    &u->timer, ut_timeout, m->gw->opts.backend_timeout_ms, 0);
	if (relayed) {
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
	if (u->e2e) {
		rs_reader_clear(&u->rd);
		env_session_clear(&u->sess);
	}
	free(u);
	return r;
}

/* === the host side: a virtual HTTP connection on a stream ================ */

enum th_mode { TH_UNKNOWN, TH_PLAIN, TH_E2E };

struct tun_host {
	struct mesh *m;
	struct lstream *s;
	struct hconn *c;
	enum th_mode mode;
	struct buf in; /* the sealed request while it arrives */
	struct rs_writer w; /* E2E: the response stream */
	bool w_init;
	bool responded;
	bool stream_gone;
};

static int
th_send(struct tun_host *th, const uint8_t *p, size_t n)
{
	if (!th->responded) {
		if (lstream_respond(th->s, 200, NULL, 0) != 0)
			return SM_ERR_IO;
		th->responded = true;
	}
	return lstream_write(th->s, p, n) == 0 ? 0 : SM_ERR_IO;
}

static int
th_write(struct hconn *c, const uv_buf_t *bufs, unsigned n)
{
	struct tun_host *th = hconn_io_ctx(c);
	struct buf ct, pt;
	int r = 0;

	if (th->stream_gone)
		return SM_ERR_CLOSED;
	if (th->mode != TH_E2E) {
		for (unsigned i = 0; i < n && r == 0; i++)
			r = th_send(
			    th, (const uint8_t *)bufs[i].base, bufs[i].len);
		return r;
	}
	/* One write of the gateway (one backend read) = one sealed chunk. */
	buf_init(&pt, ENV_PT_MAX);
	buf_init(&ct, ENV_PT_MAX + RS_FRAME_MAX);
	for (unsigned i = 0; i < n && r == 0; i++)
		r = buf_append(&pt, bufs[i].base, bufs[i].len);
	if (r == 0)
		r = rs_write_data(&th->w, &ct, buf_data(&pt), pt.len);
	if (r == 0)
		r = th_send(th, buf_data(&ct), ct.len);
	buf_clear(&pt);
	buf_clear(&ct);
	return r;
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

/* E2E: end the response stream with END, or with an authenticated ERROR. */
static void
th_seal_end(struct tun_host *th, bool ok)
{
	struct buf ct;
	int r;

	if (!th->w_init || th->w.done)
		return;
	buf_init(&ct, RS_FRAME_MAX);
	r = ok ? rs_write_end(&th->w, &ct)
	       : rs_write_error(&th->w, &ct, 502, "the host's backend failed");
	if (r == 0)
		(void)th_send(th, buf_data(&ct), ct.len);
	buf_clear(&ct);
}

static void
th_finish(struct hconn *c)
{
	struct tun_host *th = hconn_io_ctx(c);

	if (th->stream_gone)
		return;
	if (th->mode == TH_E2E)
		th_seal_end(th, true);
	(void)lstream_end(th->s);
}

static void
th_free(struct tun_host *th)
{
	if (th->w_init)
		rs_writer_clear(&th->w);
	buf_clear(&th->in);
	free(th);
}

static void
th_close(struct hconn *c)
{
	struct tun_host *th = hconn_io_ctx(c);

	th->c = NULL;
	hconn_free(c);
	if (th->stream_gone) {
		th_free(th);
	} else if (th->mode == TH_E2E && th->w_init && !th->w.done) {
		/* Failed after decrypting: say so, authenticated. */
		th_seal_end(th, false);
		(void)lstream_end(th->s);
	} else if (th->mode == TH_E2E && th->w_init) {
		(void)lstream_end(th->s);
	} else {
		lstream_reset(th->s, LINK_H2_CANCEL);
	}
}

static const struct hconn_io th_io = {
    th_write, th_queued, th_noop, th_noop, th_finish, th_close};

/* Refuse a sealed request with a (non-authenticated) refusal frame. */
static void
th_refuse(struct tun_host *th, int err)
{
	struct buf out;

	th->m->e2e_decrypt_failures++;
	log_warn("e2e: sealed request refused: %s", sm_strerror(err));
	buf_init(&out, RS_REFUSAL_LEN);
	if (rs_write_refusal(&out, rs_refusal_for(err)) == 0 &&
	    th_send(th, buf_data(&out), out.len) == 0)
		(void)lstream_end(th->s);
	else
		lstream_reset(th->s, LINK_H2_CANCEL);
	buf_clear(&out);
}

/* The whole envelope is here: open it and serve what it carries. */
static void
th_open(struct tun_host *th, size_t total)
{
	struct tunnel_state *ts = th->m->tun;
	struct env_session sess;
	struct buf http, pre;
	int r;

	if (ts->keys == NULL) {
		th_refuse(th, SM_ERR_NOTFOUND); /* --no-e2e: no key at all */
		return;
	}
	r = env_open_request(&http, &sess, ts->keys, th->m->id->pk, ts->replay,
	    buf_data(&th->in), total, sm_wall_s());
	buf_clear(&th->in);
	if (r != 0) {
		th_refuse(th, r);
		return;
	}
	th->m->e2e_opened++;
	buf_init(&pre, RS_PREAMBLE_LEN);
	if ((r = rs_writer_init(&th->w, &pre, sess.rkey)) == 0) {
		th->w_init = true;
		r = th_send(th, buf_data(&pre), pre.len);
	}
	env_session_clear(&sess);
	buf_clear(&pre);
	if (r != 0) {
		buf_clear(&http);
		lstream_reset(th->s, LINK_H2_INTERNAL_ERROR);
		return;
	}
	hconn_input(th->c, (const char *)buf_data(&http), http.len);
	buf_clear(&http); /* wipes the decrypted request */
}

static void
th_on_data(struct lstream *s, const uint8_t *p, size_t n, void *arg)
{
	struct tun_host *th = arg;
	size_t total;
	int r;

	if (th->mode == TH_UNKNOWN && n > 0)
		th->mode = p[0] == ENV_MAGIC ? TH_E2E : TH_PLAIN;
	if (th->mode == TH_PLAIN) {
		if (th->c != NULL)
			hconn_input(th->c, (const char *)p, n);
	} else if (th->mode == TH_E2E && !th->w_init && th->c != NULL &&
	    !th->responded) {
		if (buf_append(&th->in, p, n) != 0) {
			th_refuse(th, SM_ERR_TOOBIG);
		} else if ((r = env_peek(
				&total, buf_data(&th->in), th->in.len)) != 0 &&
		    r != SM_ERR_AGAIN) {
			th_refuse(th, r);
		} else if (r == 0 && th->in.len >= total) {
			th_open(th, total);
		}
	}
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
		th_free(th);
}

static const struct lstream_cb th_cbs = {
    .on_data = th_on_data,
    .on_drain = th_on_drain,
    .on_close = th_on_close,
};

/* === relays ============================================================= */

/*
 * A relay joins two streams, each a side: side[0] from the asker, side[1] to
 * the host. Bytes from one side are written to its peer and consumed only
 * once the peer has drained, so flow control holds both ends.
 */
struct relay_side {
	struct relay *r;
	struct relay_side *peer;
	struct lstream *s;
	size_t held; /* received on this side, not yet consumed */
	bool gone;
};

struct relay {
	struct mesh *m;
	struct relay_side side[2];
};

static void
rs_data(struct lstream *s, const uint8_t *p, size_t n, void *arg)
{
	struct relay_side *sd = arg, *peer = sd->peer;

	record(p, n);
	if (peer->gone || lstream_write(peer->s, p, n) != 0) {
		lstream_reset(s, LINK_H2_CANCEL);
		return;
	}
	if (lstream_queued(peer->s) <= LSTREAM_LOWAT)
		lstream_consume(s, n);
	else
		sd->held += n;
}

static void
rs_end(struct lstream *s, void *arg)
{
	struct relay_side *sd = arg;

	if (!sd->peer->gone)
		(void)lstream_end(sd->peer->s);
}

/* This side drained: take what was held back on the other. */
static void
rs_drain(struct lstream *s, void *arg)
{
	struct relay_side *peer = ((struct relay_side *)arg)->peer;

	if (peer->held > 0 && !peer->gone) {
		lstream_consume(peer->s, peer->held);
		peer->held = 0;
	}
}

static void
rs_close(struct lstream *s, int err, uint32_t h2, void *arg)
{
	struct relay_side *sd = arg;

	sd->gone = true;
	/* Our stream to the target timed out in our queue: say "busy". */
	if (!sd->peer->gone && err != 0)
		lstream_reset(sd->peer->s,
		    err == SM_ERR_BUSY ? LINK_H2_ENHANCE_YOUR_CALM
				       : LINK_H2_CANCEL);
	if (sd->peer->gone)
		free(sd->r);
}

/* The host's HTTP/2 status goes back to the asker as the relay's own. */
static void
rs_headers(struct lstream *s, int status, const struct link_hdr *h, size_t n,
    void *arg)
{
	struct relay_side *asker = ((struct relay_side *)arg)->peer;

	if (!asker->gone && lstream_respond(asker->s, status, NULL, 0) != 0)
		lstream_reset(asker->s, LINK_H2_INTERNAL_ERROR);
}

static const struct lstream_cb rs_asker_cbs = {
    .on_data = rs_data,
    .on_end = rs_end,
    .on_drain = rs_drain,
    .on_close = rs_close,
};
static const struct lstream_cb rs_host_cbs = {
    .on_headers = rs_headers,
    .on_data = rs_data,
    .on_end = rs_end,
    .on_drain = rs_drain,
    .on_close = rs_close,
};

static int
relay_open(struct mesh *m, struct lstream *in, const struct lstream_req *req)
{
	const char *hex = NULL, *path = TUNNEL_PATH;
	uint8_t target[ID_PK_LEN];
	struct link *to;
	struct relay *r;

	if (m->opts.no_relay)
		return SM_ERR_PERM;
	for (size_t i = 0; i < req->nhdrs; i++) {
		if (strcmp(req->hdrs[i].name, RELAY_TARGET_HDR) == 0)
			hex = req->hdrs[i].value;
		else if (strcmp(req->hdrs[i].name, RELAY_PATH_HDR) == 0 &&
		    strcmp(req->hdrs[i].value, ATTEST_PATH) == 0)
			path = ATTEST_PATH;
	}
	if (hex == NULL || sm_unhex(target, ID_PK_LEN, hex) != 0)
		return SM_ERR_PROTO;
	if ((to = mesh_link_to(m, target)) == NULL)
		return SM_ERR_UNAVAIL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return SM_ERR_NOMEM;
	r->m = m;
	for (int i = 0; i < 2; i++) {
		r->side[i].r = r;
		r->side[i].peer = &r->side[1 - i];
	}
	r->side[0].s = in;
	if (lstream_open(to, "POST", path, NULL, 0, &rs_host_cbs, &r->side[1],
		&r->side[1].s) != 0) {
		free(r);
		return SM_ERR_UNAVAIL;
	}
	lstream_set_cb(in, &rs_asker_cbs, &r->side[0]);
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
	buf_init(&th->in, ENV_WIRE_MAX);
	if ((th->c = hconn_new(&m->gw->tunnel, &th_io, th)) == NULL) {
		free(th);
		return SM_ERR_NOMEM;
	}
	lstream_set_cb(s, &th_cbs, th);
	m->tunnels_in++;
	return 0;
}

static void
key_tick(uv_timer_t *t)
{
	struct mesh *m = t->data;
	struct tunnel_state *ts = m->tun;
	uint64_t now = mono_s(), next;
	bool rotated = false;

	if (infkey_tick(ts->keys, now, &rotated) != 0)
		log_error("e2e: inference key rotation failed");
	if (rotated) {
		log_info("e2e: new inference key epoch");
		mesh_att_refresh(m); /* attest the new key */
		mesh_changed(m); /* announce it at once */
	}
	next = infkey_next_deadline(ts->keys);
	uv_timer_start(&ts->key_timer, key_tick,
	    next > now ? (next - now) * 1000 : 1000, 0);
}

int
tunnel_current_key(struct mesh *m, struct infkey_pub *out)
{
	if (m->tun == NULL || m->tun->keys == NULL)
		return SM_ERR_NOTFOUND;
	infkey_current(m->tun->keys, out);
	return 0;
}

int
tunnel_open_stream(struct mesh *m, const uint8_t id[ID_PK_LEN],
    const char *path, const struct lstream_cb *cb, void *arg,
    struct lstream **out)
{
	char target[ID_HEX_LEN + 1];
	struct link_hdr hdrs[2] = {
	    {RELAY_TARGET_HDR, target}, {RELAY_PATH_HDR, path}};
	uint8_t via[ID_PK_LEN];
	struct link *l;
	bool relayed;

	if ((l = path_to(m, id, &relayed, via)) == NULL)
		return SM_ERR_UNAVAIL;
	sm_hex(target, id, ID_PK_LEN);
	/* Control traffic (challenges): the link's reserve, never queued. */
	return lstream_open_ctl(l, "POST", relayed ? RELAY_PATH : path,
	    relayed ? hdrs : NULL, relayed ? 2 : 0, cb, arg, out);
}

int
tunnel_init(struct mesh *m)
{
	struct tunnel_state *ts;
	uint64_t epoch =
	    m->opts.key_epoch_s ? m->opts.key_epoch_s : KEY_EPOCH_DEFAULT_S;
	/* Long enough for gossip to spread the new key everywhere. */
	uint64_t grace = 3 * (m->opts.gossip_interval_ms / 1000) + 60;
	int r;

	if ((ts = calloc(1, sizeof(*ts))) == NULL ||
	    (ts->sticky = calloc(PEERS_MAX, ID_PK_LEN)) == NULL) {
		free(ts);
		return SM_ERR_NOMEM;
	}
	m->tun = ts;
	if (m->opts.no_e2e)
		return 0;
	if (grace > epoch)
		grace = epoch;
	if ((r = infkey_new(&ts->keys, epoch, grace, mono_s())) != 0 ||
	    (r = env_replay_new(
		 &ts->replay, TUNNEL_REPLAY_WINDOW_S, TUNNEL_REPLAY_MAX)) != 0)
		return r;
	uv_timer_init(m->loop, &ts->key_timer);
	ts->key_timer.data = m;
	uv_timer_start(&ts->key_timer, key_tick, 1000, 0);
	return 0;
}

void
tunnel_fill_announce(struct mesh *m, struct announce *a)
{
	struct infkey_pub pub;

	if (m->tun->keys == NULL)
		return;
	infkey_current(m->tun->keys, &pub);
	a->has_inference_key = true;
	a->inference_key_epoch = pub.epoch;
	memcpy(a->inference_key, pub.pk, sizeof(a->inference_key));
}

void
tunnel_status_peer(struct mesh *m, const struct peer *p, cJSON *o)
{
	cJSON_AddBoolToObject(o, "e2e", p->ann.has_inference_key);
	if (p->ann.has_inference_key)
		cJSON_AddNumberToObject(
		    o, "key_epoch", p->ann.inference_key_epoch);
	else
		cJSON_AddNullToObject(o, "key_epoch");
	cJSON_AddBoolToObject(o, "e2e_required", sticky(m, p->ann.id));
}

void
tunnel_status_self(struct mesh *m, cJSON *st)
{
	struct infkey_pub pub;

	cJSON_AddBoolToObject(st, "e2e", m->tun->keys != NULL);
	cJSON_AddBoolToObject(
	    st, "allow_plaintext_peers", m->opts.allow_plaintext);
	if (m->tun->keys != NULL) {
		infkey_current(m->tun->keys, &pub);
		cJSON_AddNumberToObject(st, "key_epoch", pub.epoch);
	}
}

/* The link layer's stream queue: a gauge, counters, a histogram. */
static int
queue_metrics(struct mesh *m, struct buf *out)
{
	struct link_stats st;
	uint64_t cum = 0;
	int r;

	link_ctx_stats(m->lctx, &st);
	if ((r = buf_appendf(out,
		 "# HELP sealmesh_link_streams_queued Streams waiting for a "
		 "free stream slot on a link.\n"
		 "# TYPE sealmesh_link_streams_queued gauge\n"
		 "sealmesh_link_streams_queued %llu\n"
		 "# HELP sealmesh_link_queue_timeouts_total Streams that "
		 "waited "
		 "--queue-timeout and were refused (503).\n"
		 "# TYPE sealmesh_link_queue_timeouts_total counter\n"
		 "sealmesh_link_queue_timeouts_total %llu\n"
		 "# HELP sealmesh_link_queue_full_total Streams refused at "
		 "once: "
		 "the queue held --queue-max.\n"
		 "# TYPE sealmesh_link_queue_full_total counter\n"
		 "sealmesh_link_queue_full_total %llu\n"
		 "# HELP sealmesh_link_queue_seconds Time streams waited in a "
		 "link's queue.\n"
		 "# TYPE sealmesh_link_queue_seconds histogram\n",
		 (unsigned long long)st.queued_now,
		 (unsigned long long)st.queue_timeouts,
		 (unsigned long long)st.queue_full)) != 0)
		return r;
	for (size_t i = 0; i < LINK_QUEUE_BUCKETS; i++) {
		cum += st.queue_hist[i];
		if (i + 1 < LINK_QUEUE_BUCKETS)
			r = buf_appendf(out,
			    "sealmesh_link_queue_seconds_bucket{le=\"%g\"} "
			    "%llu\n",
			    link_queue_bounds_ms[i] / 1000,
			    (unsigned long long)cum);
		else
			r = buf_appendf(out,
			    "sealmesh_link_queue_seconds_bucket{le=\"+Inf\"} "
			    "%llu\n",
			    (unsigned long long)cum);
		if (r != 0)
			return r;
	}
	return buf_appendf(out,
	    "sealmesh_link_queue_seconds_sum %.6f\n"
	    "sealmesh_link_queue_seconds_count %llu\n",
	    st.queue_sum_s, (unsigned long long)st.queue_count);
}

int
tunnel_metrics(struct mesh *m, struct buf *out)
{
	int r;

	if ((r = queue_metrics(m, out)) != 0)
		return r;
	return buf_appendf(out,
	    "# HELP sealmesh_e2e_sealed_total Requests sealed to a host key.\n"
	    "# TYPE sealmesh_e2e_sealed_total counter\n"
	    "sealmesh_e2e_sealed_total %llu\n"
	    "# HELP sealmesh_e2e_opened_total Sealed requests opened here.\n"
	    "# TYPE sealmesh_e2e_opened_total counter\n"
	    "sealmesh_e2e_opened_total %llu\n"
	    "# HELP sealmesh_e2e_decrypt_failures_total Sealed requests or "
	    "responses that failed to open.\n"
	    "# TYPE sealmesh_e2e_decrypt_failures_total counter\n"
	    "sealmesh_e2e_decrypt_failures_total %llu\n"
	    "# HELP sealmesh_e2e_refused_total Hosts skipped by the "
	    "encryption policy.\n"
	    "# TYPE sealmesh_e2e_refused_total counter\n"
	    "sealmesh_e2e_refused_total %llu\n"
	    "# HELP sealmesh_plaintext_out_total Requests sent without E2E.\n"
	    "# TYPE sealmesh_plaintext_out_total counter\n"
	    "sealmesh_plaintext_out_total %llu\n",
	    (unsigned long long)m->e2e_sealed,
	    (unsigned long long)m->e2e_opened,
	    (unsigned long long)m->e2e_decrypt_failures,
	    (unsigned long long)m->e2e_refused,
	    (unsigned long long)m->plaintext_out);
}
