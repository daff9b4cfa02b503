/* Measurement evidence: wire format, PCR policy, verifier checks. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <tss2/tss2_mu.h>

#include "attest/ec.h"
#include "attest/measure.h"
#include "core/rd.h"
#include "core/util.h"

/* PCRs 0-7 and 10 of the SHA-256 bank. */
static const uint8_t meas_sel[3] = {0xff, 0x04, 0x00};
static const int meas_index[ATT_MEAS_NPCR] = {0, 1, 2, 3, 4, 5, 6, 7, 10};

static int
put_be(struct buf *b, uint32_t v, size_t n)
{
	uint8_t x[4];

	for (size_t i = 0; i < n; i++)
		x[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return buf_append(b, x, n);
}

int
att_meas_write(const struct att_meas *m, struct buf *out)
{
	int r;

	if (m->attest_len == 0 || m->attest_len > ATT_TPM_ATTEST_MAX ||
	    m->sig_len == 0 || m->sig_len > ATT_TPM_SIG_MAX ||
	    m->evlog_len > EVLOG_MAX || m->ima_len > IMA_LIST_MAX)
		return SM_ERR_INVAL;
	if ((r = put_be(out, ATT_MEAS_FORMAT, 1)) != 0 ||
	    (r = put_be(out, (uint32_t)m->attest_len, 2)) != 0 ||
	    (r = buf_append(out, m->attest, m->attest_len)) != 0 ||
	    (r = put_be(out, (uint32_t)m->sig_len, 2)) != 0 ||
	    (r = buf_append(out, m->sig, m->sig_len)) != 0 ||
	    (r = put_be(out, ATT_MEAS_NPCR, 1)) != 0 ||
	    (r = buf_append(out, m->pcrs, ATT_MEAS_NPCR * ATT_PCR_LEN)) != 0 ||
	    (r = put_be(out, (uint32_t)m->evlog_len, 4)) != 0 ||
	    (m->evlog_len &&
		(r = buf_append(out, m->evlog, m->evlog_len)) != 0) ||
	    (r = put_be(out, m->ima_from, 4)) != 0 ||
	    (r = put_be(out, (uint32_t)m->ima_len, 4)) != 0 ||
	    (m->ima_len && (r = buf_append(out, m->ima, m->ima_len)) != 0))
		return r;
	return 0;
}

static const uint8_t *
lv32(struct rd *r, size_t max, size_t *n)
{
	*n = (size_t)rd_be(r, 4);
	if (*n > max) {
		r->bad = true;
		return NULL;
	}
	return rd_take(r, *n);
}

int
att_meas_parse(const uint8_t *in, size_t len, struct att_meas *out)
{
	struct rd r = {in, len, 0, false};
	struct att_meas m;

	memset(out, 0, sizeof(*out));
	memset(&m, 0, sizeof(m));
	if (len > ATT_MEAS_MAX)
		return SM_ERR_TOOBIG;
	if (len < 1)
		return SM_ERR_INVAL;
	if (rd_be(&r, 1) != ATT_MEAS_FORMAT)
		return SM_ERR_UNSUPP;
	m.attest = rd_lv16(&r, ATT_TPM_ATTEST_MAX, &m.attest_len);
	m.sig = rd_lv16(&r, ATT_TPM_SIG_MAX, &m.sig_len);
	if (rd_be(&r, 1) != ATT_MEAS_NPCR)
		return SM_ERR_INVAL;
	m.pcrs = rd_take(&r, ATT_MEAS_NPCR * ATT_PCR_LEN);
	m.evlog = lv32(&r, EVLOG_MAX, &m.evlog_len);
	m.ima_from = (uint32_t)rd_be(&r, 4);
	m.ima = lv32(&r, IMA_LIST_MAX, &m.ima_len);
	if (r.bad || r.off != len || m.attest_len == 0 || m.sig_len == 0)
		return SM_ERR_INVAL;
	if (m.evlog_len == 0)
		m.evlog = NULL;
	if (m.ima_len == 0)
		m.ima = NULL;
	*out = m;
	return 0;
}

int
att_meas_qualifying(const uint8_t nonce[ATT_NONCE_LEN],
    const uint8_t blob_hash[ATT_HASH_LEN], uint8_t out[ATT_HASH_LEN])
{
	uint8_t s[ATT_MEAS_DOMAIN_LEN + ATT_NONCE_LEN + ATT_HASH_LEN];

	memcpy(s, ATT_MEAS_DOMAIN, ATT_MEAS_DOMAIN_LEN);
	memcpy(s + ATT_MEAS_DOMAIN_LEN, nonce, ATT_NONCE_LEN);
	memcpy(
	    s + ATT_MEAS_DOMAIN_LEN + ATT_NONCE_LEN, blob_hash, ATT_HASH_LEN);
	return att_sha256(s, sizeof(s), out);
}

const char *
att_claim_str(enum att_claim c)
{
	switch (c) {
	case ATT_CLAIM_SELF_REPORTED:
		return "self_reported";
	case ATT_CLAIM_SIGNER_MEASURED:
		return "signer_measured";
	case ATT_CLAIM_KERNEL_MEASURED:
		return "kernel_measured";
	}
	return "?";
}

/* --- PCR policy ---------------------------------------------------------- */

#define PCR_POLICY_MAX 1024

struct att_pcr_policy {
	int index[PCR_POLICY_MAX];
	uint8_t value[PCR_POLICY_MAX][ATT_PCR_LEN];
	size_t n;
};

static int
slot_of(int index)
{
	for (int i = 0; i < ATT_MEAS_NPCR; i++)
		if (meas_index[i] == index)
			return i;
	return -1;
}

int
att_pcr_policy_parse(
    const char *text, size_t len, struct att_pcr_policy **out, size_t *bad_line)
{
	struct att_pcr_policy *p;
	size_t off = 0, line = 0;
	int r = 0;

	*out = NULL;
	*bad_line = 0;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return SM_ERR_NOMEM;
	while (off < len && r == 0) {
		const char *l = text + off, *nl = memchr(l, '\n', len - off);
		size_t ll = nl ? (size_t)(nl - l) : len - off;
		char buf[160], bank[16], hex[80];
		unsigned idx;
		int used = 0;

		off += ll + (nl != NULL);
		line++;
		if (ll >= sizeof(buf)) {
			r = SM_ERR_INVAL;
			break;
		}
		memcpy(buf, l, ll);
		buf[ll] = '\0';
		if (sscanf(buf, " %15s", bank) != 1 || bank[0] == '#')
			continue;
		r = SM_ERR_INVAL;
		if (sscanf(buf, " %15[a-z0-9]:%u %79s %n", bank, &idx, hex,
			&used) < 3 ||
		    buf[used] != '\0' || strcmp(bank, "sha256") != 0 ||
		    idx > 23 || slot_of((int)idx) < 0 ||
		    strlen(hex) != 2 * ATT_PCR_LEN)
			break;
		if (p->n == PCR_POLICY_MAX) {
			r = SM_ERR_TOOBIG;
			break;
		}
		for (size_t k = 0; hex[k] != '\0'; k++)
			if (hex[k] >= 'A' && hex[k] <= 'F')
				hex[k] = (char)(hex[k] - 'A' + 'a');
		if (sm_unhex(p->value[p->n], ATT_PCR_LEN, hex) != 0)
			break;
		p->index[p->n++] = (int)idx;
		r = 0;
	}
	if (r != 0) {
		if (r == SM_ERR_INVAL)
			*bad_line = line;
		free(p);
		return r;
	}
	*out = p;
	return 0;
}

void
att_pcr_policy_free(struct att_pcr_policy *p)
{
	free(p);
}

int
att_pcr_policy_check(const struct att_pcr_policy *p, const uint8_t *pcrs)
{
	for (int s = 0; s < ATT_MEAS_NPCR; s++) {
		bool listed = false, ok = false;

		for (size_t i = 0; i < p->n; i++) {
			if (p->index[i] != meas_index[s])
				continue;
			listed = true;
			if (memcmp(p->value[i], pcrs + s * ATT_PCR_LEN,
				ATT_PCR_LEN) == 0)
				ok = true;
		}
		if (listed && !ok)
			return meas_index[s];
	}
	return -1;
}

/* --- verifier ------------------------------------------------------------ */

/* The AK's signature over 'attest', its qualifying data and selection. */
static int
quote_check(const struct att_verdict *v, const struct att_meas *m,
    const uint8_t qd[ATT_HASH_LEN], uint8_t digest[ATT_HASH_LEN])
{
	uint8_t name[ATT_TPM_NAME_LEN];
	const TPMS_PCR_SELECTION *ps;
	TPMT_PUBLIC p;
	TPMT_SIGNATURE s;
	TPMS_ATTEST a;
	size_t off = 0;

	if (v->ak_pub_len == 0 ||
	    att_ak_check(v->ak_pub, v->ak_pub_len, name) != 0)
		return SM_ERR_VERIFY;
	memset(&p, 0, sizeof(p));
	if (Tss2_MU_TPMT_PUBLIC_Unmarshal(v->ak_pub, v->ak_pub_len, &off, &p) !=
	    TSS2_RC_SUCCESS)
		return SM_ERR_VERIFY;
	off = 0;
	memset(&s, 0, sizeof(s));
	if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(m->sig, m->sig_len, &off, &s) !=
		TSS2_RC_SUCCESS ||
	    off != m->sig_len || s.sigAlg != TPM2_ALG_ECDSA ||
	    s.signature.ecdsa.hash != TPM2_ALG_SHA256)
		return SM_ERR_VERIFY;
	if (att_ec_verify(p.unique.ecc.x.buffer, p.unique.ecc.x.size,
		p.unique.ecc.y.buffer, p.unique.ecc.y.size,
		s.signature.ecdsa.signatureR.buffer,
		s.signature.ecdsa.signatureR.size,
		s.signature.ecdsa.signatureS.buffer,
		s.signature.ecdsa.signatureS.size, m->attest,
		m->attest_len) != 0)
		return SM_ERR_VERIFY;
	off = 0;
	memset(&a, 0, sizeof(a));
	if (Tss2_MU_TPMS_ATTEST_Unmarshal(m->attest, m->attest_len, &off, &a) !=
		TSS2_RC_SUCCESS ||
	    off != m->attest_len || a.magic != TPM2_GENERATED_VALUE ||
	    a.type != TPM2_ST_ATTEST_QUOTE)
		return SM_ERR_VERIFY;
	if (a.extraData.size != ATT_HASH_LEN ||
	    sodium_memcmp(a.extraData.buffer, qd, ATT_HASH_LEN) != 0)
		return SM_ERR_VERIFY;
	if (a.attested.quote.pcrSelect.count != 1)
		return SM_ERR_VERIFY;
	ps = &a.attested.quote.pcrSelect.pcrSelections[0];
	if (ps->hash != TPM2_ALG_SHA256 || ps->sizeofSelect != 3 ||
	    memcmp(ps->pcrSelect, meas_sel, 3) != 0 ||
	    a.attested.quote.pcrDigest.size != ATT_HASH_LEN)
		return SM_ERR_VERIFY;
	memcpy(digest, a.attested.quote.pcrDigest.buffer, ATT_HASH_LEN);
	return 0;
}

