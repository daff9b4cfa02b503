/*
 * Link chunk framing and control messages (net/frame.c), alone: no sockets,
 * no TLS. The byte strings are those of doc/PROTOCOL.md, "Link layer".
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "net/frame.h"

/*
 * JOIN chunk carrying the proof of the "Join proof" vector (doc/PROTOCOL.md,
 * tests/vectors/token.json).
 */
static const uint8_t join_chunk[] = {0x00, 0x00, 0x00, 0x21, 0x01, 0xc5, 0xb8,
    0x93, 0xe9, 0x4a, 0xa2, 0x42, 0x80, 0x9b, 0x01, 0xa2, 0x2d, 0x13, 0x61,
    0x5a, 0xa3, 0x46, 0x0d, 0x96, 0xb3, 0x30, 0xf2, 0xb2, 0xb2, 0x57, 0x3c,
    0x43, 0x56, 0x9d, 0x45, 0x02, 0x06};
/* DENY chunk, reason 1 (proof refused). */
static const uint8_t deny_chunk[] = {
    0x00, 0x00, 0x00, 0x05, 0x02, 0x00, 0x00, 0x00, 0x01};
/* An HTTP/2 SETTINGS frame (empty) on chan 2. */
static const uint8_t h2_chunk[] = {0x02, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00,
    0x04, 0x00, 0x00, 0x00, 0x00, 0x00};

static void
test_encoders(void **state)
{
	uint8_t proof[JOIN_PROOF_LEN], msg[FRAME_JOIN_LEN], h[FRAME_HDR_LEN];

	memcpy(proof, join_chunk + FRAME_HDR_LEN + 1, JOIN_PROOF_LEN);
	assert_int_equal(proof[0], 0xc5);
	assert_int_equal(proof[JOIN_PROOF_LEN - 1], 0x06);
	frame_ctl_write_join(msg, proof);
	assert_int_equal(frame_hdr_write(h, FRAME_CHAN_CTL, sizeof(msg)), 0);
	assert_memory_equal(h, join_chunk, FRAME_HDR_LEN);
	assert_memory_equal(msg, join_chunk + FRAME_HDR_LEN, sizeof(msg));

	frame_ctl_write_deny(msg, FRAME_DENY_PROOF);
	assert_int_equal(frame_hdr_write(h, FRAME_CHAN_CTL, FRAME_DENY_LEN), 0);
	assert_memory_equal(h, deny_chunk, FRAME_HDR_LEN);
	assert_memory_equal(msg, deny_chunk + FRAME_HDR_LEN, FRAME_DENY_LEN);

	assert_int_equal(frame_hdr_write(h, 2, FRAME_LEN_MAX), 0);
	assert_int_equal(h[0], 2);
	assert_int_equal(h[1], 0xff);
	assert_int_equal(h[2], 0xff);
	assert_int_equal(h[3], 0xff);
	assert_int_equal(frame_hdr_write(h, 3, 1), SM_ERR_INVAL);
	assert_int_equal(frame_hdr_write(h, 1, 0), SM_ERR_INVAL);
	assert_int_equal(
	    frame_hdr_write(h, 1, FRAME_LEN_MAX + 1), SM_ERR_INVAL);
}

