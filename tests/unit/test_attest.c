/*
 * Attestation without a TPM: blob encoding, software provider, verifier
 * checks, challenge bookkeeping with a fake clock, pins, known-answer
 * vectors (tests/vectors/attest.json). TPM cases: test_attest_tpm.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util_vectors.h"
#include <sodium.h>

#include "cJSON.h"
#include "attest/blob.h"
#include "attest/challenge.h"
#include "attest/pins.h"
#include "attest/provider.h"
#include "attest/verify.h"
#include "core/util.h"

#define VECTORS "tests/vectors/attest.json"

static const uint8_t node_a[32] = {0x40, 0x41, 0x42};
static const uint8_t node_b[32] = {0x50, 0x51, 0x52};

static void
make_posture(struct posture *p, bool with_hash)
{
	posture_init(p);
	p->os = POSTURE_OS_LINUX;
	p->env_clean = TRI_TRUE;
	p->dumpable = TRI_FALSE;
	p->core_dumps_disabled = TRI_TRUE;
	if (with_hash) {
		p->binary_hash_known = true;
		memset(p->binary_hash, 0xab, sizeof(p->binary_hash));
	}
}

static void
make_blob(struct att_blob *b, const uint8_t node[32], struct infkey_pub *ik)
{
	struct posture p;

	ik->epoch = 7;
	memset(ik->pk, 0x33, sizeof(ik->pk));
	make_posture(&p, true);
	att_blob_init(b, node, ik, &p);
	att_platform_probe(b);
}

static void
policy(struct att_policy *pol, enum att_level min)
{
	memset(pol, 0, sizeof(*pol));
	pol->min_level = min;
}

static void
sw_message(struct att_provider *p, const uint8_t node[32],
    struct infkey_pub *ik, struct buf *msg, uint8_t bh[32])
{
	struct att_blob b;

	make_blob(&b, node, ik);
	buf_init(msg, ATT_MSG_MAX);
	assert_int_equal(att_attest(p, &b, msg, bh), 0);
}

static void
test_blob_roundtrip(void **state)
{
	struct att_blob b, c;
	struct infkey_pub ik;
	struct buf out;
	size_t i;

	make_blob(&b, node_a, &ik);
	b.provider = ATT_PROV_SOFTWARE;
	b.level = ATT_LEVEL_SELF_SIGNED;
	b.timestamp = 1234;
	buf_init(&out, ATT_BLOB_MAX);
	assert_int_equal(att_blob_write(&b, &out), 0);
	assert_int_equal(att_blob_parse(buf_data(&out), out.len, &c), 0);
	assert_memory_equal(c.node_id, node_a, 32);
	assert_int_equal(c.infkey.epoch, 7);
	assert_int_equal(c.timestamp, 1234);
	assert_string_equal(c.cpu_model, b.cpu_model);
	assert_int_equal(c.mem_bytes, b.mem_bytes);
	assert_true(c.binary_hash_known);
	assert_int_equal(c.posture.env_clean, TRI_TRUE);
	/* Every truncation and one trailing byte are refused. */
	for (i = 0; i < out.len; i++)
		assert_int_not_equal(att_blob_parse(buf_data(&out), i, &c), 0);
	assert_int_equal(buf_append(&out, "x", 1), 0);
	assert_int_not_equal(att_blob_parse(buf_data(&out), out.len, &c), 0);
	/* A binary hash that disagrees with the posture's is not written. */
	b.binary_hash[0] ^= 1;
	buf_reset(&out);
	assert_int_equal(att_blob_write(&b, &out), SM_ERR_INVAL);
	buf_clear(&out);
}

static void
test_sw_valid_and_min_trust(void **state)
{
	struct att_provider *p;
	struct att_policy pol;
	struct att_verdict v;
	struct infkey_pub ik;
	struct buf msg;
	uint8_t bh[32];

	assert_int_equal(att_software_new(&p), 0);
	sw_message(p, node_a, &ik, &msg, bh);
	policy(&pol, ATT_LEVEL_SELF_SIGNED);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v), 0);
	assert_int_equal(v.status, ATT_VERIFIED);
	assert_int_equal(v.level, ATT_LEVEL_SELF_SIGNED);
	assert_int_equal(v.provider, ATT_PROV_SOFTWARE);
	assert_memory_equal(v.blob_hash, bh, 32);
	assert_true(v.binary_hash_known);
	/* The default floor (tpm) refuses a software key, level shown. */
	policy(&pol, ATT_LEVEL_TPM);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v),
	    SM_ERR_VERIFY);
	assert_int_equal(v.status, ATT_FAILED);
	assert_int_equal(v.reason, ATT_R_BELOW_MIN_TRUST);
	assert_int_equal(v.level, ATT_LEVEL_SELF_SIGNED);
	assert_string_equal(
	    att_reason_str(v.reason), "below minimum trust level");
	buf_clear(&msg);
	att_provider_free(p);
}

