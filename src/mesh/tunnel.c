#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "core/log.h"
#include "core/util.h"
#include "crypto/envelope.h"
#include "crypto/infkey.h"
#include "crypto/rstream.h"
#include "http/gateway.h"
#include "mesh/attest.h"
#include "mesh/shape.h"
#include "mesh/share.h"
#include "mesh/sticky.h"
#include "mesh/tunnel.h"
#include "signer/client.h"

#define PUMP_CHUNK (64 * 1024)
#define KEY_EPOCH_DEFAULT_S 3600

#define STICKY_SAVE_MS 60000 /* last-seen updates reach the file this late */

struct tun_host;

/* Per-node E2E state: the inference keyring, the replay cache, the hosts
 * that once offered E2E (never sent plaintext again: downgrade protection),
 * and the per-member shares (doc/THREAT-MODEL.md, "Freshness and
 * per-member limits"). */
struct tunnel_state {
	struct infkey *keys; /* NULL with --no-e2e */
	struct env_replay *replay;
	struct env_sender *sender; /* version 2 ephemeral keys per host key */
	uv_timer_t key_timer;
	struct shaper *shaper; /* NULL with --no-shaping or --no-e2e */
	uint64_t resp_bytes; /* sealed answers: response stream bytes sent */
	struct sticky sticky; /* downgrade memory */
	char *sticky_path; /* NULL: memory only */
	bool sticky_dirty; /* last-seen times not yet saved */
	uint64_t sticky_saved_ms;
	struct share preauth; /* envelope bytes buffered before their MAC */
	struct share via; /* the same, all askers of one relay together */
	struct share relays; /* relay streams open, per asking member */
	struct tun_host *pending; /* hosts receiving an envelope (deadline) */
	uint64_t buffered; /* bytes really held before a MAC (or plaintext) */
	uv_timer_t sweep_timer;
};

/* The newest sealed-request version this node sends and opens. */
static uint32_t
envelope_version(const struct mesh *m)
{
	return m->opts.envelope_version ? m->opts.envelope_version
					: ENV_VERSION_MAX;
}

#ifdef SM_TEST_BUILD
unsigned tunnel_test_flood;
bool tunnel_test_flood_plain;
bool tunnel_test_no_preauth_limit;
static void test_flood_tick(struct mesh *m);
#endif

static uint64_t
mono_s(void)
{
	return sm_now_ms() / 1000;
}

#ifdef SM_TEST_BUILD
int tunnel_test_record_fd = -1;
bool tunnel_test_old_rstream;
#define old_rstream() tunnel_test_old_rstream

static void
record(const uint8_t *p, size_t n)
{
	if (tunnel_test_record_fd >= 0 && n > 0 &&
	    write(tunnel_test_record_fd, p, n) != (ssize_t)n)
		log_warn("relay record: short write");
}
#else
#define record(p, n) ((void)0)
#define old_rstream() false
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
			if (ev.len > 0) /* v2: END carries the last bytes */
				ut_http(u, ev.data, ev.len);
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
	return sticky_has(&m->tun->sticky, id);
}

