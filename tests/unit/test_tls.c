/*
 * TLS link keys (net/tls.c): handshakes between two contexts over memory
 * BIOs, where the certificate key is a fresh link key certified by the node
 * identity (held or delegated), plus the link-key certificate's parser and
 * verifier against tests/vectors/linkcert.json (Python-generated).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util_vectors.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "cJSON.h"
#include "core/err.h"
#include "core/util.h"
#include "crypto/sign.h"
#include "net/tls.h"

#define VECTORS "tests/vectors/linkcert.json"

/* ---- helpers --------------------------------------------------------- */

static void
seed_of(uint8_t seed[ID_SEED_LEN], uint8_t first)
{
	for (size_t i = 0; i < ID_SEED_LEN; i++)
		seed[i] = (uint8_t)(first + i);
}

static void
held(struct identity *id, uint8_t first)
{
	uint8_t seed[ID_SEED_LEN];

	seed_of(seed, first);
	assert_int_equal(identity_from_seed(id, seed), 0);
}

/* The in-test "signer": a key held in another struct identity. */
struct signer {
	struct identity key;
	int calls;
};

static int
signer_cb(void *ctx, const uint8_t *msg, size_t len, uint8_t sig[ID_SIG_LEN])
{
	struct signer *s = ctx;

	s->calls++;
	return identity_sign(&s->key, msg, len, sig);
}

/*
 * Run both handshakes until neither side makes progress. '*rd' / '*ra' get
 * the dialer's and the acceptor's last result.
 */
static void
pump(struct tls_conn *d, struct tls_conn *a, int *rd, int *ra)
{
	uint8_t buf[16384];
	size_t n;
	int moved;

	*rd = *ra = SM_ERR_AGAIN;
	for (int round = 0; round < 32; round++) {
		moved = 0;
		if (*rd == SM_ERR_AGAIN)
			*rd = tls_conn_handshake(d);
		while ((n = tls_conn_take(d, buf, sizeof(buf))) > 0) {
			assert_int_equal(tls_conn_feed(a, buf, n), 0);
			moved = 1;
		}
		if (*ra == SM_ERR_AGAIN)
			*ra = tls_conn_handshake(a);
		while ((n = tls_conn_take(a, buf, sizeof(buf))) > 0) {
			assert_int_equal(tls_conn_feed(d, buf, n), 0);
			moved = 1;
		}
		if (!moved && (*rd != SM_ERR_AGAIN || *ra != SM_ERR_AGAIN))
			break;
	}
}

/* Dial from context 'dc' (pinning 'pin', may be NULL) to context 'ac'. */
static void
handshake(struct tls_ctx *dc, struct tls_ctx *ac, const uint8_t *pin,
    struct tls_conn *d, struct tls_conn *a, int *rd, int *ra)
{
	assert_int_equal(tls_conn_init(d, dc, true, pin), 0);
	assert_int_equal(tls_conn_init(a, ac, false, NULL), 0);
	pump(d, a, rd, ra);
}

