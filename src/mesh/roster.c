#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "core/log.h"
#include "core/util.h"
#include "mesh/node.h"
#include "mesh/roster.h"
#include "signer/client.h"
#include "net/link.h"

#define USED_REC_LEN (MEMBER_INVITE_ID_LEN + 8)
#define REASON_MAX 200

struct used_invite {
	uint8_t id[MEMBER_INVITE_ID_LEN];
	uint64_t expires;
};

struct roster {
	bool owned;
	uint8_t owner_pk[ID_PK_LEN];
	struct identity owner; /* identity_can_sign(): we hold the owner key */
	bool have_cred;
	uint8_t cred[MEMBER_CRED_LEN];
	struct member_cred mine;
	struct member_invite *invite; /* --join invite, until redeemed */
	uint8_t (*revs)[MEMBER_REV_LEN];
	uint8_t (*rev_ids)[ID_PK_LEN];
	size_t n_revs;
	off_t rev_size; /* of the file when last read or written */
	struct timespec rev_mtime;
	struct used_invite *used;
	size_t n_used;
	uv_timer_t timer; /* admission deadlines */
	/* Counters. */
	uint64_t refused, dropped_ann, revoked_links, redeemed;
};

/* One membership exchange on a stream, either side. */
struct mx {
	struct mesh *m;
	struct link *l;
	struct lstream *s;
	bool redeem; /* /sealmesh/redeem, else /sealmesh/member */
	bool server;
	bool deny; /* answer 403 to a stream on an unadmitted link */
	int status;
	struct buf in;
};

static const char *
short_id(const uint8_t id[ID_PK_LEN], char out[13])
{
	sm_hex(out, id, 6);
	return out;
}

static int
state_path(const struct mesh *m, const char *name, char *out, size_t len)
{
	if (m->opts.state_dir == NULL)
		return SM_ERR_NOTFOUND;
	if ((size_t)snprintf(out, len, "%s/%s", m->opts.state_dir, name) >= len)
		return SM_ERR_TOOBIG;
	return 0;
}

/* Read a whole small file; refuses one others can read or write. */
static int
read_file(
    const char *path, uint8_t *out, size_t max, size_t *n, struct stat *stp)
{
	struct stat st;
	ssize_t k;
	int fd, r = 0;

	*n = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return errno == ENOENT ? SM_ERR_NOTFOUND : SM_ERR_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		r = SM_ERR_IO;
	} else if ((st.st_uid != geteuid() && geteuid() != 0) ||
	    (st.st_mode & 022) != 0) {
		log_error("%s is writable by others; refusing it", path);
		r = SM_ERR_PERM;
	} else {
		while (*n < max && (k = read(fd, out + *n, max - *n)) > 0)
			*n += (size_t)k;
		if (stp != NULL)
			*stp = st;
	}
	close(fd);
	return r;
}

/* Replace a file atomically (tmp + rename), mode 0600. */
static int
write_file(const char *path, const uint8_t *p, size_t n)
{
	char tmp[4200];
	int fd, r = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) <
	    0) {
		log_error("cannot write %s: %s", tmp, strerror(errno));
		return SM_ERR_IO;
	}
	if (write(fd, p, n) != (ssize_t)n || fsync(fd) != 0)
		r = SM_ERR_IO;
	close(fd);
	if (r == 0 && rename(tmp, path) != 0)
		r = SM_ERR_IO;
	if (r != 0)
		log_error("cannot write %s: %s", path, strerror(errno));
	return r;
}

#ifdef SM_TEST_BUILD
bool roster_test_claim_relay;
#endif

static bool
claim_relay(void)
{
#ifdef SM_TEST_BUILD
	return roster_test_claim_relay;
#else
	return false;
#endif
}

bool
roster_owned(const struct mesh *m)
{
	return m->roster != NULL && m->roster->owned;
}

bool
roster_revoked(const struct mesh *m, const uint8_t id[ID_PK_LEN])
{
	const struct roster *ro = m->roster;

	for (size_t i = 0; ro != NULL && i < ro->n_revs; i++)
		if (memcmp(ro->rev_ids[i], id, ID_PK_LEN) == 0)
			return true;
	return false;
}

/* --- revocations -------------------------------------------------------- */

