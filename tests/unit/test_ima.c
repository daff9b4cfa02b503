/*
 * IMA measurement list (ima-ng) parser, PCR 10 replay for the SHA-256 bank
 * (SHA-256 over the template data; violations extend 0xff..ff), prefix
 * search, the --ima-allowlist format, and the --pcr-policy format. Vectors:
 * tests/vectors/measure.json (hashlib, gen_measure.py).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "attest/challenge.h"
#include "attest/ima.h"
#include "attest/measure.h"
#include "core/util.h"
#include "util_vectors.h"

#define VEC "tests/vectors/measure.json"

static uint8_t *
hexdup(const cJSON *o, const char *name, size_t *len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	uint8_t *b;

	assert_true(cJSON_IsString(v));
	*len = strlen(v->valuestring) / 2;
	assert_non_null(b = malloc(*len + 1));
	assert_int_equal(sm_unhex(b, *len, v->valuestring), 0);
	return b;
}

static const cJSON *
ima_vec(cJSON *j, int i)
{
	return cJSON_GetArrayItem(
	    cJSON_GetObjectItemCaseSensitive(j, "ima"), i);
}

static void
test_vectors(void **state)
{
	cJSON *j = vec_load(VEC);
	const cJSON *v;
	uint8_t want[32], fin[32];
	size_t len, prefix, n;
	uint8_t *lst;

	for (int i = 0; (v = ima_vec(j, i)) != NULL; i++) {
		lst = hexdup(v, "list", &len);
		vec_hex(want, 32, v, "pcr10");
		assert_int_equal(
		    ima_replay(lst, len, want, &prefix, &n, fin), 0);
		assert_memory_equal(fin, want, 32);
		assert_int_equal(n,
		    cJSON_GetObjectItemCaseSensitive(v, "entries")->valueint);
		assert_int_equal(prefix, n);
		free(lst);
	}
	cJSON_Delete(j);
}

static void
test_entries_and_prefix(void **state)
{
	cJSON *j = vec_load(VEC);
	const cJSON *v = ima_vec(j, 0);
	const cJSON *ext = cJSON_GetObjectItemCaseSensitive(v, "extends");
	struct ima_entry e;
	uint8_t bin[32], pcr[32], d[32];
	size_t len, off = 0, prefix, n;
	uint8_t *lst;

	vec_hex(bin, 32, j, "binary_sha256");
	lst = hexdup(v, "list", &len);
	ima_pcr_init(pcr);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(ima_next(lst, len, &off, &e), 0);
		assert_int_equal(e.pcr, 10);
		assert_int_equal(
		    sm_unhex(d, 32, cJSON_GetArrayItem(ext, i)->valuestring),
		    0);
		assert_memory_equal(e.template_sha256, d, 32);
		assert_int_equal(ima_pcr_extend(pcr, &e), 0);
		if (i == 1) {
			assert_true(e.file_sha256);
			assert_memory_equal(e.file_digest, bin, 32);
			assert_int_equal(
			    e.path_len, strlen("/usr/bin/sealmesh"));
			assert_memory_equal(
			    e.path, "/usr/bin/sealmesh", e.path_len);
			assert_false(e.violation);
			/* A list that stops here replays to this value. */
			assert_int_equal(
			    ima_replay(lst, len, pcr, &prefix, &n, NULL), 0);
			assert_int_equal(prefix, 2);
			assert_int_equal(n, 4);
		}
		if (i == 3) {
			assert_true(e.violation);
			memset(d, 0xff, 32);
			assert_memory_equal(e.template_sha256, d, 32);
		}
	}
	assert_int_equal(off, len);
	/* No prefix replays to an unrelated value. */
	memset(d, 0x42, 32);
	assert_int_equal(ima_replay(lst, len, d, &prefix, &n, NULL), 0);
	assert_int_equal(prefix, SIZE_MAX);
	free(lst);

	/* A sha1 file digest is listed but never matches a SHA-256. */
	lst = hexdup(ima_vec(j, 2), "list", &len);
	off = 0;
	assert_int_equal(ima_next(lst, len, &off, &e), 0);
	assert_false(e.file_sha256);
	assert_int_equal(e.file_digest_len, 20);
	free(lst);
	cJSON_Delete(j);
}

static void
le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
	p[3] = (uint8_t)(v >> 24);
}

