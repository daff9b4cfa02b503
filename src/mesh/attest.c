#include <errno.h>
#include <stdio.h>
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

#ifdef SM_TEST_BUILD
bool mesh_att_test_ignore_challenges;
#endif

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

static int
attest_self(struct mesh *m)
{
	struct mesh_att *a = m->att;
	struct infkey_pub ik = {0};
	struct att_blob b;
	int r;

	if (a->prov == NULL)
		return 0;
	(void)tunnel_current_key(m, &ik); /* no key (--no-e2e): epoch 0 */
	att_blob_init(&b, m->id->pk, &ik, harden_posture());
	att_platform_probe(&b);
	buf_reset(&a->msg);
	if ((r = att_attest(a->prov, &b, &a->msg, a->blob_hash)) != 0) {
		log_error("attest: cannot make this node's attestation: %s",
		    sm_strerror(r));
		return r;
	}
	a->refreshed_ms = sm_now_ms();
	return 0;
}

void
mesh_att_refresh(struct mesh *m)
{
	if (m->att != NULL && m->att->prov != NULL && attest_self(m) == 0)
		mesh_changed(m);
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
	memcpy(pa->msg_hash, h, sizeof(h));
	pa->known = true;
	verify_peer(m, pa, p);
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

	if (c == NULL || ms == NULL)
		return;
	cJSON_AddStringToObject(c, "binary",
	    att_claim_str(k ? v->binary : ATT_CLAIM_SELF_REPORTED));
	cJSON_AddStringToObject(c, "secure_boot",
	    att_claim_str(k ? v->secure_boot_claim : ATT_CLAIM_SELF_REPORTED));
	cJSON_AddStringToObject(
	    c, "posture", att_claim_str(ATT_CLAIM_SELF_REPORTED));
	cJSON_AddStringToObject(c, "verdict",
	    k && v->binary == ATT_CLAIM_KERNEL_MEASURED
		? "binary kernel-measured"
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

	if (pa == NULL || pa->chal != x->s)
		return; /* an answer on a stream we already gave up on */
	pa->challenging = false;
	pa->chal = NULL;
	activating = pa->live.act.pending;
	memcpy(nonce, pa->live.nonce, sizeof(nonce));
	r = att_live_answer(&pa->live, &a->cfg, &pa->v, a->pins,
	    buf_data(&x->in), x->in.len, sm_now_ms());
	sm_hex(sid, x->id, 6);
	if (r != 0) {
		a->challenge_failed++;
		log_warn(
		    "attest: challenge to %s failed: %s", sid, sm_strerror(r));
		return;
	}
	a->challenge_ok++;
	if (!activating)
		meas_take(m, pa, nonce, &x->in, sid);
	if (activating && p != NULL) {
		/* The AK is proven to live in that TPM and is now pinned. */
		if (a->pins_path[0] != '\0' &&
		    att_pins_save(a->pins, a->pins_path) != 0)
			log_warn("attest: cannot save pins");
		verify_peer(m, pa, p);
	}
}

static void
cx_end(struct lstream *s, void *arg)
{
	struct chal_x *x = arg;
	struct buf out;
	int r;

	if (!x->server) {
		cx_answer(x->m, x);
		return;
	}
	/* Host: answer with a fresh quote over (nonce, blob hash). */
	buf_init(&out, ATT_ANSWER_MEAS_MAX);
#ifdef SM_TEST_BUILD
	if (mesh_att_test_ignore_challenges) {
		buf_clear(&out);
		return; /* the verifier times out */
	}
#endif
	r = x->m->att->prov == NULL
	    ? SM_ERR_UNSUPP
	    : att_answer_make(x->m->att->prov, buf_data(&x->in), x->in.len,
		  x->m->att->blob_hash, &out);
	if (r == 0 && (r = lstream_respond(s, 200, NULL, 0)) == 0 &&
	    (r = lstream_write(s, buf_data(&out), out.len)) == 0)
		r = lstream_end(s);
	if (r != 0)
		lstream_reset(s, LINK_H2_REFUSED_STREAM);
	else
		x->m->att->answered++;
	buf_clear(&out);
}

static void
cx_close(struct lstream *s, int err, uint32_t h2, void *arg)
{
	struct chal_x *x = arg;
	struct peer_att *pa;

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

	if (m->att == NULL || (x = calloc(1, sizeof(*x))) == NULL)
		return SM_ERR_UNAVAIL;
	x->m = m;
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
}

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
		    : !att_live_attested(&pa->live, &a->cfg, sm_now_ms())
		    ? "the host's attestation is not fresh (challenge)"
		    : "the host's attestation is for another key or binary";
		return false;
	}
	return meas_route_ok(m, pa, why);
}

/* --- setup and status ---------------------------------------------------- */

int
mesh_att_init(struct mesh *m)
{
	struct mesh_att *a;
	enum att_provider_kind kind;
	const char *tcti = NULL;
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
	}
	if (m->opts.tpm_ca != NULL &&
	    (r = att_trust_load_dir(m->opts.tpm_ca, &a->trust)) != 0) {
		log_error("attest: cannot load EK CA certificates from %s",
		    m->opts.tpm_ca);
		return r;
	}
	if (m->opts.allowed_binaries != NULL &&
	    (r = att_allowed_load(
		 m->opts.allowed_binaries, &a->allowed, &a->nallowed)) != 0) {
		log_error("attest: cannot read %s", m->opts.allowed_binaries);
		return r;
	}
	if ((r = att_provider_choose(
		 m->opts.attest, m->opts.tpm_tcti, &kind, &tcti)) != 0) {
		log_error("attest: --attest must be none, software or tpm");
		return r;
	}
	if (kind == ATT_PROV_SOFTWARE)
		r = att_software_new(&a->prov);
	else if (kind == ATT_PROV_TPM)
		r = att_tpm_open(tcti, &a->prov);
	if (r != 0) {
		log_error("attest: cannot open the %s provider (%s)",
		    att_provider_str(kind), tcti ? tcti : "-");
		return r;
	}
	if ((r = meas_init(m)) != 0)
		return r;
	if ((r = attest_self(m)) != 0)
		return r;
	uv_timer_init(m->loop, &a->timer);
	a->timer.data = m;
	uv_timer_start(&a->timer, att_tick, ATTEST_TICK_MS, ATTEST_TICK_MS);
	return 0;
}

void
mesh_att_close(struct mesh *m)
{
	if (m->att != NULL && !uv_is_closing((uv_handle_t *)&m->att->timer))
		uv_close((uv_handle_t *)&m->att->timer, NULL);
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
					 : att_reason_str(pa->v.reason));
	cJSON_AddBoolToObject(at, "eligible", mesh_att_route_ok(m, p, &why));
	if (pa != NULL)
		meas_status_peer(pa, at);
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
	    "sealmesh_attest_answered_total %llu\n",
	    verified, fresh, (unsigned long long)a->challenges,
	    (unsigned long long)a->challenge_ok,
	    (unsigned long long)a->challenge_failed,
	    (unsigned long long)a->answered);
}