/*
 * Take one revocation: verify, remember, persist (unless it came from the
 * file) and enforce at once. Returns true when it was new.
 */
static bool
add_rev(struct mesh *m, const uint8_t *p, size_t len, bool persist)
{
	struct roster *ro = m->roster;
	struct member_rev rv;
	char path[4096], sid[13];
	int fd;

	if (member_rev_open(p, len, ro->owner_pk, &rv) != 0)
		return false;
	if (roster_revoked(m, rv.node_id))
		return false;
	if (ro->n_revs >= ROSTER_MAX_REVS) {
		log_error("membership: %d revocations known; ignoring more",
		    ROSTER_MAX_REVS);
		return false;
	}
	memcpy(ro->revs[ro->n_revs], p, MEMBER_REV_LEN);
	memcpy(ro->rev_ids[ro->n_revs], rv.node_id, ID_PK_LEN);
	ro->n_revs++;
	/*
	 * O_APPEND: one write of one record, like the CLI. The file's cached
	 * size and mtime are left alone, so the next tick reads it once more
	 * (duplicates are ignored) and cannot miss a record the CLI appended
	 * meanwhile.
	 */
	if (persist &&
	    state_path(m, ROSTER_REV_FILE, path, sizeof(path)) == 0) {
		if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			 0600)) < 0 ||
		    write(fd, p, MEMBER_REV_LEN) != MEMBER_REV_LEN)
			log_error(
			    "cannot append to %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	if (memcmp(rv.node_id, m->id->pk, ID_PK_LEN) == 0) {
		log_error("membership: the owner revoked this node; the mesh "
			  "no longer accepts it");
		ro->have_cred = false;
	} else {
		log_info(
		    "membership: node %s revoked", short_id(rv.node_id, sid));
		if (mesh_drop_peer(m, rv.node_id))
			ro->revoked_links++;
	}
	return true;
}

/* Read the revocations file when it changed since we last saw it. */
static void
load_revs(struct mesh *m, bool force)
{
	struct roster *ro = m->roster;
	uint8_t *buf;
	char path[4096];
	struct stat st;
	size_t n;
	bool any = false;

	if (state_path(m, ROSTER_REV_FILE, path, sizeof(path)) != 0 ||
	    stat(path, &st) != 0)
		return;
	if (!force && st.st_size == ro->rev_size &&
	    st.st_mtim.tv_sec == ro->rev_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == ro->rev_mtime.tv_nsec)
		return;
	if ((buf = malloc(ROSTER_MAX_REVS * MEMBER_REV_LEN)) == NULL)
		return;
	if (read_file(path, buf, ROSTER_MAX_REVS * MEMBER_REV_LEN, &n, &st) ==
	    0) {
		ro->rev_size = st.st_size;
		ro->rev_mtime = st.st_mtim;
		/* A torn last record (a writer mid-way) is read next time. */
		for (size_t off = 0; off + MEMBER_REV_LEN <= n;
		     off += MEMBER_REV_LEN)
			any |= add_rev(m, buf + off, MEMBER_REV_LEN, false);
	}
	free(buf);
	if (any)
		mesh_changed(m); /* gossip the news to every link now */
}

void
roster_tick(struct mesh *m)
{
	if (roster_owned(m))
		load_revs(m, false);
}

size_t
roster_revs(struct mesh *m, const uint8_t **items, size_t *lens, size_t max)
{
	struct roster *ro = m->roster;
	size_t n = 0;

	for (; ro != NULL && ro->owned && n < ro->n_revs && n < max; n++) {
		items[n] = ro->revs[n];
		lens[n] = MEMBER_REV_LEN;
	}
	return n;
}

void
roster_merge_revs(
    struct mesh *m, const uint8_t *const *items, const size_t *lens, size_t n)
{
	bool any = false;

	if (!roster_owned(m))
		return;
	for (size_t i = 0; i < n; i++)
		any |= add_rev(m, items[i], lens[i], true);
	if (any)
		mesh_changed(m);
}

/* --- credentials -------------------------------------------------------- */