static void
test_join_byte_by_byte(void **state)
{
	struct frame_rx rx;
	struct frame f;
	struct frame_ctl c;
	size_t i, used;
	int r;

	frame_rx_init(&rx, FRAME_ALLOW_CTL);
	for (i = 0; i + 1 < sizeof(join_chunk); i++) {
		r = frame_feed(&rx, join_chunk + i, 1, &used, &f);
		assert_int_equal(r, SM_ERR_AGAIN);
		assert_int_equal(used, 1);
		assert_null(f.p);
	}
	r = frame_feed(&rx, join_chunk + i, 1, &used, &f);
	assert_int_equal(r, 0);
	assert_int_equal(used, 1);
	assert_int_equal(f.chan, FRAME_CHAN_CTL);
	assert_int_equal(f.len, FRAME_JOIN_LEN);
	assert_int_equal(f.off, 0);
	assert_int_equal(f.n, FRAME_JOIN_LEN);
	assert_true(f.last);
	assert_memory_equal(f.p, join_chunk + FRAME_HDR_LEN, FRAME_JOIN_LEN);

	assert_int_equal(frame_ctl_parse(f.p, f.n, &c), 0);
	assert_int_equal(c.type, FRAME_CTL_JOIN);
	assert_ptr_equal(c.proof, f.p + 1);
	assert_memory_equal(
	    c.proof, join_chunk + FRAME_HDR_LEN + 1, JOIN_PROOF_LEN);
	/* Nothing left over; an empty feed needs more. */
	assert_int_equal(frame_feed(&rx, NULL, 0, &used, &f), SM_ERR_AGAIN);
	assert_int_equal(used, 0);
	frame_rx_clear(&rx);
}

/* An HTTP/2 chunk byte by byte: one piece per byte, views of the input. */
static void
test_h2_byte_by_byte(void **state)
{
	struct frame_rx rx;
	struct frame f;
	size_t i, used, got = 0;
	int r;

	frame_rx_init(&rx, FRAME_ALLOW_H2);
	for (i = 0; i < sizeof(h2_chunk); i++) {
		r = frame_feed(&rx, h2_chunk + i, 1, &used, &f);
		assert_int_equal(used, 1);
		if (i < FRAME_HDR_LEN - 1) {
			assert_int_equal(r, SM_ERR_AGAIN);
			continue;
		}
		if (i == FRAME_HDR_LEN - 1) {
			assert_int_equal(r, SM_ERR_AGAIN); /* header only */
			continue;
		}
		assert_int_equal(r, 0);
		assert_int_equal(f.chan, FRAME_CHAN_ACCEPTOR);
		assert_int_equal(f.len, 9);
		assert_int_equal(f.off, got);
		assert_int_equal(f.n, 1);
		assert_ptr_equal(f.p, h2_chunk + i);
		got++;
		assert_int_equal(f.last, got == 9);
	}
	assert_int_equal(got, 9);
	frame_rx_clear(&rx);
}

/* JOIN then an HTTP/2 chunk in one buffer, as the acceptor sends them. */
static void
test_two_frames_one_buffer(void **state)
{
	uint8_t buf[sizeof(join_chunk) + sizeof(h2_chunk)];
	struct frame_rx rx;
	struct frame f;
	struct frame_ctl c;
	size_t used;

	memcpy(buf, join_chunk, sizeof(join_chunk));
	memcpy(buf + sizeof(join_chunk), h2_chunk, sizeof(h2_chunk));
	frame_rx_init(&rx, FRAME_ALLOW_CTL);
	assert_int_equal(frame_feed(&rx, buf, sizeof(buf), &used, &f), 0);
	assert_int_equal(used, sizeof(join_chunk));
	assert_int_equal(f.chan, FRAME_CHAN_CTL);
	assert_int_equal(frame_ctl_parse(f.p, f.n, &c), 0);
	assert_int_equal(c.type, FRAME_CTL_JOIN);
	/* The link is up now: HTTP/2 only. */
	frame_rx_allow(&rx, FRAME_ALLOW_H2);
	assert_int_equal(
	    frame_feed(&rx, buf + used, sizeof(buf) - used, &used, &f), 0);
	assert_int_equal(used, sizeof(h2_chunk));
	assert_int_equal(f.chan, FRAME_CHAN_ACCEPTOR);
	assert_int_equal(f.off, 0);
	assert_int_equal(f.n, 9);
	assert_true(f.last);
	assert_ptr_equal(f.p, buf + sizeof(join_chunk) + FRAME_HDR_LEN);
	frame_rx_clear(&rx);

	/* Two control chunks in one buffer: one at a time. */
	uint8_t two[sizeof(deny_chunk) * 2];

	memcpy(two, deny_chunk, sizeof(deny_chunk));
	memcpy(two + sizeof(deny_chunk), deny_chunk, sizeof(deny_chunk));
	frame_rx_init(&rx, FRAME_ALLOW_CTL);
	assert_int_equal(frame_feed(&rx, two, sizeof(two), &used, &f), 0);
	assert_int_equal(used, sizeof(deny_chunk));
	assert_int_equal(frame_ctl_parse(f.p, f.n, &c), 0);
	assert_int_equal(c.type, FRAME_CTL_DENY);
	assert_int_equal(c.reason, FRAME_DENY_PROOF);
	assert_null(c.proof);
	assert_int_equal(
	    frame_feed(&rx, two + used, sizeof(two) - used, &used, &f), 0);
	assert_int_equal(used, sizeof(deny_chunk));
	assert_int_equal(f.n, FRAME_DENY_LEN);
	frame_rx_clear(&rx);
}

