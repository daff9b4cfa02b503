#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "attest/blob.h"
#include "attest/challenge.h"
#include "attest/measure.h"
#include "attest/pins.h"
#include "attest/provider.h"
#include "attest/verify.h"
#include "core/log.h"
#include "core/util.h"
#include "harden/harden.h"
#include "mesh/attest.h"
#include "mesh/tunnel.h"
#include "signer/client.h"

#ifdef SM_TEST_BUILD
bool mesh_att_test_ignore_challenges;
bool mesh_att_test_corrupt_answers;
unsigned mesh_att_test_flood;
bool mesh_att_test_attest_unhardened;
#endif

/*
 * TPM work off the event loop: every provider call (quote, PCR read,
 * ActivateCredential, re-attestation) runs on libuv's thread pool, one job at
 * a time (a provider is not thread-safe), from a queue of at most
 * ATTEST_QUEUE_MAX jobs. A challenge is admitted only within its link peer's
 * token bucket (ATTEST_PEER_RATE per second, burst ATTEST_PEER_BURST), a
 * global bucket (ATTEST_GLOBAL_RATE, ATTEST_GLOBAL_BURST) and a free queue
 * slot; otherwise it gets a typed busy answer (challenge.h) at once.
 */
#define ATTEST_QUEUE_MAX 8
#define ATTEST_PEER_RATE 2
#define ATTEST_PEER_BURST 4
#define ATTEST_GLOBAL_RATE 10
#define ATTEST_GLOBAL_BURST 16
#define ATTEST_LAG_MS 50 /* loop lag probe period */
/*
 * Beyond its challenge budget a peer gets typed busy answers, at most
 * ATTEST_BUSY_RATE per second; past that its challenge streams are refused
 * as they open (RST_STREAM REFUSED_STREAM), before any allocation or read: a
 * flood costs the host as little as the transport allows.
 */
#define ATTEST_BUSY_RATE 20

enum job_kind { JOB_ANSWER, JOB_REFRESH };

struct chal_x;

struct att_job {
	uv_work_t w;
	struct mesh *m;
	enum job_kind kind;
	struct chal_x *x; /* JOB_ANSWER; NULL once the stream is gone */
	struct buf in, out;
	struct att_blob b; /* JOB_REFRESH */
	uint8_t blob_hash[ATT_HASH_LEN];
	int r;
	struct att_job *next;
};

/* A token bucket, in milli-tokens. */
struct bucket {
	uint8_t id[ID_PK_LEN];
	uint64_t at_ms;
	uint64_t mtok;
	bool used;
};

/* Per link peer: challenges admitted, and busy answers it may still get. */
struct peer_limit {
	struct bucket chal;
	struct bucket busy;
};

/* What this node knows about one peer's attestation. */
struct peer_att {
	uint8_t id[ID_PK_LEN];
	uint8_t msg_hash[ATT_HASH_LEN]; /* of the message last verified */
	uint32_t key_epoch; /* announced key the verdict is for */
	int vr; /* att_verify result */
	struct att_verdict v;
	struct att_live live;
	struct att_activation act; /* pending until a challenge carries it */
	uint64_t verified_ms; /* monotonic, when vr became 0 */
	uint64_t verified_wall; /* the same moment, unix seconds (display) */
	struct lstream *chal; /* the open challenge stream, if any */
	bool challenging; /* a challenge stream is open */
	bool known;
	struct att_meas_verdict meas; /* from the last verified answer */
	bool meas_known;
	uint8_t meas_blob[ATT_HASH_LEN]; /* blob hash 'meas' was checked for */
	struct att_ima_state ima_st; /* IMA entries verified so far */
	bool meas_again; /* an incremental check failed: re-ask in full */
};

struct mesh_att {
	struct att_provider *prov; /* NULL: --attest none */
	struct buf msg; /* my message (field 38) */
	uint8_t blob_hash[ATT_HASH_LEN];
	struct att_trust *trust;
	struct att_pins *pins;
	char pins_path[4096];
	uint8_t (*allowed)[ATT_HASH_LEN];
	size_t nallowed;
	struct att_live_cfg cfg;
	uv_timer_t timer;
	uint64_t refreshed_ms;
	struct peer_att **peers;
	size_t npeers;
	uint64_t challenges, challenge_ok, challenge_failed, answered;
	uint64_t refused;
	/* Host side: the TPM job queue and the admission buckets. */
	struct att_job *running;
	struct att_job *qhead, *qtail;
	size_t qlen;
	struct att_job *refresh_job; /* queued or running */
	bool refresh_again; /* asked again while it ran: run once more */
	struct bucket global;
	struct peer_limit peers_b[PEERS_MAX];
	uint64_t refused_streams;
	uint64_t busy_sent, busy_got, jobs_done;
	/* Pins file: reloaded when another process (attest --forget) edits. */
	struct timespec pins_mtime;
	ino_t pins_ino;
	/* Loop lag probe. */
	uv_timer_t lag;
	uint64_t lag_due_ms;
	uint64_t lag_max_ms[10]; /* per second, ring */
	uint64_t lag_sec;
	bool closing;
#ifdef SM_TEST_BUILD
	uv_timer_t flood;
	unsigned flood_open;
#endif
	struct att_pcr_policy *pcr_policy; /* --pcr-policy */
	struct ima_allowlist *ima_allow; /* --ima-allowlist */
	uint64_t measured_ok, measured_refused;
};

struct chal_x {
	struct mesh *m;
	struct lstream *s;
	uint8_t id[ID_PK_LEN];
	struct buf in;
	bool server;
	struct att_job *job; /* host: the queued or running answer */
#ifdef SM_TEST_BUILD
	bool flood;
#endif
};

static struct peer_att *
patt_find(struct mesh *m, const uint8_t id[ID_PK_LEN], bool create)
{
	struct mesh_att *a = m->att;
	struct peer_att *pa, **np;

	for (size_t i = 0; i < a->npeers; i++)
		if (memcmp(a->peers[i]->id, id, ID_PK_LEN) == 0)
			return a->peers[i];
	if (!create || a->npeers >= PEERS_MAX)
		return NULL;
	if ((pa = calloc(1, sizeof(*pa))) == NULL)
		return NULL;
	if ((np = realloc(a->peers, (a->npeers + 1) * sizeof(*np))) == NULL) {
		free(pa);
		return NULL;
	}
	a->peers = np;
	memcpy(pa->id, id, ID_PK_LEN);
	att_live_init(&pa->live);
	pa->vr = SM_ERR_NOTFOUND;
	a->peers[a->npeers++] = pa;
	return pa;
}

/* --- this node's message ------------------------------------------------- */

static void
self_blob(struct mesh *m, struct att_blob *b)
{
	struct infkey_pub ik = {0};

	(void)tunnel_current_key(m, &ik); /* no key (--no-e2e): epoch 0 */
	att_blob_init(b, m->id->pk, &ik, harden_posture());
	att_platform_probe(b);
#ifdef SM_TEST_BUILD
	if (mesh_att_test_attest_unhardened) {
		/* The attested statement says what field 37 does not. */
		b->posture.no_new_privs = TRI_FALSE;
		b->posture.hardened = posture_is_hardened(&b->posture);
	}
#endif
}