/* Check a credential presented for 'id'; on failure '*why' says why. */
static int
check_cred(struct mesh *m, const uint8_t *p, size_t len,
    const uint8_t id[ID_PK_LEN], struct member_cred *c, const char **why)
{
	struct roster *ro = m->roster;
	int r;

	*why = NULL;
	if (p == NULL || len == 0) {
		*why = "no membership credential (this mesh is owned: join "
		       "with an invite from its owner, see sealmesh invite)";
		return SM_ERR_PERM;
	}
	if ((r = member_cred_open(p, len, ro->owner_pk, sm_wall_s(), c)) != 0) {
		*why = r == SM_ERR_STALE ? "the membership credential expired"
		    : r == SM_ERR_PERM ? "the credential is from another owner"
				       : "the membership credential is invalid";
		return SM_ERR_PERM;
	}
	if (memcmp(c->node_id, id, ID_PK_LEN) != 0) {
		*why = "the credential names another node";
		return SM_ERR_PERM;
	}
	if (roster_revoked(m, id)) {
		*why = "this node's membership was revoked by the owner";
		return SM_ERR_PERM;
	}
	return 0;
}

static uint8_t
denied_of(uint8_t rights)
{
	return (uint8_t)(((rights & MEMBER_RIGHT_HOST) ? 0 : PEER_DENY_HOST) |
	    ((rights & MEMBER_RIGHT_RELAY) ? 0 : PEER_DENY_RELAY));
}

int
roster_check_announce(struct mesh *m, const struct announce *a, uint8_t *denied)
{
	struct member_cred c;
	const char *why;
	char sid[13];

	*denied = 0;
	if (!roster_owned(m))
		return 0;
	if (check_cred(m, a->credential, a->credential_len, a->id, &c, &why) !=
	    0) {
		m->roster->dropped_ann++;
		log_debug("membership: announcement of %s dropped: %s",
		    short_id(a->id, sid), why);
		return SM_ERR_PERM;
	}
	*denied = denied_of(c.rights);
	return 0;
}

void
roster_fill_announce(struct mesh *m, struct announce *a)
{
	struct roster *ro = m->roster;

	if (ro == NULL || !ro->owned || !ro->have_cred)
		return;
	a->credential = ro->cred;
	a->credential_len = MEMBER_CRED_LEN;
	if (!(ro->mine.rights & MEMBER_RIGHT_RELAY) && !claim_relay())
		a->relay_allowed = false;
}

/* Store my credential (memory, and member.cred when there is a state dir).
 */
static int
set_cred(struct mesh *m, const uint8_t *p, size_t len)
{
	struct roster *ro = m->roster;
	struct member_cred c;
	const char *why;
	char path[4096], rights[MEMBER_RIGHTS_TEXT_MAX];
	int r;

	if ((r = check_cred(m, p, len, m->id->pk, &c, &why)) != 0) {
		log_error("membership: my credential is not usable: %s", why);
		return r;
	}
	memcpy(ro->cred, p, MEMBER_CRED_LEN);
	ro->mine = c;
	ro->have_cred = true;
	/* An honest node without the relay right forwards nothing. */
	if (!(c.rights & MEMBER_RIGHT_RELAY) && !claim_relay())
		m->opts.no_relay = true;
	member_rights_text(c.rights, rights);
	log_info("membership: this node is a member with rights %s", rights);
	if (!(c.rights & MEMBER_RIGHT_HOST) && m->router->nlocal > 0)
		log_warn("membership: no host right: the mesh ignores the "
			 "models this node announces");
	if (state_path(m, ROSTER_CRED_FILE, path, sizeof(path)) == 0)
		(void)write_file(path, p, MEMBER_CRED_LEN);
	return 0;
}

/* The owner issues itself a credential with every right. */
static int
self_issue(struct mesh *m)
{
	struct roster *ro = m->roster;
	struct member_cred c = {.rights = MEMBER_RIGHTS_ALL};
	uint8_t out[MEMBER_CRED_LEN];
	int r;

	memcpy(c.node_id, m->id->pk, ID_PK_LEN);
	c.issued = sm_wall_s();
	if ((r = member_cred_write(&c, &ro->owner, out)) != 0)
		return r;
	return set_cred(m, out, sizeof(out));
}

/* --- single-use invites ------------------------------------------------- */