static bool
requirements(const struct att_meas_policy *pol)
{
	return pol != NULL &&
	    (pol->pcr != NULL || pol->allow != NULL || pol->require_binary);
}

/*
 * How much a problem weighs: the reason shown is the heaviest one seen
 * (the first among equals), so a refusal names its cause and not a note.
 */
static int
weight(enum att_meas_reason r)
{
	switch (r) {
	case ATT_M_OK:
		return 0;
	case ATT_M_NONE:
	case ATT_M_NO_EVLOG:
		return 1;
	case ATT_M_NO_IMA:
	case ATT_M_BINARY_NOT_MEASURED:
		return 2;
	case ATT_M_ALLOWLIST:
		return 3;
	case ATT_M_EVLOG_BAD:
	case ATT_M_EVLOG_REPLAY:
	case ATT_M_IMA_BAD:
	case ATT_M_IMA_REPLAY:
		return 4;
	default:
		return 5;
	}
}

static void problem(struct att_meas_verdict *o, enum att_meas_reason r, int pcr,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void
problem(struct att_meas_verdict *o, enum att_meas_reason r, int pcr,
    const char *fmt, ...)
{
	va_list ap;

	if (weight(r) == 4)
		o->evidence_bad = true;
	if (weight(r) <= weight(o->reason))
		return;
	o->reason = r;
	o->pcr = pcr;
	va_start(ap, fmt);
	vsnprintf(o->why, sizeof(o->why), fmt, ap);
	va_end(ap);
}

void
att_meas_verdict_none(
    const struct att_meas_policy *pol, struct att_meas_verdict *o)
{
	memset(o, 0, sizeof(*o));
	o->pcr = -1;
	problem(o, ATT_M_NONE, -1,
	    "no measurements (binary self-measured, posture self-reported)");
	o->eligible = !requirements(pol);
}

/* Copy a path for a message, printable bytes only. */
static void
safe_path(char *dst, size_t cap, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && i + 1 < cap; i++)
		dst[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '?';
	dst[i] = '\0';
}

uint32_t
att_ima_state_from(const struct att_ima_state *st, const struct att_verdict *v)
{
	if (st == NULL || st->n == 0 || st->n > UINT32_MAX ||
	    memcmp(st->binary, v->binary_hash, ATT_HASH_LEN) != 0 ||
	    memcmp(st->boot, v->pcr_digest, ATT_HASH_LEN) != 0)
		return 0;
	return (uint32_t)st->n;
}

static void
check_ima(const struct att_meas_policy *pol, const struct att_verdict *v,
    const struct att_meas *m, struct att_ima_state *st,
    struct att_meas_verdict *o)
{
	const uint8_t *pcr10 = o->pcrs[ATT_MEAS_NPCR - 1], *start = NULL;
	struct ima_entry e;
	size_t prefix, n, off = 0, i, base = 0;
	char path[96], first[sizeof(st->allow_why)] = "";
	int r;

	if (m->ima_from != 0) {
		/* The rest of a list whose start this verifier holds. */
		if (st == NULL || att_ima_state_from(st, v) != m->ima_from) {
			o->ima_retry = true;
			problem(o, ATT_M_IMA_BAD, IMA_PCR,
			    "IMA list continues from entry %u, which this "
			    "verifier does not hold",
			    (unsigned)m->ima_from);
			goto fail;
		}
		start = st->pcr;
		base = st->n;
	} else if (m->ima == NULL) {
		problem(o, ATT_M_NO_IMA, IMA_PCR,
		    "no IMA measurement list (binary self-measured)");
		goto fail;
	}
	r = ima_replay_from(
	    m->ima, m->ima_len, start, pcr10, &prefix, &n, NULL);
	o->ima_entries = n;
	if (r != 0) {
		o->ima_retry = start != NULL;
		problem(o, ATT_M_IMA_BAD, IMA_PCR,
		    "IMA measurement list malformed: %s", sm_strerror(r));
		goto fail;
	}
	if (prefix == SIZE_MAX) {
		o->ima_retry = start != NULL;
		problem(o, ATT_M_IMA_REPLAY, IMA_PCR,
		    "IMA measurement list does not replay to quoted PCR 10");
		goto fail;
	}
	o->ima_ok = true;
	o->ima_quoted = base + prefix;
	if (start != NULL) {
		/* Judgments of the entries held carry over. */
		o->binary_in_ima = st->binary_seen;
		if (st->allow_bad) {
			o->allow_bad = true;
			problem(
			    o, ATT_M_ALLOWLIST, IMA_PCR, "%s", st->allow_why);
		}
	}
	for (i = 0; i < prefix; i++) {
		if (ima_next(m->ima, m->ima_len, &off, &e) != 0)
			break; /* parsed once already */
		if (e.pcr != IMA_PCR || e.violation)
			continue;
		if (e.file_sha256 && v->binary_hash_known &&
		    memcmp(e.file_digest, v->binary_hash, IMA_DIGEST_LEN) == 0)
			o->binary_in_ima = true;
		if (pol != NULL && pol->allow != NULL &&
		    !(e.path_len == 14 &&
			memcmp(e.path, "boot_aggregate", 14) == 0) &&
		    !ima_allowlist_ok(pol->allow, &e)) {
			safe_path(path, sizeof(path), e.path, e.path_len);
			problem(o, ATT_M_ALLOWLIST, IMA_PCR,
			    "IMA entry %zu not in --ima-allowlist: %s",
			    base + i, path);
			if (first[0] == '\0')
				snprintf(first, sizeof(first),
				    "IMA entry %zu not in --ima-allowlist: %s",
				    base + i, path);
			o->allow_bad = true;
		}
	}
	if (!o->binary_in_ima)
		problem(o, ATT_M_BINARY_NOT_MEASURED, IMA_PCR,
		    "binary hash not in the IMA measurement list (binary "
		    "self-measured)");
	if (st != NULL) {
		if (start == NULL)
			memset(st, 0, sizeof(*st));
		if (first[0] != '\0' && !st->allow_bad)
			memcpy(st->allow_why, first, sizeof(first));
		st->n = base + prefix;
		memcpy(st->pcr, pcr10, ATT_PCR_LEN);
		memcpy(st->binary, v->binary_hash, ATT_HASH_LEN);
		memcpy(st->boot, v->pcr_digest, ATT_HASH_LEN);
		st->binary_seen = o->binary_in_ima;
		st->allow_bad = o->allow_bad;
	}
	return;
fail:
	if (st != NULL)
		memset(st, 0, sizeof(*st));
}

static void
check_evlog(const struct att_meas *m, struct att_meas_verdict *o)
{
	struct evlog_info info;
	int r, i;

	if (m->evlog == NULL) {
		problem(o, ATT_M_NO_EVLOG, -1,
		    "no event log (secure boot self-reported)");
		return;
	}
	if ((r = evlog_replay(m->evlog, m->evlog_len, &info)) != 0) {
		problem(o, ATT_M_EVLOG_BAD, r == SM_ERR_VERIFY ? 7 : -1,
		    r == SM_ERR_VERIFY
			? "event log: SecureBoot event data does not match "
			  "its digest (PCR 7)"
			: "event log malformed: %s",
		    sm_strerror(r));
		return;
	}
	o->evlog_events = info.nevents;
	for (i = 0; i < 8; i++)
		if (memcmp(info.pcr[i], o->pcrs[i], ATT_PCR_LEN) != 0) {
			problem(o, ATT_M_EVLOG_REPLAY, i,
			    "event log does not replay to quoted PCR %d", i);
			return;
		}
	o->evlog_ok = true;
	o->secure_boot = info.secure_boot;
}

int
att_meas_check(const struct att_meas_policy *pol, const struct att_verdict *v,
    const uint8_t nonce[ATT_NONCE_LEN], const uint8_t *in, size_t len,
    struct att_meas_verdict *o)
{
	return att_meas_check_inc(pol, v, nonce, in, len, NULL, o);
}

int
att_meas_check_inc(const struct att_meas_policy *pol,
    const struct att_verdict *v, const uint8_t nonce[ATT_NONCE_LEN],
    const uint8_t *in, size_t len, struct att_ima_state *st,
    struct att_meas_verdict *o)
{
	uint8_t qd[ATT_HASH_LEN], qdig[ATT_HASH_LEN], dig[ATT_HASH_LEN];
	struct att_meas m;
	bool fatal = false;
	int pcr;

	if (in == NULL || len == 0) {
		att_meas_verdict_none(pol, o);
		return o->eligible ? 0 : SM_ERR_VERIFY;
	}
	memset(o, 0, sizeof(*o));
	o->pcr = -1;
	o->present = true;
	if (att_meas_parse(in, len, &m) != 0) {
		problem(o, ATT_M_MALFORMED, -1, "measurements malformed");
		fatal = true;
		goto out;
	}
	if (att_meas_qualifying(nonce, v->blob_hash, qd) != 0 ||
	    quote_check(v, &m, qd, qdig) != 0 ||
	    att_sha256(m.pcrs, ATT_MEAS_NPCR * ATT_PCR_LEN, dig) != 0 ||
	    sodium_memcmp(dig, qdig, ATT_HASH_LEN) != 0) {
		problem(o, ATT_M_BAD_QUOTE, -1,
		    "measurement quote does not verify (AK, nonce, selection "
		    "or PCR values)");
		fatal = true;
		goto out;
	}
	memcpy(o->pcrs, m.pcrs, sizeof(o->pcrs));
	if (att_sha256(m.pcrs, 8 * ATT_PCR_LEN, dig) != 0 ||
	    sodium_memcmp(dig, v->pcr_digest, ATT_HASH_LEN) != 0) {
		problem(o, ATT_M_BOOT_PCRS_CHANGED, -1,
		    "boot PCRs 0-7 differ from the attested blob's");
		fatal = true;
		goto out;
	}
	o->quote_ok = true;
	if (pol != NULL && pol->pcr != NULL &&
	    (pcr = att_pcr_policy_check(pol->pcr, m.pcrs)) >= 0) {
		problem(o, ATT_M_PCR_POLICY, pcr,
		    "PCR %d differs from --pcr-policy", pcr);
		fatal = true;
	}
	check_evlog(&m, o);
	check_ima(pol, v, &m, st, o);
out:
	if (o->reason == ATT_M_OK)
		snprintf(o->why, sizeof(o->why), "measured");
	o->binary = o->ima_ok && o->binary_in_ima ? ATT_CLAIM_KERNEL_MEASURED
						  : ATT_CLAIM_SELF_REPORTED;
	o->secure_boot_claim = o->evlog_ok && o->secure_boot != TRI_UNKNOWN
	    ? ATT_CLAIM_KERNEL_MEASURED
	    : ATT_CLAIM_SELF_REPORTED;
	o->posture = ATT_CLAIM_SELF_REPORTED;
	o->eligible = true;
	if (requirements(pol)) {
		/* Evidence the host chose to send must hold up. */
		if (fatal || o->evidence_bad)
			o->eligible = false;
		if (pol->require_binary &&
		    o->binary != ATT_CLAIM_KERNEL_MEASURED)
			o->eligible = false;
		if (pol->allow != NULL && (!o->ima_ok || o->allow_bad))
			o->eligible = false;
	}
	return o->eligible ? 0 : SM_ERR_VERIFY;
}