/* At startup, before the loop runs: the first message, synchronously. */
static int
attest_self(struct mesh *m)
{
	struct mesh_att *a = m->att;
	struct att_blob b;
	int r;

	if (a->prov == NULL)
		return 0;
	self_blob(m, &b);
	buf_reset(&a->msg);
	if ((r = att_attest(a->prov, &b, &a->msg, a->blob_hash)) != 0) {
		log_error("attest: cannot make this node's attestation: %s",
		    sm_strerror(r));
		return r;
	}
	a->refreshed_ms = sm_now_ms();
	return 0;
}

/* --- the TPM job queue (host side) --------------------------------------- */

static void job_next(struct mesh *m);
static void answer_send(struct chal_x *x, struct att_job *j);

static void
job_free(struct att_job *j)
{
	buf_clear(&j->in);
	buf_clear(&j->out);
	free(j);
}

static struct att_job *
job_new(struct mesh *m, enum job_kind kind)
{
	struct att_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	j->m = m;
	j->kind = kind;
	j->w.data = j;
	buf_init(&j->in, ATT_CHAL_MAX);
	buf_init(
	    &j->out, kind == JOB_ANSWER ? ATT_ANSWER_MEAS_MAX : ATT_MSG_MAX);
	return j;
}

static void
job_push(struct mesh *m, struct att_job *j)
{
	struct mesh_att *a = m->att;

	if (a->qtail != NULL)
		a->qtail->next = j;
	else
		a->qhead = j;
	a->qtail = j;
	a->qlen++;
	job_next(m);
}

/* Worker thread: the only place that calls the provider after startup. */
static void
job_work(uv_work_t *w)
{
	struct att_job *j = w->data;
	struct att_provider *prov = j->m->att->prov;

	if (j->kind == JOB_ANSWER)
		j->r = att_answer_make(
		    prov, buf_data(&j->in), j->in.len, j->blob_hash, &j->out);
	else
		j->r = att_attest(prov, &j->b, &j->out, j->blob_hash);
}

static void
job_done(uv_work_t *w, int status)
{
	struct att_job *j = w->data;
	struct mesh *m = j->m;
	struct mesh_att *a = m->att;

	a->running = NULL;
	a->jobs_done++;
	if (status != 0)
		j->r = SM_ERR_CLOSED;
	if (j->kind == JOB_ANSWER) {
		if (j->x != NULL) {
			j->x->job = NULL;
			answer_send(j->x, j);
		}
	} else {
		a->refresh_job = NULL;
		if (j->r == 0 && !a->closing) {
			buf_reset(&a->msg);
			if (buf_append(
				&a->msg, buf_data(&j->out), j->out.len) == 0) {
				memcpy(
				    a->blob_hash, j->blob_hash, ATT_HASH_LEN);
				a->refreshed_ms = sm_now_ms();
				mesh_changed(m);
			}
		} else if (j->r != 0) {
			log_error("attest: cannot renew this node's "
				  "attestation: %s",
			    sm_strerror(j->r));
		}
	}
	job_free(j);
	if (a->refresh_again && !a->closing) {
		a->refresh_again = false;
		mesh_att_refresh(m); /* a newer key than the one just quoted */
	}
	if (!a->closing)
		job_next(m);
}

static void
job_next(struct mesh *m)
{
	struct mesh_att *a = m->att;
	struct att_job *j;

	while (a->running == NULL && (j = a->qhead) != NULL) {
		a->qhead = j->next;
		if (a->qhead == NULL)
			a->qtail = NULL;
		a->qlen--;
		j->next = NULL;
		if (j->kind == JOB_ANSWER && j->x == NULL) {
			job_free(j); /* its stream is gone: no TPM work */
			continue;
		}
		if (j->kind == JOB_ANSWER)
			memcpy(j->blob_hash, a->blob_hash, ATT_HASH_LEN);
		if (uv_queue_work(m->loop, &j->w, job_work, job_done) != 0) {
			if (j->x != NULL) {
				j->x->job = NULL;
				lstream_reset(j->x->s, LINK_H2_INTERNAL_ERROR);
			}
			job_free(j);
			continue;
		}
		a->running = j;
	}
}

void
mesh_att_refresh(struct mesh *m)
{
	struct mesh_att *a = m->att;
	struct att_job *j;

	if (a == NULL || a->prov == NULL || a->closing)
		return;
	if (a->refresh_job != NULL) {
		/* Still queued: quote the current statement instead. Running:
		 * run once more when it is done. */
		if (a->refresh_job == a->running)
			a->refresh_again = true;
		else
			self_blob(m, &a->refresh_job->b);
		return;
	}
	if ((j = job_new(m, JOB_REFRESH)) == NULL)
		return;
	self_blob(m, &j->b);
	a->refresh_job = j;
	job_push(m, j);
}

void
mesh_att_fill_announce(struct mesh *m, struct announce *a)
{
	if (m->att == NULL || m->att->msg.len == 0)
		return;
	a->attestation = buf_data(&m->att->msg);
	a->attestation_len = m->att->msg.len;
}

/* --- verifying peers ----------------------------------------------------- */

static void
verify_peer(struct mesh *m, struct peer_att *pa, const struct peer *p)
{
	struct mesh_att *a = m->att;
	struct att_policy pol = {
	    .min_level =
		ATT_LEVEL_NONE, /* the route gate applies --min-trust */
	    .trust = a->trust,
	    .pins = a->pins,
	    .allowed = (const uint8_t(*)[ATT_HASH_LEN])a->allowed,
	    .nallowed = a->nallowed,
	};
	struct infkey_pub ik = {0};
	char sid[13];

	if (p->ann.has_inference_key) {
		ik.epoch = p->ann.inference_key_epoch;
		memcpy(ik.pk, p->ann.inference_key, sizeof(ik.pk));
	}
	att_activation_clear(&pa->act);
	pa->vr = att_verify(&pol, p->ann.attestation, p->ann.attestation_len,
	    p->ann.id, &ik, &pa->v);
	pa->key_epoch = ik.epoch;
	sm_hex(sid, p->ann.id, 6);
	if (pa->vr == 0) {
		pa->verified_ms = sm_now_ms();
		pa->verified_wall = sm_wall_s();
		log_info("attest: %s verified at level %s", sid,
		    att_level_str(pa->v.level));
	} else if (pa->vr == SM_ERR_AGAIN) {
		/* A TPM key seen for the first time: prove it lives in the
		 * TPM whose EK certificate it came with (next challenge). */
		if (att_activation_new(&pa->v, &pa->act) != 0)
			pa->vr = SM_ERR_VERIFY;
		log_info("attest: %s needs credential activation", sid);
	} else {
		log_warn("attest: %s not verified: %s", sid,
		    att_reason_str(pa->v.reason));
	}
}

void
mesh_att_peer_seen(struct mesh *m, const struct peer *p)
{
	uint8_t h[ATT_HASH_LEN];
	struct peer_att *pa;

	if (m->att == NULL || p->ann.attestation == NULL)
		return;
	if ((pa = patt_find(m, p->ann.id, true)) == NULL)
		return;
	if (att_sha256(p->ann.attestation, p->ann.attestation_len, h) != 0)
		return;
	/* Verify when the message or the announced key changes, not on
	 * every copy: gossip repeats the same bytes often. */
	if (pa->known && memcmp(h, pa->msg_hash, sizeof(h)) == 0 &&
	    pa->key_epoch ==
		(p->ann.has_inference_key ? p->ann.inference_key_epoch : 0))
		return;
	if (pa->known && memcmp(h, pa->msg_hash, sizeof(h)) != 0) {
		/* A new blob: its freshness starts from nothing; challenge
		 * it now (an answer for the old blob would fail anyway). */
		att_live_reset(&pa->live);
		if (pa->chal != NULL) {
			struct lstream *old = pa->chal;

			pa->chal = NULL;
			pa->challenging = false;
			lstream_reset(old, LINK_H2_CANCEL);
		}
	}
	memcpy(pa->msg_hash, h, sizeof(h));
	pa->known = true;
	verify_peer(m, pa, p);
}