static void
load_used(struct mesh *m)
{
	struct roster *ro = m->roster;
	uint8_t *buf;
	char path[4096];
	size_t n;
	uint64_t now = sm_wall_s();

	if (state_path(m, ROSTER_USED_FILE, path, sizeof(path)) != 0 ||
	    (buf = malloc(ROSTER_MAX_USED * USED_REC_LEN)) == NULL)
		return;
	if (read_file(path, buf, ROSTER_MAX_USED * USED_REC_LEN, &n, NULL) ==
	    0) {
		for (size_t off = 0; off + USED_REC_LEN <= n;
		     off += USED_REC_LEN) {
			struct used_invite *u = &ro->used[ro->n_used];

			memcpy(u->id, buf + off, MEMBER_INVITE_ID_LEN);
			u->expires =
			    sm_get_be64(buf + off + MEMBER_INVITE_ID_LEN);
			if (u->expires > now && ro->n_used < ROSTER_MAX_USED)
				ro->n_used++;
		}
	}
	free(buf);
}

/*
 * Record a single-use invite as used, durably, before the credential goes
 * out. Expired entries are dropped first: an expired invite is refused
 * anyway, so the list is bounded by the invites still valid.
 */
static int
use_invite(struct mesh *m, const struct member_invite *inv, const char **why)
{
	struct roster *ro = m->roster;
	uint64_t now = sm_wall_s();
	uint8_t *buf;
	char path[4096];
	size_t k = 0;
	int r = 0;

	for (size_t i = 0; i < ro->n_used; i++) {
		if (sodium_memcmp(
			ro->used[i].id, inv->id, MEMBER_INVITE_ID_LEN) == 0) {
			*why = "the invite was already used (it is single-use)";
			return SM_ERR_PERM;
		}
		if (ro->used[i].expires > now)
			ro->used[k++] = ro->used[i];
	}
	ro->n_used = k;
	if (ro->n_used >= ROSTER_MAX_USED) {
		*why = "too many single-use invites outstanding; try later";
		return SM_ERR_UNAVAIL;
	}
	memcpy(ro->used[ro->n_used].id, inv->id, MEMBER_INVITE_ID_LEN);
	ro->used[ro->n_used].expires = inv->expires;
	ro->n_used++;
	if (state_path(m, ROSTER_USED_FILE, path, sizeof(path)) != 0)
		return 0;
	if ((buf = malloc(ro->n_used * USED_REC_LEN)) == NULL) {
		r = SM_ERR_NOMEM;
	} else {
		for (size_t i = 0; i < ro->n_used; i++) {
			memcpy(buf + i * USED_REC_LEN, ro->used[i].id,
			    MEMBER_INVITE_ID_LEN);
			sm_put_be64(
			    buf + i * USED_REC_LEN + MEMBER_INVITE_ID_LEN,
			    ro->used[i].expires);
		}
		r = write_file(path, buf, ro->n_used * USED_REC_LEN);
		free(buf);
	}
	if (r != 0) {
		ro->n_used--;
		*why = "the node cannot record the invite as used; try later";
	}
	return r;
}

/* Redeem an invite for the node at the other end of 'l'. */
static int
redeem(struct mesh *m, struct link *l, const uint8_t *p, size_t len,
    uint8_t out[MEMBER_CRED_LEN], const char **why)
{
	struct roster *ro = m->roster;
	struct member_invite *inv;
	struct member_cred c = {0};
	const uint8_t *pid = link_peer_id(l);
	int r = SM_ERR_PERM;

	*why = "this node cannot redeem invites (it does not hold the "
	       "owner key)";
	if ((inv = calloc(1, sizeof(*inv))) == NULL)
		return SM_ERR_NOMEM;
	if (!identity_can_sign(&ro->owner))
		goto out;
	if (member_invite_parse_bin(p, len, inv, why) != 0) {
		r = SM_ERR_PROTO;
		goto out;
	}
	*why = "the invite is for another mesh";
	if (sodium_memcmp(inv->owner_pk, ro->owner_pk, ID_PK_LEN) != 0)
		goto out;
	*why = "the invite names another node to redeem it";
	if (memcmp(inv->node_id, m->id->pk, ID_PK_LEN) != 0)
		goto out;
	*why = "the invite has expired";
	if (inv->expires <= sm_wall_s())
		goto out;
	*why = "this node's membership was revoked by the owner";
	if (roster_revoked(m, pid))
		goto out;
	if ((inv->flags & MEMBER_FLAG_SINGLE_USE) &&
	    (r = use_invite(m, inv, why)) != 0)
		goto out;
	memcpy(c.node_id, pid, ID_PK_LEN);
	c.rights = inv->rights;
	c.issued = sm_wall_s();
	if ((r = member_cred_write(&c, &ro->owner, out)) != 0) {
		*why = "internal error";
		goto out;
	}
	ro->redeemed++;
	*why = NULL;
	r = 0;
out:
	member_invite_clear(inv);
	free(inv);
	return r;
}