/* Data goes through once the handshake is done. */
static void
echo(struct tls_conn *d, struct tls_conn *a)
{
	uint8_t buf[4096], got[64];
	size_t n, m;

	assert_int_equal(tls_conn_write(d, (const uint8_t *)"ping", 4), 0);
	n = tls_conn_take(d, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(tls_conn_feed(a, buf, n), 0);
	assert_int_equal(tls_conn_read(a, got, sizeof(got), &m), 0);
	assert_int_equal(m, 4);
	assert_memory_equal(got, "ping", 4);
}

/* A context for 'id' whose link key comes from 'link_first' and whose
 * extension is certified until 'not_after' by 'signer_id' (its pk is what
 * the extension names). */
static struct tls_ctx *
ctx_certified(
    const struct identity *signer_id, uint8_t link_first, uint64_t not_after)
{
	uint8_t seed[ID_SEED_LEN], lpk[ID_PK_LEN], ext[TLS_LINKCERT_LEN];
	struct identity link;
	struct tls_ctx *t;

	seed_of(seed, link_first);
	assert_int_equal(identity_from_seed(&link, seed), 0);
	memcpy(lpk, link.pk, ID_PK_LEN);
	identity_clear(&link);
	assert_int_equal(tls_linkcert_write(ext, signer_id, lpk, not_after), 0);
	assert_int_equal(
	    tls_ctx_new_raw(&t, seed, ext, sizeof(ext), not_after), 0);
	return t;
}

/* ---- handshakes ------------------------------------------------------ */

/* A held identity and a delegated one (signatures from the in-test signer)
 * link both ways; each side's peer_pk is the other's identity key, and the
 * certificate keys are neither identity. */
static void
test_delegated_handshake(void **state)
{
	struct identity a, b;
	struct signer s;
	struct tls_ctx *ta, *tb;
	struct tls_conn d, c;
	uint8_t la[ID_PK_LEN], lb[ID_PK_LEN];
	int rd, ra;

	(void)state;
	held(&a, 0x01);
	held(&s.key, 0x41);
	s.calls = 0;
	identity_delegated(&b, s.key.pk, signer_cb, &s);
	assert_null(b.sk);
	assert_int_equal(tls_ctx_new(&ta, &a), 0);
	assert_int_equal(tls_ctx_new(&tb, &b), 0);
	assert_int_equal(s.calls, 1);
	tls_ctx_cert_pk(ta, la);
	tls_ctx_cert_pk(tb, lb);
	assert_memory_not_equal(la, a.pk, ID_PK_LEN);
	assert_memory_not_equal(lb, b.pk, ID_PK_LEN);
	assert_true(tls_ctx_not_after(tb) > sm_wall_s());
	assert_true(
	    tls_ctx_not_after(tb) <= sm_wall_s() + TLS_LINKCERT_LIFETIME_S);

	/* held dials delegated, pinning its identity */
	handshake(ta, tb, b.pk, &d, &c, &rd, &ra);
	assert_int_equal(rd, 0);
	assert_int_equal(ra, 0);
	assert_memory_equal(d.peer_pk, b.pk, ID_PK_LEN);
	assert_memory_equal(c.peer_pk, a.pk, ID_PK_LEN);
	assert_memory_equal(d.cert_pk, lb, ID_PK_LEN);
	assert_memory_equal(c.cert_pk, la, ID_PK_LEN);
	assert_true(d.linkcert && c.linkcert);
	echo(&d, &c);
	tls_conn_clear(&d);
	tls_conn_clear(&c);

	/* delegated dials held */
	handshake(tb, ta, a.pk, &d, &c, &rd, &ra);
	assert_int_equal(rd, 0);
	assert_int_equal(ra, 0);
	assert_memory_equal(d.peer_pk, a.pk, ID_PK_LEN);
	assert_memory_equal(c.peer_pk, b.pk, ID_PK_LEN);
	echo(&c, &d);
	tls_conn_clear(&d);
	tls_conn_clear(&c);
	/* The signer is asked once per context, not per handshake. */
	assert_int_equal(s.calls, 1);

	tls_ctx_free(ta);
	tls_ctx_free(tb);
	identity_clear(&a);
	identity_clear(&s.key);
}

/* The certificate carries the extension under the documented OID,
 * non-critical, and its bytes parse to the identity. */
static void
test_certificate_extension(void **state)
{
	struct identity a, b;
	struct tls_ctx *ta, *tb;
	struct tls_conn d, c;
	ASN1_OBJECT *oid;
	X509 *x;
	X509_EXTENSION *e;
	const ASN1_OCTET_STRING *v;
	struct tls_linkcert lc;
	uint8_t der[64], want[64], *p = der;
	cJSON *V = vec_load(VECTORS);
	int rd, ra, i, n;

	(void)state;
	held(&a, 0x01);
	held(&b, 0x21);
	assert_int_equal(tls_ctx_new(&ta, &a), 0);
	assert_int_equal(tls_ctx_new(&tb, &b), 0);
	handshake(ta, tb, b.pk, &d, &c, &rd, &ra);
	assert_int_equal(rd, 0);
	oid = OBJ_txt2obj(TLS_LINKCERT_OID, 1);
	assert_non_null(oid);
	n = i2d_ASN1_OBJECT(oid, &p);
	assert_int_equal(n, 21);
	vec_hex(want, 21, V, "oid_der");
	assert_memory_equal(der, want, 21);
	x = SSL_get0_peer_certificate(d.ssl);
	assert_non_null(x);
	i = X509_get_ext_by_OBJ(x, oid, -1);
	assert_true(i >= 0);
	assert_int_equal(X509_get_ext_by_OBJ(x, oid, i), -1);
	e = X509_get_ext(x, i);
	assert_int_equal(X509_EXTENSION_get_critical(e), 0);
	v = X509_EXTENSION_get_data(e);
	assert_int_equal(ASN1_STRING_length(v), TLS_LINKCERT_LEN);
	assert_int_equal(
	    tls_linkcert_parse(ASN1_STRING_get0_data(v), TLS_LINKCERT_LEN, &lc),
	    0);
	assert_memory_equal(lc.identity_pk, b.pk, ID_PK_LEN);
	assert_int_equal(lc.not_after, tls_ctx_not_after(tb));
	ASN1_OBJECT_free(oid);
	tls_conn_clear(&d);
	tls_conn_clear(&c);
	tls_ctx_free(ta);
	tls_ctx_free(tb);
	identity_clear(&a);
	identity_clear(&b);
	cJSON_Delete(V);
}

/* Pinning the peer's link (certificate) key instead of its node id fails. */
static void
test_pin_link_key_refused(void **state)
{
	struct identity a, b;
	struct tls_ctx *ta, *tb;
	struct tls_conn d, c;
	uint8_t lb[ID_PK_LEN];
	int rd, ra;

	(void)state;
	held(&a, 0x01);
	held(&b, 0x21);
	assert_int_equal(tls_ctx_new(&ta, &a), 0);
	assert_int_equal(tls_ctx_new(&tb, &b), 0);
	tls_ctx_cert_pk(tb, lb);
	handshake(ta, tb, lb, &d, &c, &rd, &ra);
	assert_int_equal(rd, SM_ERR_VERIFY);
	assert_true(d.pin_mismatch);
	assert_false(d.have_peer);
	assert_int_not_equal(ra, 0);
	tls_conn_clear(&d);
	tls_conn_clear(&c);
	tls_ctx_free(ta);
	tls_ctx_free(tb);
	identity_clear(&a);
	identity_clear(&b);
}

/* Refused on both ends: the dialer pinning 'who', and an acceptor. */
static void
expect_refused(struct tls_ctx *good, struct tls_ctx *bad,
    const uint8_t who[ID_PK_LEN], const char *why)
{
	struct tls_conn d, c;
	int rd, ra;

	/* 'bad' as the acceptor: the dialer refuses it */
	handshake(good, bad, who, &d, &c, &rd, &ra);
	assert_int_equal(rd, SM_ERR_VERIFY);
	assert_false(d.have_peer);
	assert_non_null(d.refused);
	assert_non_null(strstr(d.refused, why));
	assert_int_not_equal(ra, 0);
	tls_conn_clear(&d);
	tls_conn_clear(&c);
	/* 'bad' as the dialer: the acceptor refuses it */
	handshake(bad, good, NULL, &d, &c, &rd, &ra);
	assert_int_equal(ra, SM_ERR_VERIFY);
	assert_false(c.have_peer);
	assert_non_null(c.refused);
	assert_non_null(strstr(c.refused, why));
	tls_conn_clear(&d);
	tls_conn_clear(&c);
}

/* A link certificate naming B but signed by another key X. */
static void
test_forged_linkcert_refused(void **state)
{
	struct identity a, b, forger;
	struct signer x;
	struct tls_ctx *ta, *bad;

	(void)state;
	held(&a, 0x01);
	held(&b, 0x21);
	held(&x.key, 0x61);
	x.calls = 0;
	/* names B's identity, signatures by X */
	identity_delegated(&forger, b.pk, signer_cb, &x);
	assert_int_equal(tls_ctx_new(&ta, &a), 0);
	bad = ctx_certified(&forger, 0x81, sm_wall_s() + 3600);
	assert_int_equal(x.calls, 1);
	expect_refused(ta, bad, b.pk, "signature");
	tls_ctx_free(bad);
	/* the same, with tls_ctx_new() on the forging identity */
	assert_int_equal(tls_ctx_new(&bad, &forger), 0);
	expect_refused(ta, bad, b.pk, "signature");
	tls_ctx_free(bad);
	tls_ctx_free(ta);
	identity_clear(&a);
	identity_clear(&b);
	identity_clear(&x.key);
}

/* Expired, and certified for longer than TLS_LINKCERT_LIFETIME_S allows;
 * just inside the skew is still accepted (control). */
static void
test_lifetime(void **state)
{
	struct identity a, b;
	struct tls_ctx *ta, *t;
	struct tls_conn d, c;
	uint64_t now = sm_wall_s();
	int rd, ra;

	(void)state;
	held(&a, 0x01);
	held(&b, 0x21);
	assert_int_equal(tls_ctx_new(&ta, &a), 0);

	t = ctx_certified(&b, 0x81, now - TLS_LINKCERT_SKEW_S - 60);
	expect_refused(ta, t, b.pk, "expired");
	tls_ctx_free(t);
	t = ctx_certified(&b, 0x81, now - 7 * 86400);
	expect_refused(ta, t, b.pk, "expired");
	tls_ctx_free(t);
	t = ctx_certified(&b, 0x81,
	    now + TLS_LINKCERT_LIFETIME_S + TLS_LINKCERT_SKEW_S + 3600);
	expect_refused(ta, t, b.pk, "longer");
	tls_ctx_free(t);
	t = ctx_certified(&b, 0x81, UINT64_MAX);
	expect_refused(ta, t, b.pk, "longer");
	tls_ctx_free(t);

	/* controls: a minute ago (inside the skew), and a full lifetime */
	t = ctx_certified(&b, 0x81, now - 60);
	handshake(ta, t, b.pk, &d, &c, &rd, &ra);
	assert_int_equal(rd, 0);
	assert_int_equal(ra, 0);
	assert_memory_equal(d.peer_pk, b.pk, ID_PK_LEN);
	tls_conn_clear(&d);
	tls_conn_clear(&c);
	tls_ctx_free(t);
	t = ctx_certified(&b, 0x81, now + TLS_LINKCERT_LIFETIME_S);
	handshake(ta, t, b.pk, &d, &c, &rd, &ra);
	assert_int_equal(rd, 0);
	tls_conn_clear(&d);
	tls_conn_clear(&c);
	tls_ctx_free(t);

	tls_ctx_free(ta);
	identity_clear(&a);
	identity_clear(&b);
}

/* Malformed extensions: refused whatever the pin (the acceptor pins
 * nothing), never read as "no extension". */
static void
test_malformed_refused(void **state)
{
	struct identity a, b;
	struct tls_ctx *ta, *t;
	uint8_t seed[ID_SEED_LEN], lpk[ID_PK_LEN], ext[TLS_LINKCERT_LEN + 1];
	struct identity link;
	uint64_t na = sm_wall_s() + 3600;

	(void)state;
	held(&a, 0x01);
	held(&b, 0x21);
	assert_int_equal(tls_ctx_new(&ta, &a), 0);
	seed_of(seed, 0x81);
	assert_int_equal(identity_from_seed(&link, seed), 0);
	memcpy(lpk, link.pk, ID_PK_LEN);
	assert_int_equal(tls_linkcert_write(ext, &b, lpk, na), 0);

	/* short: the last byte missing */
	assert_int_equal(
	    tls_ctx_new_raw(&t, seed, ext, TLS_LINKCERT_LEN - 1, na), 0);
	expect_refused(ta, t, b.pk, "malformed");
	tls_ctx_free(t);
	/* one byte too many */
	ext[TLS_LINKCERT_LEN] = 0;
	assert_int_equal(
	    tls_ctx_new_raw(&t, seed, ext, TLS_LINKCERT_LEN + 1, na), 0);
	expect_refused(ta, t, b.pk, "malformed");
	tls_ctx_free(t);
	/* empty */
	assert_int_equal(tls_ctx_new_raw(&t, seed, ext, 0, na), 0);
	expect_refused(ta, t, b.pk, "malformed");
	tls_ctx_free(t);
	/* version 2 */
	ext[2] = 2;
	assert_int_equal(
	    tls_ctx_new_raw(&t, seed, ext, TLS_LINKCERT_LEN, na), 0);
	expect_refused(ta, t, b.pk, "version");
	tls_ctx_free(t);
	/* control: the same bytes with version 1 link */
	ext[2] = 1;
	assert_int_equal(
	    tls_ctx_new_raw(&t, seed, ext, TLS_LINKCERT_LEN, na), 0);
	{
		struct tls_conn d, c;
		int rd, ra;

		handshake(ta, t, b.pk, &d, &c, &rd, &ra);
		assert_int_equal(rd, 0);
		assert_int_equal(ra, 0);
		tls_conn_clear(&d);
		tls_conn_clear(&c);
	}
	tls_ctx_free(t);
	identity_clear(&link);
	tls_ctx_free(ta);
	identity_clear(&a);
	identity_clear(&b);
}

/* A node of the previous version (certificate key = identity key, no
 * extension) still links both ways, with peer_pk = its certificate key. */
static void
test_legacy_peer(void **state)
{
	struct identity a;
	struct tls_ctx *ta, *old;
	struct tls_conn d, c;
	uint8_t seed[ID_SEED_LEN];
	struct identity o;
	int rd, ra;

	(void)state;
	held(&a, 0x01);
	seed_of(seed, 0xa1);
	assert_int_equal(identity_from_seed(&o, seed), 0);
	assert_int_equal(tls_ctx_new(&ta, &a), 0);
	assert_int_equal(tls_ctx_new_raw(&old, seed, NULL, 0, 0), 0);
	assert_int_equal(tls_ctx_not_after(old), 0);

	handshake(ta, old, o.pk, &d, &c, &rd, &ra);
	assert_int_equal(rd, 0);
	assert_int_equal(ra, 0);
	assert_memory_equal(d.peer_pk, o.pk, ID_PK_LEN);
	assert_memory_equal(d.cert_pk, o.pk, ID_PK_LEN);
	assert_false(d.linkcert);
	assert_memory_equal(c.peer_pk, a.pk, ID_PK_LEN);
	assert_true(c.linkcert);
	tls_conn_clear(&d);
	tls_conn_clear(&c);

	handshake(old, ta, a.pk, &d, &c, &rd, &ra);
	assert_int_equal(rd, 0);
	assert_int_equal(ra, 0);
	assert_memory_equal(c.peer_pk, o.pk, ID_PK_LEN);
	assert_false(c.linkcert);
	tls_conn_clear(&d);
	tls_conn_clear(&c);

	tls_ctx_free(old);
	tls_ctx_free(ta);
	identity_clear(&a);
	identity_clear(&o);
}

/* A context freed while connections made from it are mid-handshake: they
 * still complete (each SSL holds the OpenSSL context), as link.c relies on
 * when it renews the link key. */
static void
test_ctx_free_with_live_conns(void **state)
{
	struct identity a, b;
	struct tls_ctx *ta, *tb, *tb2;
	struct tls_conn d, c;
	uint8_t l1[ID_PK_LEN], l2[ID_PK_LEN];
	int rd, ra;

	(void)state;
	held(&a, 0x01);
	held(&b, 0x21);
	assert_int_equal(tls_ctx_new(&ta, &a), 0);
	assert_int_equal(tls_ctx_new(&tb, &b), 0);
	tls_ctx_cert_pk(tb, l1);
	assert_int_equal(tls_conn_init(&d, ta, true, b.pk), 0);
	assert_int_equal(tls_conn_init(&c, tb, false, NULL), 0);
	tls_ctx_free(ta);
	tls_ctx_free(tb);
	pump(&d, &c, &rd, &ra);
	assert_int_equal(rd, 0);
	assert_int_equal(ra, 0);
	assert_memory_equal(d.cert_pk, l1, ID_PK_LEN);
	echo(&d, &c);
	tls_conn_clear(&d);
	tls_conn_clear(&c);
	/* a renewed context has a new link key, same node id */
	assert_int_equal(tls_ctx_new(&tb2, &b), 0);
	tls_ctx_cert_pk(tb2, l2);
	assert_memory_not_equal(l1, l2, ID_PK_LEN);
	tls_ctx_free(tb2);
	identity_clear(&a);
	identity_clear(&b);
}

/* An identity that can sign nothing makes no context. */
static void
test_no_signer(void **state)
{
	struct identity z;
	struct tls_ctx *t = (struct tls_ctx *)&z;
	uint8_t pk[ID_PK_LEN] = {1};

	(void)state;
	identity_delegated(&z, pk, NULL, NULL);
	assert_int_equal(tls_ctx_new(&t, &z), SM_ERR_INVAL);
	assert_null(t);
	assert_int_equal(tls_ctx_new(&t, NULL), SM_ERR_INVAL);
}

/* ---- the format alone, against the Python vectors --------------------- */

static uint64_t
num(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	assert_true(cJSON_IsNumber(v));
	return (uint64_t)v->valuedouble;
}

static size_t
hex_any(uint8_t *out, size_t cap, const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	size_t n;

	assert_true(cJSON_IsString(v));
	n = strlen(v->valuestring) / 2;
	assert_true(n <= cap);
	if (n > 0)
		assert_int_equal(sm_unhex(out, n, v->valuestring), 0);
	return n;
}

static void
test_vectors(void **state)
{
	cJSON *V = vec_load(VECTORS);
	const cJSON *arr, *it;
	struct identity id;
	struct tls_linkcert lc;
	uint8_t seed[ID_SEED_LEN], lpk[ID_PK_LEN], ipk[ID_PK_LEN];
	uint8_t want[TLS_LINKCERT_LEN], got[TLS_LINKCERT_LEN];
	uint8_t msg[TLS_LINKCERT_MSG_LEN], wmsg[TLS_LINKCERT_MSG_LEN];
	uint8_t sig[ID_SIG_LEN], buf[256], dom[TLS_LINKCERT_DOMAIN_LEN];
	uint64_t na;
	size_t n;
	int e;

	(void)state;
	assert_string_equal(
	    cJSON_GetObjectItemCaseSensitive(V, "oid")->valuestring,
	    TLS_LINKCERT_OID);
	assert_int_equal(num(V, "lifetime_s"), TLS_LINKCERT_LIFETIME_S);
	assert_int_equal(num(V, "skew_s"), TLS_LINKCERT_SKEW_S);
	vec_hex(dom, sizeof(dom), V, "domain");
	assert_memory_equal(dom, TLS_LINKCERT_DOMAIN, TLS_LINKCERT_DOMAIN_LEN);
	vec_hex(seed, sizeof(seed), V, "identity_seed");
	vec_hex(ipk, sizeof(ipk), V, "identity_pk");
	vec_hex(lpk, sizeof(lpk), V, "link_pk");
	vec_hex(want, sizeof(want), V, "ext");
	vec_hex(wmsg, sizeof(wmsg), V, "message");
	vec_hex(sig, sizeof(sig), V, "signature");
	na = num(V, "not_after");

	/* writer: same bytes as Python */
	assert_int_equal(identity_from_seed(&id, seed), 0);
	assert_memory_equal(id.pk, ipk, ID_PK_LEN);
	tls_linkcert_message(msg, lpk, ipk, na);
	assert_memory_equal(msg, wmsg, sizeof(msg));
	assert_int_equal(tls_linkcert_write(got, &id, lpk, na), 0);
	assert_memory_equal(got, want, TLS_LINKCERT_LEN);
	identity_clear(&id);

	/* parser */
	assert_int_equal(tls_linkcert_parse(want, sizeof(want), &lc), 0);
	assert_int_equal(lc.version, 1);
	assert_memory_equal(lc.identity_pk, ipk, ID_PK_LEN);
	assert_int_equal(lc.not_after, na);
	assert_memory_equal(lc.sig, sig, ID_SIG_LEN);

	/* verifier: the window around not_after */
	arr = cJSON_GetObjectItemCaseSensitive(V, "now_valid");
	cJSON_ArrayForEach(it, arr)
	{
		assert_int_equal(
		    tls_linkcert_verify(&lc, lpk, (uint64_t)it->valuedouble),
		    0);
	}
	arr = cJSON_GetObjectItemCaseSensitive(V, "now_expired");
	cJSON_ArrayForEach(it, arr)
	{
		assert_int_equal(
		    tls_linkcert_verify(&lc, lpk, (uint64_t)it->valuedouble),
		    SM_ERR_STALE);
	}
	arr = cJSON_GetObjectItemCaseSensitive(V, "now_too_early");
	cJSON_ArrayForEach(it, arr)
	{
		assert_int_equal(
		    tls_linkcert_verify(&lc, lpk, (uint64_t)it->valuedouble),
		    SM_ERR_TOOBIG);
	}
	/* for another certificate key it does not verify */
	vec_hex(buf, ID_PK_LEN, V, "other_pk");
	assert_int_equal(tls_linkcert_verify(&lc, buf, na), SM_ERR_VERIFY);

	/* malformed: refused by the parser, '*out' zeroed */
	arr = cJSON_GetObjectItemCaseSensitive(V, "invalid_parse");
	assert_true(cJSON_GetArraySize(arr) >= 8);
	cJSON_ArrayForEach(it, arr)
	{
		const char *err =
		    cJSON_GetObjectItemCaseSensitive(it, "error")->valuestring;

		n = hex_any(buf, sizeof(buf), it, "ext");
		e = strcmp(err, "unsupp") == 0 ? SM_ERR_UNSUPP : SM_ERR_INVAL;
		memset(&lc, 0xa5, sizeof(lc));
		assert_int_equal(tls_linkcert_parse(buf, n, &lc), e);
		assert_int_equal(lc.not_after, 0);
		assert_int_equal(lc.version, 0);
	}
	/* well-formed but not valid for link_pk at not_after */
	arr = cJSON_GetObjectItemCaseSensitive(V, "invalid_verify");
	assert_true(cJSON_GetArraySize(arr) >= 4);
	cJSON_ArrayForEach(it, arr)
	{
		n = hex_any(buf, sizeof(buf), it, "ext");
		assert_int_equal(tls_linkcert_parse(buf, n, &lc), 0);
		assert_int_equal(
		    tls_linkcert_verify(&lc, lpk, na - 10), SM_ERR_VERIFY);
	}
	cJSON_Delete(V);
}

/* Every length but the exact one is refused; NULL input too. */
static void
test_parse_lengths(void **state)
{
	uint8_t in[TLS_LINKCERT_LEN + 8];
	struct tls_linkcert lc;

	(void)state;
	memset(in, 0, sizeof(in));
	in[0] = 0x04;
	in[1] = TLS_LINKCERT_BODY_LEN;
	in[2] = TLS_LINKCERT_VERSION;
	for (size_t n = 0; n <= sizeof(in); n++)
		assert_int_equal(tls_linkcert_parse(in, n, &lc),
		    n == TLS_LINKCERT_LEN ? 0 : SM_ERR_INVAL);
	assert_int_equal(
	    tls_linkcert_parse(NULL, TLS_LINKCERT_LEN, &lc), SM_ERR_INVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_delegated_handshake),
	    cmocka_unit_test(test_certificate_extension),
	    cmocka_unit_test(test_pin_link_key_refused),
	    cmocka_unit_test(test_forged_linkcert_refused),
	    cmocka_unit_test(test_lifetime),
	    cmocka_unit_test(test_malformed_refused),
	    cmocka_unit_test(test_legacy_peer),
	    cmocka_unit_test(test_ctx_free_with_live_conns),
	    cmocka_unit_test(test_no_signer),
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_parse_lengths),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
