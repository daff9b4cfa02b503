/*
 * libFuzzer target for the link chunk deframer and the control-message
 * parser (net/frame.c): the bytes a peer sends inside TLS, before and after
 * the join proof.
 *
 *   byte 0: channel policy: 0 as link.c (control only until a JOIN parses,
 *           then HTTP/2 only), 1 everything allowed, 2 HTTP/2 only
 *   byte 1: split seed: the rest is fed in slices of pseudo-random sizes
 *           (0 = all at once), zero-length slices included
 *   rest:   the TLS plaintext stream
 *
 * The incremental deframer's output (chunks and payload bytes) must match a
 * one-shot reference parse of the whole stream, whatever the split, and
 * every contract of frame.h is checked with __builtin_trap().
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "net/frame.h"

#define IN_MAX (64 * 1024)
#define CHUNKS_MAX (IN_MAX / FRAME_HDR_LEN + 1)

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c))                                                      \
			__builtin_trap();                                      \
	} while (0)

/* What a parse delivered: chunk starts and the payload bytes, in order. */
struct trace {
	uint8_t bytes[IN_MAX];
	size_t nbytes;
	uint32_t chunk[CHUNKS_MAX]; /* chan << 24 | len */
	size_t nchunks;
	bool err;
	size_t consumed; /* input bytes taken */
};

static struct trace inc, ref;

static unsigned
policy_start(int policy)
{
	return policy == 0 ? FRAME_ALLOW_CTL
	    : policy == 1  ? FRAME_ALLOW_CTL | FRAME_ALLOW_H2
			   : FRAME_ALLOW_H2;
}

/*
 * A whole control message arrived: check the parser and its encoders; return
 * the channels allowed from now on.
 */
static unsigned
on_ctl(const uint8_t *p, size_t n, int policy, unsigned allow)
{
	uint8_t enc[FRAME_JOIN_LEN];
	struct frame_ctl c;
	int r;

	r = frame_ctl_parse(p, n, &c);
	CHECK(r == 0 || r == SM_ERR_PROTO);
	if (r != 0) {
		CHECK(c.type == 0 && c.proof == NULL && c.reason == 0);
		return allow;
	}
	CHECK(n >= 1 && n <= FRAME_CTL_MAX && c.type == p[0]);
	if (c.type == FRAME_CTL_JOIN) {
		CHECK(n == FRAME_JOIN_LEN && c.proof == p + 1 && c.reason == 0);
		frame_ctl_write_join(enc, c.proof);
		CHECK(memcmp(enc, p, FRAME_JOIN_LEN) == 0);
		return policy == 0 ? FRAME_ALLOW_H2 : allow;
	}
	CHECK(
	    c.type == FRAME_CTL_DENY && n == FRAME_DENY_LEN && c.proof == NULL);
	frame_ctl_write_deny(enc, c.reason);
	CHECK(memcmp(enc, p, FRAME_DENY_LEN) == 0);
	return allow;
}

/* The reference: the whole stream at once, no state carried across calls. */
static void
ref_parse(const uint8_t *d, size_t n, int policy)
{
	unsigned allow = policy_start(policy);
	uint8_t h[FRAME_HDR_LEN];
	size_t pos = 0, len, avail;
	uint8_t chan;

	ref.nbytes = ref.nchunks = ref.consumed = 0;
	ref.err = false;
	while (n - pos >= FRAME_HDR_LEN) {
		chan = d[pos];
		len = (size_t)d[pos + 1] << 16 | (size_t)d[pos + 2] << 8 |
		    d[pos + 3];
		pos += FRAME_HDR_LEN;
		if (chan >= FRAME_NCHAN || !(allow & (1u << chan)) ||
		    len == 0 ||
		    (chan == FRAME_CHAN_CTL && len > FRAME_CTL_MAX)) {
			ref.err = true;
			ref.consumed = pos;
			return;
		}
		CHECK(frame_hdr_write(h, chan, len) == 0);
		CHECK(memcmp(h, d + pos - FRAME_HDR_LEN, FRAME_HDR_LEN) == 0);
		avail = n - pos < len ? n - pos : len;
		if (chan == FRAME_CHAN_CTL && avail < len)
			break; /* held back until whole */
		if (avail == 0)
			break;
		ref.chunk[ref.nchunks++] = (uint32_t)chan << 24 | (uint32_t)len;
		memcpy(ref.bytes + ref.nbytes, d + pos, avail);
		ref.nbytes += avail;
		if (chan == FRAME_CHAN_CTL)
			allow = on_ctl(d + pos, len, policy, allow);
		pos += avail;
	}
	ref.consumed = n;
}

