/*
 * Link chunk framing and control messages (doc/PROTOCOL.md, "Link layer").
 * Pure parsing and encoding: no I/O, no allocation, so that everything a
 * peer can send before and after the join proof runs under a fuzzer
 * (fuzz/fuzz_link_frame.c) and a unit test (tests/unit/test_frame.c).
 *
 * After the TLS handshake every byte of TLS plaintext is a sequence of
 * chunks:
 *
 *   chan (1) || len (3, big-endian) || len bytes           1 <= len <= 2^24-1
 *
 *   chan 0: link control, one message per chunk, len <= FRAME_CTL_MAX:
 *           0x01 JOIN || proof (JOIN_PROOF_LEN)      33 bytes
 *           0x02 DENY || reason (4, big-endian)      5 bytes
 *   chan 1: HTTP/2 bytes of the session whose client is the dialer
 *   chan 2: HTTP/2 bytes of the session whose client is the acceptor
 *
 * Any other channel, a zero length, or a control chunk longer than
 * FRAME_CTL_MAX is a protocol error, and so is a channel the caller has not
 * allowed (link.c: control only while the join proofs are exchanged, HTTP/2
 * only after).
 */
#ifndef SM_NET_FRAME_H
#define SM_NET_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "net/join.h"

#define FRAME_HDR_LEN 4
#define FRAME_LEN_MAX 0xffffff /* 3-byte length */
#define FRAME_CHAN_CTL 0
/* chan 1: the HTTP/2 session whose client is the dialer; chan 2: acceptor */
#define FRAME_CHAN_DIALER 1
#define FRAME_CHAN_ACCEPTOR 2
#define FRAME_NCHAN 3
#define FRAME_CTL_MAX 64 /* largest control chunk payload */

/* Channel sets for frame_rx_init()/frame_rx_allow(). */
#define FRAME_ALLOW(chan) (1u << (chan))
#define FRAME_ALLOW_CTL FRAME_ALLOW(FRAME_CHAN_CTL)
#define FRAME_ALLOW_H2                                                         \
	(FRAME_ALLOW(FRAME_CHAN_DIALER) | FRAME_ALLOW(FRAME_CHAN_ACCEPTOR))

/* Control messages (chan 0). */
#define FRAME_CTL_JOIN 0x01
#define FRAME_CTL_DENY 0x02
#define FRAME_JOIN_LEN (1 + JOIN_PROOF_LEN)
#define FRAME_DENY_LEN 5
#define FRAME_DENY_PROOF 1 /* DENY reason: the join proof did not verify */

/*
 * Incremental deframer state, embedded in a link. Holds at most one chunk
 * header and one control payload; HTTP/2 payloads are never copied.
 */
struct frame_rx {
	unsigned allow; /* FRAME_ALLOW() bits of the channels accepted now */
	bool failed; /* a protocol error was returned: refuse everything */
	uint8_t hdr[FRAME_HDR_LEN];
	size_t hdr_have;
	uint8_t chan; /* current chunk, once hdr_have == FRAME_HDR_LEN */
	size_t len;
	size_t off; /* payload bytes of the current chunk already taken */
	uint8_t ctl[FRAME_CTL_MAX]; /* control payload being collected */
};

/*
 * One piece of a chunk's payload. A control chunk always comes whole, in one
 * piece (p points into rx->ctl: valid until the next frame_feed() or
 * frame_rx_clear()). An HTTP/2 chunk comes in one or more pieces as its
 * bytes arrive (p points into the input given to frame_feed()); pieces of
 * one chunk are consecutive: off grows by n, and the last has last = true.
 */
struct frame {
	uint8_t chan;
	size_t len; /* whole payload of the chunk, 1..FRAME_LEN_MAX */
	size_t off; /* where p starts within that payload */
	const uint8_t *p;
	size_t n; /* 1..len - off */
	bool last; /* p ends the chunk */
};

/* A parsed control message; proof points into the parsed bytes. */
struct frame_ctl {
	uint8_t type; /* FRAME_CTL_JOIN or FRAME_CTL_DENY */
	const uint8_t *proof; /* JOIN: JOIN_PROOF_LEN bytes; else NULL */
	uint32_t reason; /* DENY: the peer's reason code; else 0 */
};

/* Start a deframer accepting the channels in 'allow'. */
void frame_rx_init(struct frame_rx *rx, unsigned allow);
/*
 * Change the accepted channels. Takes effect at the next chunk header: the
 * chunk in progress (if any) was checked against the set in force when its
 * header completed.
 */
void frame_rx_allow(struct frame_rx *rx, unsigned allow);
/* Wipe the state (it may hold a join proof). */
void frame_rx_clear(struct frame_rx *rx);

/*
 * Take bytes from 'in' ('len' of them) until one payload piece is complete.
 * '*used' gets the number of input bytes taken (always <= len) and '*out' is
 * zeroed on entry. Returns:
 *   0             '*out' holds a piece (see struct frame); call again with
 *                 in + *used for the rest of the input;
 *   SM_ERR_AGAIN  all 'len' bytes were taken ('*used' == len) and no piece is
 *                 complete yet;
 *   SM_ERR_PROTO  a chunk header names a channel out of range or not allowed,
 *                 a zero length, or a control chunk over FRAME_CTL_MAX.
 *                 '*used' counts the bytes up to the end of that header. The
 *                 error is sticky: every later call returns it, taking
 *                 nothing.
 */
int frame_feed(struct frame_rx *rx, const uint8_t *in, size_t len, size_t *used,
    struct frame *out) SM_MUST_CHECK;

/*
 * Write the chunk header for 'len' payload bytes on 'chan'. Returns 0, or
 * SM_ERR_INVAL when chan >= FRAME_NCHAN or len is 0 or over FRAME_LEN_MAX
 * (nothing written).
 */
int frame_hdr_write(
    uint8_t out[FRAME_HDR_LEN], uint8_t chan, size_t len) SM_MUST_CHECK;

/*
 * Parse one control message (a whole chan 0 payload, 'n' bytes). Returns 0
 * and fills '*out' (zeroed on entry; proof points into 'p'), or SM_ERR_PROTO
 * for an empty or over-long message, an unknown type, or a length other than
 * FRAME_JOIN_LEN / FRAME_DENY_LEN for its type.
 */
int frame_ctl_parse(
    const uint8_t *p, size_t n, struct frame_ctl *out) SM_MUST_CHECK;

/* Encode JOIN: 0x01 || proof. */
void frame_ctl_write_join(
    uint8_t out[FRAME_JOIN_LEN], const uint8_t proof[JOIN_PROOF_LEN]);
/* Encode DENY: 0x02 || reason (big-endian). */
void frame_ctl_write_deny(uint8_t out[FRAME_DENY_LEN], uint32_t reason);

#endif