static void
test_sw_every_byte_tampered(void **state)
{
	struct att_provider *p;
	struct att_policy pol;
	struct att_verdict v;
	struct infkey_pub ik;
	struct buf msg;
	uint8_t bh[32], *m;
	size_t i, bad_sig = 0;

	assert_int_equal(att_software_new(&p), 0);
	sw_message(p, node_a, &ik, &msg, bh);
	policy(&pol, ATT_LEVEL_SELF_SIGNED);
	m = buf_data(&msg);
	for (i = 0; i < msg.len; i++) {
		m[i] ^= 0x01;
		assert_int_not_equal(
		    att_verify(&pol, m, msg.len, node_a, &ik, &v), 0);
		assert_int_equal(v.status, ATT_FAILED);
		bad_sig += v.reason == ATT_R_BAD_SIGNATURE;
		m[i] ^= 0x01;
	}
	/* Most fields parse after a flip and then fail the signature. */
	assert_true(bad_sig > msg.len / 2);
	/* Field by field (offsets into the blob, after the 3-byte header). */
	{
		static const size_t off[] = {
		    19, /* node id */
		    51, /* epoch */
		    55, /* inference key */
		    89, /* provider */
		    91, /* timestamp */
		    100, /* binary hash */
		    133, /* cpu model length */
		    134, /* cpu model */
		};
		for (i = 0; i < SM_ARRAY_LEN(off); i++) {
			m[3 + off[i]] ^= 0x01;
			assert_int_equal(
			    att_verify(&pol, m, msg.len, node_a, &ik, &v),
			    SM_ERR_VERIFY);
			m[3 + off[i]] ^= 0x01;
		}
	}
	assert_int_equal(att_verify(&pol, m, msg.len, node_a, &ik, &v), 0);
	buf_clear(&msg);
	att_provider_free(p);
}

static void
test_sw_wrong_node_and_key(void **state)
{
	struct att_provider *p;
	struct att_policy pol;
	struct att_verdict v;
	struct infkey_pub ik, other;
	struct buf msg;
	uint8_t bh[32];

	assert_int_equal(att_software_new(&p), 0);
	sw_message(p, node_a, &ik, &msg, bh);
	policy(&pol, ATT_LEVEL_SELF_SIGNED);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_b, &ik, &v),
	    SM_ERR_VERIFY);
	assert_int_equal(v.reason, ATT_R_WRONG_NODE_ID);
	other = ik;
	other.pk[5] ^= 1;
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &other, &v),
	    SM_ERR_VERIFY);
	assert_int_equal(v.reason, ATT_R_WRONG_INFKEY);
	other = ik;
	other.epoch++;
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &other, &v),
	    SM_ERR_VERIFY);
	assert_int_equal(v.reason, ATT_R_WRONG_INFKEY);
	buf_clear(&msg);
	att_provider_free(p);
}

/* Sign arbitrary blob bytes with the software provider's key. */
static void
sign_raw(
    struct att_provider *p, const uint8_t *blob, size_t len, struct buf *msg)
{
	struct buf ev;

	buf_init(&ev, ATT_MSG_MAX);
	assert_int_equal(p->ops->evidence(p, blob, len, &ev), 0);
	buf_init(msg, ATT_MSG_MAX);
	assert_int_equal(
	    att_msg_write(blob, len, buf_data(&ev), ev.len, msg), 0);
	buf_clear(&ev);
}

static void
test_sw_claiming_tpm(void **state)
{
	struct att_provider *p;
	struct att_policy pol;
	struct att_verdict v;
	struct infkey_pub ik;
	struct att_blob b;
	struct buf blob, msg;

	assert_int_equal(att_software_new(&p), 0);
	make_blob(&b, node_a, &ik);
	b.provider = ATT_PROV_SOFTWARE;
	b.level = ATT_LEVEL_TPM; /* the lie */
	b.timestamp = 1;
	buf_init(&blob, ATT_BLOB_MAX);
	assert_int_equal(att_blob_write(&b, &blob), 0);
	sign_raw(p, buf_data(&blob), blob.len, &msg);
	policy(&pol, ATT_LEVEL_SELF_SIGNED);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v),
	    SM_ERR_VERIFY);
	assert_int_equal(v.reason, ATT_R_LEVEL_CLAIM);
	assert_int_equal(v.level, ATT_LEVEL_NONE);
	buf_clear(&msg);
	/* provider byte tpm with a software signature: not TPM evidence. */
	buf_reset(&blob);
	b.provider = ATT_PROV_TPM;
	assert_int_equal(att_blob_write(&b, &blob), 0);
	sign_raw(p, buf_data(&blob), blob.len, &msg);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v),
	    SM_ERR_VERIFY);
	assert_int_equal(v.reason, ATT_R_MALFORMED);
	buf_clear(&msg);
	buf_clear(&blob);
	att_provider_free(p);
}

