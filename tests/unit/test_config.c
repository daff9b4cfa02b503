#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util_vectors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cJSON.h"
#include "cli/config.h"
#include "core/err.h"

#define VECTORS "tests/vectors/config.json"

/* The vectors' getopt table. */
static struct option *
vec_options(const cJSON *v)
{
	const cJSON *arr = cJSON_GetObjectItem(v, "options"), *it;
	struct option *o =
	    calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*o));
	int i = 0;

	assert_non_null(o);
	cJSON_ArrayForEach(it, arr)
	{
		o[i].name = cJSON_GetArrayItem(it, 0)->valuestring;
		o[i].has_arg = cJSON_GetArrayItem(it, 1)->valueint;
		o[i].val = 256 + i;
		i++;
	}
	return o;
}

static void
test_vectors(void **state)
{
	static const char *const deny[] = {"strict-env", NULL};
	cJSON *v = vec_load(VECTORS), *c;
	struct option *opts = vec_options(v);
	int n = 0;

	cJSON_ArrayForEach(c, cJSON_GetObjectItem(v, "cases"))
	{
		const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
		const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
		const cJSON *want = cJSON_GetObjectItem(c, "argv");
		const cJSON *werr = cJSON_GetObjectItem(c, "error");
		/* cJSON strings stop at a NUL: find the real length. */
		size_t len = strlen(text);
		struct config_args a = {0};
		char err[512];
		int r;

		if (strcmp(name, "NUL byte") == 0)
			len = strlen(text) + 2; /* "port = 1\0\n" */
		{
			char buf[256];

			assert_true(len < sizeof(buf));
			memcpy(buf, text, strlen(text));
			if (len > strlen(text)) {
				buf[strlen(text)] = '\0';
				buf[strlen(text) + 1] = '\n';
			}
			r = config_parse(buf, len, "t.conf", opts, deny,
			    "must be given on the command line", &a, err,
			    sizeof(err));
		}
		if (werr != NULL) {
			if (r == 0 || strstr(err, werr->valuestring) == NULL)
				fail_msg("%s: want error '%s', got %d '%s'",
				    name, werr->valuestring, r, err);
		} else {
			const cJSON *w;
			int i = 0;

			if (r != 0)
				fail_msg("%s: %s", name, err);
			assert_int_equal(a.argc, cJSON_GetArraySize(want));
			cJSON_ArrayForEach(w, want)
			{
				if (strcmp(a.argv[i], w->valuestring) != 0)
					fail_msg("%s: argv[%d] '%s' != '%s'",
					    name, i, a.argv[i], w->valuestring);
				assert_non_null(a.origin[i]);
				assert_true(
				    strncmp(a.origin[i], "t.conf:", 7) == 0);
				i++;
			}
			if (a.argc > 0)
				assert_null(a.argv[a.argc]);
		}
		config_args_clear(&a);
		n++;
	}
	assert_true(n >= 20);
	free(opts);
	cJSON_Delete(v);
}

/* --config FILE: the file's entries come before the command line's. */
static void
test_expand(void **state)
{
	static const struct option opts[] = {{"port", 1, NULL, 1},
	    {"join", 1, NULL, 2}, {"config", 1, NULL, 3}, {NULL, 0, NULL, 0}};
	char path[] = "/tmp/sm-config-XXXXXX", err[512];
	char *argv[] = {"serve", "--port", "7", "--config", path, NULL};
	struct config_args a;
	FILE *f;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("port = 5\n", f);
	fclose(f);
	assert_int_equal(config_expand(5, argv, opts, &a, err, sizeof(err)), 0);
	assert_int_equal(a.argc, 6);
	assert_string_equal(a.argv[0], "serve");
	assert_string_equal(a.argv[1], "--port=5");
	assert_non_null(strstr(a.origin[1], ":1"));
	assert_string_equal(a.argv[2], "--port");
	assert_null(a.origin[2]);
	assert_string_equal(a.argv[4], "--config");
	config_args_clear(&a);

	/* An invite token in a file others can read is refused... */
	f = fopen(path, "w");
	fputs("join = TOKEN\n", f);
	fclose(f);
	chmod(path, 0644);
	assert_int_equal(
	    config_expand(5, argv, opts, &a, err, sizeof(err)), SM_ERR_PERM);
	assert_non_null(strstr(err, "chmod 600"));
	/* ...and accepted at 0600. */
	chmod(path, 0600);
	assert_int_equal(config_expand(5, argv, opts, &a, err, sizeof(err)), 0);
	config_args_clear(&a);

	/* A missing file names the path and the OS error. */
	unlink(path);
	assert_int_equal(
	    config_expand(5, argv, opts, &a, err, sizeof(err)), SM_ERR_IO);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file or directory"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_expand),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
