/* Fuzz the posture decoder: anything that parses must re-encode and parse
 * back to the same posture. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "harden/harden.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct posture p, q;
	struct buf b;

	if (posture_parse(data, size, &p) != 0)
		return 0;
	buf_init(&b, 1024);
	if (posture_write(&p, &b) != 0 ||
	    posture_parse(buf_data(&b), b.len, &q) != 0 ||
	    memcmp(&p, &q, sizeof(p)) != 0)
		__builtin_trap();
	buf_clear(&b);
	return 0;
}