static uint32_t
next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* The deframer under test, fed in slices. */
static void
inc_parse(const uint8_t *d, size_t n, int policy, uint8_t seed)
{
	struct frame_rx rx;
	struct frame f;
	uint32_t rnd = 0x9e3779b9u ^ seed;
	unsigned allow = policy_start(policy);
	size_t pos = 0, slice, left, used, want_off = 0;
	bool in_chunk = false;
	int r;

	inc.nbytes = inc.nchunks = inc.consumed = 0;
	inc.err = false;
	frame_rx_init(&rx, allow);
	while (pos < n && !inc.err) {
		slice = seed == 0 ? n - pos : next_rand(&rnd) % (4u * seed + 1);
		if (slice > n - pos)
			slice = n - pos;
		left = slice;
		for (;;) {
			const uint8_t *in = d + pos;

			r = frame_feed(&rx, in, left, &used, &f);
			CHECK(used <= left);
			pos += used;
			left -= used;
			if (r == SM_ERR_AGAIN) {
				CHECK(left == 0 && f.p == NULL && f.n == 0);
				break;
			}
			if (r != 0) {
				CHECK(r == SM_ERR_PROTO && f.p == NULL);
				inc.err = true;
				/* Sticky, takes nothing. */
				CHECK(frame_feed(&rx, d + pos, n - pos, &used,
					  &f) == SM_ERR_PROTO &&
				    used == 0);
				break;
			}
			CHECK(f.chan < FRAME_NCHAN && (allow & (1u << f.chan)));
			CHECK(f.n >= 1 && f.len >= 1 && f.len <= FRAME_LEN_MAX);
			CHECK(f.off + f.n <= f.len);
			CHECK(f.last == (f.off + f.n == f.len));
			if (f.chan == FRAME_CHAN_CTL) {
				CHECK(f.p == rx.ctl && f.off == 0 &&
				    f.n == f.len && f.len <= FRAME_CTL_MAX &&
				    f.last && !in_chunk);
			} else {
				/* A view of the bytes just taken. */
				CHECK(f.p >= in && f.p + f.n == in + used);
				CHECK(f.off == (in_chunk ? want_off : 0));
			}
			if (f.off == 0) {
				CHECK(inc.nchunks < CHUNKS_MAX);
				inc.chunk[inc.nchunks++] =
				    (uint32_t)f.chan << 24 | (uint32_t)f.len;
			}
			CHECK(inc.nbytes + f.n <= IN_MAX);
			memcpy(inc.bytes + inc.nbytes, f.p, f.n);
			inc.nbytes += f.n;
			in_chunk = !f.last;
			want_off = f.off + f.n;
			if (f.chan == FRAME_CHAN_CTL) {
				allow = on_ctl(f.p, f.n, policy, allow);
				frame_rx_allow(&rx, allow);
			}
		}
	}
	inc.consumed = pos;
	frame_rx_clear(&rx);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int policy;

	if (size < 2 || size - 2 > IN_MAX)
		return 0;
	policy = data[0] % 3;
	ref_parse(data + 2, size - 2, policy);
	inc_parse(data + 2, size - 2, policy, data[1]);
	CHECK(inc.err == ref.err);
	CHECK(inc.consumed == ref.consumed);
	CHECK(inc.nchunks == ref.nchunks);
	CHECK(memcmp(inc.chunk, ref.chunk,
		  inc.nchunks * sizeof(inc.chunk[0])) == 0);
	CHECK(inc.nbytes == ref.nbytes);
	CHECK(memcmp(inc.bytes, ref.bytes, inc.nbytes) == 0);
	return 0;
}