/* Write the downgrade memory: a 0600 temporary file, fsync, rename. */
static int
sticky_save(struct tunnel_state *ts)
{
	char tmp[4096 + 8];
	struct buf out;
	int fd = -1, r;

	if (ts->sticky_path == NULL)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp", ts->sticky_path);
	buf_init(&out, STICKY_FILE_MAX);
	if ((r = sticky_write(&ts->sticky, &out)) != 0)
		goto out;
	r = SM_ERR_IO;
	(void)unlink(tmp);
	if ((fd = open(tmp,
		 O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) <
		0 ||
	    write(fd, buf_data(&out), out.len) != (ssize_t)out.len ||
	    fsync(fd) != 0) {
		log_error("e2e: cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, ts->sticky_path) != 0) {
		log_error("e2e: cannot rename %s to %s: %s", tmp,
		    ts->sticky_path, strerror(errno));
		goto out;
	}
	ts->sticky_dirty = false;
	ts->sticky_saved_ms = sm_now_ms();
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (r != 0 && fd >= 0)
		(void)unlink(tmp);
	buf_clear(&out);
	return r;
}

/* Load STATE_DIR/STICKY_FILE if it exists; refuse one others can touch. */
static int
sticky_load(struct tunnel_state *ts, const char *dir)
{
	struct stat st;
	struct buf in;
	ssize_t got;
	int fd = -1, r = SM_ERR_NOMEM;
	size_t n = strlen(dir) + sizeof(STICKY_FILE) + 2;

	buf_init(&in, STICKY_FILE_MAX);
	if ((ts->sticky_path = malloc(n)) == NULL)
		goto out;
	snprintf(ts->sticky_path, n, "%s/%s", dir, STICKY_FILE);
	if ((fd = open(ts->sticky_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) <
	    0) {
		r = 0;
		if (errno != ENOENT) {
			log_error("e2e: cannot open %s: %s", ts->sticky_path,
			    strerror(errno));
			r = SM_ERR_IO;
		}
		goto out;
	}
	r = SM_ERR_PERM;
	if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0 ||
	    (st.st_uid != geteuid() && geteuid() != 0)) {
		log_error(
		    "%s is accessible by others; refusing it", ts->sticky_path);
		goto out;
	}
	r = SM_ERR_TOOBIG;
	if ((size_t)st.st_size > STICKY_FILE_MAX ||
	    buf_reserve(&in, (size_t)st.st_size) != 0)
		goto out;
	r = SM_ERR_IO;
	if ((got = read(fd, buf_tail(&in), (size_t)st.st_size)) !=
	    (ssize_t)st.st_size) {
		log_error("e2e: cannot read %s: %s", ts->sticky_path,
		    got < 0 ? strerror(errno) : "short read");
		goto out;
	}
	buf_advance(&in, (size_t)got);
	if ((r = sticky_parse(&ts->sticky, buf_data(&in), in.len)) != 0) {
		log_error("e2e: %s: %s", ts->sticky_path, sm_strerror(r));
		goto out;
	}
	log_info("e2e: downgrade memory: %zu host(s) from %s", ts->sticky.n,
	    ts->sticky_path);
out:
	if (fd >= 0)
		close(fd);
	buf_clear(&in);
	return r;
}

void
tunnel_peer_seen(struct mesh *m, const struct peer *p)
{
	struct tunnel_state *ts = m->tun;
	bool added;

	if (!p->ann.has_inference_key)
		return;
	if (sticky_note(&ts->sticky, p->ann.id, sm_wall_s(), &added) != 0)
		return;
	/* A new id is saved at once; last-seen times now and then. */
	if (added)
		(void)sticky_save(ts);
	else
		ts->sticky_dirty = true;
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
	/*
	 * The key is used only while the announcement that carries it is
	 * fresh: the host re-announces at once when its key rotates and keeps
	 * the previous key for a grace period longer than the freshness
	 * window, so a key is never used past its epoch's end (+ grace).
	 */
	if (p->ann.has_inference_key &&
	    peers_fresh(&m->peers, p->ann.seq, sm_wall_ms()) != 0) {
		*why = "the host's key comes from an announcement too old to "
		       "trust (its epoch may have ended)";
		return TUN_REFUSE;
	}
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

/*
 * Envelope flags for host 'p': ask for a padded, paced answer (response
 * stream v2) when the host's signed announcement says it gives one and this
 * node has not turned shaping off. Never set for an older host: it would
 * refuse the request.
 */
static uint8_t
ut_rs_flags(const struct mesh *m, const struct peer *p)
{
	if (m->opts.no_shaping || old_rstream() || p->ann.rs_version < 2)
		return 0;
	return ENV_F_RS2;
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
		uint8_t flags = ut_rs_flags(m, p);

		buf_init(&http, req->body.len + 64 * 1024);
		r = upstream_build_tunnel_request(&http, req);
		if (r == 0 && envelope_version(m) >= ENV_VERSION_2 &&
		    p->ann.envelope_version >= ENV_VERSION_2)
			r = env_seal_request2(&u->pending, &u->sess,
			    m->tun->sender, &tg, flags, buf_data(&http),
			    http.len, sm_wall_s());
		else if (r == 0)
			r = env_seal_request_flags(&u->pending, &u->sess, &tg,
			    flags, buf_data(&http), http.len, sm_wall_s());
		buf_clear(&http); /* wipes the plaintext copy */
		if (r != 0)
			goto fail;
		u->e2e = true;
		if (flags & ENV_F_RS2)
			rs_reader_init_v2(&u->rd, u->sess.rkey);
		else
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
	struct shape_stream ss; /* E2E v2: padded, paced frames */
	uint8_t link_id[ID_PK_LEN]; /* the member whose link carries it */
	uint8_t from[ID_PK_LEN]; /* share key: link_id, or (relayed) link_id
				    XOR the asker the relay names */
	bool relayed; /* sm-from given: also charged to ts->via */
	size_t reserved; /* preauth share held for the envelope */
	size_t plain_held; /* preauth share held for plaintext request bytes */
	uint64_t deadline_ms; /* the whole envelope must be here by then */
	struct tun_host *prev, *next; /* in ts->pending while reserved */
	bool w_init;
	bool shaped; /* ss is in use */
	bool ended; /* lstream_end() called */
	bool responded;
	bool stream_gone;
};

/*
 * Charge 'n' unauthenticated bytes: to the asker's share (per relayed asker
 * when a relay names it), and for relayed streams also to the relay's
 * aggregate, so a relay (or a member claiming to be one) holds at most
 * TUNNEL_PREAUTH_VIA_MAX whatever askers it names. 0 or the share error.
 */
static int
th_take(struct tun_host *th, size_t n)
{
	struct tunnel_state *ts = th->m->tun;
	int r;

	if (th->relayed && (r = share_take(&ts->via, th->link_id, n)) != 0)
		return r;
	if ((r = share_take(&ts->preauth, th->from, n)) != 0 && th->relayed)
		share_give(&ts->via, th->link_id, n);
	return r;
}

static void
th_give(struct tun_host *th, size_t n)
{
	struct tunnel_state *ts = th->m->tun;

	if (th->relayed)
		share_give(&ts->via, th->link_id, n);
	share_give(&ts->preauth, th->from, n);
}

/*
 * Reserve the declared envelope size against the member's share and the
 * node's total before buffering it (nothing is authenticated until the MAC
 * at its end). SM_ERR_UNAVAIL when it does not fit.
 */
static int
th_reserve(struct tun_host *th, size_t total)
{
	struct tunnel_state *ts = th->m->tun;
	char sid[13];
	int r;

	if ((r = th_take(th, total)) != 0) {
		sm_hex(sid, th->link_id, 6);
		log_warn("e2e: envelope of %zu bytes from %s%s refused: %s "
			 "(%llu bytes of its envelopes unauthenticated here)",
		    total, sid, th->relayed ? " (relayed)" : "",
		    r == SM_ERR_UNAVAIL ? "over its per-member share"
					: "over the node's total",
		    (unsigned long long)share_used(&ts->preauth, th->from));
		return SM_ERR_UNAVAIL;
	}
	th->reserved = total;
	th->deadline_ms = sm_now_ms() + TUNNEL_ENVELOPE_TIMEOUT_MS;
	th->prev = NULL;
	th->next = ts->pending;
	if (ts->pending != NULL)
		ts->pending->prev = th;
	ts->pending = th;
	return 0;
}

static void
th_release(struct tun_host *th)
{
	struct tunnel_state *ts = th->m->tun;

	if (th->reserved == 0)
		return;
	th_give(th, th->reserved);
	th->reserved = 0;
	if (th->prev != NULL)
		th->prev->next = th->next;
	else
		ts->pending = th->next;
	if (th->next != NULL)
		th->next->prev = th->prev;
	th->prev = th->next = NULL;
}

static int
th_send(struct tun_host *th, const uint8_t *p, size_t n)
{
	if (th->mode == TH_E2E)
		th->m->tun->resp_bytes += n;
	if (!th->responded) {
		if (lstream_respond(th->s, 200, NULL, 0) != 0)
			return SM_ERR_IO;
		th->responded = true;
	}
	return lstream_write(th->s, p, n) == 0 ? 0 : SM_ERR_IO;
}

/* --- shaped answers (response stream v2, mesh/shape.h) --- */

static int
th_shape_sink_write(void *arg, const uint8_t *p, size_t n)
{
	struct tun_host *th = arg;

	return th->stream_gone ? SM_ERR_CLOSED : th_send(th, p, n);
}

static size_t
th_shape_sink_queued(void *arg)
{
	struct tun_host *th = arg;

	return th->stream_gone ? 0 : lstream_queued(th->s);
}

static void
th_shape_sink_drained(void *arg)
{
	struct tun_host *th = arg;

	if (th->c != NULL)
		hconn_drained(th->c);
}

/* The last frame is out (or could not be written): end the stream. */
static void
th_shape_sink_done(void *arg, int err)
{
	struct tun_host *th = arg;

	if (th->stream_gone || th->ended)
		return;
	th->ended = true;
	if (err != 0)
		lstream_reset(th->s, LINK_H2_CANCEL);
	else
		(void)lstream_end(th->s);
}

static const struct shape_sink th_shape_sink = {
    th_shape_sink_write,
    th_shape_sink_queued,
    th_shape_sink_drained,
    th_shape_sink_done,
};

/* The gateway's bytes wait for the next tick. */
static int
th_shape_write(struct tun_host *th, const uv_buf_t *bufs, unsigned n)
{
	int r = 0;

	for (unsigned i = 0; i < n && r == 0; i++)
		r = shape_stream_write(
		    &th->ss, (const uint8_t *)bufs[i].base, bufs[i].len);
	return r;
}

/*
 * Start the answer to an opened request: v2 and shaped when the asker asked
 * for it (ENV_F_RS2) and shaping is on here, else v1 as before. Appends the
 * preamble to 'pre'.
 */
static int
th_shape_begin(
    struct tun_host *th, const struct env_session *sess, struct buf *pre)
{
	struct shaper *sh = th->m->tun->shaper;
	int r;

	if (sh == NULL || !(sess->flags & ENV_F_RS2))
		return rs_writer_init(&th->w, pre, sess->rkey);
	if ((r = rs_writer_init_v2(&th->w, pre, sess->rkey)) != 0)
		return r;
	shape_stream_start(&th->ss, sh, &th->w, &th_shape_sink, th);
	th->shaped = true;
	return 0;
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
	if (th->shaped)
		return th_shape_write(th, bufs, n);
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

	if (th->stream_gone)
		return 0;
	return lstream_queued(th->s) +
	    (th->shaped ? shape_stream_pending(&th->ss) : 0);
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
	if (th->shaped) {
		shape_stream_end(&th->ss); /* END and END_STREAM on a tick */
		return;
	}
	if (th->mode == TH_E2E)
		th_seal_end(th, true);
	th->ended = true;
	(void)lstream_end(th->s);
}

static void
th_free(struct tun_host *th)
{
	if (th->shaped)
		shape_stream_stop(&th->ss);
	th_release(th);
	th_give(th, th->plain_held);
	th->m->tun->buffered -= th->plain_held;
	if (th->w_init)
		rs_writer_clear(&th->w);
	th->m->tun->buffered -= th->in.len;
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
	} else if (th->shaped) {
		/* Failed after decrypting unless END was asked for: ERROR on
		 * the next tick, in a frame like any other. */
		shape_stream_fail(&th->ss, 502);
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

	if (err != SM_ERR_UNAVAIL)
		th->m->e2e_decrypt_failures++;
	log_warn("e2e: sealed request refused: %s", sm_strerror(err));
	th_release(th);
	th->m->tun->buffered -= th->in.len;
	buf_clear(&th->in);
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
	bool v2 = buf_data(&th->in)[1] == ENV_VERSION_2; /* peeked: >= 2 */
	int r;

	if (ts->keys == NULL) {
		th_refuse(th, SM_ERR_NOTFOUND); /* --no-e2e: no key at all */
		return;
	}
	r = env_open_request_from(&http, &sess, ts->keys, th->m->id->pk,
	    ts->replay, th->link_id, buf_data(&th->in), total, sm_wall_s());
	th->m->tun->buffered -= th->in.len;
	buf_clear(&th->in);
	th_release(th);
	if (r != 0) {
		th_refuse(th, r);
		return;
	}
	if (old_rstream() && sess.flags != 0) {
		/* What a node from before response stream v2 does. */
		env_session_clear(&sess);
		buf_clear(&http);
		th_refuse(th, SM_ERR_UNSUPP);
		return;
	}
	th->m->e2e_opened++;
	th->m->e2e_opened_v2 += v2;
	buf_init(&pre, RS_PREAMBLE_LEN);
	if ((r = th_shape_begin(th, &sess, &pre)) == 0) {
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
		/*
		 * The HTTP layer buffers a request body whole: plaintext
		 * request bytes count against the same share until the stream
		 * ends. Over it: RST_STREAM REFUSED_STREAM.
		 */
		if (th->c == NULL)
			goto consumed;
		if (th_take(th, n) != 0) {
			char sid[13];

			sm_hex(sid, th->link_id, 6);
			log_warn("tunnel: plaintext request from %s%s refused: "
				 "over its per-member share",
			    sid, th->relayed ? " (relayed)" : "");
			lstream_reset(s, LINK_H2_REFUSED_STREAM);
			return;
		}
		th->plain_held += n;
		th->m->tun->buffered += n;
		hconn_input(th->c, (const char *)p, n);
	} else if (th->mode == TH_E2E && !th->w_init && th->c != NULL &&
	    !th->responded) {
		if (buf_append(&th->in, p, n) != 0) {
			th_refuse(th, SM_ERR_TOOBIG);
			goto consumed;
		}
		th->m->tun->buffered += n;
		if ((r = env_peek(&total, buf_data(&th->in), th->in.len)) !=
			0 &&
		    r != SM_ERR_AGAIN) {
			th_refuse(th, r);
		} else if (r == 0 && th->reserved == 0 &&
		    (r = th_reserve(th, total)) != 0) {
			th_refuse(th, r); /* RS_REFUSE_BUSY */
		} else if (r == 0 && th->in.len >= total) {
			th_open(th, total);
		}
	}
consumed:
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
	if (th->shaped)
		shape_stream_stop(&th->ss);
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
	uint8_t asker[ID_PK_LEN]; /* holds one of its relay share */
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
	if (sd->peer->gone) {
		share_give(&sd->r->m->tun->relays, sd->r->asker, 1);
		free(sd->r);
	}
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
relay_open(struct mesh *m, struct link *from, struct lstream *in,
    const struct lstream_req *req)
{
	const char *hex = NULL, *path = TUNNEL_PATH;
	const uint8_t *asker = link_peer_id(from);
	char asker_hex[ID_HEX_LEN + 1];
	struct link_hdr fh = {RELAY_FROM_HDR, asker_hex};
	uint8_t target[ID_PK_LEN];
	struct link *to;
	struct relay *r;
	char sid[13];

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
	/* One member cannot take every relay slot (RST_STREAM REFUSED). */
	if (share_take(&m->tun->relays, asker, 1) != 0) {
		sm_hex(sid, asker, 6);
		log_warn("relay: %s already holds %u relay streams; refused",
		    sid, RELAY_MEMBER_MAX);
		return SM_ERR_UNAVAIL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		share_give(&m->tun->relays, asker, 1);
		return SM_ERR_NOMEM;
	}
	r->m = m;
	memcpy(r->asker, asker, ID_PK_LEN);
	for (int i = 0; i < 2; i++) {
		r->side[i].r = r;
		r->side[i].peer = &r->side[1 - i];
	}
	r->side[0].s = in;
	/* The host charges what it buffers to this asker (its own share). */
	sm_hex(asker_hex, asker, ID_PK_LEN);
	if (lstream_open(to, "POST", path, &fh, 1, &rs_host_cbs, &r->side[1],
		&r->side[1].s) != 0) {
		share_give(&m->tun->relays, asker, 1);
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
		return relay_open(m, l, s, req);
	if (strcmp(req->path, TUNNEL_PATH) != 0)
		return SM_ERR_NOTFOUND;
	if ((th = calloc(1, sizeof(*th))) == NULL)
		return SM_ERR_NOMEM;
	th->m = m;
	th->s = s;
	memcpy(th->link_id, link_peer_id(l), ID_PK_LEN);
	memcpy(th->from, th->link_id, ID_PK_LEN);
	for (size_t i = 0; i < req->nhdrs; i++) {
		uint8_t asker[ID_PK_LEN];

		if (strcmp(req->hdrs[i].name, RELAY_FROM_HDR) != 0 ||
		    sm_unhex(asker, ID_PK_LEN, req->hdrs[i].value) != 0)
			continue;
		for (size_t k = 0; k < ID_PK_LEN; k++)
			th->from[k] = th->link_id[k] ^ asker[k];
		th->relayed = true;
		break;
	}
	buf_init(&th->in, ENV_WIRE_MAX);
	if ((th->c = hconn_new(&m->gw->tunnel, &th_io, th)) == NULL) {
		free(th);
		return SM_ERR_NOMEM;
	}
	lstream_set_cb(s, &th_cbs, th);
	m->tunnels_in++;
	return 0;
}

/*
 * Once a second: end envelopes that did not arrive in time (their share goes
 * back), and save the downgrade memory's last-seen times now and then.
 */
static void
sweep_tick(uv_timer_t *t)
{
	struct mesh *m = t->data;
	struct tunnel_state *ts = m->tun;
	uint64_t now = sm_now_ms();
	struct tun_host *th, *next;

	for (th = ts->pending; th != NULL; th = next) {
		next = th->next;
		if (th->deadline_ms <= now)
			th_refuse(th, SM_ERR_UNAVAIL); /* unlinks th */
	}
	if (ts->sticky_dirty && now - ts->sticky_saved_ms >= STICKY_SAVE_MS)
		(void)sticky_save(ts);
#ifdef SM_TEST_BUILD
	test_flood_tick(m);
#endif
}

#ifdef SM_TEST_BUILD
/* --- test builds: a member flooding a host with incomplete envelopes --- */

struct flood {
	struct lstream *s;
	size_t sent, target;
	bool stop;
};

static void
fl_pump(struct flood *f)
{
	static const uint8_t junk[PUMP_CHUNK];

	/* A little over LSTREAM_LOWAT at a time: on_drain asks for more, and
	 * the loop is never blocked for long (sanitizer builds too). */
	while (!f->stop && f->sent < f->target &&
	    lstream_queued(f->s) <= LSTREAM_LOWAT) {
		size_t n = f->target - f->sent < PUMP_CHUNK
		    ? f->target - f->sent
		    : PUMP_CHUNK;

		if (lstream_write(f->s, junk, n) != 0) {
			f->stop = true;
			break;
		}
		f->sent += n;
	}
}

static void
fl_data(struct lstream *s, const uint8_t *p, size_t n, void *arg)
{
	struct flood *f = arg;

	f->stop = true; /* a refusal: the host will not take more */
	lstream_consume(s, n);
}

static void
fl_drain(struct lstream *s, void *arg)
{
	fl_pump(arg);
}

static void
fl_close(struct lstream *s, int err, uint32_t h2, void *arg)
{
	free(arg);
}

static const struct lstream_cb fl_cbs = {
    .on_data = fl_data,
    .on_drain = fl_drain,
    .on_close = fl_close,
};

static void
test_flood_tick(struct mesh *m)
{
	static bool started;
	char target[ID_HEX_LEN + 1];
	struct link_hdr th = {RELAY_TARGET_HDR, target};
	uint8_t hdr[ENV_HDR_LEN], via[ID_PK_LEN];
	struct link *l = NULL;
	struct peer *p = NULL;
	unsigned opened = 0;
	bool relayed = false;
	char sid[13];

	if (tunnel_test_flood == 0 || started)
		return;
	for (size_t i = 0; i < m->peers.n && l == NULL; i++) {
		p = m->peers.v[i];
		if (p->state == PEER_ALIVE && p->ann.role == ANN_ROLE_HOST &&
		    p->ann.has_inference_key && p->ann.n_serving > 0)
			l = path_to(m, p->ann.id, &relayed, via);
	}
	if (l == NULL)
		return;
	sm_hex(target, p->ann.id, ID_PK_LEN);
	started = true;
	/* A well-formed header declaring the largest envelope, or (plaintext)
	 * an HTTP request head declaring an 8,000,000-byte body. */
	hdr[0] = ENV_MAGIC;
	hdr[1] = ENV_VERSION;
	sm_put_be32(hdr + 2, p->ann.inference_key_epoch);
	randombytes_buf(hdr + ENV_EPH_OFF, ENV_BODYLEN_OFF - ENV_EPH_OFF);
	sm_put_be32(hdr + ENV_BODYLEN_OFF, ENV_MAC_LEN + ENV_PT_MAX);
	for (unsigned i = 0; i < tunnel_test_flood; i++) {
		struct flood *f = calloc(1, sizeof(*f));

		if (f == NULL ||
		    lstream_open(l, "POST", relayed ? RELAY_PATH : TUNNEL_PATH,
			relayed ? &th : NULL, relayed ? 1 : 0, &fl_cbs, f,
			&f->s) != 0) {
			free(f);
			break;
		}
		/* everything but the last 4 KiB: the MAC never checks */
		f->target = ENV_WIRE_MAX - 4096;
		if (tunnel_test_flood_plain) {
			static const char head[] =
			    "POST /v1/chat/completions HTTP/1.1\r\n"
			    "Host: x\r\nContent-Length: 8000000\r\n\r\n";

			f->target = sizeof(head) - 1 + 8000000 - 4096;
			if (lstream_write(f->s, head, sizeof(head) - 1) != 0) {
				lstream_reset(f->s, LINK_H2_CANCEL);
				continue;
			}
			f->sent = sizeof(head) - 1;
		} else if (lstream_write(f->s, hdr, sizeof(hdr)) != 0) {
			lstream_reset(f->s, LINK_H2_CANCEL);
			continue;
		} else {
			f->sent = sizeof(hdr);
		}
		fl_pump(f);
		opened++;
	}
	log_info("test: flooding %s with %u incomplete envelopes%s",
	    (sm_hex(sid, p->ann.id, 6), sid), opened,
	    relayed ? " through a relay" : "");
}
#endif

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

void
tunnel_key_schedule(
    const struct mesh_opts *o, uint64_t *epoch_s, uint64_t *grace_s)
{
	/* Longer than the freshness window in which clients may still seal to
	 * the previous key (mesh/peers.h), and long enough for gossip to
	 * spread the new one everywhere. */
	uint64_t skew_s =
	    (o->clock_skew_ms ? o->clock_skew_ms : PEERS_SKEW_DEFAULT_MS) /
	    1000;

	*epoch_s = o->key_epoch_s ? o->key_epoch_s : KEY_EPOCH_DEFAULT_S;
	*grace_s = PEERS_FRESH_INTERVALS * (o->gossip_interval_ms / 1000) +
	    skew_s + 60;
	if (*grace_s > *epoch_s)
		*grace_s = *epoch_s;
}

int
tunnel_init(struct mesh *m)
{
	struct tunnel_state *ts;
	uint64_t epoch, grace;
	int r;

	if ((ts = calloc(1, sizeof(*ts))) == NULL)
		return SM_ERR_NOMEM;
	m->tun = ts;
	sticky_init(&ts->sticky, 0);
	share_init(
	    &ts->preauth, TUNNEL_PREAUTH_MEMBER_MAX, TUNNEL_PREAUTH_NODE_MAX);
	share_init(&ts->via, TUNNEL_PREAUTH_VIA_MAX, UINT64_MAX);
	share_init(&ts->relays, RELAY_MEMBER_MAX, UINT64_MAX);
#ifdef SM_TEST_BUILD
	if (tunnel_test_no_preauth_limit) {
		share_init(&ts->preauth, UINT64_MAX, UINT64_MAX);
		share_init(&ts->via, UINT64_MAX, UINT64_MAX);
	}
#endif
	if (m->opts.memory_dir != NULL &&
	    (r = sticky_load(ts, m->opts.memory_dir)) != 0)
		return r;
	uv_timer_init(m->loop, &ts->sweep_timer);
	ts->sweep_timer.data = m;
	uv_timer_start(&ts->sweep_timer, sweep_tick, 1000, 1000);
	if (m->opts.no_e2e)
		return 0;
	if ((r = env_sender_new(&ts->sender)) != 0)
		return r;
	tunnel_key_schedule(&m->opts, &epoch, &grace);
	if ((r = m->opts.signer != NULL
		    ? signer_infkey_new(m->opts.signer, &ts->keys)
		    : infkey_new(&ts->keys, epoch, grace, mono_s())) != 0 ||
	    (r = env_replay_new(
		 &ts->replay, TUNNEL_REPLAY_WINDOW_S, TUNNEL_REPLAY_MAX)) != 0)
		return r;
#ifdef SM_TEST_BUILD
	/* Test builds: a known inference secret for the memory scan of a node
	 * without privilege separation (the signer has the same hook). */
	if (m->opts.signer == NULL && getenv("SM_TEST_INFKEY_SK") != NULL &&
	    infkey_install_hex(
		ts->keys, getenv("SM_TEST_INFKEY_SK"), mono_s()) != 0)
		return SM_ERR_INVAL;
#endif
	uv_timer_init(m->loop, &ts->key_timer);
	ts->key_timer.data = m;
	uv_timer_start(&ts->key_timer, key_tick, 1000, 0);
	if (!m->opts.no_shaping && !old_rstream()) {
		struct shape_opts so = {
		    .pacing_ms = m->opts.response_pacing_ms,
		    .bucket = m->opts.response_bucket,
		};

		if ((r = shaper_new(&ts->shaper, m->loop, &so)) != 0)
			return r;
	}
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
	a->envelope_version = envelope_version(m);
	memcpy(a->inference_key, pub.pk, sizeof(a->inference_key));
	/* Asked for it, this node answers padded and paced. */
	if (m->tun->shaper != NULL)
		a->rs_version = RS_VERSION2;
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
	cJSON_AddNumberToObject(o, "envelope_version",
	    p->ann.has_inference_key ? p->ann.envelope_version : 0);
	cJSON_AddBoolToObject(o, "e2e_required", sticky(m, p->ann.id));
	cJSON_AddBoolToObject(o, "response_shaping", p->ann.rs_version >= 2);
}

/*
 * "shaping" in /api/status: whether this node asks hosts for shaped answers
 * and gives them, its settings, and what its shaped answers cost so far.
 */
static void
tunnel_status_shaping(struct mesh *m, cJSON *st)
{
	struct shaper *sh = m->tun->shaper;
	cJSON *o = cJSON_AddObjectToObject(st, "shaping");
	const struct shape_stats *ss;

	if (o == NULL)
		return;
	cJSON_AddBoolToObject(
	    o, "ask", !m->opts.no_shaping && !m->opts.no_e2e && !old_rstream());
	cJSON_AddBoolToObject(o, "answer", sh != NULL);
	if (sh == NULL)
		return;
	ss = shaper_stats(sh);
	cJSON_AddNumberToObject(o, "pacing_ms", shaper_opts(sh)->pacing_ms);
	cJSON_AddNumberToObject(o, "bucket", shaper_opts(sh)->bucket);
	cJSON_AddNumberToObject(o, "active_streams", (double)shaper_active(sh));
	cJSON_AddNumberToObject(o, "streams", (double)ss->streams);
	cJSON_AddNumberToObject(o, "frames", (double)ss->frames);
	cJSON_AddNumberToObject(
	    o, "padding_frames", (double)ss->padding_frames);
	cJSON_AddNumberToObject(o, "data_bytes", (double)ss->data_bytes);
	cJSON_AddNumberToObject(o, "wire_bytes", (double)ss->wire_bytes);
	cJSON_AddNumberToObject(o, "skipped_ticks", (double)ss->skipped);
}

void
tunnel_status_self(struct mesh *m, cJSON *st)
{
	struct infkey_pub pub;

	cJSON_AddBoolToObject(st, "e2e", m->tun->keys != NULL);
	cJSON_AddNumberToObject(
	    st, "downgrade_memory", (double)m->tun->sticky.n);
	cJSON_AddNumberToObject(
	    st, "preauth_bytes", (double)m->tun->preauth.total);
	cJSON_AddBoolToObject(
	    st, "allow_plaintext_peers", m->opts.allow_plaintext);
	if (m->tun->keys != NULL) {
		infkey_current(m->tun->keys, &pub);
		cJSON_AddNumberToObject(st, "key_epoch", pub.epoch);
	}
	tunnel_status_shaping(m, st);
}

/* Freshness and per-member limits (doc/THREAT-MODEL.md). */
static int
limits_metrics(struct mesh *m, struct buf *out)
{
	struct tunnel_state *ts = m->tun;

	return buf_appendf(out,
	    "# HELP sealmesh_announcements_refused_total Announcements "
	    "signed outside the freshness window.\n"
	    "# TYPE sealmesh_announcements_refused_total counter\n"
	    "sealmesh_announcements_refused_total{reason=\"old\"} %llu\n"
	    "sealmesh_announcements_refused_total{reason=\"future\"} %llu\n"
	    "# HELP sealmesh_preauth_bytes Envelope bytes reserved before "
	    "their MAC is checked.\n"
	    "# TYPE sealmesh_preauth_bytes gauge\n"
	    "sealmesh_preauth_bytes %llu\n"
	    "# HELP sealmesh_preauth_buffered_bytes Bytes held before their "
	    "MAC is checked (and plaintext request bytes).\n"
	    "# TYPE sealmesh_preauth_buffered_bytes gauge\n"
	    "sealmesh_preauth_buffered_bytes %llu\n"
	    "# HELP sealmesh_preauth_refused_total Envelopes refused over a "
	    "member's share or the node's total.\n"
	    "# TYPE sealmesh_preauth_refused_total counter\n"
	    "sealmesh_preauth_refused_total %llu\n"
	    "# HELP sealmesh_relay_refused_total Relay streams refused over "
	    "a member's share.\n"
	    "# TYPE sealmesh_relay_refused_total counter\n"
	    "sealmesh_relay_refused_total %llu\n"
	    "# HELP sealmesh_downgrade_memory Hosts remembered as having "
	    "offered E2E.\n"
	    "# TYPE sealmesh_downgrade_memory gauge\n"
	    "sealmesh_downgrade_memory %zu\n",
	    (unsigned long long)m->peers.refused_old,
	    (unsigned long long)m->peers.refused_future,
	    (unsigned long long)ts->preauth.total,
	    (unsigned long long)ts->buffered,
	    (unsigned long long)ts->preauth.refused,
	    (unsigned long long)ts->relays.refused, ts->sticky.n);
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

	if ((r = limits_metrics(m, out)) != 0 ||
	    (r = queue_metrics(m, out)) != 0)
		return r;
	return buf_appendf(out,
	    "# HELP sealmesh_e2e_sealed_total Requests sealed to a host key.\n"
	    "# TYPE sealmesh_e2e_sealed_total counter\n"
	    "sealmesh_e2e_sealed_total %llu\n"
	    "# HELP sealmesh_e2e_opened_total Sealed requests opened here.\n"
	    "# TYPE sealmesh_e2e_opened_total counter\n"
	    "sealmesh_e2e_opened_total %llu\n"
	    "# HELP sealmesh_e2e_opened_v2_total Of those, version 2 "
	    "envelopes.\n"
	    "# TYPE sealmesh_e2e_opened_v2_total counter\n"
	    "sealmesh_e2e_opened_v2_total %llu\n"
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
	    "sealmesh_plaintext_out_total %llu\n"
	    "# HELP sealmesh_e2e_response_bytes_total Sealed answer bytes "
	    "sent (response stream, padding included).\n"
	    "# TYPE sealmesh_e2e_response_bytes_total counter\n"
	    "sealmesh_e2e_response_bytes_total %llu\n",
	    (unsigned long long)m->e2e_sealed,
	    (unsigned long long)m->e2e_opened,
	    (unsigned long long)m->e2e_opened_v2,
	    (unsigned long long)m->e2e_decrypt_failures,
	    (unsigned long long)m->e2e_refused,
	    (unsigned long long)m->plaintext_out,
	    (unsigned long long)m->tun->resp_bytes);
}
