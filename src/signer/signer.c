/*
 * The signer process. Three threads: 'fast' answers signatures and DH,
 * 'slow' answers the attestation provider (TPM calls take up to seconds),
 * the main thread supervises: signals, the worker's exit, and a measurement
 * of the worker every SIGNER_WATCH_MS. See signer.h and doc/PRIVSEP.md.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "attest/blob.h"
#include "attest/provider.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "crypto/infkey.h"
#include "harden/harden.h"
#include "http/apikey.h"
#include "mesh/announce.h"
#include "mesh/attest.h"
#include "mesh/identity.h"
#include "mesh/member.h"
#include "mesh/node.h"
#include "mesh/roster.h"
#include "mesh/tunnel.h"
#include "net/tls.h"
#include "signer/chan.h"
#include "signer/proto.h"
#include "signer/signer.h"

#define SIGNER_WATCH_MS 1000
#define SIGNER_STOP_WAIT_MS 10000
#define SIGNER_BLOBS 4 /* attested statements a challenge may name */

struct signer {
	const struct signer_cfg *cfg;
	struct identity id;
	struct identity owner; /* owner.sk == NULL: none */
	struct infkey *keys; /* NULL with --no-e2e */
	struct att_provider *prov; /* NULL with --attest none */
	pthread_mutex_t mu; /* keys, measured, blobs */
	bool measured_ok;
	uint8_t measured[POSTURE_WIRE_MAX]; /* posture_write of the worker */
	size_t measured_len;
	uint8_t blobs[SIGNER_BLOBS][ATT_HASH_LEN]; /* statements we quoted */
	unsigned nblobs;
	volatile sig_atomic_t failed; /* a thread saw a broken worker */
	bool fixed; /* tests: 'measured' is given, there is no worker */
	bool filtered; /* the worker had its seccomp filter at HELLO */
};

_Static_assert(ATT_BLOB_MAX == 1024, "signer/proto.c ATT_EVIDENCE bound");

/* --- measuring the worker ------------------------------------------------ */

/*
 * The posture the worker may claim: the host's facts as this process
 * measured them at start (harden_early), the worker's own facts read from
 * /proc/PID by this process, and that the keys are here.
 */
static int
measure_worker(struct signer *s, struct posture *out)
{
	struct posture w;
	int r;

	*out = *harden_posture();
	if ((r = posture_measure_pid(s->cfg->worker, &w)) != 0)
		return r;
	out->no_new_privs = w.no_new_privs;
	out->core_dumps_disabled = w.core_dumps_disabled;
	out->debugger_attached = w.debugger_attached;
	out->dumpable = w.dumpable;
	out->seccomp = w.seccomp;
	out->binary_hash_known = w.binary_hash_known;
	memcpy(out->binary_hash, w.binary_hash, POSTURE_HASH_LEN);
	/* Not root: a non-dumpable worker's exe link is closed to us. It was
	 * forked from this process without exec, so its binary is ours. */
	if (!w.binary_hash_known && harden_hash_self(out->binary_hash) == 0)
		out->binary_hash_known = true;
	out->keys_separate = TRI_TRUE;
	out->measured_by = POSTURE_MEASURED_SIGNER;
	out->hardened = posture_is_hardened(out);
	return 0;
}

/* Still the worker we measured? A tracer or a lost filter ends trust. */
static bool
worker_trusted(struct signer *s)
{
	struct proc_facts f;
	bool had;

	if (proc_facts_read(s->cfg->worker, &f) != 0)
		return true; /* gone: waitpid will say so */
	if (f.tracer_pid > 0) {
		log_error(
		    "privsep: a debugger attached to the worker (pid %d); "
		    "stopping",
		    (int)s->cfg->worker);
		return false;
	}
	pthread_mutex_lock(&s->mu);
	had = s->filtered;
	pthread_mutex_unlock(&s->mu);
	if (had && f.seccomp_mode != 2) {
		log_error("privsep: the worker's filter is gone; stopping");
		return false;
	}
	return true;
}

/* --- requests ------------------------------------------------------------ */