static void
test_unknown_posture_is_false(void **state)
{
	struct att_provider *p;
	struct att_policy pol;
	struct att_verdict v;
	struct infkey_pub ik = {.epoch = 9};
	struct att_blob b;
	struct posture none;
	struct buf blob, msg;
	uint8_t *d;
	size_t plen;
	static const uint8_t extra[] = {0xc8, 0x01, 0x02}; /* unknown tag */

	assert_int_equal(att_software_new(&p), 0);
	posture_init(&none); /* nothing measured */
	att_blob_init(&b, node_a, &ik, &none);
	b.provider = ATT_PROV_SOFTWARE;
	b.level = ATT_LEVEL_SELF_SIGNED;
	b.timestamp = 1;
	buf_init(&blob, ATT_BLOB_MAX);
	assert_int_equal(att_blob_write(&b, &blob), 0);
	/* Append a field from a newer node to the posture (the last field). */
	assert_int_equal(buf_append(&blob, extra, sizeof(extra)), 0);
	d = buf_data(&blob);
	plen = ((size_t)d[blob.len - 3 - 3] << 8 | d[blob.len - 3 - 2]);
	assert_int_equal(plen, 1); /* only the version byte before */
	d[blob.len - 3 - 3 - 0] = 0;
	d[blob.len - 3 - 2] = (uint8_t)(plen + sizeof(extra));
	sign_raw(p, d, blob.len, &msg);
	policy(&pol, ATT_LEVEL_SELF_SIGNED);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v), 0);
	assert_int_equal(v.posture.env_clean, TRI_UNKNOWN);
	assert_int_equal(v.posture.core_dumps_disabled, TRI_UNKNOWN);
	assert_int_equal(v.posture.secure_boot, TRI_UNKNOWN);
	assert_false(att_tri_true(v.posture.env_clean));
	assert_false(att_tri_true(v.posture.no_new_privs));
	assert_false(v.posture.hardened);
	assert_false(v.binary_hash_known);
	/* With an allow-list, an unknown binary hash is not allowed. */
	{
		uint8_t allowed[1][32];

		memset(allowed, 0, sizeof(allowed));
		pol.allowed = (const uint8_t(*)[32])allowed;
		pol.nallowed = 1;
		assert_int_equal(
		    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v),
		    SM_ERR_VERIFY);
		assert_int_equal(v.reason, ATT_R_BINARY_NOT_ALLOWED);
	}
	buf_clear(&msg);
	buf_clear(&blob);
	att_provider_free(p);
}

static void
test_allowed_binaries(void **state)
{
	char path[] = "/tmp/sm-attest-allowed-XXXXXX";
	struct att_provider *p;
	struct att_policy pol;
	struct att_verdict v;
	struct infkey_pub ik;
	struct buf msg;
	uint8_t bh[32], (*allowed)[32] = NULL;
	size_t n = 0;
	FILE *f;
	int fd;

	assert_int_equal(att_software_new(&p), 0);
	sw_message(p, node_a, &ik, &msg, bh);
	assert_true((fd = mkstemp(path)) >= 0);
	assert_non_null(f = fdopen(fd, "w"));
	fprintf(f, "# allowed\n%064d\n", 0);
	fprintf(f,
	    "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB"
	    "ABABAB\n");
	fclose(f);
	assert_int_equal(att_allowed_load(path, &allowed, &n), 0);
	assert_int_equal(n, 2);
	policy(&pol, ATT_LEVEL_SELF_SIGNED);
	pol.allowed = (const uint8_t(*)[32])allowed;
	pol.nallowed = n;
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v), 0);
	pol.nallowed = 1; /* only the zero hash */
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v),
	    SM_ERR_VERIFY);
	assert_int_equal(v.reason, ATT_R_BINARY_NOT_ALLOWED);
	free(allowed);
	unlink(path);
	buf_clear(&msg);
	att_provider_free(p);
}

/* One challenge round: verifier -> host -> verifier. */
static int
round_trip(struct att_live *l, const struct att_live_cfg *c,
    struct att_provider *host, const uint8_t bh[32],
    const struct att_verdict *v, uint64_t t_send, uint64_t t_answer)
{
	struct buf chal, ans;
	int r;

	buf_init(&chal, ATT_CHAL_MAX);
	buf_init(&ans, ATT_ANSWER_MAX);
	assert_int_equal(att_live_challenge(l, t_send, NULL, &chal), 0);
	assert_int_equal(
	    att_answer_make(host, buf_data(&chal), chal.len, bh, &ans), 0);
	r = att_live_answer(l, c, v, NULL, buf_data(&ans), ans.len, t_answer);
	buf_clear(&chal);
	buf_clear(&ans);
	return r;
}

