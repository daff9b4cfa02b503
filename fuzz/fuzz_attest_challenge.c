/*
 * Fuzz the challenge and answer parsers and the answer check against a
 * fixed software verdict: no crash, and no answer passes for a nonce whose
 * signature the fuzzer cannot make.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "attest/challenge.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t nonce[ATT_NONCE_LEN] = {1, 2, 3};
	static const uint8_t gen[ATT_SW_PUB_LEN] = {0x04, 0x6b, 0x17, 0xd1,
	    0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4,
	    0x40, 0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4,
	    0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96, 0x4f, 0xe3, 0x42, 0xe2,
	    0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e,
	    0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6,
	    0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5};
	struct att_verdict v;
	struct att_answer a;
	struct att_chal c;
	struct buf b;

	if (att_chal_parse(data, size, &c) == 0) {
		buf_init(&b, ATT_CHAL_MAX);
		if (att_chal_write(&c, &b) != 0 || b.len != size ||
		    memcmp(buf_data(&b), data, size) != 0)
			__builtin_trap();
		buf_clear(&b);
	}
	if (att_answer_parse(data, size, &a) != 0)
		return 0;
	memset(&v, 0, sizeof(v));
	v.status = ATT_VERIFIED;
	v.provider = a.provider;
	memcpy(v.blob_hash, a.blob_hash, ATT_HASH_LEN);
	/* The P-256 generator: a valid point whose key is 1, but the fuzzer
	 * would still have to produce a signature over the fixed nonce. */
	memcpy(v.sw_pub, gen, sizeof(gen));
	if (att_answer_check(&v, nonce, &a) == 0)
		__builtin_trap();
	return 0;
}
