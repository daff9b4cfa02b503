/* Challenge and answer messages; verifier liveness bookkeeping. */
#include <string.h>

#include <openssl/rand.h>
#include <sodium.h>

#include "core/rd.h"
#include "attest/challenge.h"
#include "attest/ec.h"
#include "attest/quote.h"

void
att_chal_signed_bytes(const uint8_t nonce[ATT_NONCE_LEN],
    const uint8_t blob_hash[ATT_HASH_LEN], uint8_t out[ATT_CHAL_SIGNED_LEN])
{
	memcpy(out, ATT_CHAL_DOMAIN, ATT_CHAL_DOMAIN_LEN);
	memcpy(out + ATT_CHAL_DOMAIN_LEN, nonce, ATT_NONCE_LEN);
	memcpy(
	    out + ATT_CHAL_DOMAIN_LEN + ATT_NONCE_LEN, blob_hash, ATT_HASH_LEN);
}

static int
put16(struct buf *b, size_t v)
{
	uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	return buf_append(b, x, 2);
}

int
att_chal_write(const struct att_chal *c, struct buf *out)
{
	uint8_t fmt = ATT_CHAL_FORMAT;
	int r;

	if (c->cred_len > ATT_CRED_MAX || c->seed_len > ATT_SEED_MAX ||
	    (c->cred_len == 0) != (c->seed_len == 0))
		return SM_ERR_INVAL;
	if ((r = buf_append(out, &fmt, 1)) != 0 ||
	    (r = buf_append(out, c->nonce, ATT_NONCE_LEN)) != 0 ||
	    (r = put16(out, c->cred_len)) != 0 ||
	    (c->cred_len && (r = buf_append(out, c->cred, c->cred_len)) != 0) ||
	    (r = put16(out, c->seed_len)) != 0 ||
	    (c->seed_len && (r = buf_append(out, c->seed, c->seed_len)) != 0) ||
	    (c->flags && (r = buf_append(out, &c->flags, 1)) != 0))
		return r;
	if ((c->flags & ATT_CHAL_IMA_FROM) != 0) {
		uint8_t x[4] = {(uint8_t)(c->ima_from >> 24),
		    (uint8_t)(c->ima_from >> 16), (uint8_t)(c->ima_from >> 8),
		    (uint8_t)c->ima_from};

		if (c->ima_from == 0)
			return SM_ERR_INVAL;
		return buf_append(out, x, 4);
	}
	return 0;
}

int
att_chal_add_measure(struct buf *chal, uint32_t ima_from)
{
	uint8_t x[5] = {ATT_CHAL_WANT_MEASURE, (uint8_t)(ima_from >> 24),
	    (uint8_t)(ima_from >> 16), (uint8_t)(ima_from >> 8),
	    (uint8_t)ima_from};

	if (ima_from == 0)
		return buf_append(chal, x, 1);
	x[0] |= ATT_CHAL_IMA_FROM;
	return buf_append(chal, x, 5);
}

int
att_chal_parse(const uint8_t *in, size_t len, struct att_chal *out)
{
	struct rd rd = {in, len, 0, false};
	struct att_chal c;
	const uint8_t *p;

	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	if (len > ATT_CHAL_MAX)
		return SM_ERR_TOOBIG;
	if (len < 1)
		return SM_ERR_INVAL;
	if (rd_be(&rd, 1) != ATT_CHAL_FORMAT)
		return SM_ERR_UNSUPP;
	if ((p = rd_take(&rd, ATT_NONCE_LEN)) == NULL)
		return SM_ERR_INVAL;
	memcpy(c.nonce, p, ATT_NONCE_LEN);
	c.cred = rd_lv16(&rd, ATT_CRED_MAX, &c.cred_len);
	c.seed = rd_lv16(&rd, ATT_SEED_MAX, &c.seed_len);
	if (!rd.bad && rd.off < len) {
		/* Optional flags (and IMA offset), attest/measure.h. */
		c.flags = (uint8_t)rd_be(&rd, 1);
		if (c.flags & ATT_CHAL_IMA_FROM)
			c.ima_from = (uint32_t)rd_be(&rd, 4);
		if (c.flags == 0 ||
		    (c.flags & ~(ATT_CHAL_WANT_MEASURE | ATT_CHAL_IMA_FROM)) ||
		    ((c.flags & ATT_CHAL_IMA_FROM) &&
			(c.ima_from == 0 ||
			    !(c.flags & ATT_CHAL_WANT_MEASURE))))
			return SM_ERR_INVAL; /* one encoding */
	}
	if (rd.bad || rd.off != len || (c.cred_len == 0) != (c.seed_len == 0))
		return SM_ERR_INVAL;
	if (c.cred_len == 0)
		c.cred = c.seed = NULL;
	*out = c;
	return 0;
}