/* --- link admission ----------------------------------------------------- */

static void
mx_free(struct mx *x)
{
	buf_clear(&x->in);
	free(x);
}

static void
mx_data(struct lstream *s, const uint8_t *p, size_t n, void *arg)
{
	struct mx *x = arg;

	if (x->deny)
		lstream_consume(s, n); /* read and dropped */
	else if (buf_append(&x->in, p, n) != 0)
		lstream_reset(s, LINK_H2_CANCEL);
	else
		lstream_consume(s, n);
}

static void
mx_close(struct lstream *s, int err, uint32_t h2, void *arg)
{
	mx_free(arg);
}

static void
mx_headers(struct lstream *s, int status, const struct link_hdr *h, size_t n,
    void *arg)
{
	((struct mx *)arg)->status = status;
}

static void
respond(struct lstream *s, int status, const uint8_t *p, size_t n)
{
	if (lstream_respond(s, status, NULL, 0) != 0 ||
	    (n > 0 && lstream_write(s, p, n) != 0) || lstream_end(s) != 0)
		lstream_reset(s, LINK_H2_INTERNAL_ERROR);
}

static void
refuse(struct mesh *m, struct lstream *s, const char *why)
{
	m->roster->refused++;
	respond(s, 403, (const uint8_t *)why, strlen(why));
}

static void start_member(struct mesh *m, struct link *l);

/* Server side: the body is complete. */
static void
mx_server_end(struct mesh *m, struct mx *x)
{
	struct roster *ro = m->roster;
	struct member_cred c;
	const uint8_t *pid = link_peer_id(x->l);
	uint8_t out[MEMBER_CRED_LEN];
	const char *why;
	char sid[13];

	if (x->deny) {
		refuse(m, x->s,
		    "this mesh is owned: present a membership credential "
		    "first (join with an invite from its owner)");
		return;
	}
	if (x->redeem) {
		if (redeem(m, x->l, buf_data(&x->in), x->in.len, out, &why) !=
		    0) {
			log_warn("membership: invite from %s refused: %s",
			    short_id(pid, sid), why);
			refuse(m, x->s, why);
			return;
		}
		log_info(
		    "membership: %s redeemed an invite", short_id(pid, sid));
		respond(x->s, 200, out, sizeof(out));
		return;
	}
	if (check_cred(m, buf_data(&x->in), x->in.len, pid, &c, &why) != 0) {
		log_warn("membership: link from %s refused: %s",
		    short_id(pid, sid), why);
		refuse(m, x->s, why);
		return;
	}
	if (!ro->have_cred) {
		respond(x->s, 503, (const uint8_t *)"no credential yet", 17);
		return;
	}
	respond(x->s, 200, ro->cred, MEMBER_CRED_LEN);
	mesh_link_admitted(m, x->l);
}

