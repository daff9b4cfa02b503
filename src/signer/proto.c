#include <string.h>

#include "core/util.h"
#include "signer/proto.h"

int
signer_hdr_write(uint8_t hdr[SIGNER_HDR_LEN], uint8_t op, uint16_t status,
    size_t body_len, size_t max)
{
	if (body_len > max)
		return SM_ERR_TOOBIG;
	hdr[0] = SIGNER_VERSION;
	hdr[1] = op;
	hdr[2] = (uint8_t)(status >> 8);
	hdr[3] = (uint8_t)status;
	sm_put_be32(hdr + 4, (uint32_t)body_len);
	return 0;
}

int
signer_hdr_parse(const uint8_t hdr[SIGNER_HDR_LEN], size_t max, bool request,
    struct signer_frame *out)
{
	memset(out, 0, sizeof(*out));
	if (hdr[0] != SIGNER_VERSION || hdr[1] == 0 || hdr[1] > SIGNER_OP_MAX)
		return SM_ERR_PROTO;
	out->op = hdr[1];
	out->status = (uint16_t)(hdr[2] << 8 | hdr[3]);
	out->body_len = sm_get_be32(hdr + 4);
	if (out->body_len > max || (request && out->status != 0) ||
	    (out->status != 0 && out->body_len != 0)) {
		memset(out, 0, sizeof(*out));
		return SM_ERR_PROTO;
	}
	return 0;
}

int
signer_frame_parse(const uint8_t *in, size_t len, size_t max, bool request,
    struct signer_frame *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	if (len < SIGNER_HDR_LEN)
		return SM_ERR_PROTO;
	if ((r = signer_hdr_parse(in, max, request, out)) != 0)
		return r;
	if (out->body_len != len - SIGNER_HDR_LEN) {
		memset(out, 0, sizeof(*out));
		return SM_ERR_PROTO;
	}
	out->body = in + SIGNER_HDR_LEN;
	return 0;
}

int
signer_activate_parse(
    const uint8_t *in, size_t len, struct signer_activate *out)
{
	size_t cl, sl;

	memset(out, 0, sizeof(*out));
	if (len < 2)
		return SM_ERR_PROTO;
	cl = (size_t)in[0] << 8 | in[1];
	if (cl == 0 || cl > SIGNER_CRED_MAX || len - 2 < cl + 2)
		return SM_ERR_PROTO;
	sl = (size_t)in[2 + cl] << 8 | in[3 + cl];
	if (sl == 0 || sl > SIGNER_CRED_MAX || len - 4 - cl != sl)
		return SM_ERR_PROTO;
	out->cred = in + 2;
	out->cred_len = cl;
	out->seed = in + 4 + cl;
	out->seed_len = sl;
	return 0;
}

int
signer_req_check(const struct signer_frame *f)
{
	struct signer_activate a;
	size_t n = f->body_len;

	switch (f->op) {
	case SIGNER_OP_HELLO:
	case SIGNER_OP_INF_STATE:
	case SIGNER_OP_APIKEYS:
		return n == 0 ? 0 : SM_ERR_PROTO;
	case SIGNER_OP_SIGN:
		return n >= 2 && n <= SIGNER_REQ_MAX &&
			(f->body[0] == SIGNER_KEY_IDENTITY ||
			    f->body[0] == SIGNER_KEY_OWNER)
		    ? 0
		    : SM_ERR_PROTO;
	case SIGNER_OP_INF_DH:
		return n == 4 + 32 ? 0 : SM_ERR_PROTO;
	case SIGNER_OP_ATT_EVIDENCE:
		return n > 0 && n <= 1024 ? 0 : SM_ERR_PROTO;
	case SIGNER_OP_ATT_ANSWER:
		return n == SIGNER_NONCE_LEN + SIGNER_HASH_LEN ? 0
							       : SM_ERR_PROTO;
	case SIGNER_OP_ATT_MEASURE:
		return n == SIGNER_NONCE_LEN + SIGNER_HASH_LEN + 4
		    ? 0
		    : SM_ERR_PROTO;
	case SIGNER_OP_ATT_ACTIVATE:
		return signer_activate_parse(f->body, n, &a);
	default:
		return SM_ERR_PROTO;
	}
}

const char *
signer_op_str(uint8_t op)
{
	static const char *const names[] = {
	    [SIGNER_OP_HELLO] = "hello",
	    [SIGNER_OP_SIGN] = "sign",
	    [SIGNER_OP_INF_STATE] = "inf-state",
	    [SIGNER_OP_INF_DH] = "inf-dh",
	    [SIGNER_OP_ATT_EVIDENCE] = "att-evidence",
	    [SIGNER_OP_ATT_ANSWER] = "att-answer",
	    [SIGNER_OP_ATT_MEASURE] = "att-measure",
	    [SIGNER_OP_ATT_ACTIVATE] = "att-activate",
	    [SIGNER_OP_APIKEYS] = "api-keys",
	};

	return op > 0 && op <= SIGNER_OP_MAX ? names[op] : "?";
}