static int
do_hello(struct signer *s, struct buf *out)
{
	struct posture p;
	struct att_blob b = {0};
	uint8_t fixed[SIGNER_HELLO_FIXED];
	struct buf pw;
	int r;

	if (s->fixed) {
		if ((r = posture_parse(s->measured, s->measured_len, &p)) != 0)
			return r;
	} else if ((r = measure_worker(s, &p)) != 0) {
		log_error("privsep: cannot measure the worker (pid %d): %s",
		    (int)s->cfg->worker, sm_strerror(r));
		return r;
	}
	buf_init(&pw, POSTURE_WIRE_MAX);
	if ((r = posture_write(&p, &pw)) != 0) {
		buf_clear(&pw);
		return r;
	}
	pthread_mutex_lock(&s->mu);
	memcpy(s->measured, buf_data(&pw), pw.len);
	s->measured_len = pw.len;
	s->measured_ok = true;
	s->filtered = p.seccomp == TRI_TRUE;
	pthread_mutex_unlock(&s->mu);
	memset(fixed, 0, sizeof(fixed));
	memcpy(fixed, s->id.pk, ID_PK_LEN);
	if (s->owner.sk != NULL) {
		memcpy(fixed + 32, s->owner.pk, ID_PK_LEN);
		fixed[64] |= SIGNER_HELLO_OWNER;
	}
	if (s->prov != NULL) {
		s->prov->ops->describe(s->prov, &b);
		if (s->prov->ops->measure != NULL)
			fixed[64] |= SIGNER_HELLO_MEASURE;
		fixed[65] = (uint8_t)b.provider;
		fixed[66] = (uint8_t)b.level;
		sm_put_be32(fixed + 67, b.tpm_manufacturer);
	}
	fixed[71] = (uint8_t)(pw.len >> 8);
	fixed[72] = (uint8_t)pw.len;
	r = buf_append(out, fixed, sizeof(fixed));
	if (r == 0)
		r = buf_append(out, buf_data(&pw), pw.len);
	buf_clear(&pw);
	log_info("privsep: worker pid %d measured: seccomp %s, no_new_privs "
		 "%s, tracer %s",
	    s->cfg != NULL ? (int)s->cfg->worker : 0, tri_str(p.seccomp),
	    tri_str(p.no_new_privs), tri_str(p.debugger_attached));
	return r;
}

/* Rotate and retire on the signer's own clock (under s->mu). */
static void
tick_keys(struct signer *s)
{
	bool rot;

	if (infkey_tick(s->keys, sm_now_ms() / 1000, &rot) != 0)
		log_error("privsep: inference key rotation failed");
}

/* The live (epoch, key) pairs, 36 bytes each; returns how many. */
static size_t
live_keys(struct signer *s, uint8_t out[2 * 36])
{
	struct infkey_pub cur, prev;
	size_t n = 0;

	if (s->keys == NULL)
		return 0;
	tick_keys(s);
	infkey_current(s->keys, &cur);
	sm_put_be32(out, cur.epoch);
	memcpy(out + 4, cur.pk, 32);
	n = 1;
	if (infkey_previous(s->keys, &prev) == 0) {
		sm_put_be32(out + 36, prev.epoch);
		memcpy(out + 40, prev.pk, 32);
		n = 2;
	}
	return n;
}