/* A header that must be refused, in one piece and byte by byte. */
static void
expect_refused(unsigned allow, const uint8_t *in, size_t len)
{
	struct frame_rx rx;
	struct frame f;
	size_t i, used;
	int r = SM_ERR_AGAIN;

	frame_rx_init(&rx, allow);
	assert_int_equal(frame_feed(&rx, in, len, &used, &f), SM_ERR_PROTO);
	assert_int_equal(used, FRAME_HDR_LEN);
	assert_null(f.p);
	/* Sticky: nothing more is taken. */
	assert_int_equal(frame_feed(&rx, in, len, &used, &f), SM_ERR_PROTO);
	assert_int_equal(used, 0);
	frame_rx_clear(&rx);

	frame_rx_init(&rx, allow);
	for (i = 0; i < len && r == SM_ERR_AGAIN; i++)
		r = frame_feed(&rx, in + i, 1, &used, &f);
	assert_int_equal(r, SM_ERR_PROTO);
	assert_int_equal(i, FRAME_HDR_LEN);
	frame_rx_clear(&rx);
}

static void
test_bad_headers(void **state)
{
	static const uint8_t bad_chan[] = {0x03, 0x00, 0x00, 0x01, 0x00};
	static const uint8_t high_chan[] = {0xff, 0x00, 0x00, 0x01, 0x00};
	static const uint8_t zero_ctl[] = {0x00, 0x00, 0x00, 0x00, 0x01};
	static const uint8_t zero_h2[] = {0x01, 0x00, 0x00, 0x00, 0x01};
	static const uint8_t big_ctl[] = {0x00, 0x00, 0x00, 0x41, 0x01};
	static const uint8_t huge_ctl[] = {0x00, 0xff, 0xff, 0xff, 0x01};
	static const uint8_t max_ctl[] = {0x00, 0x00, 0x00, 0x40, 0x01};
	static const uint8_t huge_h2[] = {0x01, 0xff, 0xff, 0xff, 0x55};
	struct frame_rx rx;
	struct frame f;
	size_t used;

	expect_refused(
	    FRAME_ALLOW_CTL | FRAME_ALLOW_H2, bad_chan, sizeof(bad_chan));
	expect_refused(
	    FRAME_ALLOW_CTL | FRAME_ALLOW_H2, high_chan, sizeof(high_chan));
	expect_refused(FRAME_ALLOW_CTL, zero_ctl, sizeof(zero_ctl));
	expect_refused(FRAME_ALLOW_H2, zero_h2, sizeof(zero_h2));
	expect_refused(FRAME_ALLOW_CTL, big_ctl, sizeof(big_ctl));
	expect_refused(FRAME_ALLOW_CTL, huge_ctl, sizeof(huge_ctl));
	/* HTTP/2 before the join proofs; control after. */
	expect_refused(FRAME_ALLOW_CTL, h2_chunk, sizeof(h2_chunk));
	expect_refused(FRAME_ALLOW_H2, join_chunk, sizeof(join_chunk));
	expect_refused(FRAME_ALLOW_H2, deny_chunk, sizeof(deny_chunk));
	/* Nothing at all before the TLS handshake. */
	expect_refused(0, join_chunk, sizeof(join_chunk));
	/* Chan 1 only (not 2). */
	expect_refused(
	    FRAME_ALLOW(FRAME_CHAN_DIALER), h2_chunk, sizeof(h2_chunk));

	/* The largest control chunk is fine (its content is not). */
	frame_rx_init(&rx, FRAME_ALLOW_CTL);
	assert_int_equal(
	    frame_feed(&rx, max_ctl, sizeof(max_ctl), &used, &f), SM_ERR_AGAIN);
	assert_int_equal(used, sizeof(max_ctl));
	frame_rx_clear(&rx);
	/* The largest HTTP/2 chunk is fine, and comes in pieces. */
	frame_rx_init(&rx, FRAME_ALLOW_H2);
	assert_int_equal(
	    frame_feed(&rx, huge_h2, sizeof(huge_h2), &used, &f), 0);
	assert_int_equal(used, sizeof(huge_h2));
	assert_int_equal(f.len, FRAME_LEN_MAX);
	assert_int_equal(f.n, 1);
	assert_false(f.last);
	frame_rx_clear(&rx);
}