/* --- pins on disk --------------------------------------------------------- */

static void
pins_stat(struct mesh_att *a)
{
	struct stat st;

	if (stat(a->pins_path, &st) == 0) {
		a->pins_mtime = st.st_mtim;
		a->pins_ino = st.st_ino;
	} else {
		memset(&a->pins_mtime, 0, sizeof(a->pins_mtime));
		a->pins_ino = 0;
	}
}

static bool
pins_changed(const struct mesh_att *a)
{
	struct stat st;

	if (stat(a->pins_path, &st) != 0)
		return a->pins_ino != 0;
	return st.st_ino != a->pins_ino ||
	    st.st_mtim.tv_sec != a->pins_mtime.tv_sec ||
	    st.st_mtim.tv_nsec != a->pins_mtime.tv_nsec;
}

/* Re-read the pins file (edited by `sealmesh attest --forget`). */
static int
pins_reload(struct mesh_att *a)
{
	struct att_pins *np;
	int r;

	if ((r = att_pins_new(&np)) != 0)
		return r;
	if ((r = att_pins_load(np, a->pins_path)) != 0) {
		log_warn("attest: cannot reload %s: %s", a->pins_path,
		    sm_strerror(r));
		att_pins_free(np);
		return r;
	}
	att_pins_free(a->pins);
	a->pins = np;
	pins_stat(a);
	return 0;
}

/*
 * A new pin (activation succeeded for 'pa'): save under the pins lock,
 * merging with an edit made on disk since we last read the file.
 */
static void
pins_persist(struct mesh *m, struct peer_att *pa)
{
	struct mesh_att *a = m->att;
	int fd;

	if (a->pins_path[0] == '\0')
		return;
	if ((fd = att_pins_lock(a->pins_path)) < 0) {
		log_warn("attest: cannot lock %s", a->pins_path);
		return;
	}
	if (pins_changed(a) && pins_reload(a) == 0 &&
	    att_pins_add_ek(
		a->pins, pa->v.node_id, pa->v.ak_name + 2, pa->v.ek_hash) != 0)
		log_warn("attest: the pin just made conflicts with %s",
		    a->pins_path);
	if (att_pins_save(a->pins, a->pins_path) != 0)
		log_warn("attest: cannot save %s", a->pins_path);
	pins_stat(a);
	att_pins_unlock(fd);
}

/* Every tick: a pins file edited by another process is taken in. */
static void
pins_watch(struct mesh *m)
{
	struct mesh_att *a = m->att;
	int fd;

	if (a->pins_path[0] == '\0' || !pins_changed(a))
		return;
	if ((fd = att_pins_lock(a->pins_path)) < 0)
		return;
	if (pins_reload(a) == 0) {
		log_info("attest: %s changed on disk; verifying peers again",
		    a->pins_path);
		for (size_t i = 0; i < a->npeers; i++) {
			struct peer_att *pa = a->peers[i];
			struct peer *p = peers_find(&m->peers, pa->id);

			if (p != NULL && pa->known && p->ann.attestation)
				verify_peer(m, pa, p);
		}
	}
	att_pins_unlock(fd);
}

/* --- challenges ---------------------------------------------------------- */

static void
cx_free(struct chal_x *x)
{
	buf_clear(&x->in);
	free(x);
}

static void
cx_data(struct lstream *s, const uint8_t *p, size_t n, void *arg)
{
	struct chal_x *x = arg;

	if (buf_append(&x->in, p, n) != 0)
		lstream_reset(s, LINK_H2_INTERNAL_ERROR);
	else
		lstream_consume(s, n);
}

/* --- measured boot and IMA (attest/measure.h) ---------------------------- */

/* A host writes its whole answer at once: it must fit one stream queue. */
_Static_assert(ATT_ANSWER_MEAS_MAX <= LSTREAM_SEND_MAX,
    "an answer with measurements exceeds LSTREAM_SEND_MAX");

static void
meas_policy(struct mesh *m, struct att_meas_policy *pol)
{
	memset(pol, 0, sizeof(*pol));
	pol->pcr = m->att->pcr_policy;
	pol->allow = m->att->ima_allow;
	pol->require_binary = m->opts.require_measured_binary;
}

/* A verified answer: check its measurement section (or its absence). */
static void
meas_take(struct mesh *m, struct peer_att *pa,
    const uint8_t nonce[ATT_NONCE_LEN], const struct buf *in, const char *sid)
{
	struct att_meas_policy pol;
	struct att_answer ans;
	bool was = pa->meas_known && pa->meas.eligible;
	int r;

	meas_policy(m, &pol);
	if (att_answer_parse(buf_data(in), in->len, &ans) != 0)
		memset(&ans, 0, sizeof(ans));
	r = att_meas_check_inc(&pol, &pa->v, nonce, ans.meas, ans.meas_len,
	    &pa->ima_st, &pa->meas);
	/* A failed incremental check may be our base's fault: once more, in
	 * full, at the next tick. */
	pa->meas_again = pa->meas.ima_retry;
	sodium_memzero(ans.secret, sizeof(ans.secret));
	pa->meas_known = true;
	memcpy(pa->meas_blob, pa->v.blob_hash, ATT_HASH_LEN);
	if (r == 0)
		m->att->measured_ok++;
	else
		m->att->measured_refused++;
	if (r != 0 || !was)
		log_info("attest: %s measurements: %s; binary %s, secure boot "
			 "%s%s",
		    sid, pa->meas.why, att_claim_str(pa->meas.binary),
		    att_claim_str(pa->meas.secure_boot_claim),
		    r == 0 ? "" : " (not eligible)");
}

/*
 * Measurements are checked against one blob (its binary hash and boot PCR
 * digest). A new blob (refresh, restart with another binary) needs a new
 * check before they count again.
 */
static bool
meas_stale(const struct peer_att *pa)
{
	return pa->meas_known && pa->vr == 0 &&
	    memcmp(pa->meas_blob, pa->v.blob_hash, ATT_HASH_LEN) != 0;
}

/* The routing gate's measurement half (cached state only). */
static bool
meas_route_ok(struct mesh *m, const struct peer_att *pa, const char **why)
{
	struct att_meas_policy pol;

	meas_policy(m, &pol);
	if (pol.pcr == NULL && pol.allow == NULL && !pol.require_binary)
		return true;
	if (!pa->meas_known) {
		*why = "the host has sent no measurements yet";
		return false;
	}
	if (meas_stale(pa)) {
		*why = "the host's measurements are for an earlier statement";
		return false;
	}
	if (!pa->meas.eligible) {
		*why = pa->meas.why;
		return false;
	}
	return true;
}

