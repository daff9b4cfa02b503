/* Unit tests: Host/Origin allowlists (http/access.c) and API key sets
 * (http/apikey.c, parsing and matching only). */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "http/access.h"
#include "http/apikey.h"
#include "util_vectors.h"

#define VECTORS "tests/vectors/access.json"

static void
vector_policy(struct access_policy *p)
{
	uint8_t a[4];

	access_init(p);
	assert_int_equal(access_add_host(p, "mesh.lan"), 0);
	assert_int_equal(access_add_host(p, "10.1.2.3"), 0);
	assert_int_equal(inet_pton(AF_INET, "192.168.7.9", a), 1);
	assert_int_equal(access_add_addr(p, AF_INET, a), 0);
	assert_int_equal(access_add_origin(p, "http://app.example:5173"), 0);
}

static void
test_vectors(void **state)
{
	cJSON *j = vec_load(VECTORS), *it;
	struct access_policy p;
	int port, sibling, n = 0;

	vector_policy(&p);
	port = cJSON_GetObjectItem(j, "port")->valueint;
	sibling = cJSON_GetObjectItem(j, "sibling")->valueint;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "host"))
	{
		const char *v = cJSON_GetObjectItem(it, "value")->valuestring;
		bool ok = cJSON_IsTrue(cJSON_GetObjectItem(it, "ok"));

		if (access_host_ok(&p, v, port) != ok)
			fail_msg("Host '%s': expected %s", v,
			    ok ? "accepted" : "refused");
		n++;
	}
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "origin"))
	{
		const char *v = cJSON_GetObjectItem(it, "value")->valuestring;
		const char *want =
		    cJSON_GetObjectItem(it, "result")->valuestring;
		enum access_origin o =
		    access_origin_check(&p, v, port, sibling);
		const char *got = o == ACCESS_ORIGIN_SAME ? "same"
		    : o == ACCESS_ORIGIN_CORS             ? "cors"
		    : o == ACCESS_ORIGIN_REFUSED          ? "refused"
							  : "none";

		if (strcmp(got, want) != 0)
			fail_msg(
			    "Origin '%s': expected %s, got %s", v, want, got);
		n++;
	}
	assert_true(n > 50);
	cJSON_Delete(j);
}

static void
test_loopback_only_by_default(void **state)
{
	struct access_policy p;

	access_init(&p);
	assert_true(access_host_ok(&p, "127.0.0.1:80", 80));
	assert_false(access_host_ok(&p, "mesh.lan", 80));
	assert_false(access_host_ok(&p, "192.168.7.9", 80));
	assert_false(access_host_ok(&p, NULL, 80));
	assert_int_equal(
	    access_origin_check(&p, NULL, 80, -1), ACCESS_ORIGIN_NONE);
	/* Default port 80: an Origin without a port is port 80. */
	assert_int_equal(access_origin_check(&p, "http://localhost", 80, -1),
	    ACCESS_ORIGIN_SAME);
	/* No sibling: the console's origin is refused elsewhere. */
	assert_int_equal(
	    access_origin_check(&p, "http://127.0.0.1:3131", 9337, -1),
	    ACCESS_ORIGIN_REFUSED);
}

static void
test_split(void **state)
{
	char h[ACCESS_NAME_MAX + 1];
	int port;

	assert_int_equal(
	    access_host_split("[::1]:8080", h, sizeof(h), &port), 0);
	assert_string_equal(h, "::1");
	assert_int_equal(port, 8080);
	assert_int_equal(access_host_split("Foo.Bar", h, sizeof(h), &port), 0);
	assert_string_equal(h, "foo.bar");
	assert_int_equal(port, -1);
	assert_int_equal(
	    access_host_split("a:1:2", h, sizeof(h), &port), SM_ERR_INVAL);
	assert_string_equal(h, "");
	assert_int_equal(port, -1);
	/* Output too small is an error, never a truncation. */
	assert_int_equal(
	    access_host_split("abcdef", h, 4, &port), SM_ERR_INVAL);
}

