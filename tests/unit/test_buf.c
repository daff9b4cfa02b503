#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/util.h"

static void
test_append_and_max(void **state)
{
	struct buf b;

	buf_init(&b, 8);
	assert_int_equal(buf_append(&b, "abcd", 4), 0);
	assert_int_equal(buf_append(&b, "efgh", 4), 0);
	assert_int_equal(b.len, 8);
	assert_int_equal(buf_append(&b, "i", 1), SM_ERR_TOOBIG);
	assert_memory_equal(buf_data(&b), "abcdefgh", 8);
	buf_consume(&b, 3);
	assert_memory_equal(buf_data(&b), "defgh", 5);
	assert_int_equal(buf_append(&b, "xyz", 3), 0); /* compacts */
	assert_memory_equal(buf_data(&b), "defghxyz", 8);
	buf_clear(&b);
	assert_null(b.p);
	assert_int_equal(b.max, 8);
}

static void
test_appendf(void **state)
{
	struct buf b;

	buf_init(&b, 64);
	assert_int_equal(buf_appendf(&b, "%d-%s", 42, "x"), 0);
	assert_int_equal(b.len, 4);
	assert_memory_equal(buf_data(&b), "42-x", 4);
	assert_int_equal(buf_appendf(&b, "%080d", 1), SM_ERR_TOOBIG);
	buf_clear(&b);
}

static void
test_hex_and_numbers(void **state)
{
	uint8_t raw[3] = {0x00, 0xab, 0xff}, back[3];
	char hex[7];
	uint64_t v;

	sm_hex(hex, raw, 3);
	assert_string_equal(hex, "00abff");
	assert_int_equal(sm_unhex(back, 3, hex), 0);
	assert_memory_equal(back, raw, 3);
	assert_int_equal(sm_unhex(back, 3, "00abf"), SM_ERR_INVAL);
	assert_int_equal(sm_unhex(back, 3, "00abzz"), SM_ERR_INVAL);
	assert_int_equal(sm_parse_u64("9337", 1, 65535, &v), 0);
	assert_int_equal(v, 9337);
	assert_int_equal(sm_parse_u64("70000", 1, 65535, &v), SM_ERR_INVAL);
	assert_int_equal(sm_parse_u64("-1", 0, 10, &v), SM_ERR_INVAL);
	assert_int_equal(sm_parse_u64("12x", 0, 100, &v), SM_ERR_INVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_append_and_max),
	    cmocka_unit_test(test_appendf),
	    cmocka_unit_test(test_hex_and_numbers),
	};
	return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
