#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sodium.h>

#include "core/log.h"
#include "core/util.h"
#include "harden/harden.h"
#include "mesh/attest.h"
#include "mesh/gossip.h"
#include "mesh/member.h"
#include "mesh/node.h"
#include "mesh/roster.h"
#include "mesh/tunnel.h"
#include "net/link.h"

#define GOSSIP_PATH "/sealmesh/gossip"
#define GOSSIP_FANOUT 3
#define SOON_MS 50

/* A dial in progress: tries each address of a peer in turn. */
struct mesh_dial {
	struct mesh *m;
	uint8_t id[ID_PK_LEN];
	char *addrs[TOKEN_MAX_ADDRS];
	size_t n_addrs;
	size_t next;
	bool from_token;
	struct link *l;
	struct mesh_dial *nextd;
};

/* One gossip exchange on a stream, either side. */
struct gossip_x {
	struct mesh *m;
	struct link *l;
	struct lstream *s;
	struct buf in;
	bool server;
	int depth; /* follow-ups so far in this contact (opener side) */
};

static void dial_next(struct mesh_dial *d);
static struct mesh_backoff *
backoff_slot(struct mesh *m, const uint8_t id[ID_PK_LEN], bool create);
static void gossip_with(struct mesh *m, struct link *l, bool push);
static void gossip_send(
    struct mesh *m, struct link *l, const struct buf *payload, int depth);

static const char *
short_id(const uint8_t id[ID_PK_LEN], char out[13])
{
	sm_hex(out, id, 6);
	return out;
}

/* --- link table --------------------------------------------------------- */

static struct mesh_link *
slot_find(struct mesh *m, const uint8_t id[ID_PK_LEN])
{
	for (size_t i = 0; i < MESH_MAX_LINKS; i++)
		if (m->links[i].l != NULL &&
		    memcmp(m->links[i].id, id, ID_PK_LEN) == 0)
			return &m->links[i];
	return NULL;
}

struct link *
mesh_link_to(struct mesh *m, const uint8_t id[ID_PK_LEN])
{
	struct mesh_link *s = slot_find(m, id);

	return s != NULL && s->up && s->admitted ? s->l : NULL;
}

static size_t
direct_ids(struct mesh *m, uint8_t (*out)[ID_PK_LEN], size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < MESH_MAX_LINKS && n < max; i++)
		if (m->links[i].l != NULL && m->links[i].up &&
		    m->links[i].admitted)
			memcpy(out[n++], m->links[i].id, ID_PK_LEN);
	return n;
}

/* --- my announcement ---------------------------------------------------- */

/*
 * Direct links for the announcement. v1 lists them all; v2 at most
 * GOSSIP_LINKED_SAMPLE, hosts first (relay routes to hosts matter most), in
 * slot order so an unchanged set signs the same bytes.
 */
static size_t
linked_sample(struct mesh *m, uint8_t (*out)[ID_PK_LEN])
{
	uint8_t all[MESH_MAX_LINKS][ID_PK_LEN];
	size_t n = direct_ids(m, all, MESH_MAX_LINKS), k = 0;

	if (m->opts.gossip_v1) {
		memcpy(out, all, n * ID_PK_LEN);
		return n;
	}
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n && k < GOSSIP_LINKED_SAMPLE; i++) {
			struct peer *p = peers_find(&m->peers, all[i]);
			bool host = p != NULL && p->ann.role == ANN_ROLE_HOST;

			if (host == (pass == 0))
				memcpy(out[k++], all[i], ID_PK_LEN);
		}
	return k;
}

/*
 * Sign my announcement. With 'force' always with a new seq; otherwise only
 * when its content differs from the one I hold (v2: re-sign on change, not
 * as proof of life). Sets '*changed' when my_ann got a new seq.
 */
static int
sign_mine(struct mesh *m, bool force, bool *changed)
{
	static uint8_t linked[MESH_MAX_LINKS][ID_PK_LEN];
	const char *models[ROUTE_MAX_LOCAL];
	struct announce a;
	struct buf posture, same;
	size_t n = 0;
	int r;

	*changed = false;
	memset(&a, 0, sizeof(a));
	for (size_t i = 0; i < m->router->nlocal; i++)
		models[n++] = m->router->local[i]->name;
	memcpy(a.mesh_id, m->mesh_id, ANN_MESH_ID_LEN);
	a.seq = m->seq;
	a.role = m->opts.role;
	a.version = SM_VERSION;
	a.serving = models;
	a.n_serving = n;
	a.hosted = models;
	a.n_hosted = n;
	a.hosted_known = true;
	a.addrs = (const char *const *)m->addrs;
	a.n_addrs = m->n_addrs;
	a.n_linked = linked_sample(m, linked);
	a.gossip_version = m->opts.gossip_v1 ? 0 : GOSSIP_VERSION;
	a.linked = (const uint8_t(*)[ID_PK_LEN])linked;
	a.relay_allowed = !m->opts.no_relay;
	a.leaving = m->leaving;
	a.http_port = m->opts.api_port > 0 ? (uint32_t)m->opts.api_port : 0;
	a.console_port =
	    m->opts.console_port > 0 ? (uint32_t)m->opts.console_port : 0;
	buf_init(&posture, ANN_MAX_POSTURE);
	if (posture_write(harden_posture(), &posture) == 0) {
		a.posture = buf_data(&posture);
		a.posture_len = posture.len;
	}
	tunnel_fill_announce(m, &a);
	mesh_att_fill_announce(m, &a);
	roster_fill_announce(m, &a);
	/* Ed25519 is deterministic: the same content and seq sign the same
	 * bytes, so an unchanged announcement compares equal. */
	buf_init(&same, ANN_MAX_LEN);
	if (!force && m->seq != 0 && announce_sign(&a, m->id, &same) == 0 &&
	    same.len == m->my_ann.len &&
	    memcmp(buf_data(&same), buf_data(&m->my_ann), same.len) == 0) {
		r = 0;
		goto out;
	}
	m->seq = announce_next_seq(m->seq, sm_wall_ms());
	a.seq = m->seq;
	buf_reset(&m->my_ann);
	r = announce_sign(&a, m->id, &m->my_ann);
	if (r == 0) {
		m->signed_ms = sm_now_ms();
		*changed = true;
		log_debug("mesh: my announcement re-signed, seq %llu%s",
		    (unsigned long long)m->seq, force ? "" : " (changed)");
	}
out:
	buf_clear(&same);
	buf_clear(&posture);
	if (r != 0)
		log_error(
		    "mesh: cannot sign my announcement: %s", sm_strerror(r));
	return r;
}

/* --- gossip ------------------------------------------------------------- */

static void
note_models(struct mesh *m, const struct announce *a)
{
	for (size_t i = 0; i < a->n_serving; i++) {
		size_t j;

		for (j = 0; j < m->n_seen; j++)
			if (strcmp(m->seen_models[j], a->serving[i]) == 0)
				break;
		if (j == m->n_seen && m->n_seen < MESH_MAX_SEEN_MODELS)
			m->seen_models[m->n_seen++] = strdup(a->serving[i]);
	}
}

static void maybe_dial(struct mesh *m, struct peer *p);
#ifdef SM_TEST_BUILD
static void test_remember(const struct peer *p);
#endif

/* Verify and merge each signed announcement; one bad item drops only
 * itself. */
static void
gossip_merge_items(
    struct mesh *m, const uint8_t *const *items, const size_t *lens, size_t n)
{
	uint64_t now = sm_now_ms();
	bool changed = false;