static void
test_ctl_parse_refusals(void **state)
{
	uint8_t m[FRAME_CTL_MAX + 1];
	struct frame_ctl c;

	memset(m, 0, sizeof(m));
	assert_int_equal(frame_ctl_parse(m, 0, &c), SM_ERR_PROTO);
	assert_int_equal(frame_ctl_parse(NULL, 5, &c), SM_ERR_PROTO);
	/* Unknown types. */
	m[0] = 0x00;
	assert_int_equal(frame_ctl_parse(m, 5, &c), SM_ERR_PROTO);
	m[0] = 0x03;
	assert_int_equal(frame_ctl_parse(m, 5, &c), SM_ERR_PROTO);
	m[0] = 0xff;
	assert_int_equal(frame_ctl_parse(m, FRAME_JOIN_LEN, &c), SM_ERR_PROTO);
	/* JOIN of the wrong length. */
	m[0] = FRAME_CTL_JOIN;
	assert_int_equal(frame_ctl_parse(m, 1, &c), SM_ERR_PROTO);
	assert_int_equal(
	    frame_ctl_parse(m, FRAME_JOIN_LEN - 1, &c), SM_ERR_PROTO);
	assert_int_equal(
	    frame_ctl_parse(m, FRAME_JOIN_LEN + 1, &c), SM_ERR_PROTO);
	assert_int_equal(
	    frame_ctl_parse(m, FRAME_CTL_MAX + 1, &c), SM_ERR_PROTO);
	assert_int_equal(frame_ctl_parse(m, FRAME_JOIN_LEN, &c), 0);
	/* DENY of the wrong length. */
	m[0] = FRAME_CTL_DENY;
	assert_int_equal(frame_ctl_parse(m, 4, &c), SM_ERR_PROTO);
	assert_int_equal(frame_ctl_parse(m, 6, &c), SM_ERR_PROTO);
	assert_null(c.proof);
	assert_int_equal(c.type, 0);
	/* Any DENY reason parses; big-endian. */
	m[1] = 0x12, m[2] = 0x34, m[3] = 0x56, m[4] = 0x78;
	assert_int_equal(frame_ctl_parse(m, 5, &c), 0);
	assert_int_equal(c.reason, 0x12345678);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encoders),
	    cmocka_unit_test(test_join_byte_by_byte),
	    cmocka_unit_test(test_h2_byte_by_byte),
	    cmocka_unit_test(test_two_frames_one_buffer),
	    cmocka_unit_test(test_bad_headers),
	    cmocka_unit_test(test_ctl_parse_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
