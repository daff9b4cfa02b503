/*
 * The signer (src/signer/): its wire format against the vectors, and its
 * judgement: what it signs, what it refuses, that DH results are right, and
 * that a worker-side remote keyring and delegated identity work through it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <sodium.h>

#include "util_vectors.h"

#include "core/buf.h"
#include "core/util.h"
#include "crypto/infkey.h"
#include "crypto/sign.h"
#include "harden/harden.h"
#include "mesh/announce.h"
#include "net/tls.h"
#include "signer/proto.h"
#include "signer/signer.h"

static struct signer *S;
static struct posture P; /* what the test signer "measured" */

/* One request through signer_answer: returns the answer's status (0 or a
 * negative SM_ERR_*) and its body in 'body' (may be NULL). */
static int
ask(uint8_t op, bool slow, const uint8_t *req, size_t len, struct buf *body)
{
	uint8_t hdr[SIGNER_HDR_LEN];
	struct buf in, out;
	struct signer_frame f;
	int r;

	buf_init(&in, SIGNER_HDR_LEN + SIGNER_REQ_MAX);
	buf_init(&out, SIGNER_HDR_LEN + SIGNER_RESP_MAX);
	assert_int_equal(signer_hdr_write(hdr, op, 0, len, SIGNER_REQ_MAX), 0);
	assert_int_equal(buf_append(&in, hdr, sizeof(hdr)), 0);
	if (len > 0)
		assert_int_equal(buf_append(&in, req, len), 0);
	r = signer_answer(S, buf_data(&in), in.len, slow, &out);
	if (r == 0) {
		assert_int_equal(signer_frame_parse(buf_data(&out), out.len,
				     SIGNER_RESP_MAX, false, &f),
		    0);
		assert_int_equal(f.op, op);
		r = f.status != 0 ? -(int)f.status : 0;
		if (body != NULL && f.body_len > 0)
			assert_int_equal(
			    buf_append(body, f.body, f.body_len), 0);
	}
	buf_clear(&in);
	buf_clear(&out);
	return r;
}

static int
setup(void **state)
{
	if (sodium_init() < 0)
		return -1;
	posture_init(&P);
	P.os = POSTURE_OS_LINUX;
	P.seccomp = TRI_TRUE;
	P.no_new_privs = TRI_TRUE;
	P.keys_separate = TRI_TRUE;
	P.measured_by = POSTURE_MEASURED_SIGNER;
	return signer_new_ephemeral(&S, &P) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	signer_free(S);
	return 0;
}

static void
test_vectors(void **state)
{
	cJSON *V = vec_load("tests/vectors/signer.json"), *f;
	size_t n = 0;

	cJSON_ArrayForEach(f, cJSON_GetObjectItem(V, "frames"))
	{
		const char *hex =
		    cJSON_GetStringValue(cJSON_GetObjectItem(f, "hex"));
		bool ok = cJSON_IsTrue(cJSON_GetObjectItem(f, "ok"));
		uint8_t *b = malloc(strlen(hex) / 2 + 1);
		size_t len = 0;
		struct signer_frame fr;
		int r;

		assert_non_null(b);
		assert_int_equal(sodium_hex2bin(b, strlen(hex) / 2 + 1, hex,
				     strlen(hex), NULL, &len, NULL),
		    0);
		r = signer_frame_parse(b, len, SIGNER_REQ_MAX, true, &fr);
		if (r == 0)
			r = signer_req_check(&fr);
		if ((r == 0) != ok)
			fail_msg("%s: %s",
			    cJSON_GetStringValue(
				cJSON_GetObjectItem(f, "name")),
			    ok ? "refused" : "accepted");
		if (ok)
			assert_int_equal(fr.op,
			    (int)cJSON_GetNumberValue(
				cJSON_GetObjectItem(f, "op")));
		free(b);
		n++;
	}
	assert_true(n >= 20);
	cJSON_Delete(V);
}

static void
test_hello(void **state)
{
	struct buf b;
	struct posture got;
	const uint8_t *p;

	buf_init(&b, 4096);
	assert_int_equal(ask(SIGNER_OP_HELLO, false, NULL, 0, &b), 0);
	p = buf_data(&b);
	assert_true(b.len > SIGNER_HELLO_FIXED);
	assert_memory_equal(p, signer_node_pk(S), ID_PK_LEN);
	assert_int_equal(p[64], 0); /* no owner key, no provider */
	assert_int_equal(posture_parse(p + SIGNER_HELLO_FIXED,
			     b.len - SIGNER_HELLO_FIXED, &got),
	    0);
	assert_int_equal(got.seccomp, TRI_TRUE);
	assert_int_equal(got.measured_by, POSTURE_MEASURED_SIGNER);
	buf_clear(&b);
}