	m->gossip_rx++;
	for (size_t i = 0; i < n; i++) {
		struct announce a;
		enum peer_change ch;
		uint8_t denied = 0;
		char sid[13];
		int r = announce_verify_parse(items[i], lens[i], &a);

		if (r != 0) {
			m->forged_dropped++;
			log_warn(
			    "mesh: announcement dropped: %s", sm_strerror(r));
			continue;
		}
		if (memcmp(a.id, m->id->pk, ID_PK_LEN) == 0) {
			announce_free(&a);
			continue;
		}
		uint8_t aid[ID_PK_LEN];

		memcpy(aid, a.id, ID_PK_LEN);
		uint64_t fut0 = m->peers.refused_future;

		/* Owned mesh: no valid credential (or revoked), no merge. */
		if (roster_check_announce(m, &a, &denied) != 0) {
			announce_free(&a);
			continue;
		}

		if ((r = peers_merge(&m->peers, &a, now, sm_wall_ms(), &ch)) !=
		    0) {
			uint64_t fut = m->peers.refused_future;

			/* From the future: a clock is off (say so, now and
			 * then). Too old: a replay or a late copy (debug). */
			short_id(aid, sid);
			if (r == SM_ERR_REPLAY && fut != fut0 &&
			    (fut & (fut - 1)) == 0)
				log_warn("mesh: announcement of %s refused: "
					 "signed in the future (clock skew "
					 "over --max-clock-skew?)",
				    sid);
			else if (r == SM_ERR_REPLAY)
				log_debug("mesh: announcement of %s refused: "
					  "signed outside the freshness window",
				    sid);
			announce_free(&a);
			continue;
		}
		struct peer *pe = peers_find(&m->peers, aid);

		/* Only what was merged (fresh) counts as a model seen, and
		 * only from a peer with the host right. */
		if (pe != NULL) {
			pe->denied = denied;
			if (!(denied & PEER_DENY_HOST))
				note_models(m, &pe->ann);
		}

		short_id(aid, sid);
		if (ch == PEER_CHANGE_NEW)
			log_info("mesh: learned peer %s", sid);
		else if (ch == PEER_CHANGE_LEFT)
			log_info("mesh: peer %s left", sid);
		if (ch == PEER_CHANGE_NEW)
			changed = true;
#ifdef SM_TEST_BUILD
		if (pe != NULL && pe->ann.wire != NULL)
			test_remember(pe);
#endif
		if (pe != NULL) {
			tunnel_peer_seen(m, pe);
			mesh_att_peer_seen(m, pe);
		}
		if (pe != NULL && pe->state != PEER_GONE) {
			if (mesh_link_to(m, pe->ann.id) != NULL)
				pe->link = PEER_LINK_DIRECT;
			maybe_dial(m, pe);
		}
	}
	if (changed)
		mesh_changed(m);
}

/* v1: verify and merge every announcement of a GossipMessage. */
static void
gossip_merge(struct mesh *m, const uint8_t *p, size_t len)
{
	struct announce_msg msg;

	if (announce_msg_parse(p, len, &msg) != 0) {
		log_warn("mesh: malformed gossip message dropped");
		return;
	}
	/* Revocations first: they may refuse announcements below. */
	roster_merge_revs(m, msg.revs, msg.rev_lens, msg.n_revs);
	gossip_merge_items(
	    m, (const uint8_t *const *)msg.items, msg.lens, msg.n);
	announce_msg_free(&msg);
}

/* The anti-entropy view of my state: the peer table plus my announcement. */
static void
gossip_store_of(
    struct mesh *m, struct gossip_peers *gp, struct gossip_store *st)
{
	gossip_peers_init(gp, &m->peers, m->id->pk, m->seq,
	    m->my_ann.len > 0 ? buf_data(&m->my_ann) : NULL, m->my_ann.len);
	gossip_peers_store(gp, st);
}

static struct mesh_link *
slot_of_link(struct mesh *m, struct link *l)
{
	for (size_t i = 0; i < MESH_MAX_LINKS; i++)
		if (m->links[i].l == l)
			return &m->links[i];
	return NULL;
}

/* The peer on 'l' spoke v1: from now on it gets v1 messages. */
static void
mark_v1(struct mesh *m, struct link *l)
{
	struct mesh_link *sl = slot_of_link(m, l);
	char sid[13];

	if (sl != NULL && !sl->gossip_v1) {
		sl->gossip_v1 = true;
		log_info("mesh: %s speaks gossip v1",
		    short_id(link_peer_id(l), sid));
	}
}

static bool
link_is_v1(struct mesh *m, struct link *l)
{
	struct mesh_link *sl = slot_of_link(m, l);

	return m->opts.gossip_v1 || (sl != NULL && sl->gossip_v1);
}

/* Whether some live peer is a v1 node: it judges liveness by a new seq every
 * interval, so while one is around I re-sign every interval too. */
static bool
v1_peers_around(struct mesh *m)
{
	for (size_t i = 0; i < m->peers.n; i++) {
		const struct peer *p = m->peers.v[i];

		if (p->state == PEER_ALIVE && p->ann.gossip_version < 2)
			return true;
	}
	return false;
}

#ifdef SM_TEST_BUILD
bool mesh_test_forge;

/* Test builds: the last signed announcement of each peer, kept after the
 * peer is pruned, for mesh_test_replay(). */
#define TEST_REMEMBER_MAX 64
static struct {
	uint8_t id[ID_PK_LEN];
	uint8_t *wire;
	size_t len;
} remembered[TEST_REMEMBER_MAX];

static void
test_remember(const struct peer *p)
{
	size_t i, free_slot = TEST_REMEMBER_MAX;
	uint8_t *w;

	for (i = 0; i < TEST_REMEMBER_MAX; i++) {
		if (remembered[i].wire != NULL &&
		    memcmp(remembered[i].id, p->ann.id, ID_PK_LEN) == 0)
			break;
		if (remembered[i].wire == NULL &&
		    free_slot == TEST_REMEMBER_MAX)
			free_slot = i;
	}
	if (i == TEST_REMEMBER_MAX && (i = free_slot) == TEST_REMEMBER_MAX)
		return;
	if ((w = malloc(p->ann.wire_len)) == NULL)
		return;
	memcpy(w, p->ann.wire, p->ann.wire_len);
	free(remembered[i].wire);
	memcpy(remembered[i].id, p->ann.id, ID_PK_LEN);
	remembered[i].wire = w;
	remembered[i].len = p->ann.wire_len;
}
#endif

/* v1: my announcement and every one I forward, in one message. */
static int
gossip_payload(struct mesh *m, struct buf *out)
{
	static const uint8_t *items[GOSSIP_MAX_ANNOUNCEMENTS];
	static size_t lens[GOSSIP_MAX_ANNOUNCEMENTS];
	static const uint8_t *revs[GOSSIP_MAX_REVOCATIONS];
	static size_t rev_lens[GOSSIP_MAX_REVOCATIONS];
	size_t n, nrev = roster_revs(m, revs, rev_lens, SM_ARRAY_LEN(revs));
	int r;

	items[0] = buf_data(&m->my_ann);
	lens[0] = m->my_ann.len;
	n = 1 +
	    peers_collect(
		&m->peers, items + 1, lens + 1, GOSSIP_MAX_ANNOUNCEMENTS - 2);
#ifdef SM_TEST_BUILD
	uint8_t *forged = NULL;

	if (mesh_test_forge && (forged = malloc(m->my_ann.len)) != NULL) {
		memcpy(forged, buf_data(&m->my_ann), m->my_ann.len);
		forged[m->my_ann.len / 2] ^= 0x01; /* inside the signed body */
		items[n] = forged;
		lens[n++] = m->my_ann.len;
	}
	r = announce_msg_write_revs(
	    items, lens, n, revs, rev_lens, nrev, false, out);
	free(forged);
#else
	r = announce_msg_write_revs(
	    items, lens, n, revs, rev_lens, nrev, false, out);
#endif
	return r;
}