static int
do_sign(struct signer *s, const uint8_t *p, size_t len, struct buf *out)
{
	const uint8_t *msg = p + 1;
	size_t mlen = len - 1;
	uint8_t sig[ID_SIG_LEN], keys[2 * 36];
	size_t nk;
	int r;

	if (p[0] == SIGNER_KEY_OWNER) {
		/* Membership statements only (credentials, revocations). */
		if (s->owner.sk == NULL)
			return SM_ERR_NOTFOUND;
		if (mlen <= sizeof(MEMBER_DOMAIN) ||
		    memcmp(msg, MEMBER_DOMAIN, sizeof(MEMBER_DOMAIN)) != 0)
			return SM_ERR_PERM;
		r = identity_sign(&s->owner, msg, mlen, sig);
	} else if (mlen == TLS_LINKCERT_MSG_LEN &&
	    memcmp(msg, TLS_LINKCERT_DOMAIN, TLS_LINKCERT_DOMAIN_LEN) == 0) {
		/* A link key for this node, certified no longer than a link
		 * context lives: a stolen link key dies with its day. */
		const uint8_t *who = msg + TLS_LINKCERT_DOMAIN_LEN + ID_PK_LEN;
		uint64_t until = sm_get_be64(who + ID_PK_LEN);

		if (memcmp(who, s->id.pk, ID_PK_LEN) != 0 ||
		    until > sm_wall_s() + TLS_LINKCERT_LIFETIME_S + 60) {
			log_warn("privsep: refused a link-key certificate");
			return SM_ERR_PERM;
		}
		r = identity_sign(&s->id, msg, mlen, sig);
	} else if (mlen > ANN_DOMAIN_LEN &&
	    memcmp(msg, ANN_DOMAIN, ANN_DOMAIN_LEN) == 0) {
		/* An announcement says what we measured, or is not signed. */
		pthread_mutex_lock(&s->mu);
		nk = live_keys(s, keys);
		r = s->measured_ok ? announce_body_check(msg + ANN_DOMAIN_LEN,
					 mlen - ANN_DOMAIN_LEN, s->id.pk,
					 s->measured, s->measured_len, keys, nk)
				   : SM_ERR_PERM;
		pthread_mutex_unlock(&s->mu);
		if (r != 0) {
			log_warn("privsep: refused to sign an announcement "
				 "(%s)",
			    sm_strerror(r));
			return r;
		}
		r = identity_sign(&s->id, msg, mlen, sig);
	} else {
		log_warn("privsep: refused to sign a message outside the "
			 "node's domains");
		return SM_ERR_PERM;
	}
	if (r == 0)
		r = buf_append(out, sig, sizeof(sig));
	return r;
}

static int
do_inf_state(struct signer *s, struct buf *out)
{
	uint8_t keys[2 * 36], tail[4];
	uint64_t now = sm_now_ms() / 1000, next;
	size_t n;
	uint8_t nb;
	int r;

	if (s->keys == NULL)
		return SM_ERR_NOTFOUND;
	pthread_mutex_lock(&s->mu);
	n = live_keys(s, keys);
	next = infkey_next_deadline(s->keys);
	pthread_mutex_unlock(&s->mu);
	nb = (uint8_t)n;
	sm_put_be32(tail, (uint32_t)(next > now ? next - now : 1));
	if ((r = buf_append(out, &nb, 1)) == 0 &&
	    (r = buf_append(out, keys, 36 * n)) == 0)
		r = buf_append(out, tail, sizeof(tail));
	return r;
}

static int
do_inf_dh(struct signer *s, const uint8_t *p, struct buf *out)
{
	uint8_t ans[INFKEY_SHARED_LEN + INFKEY_PK_LEN];
	int r;

	if (s->keys == NULL)
		return SM_ERR_NOTFOUND;
	pthread_mutex_lock(&s->mu);
	tick_keys(s);
	r = infkey_shared(
	    s->keys, sm_get_be32(p), p + 4, ans, ans + INFKEY_SHARED_LEN);
	pthread_mutex_unlock(&s->mu);
	if (r == 0)
		r = buf_append(out, ans, sizeof(ans));
	sodium_memzero(ans, sizeof(ans));
	return r;
}