/* u32 meas_len | meas (attest/measure.h) after the answer's fields. */
static int
answer_measure(struct att_provider *p, const uint8_t nonce[ATT_NONCE_LEN],
    const uint8_t blob_hash[ATT_HASH_LEN], uint32_t ima_from, struct buf *out)
{
	uint8_t x[4];
	struct buf m;
	int r;

	buf_init(&m, ATT_MEAS_MAX);
	if ((r = p->ops->measure(p, nonce, blob_hash, ima_from, &m)) != 0)
		goto out;
	x[0] = (uint8_t)(m.len >> 24);
	x[1] = (uint8_t)(m.len >> 16);
	x[2] = (uint8_t)(m.len >> 8);
	x[3] = (uint8_t)m.len;
	if ((r = buf_append(out, x, 4)) != 0 ||
	    (r = buf_append(out, buf_data(&m), m.len)) != 0)
		goto out;
	r = 0;
out:
	buf_clear(&m);
	return r;
}

int
att_answer_make(struct att_provider *p, const uint8_t *chal, size_t len,
    const uint8_t blob_hash[ATT_HASH_LEN], struct buf *out)
{
	struct att_chal c;
	struct buf ev;
	uint8_t secret[ATT_SECRET_LEN],
	    hdr[1 + ATT_NONCE_LEN + ATT_HASH_LEN + 1];
	uint8_t act_len = 0;
	int r;

	buf_init(&ev, ATT_ANSWER_MAX);
	memset(secret, 0, sizeof(secret));
	if ((r = att_chal_parse(chal, len, &c)) != 0)
		goto out;
	if ((r = p->ops->answer(p, c.nonce, blob_hash, &ev)) != 0)
		goto out;
	if (c.cred != NULL) {
		if ((r = p->ops->activate(p, c.cred, c.cred_len, c.seed,
			 c.seed_len, secret)) != 0)
			goto out;
		act_len = ATT_SECRET_LEN;
	}
	hdr[0] = ATT_CHAL_FORMAT;
	memcpy(hdr + 1, c.nonce, ATT_NONCE_LEN);
	memcpy(hdr + 1 + ATT_NONCE_LEN, blob_hash, ATT_HASH_LEN);
	hdr[1 + ATT_NONCE_LEN + ATT_HASH_LEN] = (uint8_t)p->kind;
	if ((r = buf_append(out, hdr, sizeof(hdr))) != 0 ||
	    (r = put16(out, ev.len)) != 0 ||
	    (r = buf_append(out, buf_data(&ev), ev.len)) != 0 ||
	    (r = buf_append(out, &act_len, 1)) != 0 ||
	    (act_len && (r = buf_append(out, secret, act_len)) != 0))
		goto out;
	if ((c.flags & ATT_CHAL_WANT_MEASURE) && p->ops->measure != NULL &&
	    (r = answer_measure(p, c.nonce, blob_hash, c.ima_from, out)) != 0)
		goto out;
	r = 0;
out:
	sodium_memzero(secret, sizeof(secret));
	buf_clear(&ev);
	return r;
}

int
att_answer_busy_write(uint32_t retry_after_ms, struct buf *out)
{
	uint8_t b[ATT_ANSWER_BUSY_LEN];

	if (retry_after_ms > 0xffff)
		retry_after_ms = 0xffff;
	b[0] = ATT_ANSWER_BUSY;
	b[1] = (uint8_t)(retry_after_ms >> 8);
	b[2] = (uint8_t)retry_after_ms;
	return buf_append(out, b, sizeof(b));
}

