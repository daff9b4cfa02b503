/* Per-member shares (mesh/share.h) and the downgrade memory (mesh/sticky.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "mesh/share.h"
#include "mesh/sticky.h"
#include "util_vectors.h"

static void
id_of(uint8_t id[ID_PK_LEN], unsigned n)
{
	memset(id, 0, ID_PK_LEN);
	memcpy(id, &n, sizeof(n));
}

static void
test_share(void **state)
{
	uint8_t a[ID_PK_LEN], b[ID_PK_LEN], c[ID_PK_LEN];
	struct share s;

	id_of(a, 1);
	id_of(b, 2);
	id_of(c, 3);
	share_init(&s, 100, 150);
	assert_int_equal(share_take(&s, a, 60), 0);
	assert_int_equal(share_take(&s, a, 41), SM_ERR_UNAVAIL); /* member */
	assert_int_equal(share_take(&s, a, 40), 0);
	assert_true(share_used(&s, a) == 100);
	assert_int_equal(share_take(&s, b, 60), SM_ERR_TOOBIG); /* node */
	assert_int_equal(share_take(&s, b, 50), 0);
	assert_int_equal(share_take(&s, c, 1), SM_ERR_TOOBIG);
	assert_true(s.refused == 3);
	share_give(&s, a, 100);
	assert_true(share_used(&s, a) == 0 && s.n == 1 && s.total == 50);
	assert_int_equal(share_take(&s, c, 100), 0);
	/* giving back more than held, or for a stranger, is harmless */
	share_give(&s, b, 1000);
	share_give(&s, a, 5);
	assert_true(s.total == 100 && s.n == 1);
	assert_int_equal(share_take(&s, a, UINT64_MAX), SM_ERR_UNAVAIL);
	share_clear(&s);
}

static void
test_share_members_bounded(void **state)
{
	uint8_t id[ID_PK_LEN];
	struct share s;
	unsigned i;

	share_init(&s, 1, UINT64_MAX);
	for (i = 0; i < SHARE_MAX_MEMBERS; i++) {
		id_of(id, i);
		assert_int_equal(share_take(&s, id, 1), 0);
	}
	id_of(id, i);
	assert_int_equal(share_take(&s, id, 1), SM_ERR_NOMEM);
	id_of(id, 0);
	share_give(&s, id, 1);
	id_of(id, i);
	assert_int_equal(share_take(&s, id, 1), 0);
	share_clear(&s);
}

/* Full: the longest-unseen id is evicted, not the newest, not the first. */
static void
test_sticky_eviction_order(void **state)
{
	uint8_t id[ID_PK_LEN];
	struct sticky s;
	bool added;

	sticky_init(&s, 3);
	for (unsigned i = 0; i < 3; i++) {
		id_of(id, i);
		assert_int_equal(sticky_note(&s, id, 100 + i, &added), 0);
		assert_true(added);
	}
	/* id 0 was seen first but is seen again now: id 1 is the oldest */
	id_of(id, 0);
	assert_int_equal(sticky_note(&s, id, 200, &added), 0);
	assert_false(added);
	id_of(id, 3);
	assert_int_equal(sticky_note(&s, id, 201, &added), 0);
	assert_true(added);
	assert_int_equal(s.n, 3);
	id_of(id, 1);
	assert_false(sticky_has(&s, id)); /* evicted: longest unseen */
	for (unsigned i = 0; i < 4; i++) {
		id_of(id, i);
		assert_int_equal(sticky_has(&s, id), i != 1);
	}
	/* next: id 2 (seen at 102) goes */
	id_of(id, 4);
	assert_int_equal(sticky_note(&s, id, 202, NULL), 0);
	id_of(id, 2);
	assert_false(sticky_has(&s, id));
	id_of(id, 0);
	assert_true(sticky_has(&s, id));
	sticky_clear(&s);
}

static void
test_sticky_file_roundtrip(void **state)
{
	uint8_t id[ID_PK_LEN];
	struct sticky s, t;
	struct buf out;

	sticky_init(&s, 0);
	for (unsigned i = 0; i < 5; i++) {
		id_of(id, 10 - i);
		assert_int_equal(sticky_note(&s, id, 1000 + i, NULL), 0);
	}
	buf_init(&out, STICKY_FILE_MAX);
	assert_int_equal(sticky_write(&s, &out), 0);
	assert_int_equal(
	    memcmp(buf_data(&out), STICKY_MAGIC, sizeof(STICKY_MAGIC) - 1), 0);
	/* loading into a smaller memory keeps the most recently seen */
	sticky_init(&t, 2);
	assert_int_equal(sticky_parse(&t, buf_data(&out), out.len), 0);
	assert_int_equal(t.n, 2);
	id_of(id, 6); /* seen at 1004 */
	assert_true(sticky_has(&t, id));
	id_of(id, 7); /* seen at 1003 */
	assert_true(sticky_has(&t, id));
	sticky_clear(&t);
	sticky_init(&t, 0);
	assert_int_equal(sticky_parse(&t, buf_data(&out), out.len), 0);
	assert_int_equal(t.n, 5);
	sticky_clear(&t);
	buf_clear(&out);
	sticky_clear(&s);
}