/* Client side: the answer is complete. */
static void
mx_client_end(struct mesh *m, struct mx *x)
{
	struct member_cred c;
	const uint8_t *pid = link_peer_id(x->l);
	char why[REASON_MAX + 1], sid[13];
	const char *w;
	size_t n = x->in.len < REASON_MAX ? x->in.len : REASON_MAX;

	if (x->status != 200) {
		/* The reason is the peer's text: keep printable ASCII only. */
		for (size_t i = 0; i < n; i++) {
			char ch = (char)buf_data(&x->in)[i];

			why[i] = ch >= 0x20 && ch < 0x7f ? ch : '?';
		}
		why[n] = '\0';
		log_error("membership: %s refused us: %s", short_id(pid, sid),
		    n > 0 ? why : "no reason given");
		mesh_dial_backoff(m, pid);
		link_close(x->l);
		if (!m->joined_once && m->on_join_failed != NULL)
			m->on_join_failed(
			    m, n > 0 ? why : "membership refused");
		return;
	}
	if (x->redeem) {
		if (set_cred(m, buf_data(&x->in), x->in.len) != 0) {
			link_close(x->l);
			return;
		}
		if (m->roster->invite != NULL) {
			member_invite_clear(m->roster->invite);
			free(m->roster->invite);
			m->roster->invite = NULL;
		}
		mesh_changed(m);
		start_member(m, x->l);
		return;
	}
	if (check_cred(m, buf_data(&x->in), x->in.len, pid, &c, &w) != 0) {
		log_error("membership: %s is not a member: %s",
		    short_id(pid, sid), w);
		link_close(x->l);
		return;
	}
	mesh_link_admitted(m, x->l);
}

static void
mx_end(struct lstream *s, void *arg)
{
	struct mx *x = arg;

	if (x->server)
		mx_server_end(x->m, x);
	else
		mx_client_end(x->m, x);
}

static const struct lstream_cb mx_cb = {
    .on_headers = mx_headers,
    .on_data = mx_data,
    .on_end = mx_end,
    .on_close = mx_close,
};

static void
start_exchange(struct mesh *m, struct link *l, bool redeem_it,
    const uint8_t *body, size_t len)
{
	struct mx *x;

	if ((x = calloc(1, sizeof(*x))) == NULL) {
		link_close(l);
		return;
	}
	x->m = m;
	x->l = l;
	x->redeem = redeem_it;
	buf_init(&x->in, MEMBER_CRED_LEN + REASON_MAX);
	if (lstream_open(l, "POST",
		redeem_it ? ROSTER_REDEEM_PATH : ROSTER_MEMBER_PATH, NULL, 0,
		&mx_cb, x, &x->s) != 0) {
		mx_free(x);
		link_close(l);
		return;
	}
	if (lstream_write(x->s, body, len) != 0 || lstream_end(x->s) != 0)
		lstream_reset(x->s, LINK_H2_INTERNAL_ERROR);
}

static void
start_member(struct mesh *m, struct link *l)
{
	start_exchange(m, l, false, m->roster->cred, MEMBER_CRED_LEN);
}

void
roster_link_up(struct mesh *m, struct link *l)
{
	struct roster *ro = m->roster;
	char sid[13];

	if (!link_is_dialer(l))
		return; /* the dialer speaks first */
	if (ro->have_cred) {
		start_member(m, l);
	} else if (ro->invite != NULL &&
	    memcmp(link_peer_id(l), ro->invite->node_id, ID_PK_LEN) == 0) {
		start_exchange(
		    m, l, true, ro->invite->bin, ro->invite->bin_len);
	} else {
		log_warn("membership: no credential to present to %s",
		    short_id(link_peer_id(l), sid));
		link_close(l);
	}
}

bool
roster_path(const char *path)
{
	return strcmp(path, ROSTER_MEMBER_PATH) == 0 ||
	    strcmp(path, ROSTER_REDEEM_PATH) == 0;
}

int
roster_on_stream(struct mesh *m, struct link *l, struct lstream *s,
    const struct lstream_req *req, bool admitted)
{
	struct mx *x;

	if (!roster_owned(m) || (admitted && roster_path(req->path)))
		return SM_ERR_PERM; /* nothing to do with membership */
	if ((x = calloc(1, sizeof(*x))) == NULL)
		return SM_ERR_NOMEM;
	x->m = m;
	x->l = l;
	x->s = s;
	x->server = true;
	x->redeem = strcmp(req->path, ROSTER_REDEEM_PATH) == 0;
	x->deny = !roster_path(req->path);
	buf_init(&x->in, MEMBER_INVITE_BIN_MAX);
	lstream_set_cb(s, &mx_cb, x);
	return 0;
}