int
att_answer_parse(const uint8_t *in, size_t len, struct att_answer *out)
{
	struct rd rd = {in, len, 0, false}, er;
	struct att_answer a;
	const uint8_t *p, *ev;
	size_t evlen, n;

	memset(out, 0, sizeof(*out));
	memset(&a, 0, sizeof(a));
	if (len > ATT_ANSWER_MEAS_MAX)
		return SM_ERR_TOOBIG;
	if (len < 1)
		return SM_ERR_INVAL;
	if (in[0] == ATT_ANSWER_BUSY) {
		if (len != ATT_ANSWER_BUSY_LEN)
			return SM_ERR_INVAL;
		out->retry_after_ms = (uint32_t)in[1] << 8 | in[2];
		return SM_ERR_UNAVAIL;
	}
	if (rd_be(&rd, 1) != ATT_CHAL_FORMAT)
		return SM_ERR_UNSUPP;
	if ((p = rd_take(&rd, ATT_NONCE_LEN + ATT_HASH_LEN)) == NULL)
		return SM_ERR_INVAL;
	memcpy(a.nonce, p, ATT_NONCE_LEN);
	memcpy(a.blob_hash, p + ATT_NONCE_LEN, ATT_HASH_LEN);
	a.provider = (enum att_provider_kind)rd_be(&rd, 1);
	ev = rd_lv16(&rd, ATT_ANSWER_MAX, &evlen);
	n = rd_be(&rd, 1);
	if (rd.bad || (n != 0 && n != ATT_SECRET_LEN))
		return SM_ERR_INVAL;
	if (n != 0) {
		if ((p = rd_take(&rd, n)) == NULL)
			return SM_ERR_INVAL;
		memcpy(a.secret, p, n);
		a.activated = true;
	}
	if (rd.off < len) {
		/* Optional measurement section (attest/measure.h). */
		a.meas_len = (size_t)rd_be(&rd, 4);
		if (a.meas_len == 0 || a.meas_len > ATT_MEAS_MAX ||
		    (a.meas = rd_take(&rd, a.meas_len)) == NULL)
			return SM_ERR_INVAL;
	}
	if (rd.off != len || (a.meas == NULL && len > ATT_ANSWER_MAX))
		return SM_ERR_INVAL;
	switch (a.provider) {
	case ATT_PROV_SOFTWARE:
		if (evlen != ATT_SW_SIG_LEN)
			return SM_ERR_INVAL;
		a.sw_sig = ev;
		break;
	case ATT_PROV_TPM:
		er = (struct rd){ev, evlen, 0, false};
		a.attest = rd_lv16(&er, ATT_TPM_ATTEST_MAX, &a.attest_len);
		a.sig = rd_lv16(&er, ATT_TPM_SIG_MAX, &a.sig_len);
		if (er.bad || er.off != evlen || a.attest_len == 0 ||
		    a.sig_len == 0)
			return SM_ERR_INVAL;
		break;
	default:
		return SM_ERR_UNSUPP;
	}
	*out = a;
	return 0;
}

int
att_answer_check(const struct att_verdict *v,
    const uint8_t nonce[ATT_NONCE_LEN], const struct att_answer *a)
{
	uint8_t s[ATT_CHAL_SIGNED_LEN], qd[ATT_HASH_LEN], pd[ATT_HASH_LEN];

	if (sodium_memcmp(a->nonce, nonce, ATT_NONCE_LEN) != 0)
		return SM_ERR_REPLAY;
	if (memcmp(a->blob_hash, v->blob_hash, ATT_HASH_LEN) != 0)
		return SM_ERR_STALE;
	if (a->provider != v->provider)
		return SM_ERR_VERIFY;
	att_chal_signed_bytes(nonce, v->blob_hash, s);
	switch (a->provider) {
	case ATT_PROV_SOFTWARE:
		return att_ec_verify_point(v->sw_pub, a->sw_sig, s, sizeof(s));
	case ATT_PROV_TPM:
		if (v->ak_pub_len == 0 || att_sha256(s, sizeof(s), qd) != 0 ||
		    att_quote_check(v->ak_pub, v->ak_pub_len, a->attest,
			a->attest_len, a->sig, a->sig_len, qd, pd) != 0 ||
		    memcmp(pd, v->pcr_digest, ATT_HASH_LEN) != 0)
			return SM_ERR_VERIFY;
		return 0;
	default:
		return SM_ERR_VERIFY;
	}
}

void
att_live_init(struct att_live *l)
{
	memset(l, 0, sizeof(*l));
}

void
att_live_reset(struct att_live *l)
{
	uint64_t busy = l->busy;

	att_live_clear(l);
	l->busy = busy;
}

void
att_live_clear(struct att_live *l)
{
	sodium_memzero(l, sizeof(*l));
}

void
att_live_cfg_default(struct att_live_cfg *c)
{
	c->interval_ms = ATT_LIVE_INTERVAL_MS;
	c->window_ms = ATT_LIVE_WINDOW_MS;
	c->timeout_ms = ATT_LIVE_TIMEOUT_MS;
}

bool
att_live_due(
    const struct att_live *l, const struct att_live_cfg *c, uint64_t now_ms)
{
	if (l->outstanding)
		return false;
	if (l->busy_until_ms != 0)
		return now_ms >= l->busy_until_ms;
	if (l->sent_ms == 0 && !l->ever_ok)
		return true; /* first contact */
	return now_ms - l->sent_ms >= c->interval_ms;
}