static void
gx_free(struct gossip_x *x)
{
	buf_clear(&x->in);
	free(x);
}

static void
gx_data(struct lstream *s, const uint8_t *p, size_t n, void *arg)
{
	struct gossip_x *x = arg;

	if (buf_append(&x->in, p, n) != 0)
		lstream_reset(s, LINK_H2_INTERNAL_ERROR);
	else
		lstream_consume(s, n);
}

/*
 * A whole message arrived: a request (server) or the answer to ours. v2:
 * merge its announcements, then answer it (server) or send the follow-up it
 * calls for (opener, a bounded number of times). A message without the v2
 * version comes from a v1 node: merge it, answer with everything, and speak
 * v1 on this link from now on.
 */
static void
gx_end(struct lstream *s, void *arg)
{
	struct gossip_x *x = arg;
	struct mesh *m = x->m;
	struct gossip_peers gp;
	struct gossip_store st;
	struct gossip_msg msg;
	struct buf out;
	bool more = false;
	char sid[13];
	int r = 0;

	buf_init(&out, GOSSIP_MAX_LEN);
	log_debug("mesh: gossip %s of %zu bytes from %s",
	    x->server ? "request" : "answer", x->in.len,
	    short_id(link_peer_id(x->l), sid));
	if (m->opts.gossip_v1) {
		gossip_merge(m, buf_data(&x->in), x->in.len);
		if (x->server)
			r = gossip_payload(m, &out);
	} else if (gossip_msg_parse(buf_data(&x->in), x->in.len, &msg) != 0) {
		log_warn("mesh: malformed gossip message dropped");
		r = SM_ERR_PROTO;
	} else {
		log_debug("mesh: gossip %s: v%u, %zu announcement(s), root %d, "
			  "buckets %d, %zu entries, %zu wanted",
		    x->server ? "request" : "answer", msg.version, msg.n_items,
		    msg.has_root, msg.buckets != NULL, msg.n_entries,
		    msg.n_want);
		roster_merge_revs(m, msg.revs, msg.rev_lens, msg.n_revs);
		gossip_merge_items(m, msg.items, msg.lens, msg.n_items);
		if (msg.version < GOSSIP_VERSION) {
			mark_v1(m, x->l);
			if (x->server)
				r = gossip_payload(m, &out);
		} else {
			gossip_store_of(m, &gp, &st);
			r = gossip_answer(&st, &msg, &out, &more);
			gossip_peers_clear(&gp);
		}
		gossip_msg_free(&msg);
	}
	if (!x->server) {
		/* answer -> entries -> want: three follow-ups at most */
		if (r == 0 && more && x->depth < 3)
			gossip_send(m, x->l, &out, x->depth + 1);
		buf_clear(&out);
		return;
	}
	if (r == 0 && (r = lstream_respond(s, 200, NULL, 0)) == 0 &&
	    (r = lstream_write(s, buf_data(&out), out.len)) == 0)
		r = lstream_end(s);
	if (r != 0)
		lstream_reset(s, LINK_H2_INTERNAL_ERROR);
	else
		m->gossip_tx_bytes += out.len;
	buf_clear(&out);
}

static void
gx_close(struct lstream *s, int err, uint32_t h2, void *arg)
{
	gx_free(arg);
}

static void
gx_headers(struct lstream *s, int status, const struct link_hdr *h, size_t n,
    void *arg)
{
	struct gossip_x *x = arg;

	if (status == 403 && !roster_owned(x->m)) {
		/* A legacy (token) node talking to an owned mesh. */
		log_error("mesh: the peer refused our gossip: its mesh is "
			  "owned and this node has no membership credential");
		if (x->m->peers.n == 0 && x->m->on_join_failed != NULL)
			x->m->on_join_failed(x->m,
			    "the mesh is owned: a token is not enough, ask its "
			    "owner for an invite (sealmesh invite)");
	}
	if (status != 200)
		lstream_reset(s, LINK_H2_CANCEL);
}

static const struct lstream_cb gx_cb = {
    .on_headers = gx_headers,
    .on_data = gx_data,
    .on_end = gx_end,
    .on_close = gx_close,
};

/* Open a gossip stream on 'l' carrying 'payload'. */
static void
gossip_send(
    struct mesh *m, struct link *l, const struct buf *payload, int depth)
{
	struct gossip_x *x;
	int r;

	if ((x = calloc(1, sizeof(*x))) == NULL)
		return;
	x->m = m;
	x->l = l;
	x->depth = depth;
	buf_init(&x->in, GOSSIP_MAX_LEN);
	if ((r = lstream_open_ctl(
		 l, "POST", GOSSIP_PATH, NULL, 0, &gx_cb, x, &x->s)) != 0) {
		log_debug(
		    "mesh: cannot open a gossip stream: %s", sm_strerror(r));
		gx_free(x);
		return;
	}
	if (lstream_write(x->s, buf_data(payload), payload->len) != 0 ||
	    lstream_end(x->s) != 0)
		lstream_reset(x->s, LINK_H2_INTERNAL_ERROR);
	else
		m->gossip_tx_bytes += payload->len;
}

/* Open a contact on 'l': v2 sends its root digest (and with 'push' my
 * announcement, just changed), v1 everything. */
static void
gossip_with(struct mesh *m, struct link *l, bool push)
{
	struct gossip_peers gp;
	struct gossip_store st;
	struct buf out;
	int r;

	buf_init(&out, GOSSIP_MAX_LEN);
#ifdef SM_TEST_BUILD
	if (mesh_test_forge) /* the forged copy travels in a v1 message */
		r = gossip_payload(m, &out);
	else
#endif
	    if (link_is_v1(m, l)) {
		r = gossip_payload(m, &out);
	} else {
		gossip_store_of(m, &gp, &st);
		static const uint8_t *revs[GOSSIP_MAX_REVOCATIONS];
		static size_t rev_lens[GOSSIP_MAX_REVOCATIONS];
		size_t nrev =
		    roster_revs(m, revs, rev_lens, SM_ARRAY_LEN(revs));

		r = gossip_open_revs(&st, push ? buf_data(&m->my_ann) : NULL,
		    m->my_ann.len, (const uint8_t *const *)revs, rev_lens, nrev,
		    &out);
		gossip_peers_clear(&gp);
	}
	if (r == 0)
		gossip_send(m, l, &out, 0);
	buf_clear(&out);
}

