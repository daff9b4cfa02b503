/*
 * The signer's judgement of worker requests (signer/signer.h): arbitrary
 * bytes as one request frame, on the fast and on the slow channel, against
 * a signer with in-memory keys. A frame it accepts gets an answer that
 * parses as a response to the same op.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <sodium.h>

#include "core/buf.h"
#include "core/log.h"
#include "harden/harden.h"
#include "signer/proto.h"
#include "signer/signer.h"

static struct signer *S;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct signer_frame f, in;
	struct buf out;

	if (S == NULL) {
		struct posture p;

		posture_init(&p);
		p.seccomp = TRI_TRUE;
		if (sodium_init() < 0 || signer_new_ephemeral(&S, &p) != 0)
			abort();
		log_setup(LOG_PRETTY, LOG_ERROR);
	}
	for (int slow = 0; slow < 2; slow++) {
		buf_init(&out, SIGNER_HDR_LEN + SIGNER_RESP_MAX);
		if (signer_answer(S, data, size, slow, &out) == 0) {
			if (signer_frame_parse(
				data, size, SIGNER_REQ_MAX, true, &in) != 0 ||
			    signer_frame_parse(buf_data(&out), out.len,
				SIGNER_RESP_MAX, false, &f) != 0 ||
			    f.op != in.op)
				abort();
		}
		buf_clear(&out);
	}
	return 0;
}
