/*
 * TCG crypto-agile event log parser and replay: known-answer vectors from
 * tests/vectors/measure.json (generated with hashlib by gen_measure.py),
 * secure boot derived from PCR 7 events, and the parser's bounds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "attest/eventlog.h"
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

static void
test_vectors(void **state)
{
	cJSON *j = vec_load(VEC), *v;
	struct evlog_info info;
	uint8_t want[32];
	size_t len, n = 0;
	uint8_t *log;

	cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(j, "eventlog"))
	{
		const cJSON *pcrs = cJSON_GetObjectItemCaseSensitive(v, "pcrs");

		log = hexdup(v, "log", &len);
		assert_int_equal(evlog_replay(log, len, &info), 0);
		for (int i = 0; i < 8; i++) {
			const cJSON *h = cJSON_GetArrayItem(pcrs, i);

			assert_int_equal(sm_unhex(want, 32, h->valuestring), 0);
			assert_memory_equal(info.pcr[i], want, 32);
		}
		assert_int_equal(info.secure_boot,
		    cJSON_IsTrue(
			cJSON_GetObjectItemCaseSensitive(v, "secure_boot"))
			? TRI_TRUE
			: TRI_FALSE);
		assert_int_equal(info.nevents,
		    cJSON_GetObjectItemCaseSensitive(v, "events")->valueint);
		/* Every shorter cut that is not an event boundary fails;
		 * none crashes or replays to the same PCRs. */
		for (size_t cut = 1; cut < len; cut++) {
			struct evlog_info p;
			int r = evlog_replay(log, cut, &p);

			assert_true(r != 0 || p.nevents < info.nevents);
		}
		free(log);
		n++;
	}
	assert_int_equal(n, 2);
	cJSON_Delete(j);
}

static void
test_bad_vectors(void **state)
{
	cJSON *j = vec_load(VEC), *v;
	struct evlog_info info;
	size_t len, n = 0;
	uint8_t *log;

	cJSON_ArrayForEach(
	    v, cJSON_GetObjectItemCaseSensitive(j, "eventlog_bad"))
	{
		const char *e =
		    cJSON_GetObjectItemCaseSensitive(v, "error")->valuestring;
		int want = strcmp(e, "verify") == 0 ? SM_ERR_VERIFY
		    : strcmp(e, "unsupp") == 0      ? SM_ERR_UNSUPP
						    : SM_ERR_INVAL;

		log = hexdup(v, "log", &len);
		assert_int_equal(evlog_replay(log, len, &info), want);
		assert_int_equal(info.secure_boot, TRI_UNKNOWN);
		free(log);
		n++;
	}
	assert_int_equal(n, 3);
	cJSON_Delete(j);
}

/* Patch one little-endian u32 in place. */
static void
le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
	p[3] = (uint8_t)(v >> 24);
}

static void
test_bounds(void **state)
{
	cJSON *j = vec_load(VEC);
	const cJSON *v0 = cJSON_GetArrayItem(
	    cJSON_GetObjectItemCaseSensitive(j, "eventlog"), 0);
	struct evlog_info info;
	size_t len, hdr, ev1;
	uint8_t *log, *big;

	log = hexdup(v0, "log", &len);
	/* Header: 32 bytes + its event size; then the first EVENT2. */
	hdr = 32 + ((size_t)log[28] | (size_t)log[29] << 8);
	ev1 = hdr;

	/* PCR index out of range. */
	le32(log + ev1, 24);
	assert_int_equal(evlog_replay(log, len, &info), SM_ERR_INVAL);
	le32(log + ev1, 0);
	/* Zero digests, or more than the header announced. */
	le32(log + ev1 + 8, 0);
	assert_int_equal(evlog_replay(log, len, &info), SM_ERR_INVAL);
	le32(log + ev1 + 8, 3);
	assert_int_equal(evlog_replay(log, len, &info), SM_ERR_INVAL);
	le32(log + ev1 + 8, 2);
	/* An algorithm the header did not list: its size is unknown. */
	log[ev1 + 12] = 0x0c; /* sha384 */
	assert_int_equal(evlog_replay(log, len, &info), SM_ERR_INVAL);
	log[ev1 + 12] = 0x04;
	/* Event data size over the cap: refused before reading it. */
	le32(log + ev1 + 12 + 22 + 34, EVLOG_EVENT_MAX + 1);
	assert_int_equal(evlog_replay(log, len, &info), SM_ERR_TOOBIG);
	le32(log + ev1 + 12 + 22 + 34, 0xffffffffu);
	assert_int_equal(evlog_replay(log, len, &info), SM_ERR_TOOBIG);
	free(log);
	log = hexdup(v0, "log", &len);
	assert_int_equal(evlog_replay(log, len, &info), 0);
	/* Whole log over EVLOG_MAX. */
	assert_non_null(big = calloc(1, EVLOG_MAX + 1));
	memcpy(big, log, len);
	assert_int_equal(
	    evlog_replay(big, EVLOG_MAX + 1, &info), SM_ERR_TOOBIG);
	/* Trailing zero bytes are an event for PCR 0 with no digests. */
	assert_int_equal(evlog_replay(big, len + 12, &info), SM_ERR_INVAL);
	free(big);
	free(log);
	cJSON_Delete(j);
}

/* More events than EVLOG_EVENTS_MAX: refused, not looped over forever. */
static void
test_event_count_cap(void **state)
{
	cJSON *j = vec_load(VEC);
	const cJSON *v0 = cJSON_GetArrayItem(
	    cJSON_GetObjectItemCaseSensitive(j, "eventlog"), 0);
	struct evlog_info info;
	size_t len, hdr, n, evlen = 4 + 4 + 4 + 22 + 34 + 4;
	uint8_t *log, *big, *p;

	log = hexdup(v0, "log", &len);
	hdr = 32 + ((size_t)log[28] | (size_t)log[29] << 8);
	n = EVLOG_EVENTS_MAX + 1;
	assert_true(hdr + n * evlen <= EVLOG_MAX);
	assert_non_null(big = calloc(1, hdr + n * evlen));
	memcpy(big, log, hdr);
	for (size_t i = 0; i < n; i++) {
		p = big + hdr + i * evlen;
		le32(p, 1);
		le32(p + 4, 1); /* EV_POST_CODE */
		le32(p + 8, 2);
		p[12] = 0x04;
		p[34] = 0x0b;
		le32(p + 12 + 22 + 34, 0);
	}
	assert_int_equal(evlog_replay(big, hdr + (n - 1) * evlen, &info), 0);
	assert_int_equal(info.nevents, EVLOG_EVENTS_MAX);
	assert_true(info.touched == 2u);
	assert_int_equal(
	    evlog_replay(big, hdr + n * evlen, &info), SM_ERR_TOOBIG);
	free(big);
	free(log);
	cJSON_Delete(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_bad_vectors),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_event_count_cap),
	};

	return cmocka_run_group_tests_name("eventlog", tests, NULL, NULL);
}