static int
meas_load_file(const char *path, char **text, size_t *len)
{
	struct buf b;
	char chunk[4096];
	size_t n;
	FILE *f;
	int r = 0;

	*text = NULL;
	*len = 0;
	if ((f = fopen(path, "re")) == NULL) {
		log_error("attest: cannot open %s: %s", path, strerror(errno));
		return SM_ERR_IO;
	}
	buf_init(&b, 8 * 1024 * 1024);
	while (r == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		r = buf_append(&b, chunk, n);
	if (r == 0 && ferror(f))
		r = SM_ERR_IO;
	fclose(f);
	if (r == 0 && (*text = malloc(b.len + 1)) == NULL)
		r = SM_ERR_NOMEM;
	if (r == 0) {
		memcpy(*text, buf_data(&b), b.len);
		(*text)[b.len] = '\0';
		*len = b.len;
	} else
		log_error("attest: cannot read %s: %s", path, sm_strerror(r));
	buf_clear(&b);
	return r;
}

/* --pcr-policy and --ima-allowlist. */
static int
meas_init(struct mesh *m)
{
	struct mesh_att *a = m->att;
	size_t len, bad;
	char *text;
	int r;

	if (m->opts.pcr_policy != NULL) {
		if ((r = meas_load_file(m->opts.pcr_policy, &text, &len)) != 0)
			return r;
		r = att_pcr_policy_parse(text, len, &a->pcr_policy, &bad);
		free(text);
		if (r != 0) {
			log_error("attest: --pcr-policy %s: line %zu: %s",
			    m->opts.pcr_policy, bad, sm_strerror(r));
			return r;
		}
	}
	if (m->opts.ima_allowlist != NULL) {
		if ((r = meas_load_file(m->opts.ima_allowlist, &text, &len)) !=
		    0)
			return r;
		r = ima_allowlist_parse(text, len, &a->ima_allow, &bad);
		free(text);
		if (r != 0) {
			log_error("attest: --ima-allowlist %s: line %zu: %s",
			    m->opts.ima_allowlist, bad, sm_strerror(r));
			return r;
		}
	}
	if (a->prov != NULL) {
		a->prov->evlog_path = m->opts.event_log;
		a->prov->ima_path = m->opts.ima_log;
	}
	return 0;
}

static void
meas_status_peer(const struct peer_att *pa, cJSON *at)
{
	cJSON *c = cJSON_AddObjectToObject(at, "claims");
	cJSON *ms = cJSON_AddObjectToObject(at, "measurement");
	const struct att_meas_verdict *v = &pa->meas;
	bool k = pa->meas_known && !meas_stale(pa);
	/* A verified statement whose posture says a separate signer measured
	 * it (privilege separation, doc/PRIVSEP.md). */
	enum att_claim by =
	    pa->vr == 0 && pa->v.posture.measured_by == POSTURE_MEASURED_SIGNER
	    ? ATT_CLAIM_SIGNER_MEASURED
	    : ATT_CLAIM_SELF_REPORTED;
	enum att_claim bin = k && v->binary == ATT_CLAIM_KERNEL_MEASURED
	    ? ATT_CLAIM_KERNEL_MEASURED
	    : by;

	if (c == NULL || ms == NULL)
		return;
	cJSON_AddStringToObject(c, "binary", att_claim_str(bin));
	cJSON_AddStringToObject(c, "secure_boot",
	    att_claim_str(k ? v->secure_boot_claim : ATT_CLAIM_SELF_REPORTED));
	cJSON_AddStringToObject(c, "posture", att_claim_str(by));
	cJSON_AddStringToObject(c, "verdict",
	    bin == ATT_CLAIM_KERNEL_MEASURED       ? "binary kernel-measured"
		: bin == ATT_CLAIM_SIGNER_MEASURED ? "binary signer-measured"
						   : "binary self-measured");
	cJSON_AddBoolToObject(ms, "known", k);
	cJSON_AddBoolToObject(ms, "present", k && v->present);
	cJSON_AddBoolToObject(ms, "quote_ok", k && v->quote_ok);
	cJSON_AddBoolToObject(ms, "event_log_replayed", k && v->evlog_ok);
	cJSON_AddBoolToObject(ms, "ima_replayed", k && v->ima_ok);
	cJSON_AddBoolToObject(ms, "binary_in_ima", k && v->binary_in_ima);
	cJSON_AddBoolToObject(ms, "eligible", k && v->eligible);
	cJSON_AddNumberToObject(
	    ms, "event_log_events", k ? (double)v->evlog_events : 0);
	cJSON_AddNumberToObject(
	    ms, "ima_entries", k ? (double)v->ima_entries : 0);
	cJSON_AddNumberToObject(
	    ms, "ima_quoted_entries", k ? (double)v->ima_quoted : 0);
	cJSON_AddNumberToObject(ms, "ima_held_entries", (double)pa->ima_st.n);
	if (k && v->evlog_ok && v->secure_boot != TRI_UNKNOWN)
		cJSON_AddBoolToObject(
		    ms, "secure_boot", v->secure_boot == TRI_TRUE);
	else
		cJSON_AddNullToObject(ms, "secure_boot");
	if (k && v->pcr >= 0)
		cJSON_AddNumberToObject(ms, "pcr", v->pcr);
	else
		cJSON_AddNullToObject(ms, "pcr");
	cJSON_AddStringToObject(
	    ms, "reason", k ? v->why : "not challenged yet");
}

/* Verifier: the host's answer arrived. */
static void
cx_answer(struct mesh *m, struct chal_x *x)
{
	struct mesh_att *a = m->att;
	struct peer_att *pa = patt_find(m, x->id, false);
	struct peer *p = peers_find(&m->peers, x->id);
	uint8_t nonce[ATT_NONCE_LEN];
	bool activating;
	char sid[13];
	int r;

#ifdef SM_TEST_BUILD
	if (x->flood) {
		struct att_answer an;

		if (att_answer_parse(buf_data(&x->in), x->in.len, &an) ==
		    SM_ERR_UNAVAIL)
			a->busy_got++;
		else
			a->challenge_ok++;
		return;
	}
#endif
	if (pa == NULL || pa->chal != x->s)
		return; /* an answer on a stream we already gave up on */
	pa->challenging = false;
	pa->chal = NULL;
	activating = pa->live.act.pending;
	memcpy(nonce, pa->live.nonce, sizeof(nonce));
	r = att_live_answer(&pa->live, &a->cfg, &pa->v, a->pins,
	    buf_data(&x->in), x->in.len, sm_now_ms());
	sm_hex(sid, x->id, 6);
	if (r == SM_ERR_UNAVAIL) {
		a->busy_got++;
		log_info("attest: %s is busy; challenging it again later", sid);
		return;
	}
	if (r != 0) {
		a->challenge_failed++;
		log_warn("attest: challenge to %s failed: %s; not eligible "
			 "until a challenge succeeds",
		    sid, sm_strerror(r));
		return;
	}
	a->challenge_ok++;
	if (!activating)
		meas_take(m, pa, nonce, &x->in, sid);
	if (activating && p != NULL) {
		/* The AK is proven to live in that TPM and is now pinned. */
		pins_persist(m, pa);
		verify_peer(m, pa, p);
	}
}

/*
 * Take one token from 'b' (rate per second, burst): 0, or the ms until one
 * is there.
 */
static uint64_t
bucket_take(struct bucket *b, uint64_t now, uint64_t rate, uint64_t burst)
{
	if (!b->used) {
		b->used = true;
		b->at_ms = now;
		b->mtok = burst * 1000;
	}
	b->mtok += (now - b->at_ms) * rate;
	if (b->mtok > burst * 1000)
		b->mtok = burst * 1000;
	b->at_ms = now;
	if (b->mtok >= 1000) {
		b->mtok -= 1000;
		return 0;
	}
	return (1000 - b->mtok + rate - 1) / rate;
}

/*
 * Admission for a challenge from the link peer 'from' (the verifier, or the
 * relay it came through): 0 to queue it, else the retry time in ms (> 0).
 */
static struct peer_limit *
limit_find(struct mesh_att *a, const uint8_t *from, bool create)
{
	static const uint8_t none[ID_PK_LEN];
	struct peer_limit *old = &a->peers_b[0];

	if (from == NULL)
		from = none;
	for (size_t i = 0; i < PEERS_MAX; i++) {
		struct peer_limit *c = &a->peers_b[i];

		if (c->chal.used && memcmp(c->chal.id, from, ID_PK_LEN) == 0)
			return c;
		if (!c->chal.used || c->chal.at_ms < old->chal.at_ms)
			old = c;
	}
	if (!create)
		return NULL;
	memset(old, 0, sizeof(*old));
	memcpy(old->chal.id, from, ID_PK_LEN);
	return old;
}

/*
 * Admission for a challenge from the link peer 'from' (the verifier, or the
 * relay it came through): 0 to queue it, a retry time in ms (> 0) for a busy
 * answer, or -1 when even the busy budget is spent (refuse the stream).
 */
static int
admit(struct mesh *m, const uint8_t *from)
{
	struct mesh_att *a = m->att;
	struct peer_limit *b = limit_find(a, from, true);
	uint64_t now = sm_now_ms(), wait;

	if (a->qlen + (a->running != NULL) >= ATTEST_QUEUE_MAX)
		wait = 500;
	else if ((wait = bucket_take(
		      &b->chal, now, ATTEST_PEER_RATE, ATTEST_PEER_BURST)) == 0)
		wait = bucket_take(
		    &a->global, now, ATTEST_GLOBAL_RATE, ATTEST_GLOBAL_BURST);
	if (wait == 0)
		return 0;
	if (bucket_take(&b->busy, now, ATTEST_BUSY_RATE, ATTEST_BUSY_RATE) != 0)
		return -1;
	return (int)(wait < 65535 ? wait : 65535);
}

/* At stream open: is this peer past both its budgets? (no state change) */
static bool
flooding(struct mesh_att *a, const uint8_t *from)
{
	struct peer_limit *b = limit_find(a, from, false);
	uint64_t now = sm_now_ms();

	return b != NULL && b->busy.used &&
	    b->busy.mtok + (now - b->busy.at_ms) * ATTEST_BUSY_RATE < 1000 &&
	    b->chal.mtok + (now - b->chal.at_ms) * ATTEST_PEER_RATE < 1000;
}

static void
busy_send(struct chal_x *x, uint32_t retry_ms)
{
	struct buf out;
	int r;

	buf_init(&out, ATT_ANSWER_BUSY_LEN);
	if ((r = att_answer_busy_write(retry_ms, &out)) == 0 &&
	    (r = lstream_respond(x->s, 200, NULL, 0)) == 0 &&
	    (r = lstream_write(x->s, buf_data(&out), out.len)) == 0)
		r = lstream_end(x->s);
	if (r != 0)
		lstream_reset(x->s, LINK_H2_REFUSED_STREAM);
	else
		x->m->att->busy_sent++;
	buf_clear(&out);
}

/* Host, on the loop: the worker's answer goes out on its stream. */
static void
answer_send(struct chal_x *x, struct att_job *j)
{
	int r = j->r;

#ifdef SM_TEST_BUILD
	/* A byte inside the quote (tpm) or signature (software). */
	if (r == 0 && mesh_att_test_corrupt_answers && j->out.len > 72)
		buf_data(&j->out)[72] ^= 0x01;
#endif
	if (r == 0 && (r = lstream_respond(x->s, 200, NULL, 0)) == 0 &&
	    (r = lstream_write(x->s, buf_data(&j->out), j->out.len)) == 0)
		r = lstream_end(x->s);
	if (r != 0)
		lstream_reset(x->s, LINK_H2_REFUSED_STREAM);
	else
		x->m->att->answered++;
}

static void
cx_end(struct lstream *s, void *arg)
{
	struct chal_x *x = arg;
	int r;

	if (!x->server) {
		cx_answer(x->m, x);
		return;
	}
	/* Host: answer with a fresh quote over (nonce, blob hash), made on
	 * the worker; or at once, busy, beyond the limits. */
#ifdef SM_TEST_BUILD
	if (mesh_att_test_ignore_challenges)
		return; /* the verifier times out */
#endif
	if (x->m->att->prov == NULL || x->job != NULL) {
		lstream_reset(s, LINK_H2_REFUSED_STREAM);
		return;
	}
	if ((r = admit(x->m, link_peer_id(lstream_link(s)))) > 0) {
		busy_send(x, (uint32_t)r);
		return;
	}
	if (r < 0) {
		x->m->att->refused_streams++;
		lstream_reset(s, LINK_H2_REFUSED_STREAM);
		return;
	}
	{
		struct att_job *j = job_new(x->m, JOB_ANSWER);

		if (j == NULL ||
		    buf_append(&j->in, buf_data(&x->in), x->in.len) != 0) {
			if (j != NULL)
				job_free(j);
			lstream_reset(s, LINK_H2_INTERNAL_ERROR);
			return;
		}
		j->x = x;
		x->job = j;
		job_push(x->m, j);
	}
}

static void
cx_close(struct lstream *s, int err, uint32_t h2, void *arg)
{
	struct chal_x *x = arg;
	struct peer_att *pa;

	if (x->job != NULL)
		x->job->x = NULL; /* skipped, or its answer dropped */
#ifdef SM_TEST_BUILD
	if (x->flood && x->m->att->flood_open > 0)
		x->m->att->flood_open--;
#endif
	/* No answer: att_live_tick counts it once the deadline passes. */
	if (!x->server && (pa = patt_find(x->m, x->id, false)) != NULL &&
	    pa->chal == s) {
		pa->challenging = false;
		pa->chal = NULL;
	}
	cx_free(x);
}

static const struct lstream_cb cx_cb = {
    .on_data = cx_data,
    .on_end = cx_end,
    .on_close = cx_close,
};

int
mesh_att_on_stream(struct mesh *m, struct lstream *s)
{
	struct chal_x *x;

	if (m->att == NULL)
		return SM_ERR_UNAVAIL;
	if (flooding(m->att, link_peer_id(lstream_link(s)))) {
		m->att->refused_streams++;
		return SM_ERR_UNAVAIL; /* RST_STREAM before any work */
	}
	if ((x = calloc(1, sizeof(*x))) == NULL)
		return SM_ERR_UNAVAIL;
	x->m = m;
	x->s = s;
	x->server = true;
	buf_init(&x->in, ATT_CHAL_MAX);
	lstream_set_cb(s, &cx_cb, x);
	return 0;
}

static void
challenge(struct mesh *m, struct peer_att *pa)
{
	struct chal_x *x;
	struct lstream *s;
	struct buf out;

	if ((x = calloc(1, sizeof(*x))) == NULL)
		return;
	x->m = m;
	memcpy(x->id, pa->id, ID_PK_LEN);
	buf_init(&x->in, ATT_ANSWER_MEAS_MAX);
	buf_init(&out, ATT_CHAL_MAX);
	if (att_live_challenge(&pa->live, sm_now_ms(),
		pa->act.pending ? &pa->act : NULL, &out) != 0 ||
	    (pa->v.provider == ATT_PROV_TPM && pa->vr == 0 &&
		att_chal_add_measure(
		    &out, att_ima_state_from(&pa->ima_st, &pa->v)) != 0) ||
	    tunnel_open_stream(m, pa->id, ATTEST_PATH, &cx_cb, x, &x->s) != 0) {
		buf_clear(&out);
		cx_free(x);
		return;
	}
	s = x->s;
	pa->challenging = true;
	pa->chal = s;
	if (lstream_write(s, buf_data(&out), out.len) != 0 ||
	    lstream_end(s) != 0)
		lstream_reset(s, LINK_H2_INTERNAL_ERROR);
	m->att->challenges++;
	buf_clear(&out);
}

/* Every second: challenge who is due, count missed deadlines, refresh. */
static void
att_tick(uv_timer_t *t)
{
	struct mesh *m = t->data;
	struct mesh_att *a = m->att;
	uint64_t now = sm_now_ms();

	for (size_t i = 0; i < a->npeers; i++) {
		struct peer_att *pa = a->peers[i];
		struct peer *p = peers_find(&m->peers, pa->id);

		att_live_tick(&pa->live, &a->cfg, now);
		/* Past the deadline, the missed answer was counted: give up on
		 * that stream so the next challenge can go out. */
		if (pa->challenging && !pa->live.outstanding && pa->chal) {
			struct lstream *old = pa->chal;

			pa->chal = NULL;
			pa->challenging = false;
			lstream_reset(old, LINK_H2_CANCEL);
		}
		if (p == NULL || p->state != PEER_ALIVE || pa->challenging ||
		    (pa->vr != 0 && !pa->act.pending))
			continue;
		if (pa->act.pending || att_live_due(&pa->live, &a->cfg, now) ||
		    meas_stale(pa) || pa->meas_again)
			challenge(m, pa);
	}
	if (a->prov != NULL && now - a->refreshed_ms >= ATTEST_REFRESH_MS)
		mesh_att_refresh(m);
	pins_watch(m);
}

/* Loop lag: how late a 50 ms timer fires; max per second, last 10 s. */
static void
lag_tick(uv_timer_t *t)
{
	struct mesh *m = t->data;
	struct mesh_att *a = m->att;
	uint64_t now = sm_now_ms(), sec = now / 1000, lag;

	lag = now > a->lag_due_ms ? now - a->lag_due_ms : 0;
	if (sec != a->lag_sec) {
		for (uint64_t s = a->lag_sec + 1;
		     s <= sec && s - a->lag_sec <= 10; s++)
			a->lag_max_ms[s % 10] = 0;
		a->lag_sec = sec;
	}
	if (lag > a->lag_max_ms[sec % 10])
		a->lag_max_ms[sec % 10] = lag;
	a->lag_due_ms = now + ATTEST_LAG_MS;
}

static uint64_t
lag_max(const struct mesh_att *a)
{
	uint64_t mx = 0;

	for (size_t i = 0; i < 10; i++)
		if (a->lag_max_ms[i] > mx)
			mx = a->lag_max_ms[i];
	return mx;
}

#ifdef SM_TEST_BUILD
/*
 * Test builds, --test-challenge-flood N: keep N raw challenges (fresh nonce,
 * no bookkeeping) open to every peer that sent an attestation, re-opened as
 * soon as they end: a member challenging as fast as it can.
 */
static void
flood_tick(uv_timer_t *t)
{
	struct mesh *m = t->data;
	struct mesh_att *a = m->att;

	for (size_t i = 0; i < a->npeers; i++) {
		struct peer_att *pa = a->peers[i];
		struct peer *p = peers_find(&m->peers, pa->id);

		if (p == NULL || p->state != PEER_ALIVE || !pa->known)
			continue;
		while (a->flood_open < mesh_att_test_flood) {
			struct att_chal c;
			struct chal_x *x;
			struct buf out;

			memset(&c, 0, sizeof(c));
			randombytes_buf(c.nonce, sizeof(c.nonce));
			if ((x = calloc(1, sizeof(*x))) == NULL)
				return;
			x->m = m;
			x->flood = true;
			memcpy(x->id, pa->id, ID_PK_LEN);
			buf_init(&x->in, ATT_ANSWER_MEAS_MAX);
			buf_init(&out, ATT_CHAL_MAX);
			if (att_chal_write(&c, &out) != 0 ||
			    tunnel_open_stream(m, pa->id, ATTEST_PATH, &cx_cb,
				x, &x->s) != 0) {
				buf_clear(&out);
				cx_free(x);
				return;
			}
			a->flood_open++;
			a->challenges++;
			if (lstream_write(x->s, buf_data(&out), out.len) != 0 ||
			    lstream_end(x->s) != 0)
				lstream_reset(x->s, LINK_H2_INTERNAL_ERROR);
			buf_clear(&out);
		}
	}
}
#endif

int
mesh_att_challenge_now(struct mesh *m, const char *hex)
{
	uint8_t id[ID_PK_LEN];
	struct peer_att *pa;

	if (m->att == NULL || sm_unhex(id, ID_PK_LEN, hex) != 0 ||
	    (pa = patt_find(m, id, false)) == NULL)
		return SM_ERR_NOTFOUND;
	if (pa->challenging || (pa->vr != 0 && !pa->act.pending))
		return SM_ERR_UNAVAIL;
	challenge(m, pa);
	return pa->challenging ? 0 : SM_ERR_UNAVAIL;
}

/* --- policy -------------------------------------------------------------- */

bool
mesh_att_route_ok(struct mesh *m, const struct peer *p, const char **why)
{
	struct mesh_att *a = m->att;
	struct peer_att *pa;
	struct infkey_pub sealed = {0};

	*why = NULL;
	if (!m->opts.require_attested)
		return true;
	if (a == NULL || !p->ann.has_inference_key) {
		*why = "the host has no inference key to attest";
		return false;
	}
	if ((pa = patt_find(m, p->ann.id, false)) == NULL || !pa->known) {
		*why = "the host sent no attestation";
		return false;
	}
	if (pa->vr != 0) {
		*why = pa->vr == SM_ERR_AGAIN
		    ? "the host's TPM key is not activated yet"
		    : att_reason_str(pa->v.reason);
		return false;
	}
	sealed.epoch = p->ann.inference_key_epoch;
	memcpy(sealed.pk, p->ann.inference_key, sizeof(sealed.pk));
	if (!att_route_ok(&pa->v, &pa->live, &a->cfg, m->opts.min_trust,
		&sealed, sm_now_ms())) {
		*why = pa->v.level < (enum att_level)m->opts.min_trust
		    ? "the host's attestation is below --min-trust"
		    : pa->live.revoked
		    ? "the host failed its last attestation challenge"
		    : !att_live_attested(&pa->live, &a->cfg, sm_now_ms())
		    ? "the host's attestation is not fresh (challenge)"
		    : "the host's attestation is for another key or binary";
		return false;
	}
	return meas_route_ok(m, pa, why);
}

/* --- setup and status ---------------------------------------------------- */

int
mesh_att_provider_open(const struct mesh_opts *o, struct att_provider **out)
{
	enum att_provider_kind kind;
	const char *tcti = NULL;
	int r;

	*out = NULL;
	if ((r = att_provider_choose(o->attest, o->tpm_tcti, &kind, &tcti)) !=
	    0) {
		log_error("attest: --attest must be none, software or tpm");
		return r;
	}
	if (kind == ATT_PROV_SOFTWARE)
		r = att_software_new(out);
	else if (kind == ATT_PROV_TPM) {
		struct att_tpm_opts to = {.tcti = tcti};
		char akp[4096];

		if (o->state_dir != NULL) {
			snprintf(akp, sizeof(akp), "%s/%s", o->state_dir,
			    ATT_AK_FILE);
			to.ak_path = akp;
		}
		r = att_tpm_open_opts(&to, out);
	}
	if (r != 0) {
		log_error("attest: cannot open the %s provider (%s)",
		    att_provider_str(kind), tcti ? tcti : "-");
		return r;
	}
	if (*out != NULL) {
		(*out)->evlog_path = o->event_log;
		(*out)->ima_path = o->ima_log;
	}
	return 0;
}

int
mesh_att_init(struct mesh *m)
{
	struct mesh_att *a;
	int r;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return SM_ERR_NOMEM;
	m->att = a;
	buf_init(&a->msg, 16 * 1024);
	att_live_cfg_default(&a->cfg);
	if (m->opts.challenge_interval_ms)
		a->cfg.interval_ms = m->opts.challenge_interval_ms;
	if (m->opts.attest_window_ms)
		a->cfg.window_ms = m->opts.attest_window_ms;
	if (a->cfg.timeout_ms > a->cfg.interval_ms)
		a->cfg.timeout_ms = a->cfg.interval_ms;
	if ((r = att_pins_new(&a->pins)) != 0)
		return r;
	if (m->opts.state_dir != NULL) {
		snprintf(a->pins_path, sizeof(a->pins_path), "%s/%s",
		    m->opts.state_dir, ATTEST_PINS_FILE);
		if ((r = att_pins_load(a->pins, a->pins_path)) != 0 &&
		    r != SM_ERR_NOTFOUND) {
			log_error("attest: cannot load %s: %s", a->pins_path,
			    sm_strerror(r));
			return r;
		}
		pins_stat(a);
	}
	if (m->opts.tpm_ca != NULL &&
	    (r = att_trust_load_dir(m->opts.tpm_ca, &a->trust)) != 0) {
		log_error("attest: cannot load EK CA certificates from %s",
		    m->opts.tpm_ca);
		return r;
	}
	if (m->opts.tpm_crl != NULL) {
		if (a->trust == NULL) {
			log_error("attest: --tpm-crl needs --tpm-ca");
			return SM_ERR_INVAL;
		}
		if ((r = att_trust_load_crls(a->trust, m->opts.tpm_crl)) != 0) {
			log_error("attest: cannot load CRLs from %s: %s",
			    m->opts.tpm_crl, sm_strerror(r));
			return r;
		}
	}
	if (m->opts.allowed_binaries != NULL &&
	    (r = att_allowed_load(
		 m->opts.allowed_binaries, &a->allowed, &a->nallowed)) != 0) {
		log_error("attest: cannot read %s", m->opts.allowed_binaries);
		return r;
	}
	if (m->opts.signer != NULL) {
		/* Privilege separation: the provider lives in the signer. */
		if (m->opts.signer_hello->kind != ATT_PROV_NONE &&
		    (r = signer_provider_new(
			 m->opts.signer, m->opts.signer_hello, &a->prov)) != 0)
			return r;
	} else if ((r = mesh_att_provider_open(&m->opts, &a->prov)) != 0)
		return r;
	if ((r = meas_init(m)) != 0)
		return r;
	if ((r = attest_self(m)) != 0)
		return r;
	uv_timer_init(m->loop, &a->timer);
	a->timer.data = m;
	uv_timer_start(&a->timer, att_tick, ATTEST_TICK_MS, ATTEST_TICK_MS);
	uv_timer_init(m->loop, &a->lag);
	a->lag.data = m;
	a->lag_due_ms = sm_now_ms() + ATTEST_LAG_MS;
	uv_timer_start(&a->lag, lag_tick, ATTEST_LAG_MS, ATTEST_LAG_MS);
#ifdef SM_TEST_BUILD
	uv_timer_init(m->loop, &a->flood);
	a->flood.data = m;
	if (mesh_att_test_flood > 0)
		uv_timer_start(&a->flood, flood_tick, 5, 5);
#endif
	return 0;
}

void
mesh_att_close(struct mesh *m)
{
	struct mesh_att *a = m->att;
	struct att_job *j;

	if (a == NULL || uv_is_closing((uv_handle_t *)&a->timer))
		return;
	a->closing = true;
	uv_close((uv_handle_t *)&a->timer, NULL);
	uv_close((uv_handle_t *)&a->lag, NULL);
#ifdef SM_TEST_BUILD
	uv_close((uv_handle_t *)&a->flood, NULL);
#endif
	/* Queued jobs never run; a running one finishes on the pool and its
	 * job_done only frees it (no stream is touched after close). */
	while ((j = a->qhead) != NULL) {
		a->qhead = j->next;
		if (j->x != NULL)
			j->x->job = NULL;
		if (j == a->refresh_job)
			a->refresh_job = NULL;
		job_free(j);
	}
	a->qtail = NULL;
	a->qlen = 0;
	if (a->running != NULL && a->running->x != NULL) {
		a->running->x->job = NULL;
		a->running->x = NULL;
	}
}

static const char *
status_name(const struct peer_att *pa)
{
	if (pa == NULL || !pa->known)
		return "none";
	if (pa->vr == 0)
		return "verified";
	if (pa->vr == SM_ERR_AGAIN)
		return "activating";
	return "failed";
}

void
mesh_att_status_self(struct mesh *m, cJSON *st)
{
	struct mesh_att *a = m->att;
	char hex[ATT_HASH_LEN * 2 + 1];
	cJSON *o = cJSON_AddObjectToObject(st, "attestation");

	if (o == NULL)
		return;
	cJSON_AddStringToObject(o, "provider",
	    a->prov == NULL ? "none" : att_provider_str(a->prov->kind));
	if (a->msg.len > 0) {
		sm_hex(hex, a->blob_hash, ATT_HASH_LEN);
		cJSON_AddStringToObject(o, "blob_hash", hex);
	}
	cJSON_AddBoolToObject(
	    o, "require_attested_hosts", m->opts.require_attested);
	cJSON_AddStringToObject(
	    o, "min_trust", att_level_str(m->opts.min_trust));
	cJSON_AddBoolToObject(
	    o, "require_measured_binary", m->opts.require_measured_binary);
	cJSON_AddBoolToObject(o, "pcr_policy", a->pcr_policy != NULL);
	cJSON_AddNumberToObject(o, "ima_allowlist_entries",
	    (double)ima_allowlist_count(a->ima_allow));
	if (a->prov != NULL && a->prov->ops->measure != NULL) {
		/* What this host can send when a verifier asks. */
		const char *ev =
		    a->prov->evlog_path ? a->prov->evlog_path : ATT_EVLOG_PATH;
		const char *ima =
		    a->prov->ima_path ? a->prov->ima_path : ATT_IMA_PATH;

		cJSON_AddStringToObject(o, "event_log", ev);
		cJSON_AddBoolToObject(
		    o, "event_log_readable", access(ev, R_OK) == 0);
		cJSON_AddStringToObject(o, "ima_log", ima);
		cJSON_AddBoolToObject(
		    o, "ima_log_readable", access(ima, R_OK) == 0);
	}
}

void
mesh_att_status_peer(struct mesh *m, const struct peer *p, cJSON *o)
{
	struct mesh_att *a = m->att;
	struct peer_att *pa = a ? patt_find(m, p->ann.id, false) : NULL;
	cJSON *at = cJSON_AddObjectToObject(o, "attestation");
	uint64_t now = sm_now_ms();
	const char *why;

	if (at == NULL)
		return;
	cJSON_AddStringToObject(at, "status", status_name(pa));
	cJSON_AddStringToObject(at, "level",
	    pa && pa->vr == 0 ? att_level_str(pa->v.level) : "none");
	if (pa != NULL && pa->vr == 0)
		cJSON_AddNumberToObject(
		    at, "verified_at", (double)pa->verified_wall);
	else
		cJSON_AddNullToObject(at, "verified_at");
	if (pa != NULL && pa->vr == 0)
		cJSON_AddNumberToObject(at, "verified_age_s",
		    (double)(now - pa->verified_ms) / 1000.0);
	else
		cJSON_AddNullToObject(at, "verified_age_s");
	if (pa != NULL && pa->live.ever_ok)
		cJSON_AddNumberToObject(at, "challenged_age_s",
		    (double)(now - pa->live.last_ok_ms) / 1000.0);
	else
		cJSON_AddNullToObject(at, "challenged_age_s");
	cJSON_AddBoolToObject(at, "fresh",
	    pa != NULL && att_live_attested(&pa->live, &a->cfg, now));
	cJSON_AddStringToObject(at, "reason",
	    pa == NULL                   ? "no attestation"
		: pa->vr == SM_ERR_AGAIN ? "awaiting credential activation"
		: pa->vr == 0 && pa->live.revoked
		? "last challenge failed"
		: att_reason_str(pa->v.reason));
	cJSON_AddBoolToObject(
	    at, "challenge_failed", pa != NULL && pa->live.revoked);
	cJSON_AddBoolToObject(at, "eligible", mesh_att_route_ok(m, p, &why));
	if (pa != NULL)
		meas_status_peer(pa, at);
	/* Attested posture wins over the self-reported one (field 37). */
	if (pa != NULL && pa->vr == 0) {
		bool self = false;
		const char *pwhy = NULL;
		cJSON *pj = posture_to_json(&pa->v.posture);

		if (pj != NULL &&
		    !cJSON_ReplaceItemInObjectCaseSensitive(o, "posture", pj))
			cJSON_Delete(pj);
		(void)mesh_att_peer_hardened(m, p, &self, &pwhy);
		cJSON_AddStringToObject(o, "posture_source", "attested");
		cJSON_AddBoolToObject(at, "posture_disagrees", pwhy != NULL);
	} else {
		cJSON_AddStringToObject(o, "posture_source", "self-reported");
	}
}

bool
mesh_att_peer_hardened(
    struct mesh *m, const struct peer *p, bool *self_hardened, const char **why)
{
	struct mesh_att *a = m->att;
	struct peer_att *pa;
	struct posture ps;
	bool attested;

	*why = NULL;
	*self_hardened = p->ann.posture != NULL &&
	    posture_parse(p->ann.posture, p->ann.posture_len, &ps) == 0 &&
	    posture_is_hardened(&ps);
	if (a == NULL || (pa = patt_find(m, p->ann.id, false)) == NULL ||
	    !pa->known || pa->vr != 0)
		return *self_hardened;
	attested = posture_is_hardened(&pa->v.posture);
	if (attested != *self_hardened)
		*why = "the host's self-reported posture disagrees with its "
		       "attested posture";
	return attested;
}

int
mesh_att_metrics(struct mesh *m, struct buf *out)
{
	struct mesh_att *a = m->att;
	size_t verified = 0, fresh = 0;
	uint64_t now = sm_now_ms();

	for (size_t i = 0; i < a->npeers; i++) {
		verified += a->peers[i]->vr == 0;
		fresh += a->peers[i]->vr == 0 &&
		    att_live_attested(&a->peers[i]->live, &a->cfg, now);
	}
	return buf_appendf(out,
	    "# HELP sealmesh_attest_verified_peers Peers whose attestation "
	    "verified.\n"
	    "# TYPE sealmesh_attest_verified_peers gauge\n"
	    "sealmesh_attest_verified_peers %zu\n"
	    "# HELP sealmesh_attest_fresh_peers Verified peers with a fresh "
	    "challenge.\n"
	    "# TYPE sealmesh_attest_fresh_peers gauge\n"
	    "sealmesh_attest_fresh_peers %zu\n"
	    "# HELP sealmesh_attest_challenges_total Challenges sent.\n"
	    "# TYPE sealmesh_attest_challenges_total counter\n"
	    "sealmesh_attest_challenges_total %llu\n"
	    "# HELP sealmesh_attest_challenge_ok_total Answers that verified.\n"
	    "# TYPE sealmesh_attest_challenge_ok_total counter\n"
	    "sealmesh_attest_challenge_ok_total %llu\n"
	    "# HELP sealmesh_attest_challenge_failed_total Answers refused.\n"
	    "# TYPE sealmesh_attest_challenge_failed_total counter\n"
	    "sealmesh_attest_challenge_failed_total %llu\n"
	    "# HELP sealmesh_attest_answered_total Challenges this node "
	    "answered.\n"
	    "# TYPE sealmesh_attest_answered_total counter\n"
	    "sealmesh_attest_answered_total %llu\n"
	    "# HELP sealmesh_attest_busy_sent_total Challenges answered busy "
	    "(rate limit or full TPM queue).\n"
	    "# TYPE sealmesh_attest_busy_sent_total counter\n"
	    "sealmesh_attest_busy_sent_total %llu\n"
	    "# HELP sealmesh_attest_busy_received_total Busy answers "
	    "received.\n"
	    "# TYPE sealmesh_attest_busy_received_total counter\n"
	    "sealmesh_attest_busy_received_total %llu\n"
	    "# HELP sealmesh_attest_refused_streams_total Challenge streams "
	    "refused at open (peer past its busy budget).\n"
	    "# TYPE sealmesh_attest_refused_streams_total counter\n"
	    "sealmesh_attest_refused_streams_total %llu\n"
	    "# HELP sealmesh_attest_tpm_queue TPM jobs queued or running.\n"
	    "# TYPE sealmesh_attest_tpm_queue gauge\n"
	    "sealmesh_attest_tpm_queue %zu\n"
	    "# HELP sealmesh_loop_lag_max_ms Largest event loop delay seen "
	    "in the last 10 s (50 ms probe).\n"
	    "# TYPE sealmesh_loop_lag_max_ms gauge\n"
	    "sealmesh_loop_lag_max_ms %llu\n",
	    verified, fresh, (unsigned long long)a->challenges,
	    (unsigned long long)a->challenge_ok,
	    (unsigned long long)a->challenge_failed,
	    (unsigned long long)a->answered, (unsigned long long)a->busy_sent,
	    (unsigned long long)a->busy_got,
	    (unsigned long long)a->refused_streams,
	    a->qlen + (a->running != NULL), (unsigned long long)lag_max(a));
}
