#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util_vectors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cJSON.h"
#include "core/err.h"
#include "core/util.h"
#include "mesh/token.h"

#define VECTORS "tests/vectors/token.json"

static void
fill(uint8_t *p, size_t n, uint8_t start)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(start + i);
}

/* A token for a real Ed25519 key derived from a fixed seed. */
static void
make_token(struct token *t)
{
	uint8_t secret[TOKEN_SECRET_LEN], seed[32], pk[32], sk[64];

	fill(secret, sizeof(secret), 0x40);
	fill(seed, sizeof(seed), 0x01);
	crypto_sign_seed_keypair(pk, sk, seed);
	token_init(t, secret, pk);
	assert_int_equal(token_add_addr(t, "192.168.1.20:7946"), 0);
	assert_int_equal(token_add_addr(t, "[fe80::1%eth0]:7946"), 0);
	assert_int_equal(token_add_addr(t, "127.0.0.1:7946"), 0);
}

static void
test_round_trip(void **state)
{
	struct token t, u;
	char s[TOKEN_STR_MAX];
	const char *why = "x";

	make_token(&t);
	assert_int_equal(token_write(&t, s, sizeof(s)), 0);
	assert_null(strchr(s, '='));
	assert_null(strchr(s, '+'));
	assert_null(strchr(s, '/'));
	assert_int_equal(token_parse(s, &u, &why), 0);
	assert_null(why);
	assert_memory_equal(&t, &u, sizeof(t));
	token_clear(&u);

	/* no addresses at all is fine */
	t.n_addrs = 0;
	memset(t.addrs, 0, sizeof(t.addrs));
	assert_int_equal(token_write(&t, s, sizeof(s)), 0);
	assert_int_equal(token_parse(s, &u, NULL), 0);
	assert_int_equal(u.n_addrs, 0);
	token_clear(&u);
	token_clear(&t);
}

static void
test_every_truncation_refused(void **state)
{
	struct token t, u;
	char s[TOKEN_STR_MAX], cut[TOKEN_STR_MAX];
	size_t len, i;
	const char *why;

	make_token(&t);
	assert_int_equal(token_write(&t, s, sizeof(s)), 0);
	len = strlen(s);
	for (i = 0; i < len; i++) {
		memcpy(cut, s, i);
		cut[i] = '\0';
		why = NULL;
		assert_int_not_equal(token_parse(cut, &u, &why), 0);
		assert_non_null(why);
		/* out is wiped on failure */
		assert_true(sodium_is_zero((uint8_t *)&u, sizeof(u)));
	}
	token_clear(&t);
}

static void
test_every_flip_refused(void **state)
{
	struct token t, u;
	char s[TOKEN_STR_MAX];
	size_t len, i;
	char c;

	make_token(&t);
	assert_int_equal(token_write(&t, s, sizeof(s)), 0);
	len = strlen(s);
	for (i = 0; i < len; i++) {
		c = s[i];
		s[i] = c == 'A' ? 'B' : 'A';
		/* the last character may carry unused bits; others must fail */
		if (i + 1 < len)
			assert_int_not_equal(token_parse(s, &u, NULL), 0);
		else
			token_clear(&u);
		s[i] = c;
	}
	token_clear(&t);
}