static void
test_sticky_parse_bad(void **state)
{
	static const char *bad[] = {
	    "", "sealmesh-downgrade-memory 2\n", STICKY_MAGIC "00",
	    STICKY_MAGIC "0000000000000000000000000000000000000000000000000000"
			 "000000000000 1", /* no newline */
	    STICKY_MAGIC "0000000000000000000000000000000000000000000000000000"
			 "000000000000  1\n",
	    STICKY_MAGIC "0000000000000000000000000000000000000000000000000000"
			 "00000000000G 1\n",
	    STICKY_MAGIC "0000000000000000000000000000000000000000000000000000"
			 "00000000000A 1\n",
	    STICKY_MAGIC "0000000000000000000000000000000000000000000000000000"
			 "000000000000 -1\n",
	    STICKY_MAGIC "0000000000000000000000000000000000000000000000000000"
			 "000000000000 1\n"
			 "0000000000000000000000000000000000000000000000000000"
			 "000000000000 2\n", /* duplicate */
	};
	struct sticky s;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sticky_init(&s, 0);
		assert_int_equal(
		    sticky_parse(&s, (const uint8_t *)bad[i], strlen(bad[i])),
		    SM_ERR_PROTO);
		assert_int_equal(s.n, 0);
		sticky_clear(&s);
	}
	sticky_init(&s, 0);
	assert_int_equal(sticky_parse(&s, (const uint8_t *)STICKY_MAGIC,
			     sizeof(STICKY_MAGIC) - 1),
	    0);
	assert_int_equal(s.n, 0);
	assert_int_equal(sticky_parse(&s, (const uint8_t *)STICKY_MAGIC,
			     STICKY_FILE_MAX + 1),
	    SM_ERR_TOOBIG);
	sticky_clear(&s);
}

/* Known answers: tests/vectors/sticky.json (doc/PROTOCOL.md). */
static void
test_sticky_vectors(void **state)
{
	cJSON *root = vec_load("tests/vectors/sticky.json"), *v, *e;
	struct sticky s;
	struct buf out;
	uint8_t id[ID_PK_LEN];

	cJSON_ArrayForEach(v, cJSON_GetObjectItem(root, "valid"))
	{
		const char *f = cJSON_GetObjectItem(v, "file")->valuestring;
		const char *canon =
		    cJSON_GetObjectItem(v, "canonical")->valuestring;
		cJSON *ents = cJSON_GetObjectItem(v, "entries");

		sticky_init(&s, 0);
		assert_int_equal(
		    sticky_parse(&s, (const uint8_t *)f, strlen(f)), 0);
		assert_int_equal(s.n, cJSON_GetArraySize(ents));
		cJSON_ArrayForEach(e, ents)
		{
			vec_hex(id, ID_PK_LEN, e, "id");
			assert_true(sticky_has(&s, id));
			for (size_t i = 0; i < s.n; i++)
				if (memcmp(s.v[i].id, id, ID_PK_LEN) == 0)
					assert_true(s.v[i].last_seen ==
					    (uint64_t)cJSON_GetObjectItem(
						e, "last_seen")
						->valuedouble);
		}
		buf_init(&out, STICKY_FILE_MAX);
		assert_int_equal(sticky_write(&s, &out), 0);
		assert_int_equal(out.len, strlen(canon));
		assert_memory_equal(buf_data(&out), canon, out.len);
		buf_clear(&out);
		sticky_clear(&s);
	}
	cJSON_ArrayForEach(v, cJSON_GetObjectItem(root, "invalid"))
	{
		const char *f = cJSON_GetObjectItem(v, "file")->valuestring;

		sticky_init(&s, 0);
		assert_int_equal(
		    sticky_parse(&s, (const uint8_t *)f, strlen(f)),
		    SM_ERR_PROTO);
		assert_int_equal(s.n, 0);
		sticky_clear(&s);
	}
	cJSON_Delete(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_share),
	    cmocka_unit_test(test_share_members_bounded),
	    cmocka_unit_test(test_sticky_eviction_order),
	    cmocka_unit_test(test_sticky_file_roundtrip),
	    cmocka_unit_test(test_sticky_parse_bad),
	    cmocka_unit_test(test_sticky_vectors),
	};

	return cmocka_run_group_tests_name("limits", tests, NULL, NULL);
}