/* identity_remote_fn through the test signer. */
static int
remote_sign(void *ctx, const uint8_t *msg, size_t len, uint8_t sig[ID_SIG_LEN])
{
	struct buf b, req;
	int r;

	buf_init(&b, ID_SIG_LEN);
	buf_init(&req, SIGNER_REQ_MAX);
	assert_int_equal(buf_append(&req, "\x01", 1), 0);
	assert_int_equal(buf_append(&req, msg, len), 0);
	r = ask(SIGNER_OP_SIGN, false, buf_data(&req), req.len, &b);
	if (r == 0) {
		assert_int_equal(b.len, ID_SIG_LEN);
		memcpy(sig, buf_data(&b), ID_SIG_LEN);
	}
	buf_clear(&b);
	buf_clear(&req);
	return r;
}

static void
test_sign_domains(void **state)
{
	uint8_t msg[TLS_LINKCERT_MSG_LEN], sig[ID_SIG_LEN];
	const uint8_t *pk = signer_node_pk(S);
	uint64_t now = sm_wall_s();

	/* Outside every domain: refused. */
	assert_int_equal(
	    remote_sign(NULL, (const uint8_t *)"hello", 5, sig), SM_ERR_PERM);
	/* A link-key certificate for this node, for a day: signed. */
	memcpy(msg, TLS_LINKCERT_DOMAIN, TLS_LINKCERT_DOMAIN_LEN);
	memset(msg + TLS_LINKCERT_DOMAIN_LEN, 0x11, ID_PK_LEN);
	memcpy(msg + TLS_LINKCERT_DOMAIN_LEN + ID_PK_LEN, pk, ID_PK_LEN);
	sm_put_be64(msg + TLS_LINKCERT_DOMAIN_LEN + 2 * ID_PK_LEN,
	    now + TLS_LINKCERT_LIFETIME_S);
	assert_int_equal(remote_sign(NULL, msg, sizeof(msg), sig), 0);
	assert_int_equal(identity_verify(pk, msg, sizeof(msg), sig), 0);
	/* ... but not for a year, */
	sm_put_be64(
	    msg + TLS_LINKCERT_DOMAIN_LEN + 2 * ID_PK_LEN, now + 365 * 86400);
	assert_int_equal(remote_sign(NULL, msg, sizeof(msg), sig), SM_ERR_PERM);
	/* nor for another node, */
	sm_put_be64(msg + TLS_LINKCERT_DOMAIN_LEN + 2 * ID_PK_LEN, now);
	msg[TLS_LINKCERT_DOMAIN_LEN + ID_PK_LEN] ^= 1;
	assert_int_equal(remote_sign(NULL, msg, sizeof(msg), sig), SM_ERR_PERM);
	msg[TLS_LINKCERT_DOMAIN_LEN + ID_PK_LEN] ^= 1;
	/* nor a longer message in that domain. */
	assert_int_equal(
	    remote_sign(NULL, msg, sizeof(msg) - 1, sig), SM_ERR_PERM);
	/* The owner key: this signer has none. */
	assert_int_equal(ask(SIGNER_OP_SIGN, false,
			     (const uint8_t *)"\x02sealmesh-member", 16, NULL),
	    SM_ERR_NOTFOUND);
}

static void
test_sign_announcement(void **state)
{
	struct identity id;
	struct announce a;
	struct buf pw, out, st;
	const uint8_t *p;
	struct posture other = P;

	identity_delegated(&id, signer_node_pk(S), remote_sign, NULL);
	buf_init(&pw, POSTURE_WIRE_MAX);
	buf_init(&out, ANN_MAX_LEN);
	buf_init(&st, 256);
	assert_int_equal(posture_write(&P, &pw), 0);
	assert_int_equal(ask(SIGNER_OP_INF_STATE, false, NULL, 0, &st), 0);
	p = buf_data(&st);
	memset(&a, 0, sizeof(a));
	a.seq = 1;
	a.role = ANN_ROLE_HOST;
	a.posture = buf_data(&pw);
	a.posture_len = pw.len;
	a.has_inference_key = true;
	a.inference_key_epoch = sm_get_be32(p + 1);
	memcpy(a.inference_key, p + 5, 32);
	/* What the signer measured and its own key: signed, and it verifies. */
	assert_int_equal(announce_sign(&a, &id, &out), 0);
	{
		struct announce v;

		assert_int_equal(
		    announce_verify_parse(buf_data(&out), out.len, &v), 0);
		announce_free(&v);
	}
	/* A posture the signer did not measure: refused. */
	other.seccomp = TRI_FALSE;
	buf_reset(&pw);
	assert_int_equal(posture_write(&other, &pw), 0);
	a.posture = buf_data(&pw);
	a.posture_len = pw.len;
	buf_reset(&out);
	assert_int_equal(announce_sign(&a, &id, &out), SM_ERR_PERM);
	/* No posture at all claims nothing: signed. */
	a.posture = NULL;
	a.posture_len = 0;
	assert_int_equal(announce_sign(&a, &id, &out), 0);
	/* An inference key that is not the signer's: refused. */
	a.inference_key[0] ^= 1;
	buf_reset(&out);
	assert_int_equal(announce_sign(&a, &id, &out), SM_ERR_PERM);
	buf_clear(&pw);
	buf_clear(&out);
	buf_clear(&st);
}