static void
test_malformed(void **state)
{
	cJSON *j = vec_load(VEC);
	struct ima_entry e;
	size_t len, off, prefix, n;
	uint8_t *lst, *big;

	lst = hexdup(ima_vec(j, 0), "list", &len);
	/* Another template name. */
	memcpy(lst + 28, "ima-xx", 6);
	off = 0;
	assert_int_equal(ima_next(lst, len, &off, &e), SM_ERR_UNSUPP);
	memcpy(lst + 28, "ima-ng", 6);
	/* Template data length over the cap, then past the end. */
	le32(lst + 34, IMA_DATA_MAX + 1);
	off = 0;
	assert_int_equal(ima_next(lst, len, &off, &e), SM_ERR_TOOBIG);
	le32(lst + 34, (uint32_t)len);
	off = 0;
	assert_int_equal(ima_next(lst, len, &off, &e), SM_ERR_INVAL);
	free(lst);
	lst = hexdup(ima_vec(j, 0), "list", &len);
	/* The path's NUL replaced: n-ng must be NUL-terminated. */
	{
		size_t first = 38 + ((size_t)lst[34] | (size_t)lst[35] << 8);

		assert_int_equal(lst[first - 1], 0);
		lst[first - 1] = 'x';
		off = 0;
		assert_int_equal(ima_next(lst, len, &off, &e), SM_ERR_INVAL);
		assert_int_equal(ima_replay(lst, len, NULL, &prefix, &n, NULL),
		    SM_ERR_INVAL);
		assert_int_equal(prefix, SIZE_MAX);
		lst[first - 1] = 0;
	}
	/* Every truncation fails or yields fewer entries. */
	for (size_t cut = 1; cut < len; cut++) {
		int r = ima_replay(lst, cut, NULL, &prefix, &n, NULL);

		assert_true(r != 0 || n < 4);
	}
	/* Whole list over the cap. */
	assert_non_null(big = calloc(1, IMA_LIST_MAX + 1));
	memcpy(big, lst, len);
	assert_int_equal(
	    ima_replay(big, IMA_LIST_MAX + 1, NULL, &prefix, &n, NULL),
	    SM_ERR_TOOBIG);
	free(big);
	free(lst);
	cJSON_Delete(j);
}

static void
test_allowlist(void **state)
{
	cJSON *j = vec_load(VEC);
	const char *text =
	    cJSON_GetObjectItemCaseSensitive(j, "allowlist")->valuestring;
	struct ima_allowlist *a;
	struct ima_entry e;
	size_t len, off = 0, bad;
	uint8_t *lst;
	bool ok[4];

	assert_int_equal(ima_allowlist_parse(text, strlen(text), &a, &bad), 0);
	assert_int_equal(ima_allowlist_count(a), 2);
	lst = hexdup(ima_vec(j, 1), "list", &len);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(ima_next(lst, len, &off, &e), 0);
		ok[i] = ima_allowlist_ok(a, &e);
	}
	/* boot_aggregate (exempt in measure.c), binary, libc, /tmp/evil */
	assert_false(ok[0]);
	assert_true(ok[1]);
	assert_true(ok[2]);
	assert_false(ok[3]);
	free(lst);
	/* A violation is never allowed, even for a listed path + hash. */
	lst = hexdup(ima_vec(j, 0), "list", &len);
	off = 0;
	for (int i = 0; i < 4; i++)
		assert_int_equal(ima_next(lst, len, &off, &e), 0);
	assert_true(e.violation);
	assert_false(ima_allowlist_ok(a, &e));
	free(lst);
	ima_allowlist_free(a);

	/* Format errors name the line. */
	{
		static const char *bad_texts[] = {
		    "# ok\n\nzz /bin/x\n",
		    "# ok\n" /* relative path */
		    "0000000000000000000000000000000000000000000000000000000000"
		    "000000 bin/x\n",
		    "0000000000000000000000000000000000000000000000000000000000"
		    "000000\n",
		};
		static const size_t lines[] = {3, 2, 1};

		for (size_t i = 0; i < 3; i++) {
			assert_int_equal(ima_allowlist_parse(bad_texts[i],
					     strlen(bad_texts[i]), &a, &bad),
			    SM_ERR_INVAL);
			assert_null(a);
			assert_int_equal(bad, lines[i]);
		}
	}
	/* Uppercase hex, CRLF, a path with spaces. */
	{
		const char *t =
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		    "AAAAAAAAAA /opt/my app/bin\r\n";

		assert_int_equal(
		    ima_allowlist_parse(t, strlen(t), &a, &bad), 0);
		assert_int_equal(ima_allowlist_count(a), 1);
		ima_allowlist_free(a);
	}
	cJSON_Delete(j);
}

