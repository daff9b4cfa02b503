/*
 * Downgrade memory file parser (mesh/sticky.h): arbitrary bytes as a file.
 * A file that parses writes back to a canonical form that parses to the same
 * entries and writes back to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/sticky.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sticky s, t;
	struct buf a, b;

	sticky_init(&s, 8); /* small: the eviction path runs too */
	sticky_init(&t, 8);
	buf_init(&a, STICKY_FILE_MAX);
	buf_init(&b, STICKY_FILE_MAX);
	if (sticky_parse(&s, data, size) != 0) {
		if (s.n != 0)
			abort();
		goto out;
	}
	if (s.n > 8 || sticky_write(&s, &a) != 0 ||
	    sticky_parse(&t, buf_data(&a), a.len) != 0 || t.n != s.n ||
	    sticky_write(&t, &b) != 0 || a.len != b.len ||
	    memcmp(buf_data(&a), buf_data(&b), a.len) != 0)
		abort();
	for (size_t i = 0; i < s.n; i++)
		if (!sticky_has(&t, s.v[i].id))
			abort();
out:
	buf_clear(&a);
	buf_clear(&b);
	sticky_clear(&s);
	sticky_clear(&t);
	return 0;
}
