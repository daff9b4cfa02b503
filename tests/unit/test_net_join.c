/* The link's join proof: its definition, and agreement with mesh/token.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/err.h"
#include "mesh/token.h"
#include "net/join.h"
#include "net/tls.h"

static void
fill(uint8_t *p, size_t n, uint8_t start)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(start + i);
}

static void
test_definition(void **state)
{
	uint8_t secret[32], exp[32], a[32], b[32], msg[17 + 1 + 96];
	uint8_t out[JOIN_PROOF_LEN], want[32], rev[JOIN_PROOF_LEN];

	fill(secret, 32, 0x00);
	fill(exp, 32, 0x40);
	fill(a, 32, 0x80);
	fill(b, 32, 0xc0);
	memcpy(msg, "sealmesh-join-v1", 17); /* with its NUL */
	msg[17] = 32;
	memcpy(msg + 18, exp, 32);
	memcpy(msg + 50, a, 32);
	memcpy(msg + 82, b, 32);
	crypto_auth_hmacsha256(want, msg, sizeof(msg), secret);
	assert_int_equal(join_proof(out, secret, 32, exp, a, b, NULL), 0);
	assert_memory_equal(out, want, 32);
	/* Direction matters: a proof cannot be reflected. */
	assert_int_equal(join_proof(rev, secret, 32, exp, b, a, NULL), 0);
	assert_memory_not_equal(out, rev, 32);
	/* Another session's exporter gives another proof. */
	exp[0] ^= 1;
	assert_int_equal(join_proof(rev, secret, 32, exp, a, b, NULL), 0);
	assert_memory_not_equal(out, rev, 32);
	assert_int_equal(
	    join_proof(out, secret, 0, exp, a, b, NULL), SM_ERR_INVAL);
}

static void
test_matches_token(void **state)
{
	uint8_t secret[32], exp[32], a[32], b[32];
	uint8_t p1[JOIN_PROOF_LEN], p2[TOKEN_PROOF_LEN];

	randombytes_buf(secret, sizeof(secret));
	randombytes_buf(exp, sizeof(exp));
	randombytes_buf(a, sizeof(a));
	randombytes_buf(b, sizeof(b));
	assert_int_equal(join_proof(p1, secret, 32, exp, a, b, NULL), 0);
	assert_int_equal(token_join_proof(secret, exp, 32, a, b, p2), 0);
	assert_memory_equal(p1, p2, 32);
	assert_string_equal(TLS_EXPORTER_LABEL, TOKEN_EXPORTER_LABEL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_definition),
	    cmocka_unit_test(test_matches_token),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