/* The statement names this node, a live key of ours and what we measured. */
static int
check_blob(struct signer *s, const uint8_t *p, size_t len)
{
	struct att_blob b, mine = {0};
	struct buf pw;
	uint8_t keys[2 * 36];
	size_t nk;
	bool key_ok = false;
	int r;

	if ((r = att_blob_parse(p, len, &b)) != 0)
		return SM_ERR_PROTO;
	s->prov->ops->describe(s->prov, &mine);
	if (memcmp(b.node_id, s->id.pk, ID_PK_LEN) != 0 ||
	    b.provider != mine.provider || b.level != mine.level ||
	    b.tpm_manufacturer != mine.tpm_manufacturer)
		return SM_ERR_PERM;
	buf_init(&pw, POSTURE_WIRE_MAX);
	if ((r = posture_write(&b.posture, &pw)) != 0)
		goto out;
	pthread_mutex_lock(&s->mu);
	nk = live_keys(s, keys);
	for (size_t i = 0; i < nk; i++)
		key_ok |= b.infkey.epoch == sm_get_be32(keys + 36 * i) &&
		    memcmp(b.infkey.pk, keys + 36 * i + 4, 32) == 0;
	if (nk == 0)
		key_ok = b.infkey.epoch == 0;
	r = s->measured_ok && key_ok && pw.len == s->measured_len &&
		memcmp(buf_data(&pw), s->measured, pw.len) == 0
	    ? 0
	    : SM_ERR_PERM;
	pthread_mutex_unlock(&s->mu);
out:
	buf_clear(&pw);
	return r;
}

static bool
known_blob(struct signer *s, const uint8_t hash[ATT_HASH_LEN])
{
	bool ok = false;

	pthread_mutex_lock(&s->mu);
	for (unsigned i = 0; i < SIGNER_BLOBS; i++)
		ok |= sodium_memcmp(s->blobs[i], hash, ATT_HASH_LEN) == 0;
	pthread_mutex_unlock(&s->mu);
	return ok;
}

static int
do_att(struct signer *s, const struct signer_frame *f, struct buf *out)
{
	const uint8_t *p = f->body;
	struct signer_activate a;
	uint8_t h[ATT_HASH_LEN], secret[ATT_SECRET_LEN];
	int r;

	if (s->prov == NULL)
		return SM_ERR_NOTFOUND;
	switch (f->op) {
	case SIGNER_OP_ATT_EVIDENCE:
		if ((r = check_blob(s, p, f->body_len)) != 0) {
			log_warn("privsep: refused to attest a statement "
				 "(%s)",
			    sm_strerror(r));
			return r;
		}
		if ((r = att_sha256(p, f->body_len, h)) != 0 ||
		    (r = s->prov->ops->evidence(
			 s->prov, p, f->body_len, out)) != 0)
			return r;
		pthread_mutex_lock(&s->mu);
		memcpy(s->blobs[s->nblobs++ % SIGNER_BLOBS], h, ATT_HASH_LEN);
		pthread_mutex_unlock(&s->mu);
		return 0;
	case SIGNER_OP_ATT_ANSWER:
	case SIGNER_OP_ATT_MEASURE:
		/* Only for a statement we quoted ourselves. */
		if (!known_blob(s, p + ATT_NONCE_LEN))
			return SM_ERR_PERM;
		if (f->op == SIGNER_OP_ATT_ANSWER)
			return s->prov->ops->answer(
			    s->prov, p, p + ATT_NONCE_LEN, out);
		if (s->prov->ops->measure == NULL)
			return SM_ERR_UNSUPP;
		return s->prov->ops->measure(s->prov, p, p + ATT_NONCE_LEN,
		    sm_get_be32(p + ATT_NONCE_LEN + ATT_HASH_LEN), out);
	case SIGNER_OP_ATT_ACTIVATE:
		if ((r = signer_activate_parse(p, f->body_len, &a)) != 0 ||
		    (r = s->prov->ops->activate(s->prov, a.cred, a.cred_len,
			 a.seed, a.seed_len, secret)) != 0)
			return r;
		r = buf_append(out, secret, sizeof(secret));
		sodium_memzero(secret, sizeof(secret));
		return r;
	default:
		return SM_ERR_PROTO;
	}
}

static int
do_apikeys(struct signer *s, struct buf *out)
{
	char why[512];
	uint8_t ok = 1;
	int r;

	if (s->cfg == NULL || s->cfg->api_key_file == NULL)
		return SM_ERR_NOTFOUND;
	if ((r = buf_append(out, &ok, 1)) != 0)
		return r;
	if (apikeys_read(s->cfg->api_key_file, out, why, sizeof(why)) != 0) {
		/* The worker logs why, with what it keeps. */
		buf_reset(out);
		ok = 0;
		if ((r = buf_append(out, &ok, 1)) != 0 ||
		    (r = buf_append(out, why, strlen(why))) != 0)
			return r;
	}
	return 0;
}

