#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/util.h"
#include "util_vectors.h"

cJSON *
vec_load(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *text;
	long n;
	cJSON *j;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	text = calloc(1, (size_t)n + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	j = cJSON_Parse(text);
	free(text);
	assert_non_null(j);
	return j;
}

void
vec_hex(uint8_t *out, size_t len, const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	assert_true(cJSON_IsString(v));
	assert_int_equal(strlen(v->valuestring), 2 * len);
	assert_int_equal(sm_unhex(out, len, v->valuestring), 0);
}