static void
test_sw_challenges(void **state)
{
	struct att_provider *p, *other;
	struct att_policy pol;
	struct att_verdict v;
	struct att_live l;
	struct att_live_cfg c;
	struct infkey_pub ik, wrong;
	struct buf msg, chal1, chal2, ans1, ans2;
	uint8_t bh[32], nonce1[32];
	uint64_t t = 1000;

	assert_int_equal(att_software_new(&p), 0);
	assert_int_equal(att_software_new(&other), 0);
	sw_message(p, node_a, &ik, &msg, bh);
	policy(&pol, ATT_LEVEL_SELF_SIGNED);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v), 0);
	att_live_init(&l);
	att_live_cfg_default(&c);

	/* Not attested before the first answer, even with a valid blob. */
	assert_true(att_live_due(&l, &c, t));
	assert_false(att_route_ok(&v, &l, &c, ATT_LEVEL_SELF_SIGNED, &ik, t));
	assert_int_equal(round_trip(&l, &c, p, bh, &v, t, t + 10), 0);
	t += 10;
	assert_true(att_route_ok(&v, &l, &c, ATT_LEVEL_SELF_SIGNED, &ik, t));
	assert_false(att_route_ok(&v, &l, &c, ATT_LEVEL_TPM, &ik, t));
	wrong = ik;
	wrong.pk[0] ^= 1;
	assert_false(
	    att_route_ok(&v, &l, &c, ATT_LEVEL_SELF_SIGNED, &wrong, t));
	assert_false(att_live_due(&l, &c, t + 1000));
	assert_true(att_live_due(&l, &c, t + c.interval_ms));

	/* Another key (a host that copied the blob) cannot answer. */
	assert_int_equal(
	    round_trip(&l, &c, other, bh, &v, t, t + 10), SM_ERR_VERIFY);
	assert_int_equal(l.failures, 1);
	/* Answering for another blob: stale (re-fetch the announcement). */
	{
		uint8_t bh2[32];

		memcpy(bh2, bh, 32);
		bh2[0] ^= 1;
		assert_int_equal(
		    round_trip(&l, &c, p, bh2, &v, t, t + 10), SM_ERR_STALE);
	}
	assert_int_equal(round_trip(&l, &c, p, bh, &v, t, t + 10), 0);
	assert_int_equal(l.failures, 0);

	/* Replay: the same answer twice; an answer for an older nonce. */
	buf_init(&chal1, ATT_CHAL_MAX);
	buf_init(&chal2, ATT_CHAL_MAX);
	buf_init(&ans1, ATT_ANSWER_MAX);
	buf_init(&ans2, ATT_ANSWER_MAX);
	assert_int_equal(att_live_challenge(&l, t, NULL, &chal1), 0);
	memcpy(nonce1, l.nonce, 32);
	assert_int_equal(
	    att_answer_make(p, buf_data(&chal1), chal1.len, bh, &ans1), 0);
	assert_int_equal(att_live_challenge(&l, t + 1, NULL, &chal2), 0);
	/* A quote for one nonce does not satisfy another. */
	assert_int_equal(
	    att_live_answer(&l, &c, &v, NULL, buf_data(&ans1), ans1.len, t + 2),
	    SM_ERR_REPLAY);
	{
		struct att_answer a;

		assert_int_equal(
		    att_answer_parse(buf_data(&ans1), ans1.len, &a), 0);
		assert_int_equal(att_answer_check(&v, nonce1, &a), 0);
		assert_int_not_equal(att_answer_check(&v, l.nonce, &a), 0);
		/* Signature over nonce1 with the nonce field rewritten. */
		memcpy(buf_data(&ans1) + 1, l.nonce, 32);
		assert_int_equal(att_live_answer(&l, &c, &v, NULL,
				     buf_data(&ans1), ans1.len, t + 2),
		    SM_ERR_VERIFY);
	}
	assert_int_equal(att_live_challenge(&l, t + 3, NULL, &chal2), 0);
	buf_reset(&chal2);
	assert_int_equal(att_live_challenge(&l, t + 3, NULL, &chal2), 0);
	assert_int_equal(
	    att_answer_make(p, buf_data(&chal2), chal2.len, bh, &ans2), 0);
	assert_int_equal(
	    att_live_answer(&l, &c, &v, NULL, buf_data(&ans2), ans2.len, t + 4),
	    0);
	assert_int_equal(
	    att_live_answer(&l, &c, &v, NULL, buf_data(&ans2), ans2.len, t + 5),
	    SM_ERR_REPLAY);
	buf_clear(&chal1);
	buf_clear(&chal2);
	buf_clear(&ans1);
	buf_clear(&ans2);
	buf_clear(&msg);
	att_live_clear(&l);
	att_provider_free(p);
	att_provider_free(other);
}

