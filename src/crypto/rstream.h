/*
 * E2E response stream (doc/PROTOCOL.md, "E2E response stream"): the host's
 * answer to a sealed request, as crypto_secretstream_xchacha20poly1305
 * chunks under a key derived from the request's box key (envelope.h).
 *
 *   stream  = preamble(27) frame* ; the last frame carries TAG_FINAL
 *   preamble= 0xE1 | version 0x01 | kind 0x00 | secretstream header(24)
 *   frame   = len:u32 BE | secretstream ciphertext(len)
 *   chunk   = type(1) | body      (the secretstream plaintext)
 *   refusal = 0xE1 | 0x01 | kind 0x01 | code(1)   (unauthenticated, whole
 *             response, for requests the host could not open)
 *
 * Version 2 (padded, doc/PROTOCOL.md "Response stream v2: padded frames"):
 *   preamble= 0xE1 | version 0x02 | kind 0x00 | secretstream header(24)
 *   frame   = len:u32 BE | ciphertext(len), len = RS_ABYTES + bucket, bucket
 *             one of RS2_BUCKETS
 *   chunk   = type(1) | n:u32 BE | body(n) | zero padding to 'bucket'
 *             (secretstream additional data: "sealmesh-rs-v2")
 * A v2 DATA chunk may be empty (padding only); END may carry the last body
 * bytes. A host sends v2 only to an asker that asked for it (envelope flag
 * ENV_F_RS2); the refusal stays in the v1 layout.
 *
 * Chunks are ordered, each authenticated, and the end is authenticated, so
 * dropped, reordered, replayed or truncated chunks are detected. No I/O: the
 * writer appends wire bytes to a struct buf; the reader takes arbitrary
 * slices of the byte stream and returns events.
 */
#ifndef SM_CRYPTO_RSTREAM_H
#define SM_CRYPTO_RSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "core/buf.h"
#include "core/err.h"

#define RS_MAGIC 0xE1
#define RS_VERSION 0x01
#define RS_VERSION2 0x02 /* padded frames */
#define RS_KIND_STREAM 0x00
#define RS_KIND_REFUSAL 0x01
#define RS_KEY_LEN 32 /* secretstream KEYBYTES */
#define RS_SSHDR_LEN 24 /* secretstream HEADERBYTES */
#define RS_PREFIX_LEN 3 /* magic, version, kind */
#define RS_PREAMBLE_LEN (RS_PREFIX_LEN + RS_SSHDR_LEN)
#define RS_REFUSAL_LEN (RS_PREFIX_LEN + 1)
#define RS_FRAME_HDR_LEN 4 /* u32 BE ciphertext length */
#define RS_ABYTES 17 /* secretstream ABYTES */
#define RS_DATA_MAX 65536 /* payload bytes per DATA chunk */
#define RS_REASON_MAX 200 /* ERROR reason text, printable ASCII */
#define RS_ERROR_HDR_LEN 3 /* type + status u16 BE */
#define RS_PT_MAX (1 + RS_DATA_MAX)
#define RS_CT_MIN (RS_ABYTES + 1)
#define RS_CT_MAX (RS_ABYTES + RS_PT_MAX)
#define RS_FRAME_MAX (RS_FRAME_HDR_LEN + RS_CT_MAX)

/* v2: chunk header (type, body length) and the plaintext size buckets. */
#define RS2_HDR_LEN 5
#define RS2_AD "sealmesh-rs-v2"
#define RS2_AD_LEN 14
#define RS2_BUCKET_MIN 256
#define RS2_BUCKET_MAX 65536
#define RS2_NBUCKETS 5 /* 256, 1024, 4096, 16384, 65536 */
#define RS2_CAP(b) ((b)-RS2_HDR_LEN) /* body bytes a bucket holds */

/* Chunk types (first plaintext byte). */
#define RS_T_DATA 0x01 /* TAG_MESSAGE; 1..RS_DATA_MAX bytes of response */
#define RS_T_ERROR 0x02 /* TAG_FINAL; status u16 BE, reason text */
#define RS_T_END 0x03 /* TAG_FINAL; empty: the response is complete */

/* Refusal codes: hints only, a relay can forge them (it can also cut). */
#define RS_REFUSE_EPOCH 0x01 /* key epoch unknown: refresh announcement */
#define RS_REFUSE_STALE 0x02 /* timestamp outside the window: check clock */
#define RS_REFUSE_REPLAY 0x03
#define RS_REFUSE_BAD 0x04 /* malformed or did not decrypt */
#define RS_REFUSE_BUSY 0x05 /* replay cache full or overloaded */