static int
handle(struct signer *s, const struct signer_frame *f, struct buf *out)
{
	switch (f->op) {
	case SIGNER_OP_APIKEYS:
		return do_apikeys(s, out);
	case SIGNER_OP_HELLO:
		return do_hello(s, out);
	case SIGNER_OP_SIGN:
		return do_sign(s, f->body, f->body_len, out);
	case SIGNER_OP_INF_STATE:
		return do_inf_state(s, out);
	case SIGNER_OP_INF_DH:
		return do_inf_dh(s, f->body, out);
	default:
		return do_att(s, f, out);
	}
}

/* --- the channels -------------------------------------------------------- */

struct chan_arg {
	struct signer *s;
	int fd;
	bool slow;
};

/* Fast ops on the fast channel, provider ops on the slow one. */
static bool
op_allowed(uint8_t op, bool slow)
{
	bool att = op >= SIGNER_OP_ATT_EVIDENCE && op <= SIGNER_OP_ATT_ACTIVATE;

	return att == slow;
}

int
signer_answer(
    struct signer *s, const uint8_t *in, size_t len, bool slow, struct buf *out)
{
	uint8_t hdr[SIGNER_HDR_LEN];
	struct signer_frame f;
	size_t at = out->len;
	int r;

	if (signer_frame_parse(in, len, SIGNER_REQ_MAX, true, &f) != 0 ||
	    signer_req_check(&f) != 0 || !op_allowed(f.op, slow))
		return SM_ERR_PROTO;
	if ((r = buf_append(out, hdr, sizeof(hdr))) != 0)
		return r;
	r = handle(s, &f, out);
	if (r != 0)
		out->len = at + sizeof(hdr); /* an error carries no body */
	if (signer_hdr_write(hdr, f.op, (uint16_t)(r != 0 ? -r : 0),
		out->len - at - sizeof(hdr), SIGNER_RESP_MAX) != 0) {
		out->len = at + sizeof(hdr);
		if (signer_hdr_write(hdr, f.op, (uint16_t)-SM_ERR_TOOBIG, 0,
			SIGNER_RESP_MAX) != 0)
			return SM_ERR_INTERNAL;
	}
	memcpy(buf_data(out) + at, hdr, sizeof(hdr));
	return 0;
}

static void *
serve_chan(void *arg)
{
	struct chan_arg *ca = arg;
	struct signer *s = ca->s;
	uint8_t *req = NULL;
	struct signer_frame f;
	struct buf out;

	buf_init(&out, SIGNER_RESP_MAX + SIGNER_HDR_LEN);
	if ((req = malloc(SIGNER_HDR_LEN + SIGNER_REQ_MAX)) == NULL)
		goto out;
	for (;;) {
		if (chan_read(ca->fd, req, SIGNER_HDR_LEN) != 0)
			break; /* the worker closed: main thread decides */
		if (signer_hdr_parse(req, SIGNER_REQ_MAX, true, &f) != 0 ||
		    chan_read(ca->fd, req + SIGNER_HDR_LEN, f.body_len) != 0 ||
		    signer_answer(s, req, SIGNER_HDR_LEN + f.body_len, ca->slow,
			&out) != 0)
			goto bad;
		if (chan_write(ca->fd, buf_data(&out), out.len) != 0)
			break;
		buf_clear(&out); /* wipes what we answered */
		sodium_memzero(req, SIGNER_HDR_LEN + f.body_len);
	}
	goto out;
bad:
	log_error("privsep: malformed request from the worker; stopping");
	s->failed = 1;
	kill(getpid(), SIGTERM);
out:
	buf_clear(&out);
	free(req);
	return NULL;
}