#ifdef SM_TEST_BUILD
void
mesh_test_replay(struct mesh *m)
{
	const uint8_t *items[TEST_REMEMBER_MAX];
	size_t lens[TEST_REMEMBER_MAX], n = 0;
	struct buf out;

	/* Announcements of peers this node no longer holds: pruned ones. */
	for (size_t i = 0; i < TEST_REMEMBER_MAX; i++) {
		if (remembered[i].wire == NULL ||
		    peers_find(&m->peers, remembered[i].id) != NULL)
			continue;
		items[n] = remembered[i].wire;
		lens[n++] = remembered[i].len;
	}
	log_info("test: re-gossiping %zu remembered announcement(s)", n);
	if (n == 0)
		return;
	buf_init(&out, GOSSIP_MAX_LEN);
	if (announce_msg_write(items, lens, n, false, &out) == 0) {
		for (size_t i = 0; i < MESH_MAX_LINKS; i++) {
			struct gossip_x *x;

			if (m->links[i].l == NULL || !m->links[i].up ||
			    (x = calloc(1, sizeof(*x))) == NULL)
				continue;
			x->m = m;
			x->l = m->links[i].l;
			buf_init(&x->in, GOSSIP_MAX_LEN);
			if (lstream_open(m->links[i].l, "POST", GOSSIP_PATH,
				NULL, 0, &gx_cb, x, &x->s) != 0) {
				gx_free(x);
				continue;
			}
			if (lstream_write(x->s, buf_data(&out), out.len) != 0 ||
			    lstream_end(x->s) != 0)
				lstream_reset(x->s, LINK_H2_INTERNAL_ERROR);
		}
	}
	buf_clear(&out);
}
#endif

static void
gossip_round(struct mesh *m, size_t fanout, bool push)
{
	struct link *ls[MESH_MAX_LINKS];
	size_t n = 0;

	for (size_t i = 0; i < MESH_MAX_LINKS; i++)
		if (m->links[i].l != NULL && m->links[i].up &&
		    m->links[i].admitted)
			ls[n++] = m->links[i].l;
	/* A few random peers (all of them when fanout is 0). */
	for (size_t i = 0; i < n && (fanout == 0 || i < fanout); i++) {
		size_t j = i + randombytes_uniform((uint32_t)(n - i));
		struct link *t = ls[i];

		ls[i] = ls[j];
		ls[j] = t;
		gossip_with(m, ls[i], push);
	}
}

static void
soon_cb(uv_timer_t *t)
{
	struct mesh *m = t->data;
	bool changed;

	if (sign_mine(m, false, &changed) == 0)
		gossip_round(m, 0, changed);
}

void
mesh_changed(struct mesh *m)
{
	if (!m->leaving && !uv_is_active((uv_handle_t *)&m->soon_timer))
		uv_timer_start(&m->soon_timer, soon_cb, SOON_MS, 0);
}

static void
gossip_tick(uv_timer_t *t)
{
	struct mesh *m = t->data;
	size_t pruned = peers_tick(&m->peers, sm_now_ms());

	/* New revocations from `sealmesh revoke` (the state dir). */
	roster_tick(m);
	if (pruned > 0)
		log_info("mesh: pruned %zu silent peer(s)", pruned);
	/* Direct links are heard from continuously (pings). */
	for (size_t i = 0; i < MESH_MAX_LINKS; i++)
		if (m->links[i].l != NULL && m->links[i].up &&
		    m->links[i].admitted)
			(void)peers_touch(
			    &m->peers, m->links[i].id, sm_now_ms());
	/*
	 * v2 re-signs on change (checked here too: key epochs and attestation
	 * refresh change the content without telling us) and once per refresh
	 * period; v1, or while v1 peers are around, every interval.
	 */
	bool changed,
	    force = m->opts.gossip_v1 || v1_peers_around(m) ||
	    sm_now_ms() - m->signed_ms >=
		gossip_refresh_ms(m->opts.gossip_interval_ms);

	if (sign_mine(m, force, &changed) == 0)
		gossip_round(m, GOSSIP_FANOUT, changed);
	for (size_t i = 0; i < m->peers.n; i++)
		maybe_dial(m, m->peers.v[i]);
}

/* --- links -------------------------------------------------------------- */

static int on_stream(struct link *l, struct lstream *s,
    const struct lstream_req *req, void *arg);
static void on_goaway(struct link *l, uint32_t err, void *arg);
static void on_close(struct link *l, int reason, void *arg);
static void on_up(struct link *l, void *arg);

static const struct link_cb link_cbs = {
    .on_up = on_up,
    .on_stream = on_stream,
    .on_goaway = on_goaway,
    .on_close = on_close,
};

static size_t
unadmitted(const struct mesh *m)
{
	size_t n = 0;

	for (size_t i = 0; i < MESH_MAX_LINKS; i++)
		n += m->links[i].l != NULL && !m->links[i].admitted;
	return n;
}

static void
link_registered(struct mesh *m, struct link *l)
{
	const uint8_t *pid = link_peer_id(l);
	struct mesh_link *s = slot_find(m, pid);
	char sid[13];

	/* A revoked peer is refused by the admission exchange, which tells it
	 * why; here only the number of links still waiting is bounded. */
	if (roster_owned(m) && s == NULL &&
	    unadmitted(m) >= ROSTER_MAX_UNADMITTED) {
		log_warn("mesh: link with %s refused: too many links not "
			 "admitted",
		    short_id(pid, sid));
		link_close(l);
		return;
	}

	if (s != NULL && s->l != l) {
		/*
		 * Both sides dialed: keep the link dialed by the smaller node
		 * id, on both ends alike, and close the other.
		 */
		bool mine_smaller = memcmp(m->id->pk, pid, ID_PK_LEN) < 0;
		bool keep_new = link_is_dialer(l) == mine_smaller;

		if (!keep_new) {
			link_close(l);
			return;
		}
		struct link *old = s->l;

		s->l = l;
		s->up = true;
		s->admitted = false;
		s->up_ms = sm_now_ms();
		link_close(old);
	} else if (s == NULL) {
		for (size_t i = 0; i < MESH_MAX_LINKS; i++)
			if (m->links[i].l == NULL) {
				s = &m->links[i];
				break;
			}
		if (s == NULL) {
			log_warn("mesh: link table full");
			link_close(l);
			return;
		}
		memcpy(s->id, pid, ID_PK_LEN);
		s->l = l;
		s->up = true;
		s->gossip_v1 = false;
		s->admitted = false;
		s->up_ms = sm_now_ms();
	}
	link_set_cb(l, &link_cbs, m);
	log_info("mesh: link up with %s (%s)", short_id(pid, sid),
	    link_is_dialer(l) ? "dialed" : "accepted");
	if (roster_owned(m))
		roster_link_up(m, l); /* admitted once membership is shown */
	else
		mesh_link_admitted(m, l);
}

void
mesh_link_admitted(struct mesh *m, struct link *l)
{
	const uint8_t *pid = link_peer_id(l);
	struct mesh_link *s = slot_find(m, pid);
	struct mesh_backoff *b;
	struct peer *p;

	if (s == NULL || s->l != l || s->admitted)
		return;
	s->admitted = true;
	if ((b = backoff_slot(m, pid, false)) != NULL)
		memset(b, 0, sizeof(*b));
	if ((p = peers_find(&m->peers, pid)) != NULL) {
		p->link = PEER_LINK_DIRECT;
		(void)peers_touch(&m->peers, pid, sm_now_ms());
	}
	m->joined_once = true;
	if (link_is_dialer(l))
		gossip_with(m, l, true);
	mesh_changed(m);
}

bool
mesh_drop_peer(struct mesh *m, const uint8_t id[ID_PK_LEN])
{
	struct mesh_link *s = slot_find(m, id);

	(void)peers_remove(&m->peers, id);
	if (s == NULL)
		return false;
	link_close(s->l);
	return true;
}