static void
test_pcr_policy(void **state)
{
	static const char ok[] =
	    "# sealmesh PCR policy\n"
	    "sha256:7 "
	    "1111111111111111111111111111111111111111111111111111111111111111\n"
	    "sha256:7 "
	    "2222222222222222222222222222222222222222222222222222222222222222\n"
	    "  sha256:0 "
	    "0000000000000000000000000000000000000000000000000000000000000000 "
	    "\n";
	static const char *bad[] = {
	    "sha1:7 1111111111111111111111111111111111111111\n",
	    "sha256:8 "
	    "1111111111111111111111111111111111111111111111111111111111111111"
	    "\n",
	    "sha256:7 11\n",
	    "sha256:7 "
	    "1111111111111111111111111111111111111111111111111111111111111111 "
	    "x\n",
	};
	uint8_t pcrs[ATT_MEAS_NPCR * 32];
	struct att_pcr_policy *p;
	size_t line;

	assert_int_equal(att_pcr_policy_parse(ok, strlen(ok), &p, &line), 0);
	memset(pcrs, 0, sizeof(pcrs));
	memset(pcrs + 7 * 32, 0x22, 32);
	assert_int_equal(att_pcr_policy_check(p, pcrs), -1);
	memset(pcrs + 7 * 32, 0x11, 32);
	assert_int_equal(att_pcr_policy_check(p, pcrs), -1);
	memset(pcrs + 7 * 32, 0x33, 32);
	assert_int_equal(att_pcr_policy_check(p, pcrs), 7);
	memset(pcrs + 7 * 32, 0x11, 32);
	pcrs[0] = 1;
	assert_int_equal(att_pcr_policy_check(p, pcrs), 0);
	att_pcr_policy_free(p);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(
		    att_pcr_policy_parse(bad[i], strlen(bad[i]), &p, &line),
		    SM_ERR_INVAL);
		assert_null(p);
		assert_int_equal(line, 1);
	}
}

/* The challenge's optional flags and the section keep one encoding. */
static void
test_wire_encodings(void **state)
{
	static const uint8_t base[1 + 32 + 4] = {1};
	uint8_t b[64], pcrs[ATT_MEAS_NPCR * 32] = {0};
	struct att_chal c;
	struct att_meas m, m2;
	struct buf out;
	static const struct {
		uint8_t tail[6];
		size_t n;
		int r;
		uint32_t from;
	} cases[] = {
	    {{0x01}, 1, 0, 0}, {{0x03, 0, 0, 0, 4}, 5, 0, 4},
	    {{0x00}, 1, SM_ERR_INVAL, 0}, /* flags 0 are not sent */
	    {{0x02, 0, 0, 0, 4}, 5, SM_ERR_INVAL, 0}, /* from without want */
	    {{0x03, 0, 0, 0, 0}, 5, SM_ERR_INVAL, 0}, /* from 0 */
	    {{0x04}, 1, SM_ERR_INVAL, 0}, /* unknown bit */
	    {{0x01, 0}, 2, SM_ERR_INVAL, 0}, /* trailing */
	    {{0x03, 0, 0, 4}, 4, SM_ERR_INVAL, 0}, /* short */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(b, base, sizeof(base));
		memcpy(b + sizeof(base), cases[i].tail, cases[i].n);
		assert_int_equal(
		    att_chal_parse(b, sizeof(base) + cases[i].n, &c),
		    cases[i].r);
		if (cases[i].r != 0)
			continue;
		assert_true(c.flags & ATT_CHAL_WANT_MEASURE);
		assert_int_equal(c.ima_from, cases[i].from);
		buf_init(&out, ATT_CHAL_MAX);
		assert_int_equal(att_chal_write(&c, &out), 0);
		assert_int_equal(out.len, sizeof(base) + cases[i].n);
		assert_memory_equal(buf_data(&out), b, out.len);
		buf_reset(&out);
		assert_int_equal(att_chal_add_measure(&out, cases[i].from), 0);
		assert_memory_equal(buf_data(&out), cases[i].tail, cases[i].n);
		buf_clear(&out);
	}

	/* Section: write, parse back, then a trailing byte and a wrong PCR
	 * count are refused. */
	memset(&m, 0, sizeof(m));
	m.attest = (const uint8_t *)"attest";
	m.attest_len = 6;
	m.sig = (const uint8_t *)"sig";
	m.sig_len = 3;
	m.pcrs = pcrs;
	m.ima_from = 7;
	m.ima = (const uint8_t *)"x";
	m.ima_len = 1;
	buf_init(&out, ATT_MEAS_MAX);
	assert_int_equal(att_meas_write(&m, &out), 0);
	assert_int_equal(att_meas_parse(buf_data(&out), out.len, &m2), 0);
	assert_int_equal(m2.ima_from, 7);
	assert_int_equal(m2.ima_len, 1);
	assert_null(m2.evlog);
	assert_int_equal(buf_append(&out, "", 1), 0);
	assert_int_equal(
	    att_meas_parse(buf_data(&out), out.len, &m2), SM_ERR_INVAL);
	buf_data(&out)[1 + 2 + 6 + 2 + 3] = 8;
	assert_int_equal(
	    att_meas_parse(buf_data(&out), out.len - 1, &m2), SM_ERR_INVAL);
	buf_data(&out)[0] = 2;
	assert_int_equal(
	    att_meas_parse(buf_data(&out), out.len - 1, &m2), SM_ERR_UNSUPP);
	buf_clear(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_entries_and_prefix),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_allowlist),
	    cmocka_unit_test(test_pcr_policy),
	    cmocka_unit_test(test_wire_encodings),
	};

	return cmocka_run_group_tests_name("ima", tests, NULL, NULL);
}