static void
test_freshness_and_failures(void **state)
{
	struct att_provider *p;
	struct att_policy pol;
	struct att_verdict v;
	struct att_live l;
	struct att_live_cfg c;
	struct infkey_pub ik;
	struct buf msg, chal;
	uint8_t bh[32];
	uint64_t t = 50000;
	int i;

	assert_int_equal(att_software_new(&p), 0);
	sw_message(p, node_a, &ik, &msg, bh);
	policy(&pol, ATT_LEVEL_SELF_SIGNED);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v), 0);
	att_live_init(&l);
	att_live_cfg_default(&c);

	/* Stale challenge: the answer comes after the deadline. */
	assert_int_equal(round_trip(&l, &c, p, bh, &v, t, t + c.timeout_ms + 1),
	    SM_ERR_STALE);
	assert_int_equal(l.failures, 1);
	assert_false(att_live_attested(&l, &c, t + c.timeout_ms + 1));

	/* Fresh answer, then the window runs out on the verifier's clock. */
	assert_int_equal(round_trip(&l, &c, p, bh, &v, t, t + 5), 0);
	assert_true(att_live_attested(&l, &c, t + 5 + c.window_ms - 1));
	assert_false(att_live_attested(&l, &c, t + 5 + c.window_ms));

	/* Three unanswered challenges in a row: unattested at once. */
	assert_int_equal(round_trip(&l, &c, p, bh, &v, t, t + 5), 0);
	buf_init(&chal, ATT_CHAL_MAX);
	for (i = 0; i < 3; i++) {
		uint64_t s = t + 100 + (uint64_t)i * 40000;

		assert_true(att_live_attested(&l, &c, s));
		buf_reset(&chal);
		assert_int_equal(att_live_challenge(&l, s, NULL, &chal), 0);
		att_live_tick(&l, &c, s + c.timeout_ms); /* not yet */
		assert_true(l.outstanding);
		att_live_tick(&l, &c, s + c.timeout_ms + 1);
		assert_false(l.outstanding);
	}
	assert_int_equal(l.failures, 3);
	assert_false(att_live_attested(&l, &c, t + 200000));
	assert_false(
	    att_route_ok(&v, &l, &c, ATT_LEVEL_SELF_SIGNED, &ik, t + 200000));
	/* One good answer restores it. */
	assert_int_equal(
	    round_trip(&l, &c, p, bh, &v, t + 200000, t + 200001), 0);
	assert_true(att_live_attested(&l, &c, t + 200001));
	buf_clear(&chal);
	buf_clear(&msg);
	att_provider_free(p);
}

static void
test_pins(void **state)
{
	char path[] = "/tmp/sm-attest-pins-XXXXXX";
	struct att_pins *p, *q;
	uint8_t ak1[32], ak2[32], got[32];
	int fd;

	memset(ak1, 1, 32);
	memset(ak2, 2, 32);
	assert_int_equal(att_pins_new(&p), 0);
	assert_int_equal(att_pins_lookup(p, node_a, got), SM_ERR_NOTFOUND);
	assert_int_equal(att_pins_add(p, node_a, ak1), 0);
	assert_int_equal(att_pins_add(p, node_a, ak1), 0);
	assert_int_equal(att_pins_add(p, node_a, ak2), SM_ERR_PERM);
	assert_int_equal(att_pins_add(p, node_b, ak2), 0);
	assert_true((fd = mkstemp(path)) >= 0);
	close(fd);
	assert_int_equal(att_pins_save(p, path), 0);
	assert_int_equal(att_pins_new(&q), 0);
	assert_int_equal(att_pins_load(q, path), 0);
	assert_int_equal(att_pins_count(q), 2);
	assert_int_equal(att_pins_lookup(q, node_a, got), 0);
	assert_memory_equal(got, ak1, 32);
	assert_int_equal(att_pins_remove(q, node_a), 0);
	/* One AK, one node id: ak2 belongs to node_b. */
	assert_int_equal(att_pins_add(q, node_a, ak2), SM_ERR_PERM);
	memset(got, 3, 32);
	assert_int_equal(att_pins_add(q, node_a, got), 0);
	/* A file that contradicts memory is refused. */
	assert_int_equal(att_pins_load(q, path), SM_ERR_PERM);
	unlink(path);
	att_pins_free(p);
	att_pins_free(q);
}