/* --- writer (host) --- */

struct rs_writer {
	crypto_secretstream_xchacha20poly1305_state st;
	struct buf pt; /* scratch: type || body, wiped */
	bool done; /* a FINAL chunk was written */
	uint8_t version; /* RS_VERSION or RS_VERSION2 */
};

/*
 * Start a response under 'key' (envelope session key): appends the 27-byte
 * preamble to 'out'. 'w' must be cleared with rs_writer_clear() even on
 * failure. 'key' is copied into the stream state only; the caller wipes it.
 */
int rs_writer_init(struct rs_writer *w, struct buf *out,
    const uint8_t key[RS_KEY_LEN]) SM_MUST_CHECK;
/* Same with a given secretstream header: tests and vectors only. */
int rs_writer_init_det(struct rs_writer *w, struct buf *out,
    const uint8_t key[RS_KEY_LEN],
    const uint8_t sshdr[RS_SSHDR_LEN]) SM_MUST_CHECK;
/* Start a v2 (padded) response: preamble with version 0x02. */
int rs_writer_init_v2(struct rs_writer *w, struct buf *out,
    const uint8_t key[RS_KEY_LEN]) SM_MUST_CHECK;
/* Same with a given secretstream header: tests and vectors only. */
int rs_writer_init_v2_det(struct rs_writer *w, struct buf *out,
    const uint8_t key[RS_KEY_LEN],
    const uint8_t sshdr[RS_SSHDR_LEN]) SM_MUST_CHECK;
/* Wipe the stream state and scratch. */
void rs_writer_clear(struct rs_writer *w);
/*
 * Append DATA frames carrying 'data' (split into RS_DATA_MAX pieces; 'len'
 * 0 writes nothing). Call once per backend read, so SSE events stay live.
 * SM_ERR_CLOSED after END/ERROR; SM_ERR_TOOBIG if 'out' is full.
 */
int rs_write_data(struct rs_writer *w, struct buf *out, const uint8_t *data,
    size_t len) SM_MUST_CHECK;
/* Append the END frame (TAG_FINAL). Nothing may follow. */
int rs_write_end(struct rs_writer *w, struct buf *out) SM_MUST_CHECK;
/*
 * Append an ERROR frame (TAG_FINAL): the host failed after opening the
 * request. 'reason' (may be NULL) is cut to RS_REASON_MAX bytes and any
 * byte outside printable ASCII becomes '?'. Nothing may follow.
 */
int rs_write_error(struct rs_writer *w, struct buf *out, uint16_t status,
    const char *reason) SM_MUST_CHECK;
/*
 * v2 only. The smallest bucket whose body capacity (RS2_CAP) holds 'len'
 * bytes, RS2_BUCKET_MAX when none does. 'b' rounded up to a bucket.
 */
size_t rs2_bucket_for(size_t len);
size_t rs2_bucket_round(size_t b);
/*
 * v2 only. Append one frame of exactly RS_FRAME_HDR_LEN + RS_ABYTES +
 * 'bucket' bytes: type RS_T_DATA (TAG_MESSAGE; 'len' 0 is a padding frame)
 * or RS_T_END (TAG_FINAL; 'len' may be 0), carrying 'data'. 'bucket' must
 * be one of the v2 buckets and len <= RS2_CAP(bucket), else SM_ERR_INVAL.
 * SM_ERR_CLOSED after END/ERROR, SM_ERR_TOOBIG if 'out' is full.
 */
int rs_write_padded(struct rs_writer *w, struct buf *out, uint8_t type,
    size_t bucket, const uint8_t *data, size_t len) SM_MUST_CHECK;
/* v2 only: an ERROR frame (as rs_write_error) padded to 'bucket'. */
int rs_write_padded_error(struct rs_writer *w, struct buf *out, size_t bucket,
    uint16_t status, const char *reason) SM_MUST_CHECK;
/* Append one chunk with any plaintext and tag: tests and fuzzing only. */
int rs_write_raw(struct rs_writer *w, struct buf *out, const uint8_t *pt,
    size_t len, uint8_t tag) SM_MUST_CHECK;
/* Append a 4-byte refusal (no key needed). SM_ERR_INVAL for code 0. */
int rs_write_refusal(struct buf *out, uint8_t code) SM_MUST_CHECK;
/* The refusal code for an env_open_request() error. */
uint8_t rs_refusal_for(int err);

