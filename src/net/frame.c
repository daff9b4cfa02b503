/*
 * Link chunk framing and control messages: see frame.h. No I/O.
 */
#include <string.h>

#include <sodium.h>

#include "net/frame.h"

void
frame_rx_init(struct frame_rx *rx, unsigned allow)
{
	memset(rx, 0, sizeof(*rx));
	rx->allow = allow;
}

void
frame_rx_allow(struct frame_rx *rx, unsigned allow)
{
	rx->allow = allow;
}

void
frame_rx_clear(struct frame_rx *rx)
{
	sodium_memzero(rx, sizeof(*rx));
}

/* Check a complete header; set up the chunk it starts. */
static int
frame_hdr_check(struct frame_rx *rx)
{
	rx->chan = rx->hdr[0];
	rx->len = (size_t)rx->hdr[1] << 16 | (size_t)rx->hdr[2] << 8 |
	    (size_t)rx->hdr[3];
	rx->off = 0;
	if (rx->chan >= FRAME_NCHAN ||
	    (rx->allow & FRAME_ALLOW(rx->chan)) == 0 || rx->len == 0 ||
	    (rx->chan == FRAME_CHAN_CTL && rx->len > FRAME_CTL_MAX))
		return SM_ERR_PROTO;
	return 0;
}

int
frame_feed(struct frame_rx *rx, const uint8_t *in, size_t len, size_t *used,
    struct frame *out)
{
	size_t pos = 0, take;
	int r = SM_ERR_PROTO;

	*used = 0;
	memset(out, 0, sizeof(*out));
	if (rx->failed)
		goto out;
	r = SM_ERR_AGAIN;
	if (len == 0)
		goto out;
	if (rx->hdr_have < FRAME_HDR_LEN) {
		take = FRAME_HDR_LEN - rx->hdr_have;
		if (take > len)
			take = len;
		memcpy(rx->hdr + rx->hdr_have, in, take);
		rx->hdr_have += take;
		pos = take;
		if (rx->hdr_have < FRAME_HDR_LEN)
			goto out;
		if ((r = frame_hdr_check(rx)) != 0) {
			rx->failed = true;
			goto out;
		}
		r = SM_ERR_AGAIN;
	}
	take = rx->len - rx->off;
	if (take > len - pos)
		take = len - pos;
	if (take == 0)
		goto out;
	if (rx->chan == FRAME_CHAN_CTL) {
		/* Whole messages only: collect them in rx->ctl. */
		memcpy(rx->ctl + rx->off, in + pos, take);
		rx->off += take;
		pos += take;
		if (rx->off < rx->len)
			goto out;
		out->off = 0;
		out->p = rx->ctl;
		out->n = rx->len;
	} else {
		out->off = rx->off;
		out->p = in + pos;
		out->n = take;
		rx->off += take;
		pos += take;
	}
	out->chan = rx->chan;
	out->len = rx->len;
	out->last = rx->off == rx->len;
	if (out->last)
		rx->hdr_have = 0;
	r = 0;
out:
	*used = pos;
	return r;
}

int
frame_hdr_write(uint8_t out[FRAME_HDR_LEN], uint8_t chan, size_t len)
{
	if (chan >= FRAME_NCHAN || len == 0 || len > FRAME_LEN_MAX)
		return SM_ERR_INVAL;
	out[0] = chan;
	out[1] = (uint8_t)(len >> 16);
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
	return 0;
}

int
frame_ctl_parse(const uint8_t *p, size_t n, struct frame_ctl *out)
{
	memset(out, 0, sizeof(*out));
	if (p == NULL || n == 0 || n > FRAME_CTL_MAX)
		return SM_ERR_PROTO;
	switch (p[0]) {
	case FRAME_CTL_JOIN:
		if (n != FRAME_JOIN_LEN)
			return SM_ERR_PROTO;
		out->proof = p + 1;
		break;
	case FRAME_CTL_DENY:
		if (n != FRAME_DENY_LEN)
			return SM_ERR_PROTO;
		out->reason = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 |
		    (uint32_t)p[3] << 8 | (uint32_t)p[4];
		break;
	default:
		return SM_ERR_PROTO;
	}
	out->type = p[0];
	return 0;
}

void
frame_ctl_write_join(
    uint8_t out[FRAME_JOIN_LEN], const uint8_t proof[JOIN_PROOF_LEN])
{
	out[0] = FRAME_CTL_JOIN;
	memcpy(out + 1, proof, JOIN_PROOF_LEN);
}

void
frame_ctl_write_deny(uint8_t out[FRAME_DENY_LEN], uint32_t reason)
{
	out[0] = FRAME_CTL_DENY;
	out[1] = (uint8_t)(reason >> 24);
	out[2] = (uint8_t)(reason >> 16);
	out[3] = (uint8_t)(reason >> 8);
	out[4] = (uint8_t)reason;
}