static void
on_up(struct link *l, void *arg)
{
	struct mesh *m = arg;

	link_registered(m, l);
}

static void
on_goaway(struct link *l, uint32_t err, void *arg)
{
	struct mesh *m = arg;
	char sid[13];

	log_info("mesh: %s is leaving", short_id(link_peer_id(l), sid));
	(void)peers_remove(&m->peers, link_peer_id(l));
}

static void
on_close(struct link *l, int reason, void *arg)
{
	struct mesh *m = arg;
	const uint8_t *pid = link_peer_id(l);
	struct mesh_link *s = pid ? slot_find(m, pid) : NULL;
	struct peer *p;
	char sid[13];

	if (s == NULL || s->l != l)
		return;
	s->l = NULL;
	s->up = false;
	log_info("mesh: link with %s closed: %s", short_id(pid, sid),
	    reason == 0 ? "left" : sm_strerror(reason));
	if ((p = peers_find(&m->peers, pid)) != NULL &&
	    p->link == PEER_LINK_DIRECT)
		p->link = PEER_LINK_NONE;
	mesh_changed(m);
}

static int
on_stream(
    struct link *l, struct lstream *s, const struct lstream_req *req, void *arg)
{
	struct mesh *m = arg;
	struct mesh_link *sl = slot_find(m, link_peer_id(l));
	bool admitted = sl != NULL && sl->l == l && sl->admitted;

	/* Owned mesh: nothing but the membership exchange before it. */
	if (roster_owned(m) && (!admitted || roster_path(req->path)))
		return roster_on_stream(m, l, s, req, admitted);
	if (strcmp(req->path, GOSSIP_PATH) == 0) {
		struct gossip_x *x = calloc(1, sizeof(*x));

		if (x == NULL)
			return SM_ERR_NOMEM;
		x->m = m;
		x->l = l;
		x->s = s;
		x->server = true;
		buf_init(&x->in, GOSSIP_MAX_LEN);
		lstream_set_cb(s, &gx_cb, x);
		return 0;
	}
	if (strcmp(req->path, ATTEST_PATH) == 0)
		return mesh_att_on_stream(m, s);
	return tunnel_on_stream(m, l, s, req);
}

/* --- dialing ------------------------------------------------------------ */

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000

static struct mesh_backoff *
backoff_slot(struct mesh *m, const uint8_t id[ID_PK_LEN], bool create)
{
	struct mesh_backoff *oldest = &m->backoff[0];

	for (size_t i = 0; i < MESH_MAX_LINKS; i++) {
		struct mesh_backoff *b = &m->backoff[i];

		if (memcmp(b->id, id, ID_PK_LEN) == 0)
			return b;
		if (b->retry_at_ms < oldest->retry_at_ms)
			oldest = b;
	}
	if (!create)
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	memcpy(oldest->id, id, ID_PK_LEN);
	return oldest;
}

/* Every address failed: try again later, waiting longer each time. */
static void
backoff_fail(struct mesh *m, const uint8_t id[ID_PK_LEN])
{
	struct mesh_backoff *b = backoff_slot(m, id, true);
	uint64_t wait = BACKOFF_MIN_MS << (b->fails < 6 ? b->fails : 6);

	b->fails++;
	b->retry_at_ms =
	    sm_now_ms() + (wait > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : wait);
}

void
mesh_dial_backoff(struct mesh *m, const uint8_t id[ID_PK_LEN])
{
	backoff_fail(m, id);
}

static bool
backoff_wait(struct mesh *m, const uint8_t id[ID_PK_LEN])
{
	struct mesh_backoff *b = backoff_slot(m, id, false);

	return b != NULL && b->retry_at_ms > sm_now_ms();
}

static void
dial_free(struct mesh_dial *d)
{
	struct mesh_dial **pp;

	for (pp = &d->m->dials; *pp != NULL; pp = &(*pp)->nextd)
		if (*pp == d) {
			*pp = d->nextd;
			break;
		}
	for (size_t i = 0; i < d->n_addrs; i++)
		free(d->addrs[i]);
	free(d);
}

static void
dial_up(struct link *l, void *arg)
{
	struct mesh_dial *d = arg;
	struct mesh *m = d->m;
	struct mesh_backoff *b = backoff_slot(m, d->id, false);

	/* Owned mesh: reset once admitted (mesh_link_admitted), so a peer
	 * that keeps refusing our membership is dialed ever less often. */
	if (b != NULL && !roster_owned(m))
		memset(b, 0, sizeof(*b));
	dial_free(d);
	link_registered(m, l);
}

static void
dial_closed(struct link *l, int reason, void *arg)
{
	struct mesh_dial *d = arg;
	struct mesh *m = d->m;
	char sid[13];

	log_info("mesh: dial %s at %s failed: %s", short_id(d->id, sid),
	    d->addrs[d->next - 1], sm_strerror(reason));
	d->l = NULL;
	if (reason == SM_ERR_PERM || reason == SM_ERR_VERIFY) {
		/* The peer refused our proof, or is not who the token says. */
		if (d->from_token && !m->joined_once) {
			if (m->on_join_failed != NULL)
				m->on_join_failed(m,
				    reason == SM_ERR_PERM
					? "the node refused our join proof "
					  "(wrong join secret?)"
					: "the node is not the one the token "
					  "names");
		}
		dial_free(d);
		return;
	}
	dial_next(d);
}

static const struct link_cb dial_cbs = {
    .on_up = dial_up,
    .on_stream = on_stream,
    .on_goaway = on_goaway,
    .on_close = dial_closed,
};

static void
dial_next(struct mesh_dial *d)
{
	struct mesh *m = d->m;
	char host[TOKEN_ADDR_MAX + 1];
	uint16_t port;

	while (d->next < d->n_addrs) {
		const char *a = d->addrs[d->next++];

		if (token_addr_split(a, host, sizeof(host), &port) != 0)
			continue;
		if (link_dial(m->lctx, m->loop, host, port, d->id, &dial_cbs, d,
			&d->l) == 0)
			return;
	}
	if (d->from_token && !m->joined_once && m->on_join_failed != NULL) {
		m->on_join_failed(m,
		    "no address in the token could be "
		    "reached");
	}
	backoff_fail(m, d->id);
	dial_free(d);
}

static bool
dialing(struct mesh *m, const uint8_t id[ID_PK_LEN])
{
	for (struct mesh_dial *d = m->dials; d != NULL; d = d->nextd)
		if (memcmp(d->id, id, ID_PK_LEN) == 0)
			return true;
	return false;
}

static void
dial_start(struct mesh *m, const uint8_t id[ID_PK_LEN],
    const char *const *addrs, size_t n, bool from_token)
{
	struct mesh_dial *d;

	if (n == 0 || dialing(m, id) || slot_find(m, id) != NULL)
		return;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return;
	d->m = m;
	memcpy(d->id, id, ID_PK_LEN);
	d->from_token = from_token;
	for (size_t i = 0; i < n && i < TOKEN_MAX_ADDRS; i++)
		if ((d->addrs[d->n_addrs] = strdup(addrs[i])) != NULL)
			d->n_addrs++;
	d->nextd = m->dials;
	m->dials = d;
	dial_next(d);
}

