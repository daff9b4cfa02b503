/* Unit tests: node identity key files and routing order. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "mesh/identity.h"
#include "mesh/route.h"

static char *
tmpdir(void)
{
	char tmpl[] = "/tmp/sm-id-XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return strdup(d);
}

static void
test_create_load_sign(void **state)
{
	struct identity a, b;
	char *dir = tmpdir(), path[512];
	uint8_t sig[ID_SIG_LEN];
	struct stat st;

	snprintf(path, sizeof(path), "%s/state", dir);
	assert_int_equal(identity_load(&a, path, true), 0);
	assert_int_equal(strlen(a.id_hex), ID_HEX_LEN);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/state/identity.key", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, ID_SEED_LEN);
	snprintf(path, sizeof(path), "%s/state", dir);
	assert_int_equal(identity_load(&b, path, false), 0);
	assert_memory_equal(a.pk, b.pk, ID_PK_LEN); /* same key back */
	assert_int_equal(identity_sign(&a, (const uint8_t *)"msg", 3, sig), 0);
	assert_int_equal(
	    identity_verify(b.pk, (const uint8_t *)"msg", 3, sig), 0);
	sig[0] ^= 1;
	assert_int_equal(identity_verify(b.pk, (const uint8_t *)"msg", 3, sig),
	    SM_ERR_VERIFY);
	/* keygen without --force keeps an existing key */
	identity_clear(&b);
	assert_int_equal(identity_create(&b, path, false), SM_ERR_INVAL);
	identity_clear(&a);
	assert_null(a.sk);
	free(dir);
}

static void
test_refuses_readable_key(void **state)
{
	struct identity a;
	char *dir = tmpdir(), path[512], key[600];

	snprintf(path, sizeof(path), "%s/s", dir);
	assert_int_equal(identity_load(&a, path, true), 0);
	identity_clear(&a);
	snprintf(key, sizeof(key), "%s/identity.key", path);
	assert_int_equal(chmod(key, 0644), 0);
	assert_int_equal(identity_load(&a, path, false), SM_ERR_PERM);
	assert_int_equal(chmod(key, 0600), 0);
	assert_int_equal(chmod(path, 0755), 0);
	assert_int_equal(identity_load(&a, path, false), SM_ERR_PERM);
	assert_int_equal(chmod(path, 0700), 0);
	/* a truncated key file is malformed, not a new identity */
	assert_int_equal(truncate(key, 16), 0);
	assert_int_equal(identity_load(&a, path, true), SM_ERR_INVAL);
	assert_int_equal(
	    identity_load(&a, "/nonexistent/x", false), SM_ERR_NOTFOUND);
	free(dir);
}

static struct route_target remote_out[4];
static bool remote_known;
static size_t remote_n;

static size_t
fake_remote(void *arg, const char *model, struct route_target *out, size_t max,
    bool *known)
{
	size_t n = remote_n < max ? remote_n : max;

	*known = remote_known;
	memcpy(out, remote_out, n * sizeof(*out));
	return n;
}

static void
test_route_order(void **state)
{
	struct backend a = {.name = "m", .up = true};
	struct backend b = {.name = "other", .up = true};
	struct route_target t[8];
	struct router rt;

	router_init(&rt);
	assert_int_equal(router_add_local(&rt, &a), 0);
	assert_int_equal(router_add_local(&rt, &b), 0);
	assert_int_equal(router_add_local(&rt, &a), SM_ERR_INVAL);
	assert_int_equal(route_lookup(&rt, "nope", t, 8), SM_ERR_NOTFOUND);
	/* local first, then the mesh's hosts */
	remote_n = 1;
	remote_out[0].kind = ROUTE_REMOTE;
	memset(remote_out[0].peer, 7, sizeof(remote_out[0].peer));
	rt.remote.lookup = fake_remote;
	assert_int_equal(route_lookup(&rt, "m", t, 8), 2);
	assert_int_equal(t[0].kind, ROUTE_LOCAL);
	assert_ptr_equal(t[0].backend, &a);
	assert_int_equal(t[1].kind, ROUTE_REMOTE);
	/* a tunneled request is never routed onward */
	assert_int_equal(route_lookup_local(&rt, "m", t, 8), 1);
	/* known but down everywhere: unavailable, not unknown */
	a.up = false;
	remote_n = 0;
	remote_known = true;
	assert_int_equal(route_lookup(&rt, "m", t, 8), SM_ERR_UNAVAIL);
	assert_int_equal(route_lookup(&rt, "gone", t, 8), SM_ERR_UNAVAIL);
	remote_known = false;
	assert_int_equal(route_lookup(&rt, "gone", t, 8), SM_ERR_NOTFOUND);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_load_sign),
	    cmocka_unit_test(test_refuses_readable_key),
	    cmocka_unit_test(test_route_order),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("identity", tests, NULL, NULL);
}
