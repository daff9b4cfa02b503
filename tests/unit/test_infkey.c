#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/err.h"
#include "crypto/infkey.h"

#define T0 1000u
#define EPOCH 3600u
#define GRACE 600u

/* DH as a client would do it against 'pub', compared with the ring's. */
static void
assert_dh_works(const struct infkey *k, const struct infkey_pub *pub)
{
	uint8_t esk[32], epk[32], a[32], b[32], self[32];

	crypto_box_keypair(epk, esk);
	assert_int_equal(crypto_box_beforenm(a, pub->pk, esk), 0);
	assert_int_equal(infkey_shared(k, pub->epoch, epk, b, self), 0);
	assert_memory_equal(a, b, 32);
	assert_memory_equal(self, pub->pk, 32);
}

static void
test_new_and_params(void **state)
{
	struct infkey *k = NULL;
	struct infkey_pub cur, prev;

	assert_int_equal(infkey_new(&k, EPOCH, 0, T0), SM_ERR_INVAL);
	assert_null(k);
	assert_int_equal(infkey_new(&k, EPOCH, EPOCH + 1, T0), SM_ERR_INVAL);
	assert_int_equal(infkey_new(&k, EPOCH, GRACE, T0), 0);
	infkey_current(k, &cur);
	assert_int_not_equal(cur.epoch, 0);
	assert_false(sodium_is_zero(cur.pk, 32));
	assert_int_equal(infkey_previous(k, &prev), SM_ERR_NOTFOUND);
	assert_int_equal(infkey_next_deadline(k), T0 + EPOCH);
	assert_dh_works(k, &cur);
	infkey_free(k);
	infkey_free(NULL);
}

static void
test_schedule(void **state)
{
	struct infkey *k;
	struct infkey_pub e1, e2, e3, prev;
	bool rotated;

	assert_int_equal(infkey_new(&k, EPOCH, GRACE, T0), 0);
	infkey_current(k, &e1);
	assert_int_equal(infkey_tick(k, T0 + EPOCH - 1, &rotated), 0);
	assert_false(rotated);
	/* Epoch ends: new current, old one in grace. */
	assert_int_equal(infkey_tick(k, T0 + EPOCH, &rotated), 0);
	assert_true(rotated);
	infkey_current(k, &e2);
	assert_int_not_equal(e2.epoch, e1.epoch);
	assert_memory_not_equal(e2.pk, e1.pk, 32);
	assert_int_equal(infkey_previous(k, &prev), 0);
	assert_int_equal(prev.epoch, e1.epoch);
	assert_int_equal(infkey_next_deadline(k), T0 + EPOCH + GRACE);
	assert_dh_works(k, &e1);
	assert_dh_works(k, &e2);
	/* Grace ends: the old key is wiped and its epoch unknown. */
	assert_int_equal(infkey_tick(k, T0 + EPOCH + GRACE - 1, &rotated), 0);
	assert_dh_works(k, &e1);
	assert_int_equal(infkey_tick(k, T0 + EPOCH + GRACE, &rotated), 0);
	assert_false(rotated);
	assert_int_equal(infkey_previous(k, &prev), SM_ERR_NOTFOUND);
	{
		uint8_t epk[32], esk[32], sh[32], self[32];

		crypto_box_keypair(epk, esk);
		assert_int_equal(
		    infkey_shared(k, e1.epoch, epk, sh, self), SM_ERR_NOTFOUND);
		assert_true(sodium_is_zero(sh, 32));
	}
	assert_int_equal(infkey_next_deadline(k), T0 + 2 * EPOCH);
	/* A manual rotation inside grace wipes the oldest at once. */
	assert_int_equal(infkey_rotate(k, T0 + EPOCH + GRACE + 1), 0);
	assert_int_equal(infkey_rotate(k, T0 + EPOCH + GRACE + 2), 0);
	infkey_current(k, &e3);
	assert_int_equal(infkey_previous(k, &prev), 0);
	assert_int_not_equal(prev.epoch, e2.epoch);
	assert_int_not_equal(e3.epoch, e2.epoch);
	infkey_free(k);
}

static void
test_low_order_refused(void **state)
{
	/* Order-1 and order-8 points: DH is all-zero. */
	static const uint8_t bad[2][32] = {
	    {0},
	    {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3,
		0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c,
		0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8,
		0x00},
	};
	struct infkey *k;
	struct infkey_pub cur;
	uint8_t sh[32], self[32];
	size_t i;

	assert_int_equal(infkey_new(&k, EPOCH, GRACE, T0), 0);
	infkey_current(k, &cur);
	for (i = 0; i < 2; i++) {
		assert_int_equal(infkey_shared(k, cur.epoch, bad[i], sh, self),
		    SM_ERR_DECRYPT);
		assert_true(sodium_is_zero(sh, 32));
		assert_true(sodium_is_zero(self, 32));
	}
	infkey_free(k);
}

static void
test_install_det(void **state)
{
	struct infkey *k;
	struct infkey_pub cur, prev;
	uint8_t sk[32], pk[32];

	memset(sk, 0x42, sizeof(sk));
	crypto_scalarmult_base(pk, sk);
	assert_int_equal(infkey_new(&k, EPOCH, GRACE, T0), 0);
	infkey_current(k, &prev);
	assert_int_equal(
	    infkey_install_det(k, prev.epoch, sk, T0), SM_ERR_INVAL);
	assert_int_equal(infkey_install_det(k, 0, sk, T0), SM_ERR_INVAL);
	assert_int_equal(infkey_install_det(k, 7, sk, T0), 0);
	infkey_current(k, &cur);
	assert_int_equal(cur.epoch, 7);
	assert_memory_equal(cur.pk, pk, 32);
	assert_dh_works(k, &cur);
	assert_dh_works(k, &prev);
	infkey_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_new_and_params),
	    cmocka_unit_test(test_schedule),
	    cmocka_unit_test(test_low_order_refused),
	    cmocka_unit_test(test_install_det),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("infkey", tests, NULL, NULL);
}