/* Hosts that serve models are worth a direct link; try now and then. */
static void
maybe_dial(struct mesh *m, struct peer *p)
{
	if (m->leaving || p->state != PEER_ALIVE || p->ann.n_serving == 0 ||
	    (p->denied & PEER_DENY_HOST) || roster_revoked(m, p->ann.id) ||
	    mesh_link_to(m, p->ann.id) != NULL || backoff_wait(m, p->ann.id))
		return;
	dial_start(m, p->ann.id, p->ann.addrs, p->ann.n_addrs, false);
}

/* --- addresses and secret ----------------------------------------------- */

static int
add_addr(struct mesh *m, const char *host, uint16_t port)
{
	char a[TOKEN_ADDR_MAX + 1];
	bool v6 = strchr(host, ':') != NULL;

	if (m->n_addrs >= MESH_MAX_ADVERTISE)
		return 0;
	snprintf(a, sizeof(a), v6 ? "[%s]:%u" : "%s:%u", host, port);
	for (size_t i = 0; i < m->n_addrs; i++)
		if (strcmp(m->addrs[i], a) == 0)
			return 0;
	if ((m->addrs[m->n_addrs] = strdup(a)) == NULL)
		return SM_ERR_NOMEM;
	m->n_addrs++;
	return 0;
}

/* Bound to all interfaces: every non-loopback address, loopback last. */
static int
collect_addrs(struct mesh *m)
{
	struct ifaddrs *ifa, *i;
	char host[INET6_ADDRSTRLEN];
	int pass;

	if (m->opts.n_advertise > 0) {
		for (size_t k = 0; k < m->opts.n_advertise; k++) {
			if (token_addr_check(m->opts.advertise[k],
				strlen(m->opts.advertise[k])) != 0)
				return SM_ERR_INVAL;
			if ((m->addrs[m->n_addrs] =
				    strdup(m->opts.advertise[k])) == NULL)
				return SM_ERR_NOMEM;
			m->n_addrs++;
		}
		return 0;
	}
	if (strcmp(m->opts.bind, "0.0.0.0") != 0 &&
	    strcmp(m->opts.bind, "::") != 0)
		return add_addr(m, m->opts.bind, m->port);
	if (getifaddrs(&ifa) != 0)
		return SM_ERR_IO;
	for (pass = 0; pass < 2; pass++) {
		for (i = ifa; i != NULL; i = i->ifa_next) {
			bool lo;

			if (i->ifa_addr == NULL || !(i->ifa_flags & IFF_UP))
				continue;
			lo = (i->ifa_flags & IFF_LOOPBACK) != 0;
			if (lo != (pass == 1))
				continue;
			if (i->ifa_addr->sa_family == AF_INET)
				inet_ntop(AF_INET,
				    &((struct sockaddr_in *)i->ifa_addr)
					 ->sin_addr,
				    host, sizeof(host));
			else
				continue; /* IPv6: bind is 0.0.0.0 (v4 only) */
			(void)add_addr(m, host, m->port);
		}
	}
	freeifaddrs(ifa);
	return 0;
}

/* The secret of a mesh this node created lives in STATE_DIR/mesh.secret. */
static int
load_or_create_secret(struct mesh *m)
{
	char path[4096];
	struct stat st;
	int fd, r = 0;

	if (m->opts.state_dir == NULL) {
		randombytes_buf(m->secret, sizeof(m->secret));
		return 0;
	}
	snprintf(
	    path, sizeof(path), "%s/%s", m->opts.state_dir, MESH_SECRET_FILE);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
		if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0 ||
		    (st.st_uid != geteuid() && geteuid() != 0)) {
			log_error(
			    "%s is accessible by others; refusing it", path);
			r = SM_ERR_PERM;
		} else if ((errno = 0) != 0 ||
		    read(fd, m->secret, sizeof(m->secret)) !=
			(ssize_t)sizeof(m->secret)) {
			log_error("cannot read %s: %s", path,
			    errno != 0 ? strerror(errno) : "too short");
			r = SM_ERR_INVAL;
		}
		close(fd);
		return r;
	}
	if (errno != ENOENT) {
		log_error("cannot open %s: %s", path, strerror(errno));
		return SM_ERR_IO;
	}
	randombytes_buf(m->secret, sizeof(m->secret));
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) <
		0 ||
	    write(fd, m->secret, sizeof(m->secret)) !=
		(ssize_t)sizeof(m->secret)) {
		log_error("cannot write %s: %s", path, strerror(errno));
		r = SM_ERR_IO;
	}
	if (fd >= 0)
		close(fd);
	return r;
}

static int
proof_adapter(uint8_t out[JOIN_PROOF_LEN], const uint8_t *secret,
    size_t secret_len, const uint8_t exporter[JOIN_EXPORTER_LEN],
    const uint8_t prover[JOIN_ID_LEN], const uint8_t verifier[JOIN_ID_LEN],
    void *arg)
{
	if (secret_len != TOKEN_SECRET_LEN)
		return SM_ERR_INVAL;
	return token_join_proof(
	    secret, exporter, JOIN_EXPORTER_LEN, prover, verifier, out);
}

/* --- routing hooks ------------------------------------------------------ */

/* Why remote_lookup() would skip host 'p' now, or NULL if it would not
 * (the same rules, for /api/status). */
static const char *
peer_refusal(struct mesh *m, struct peer *p)
{
	const char *why, *pwhy;
	bool self;

	if (p->state != PEER_ALIVE)
		return "the peer is not alive (stale)";
	/* Attested posture wins; a disagreement refuses. */
	if (!mesh_att_peer_hardened(m, p, &self, &pwhy) &&
	    m->opts.require_hardened)
		return "the host's posture is not hardened "
		       "(--require-hardened)";
	if (pwhy != NULL)
		return pwhy;
	if ((why = tunnel_refusal(m, p)) != NULL)
		return why;
	if (!tunnel_eligible(m, p))
		return "no direct link or relay reaches the host";
	return NULL;
}

static size_t
remote_lookup(void *arg, const char *model, struct route_target *out,
    size_t max, bool *known)
{
	struct mesh *m = arg;
	struct peer *hosts[ROUTE_MAX_TARGETS];
	size_t n, k = 0;

	*known = false;
	m->why[0] = '\0';
	for (size_t i = 0; i < m->n_seen; i++)
		if (strcmp(m->seen_models[i], model) == 0)
			*known = true;
	n = peers_hosts_for_model(&m->peers, model, hosts,
	    max < ROUTE_MAX_TARGETS ? max : ROUTE_MAX_TARGETS);
	/* Two passes: hardened hosts first; the rest only if allowed. */
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1 && m->opts.require_hardened)
			break;
		for (size_t i = 0; i < n && k < max; i++) {
			const char *why, *pwhy;
			bool self, hard;

			/* Attested posture wins; a disagreement refuses. */
			if (hosts[i]->state != PEER_ALIVE)
				continue;
			hard =
			    mesh_att_peer_hardened(m, hosts[i], &self, &pwhy);
			if (pwhy != NULL) {
				if (m->why[0] == '\0')
					snprintf(
					    m->why, sizeof(m->why), "%s", pwhy);
				continue;
			}
			if (hard != (pass == 0))
				continue;
			if (!tunnel_eligible(m, hosts[i])) {
				if (m->why[0] == '\0' &&
				    (why = tunnel_refusal(m, hosts[i])) != NULL)
					snprintf(
					    m->why, sizeof(m->why), "%s", why);
				continue;
			}
			memset(&out[k], 0, sizeof(out[k]));
			out[k].kind = ROUTE_REMOTE;
			memcpy(out[k].peer, hosts[i]->ann.id, ID_PK_LEN);
			k++;
		}
	}
	return k;
}