static void
test_add_flags(void **state)
{
	struct access_policy p;

	access_init(&p);
	assert_int_equal(access_add_origin(&p, "*"), SM_ERR_INVAL);
	assert_int_equal(access_add_origin(&p, "null"), SM_ERR_INVAL);
	assert_int_equal(
	    access_add_origin(&p, "http://a.example/path"), SM_ERR_INVAL);
	assert_int_equal(access_add_origin(&p, "HTTPS://A.Example:443/"), 0);
	assert_string_equal(p.origins[0], "https://a.example");
	assert_int_equal(access_origin_check(&p, "https://a.example", 9337, -1),
	    ACCESS_ORIGIN_CORS);
	assert_int_equal(access_add_host(&p, "evil.example:80"), SM_ERR_INVAL);
	assert_int_equal(access_add_host(&p, "a b"), SM_ERR_INVAL);
	assert_int_equal(access_add_host(&p, "fd00::5"), 0);
	assert_true(access_host_ok(&p, "[fd00:0::5]:9", 9));
	for (size_t i = p.nnames; i < ACCESS_MAX_NAMES; i++)
		assert_int_equal(access_add_host(&p, "x.example"), 0);
	assert_int_equal(access_add_host(&p, "y.example"), SM_ERR_TOOBIG);
}

static void
test_keys(void **state)
{
	static const char file[] = "# keys\n"
				   "\n"
				   "   key-one-0123456789abcdef  \n"
				   "key-two-0123456789abcdef\r\n"
				   "\t# indented comment\n"
				   "key-three-0123456789abcdef";
	struct apikeys *k;
	char why[128];

	assert_int_equal(
	    apikeys_parse(&k, file, sizeof(file) - 1, why, sizeof(why)), 0);
	assert_int_equal(apikeys_count(k), 3);
	assert_true(apikeys_check(k, "key-one-0123456789abcdef", 24));
	assert_true(apikeys_check(k, "key-three-0123456789abcdef", 26));
	assert_false(apikeys_check(k, "key-one-0123456789abcde", 23));
	assert_false(apikeys_check(k, "key-one-0123456789abcdeg", 24));
	assert_false(apikeys_check(k, "", 0));
	assert_true(
	    apikeys_check_headers(k, "Bearer key-two-0123456789abcdef", NULL));
	assert_true(apikeys_check_headers(
	    k, "bearer  key-two-0123456789abcdef ", NULL));
	assert_true(apikeys_check_headers(k, NULL, "key-two-0123456789abcdef"));
	assert_true(apikeys_check_headers(
	    k, "Bearer wrong-wrong-wrong-wrong", "key-two-0123456789abcdef"));
	assert_false(
	    apikeys_check_headers(k, "Basic key-two-0123456789abcdef", NULL));
	assert_false(
	    apikeys_check_headers(k, "Bearerkey-two-0123456789abcdef", NULL));
	assert_false(apikeys_check_headers(k, NULL, NULL));
	apikeys_free(k);
	apikeys_free(NULL);

	/* Refusals name the line, never the key. */
	assert_int_equal(
	    apikeys_parse(&k, "short\n", 6, why, sizeof(why)), SM_ERR_INVAL);
	assert_null(k);
	assert_non_null(strstr(why, "line 1"));
	assert_null(strstr(why, "short"));
	assert_int_equal(
	    apikeys_parse(&k, "# only\n\n", 8, why, sizeof(why)), SM_ERR_INVAL);
	assert_int_equal(apikeys_parse(&k, "key with a space in it 123\n", 27,
			     why, sizeof(why)),
	    SM_ERR_INVAL);
	assert_int_equal(apikeys_parse(&k, "good-key-0123456789abcdef\0hidden",
			     32, why, sizeof(why)),
	    SM_ERR_INVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_loopback_only_by_default),
	    cmocka_unit_test(test_split),
	    cmocka_unit_test(test_add_flags),
	    cmocka_unit_test(test_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