int
att_live_challenge(struct att_live *l, uint64_t now_ms,
    struct att_activation *act, struct buf *out)
{
	struct att_chal c;
	int r;

	memset(&c, 0, sizeof(c));
	sodium_memzero(&l->act, sizeof(l->act));
	if (RAND_bytes(l->nonce, ATT_NONCE_LEN) != 1)
		return SM_ERR_INTERNAL;
	memcpy(c.nonce, l->nonce, ATT_NONCE_LEN);
	if (act != NULL && act->pending) {
		l->act = *act;
		att_activation_clear(act);
		c.cred = l->act.cred;
		c.cred_len = l->act.cred_len;
		c.seed = l->act.seed;
		c.seed_len = l->act.seed_len;
	}
	if ((r = att_chal_write(&c, out)) != 0) {
		sodium_memzero(&l->act, sizeof(l->act));
		return r;
	}
	l->outstanding = true;
	l->sent_ms = now_ms;
	l->busy_until_ms = 0;
	return 0;
}

/* 'revoke': the answer failed its checks (not merely late or missing). */
static void
live_fail(struct att_live *l, bool revoke)
{
	if (revoke)
		l->revoked = true;
	l->outstanding = false;
	sodium_memzero(l->nonce, sizeof(l->nonce));
	att_activation_clear(&l->act);
	if (l->failures < ATT_LIVE_MAX_FAILURES)
		l->failures++;
}

void
att_live_tick(struct att_live *l, const struct att_live_cfg *c, uint64_t now_ms)
{
	if (l->outstanding && now_ms - l->sent_ms > c->timeout_ms)
		live_fail(l, false);
}

int
att_live_answer(struct att_live *l, const struct att_live_cfg *c,
    const struct att_verdict *v, struct att_pins *pins, const uint8_t *in,
    size_t len, uint64_t now_ms)
{
	struct att_answer a;
	int r;

	if ((r = att_answer_parse(in, len, &a)) == SM_ERR_UNAVAIL) {
		/* Busy: no failure; ask again after its retry time. */
		if (l->outstanding) {
			l->outstanding = false;
			sodium_memzero(l->nonce, sizeof(l->nonce));
			att_activation_clear(&l->act);
			l->busy++;
			l->busy_until_ms = now_ms +
			    (a.retry_after_ms < ATT_BUSY_MIN_MS
				    ? ATT_BUSY_MIN_MS
				    : a.retry_after_ms);
		}
		return r;
	}
	if (r != 0) {
		if (l->outstanding)
			live_fail(l, true);
		return r;
	}
	if (!l->outstanding) {
		r = SM_ERR_REPLAY;
		goto out;
	}
	if (sodium_memcmp(a.nonce, l->nonce, ATT_NONCE_LEN) != 0) {
		/* An answer to another challenge: not this host's proof. */
		l->revoked = true;
		r = SM_ERR_REPLAY;
		goto out;
	}
	if (now_ms - l->sent_ms > c->timeout_ms) {
		live_fail(l, false);
		r = SM_ERR_STALE;
		goto out;
	}
	if ((r = att_answer_check(v, l->nonce, &a)) != 0) {
		live_fail(l, true);
		goto out;
	}
	if (l->act.pending) {
		if (!a.activated) {
			live_fail(l, true);
			r = SM_ERR_DECRYPT;
			goto out;
		}
		if ((r = att_activation_finish(
			 &l->act, a.secret, ATT_SECRET_LEN, pins)) != 0) {
			live_fail(l, true);
			goto out;
		}
	}
	l->outstanding = false;
	sodium_memzero(l->nonce, sizeof(l->nonce));
	l->ever_ok = true;
	l->last_ok_ms = now_ms;
	l->failures = 0;
	l->revoked = false;
	r = 0;
out:
	sodium_memzero(a.secret, sizeof(a.secret));
	return r;
}

bool
att_live_attested(
    const struct att_live *l, const struct att_live_cfg *c, uint64_t now_ms)
{
	return l->ever_ok && !l->revoked &&
	    now_ms - l->last_ok_ms < c->window_ms &&
	    l->failures < ATT_LIVE_MAX_FAILURES;
}

bool
att_route_ok(const struct att_verdict *v, const struct att_live *l,
    const struct att_live_cfg *c, enum att_level min,
    const struct infkey_pub *sealed_to, uint64_t now_ms)
{
	return v->status == ATT_VERIFIED && v->level >= min &&
	    sealed_to != NULL && v->infkey.epoch == sealed_to->epoch &&
	    sodium_memcmp(v->infkey.pk, sealed_to->pk, INFKEY_PK_LEN) == 0 &&
	    att_live_attested(l, c, now_ms);
}