/* One AK, one EK, one node id; EKs persist in the third column. */
static void
test_pins_one_ak_one_ek(void **state)
{
	char path[] = "/tmp/sm-attest-pins-XXXXXX";
	struct att_pins *p, *q;
	uint8_t ak1[32], ak2[32], ak3[32], ek1[32], ek2[32], who[32];
	FILE *f;
	int fd;

	memset(ak1, 1, 32);
	memset(ak2, 2, 32);
	memset(ak3, 3, 32);
	memset(ek1, 0xe1, 32);
	memset(ek2, 0xe2, 32);
	assert_int_equal(att_pins_new(&p), 0);
	assert_int_equal(att_pins_add_ek(p, node_a, ak1, ek1), 0);
	assert_int_equal(att_pins_add_ek(p, node_a, ak1, ek1), 0);
	/* node_b with node_a's AK, or with node_a's EK: refused. */
	assert_int_equal(att_pins_add_ek(p, node_b, ak1, ek2), SM_ERR_PERM);
	assert_int_equal(att_pins_add_ek(p, node_b, ak2, ek1), SM_ERR_PERM);
	assert_int_equal(att_pins_owner(p, ak1, NULL, who), ATT_PIN_AK);
	assert_memory_equal(who, node_a, 32);
	assert_int_equal(att_pins_owner(p, ak3, ek1, who), ATT_PIN_EK);
	assert_int_equal(att_pins_owner(p, ak3, ek2, who), 0);
	assert_int_equal(att_pins_add_ek(p, node_b, ak2, ek2), 0);
	/* Save and load keep the EK column; old two-column lines load. */
	assert_true((fd = mkstemp(path)) >= 0);
	close(fd);
	assert_int_equal(att_pins_save(p, path), 0);
	assert_non_null(f = fopen(path, "a"));
	fprintf(f, "%064x %064x\n", 7, 9);
	fclose(f);
	assert_int_equal(att_pins_new(&q), 0);
	assert_int_equal(att_pins_load(q, path), 0);
	assert_int_equal(att_pins_count(q), 3);
	assert_int_equal(att_pins_owner(q, ak3, ek2, who), ATT_PIN_EK);
	assert_memory_equal(who, node_b, 32);
	/* Forgetting node_a frees its AK and EK for another node id. */
	assert_int_equal(att_pins_remove(q, node_a), 0);
	assert_int_equal(att_pins_add_ek(q, node_b, ak1, ek1), SM_ERR_PERM);
	memset(who, 0xcc, 32);
	assert_int_equal(att_pins_add_ek(q, who, ak1, ek1), 0);
	unlink(path);
	att_pins_free(p);
	att_pins_free(q);
}

/*
 * A failed answer revokes at once (the old rule kept the host attested until
 * three failures or the window's end); a later good answer restores it; a
 * new blob starts freshness from nothing; a busy answer is no failure.
 */
static void
test_failed_answer_revokes(void **state)
{
	struct att_provider *p;
	struct att_policy pol;
	struct att_verdict v;
	struct att_live l;
	struct att_live_cfg c;
	struct infkey_pub ik;
	struct buf msg, chal, ans;
	uint8_t bh[32], other[32];
	uint64_t t = 10000;
	int k;

	assert_int_equal(att_software_new(&p), 0);
	sw_message(p, node_a, &ik, &msg, bh);
	policy(&pol, ATT_LEVEL_SELF_SIGNED);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v), 0);
	att_live_init(&l);
	att_live_cfg_default(&c);
	buf_init(&chal, ATT_CHAL_MAX);
	buf_init(&ans, ATT_ANSWER_MAX);
	memcpy(other, bh, 32);
	other[0] ^= 1;
	/* Three ways to fail: bad signature, another blob, wrong nonce. */
	for (k = 0; k < 3; k++) {
		assert_int_equal(round_trip(&l, &c, p, bh, &v, t, t + 1), 0);
		assert_true(att_route_ok(
		    &v, &l, &c, ATT_LEVEL_SELF_SIGNED, &ik, t + 2));
		buf_reset(&chal);
		buf_reset(&ans);
		assert_int_equal(att_live_challenge(&l, t + 3, NULL, &chal), 0);
		assert_int_equal(att_answer_make(p, buf_data(&chal), chal.len,
				     k == 1 ? other : bh, &ans),
		    0);
		if (k == 0)
			buf_data(&ans)[ans.len - 3] ^= 0x01; /* signature */
		if (k == 2)
			buf_data(&ans)[5] ^= 0x01; /* nonce */
		assert_int_not_equal(att_live_answer(&l, &c, &v, NULL,
					 buf_data(&ans), ans.len, t + 4),
		    0);
		/* One failure, well inside the window: ineligible now. */
		assert_false(att_live_attested(&l, &c, t + 5));
		assert_false(att_route_ok(
		    &v, &l, &c, ATT_LEVEL_SELF_SIGNED, &ik, t + 5));
		t += 100;
	}
	/* A later good answer restores it. */
	assert_int_equal(round_trip(&l, &c, p, bh, &v, t, t + 1), 0);
	assert_true(att_live_attested(&l, &c, t + 2));
	/* The blob changed: nothing carried over, challenge due now. */
	att_live_reset(&l);
	assert_false(att_live_attested(&l, &c, t + 3));
	assert_true(att_live_due(&l, &c, t + 3));
	/* Busy: no failure, not due before its retry time. */
	buf_reset(&chal);
	buf_reset(&ans);
	assert_int_equal(att_live_challenge(&l, t + 4, NULL, &chal), 0);
	assert_int_equal(att_answer_busy_write(500, &ans), 0);
	assert_int_equal(
	    att_live_answer(&l, &c, &v, NULL, buf_data(&ans), ans.len, t + 5),
	    SM_ERR_UNAVAIL);
	assert_false(l.revoked);
	assert_int_equal(l.failures, 0);
	assert_false(att_live_due(&l, &c, t + 504));
	assert_true(att_live_due(&l, &c, t + 505));
	assert_int_equal(round_trip(&l, &c, p, bh, &v, t + 505, t + 506), 0);
	assert_true(att_live_attested(&l, &c, t + 507));
	buf_clear(&chal);
	buf_clear(&ans);
	buf_clear(&msg);
	att_provider_free(p);
}