static void
admit_tick(uv_timer_t *t)
{
	struct mesh *m = t->data;
	uint64_t now = sm_now_ms();
	char sid[13];

	for (size_t i = 0; i < MESH_MAX_LINKS; i++) {
		struct mesh_link *s = &m->links[i];

		if (s->l == NULL || s->admitted ||
		    now - s->up_ms < ROSTER_ADMIT_MS)
			continue;
		log_warn("membership: %s did not prove membership in time",
		    short_id(s->id, sid));
		link_close(s->l);
	}
}

/* --- open / close ------------------------------------------------------- */

static int
load_owner(struct mesh *m, bool *found)
{
	struct roster *ro = m->roster;
	char dir[4096], path[4200];
	struct stat st;
	int r;

	*found = false;
	if (m->opts.signer != NULL) {
		/* Privilege separation: the signer holds the owner key. */
		if (m->opts.signer_hello->owner) {
			identity_delegated(&ro->owner,
			    m->opts.signer_hello->owner_pk, signer_sign_owner,
			    m->opts.signer);
			*found = true;
		}
		return 0;
	}
	if (state_path(m, ROSTER_OWNER_DIR, dir, sizeof(dir)) != 0)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", dir, ID_KEY_FILE);
	if (stat(path, &st) != 0)
		return 0;
	if ((r = identity_load(&ro->owner, dir, false)) != 0) {
		log_error("membership: cannot load the owner key %s: %s", path,
		    sm_strerror(r));
		return r;
	}
	*found = true;
	return 0;
}

static void
load_cred(struct mesh *m)
{
	uint8_t p[MEMBER_CRED_LEN + 1];
	char path[4096];
	size_t n;

	if (state_path(m, ROSTER_CRED_FILE, path, sizeof(path)) != 0 ||
	    read_file(path, p, sizeof(p), &n, NULL) != 0)
		return;
	if (n == MEMBER_CRED_LEN && set_cred(m, p, MEMBER_CRED_LEN) == 0)
		return;
	log_warn("membership: %s is not a credential for this node and mesh; "
		 "ignoring it",
	    path);
}

static void
write_addrs(struct mesh *m)
{
	char path[4096], text[MESH_MAX_ADVERTISE * (TOKEN_ADDR_MAX + 1) + 1];
	size_t n = 0;

	if (state_path(m, ROSTER_ADDRS_FILE, path, sizeof(path)) != 0)
		return;
	for (size_t i = 0; i < m->n_addrs; i++)
		n += (size_t)snprintf(
		    text + n, sizeof(text) - n, "%s\n", m->addrs[i]);
	(void)write_file(path, (const uint8_t *)text, n);
}

int
roster_open(struct mesh *m, const struct member_invite *inv)
{
	struct roster *ro;
	bool have_owner;
	int r;

	if ((ro = calloc(1, sizeof(*ro))) == NULL)
		return SM_ERR_NOMEM;
	m->roster = ro;
	if ((r = load_owner(m, &have_owner)) != 0)
		return r;
	if (inv == NULL && !have_owner) {
		log_warn("mesh: legacy token mesh: anyone holding the token "
			 "can join, host and relay, and no node can be "
			 "removed; `sealmesh owner init` creates an owned mesh "
			 "(doc/PROTOCOL.md, Membership)");
		return 0;
	}
	ro->owned = true;
	if (inv != NULL) {
		memcpy(ro->owner_pk, inv->owner_pk, ID_PK_LEN);
		if (have_owner &&
		    memcmp(ro->owner.pk, inv->owner_pk, ID_PK_LEN) != 0) {
			log_error("membership: the invite is for a mesh owned "
				  "by another key than this node's owner key");
			return SM_ERR_INVAL;
		}
	} else {
		memcpy(ro->owner_pk, ro->owner.pk, ID_PK_LEN);
	}
	member_mesh_id(ro->owner_pk, m->mesh_id);
	if ((ro->revs = calloc(ROSTER_MAX_REVS, MEMBER_REV_LEN)) == NULL ||
	    (ro->rev_ids = calloc(ROSTER_MAX_REVS, ID_PK_LEN)) == NULL ||
	    (ro->used = calloc(ROSTER_MAX_USED, sizeof(*ro->used))) == NULL)
		return SM_ERR_NOMEM;
	load_revs(m, true);
	load_used(m);
	load_cred(m);
	if (!ro->have_cred && have_owner && (r = self_issue(m)) != 0)
		return r;
	if (!ro->have_cred && inv != NULL) {
		if ((ro->invite = calloc(1, sizeof(*ro->invite))) == NULL)
			return SM_ERR_NOMEM;
		*ro->invite = *inv;
	}
	if (!ro->have_cred && ro->invite == NULL) {
		log_error("membership: this node has no credential for the "
			  "mesh; join with an invite");
		return SM_ERR_PERM;
	}
	write_addrs(m);
	uv_timer_init(m->loop, &ro->timer);
	ro->timer.data = m;
	uv_timer_start(&ro->timer, admit_tick, 500, 500);
	return 0;
}