/* --- frame parser (no crypto) --- */

enum rs_frame_type {
	RS_FR_HEADER = 1, /* p = secretstream header, RS_SSHDR_LEN bytes */
	RS_FR_REFUSAL, /* p = the code byte */
	RS_FR_CHUNK, /* p = secretstream ciphertext, RS_CT_MIN..MAX */
};

struct rs_frame {
	enum rs_frame_type type;
	const uint8_t *p;
	size_t len;
};

struct rs_parser {
	int state;
	uint8_t max_version; /* highest version accepted (default 1) */
	uint8_t version; /* of this stream, once the preamble is read */
	size_t need; /* bytes of the current element */
	struct buf acc; /* partial element that spans feeds */
	bool acc_served; /* acc was handed out: reset on next feed */
	int err; /* sticky error */
};

/* Accepts version 1 only; rs_parser_accept_v2() widens that. */
void rs_parser_init(struct rs_parser *p);
void rs_parser_accept_v2(struct rs_parser *p);
void rs_parser_clear(struct rs_parser *p);
/*
 * Consume bytes from 'in' until one frame is complete. Returns 0 with '*f'
 * set (f->p points into 'in' or into the parser, valid until the next call),
 * or SM_ERR_AGAIN once all of 'in' was consumed without completing a frame.
 * '*used' is how many bytes of 'in' were consumed either way. Errors are
 * sticky: SM_ERR_PROTO (bad magic, kind, length below minimum, bytes after
 * a refusal), SM_ERR_UNSUPP (version), SM_ERR_TOOBIG (length over max).
 */
int rs_parser_feed(struct rs_parser *p, struct rs_frame *f, size_t *used,
    const uint8_t *in, size_t len) SM_MUST_CHECK;

/* --- reader (client) --- */

enum rs_event_type {
	RS_EV_DATA = 1, /* data/len: plaintext, valid until the next call */
	RS_EV_END, /* authenticated end: response complete; v2: data/len is
		      the last plaintext (may be empty), v1: always empty */
	RS_EV_ERROR, /* authenticated host error: status, reason */
	RS_EV_REFUSED, /* unauthenticated refusal before any key: status */
};

struct rs_event {
	enum rs_event_type type;
	const uint8_t *data;
	size_t len;
	uint16_t status;
	char reason[RS_REASON_MAX + 1];
};

struct rs_reader {
	crypto_secretstream_xchacha20poly1305_state st;
	uint8_t key[RS_KEY_LEN]; /* until the header arrives, then wiped */
	struct rs_parser parser;
	struct buf pt; /* last chunk's plaintext, wiped */
	int state;
	int err; /* sticky */
};

/*
 * Expect a response under 'key' (copied; the caller wipes its copy), in
 * version 1 only (a v2 preamble is SM_ERR_UNSUPP).
 */
void rs_reader_init(struct rs_reader *r, const uint8_t key[RS_KEY_LEN]);
/*
 * Same, accepting version 1 or 2 (for an asker that set ENV_F_RS2). v2
 * padding frames produce no event. The versions cannot be confused: v2
 * chunks carry additional data v1 chunks do not, so a flipped version byte
 * fails to decrypt.
 */
void rs_reader_init_v2(struct rs_reader *r, const uint8_t key[RS_KEY_LEN]);
/* Wipe keys, state and plaintext. */
void rs_reader_clear(struct rs_reader *r);
/*
 * Feed response bytes. Returns 0 with '*ev' set when an event is complete,
 * SM_ERR_AGAIN when all of 'in' was consumed without one; '*used' says how
 * much of 'in' was consumed. Call again with the rest. Errors are sticky:
 * SM_ERR_DECRYPT (tampered, dropped, reordered or replayed chunk, wrong
 * key), SM_ERR_PROTO (bad framing, bad chunk type or tag, bytes after the
 * end), SM_ERR_UNSUPP, SM_ERR_TOOBIG. After an error, data already returned
 * was authentic but the response is incomplete.
 */
int rs_reader_feed(struct rs_reader *r, struct rs_event *ev, size_t *used,
    const uint8_t *in, size_t len) SM_MUST_CHECK;
/*
 * The transport reached EOF. 0 if END, ERROR or a refusal was seen;
 * SM_ERR_CLOSED if the stream was cut before its authenticated end; the
 * sticky error if one occurred.
 */
int rs_reader_finish(const struct rs_reader *r) SM_MUST_CHECK;

#endif