/* tests/vectors/attest_busy.json: the busy answer, both directions. */
static void
test_busy_vectors(void **state)
{
	cJSON *root = vec_load("tests/vectors/attest_busy.json"), *vec, *bad;
	uint8_t want[3], in[8];
	struct att_answer a;
	struct buf out;
	int n = 0;

	cJSON_ArrayForEach(
	    vec, cJSON_GetObjectItemCaseSensitive(root, "vectors"))
	{
		uint32_t ms = (uint32_t)cJSON_GetObjectItemCaseSensitive(
		    vec, "retry_after_ms")
				  ->valuedouble;
		const cJSON *parse =
		    cJSON_GetObjectItemCaseSensitive(vec, "parse");

		vec_hex(want, sizeof(want), vec, "answer");
		buf_init(&out, 16);
		assert_int_equal(att_answer_busy_write(ms, &out), 0);
		assert_int_equal(out.len, 3);
		assert_memory_equal(buf_data(&out), want, 3);
		buf_clear(&out);
		if (!cJSON_IsFalse(parse)) {
			assert_int_equal(
			    att_answer_parse(want, 3, &a), SM_ERR_UNAVAIL);
			assert_int_equal(a.retry_after_ms, ms);
		}
		n++;
	}
	cJSON_ArrayForEach(
	    bad, cJSON_GetObjectItemCaseSensitive(root, "invalid"))
	{
		size_t len = strlen(bad->valuestring) / 2;

		assert_int_equal(sm_unhex(in, len, bad->valuestring), 0);
		assert_int_not_equal(att_answer_parse(in, len, &a), 0);
		assert_int_not_equal(
		    att_answer_parse(in, len, &a), SM_ERR_UNAVAIL);
	}
	assert_int_equal(n, 4);
	cJSON_Delete(root);
}

static void
test_parsers_reject(void **state)
{
	struct att_msg m;
	struct att_chal c;
	struct att_answer a;
	uint8_t big[ATT_MSG_MAX + 1];

	memset(big, 0, sizeof(big));
	assert_int_equal(att_msg_parse(big, sizeof(big), &m), SM_ERR_TOOBIG);
	assert_int_equal(att_msg_parse(big, 0, &m), SM_ERR_INVAL);
	big[0] = 2;
	assert_int_equal(att_msg_parse(big, 10, &m), SM_ERR_UNSUPP);
	assert_int_equal(att_chal_parse(big, 1, &c), SM_ERR_UNSUPP);
	big[0] = 1;
	assert_int_equal(att_chal_parse(big, 33, &c), SM_ERR_INVAL);
	assert_int_equal(att_chal_parse(big, 37, &c), 0);
	assert_null(c.cred);
	assert_int_equal(att_answer_parse(big, 70, &a), SM_ERR_INVAL);
}

/* --- known-answer vector --- */

static size_t
hex_field(uint8_t *out, size_t max, const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	size_t n;

	assert_true(cJSON_IsString(v));
	n = strlen(v->valuestring) / 2;
	assert_true(n <= max);
	assert_int_equal(sm_unhex(out, n, v->valuestring), 0);
	return n;
}

static double
num_field(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	assert_true(cJSON_IsNumber(v));
	return v->valuedouble;
}