void
roster_close(struct mesh *m)
{
	struct roster *ro = m->roster;

	if (ro == NULL)
		return;
	identity_clear(&ro->owner);
	if (ro->invite != NULL)
		member_invite_clear(ro->invite);
	if (!ro->owned)
		return;
	uv_timer_stop(&ro->timer);
	uv_close((uv_handle_t *)&ro->timer, NULL);
}

/* --- status ------------------------------------------------------------- */

void
roster_status(struct mesh *m, cJSON *st)
{
	struct roster *ro = m->roster;
	char hex[ID_HEX_LEN + 1], rights[MEMBER_RIGHTS_TEXT_MAX];
	cJSON *o;

	if ((o = cJSON_AddObjectToObject(st, "membership")) == NULL)
		return;
	cJSON_AddStringToObject(
	    o, "mode", roster_owned(m) ? "owned" : "legacy");
	if (!roster_owned(m))
		return;
	sm_hex(hex, ro->owner_pk, ID_PK_LEN);
	cJSON_AddStringToObject(o, "owner", hex);
	cJSON_AddBoolToObject(o, "owner_key", identity_can_sign(&ro->owner));
	if (ro->have_cred) {
		member_rights_text(ro->mine.rights, rights);
		cJSON_AddStringToObject(o, "rights", rights);
	} else {
		cJSON_AddNullToObject(o, "rights");
	}
	cJSON_AddNumberToObject(o, "revocations", (double)ro->n_revs);
}

void
roster_status_peer(struct mesh *m, const struct peer *p, cJSON *o)
{
	char rights[MEMBER_RIGHTS_TEXT_MAX];
	uint8_t r = MEMBER_RIGHTS_ALL;

	if (!roster_owned(m))
		return;
	if (p->denied & PEER_DENY_HOST)
		r &= (uint8_t)~MEMBER_RIGHT_HOST;
	if (p->denied & PEER_DENY_RELAY)
		r &= (uint8_t)~MEMBER_RIGHT_RELAY;
	member_rights_text(r, rights);
	cJSON_AddStringToObject(o, "rights", rights);
}

int
roster_metrics(struct mesh *m, struct buf *out)
{
	struct roster *ro = m->roster;

	if (!roster_owned(m))
		return 0;
	return buf_appendf(out,
	    "# HELP sealmesh_member_refused_total Links or invites refused "
	    "for membership.\n"
	    "# TYPE sealmesh_member_refused_total counter\n"
	    "sealmesh_member_refused_total %llu\n"
	    "# HELP sealmesh_member_announcements_dropped_total "
	    "Announcements without a valid credential.\n"
	    "# TYPE sealmesh_member_announcements_dropped_total counter\n"
	    "sealmesh_member_announcements_dropped_total %llu\n"
	    "# HELP sealmesh_member_revocations Revocations known.\n"
	    "# TYPE sealmesh_member_revocations gauge\n"
	    "sealmesh_member_revocations %zu\n"
	    "# HELP sealmesh_member_revoked_links_total Links closed by a "
	    "revocation.\n"
	    "# TYPE sealmesh_member_revoked_links_total counter\n"
	    "sealmesh_member_revoked_links_total %llu\n"
	    "# HELP sealmesh_member_redeemed_total Invites redeemed here.\n"
	    "# TYPE sealmesh_member_redeemed_total counter\n"
	    "sealmesh_member_redeemed_total %llu\n",
	    (unsigned long long)ro->refused,
	    (unsigned long long)ro->dropped_ann, ro->n_revs,
	    (unsigned long long)ro->revoked_links,
	    (unsigned long long)ro->redeemed);
}