static const char *
remote_why(void *arg)
{
	struct mesh *m = arg;

	return m->why[0] != '\0' ? m->why : NULL;
}

static void
remote_models(void *arg, void (*fn)(const char *model, void *a), void *a)
{
	struct mesh *m = arg;

	/* Routable models only: a host this node may and can reach now. */
	for (size_t i = 0; i < m->peers.n; i++) {
		struct peer *p = m->peers.v[i];

		if (p->state != PEER_ALIVE || p->ann.role != ANN_ROLE_HOST ||
		    (p->denied & PEER_DENY_HOST) || !tunnel_eligible(m, p))
			continue;
		for (size_t j = 0; j < p->ann.n_serving; j++)
			fn(p->ann.serving[j], a);
	}
}

/* --- open / leave ------------------------------------------------------- */

/*
 * One --join value: a token (legacy mesh) or an invite (owned mesh). Fills
 * the join secret, the node to dial and its addresses.
 */
static int
join_parse(const char *text, struct token *tok, struct member_invite *inv,
    bool *is_invite)
{
	const char *why = NULL;
	int r;

	*is_invite = false;
	memset(inv, 0, sizeof(*inv));
	if ((r = token_parse(text, tok, &why)) == 0)
		return 0;
	if (r == SM_ERR_UNSUPP &&
	    (r = member_invite_parse(text, inv, &why)) == 0) {
		*is_invite = true;
		token_init(tok, inv->join_secret, inv->node_id);
		for (size_t k = 0; k < inv->n_addrs; k++)
			if (token_add_addr(tok, inv->addrs[k]) != 0)
				break;
		return 0;
	}
	log_error("bad invite token: %s", why != NULL ? why : "invalid");
	return SM_ERR_INVAL;
}

int
mesh_open(struct mesh *m, uv_loop_t *loop, const struct identity *id,
    struct router *rt, struct gateway *gw, const struct mesh_opts *opts)
{
	static struct member_invite inv; /* large; wiped after use */
	struct token tok;
	bool first_invite = false, is_inv;
	char *ts = NULL;
	int r;

	memset(m, 0, sizeof(*m));
	m->loop = loop;
	m->opts = *opts;
	m->id = id;
	m->router = rt;
	m->gw = gw;
	if (m->opts.bind == NULL)
		m->opts.bind = "0.0.0.0";
	if (m->opts.gossip_interval_ms == 0)
		m->opts.gossip_interval_ms = PEERS_DEFAULT_INTERVAL_MS;
	buf_init(&m->my_ann, ANN_MAX_LEN);
	uv_timer_init(loop, &m->gossip_timer);
	uv_timer_init(loop, &m->soon_timer);
	m->gossip_timer.data = m->soon_timer.data = m;

	/* The mesh: the first token's or invite's, else our own. */
	if (opts->n_join > 0) {
		if ((r = join_parse(opts->join[0], &tok, &inv, &is_inv)) != 0)
			return r;
		first_invite = is_inv;
		memcpy(m->secret, tok.join_secret, sizeof(m->secret));
		token_clear(&tok);
	} else if ((r = load_or_create_secret(m)) != 0) {
		return r;
	}
	token_mesh_id(m->secret, m->mesh_id);
	if ((r = tunnel_init(m)) != 0 || (r = mesh_att_init(m)) != 0)
		goto out;
	{
		struct link_opts lo = {
		    .max_streams = m->opts.link_streams,
		    .queue_max = m->opts.queue_max,
		    .queue_timeout_ms = m->opts.queue_timeout_ms,
		};

		if ((r = link_ctx_new(
			 &m->lctx, id, m->secret, sizeof(m->secret), &lo)) != 0)
			goto out;
	}
	link_ctx_set_proof(m->lctx, proof_adapter, NULL);
	if ((r = link_listen(m->lctx, loop, m->opts.bind, opts->port, &link_cbs,
		 m, &m->listener, &m->port)) != 0) {
		log_error(
		    "mesh: cannot listen on %s:%u", m->opts.bind, opts->port);
		goto out;
	}
	if ((r = collect_addrs(m)) != 0) {
		log_error("mesh: bad --advertise address");
		goto out;
	}
	/* Owned mesh (owner key here, or an invite): mesh id from the owner.
	 */
	if ((r = roster_open(m, first_invite ? &inv : NULL)) != 0)
		goto out;
	peers_init(&m->peers, id->pk, m->mesh_id, m->opts.gossip_interval_ms);
	if (m->opts.clock_skew_ms != 0)
		m->peers.skew_ms = m->opts.clock_skew_ms;
	if (!m->opts.gossip_v1)
		peers_set_refresh(
		    &m->peers, gossip_refresh_ms(m->opts.gossip_interval_ms));
	peers_set_max(&m->peers, m->opts.max_peers);
	token_init(&tok, m->secret, id->pk);
	for (size_t i = 0; i < m->n_addrs; i++)
		if (token_add_addr(&tok, m->addrs[i]) != 0)
			break;
	if ((ts = malloc(TOKEN_STR_MAX)) == NULL ||
	    token_write(&tok, ts, TOKEN_STR_MAX) != 0) {
		token_clear(&tok);
		free(ts);
		r = SM_ERR_NOMEM;
		goto out;
	}
	token_clear(&tok);
	m->token = ts;

	rt->remote.lookup = remote_lookup;
	rt->remote.each_model = remote_models;
	rt->remote.why = remote_why;
	rt->remote.arg = m;
	gw->remote.start = tunnel_start;
	gw->remote.arg = m;

	bool changed;

	if ((r = sign_mine(m, true, &changed)) != 0)
		goto out;
	uv_timer_start(&m->gossip_timer, gossip_tick,
	    m->opts.gossip_interval_ms, m->opts.gossip_interval_ms);

	for (size_t i = 0; i < opts->n_join; i++) {
		if ((r = join_parse(opts->join[i], &tok, &inv, &is_inv)) != 0)
			goto out;
		/* One mesh: the same join secret (and kind) in every --join. */
		if (is_inv != first_invite ||
		    sodium_memcmp(
			tok.join_secret, m->secret, sizeof(m->secret)) != 0) {
			token_clear(&tok);
			log_error("--join tokens name different meshes");
			r = SM_ERR_INVAL;
			goto out;
		}
		const char *addrs[TOKEN_MAX_ADDRS];

		for (size_t k = 0; k < tok.n_addrs; k++)
			addrs[k] = tok.addrs[k];
		dial_start(m, tok.node_id, addrs, tok.n_addrs, true);
		token_clear(&tok);
	}
	r = 0;
out:
	member_invite_clear(&inv);
	return r;
}

static void
leave_goaway_cb(uv_timer_t *t)
{
	struct mesh *m = t->data;

	for (size_t i = 0; i < MESH_MAX_LINKS; i++)
		if (m->links[i].l != NULL && m->links[i].up)
			link_goaway(m->links[i].l);
	uv_close((uv_handle_t *)&m->soon_timer, NULL);
}