/* The remote keyring, through the test signer. */
static int
rem_shared(void *ctx, uint32_t epoch, const uint8_t peer[INFKEY_PK_LEN],
    uint8_t shared[INFKEY_SHARED_LEN], uint8_t self_pk[INFKEY_PK_LEN])
{
	uint8_t req[36];
	struct buf b;
	int r;

	sm_put_be32(req, epoch);
	memcpy(req + 4, peer, 32);
	buf_init(&b, 64);
	r = ask(SIGNER_OP_INF_DH, false, req, sizeof(req), &b);
	if (r == 0) {
		assert_int_equal(b.len, 64);
		memcpy(shared, buf_data(&b), 32);
		memcpy(self_pk, buf_data(&b) + 32, 32);
	}
	buf_clear(&b);
	return r;
}

static int
rem_state(void *ctx, struct infkey_pub pubs[2], size_t *n, uint64_t *next_in)
{
	struct buf b;
	const uint8_t *p;

	buf_init(&b, 128);
	assert_int_equal(ask(SIGNER_OP_INF_STATE, false, NULL, 0, &b), 0);
	p = buf_data(&b);
	*n = p[0];
	for (size_t i = 0; i < *n; i++) {
		pubs[i].epoch = sm_get_be32(p + 1 + 36 * i);
		memcpy(pubs[i].pk, p + 5 + 36 * i, 32);
	}
	*next_in = sm_get_be32(p + 1 + 36 * *n);
	buf_clear(&b);
	return 0;
}

static void
test_remote_keyring(void **state)
{
	struct infkey_remote rem = {.shared = rem_shared, .state = rem_state};
	struct infkey *k;
	struct infkey_pub cur;
	uint8_t esk[32], epk[32], mine[32], theirs[32], self[32];
	bool rot;

	assert_int_equal(infkey_new_remote(&k, &rem, 100), 0);
	infkey_current(k, &cur);
	assert_int_not_equal(cur.epoch, 0);
	/* The sender's side of the DH equals what the signer computed. */
	crypto_box_keypair(epk, esk);
	assert_int_equal(crypto_box_beforenm(theirs, cur.pk, esk), 0);
	assert_int_equal(
	    infkey_shared_cached(k, cur.epoch, epk, mine, self), 0);
	assert_memory_equal(mine, theirs, 32);
	assert_memory_equal(self, cur.pk, 32);
	/* A hit from the cache gives the same. */
	memset(mine, 0, sizeof(mine));
	assert_int_equal(
	    infkey_shared_cached(k, cur.epoch, epk, mine, self), 0);
	assert_memory_equal(mine, theirs, 32);
	/* An epoch the signer never had. */
	assert_int_equal(
	    infkey_shared(k, cur.epoch + 1, epk, mine, self), SM_ERR_NOTFOUND);
	/* A remote ring does not rotate by itself, and says when to ask. */
	assert_int_equal(infkey_rotate(k, 200), SM_ERR_UNSUPP);
	assert_int_equal(infkey_tick(k, 100, &rot), 0);
	assert_false(rot);
	assert_true(infkey_next_deadline(k) > 100);
	infkey_free(k);
}

static void
test_channels_and_provider(void **state)
{
	uint8_t req[68] = {0};

	/* Provider ops on the fast channel, fast ops on the slow one. */
	{
		uint8_t hdr[SIGNER_HDR_LEN], frame[SIGNER_HDR_LEN + 64];
		struct buf out;

		buf_init(&out, 1024);
		assert_int_equal(signer_hdr_write(hdr, SIGNER_OP_ATT_ANSWER, 0,
				     64, SIGNER_REQ_MAX),
		    0);
		memcpy(frame, hdr, sizeof(hdr));
		memset(frame + sizeof(hdr), 0, 64);
		assert_int_equal(
		    signer_answer(S, frame, sizeof(frame), false, &out),
		    SM_ERR_PROTO);
		assert_int_equal(signer_hdr_write(hdr, SIGNER_OP_HELLO, 0, 0,
				     SIGNER_REQ_MAX),
		    0);
		assert_int_equal(signer_answer(S, hdr, sizeof(hdr), true, &out),
		    SM_ERR_PROTO);
		buf_clear(&out);
	}
	/* No provider: every attestation op says so. */
	assert_int_equal(
	    ask(SIGNER_OP_ATT_ANSWER, true, req, 64, NULL), SM_ERR_NOTFOUND);
	assert_int_equal(
	    ask(SIGNER_OP_ATT_MEASURE, true, req, 68, NULL), SM_ERR_NOTFOUND);
	/* No --api-key-file. */
	assert_int_equal(
	    ask(SIGNER_OP_APIKEYS, false, NULL, 0, NULL), SM_ERR_NOTFOUND);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_hello),
	    cmocka_unit_test(test_sign_domains),
	    cmocka_unit_test(test_sign_announcement),
	    cmocka_unit_test(test_remote_keyring),
	    cmocka_unit_test(test_channels_and_provider),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