int
signer_new_ephemeral(struct signer **out, const struct posture *measured)
{
	struct signer *s;
	struct buf pw;
	int r;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return SM_ERR_NOMEM;
	pthread_mutex_init(&s->mu, NULL);
	buf_init(&pw, POSTURE_WIRE_MAX);
	if ((r = identity_ephemeral(&s->id)) != 0 ||
	    (r = infkey_new(&s->keys, 3600, 600, sm_now_ms() / 1000)) != 0 ||
	    (r = posture_write(measured, &pw)) != 0) {
		buf_clear(&pw);
		signer_free(s);
		return r;
	}
	memcpy(s->measured, buf_data(&pw), pw.len);
	s->measured_len = pw.len;
	s->measured_ok = true;
	s->fixed = true;
	buf_clear(&pw);
	*out = s;
	return 0;
}

const uint8_t *
signer_node_pk(const struct signer *s)
{
	return s->id.pk;
}

/* Wipe every key (the provider flushes its TPM handles). */
static void
signer_wipe(struct signer *s)
{
	att_provider_free(s->prov);
	infkey_free(s->keys);
	identity_clear(&s->owner);
	identity_clear(&s->id);
	pthread_mutex_destroy(&s->mu);
	sodium_memzero(s, sizeof(*s));
}

void
signer_free(struct signer *s)
{
	if (s == NULL)
		return;
	signer_wipe(s);
	free(s);
}

/* --- setup and supervision ----------------------------------------------- */

static int
load_keys(struct signer *s)
{
	const struct signer_cfg *c = s->cfg;
	char odir[4096], opath[4200];
	uint64_t epoch, grace;
	struct stat st;
	int r;

	if ((r = identity_load(&s->id, c->state_dir, true)) != 0) {
		fprintf(stderr,
		    "sealmesh: cannot load the node identity from state dir "
		    "%s: %s (see the error above)\n",
		    c->state_dir, sm_strerror(r));
		return r;
	}
	(void)harden_lock_key(s->id.sk, ID_SK_LEN);
	snprintf(odir, sizeof(odir), "%s/%s", c->state_dir, ROSTER_OWNER_DIR);
	snprintf(opath, sizeof(opath), "%s/%s", odir, ID_KEY_FILE);
	if (stat(opath, &st) == 0 &&
	    (r = identity_load(&s->owner, odir, false)) != 0) {
		fprintf(stderr, "sealmesh: cannot load the owner key %s: %s\n",
		    opath, sm_strerror(r));
		return r;
	}
	if (!c->mo->no_e2e) {
		tunnel_key_schedule(c->mo, &epoch, &grace);
		if ((r = infkey_new(
			 &s->keys, epoch, grace, sm_now_ms() / 1000)) != 0)
			return r;
#ifdef SM_TEST_BUILD
		/* Test builds: a known inference secret for the memory scan
		 * (tests/integration/privsep.test.mjs). */
		const char *hex = getenv("SM_TEST_INFKEY_SK");

		if (hex != NULL &&
		    infkey_install_hex(s->keys, hex, sm_now_ms() / 1000) != 0)
			return SM_ERR_INVAL;
#endif
	}
	if ((r = mesh_att_provider_open(c->mo, &s->prov)) != 0)
		fprintf(stderr,
		    "sealmesh: cannot open the attestation provider: %s (see "
		    "the error above)\n",
		    sm_strerror(r));
	return r;
}

static void
describe_exit(pid_t pid, int status)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		log_info("privsep: worker %d exited", (int)pid);
	else if (WIFEXITED(status))
		; /* it said why itself; its status becomes ours */
	else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
		log_error("privsep: worker %d was killed by its sandbox: it "
			  "made a forbidden system call",
		    (int)pid);
	else if (WIFSIGNALED(status))
		log_error("privsep: worker %d was killed by signal %d",
		    (int)pid, WTERMSIG(status));
}

/* Wait up to 'ms' for the worker; SIGKILL it after that. */
static int
reap(pid_t pid, int ms)
{
	int status = 0;

	for (int i = 0; i < ms / 50; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		usleep(50 * 1000);
	}
	kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) != pid)
		return 0;
	return status;
}

