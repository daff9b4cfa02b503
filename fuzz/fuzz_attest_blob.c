/*
 * Fuzz the whole attestation message parser (announcement field 38) and the
 * verifier behind it: anything that parses must re-encode to bytes that
 * parse back to the same statement (write is idempotent after one parse; the
 * input itself may hold a non-canonical posture, which is fine because
 * signatures cover the bytes as received), and verification must never
 * crash or claim success without the announced inference key.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "attest/blob.h"
#include "attest/verify.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct att_msg m;
	struct att_blob c;
	struct buf b2;
	struct att_policy pol;
	struct att_verdict v;
	struct buf b;

	memset(&pol, 0, sizeof(pol));
	pol.min_level = ATT_LEVEL_SELF_SIGNED;
	if (att_verify(&pol, data, size, data, NULL, &v) == 0)
		__builtin_trap(); /* no inference key given: never verified */
	if (att_msg_parse(data, size, &m) != 0)
		return 0;
	buf_init(&b, ATT_BLOB_MAX);
	buf_init(&b2, ATT_BLOB_MAX);
	if (att_blob_write(&m.b, &b) != 0 ||
	    att_blob_parse(buf_data(&b), b.len, &c) != 0 ||
	    att_blob_write(&c, &b2) != 0 || b.len != b2.len ||
	    memcmp(buf_data(&b), buf_data(&b2), b.len) != 0)
		__builtin_trap();
	buf_clear(&b);
	buf_clear(&b2);
	return 0;
}