static void
test_bad_input(void **state)
{
	struct token t, u;
	uint8_t bin[TOKEN_BIN_MAX], h[16];
	char s[TOKEN_STR_MAX], big[TOKEN_STR_MAX + 10];
	const char *why;
	size_t n;

	assert_int_equal(token_parse("", &u, &why), SM_ERR_INVAL);
	assert_string_equal(why, "the token is empty");
	assert_int_equal(token_parse(NULL, &u, &why), SM_ERR_INVAL);
	assert_int_equal(token_parse("abc$def", &u, &why), SM_ERR_INVAL);
	assert_non_null(strstr(why, "base64url"));
	assert_int_equal(token_parse("abc=", &u, &why), SM_ERR_INVAL);
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(token_parse(big, &u, &why), SM_ERR_TOOBIG);

	/* decode a good token to forge variants with valid checksums */
	make_token(&t);
	assert_int_equal(token_write(&t, s, sizeof(s)), 0);
	assert_int_equal(
	    sodium_base642bin(bin, sizeof(bin), s, strlen(s), NULL, &n, NULL,
		sodium_base64_VARIANT_URLSAFE_NO_PADDING),
	    0);

	/* bytes >= 0x80 are not base64url (libsodium 1.0.18 aliases them
	 * onto '-'/'_'; found by fuzz_token) */
	{
		char *u_ = strchr(s, '_') ? strchr(s, '_') : strchr(s, '-');

		assert_non_null(u_);
		*u_ = (char)0xdc;
		assert_int_equal(token_parse(s, &u, &why), SM_ERR_INVAL);
		assert_non_null(strstr(why, "base64url"));
	}

	/* wrong version, even with a valid checksum */
	bin[0] = 2;
	crypto_generichash(h, sizeof(h), bin, n - 4, NULL, 0);
	memcpy(bin + n - 4, h, 4);
	sodium_bin2base64(
	    s, sizeof(s), bin, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	assert_int_equal(token_parse(s, &u, &why), SM_ERR_UNSUPP);
	assert_non_null(strstr(why, "version"));

	/* mesh id not derived from the secret, valid checksum */
	bin[0] = 1;
	bin[1] ^= 1;
	crypto_generichash(h, sizeof(h), bin, n - 4, NULL, 0);
	memcpy(bin + n - 4, h, 4);
	sodium_bin2base64(
	    s, sizeof(s), bin, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	assert_int_equal(token_parse(s, &u, &why), SM_ERR_INVAL);
	assert_non_null(strstr(why, "mesh id"));
	bin[1] ^= 1;

	/* too many addresses claimed */
	bin[TOKEN_FIXED_LEN - 1] = TOKEN_MAX_ADDRS + 1;
	crypto_generichash(h, sizeof(h), bin, n - 4, NULL, 0);
	memcpy(bin + n - 4, h, 4);
	sodium_bin2base64(
	    s, sizeof(s), bin, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	assert_int_equal(token_parse(s, &u, &why), SM_ERR_INVAL);
	assert_non_null(strstr(why, "too many"));
	token_clear(&t);
}

static void
test_addresses(void **state)
{
	static const char *good[] = {"10.0.0.1:1", "host.example:65535",
	    "[::1]:9337", "[fe80::1%eth0]:80", "a_b-c:443"};
	static const char *bad[] = {"", ":80", "host", "host:", "host:0",
	    "host:65536", "host:123456", "[::1]", "[]:80", "::1:80", "host :80",
	    "ho$t:80", "[::1%]:80", "[::1]x:80", "host:8a", "host:+80"};
	struct token t;
	char host[64];
	uint16_t port;
	size_t i;

	for (i = 0; i < SM_ARRAY_LEN(good); i++)
		assert_int_equal(token_addr_check(good[i], strlen(good[i])), 0);
	for (i = 0; i < SM_ARRAY_LEN(bad); i++)
		assert_int_equal(
		    token_addr_check(bad[i], strlen(bad[i])), SM_ERR_INVAL);
	assert_int_equal(
	    token_addr_split("[::1]:9337", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 9337);
	assert_int_equal(
	    token_addr_split("node-a:80", host, sizeof(host), &port), 0);
	assert_string_equal(host, "node-a");
	assert_int_equal(port, 80);
	assert_int_equal(
	    token_addr_split("node-a:80", host, 4, &port), SM_ERR_TOOBIG);

	make_token(&t);
	assert_int_equal(token_add_addr(&t, "bad"), SM_ERR_INVAL);
	while (t.n_addrs < TOKEN_MAX_ADDRS)
		assert_int_equal(token_add_addr(&t, "10.0.0.1:1"), 0);
	assert_int_equal(token_add_addr(&t, "10.0.0.1:1"), SM_ERR_TOOBIG);
	token_clear(&t);
}

static void
test_join_proof(void **state)
{
	uint8_t secret[32], other[32], exp1[32], exp2[32], a[32], b[32];
	uint8_t proof[TOKEN_PROOF_LEN];

	fill(secret, 32, 1);
	fill(other, 32, 2);
	fill(exp1, 32, 3);
	fill(exp2, 32, 4);
	fill(a, 32, 5);
	fill(b, 32, 6);
	assert_int_equal(token_join_proof(secret, exp1, 32, a, b, proof), 0);
	assert_int_equal(
	    token_join_proof_check(secret, exp1, 32, a, b, proof), 0);
	/* wrong secret */
	assert_int_equal(token_join_proof_check(other, exp1, 32, a, b, proof),
	    SM_ERR_VERIFY);
	/* another TLS session: a captured proof does not replay */
	assert_int_equal(token_join_proof_check(secret, exp2, 32, a, b, proof),
	    SM_ERR_VERIFY);
	/* swapped roles: a proof cannot be reflected back */
	assert_int_equal(token_join_proof_check(secret, exp1, 32, b, a, proof),
	    SM_ERR_VERIFY);
	/* another prover claiming the same proof */
	assert_int_equal(token_join_proof_check(secret, exp1, 32, b, b, proof),
	    SM_ERR_VERIFY);
	/* exporter length is part of the message and bounded */
	assert_int_equal(token_join_proof_check(secret, exp1, 31, a, b, proof),
	    SM_ERR_VERIFY);
	assert_int_equal(
	    token_join_proof(secret, exp1, 15, a, b, proof), SM_ERR_INVAL);
	assert_int_equal(
	    token_join_proof(secret, NULL, 32, a, b, proof), SM_ERR_INVAL);
}

static const char *
jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	assert_true(cJSON_IsString(v));
	return v->valuestring;
}

static void
unhex(uint8_t *out, size_t len, const char *hex)
{
	assert_int_equal(strlen(hex), 2 * len);
	assert_int_equal(sm_unhex(out, len, hex), 0);
}

static void
test_vectors(void **state)
{
	cJSON *j = vec_load(VECTORS), *tok, *bad, *pf, *it, *addrs;
	uint8_t secret[32], node[32], mesh[16], exporter[64], prover[32],
	    verifier[32], proof[32], want[32];
	char s[TOKEN_STR_MAX];
	struct token t, u;
	size_t elen;

	tok = cJSON_GetObjectItemCaseSensitive(j, "token");
	assert_non_null(tok);
	unhex(secret, 32, jstr(tok, "join_secret"));
	unhex(node, 32, jstr(tok, "node_id"));
	unhex(mesh, 16, jstr(tok, "mesh_id"));
	token_init(&t, secret, node);
	assert_memory_equal(t.mesh_id, mesh, 16);
	addrs = cJSON_GetObjectItemCaseSensitive(tok, "addresses");
	cJSON_ArrayForEach(it, addrs)
	{
		assert_int_equal(token_add_addr(&t, it->valuestring), 0);
	}
	assert_int_equal(token_write(&t, s, sizeof(s)), 0);
	assert_string_equal(s, jstr(tok, "text"));
	assert_int_equal(token_parse(jstr(tok, "text"), &u, NULL), 0);
	assert_memory_equal(&t, &u, sizeof(t));
	token_clear(&t);
	token_clear(&u);

	bad = cJSON_GetObjectItemCaseSensitive(j, "invalid");
	cJSON_ArrayForEach(it, bad)
	{
		const char *why = NULL;

		assert_int_not_equal(
		    token_parse(jstr(it, "text"), &u, &why), 0);
		assert_string_equal(why, jstr(it, "error"));
	}

	pf = cJSON_GetObjectItemCaseSensitive(j, "join_proof");
	assert_non_null(pf);
	unhex(secret, 32, jstr(pf, "join_secret"));
	elen = strlen(jstr(pf, "exporter")) / 2;
	assert_true(elen <= sizeof(exporter));
	unhex(exporter, elen, jstr(pf, "exporter"));
	unhex(prover, 32, jstr(pf, "prover_id"));
	unhex(verifier, 32, jstr(pf, "verifier_id"));
	unhex(want, 32, jstr(pf, "proof"));
	assert_int_equal(
	    token_join_proof(secret, exporter, elen, prover, verifier, proof),
	    0);
	assert_memory_equal(proof, want, 32);
	cJSON_Delete(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_every_truncation_refused),
	    cmocka_unit_test(test_every_flip_refused),
	    cmocka_unit_test(test_bad_input),
	    cmocka_unit_test(test_addresses),
	    cmocka_unit_test(test_join_proof),
	    cmocka_unit_test(test_vectors),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("token", tests, NULL, NULL);
}