int
signer_run(const struct signer_cfg *cfg)
{
	struct signer s = {.cfg = cfg};
	struct chan_arg fa = {.s = &s, .fd = cfg->fast_fd, .slow = false};
	struct chan_arg sa = {.s = &s, .fd = cfg->slow_fd, .slow = true};
	pthread_t ft, st;
	bool threads = false, stopping = false;
	sigset_t set;
	int sig, status = 0, rc = 1;
	pid_t w = cfg->worker;

	pthread_mutex_init(&s.mu, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGWINCH);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (load_keys(&s) != 0) {
		kill(w, SIGKILL);
		(void)reap(w, 0);
		goto out;
	}
	if (pthread_create(&ft, NULL, serve_chan, &fa) != 0 ||
	    pthread_create(&st, NULL, serve_chan, &sa) != 0) {
		log_error("privsep: cannot start the signer's threads");
		kill(w, SIGKILL);
		(void)reap(w, 0);
		goto out;
	}
	threads = true;
	for (;;) {
		struct timespec ts = {.tv_sec = SIGNER_WATCH_MS / 1000};

		sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGCHLD || (sig < 0 && errno == EAGAIN)) {
			pid_t got = waitpid(w, &status, WNOHANG);

			if (got == w) {
				describe_exit(w, status);
				rc = WIFEXITED(status) && !s.failed
				    ? WEXITSTATUS(status)
				    : 1;
				break;
			}
			if (!stopping && !worker_trusted(&s)) {
				kill(w, SIGKILL);
				describe_exit(w, reap(w, 0));
				break;
			}
			continue;
		}
		if (sig < 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT) {
			if (s.failed) {
				kill(w, SIGKILL);
				describe_exit(w, reap(w, 0));
				break;
			}
			stopping = true;
			kill(w, sig);
			status = reap(w, SIGNER_STOP_WAIT_MS);
			describe_exit(w, status);
			rc = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0
									   : 1;
			break;
		}
		kill(w, sig); /* SIGHUP, and the test builds' signals */
	}
out:
	/* The worker is gone: wake the channel threads and wipe the keys. */
	shutdown(cfg->fast_fd, SHUT_RDWR);
	shutdown(cfg->slow_fd, SHUT_RDWR);
	if (threads) {
		pthread_join(ft, NULL);
		pthread_join(st, NULL);
	}
	close(cfg->fast_fd);
	close(cfg->slow_fd);
	signer_wipe(&s);
	return rc;
}

int
signer_prepare_dir(const char *state_dir, const char *user)
{
	struct passwd *pw;
	struct dirent *e;
	struct stat st;
	DIR *d;
	int r = 0;

	if ((pw = getpwnam(user)) == NULL) {
		fprintf(stderr, "sealmesh: --user %s: no such user\n", user);
		return SM_ERR_NOTFOUND;
	}
	if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "sealmesh: cannot create state dir %s: %s\n",
		    state_dir, strerror(errno));
		return SM_ERR_IO;
	}
	if ((d = opendir(state_dir)) == NULL) {
		fprintf(stderr, "sealmesh: cannot open state dir %s: %s\n",
		    state_dir, strerror(errno));
		return SM_ERR_IO;
	}
	/* A directory others can enter is the operator's to fix, not ours:
	 * identity_load() refuses it with its reason. */
	if (fstat(dirfd(d), &st) != 0 || (st.st_mode & 077) != 0) {
		closedir(d);
		return 0;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 ||
		    strcmp(e->d_name, "..") == 0 ||
		    strcmp(e->d_name, ID_KEY_FILE) == 0 ||
		    strcmp(e->d_name, ATT_AK_FILE) == 0 ||
		    strcmp(e->d_name, ROSTER_OWNER_DIR) == 0)
			continue;
		if (fchownat(dirfd(d), e->d_name, pw->pw_uid, pw->pw_gid,
			AT_SYMLINK_NOFOLLOW) != 0) {
			fprintf(stderr,
			    "sealmesh: cannot give %s/%s to %s: %s\n",
			    state_dir, e->d_name, user, strerror(errno));
			r = SM_ERR_IO;
			break;
		}
	}
	if (r == 0 && fchown(dirfd(d), pw->pw_uid, pw->pw_gid) != 0) {
		fprintf(stderr,
		    "sealmesh: cannot give state dir %s to %s: %s\n", state_dir,
		    user, strerror(errno));
		r = SM_ERR_IO;
	}
	closedir(d);
	return r;
}