void
mesh_leave(struct mesh *m)
{
	if (m->leaving)
		return;
	m->leaving = true;
	uv_timer_stop(&m->gossip_timer);
	uv_timer_stop(&m->soon_timer);
	/* A signed "leaving" announcement travels further than GOAWAY. */
	bool changed;

	if (sign_mine(m, true, &changed) == 0)
		gossip_round(m, 0, true);
	/*
	 * GOAWAY a moment later: a GOAWAY submitted at once cancels the
	 * gossip streams whose HEADERS are still queued, and the leaving
	 * announcement would never arrive (peers then learned of the leave
	 * only by pruning the silent node).
	 */
	uv_close((uv_handle_t *)&m->gossip_timer, NULL);
	uv_timer_start(&m->soon_timer, leave_goaway_cb, MESH_LEAVE_FLUSH_MS, 0);
	mesh_att_close(m);
	roster_close(m);
	link_listener_close(m->listener);
}

int
mesh_metrics(struct mesh *m, struct buf *out)
{
	size_t alive = 0, direct = 0;

	for (size_t i = 0; i < m->peers.n; i++)
		alive += m->peers.v[i]->state == PEER_ALIVE;
	for (size_t i = 0; i < MESH_MAX_LINKS; i++)
		direct += m->links[i].l != NULL && m->links[i].up;
	return buf_appendf(out,
		   "# HELP sealmesh_peers Peers known alive.\n"
		   "# TYPE sealmesh_peers gauge\nsealmesh_peers %zu\n"
		   "# HELP sealmesh_links Direct links up.\n"
		   "# TYPE sealmesh_links gauge\nsealmesh_links %zu\n"
		   "# HELP sealmesh_tunnels_out_total Requests sent to remote "
		   "hosts.\n"
		   "# TYPE sealmesh_tunnels_out_total counter\n"
		   "sealmesh_tunnels_out_total %llu\n"
		   "# HELP sealmesh_tunnels_in_total Requests served for other "
		   "nodes.\n"
		   "# TYPE sealmesh_tunnels_in_total counter\n"
		   "sealmesh_tunnels_in_total %llu\n"
		   "# HELP sealmesh_relayed_total Streams relayed between two "
		   "peers.\n"
		   "# TYPE sealmesh_relayed_total counter\n"
		   "sealmesh_relayed_total %llu\n"
		   "# HELP sealmesh_gossip_received_total Gossip messages "
		   "merged.\n"
		   "# TYPE sealmesh_gossip_received_total counter\n"
		   "sealmesh_gossip_received_total %llu\n"
		   "# HELP sealmesh_announcements_dropped_total Announcements "
		   "that "
		   "failed verification.\n"
		   "# TYPE sealmesh_announcements_dropped_total counter\n"
		   "sealmesh_announcements_dropped_total %llu\n",
		   alive, direct, (unsigned long long)m->tunnels_out,
		   (unsigned long long)m->tunnels_in,
		   (unsigned long long)m->relayed,
		   (unsigned long long)m->gossip_rx,
		   (unsigned long long)m->forged_dropped) != 0 ||
		buf_appendf(out,
		    "# HELP sealmesh_gossip_sent_bytes_total Gossip message "
		    "bytes sent.\n"
		    "# TYPE sealmesh_gossip_sent_bytes_total counter\n"
		    "sealmesh_gossip_sent_bytes_total %llu\n",
		    (unsigned long long)m->gossip_tx_bytes) != 0 ||
		tunnel_metrics(m, out) != 0 || roster_metrics(m, out) != 0
	    ? SM_ERR_TOOBIG
	    : mesh_att_metrics(m, out);
}

static const char *
link_kind(const struct peer *p)
{
	switch (p->link) {
	case PEER_LINK_DIRECT:
		return "direct";
	case PEER_LINK_RELAY:
		return "relay";
	default:
		return "none";
	}
}

void
mesh_status_json(struct mesh *m, cJSON *st)
{
	cJSON *peers = cJSON_GetObjectItemCaseSensitive(st, "peers");
	char hex[ID_HEX_LEN + 1], mid[TOKEN_MESH_ID_LEN * 2 + 1];
	uint64_t now = sm_now_ms();

	sm_hex(mid, m->mesh_id, sizeof(m->mesh_id));
	cJSON_AddStringToObject(st, "mesh_id", mid);
	cJSON_AddNumberToObject(st, "mesh_port", m->port);
	/* Not the token: it carries the join secret, and the console serves
	 * whoever reaches it (`sealmesh token` reads the state dir). */
	cJSON_AddBoolToObject(st, "relay", !m->opts.no_relay);
	cJSON_AddBoolToObject(st, "require_hardened", m->opts.require_hardened);
	roster_status(m, st);
	tunnel_status_self(m, st);
	mesh_att_status_self(m, st);
	for (size_t i = 0; peers != NULL && i < m->peers.n; i++) {
		struct peer *p = m->peers.v[i];
		struct link *l;
		cJSON *o, *arr;

		if (p->state == PEER_GONE)
			continue;
		if ((o = cJSON_CreateObject()) == NULL)
			return;
		sm_hex(hex, p->ann.id, ID_PK_LEN);
		cJSON_AddStringToObject(o, "id", hex);
		cJSON_AddStringToObject(o, "role",
		    p->ann.role == ANN_ROLE_CLIENT     ? "client"
			: p->ann.role == ANN_ROLE_HOST ? "host"
						       : "worker");
		cJSON_AddStringToObject(
		    o, "version", p->ann.version ? p->ann.version : "");
		arr = cJSON_AddArrayToObject(o, "models");
		for (size_t j = 0; arr && j < p->ann.n_serving; j++)
			cJSON_AddItemToArray(
			    arr, cJSON_CreateString(p->ann.serving[j]));
		arr = cJSON_AddArrayToObject(o, "addresses");
		for (size_t j = 0; arr && j < p->ann.n_addrs; j++)
			cJSON_AddItemToArray(
			    arr, cJSON_CreateString(p->ann.addrs[j]));
		l = mesh_link_to(m, p->ann.id);
		cJSON_AddStringToObject(
		    o, "link", l != NULL ? "direct" : link_kind(p));
		if (l == NULL && p->link == PEER_LINK_RELAY) {
			sm_hex(hex, p->via, ID_PK_LEN);
			cJSON_AddStringToObject(o, "via", hex);
		} else {
			cJSON_AddNullToObject(o, "via");
		}
		if (l != NULL && link_rtt_ms(l) >= 0) /* -1 before a PING */
			cJSON_AddNumberToObject(o, "rtt_ms", link_rtt_ms(l));
		else
			cJSON_AddNullToObject(o, "rtt_ms");
		cJSON_AddNumberToObject(
		    o, "last_seen_ms", (double)(now - p->last_heard_ms));
		cJSON_AddStringToObject(o, "state", peers_state_name(p->state));
		cJSON_AddBoolToObject(o, "relay_allowed", p->ann.relay_allowed);
		roster_status_peer(m, p, o);
		struct posture ps;

		if (p->ann.posture != NULL &&
		    posture_parse(p->ann.posture, p->ann.posture_len, &ps) == 0)
			cJSON_AddItemToObject(
			    o, "posture", posture_to_json(&ps));
		else
			cJSON_AddNullToObject(o, "posture");
		tunnel_status_peer(m, p, o);
		mesh_att_status_peer(m, p, o);
		{ /* would a prompt be routed to it now, and if not, why */
			const char *why = peer_refusal(m, p);

			cJSON_AddBoolToObject(o, "route_eligible", why == NULL);
			if (why != NULL)
				cJSON_AddStringToObject(
				    o, "route_refusal", why);
			else
				cJSON_AddNullToObject(o, "route_refusal");
		}
		cJSON_AddItemToArray(peers, o);
	}
}