static void
test_vectors(void **state)
{
	cJSON *root = vec_load(VECTORS), *vec;
	const cJSON *vecs = cJSON_GetObjectItemCaseSensitive(root, "vectors");
	uint8_t priv[32], pub[65], node[32], bhash[32], sig[64], nonce[32];
	uint8_t blob[ATT_BLOB_MAX], msgv[ATT_MSG_MAX], ans[ATT_ANSWER_MAX];
	uint8_t chal[64], got_pub[65], posture_bytes[512], h[32];
	size_t blob_len, msg_len, ans_len, chal_len, plen;
	struct att_provider *p;
	struct att_policy pol;
	struct att_verdict v;
	struct att_blob b;
	struct infkey_pub ik;
	struct posture post;
	struct buf out;
	int count = 0;

	assert_true(cJSON_IsArray(vecs));
	cJSON_ArrayForEach(vec, vecs)
	{
		hex_field(priv, 32, vec, "p256_private");
		hex_field(pub, 65, vec, "p256_public");
		hex_field(node, 32, vec, "node_id");
		hex_field(ik.pk, 32, vec, "infkey_pk");
		ik.epoch = (uint32_t)num_field(vec, "infkey_epoch");
		plen = hex_field(
		    posture_bytes, sizeof(posture_bytes), vec, "posture");
		blob_len = hex_field(blob, sizeof(blob), vec, "blob");
		hex_field(bhash, 32, vec, "blob_sha256");
		hex_field(sig, 64, vec, "signature");
		msg_len = hex_field(msgv, sizeof(msgv), vec, "message");
		hex_field(nonce, 32, vec, "nonce");
		chal_len = hex_field(chal, sizeof(chal), vec, "challenge");
		ans_len = hex_field(ans, sizeof(ans), vec, "answer");

		/* Fixed key -> the same public point. */
		assert_int_equal(att_software_new_det(priv, &p), 0);
		assert_int_equal(att_software_pub(p, got_pub), 0);
		assert_memory_equal(got_pub, pub, 65);

		/* Fixed inputs -> exactly the vector's blob bytes. */
		assert_int_equal(posture_parse(posture_bytes, plen, &post), 0);
		att_blob_init(&b, node, &ik, &post);
		b.timestamp = (uint64_t)num_field(vec, "timestamp");
		b.mem_bytes = (uint64_t)num_field(vec, "mem_bytes");
		b.tpm_manufacturer =
		    (uint32_t)num_field(vec, "tpm_manufacturer");
		snprintf(b.cpu_model, sizeof(b.cpu_model), "%s",
		    cJSON_GetObjectItemCaseSensitive(vec, "cpu_model")
			->valuestring);
		p->ops->describe(p, &b);
		buf_init(&out, ATT_MSG_MAX);
		assert_int_equal(att_blob_write(&b, &out), 0);
		assert_int_equal(out.len, blob_len);
		assert_memory_equal(buf_data(&out), blob, blob_len);
		assert_int_equal(att_sha256(blob, blob_len, h), 0);
		assert_memory_equal(h, bhash, 32);

		/* Our own message from these inputs has the same blob. */
		buf_reset(&out);
		assert_int_equal(att_attest(p, &b, &out, h), 0);
		assert_memory_equal(h, bhash, 32);
		assert_memory_equal(
		    buf_data(&out), msgv, 3 + blob_len + 2 + 65);

		/* The vector's message (independent signer) verifies. */
		policy(&pol, ATT_LEVEL_SELF_SIGNED);
		assert_int_equal(
		    att_verify(&pol, msgv, msg_len, node, &ik, &v), 0);
		assert_int_equal(v.level, ATT_LEVEL_SELF_SIGNED);
		assert_memory_equal(v.blob_hash, bhash, 32);
		assert_int_equal(v.posture.core_dumps_disabled, TRI_TRUE);
		assert_int_equal(v.posture.secure_boot, TRI_UNKNOWN);
		(void)sig;

		/* Challenge bytes, and the vector's answer verifies. */
		{
			struct att_chal c;
			struct att_answer a;

			memset(&c, 0, sizeof(c));
			memcpy(c.nonce, nonce, 32);
			buf_reset(&out);
			assert_int_equal(att_chal_write(&c, &out), 0);
			assert_int_equal(out.len, chal_len);
			assert_memory_equal(buf_data(&out), chal, chal_len);
			assert_int_equal(att_answer_parse(ans, ans_len, &a), 0);
			assert_int_equal(att_answer_check(&v, nonce, &a), 0);
			nonce[0] ^= 1;
			assert_int_not_equal(
			    att_answer_check(&v, nonce, &a), 0);
		}
		buf_clear(&out);
		att_provider_free(p);
		count++;
	}
	assert_true(count >= 1);
	cJSON_Delete(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_blob_roundtrip),
	    cmocka_unit_test(test_sw_valid_and_min_trust),
	    cmocka_unit_test(test_sw_every_byte_tampered),
	    cmocka_unit_test(test_sw_wrong_node_and_key),
	    cmocka_unit_test(test_sw_claiming_tpm),
	    cmocka_unit_test(test_unknown_posture_is_false),
	    cmocka_unit_test(test_allowed_binaries),
	    cmocka_unit_test(test_sw_challenges),
	    cmocka_unit_test(test_freshness_and_failures),
	    cmocka_unit_test(test_pins),
	    cmocka_unit_test(test_pins_one_ak_one_ek),
	    cmocka_unit_test(test_failed_answer_revokes),
	    cmocka_unit_test(test_busy_vectors),
	    cmocka_unit_test(test_parsers_reject),
	    cmocka_unit_test(test_vectors),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("attest", tests, NULL, NULL);
}
