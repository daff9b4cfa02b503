#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util_vectors.h"
#include <sodium.h>

#include "cJSON.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/util.h"
#include "crypto/rstream.h"

#define VECTORS "tests/vectors/rstream.json"
#define MAX_FRAMES 64
#define WIRE_MAX (1u << 22)

static uint8_t key[RS_KEY_LEN];
static bool read_v2; /* read_all() uses rs_reader_init_v2() */

struct result {
	int err; /* first non-AGAIN error from feed, or 0 */
	int fin; /* rs_reader_finish() */
	bool end, error_ev, refused;
	uint16_t status;
	char reason[RS_REASON_MAX + 1];
	size_t events;
	struct buf data;
};

/* Feed 'w' to a reader 'step' bytes at a time; collect what it says. */
static void
read_all(struct result *res, const uint8_t *k, const uint8_t *w, size_t len,
    size_t step)
{
	struct rs_reader rd;
	struct rs_event ev;
	size_t off, n, used;
	const uint8_t *p;
	int r = 0;

	memset(res, 0, sizeof(*res));
	buf_init(&res->data, WIRE_MAX);
	if (read_v2)
		rs_reader_init_v2(&rd, k);
	else
		rs_reader_init(&rd, k);
	for (off = 0; off < len; off += n) {
		n = len - off < step ? len - off : step;
		p = w + off;
		for (size_t left = n; left > 0;) {
			r = rs_reader_feed(&rd, &ev, &used, p, left);
			assert_true(used <= left);
			p += used;
			left -= used;
			if (r == SM_ERR_AGAIN) {
				assert_int_equal(left, 0);
				break;
			}
			if (r != 0) {
				res->err = r;
				assert_int_equal(ev.type, 0);
				goto done;
			}
			res->events++;
			switch (ev.type) {
			case RS_EV_DATA:
				assert_int_equal(
				    buf_append(&res->data, ev.data, ev.len), 0);
				break;
			case RS_EV_END:
				res->end = true;
				if (ev.len > 0)
					assert_int_equal(buf_append(&res->data,
							     ev.data, ev.len),
					    0);
				break;
			case RS_EV_ERROR:
				res->error_ev = true;
				res->status = ev.status;
				memcpy(res->reason, ev.reason,
				    sizeof(res->reason));
				break;
			case RS_EV_REFUSED:
				res->refused = true;
				res->status = ev.status;
				break;
			}
		}
	}
done:
	/* Errors are sticky. */
	if (res->err != 0) {
		assert_int_equal(
		    rs_reader_feed(&rd, &ev, &used, w, 1), res->err);
		assert_int_equal(used, 0);
	}
	res->fin = rs_reader_finish(&rd);
	rs_reader_clear(&rd);
}

static bool
read_ok(const struct result *res)
{
	return res->err == 0 && res->fin == 0 && res->end;
}

/* A stream: preamble, the given DATA pieces (one frame each), END. */
static void
make_stream(struct buf *w, const char *const *pieces, size_t n)
{
	struct rs_writer wr;
	size_t i;

	buf_init(w, WIRE_MAX);
	assert_int_equal(rs_writer_init(&wr, w, key), 0);
	for (i = 0; i < n; i++)
		assert_int_equal(
		    rs_write_data(
			&wr, w, (const uint8_t *)pieces[i], strlen(pieces[i])),
		    0);
	assert_int_equal(rs_write_end(&wr, w), 0);
	rs_writer_clear(&wr);
}

/* Split a stream into its preamble and frames (offset, length). */
static size_t
split(const struct buf *w, size_t off[MAX_FRAMES], size_t len[MAX_FRAMES])
{
	const uint8_t *p = buf_data(w);
	size_t pos = RS_PREAMBLE_LEN, n = 0, l;

	while (pos < w->len) {
		assert_true(n < MAX_FRAMES);
		l = RS_FRAME_HDR_LEN +
		    ((size_t)p[pos] << 24 | (size_t)p[pos + 1] << 16 |
			(size_t)p[pos + 2] << 8 | p[pos + 3]);
		off[n] = pos;
		len[n++] = l;
		pos += l;
	}
	assert_int_equal(pos, w->len);
	return n;
}

/* Rebuild a stream from the preamble and frames in 'order' (-1 ends). */
static void
rebuild(struct buf *out, const struct buf *w, const size_t *off,
    const size_t *len, const int *order)
{
	buf_init(out, WIRE_MAX);
	assert_int_equal(buf_append(out, buf_data(w), RS_PREAMBLE_LEN), 0);
	for (; *order >= 0; order++)
		assert_int_equal(
		    buf_append(out, buf_data(w) + off[*order], len[*order]), 0);
}

static const char *const sse[] = {
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",
    "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
    "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n",
    "data: [DONE]\n\n",
};

static void
test_roundtrip_any_slicing(void **state)
{
	static const size_t steps[] = {
	    1, 2, 3, 5, 7, 27, 28, 100, 4096, WIRE_MAX};
	struct buf w, want;
	struct result res;
	size_t i;

	make_stream(&w, sse, SM_ARRAY_LEN(sse));
	buf_init(&want, WIRE_MAX);
	for (i = 0; i < SM_ARRAY_LEN(sse); i++)
		assert_int_equal(buf_append(&want, sse[i], strlen(sse[i])), 0);
	for (i = 0; i < SM_ARRAY_LEN(steps); i++) {
		read_all(&res, key, buf_data(&w), w.len, steps[i]);
		assert_true(read_ok(&res));
		assert_int_equal(res.events, SM_ARRAY_LEN(sse) + 1);
		assert_int_equal(res.data.len, want.len);
		assert_memory_equal(
		    buf_data(&res.data), buf_data(&want), want.len);
		buf_clear(&res.data);
	}
	buf_clear(&w);
	buf_clear(&want);
}

static void
test_large_data_split(void **state)
{
	struct rs_writer wr;
	struct buf w;
	struct result res;
	size_t off[MAX_FRAMES], len[MAX_FRAMES], n;
	size_t big = 3 * RS_DATA_MAX + 5;
	uint8_t *data = malloc(big);

	assert_non_null(data);
	randombytes_buf(data, big);
	buf_init(&w, WIRE_MAX);
	assert_int_equal(rs_writer_init(&wr, &w, key), 0);
	assert_int_equal(rs_write_data(&wr, &w, data, big), 0);
	assert_int_equal(rs_write_data(&wr, &w, data, 0), 0);
	assert_int_equal(rs_write_end(&wr, &w), 0);
	rs_writer_clear(&wr);
	n = split(&w, off, len);
	assert_int_equal(n, 5); /* 3 full, 1 of 5 bytes, END */
	assert_int_equal(len[0], RS_FRAME_MAX);
	assert_int_equal(len[3], RS_FRAME_HDR_LEN + RS_ABYTES + 1 + 5);
	read_all(&res, key, buf_data(&w), w.len, 10000);
	assert_true(read_ok(&res));
	assert_int_equal(res.data.len, big);
	assert_memory_equal(buf_data(&res.data), data, big);
	buf_clear(&res.data);
	buf_clear(&w);
	free(data);
}

static void
test_error_chunk(void **state)
{
	struct rs_writer wr;
	struct buf w;
	struct result res;
	char reason[RS_REASON_MAX + 50];

	buf_init(&w, WIRE_MAX);
	assert_int_equal(rs_writer_init(&wr, &w, key), 0);
	assert_int_equal(
	    rs_write_data(&wr, &w, (const uint8_t *)"HTTP/1.1", 8), 0);
	assert_int_equal(rs_write_error(&wr, &w, 504, "backend\ttimeout\n"), 0);
	assert_int_equal(rs_write_end(&wr, &w), SM_ERR_CLOSED);
	assert_int_equal(
	    rs_write_data(&wr, &w, (const uint8_t *)"x", 1), SM_ERR_CLOSED);
	rs_writer_clear(&wr);
	read_all(&res, key, buf_data(&w), w.len, 3);
	assert_int_equal(res.err, 0);
	assert_int_equal(res.fin, 0);
	assert_false(res.end);
	assert_true(res.error_ev);
	assert_int_equal(res.status, 504);
	assert_string_equal(res.reason, "backend?timeout?");
	assert_int_equal(res.data.len, 8);
	buf_clear(&res.data);
	buf_reset(&w);

	/* Long reason is cut; NULL reason is empty. */
	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	assert_int_equal(rs_writer_init(&wr, &w, key), 0);
	assert_int_equal(rs_write_error(&wr, &w, 502, reason), 0);
	rs_writer_clear(&wr);
	read_all(&res, key, buf_data(&w), w.len, 1);
	assert_true(res.error_ev);
	assert_int_equal(strlen(res.reason), RS_REASON_MAX);
	buf_clear(&res.data);
	buf_reset(&w);
	assert_int_equal(rs_writer_init(&wr, &w, key), 0);
	assert_int_equal(rs_write_error(&wr, &w, 500, NULL), 0);
	rs_writer_clear(&wr);
	read_all(&res, key, buf_data(&w), w.len, 1);
	assert_true(res.error_ev);
	assert_string_equal(res.reason, "");
	buf_clear(&res.data);
	buf_clear(&w);
}

static void
test_wrong_key(void **state)
{
	struct buf w;
	struct result res;
	uint8_t other[RS_KEY_LEN];

	make_stream(&w, sse, 2);
	memcpy(other, key, sizeof(other));
	other[31] ^= 1;
	read_all(&res, other, buf_data(&w), w.len, 100);
	assert_int_equal(res.err, SM_ERR_DECRYPT);
	assert_int_equal(res.events, 0);
	assert_int_equal(res.fin, SM_ERR_DECRYPT);
	buf_clear(&res.data);
	buf_clear(&w);
}

static void
test_every_byte_flip_refused(void **state)
{
	struct buf w, want;
	struct result res;
	uint8_t *p;
	size_t i;
	int bit;

	make_stream(&w, sse, 2);
	buf_init(&want, 1024);
	assert_int_equal(buf_append(&want, sse[0], strlen(sse[0])), 0);
	assert_int_equal(buf_append(&want, sse[1], strlen(sse[1])), 0);
	p = buf_data(&w);
	for (i = 0; i < w.len; i++) {
		for (bit = 0; bit < 8; bit += 7) {
			p[i] ^= (uint8_t)(1u << bit);
			read_all(&res, key, p, w.len, w.len);
			assert_false(read_ok(&res));
			/* Whatever came out is an authentic prefix. */
			assert_true(res.data.len <= want.len);
			if (res.data.len > 0)
				assert_memory_equal(buf_data(&res.data),
				    buf_data(&want), res.data.len);
			p[i] ^= (uint8_t)(1u << bit);
			buf_clear(&res.data);
		}
	}
	read_all(&res, key, p, w.len, w.len);
	assert_true(read_ok(&res));
	buf_clear(&res.data);
	buf_clear(&want);
	buf_clear(&w);
}

static void
test_drop_reorder_replay_truncate(void **state)
{
	/* frames: 0..3 DATA, 4 END */
	static const int drop[] = {0, 2, 3, 4, -1};
	static const int reorder[] = {0, 2, 1, 3, 4, -1};
	static const int replay[] = {0, 1, 1, 2, 3, 4, -1};
	static const int replay_end[] = {0, 1, 2, 3, 4, 4, -1};
	static const int no_end[] = {0, 1, 2, 3, -1};
	static const int end_early[] = {0, 1, 4, -1};
	static const int all[] = {0, 1, 2, 3, 4, -1};
	struct buf w, m;
	struct result res;
	size_t off[MAX_FRAMES], len[MAX_FRAMES];

	make_stream(&w, sse, SM_ARRAY_LEN(sse));
	assert_int_equal(split(&w, off, len), 5);

	rebuild(&m, &w, off, len, all);
	read_all(&res, key, buf_data(&m), m.len, 9);
	assert_true(read_ok(&res));
	buf_clear(&res.data);
	buf_clear(&m);

	rebuild(&m, &w, off, len, drop);
	read_all(&res, key, buf_data(&m), m.len, 9);
	assert_int_equal(res.err, SM_ERR_DECRYPT);
	assert_int_equal(res.data.len, strlen(sse[0]));
	buf_clear(&res.data);
	buf_clear(&m);

	rebuild(&m, &w, off, len, reorder);
	read_all(&res, key, buf_data(&m), m.len, 9);
	assert_int_equal(res.err, SM_ERR_DECRYPT);
	buf_clear(&res.data);
	buf_clear(&m);

	rebuild(&m, &w, off, len, replay);
	read_all(&res, key, buf_data(&m), m.len, 9);
	assert_int_equal(res.err, SM_ERR_DECRYPT);
	buf_clear(&res.data);
	buf_clear(&m);

	/* A frame after the authenticated end is a protocol error. */
	rebuild(&m, &w, off, len, replay_end);
	read_all(&res, key, buf_data(&m), m.len, 9);
	assert_true(res.end);
	assert_int_equal(res.err, SM_ERR_PROTO);
	assert_false(read_ok(&res));
	buf_clear(&res.data);
	buf_clear(&m);

	/* Truncated: cut before END, or mid-frame: "stream cut". */
	rebuild(&m, &w, off, len, no_end);
	read_all(&res, key, buf_data(&m), m.len, 9);
	assert_int_equal(res.err, 0);
	assert_int_equal(res.fin, SM_ERR_CLOSED);
	buf_clear(&res.data);
	read_all(&res, key, buf_data(&m), m.len - 1, 9);
	assert_int_equal(res.err, 0);
	assert_int_equal(res.fin, SM_ERR_CLOSED);
	buf_clear(&res.data);
	read_all(&res, key, buf_data(&m), RS_PREAMBLE_LEN - 1, 9);
	assert_int_equal(res.fin, SM_ERR_CLOSED);
	buf_clear(&res.data);
	read_all(&res, key, buf_data(&m), 0, 9);
	assert_int_equal(res.fin, SM_ERR_CLOSED);
	buf_clear(&res.data);
	buf_clear(&m);

	/* END moved forward: frames it skipped make it fail to open. */
	rebuild(&m, &w, off, len, end_early);
	read_all(&res, key, buf_data(&m), m.len, 9);
	assert_int_equal(res.err, SM_ERR_DECRYPT);
	assert_false(res.end);
	buf_clear(&res.data);
	buf_clear(&m);
	buf_clear(&w);
}

/* Authenticated chunks that break the chunk rules. */
static void
test_bad_authenticated_chunks(void **state)
{
	static const struct {
		uint8_t pt[8];
		size_t len;
		uint8_t tag;
	} bad[] = {
	    {{RS_T_DATA, 'x'}, 2,
		crypto_secretstream_xchacha20poly1305_TAG_FINAL},
	    {{RS_T_DATA, 'x'}, 2,
		crypto_secretstream_xchacha20poly1305_TAG_PUSH},
	    {{RS_T_DATA, 'x'}, 2,
		crypto_secretstream_xchacha20poly1305_TAG_REKEY},
	    {{RS_T_DATA}, 1, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE},
	    {{RS_T_END}, 1, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE},
	    {{RS_T_END, 0}, 2, crypto_secretstream_xchacha20poly1305_TAG_FINAL},
	    {{RS_T_ERROR, 1, 244}, 3,
		crypto_secretstream_xchacha20poly1305_TAG_MESSAGE},
	    {{RS_T_ERROR, 1}, 2,
		crypto_secretstream_xchacha20poly1305_TAG_FINAL},
	    {{RS_T_ERROR, 1, 244, 'a', '\n'}, 5,
		crypto_secretstream_xchacha20poly1305_TAG_FINAL},
	    {{0x00, 'x'}, 2, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE},
	    {{0x04}, 1, crypto_secretstream_xchacha20poly1305_TAG_FINAL},
	};
	struct rs_writer wr;
	struct buf w;
	struct result res;
	size_t i;

	for (i = 0; i < SM_ARRAY_LEN(bad); i++) {
		buf_init(&w, WIRE_MAX);
		assert_int_equal(rs_writer_init(&wr, &w, key), 0);
		assert_int_equal(
		    rs_write_data(&wr, &w, (const uint8_t *)"ok", 2), 0);
		assert_int_equal(
		    rs_write_raw(&wr, &w, bad[i].pt, bad[i].len, bad[i].tag),
		    0);
		rs_writer_clear(&wr);
		read_all(&res, key, buf_data(&w), w.len, w.len);
		assert_int_equal(res.err, SM_ERR_PROTO);
		assert_int_equal(res.data.len, 2);
		buf_clear(&res.data);
		buf_clear(&w);
	}
}

static void
test_parser_limits(void **state)
{
	uint8_t pre[RS_PREAMBLE_LEN + RS_FRAME_HDR_LEN] = {
	    RS_MAGIC, RS_VERSION, RS_KIND_STREAM};
	struct rs_parser p;
	struct rs_frame f;
	size_t used;
	uint8_t *lenp = pre + RS_PREAMBLE_LEN;

	rs_parser_init(&p);
	assert_int_equal(rs_parser_feed(&p, &f, &used, pre, 2), SM_ERR_AGAIN);
	assert_int_equal(used, 2);
	assert_int_equal(rs_parser_feed(&p, &f, &used, pre + 2, 26), 0);
	assert_int_equal(used, 25); /* stops at the frame end */
	assert_int_equal(f.type, RS_FR_HEADER);
	assert_int_equal(f.len, RS_SSHDR_LEN);
	rs_parser_clear(&p);

	/* Length below minimum, above maximum. */
	lenp[3] = RS_CT_MIN - 1;
	rs_parser_init(&p);
	assert_int_equal(rs_parser_feed(&p, &f, &used, pre, sizeof(pre)), 0);
	assert_int_equal(rs_parser_feed(&p, &f, &used, pre + used,
			     sizeof(pre) - RS_PREAMBLE_LEN),
	    SM_ERR_PROTO);
	assert_int_equal(rs_parser_feed(&p, &f, &used, pre, 1), SM_ERR_PROTO);
	rs_parser_clear(&p);
	lenp[1] = (RS_CT_MAX + 1) >> 16;
	lenp[2] = (uint8_t)((RS_CT_MAX + 1) >> 8);
	lenp[3] = (uint8_t)(RS_CT_MAX + 1);
	rs_parser_init(&p);
	assert_int_equal(rs_parser_feed(&p, &f, &used, pre, sizeof(pre)), 0);
	assert_int_equal(rs_parser_feed(&p, &f, &used, pre + used,
			     sizeof(pre) - RS_PREAMBLE_LEN),
	    SM_ERR_TOOBIG);
	rs_parser_clear(&p);

	/* Bad magic, version, kind. */
	pre[0] = 'H';
	rs_parser_init(&p);
	assert_int_equal(rs_parser_feed(&p, &f, &used, pre, 3), SM_ERR_PROTO);
	rs_parser_clear(&p);
	pre[0] = RS_MAGIC;
	pre[1] = 2;
	rs_parser_init(&p);
	assert_int_equal(rs_parser_feed(&p, &f, &used, pre, 3), SM_ERR_UNSUPP);
	rs_parser_clear(&p);
	pre[1] = RS_VERSION;
	pre[2] = 9;
	rs_parser_init(&p);
	assert_int_equal(rs_parser_feed(&p, &f, &used, pre, 3), SM_ERR_PROTO);
	rs_parser_clear(&p);
}

static void
test_refusal(void **state)
{
	struct buf w;
	struct result res;

	buf_init(&w, 64);
	assert_int_equal(rs_write_refusal(&w, 0), SM_ERR_INVAL);
	assert_int_equal(
	    rs_write_refusal(&w, rs_refusal_for(SM_ERR_NOTFOUND)), 0);
	assert_int_equal(w.len, RS_REFUSAL_LEN);
	read_all(&res, key, buf_data(&w), w.len, 1);
	assert_true(res.refused);
	assert_int_equal(res.status, RS_REFUSE_EPOCH);
	assert_int_equal(res.err, 0);
	assert_int_equal(res.fin, 0);
	assert_false(read_ok(&res));
	buf_clear(&res.data);
	/* Anything after a refusal is a protocol error. */
	assert_int_equal(buf_append(&w, "x", 1), 0);
	read_all(&res, key, buf_data(&w), w.len, 100);
	assert_true(res.refused);
	assert_int_equal(res.err, SM_ERR_PROTO);
	buf_clear(&res.data);
	buf_clear(&w);
	assert_int_equal(rs_refusal_for(SM_ERR_STALE), RS_REFUSE_STALE);
	assert_int_equal(rs_refusal_for(SM_ERR_REPLAY), RS_REFUSE_REPLAY);
	assert_int_equal(rs_refusal_for(SM_ERR_UNAVAIL), RS_REFUSE_BUSY);
	assert_int_equal(rs_refusal_for(SM_ERR_DECRYPT), RS_REFUSE_BAD);
	assert_int_equal(rs_refusal_for(SM_ERR_PERM), RS_REFUSE_BAD);
}

/* init_det(header) must give the state init_push gave for that header. */
static void
test_det_matches_push(void **state)
{
	struct rs_writer a, b;
	struct buf wa, wb;

	buf_init(&wa, WIRE_MAX);
	buf_init(&wb, WIRE_MAX);
	assert_int_equal(rs_writer_init(&a, &wa, key), 0);
	assert_int_equal(
	    rs_writer_init_det(&b, &wb, key, buf_data(&wa) + RS_PREFIX_LEN), 0);
	assert_int_equal(rs_write_data(&a, &wa, (const uint8_t *)"abc", 3), 0);
	assert_int_equal(rs_write_data(&b, &wb, (const uint8_t *)"abc", 3), 0);
	assert_int_equal(rs_write_end(&a, &wa), 0);
	assert_int_equal(rs_write_end(&b, &wb), 0);
	assert_int_equal(wa.len, wb.len);
	assert_memory_equal(buf_data(&wa), buf_data(&wb), wa.len);
	rs_writer_clear(&a);
	rs_writer_clear(&b);
	buf_clear(&wa);
	buf_clear(&wb);
}

static void
test_out_full_no_partial(void **state)
{
	struct rs_writer wr;
	struct buf w;
	uint8_t data[100] = {0};
	struct result res;
	size_t before;

	buf_init(&w, RS_PREAMBLE_LEN + 60);
	assert_int_equal(rs_writer_init(&wr, &w, key), 0);
	before = w.len;
	assert_int_equal(
	    rs_write_data(&wr, &w, data, sizeof(data)), SM_ERR_TOOBIG);
	assert_int_equal(w.len, before);
	/* The stream state did not move: the next chunk still opens. */
	assert_int_equal(rs_write_data(&wr, &w, data, 10), 0);
	assert_int_equal(rs_write_end(&wr, &w), 0);
	rs_writer_clear(&wr);
	read_all(&res, key, buf_data(&w), w.len, 5);
	assert_true(read_ok(&res));
	assert_int_equal(res.data.len, 10);
	buf_clear(&res.data);
	buf_clear(&w);
}

/* --- known-answer vectors --- */

static void
test_vectors(void **state)
{
	cJSON *root = vec_load(VECTORS), *v, *c;
	const cJSON *vecs = cJSON_GetObjectItemCaseSensitive(root, "vectors");
	uint8_t k[RS_KEY_LEN], hdr[RS_SSHDR_LEN], *want;
	struct rs_writer wr;
	struct buf w;
	struct result res;
	const char *hex, *type;
	size_t n, nvec = 0, wantdata;

	assert_true(cJSON_IsArray(vecs));
	cJSON_ArrayForEach(v, vecs)
	{
		hex =
		    cJSON_GetObjectItemCaseSensitive(v, "stream")->valuestring;
		n = strlen(hex) / 2;
		want = malloc(n);
		assert_non_null(want);
		assert_int_equal(sm_unhex(want, n, hex), 0);
		vec_hex(k, sizeof(k), v, "key");
		buf_init(&w, WIRE_MAX);
		wantdata = 0;
		if (cJSON_GetObjectItemCaseSensitive(v, "refusal") != NULL) {
			assert_int_equal(
			    rs_write_refusal(&w,
				(uint8_t)cJSON_GetObjectItem(v, "refusal")
				    ->valueint),
			    0);
			memset(&wr, 0, sizeof(wr));
		} else {
			vec_hex(hdr, sizeof(hdr), v, "sshdr");
			assert_int_equal(
			    rs_writer_init_det(&wr, &w, k, hdr), 0);
		}
		cJSON_ArrayForEach(
		    c, cJSON_GetObjectItemCaseSensitive(v, "chunks"))
		{
			type = cJSON_GetObjectItem(c, "type")->valuestring;
			if (strcmp(type, "data") == 0) {
				const char *d =
				    cJSON_GetObjectItem(c, "data")->valuestring;

				assert_int_equal(
				    rs_write_data(
					&wr, &w, (const uint8_t *)d, strlen(d)),
				    0);
				wantdata += strlen(d);
			} else if (strcmp(type, "end") == 0) {
				assert_int_equal(rs_write_end(&wr, &w), 0);
			} else {
				assert_string_equal(type, "error");
				assert_int_equal(
				    rs_write_error(&wr, &w,
					(uint16_t)cJSON_GetObjectItem(
					    c, "status")
					    ->valueint,
					cJSON_GetObjectItem(c, "reason")
					    ->valuestring),
				    0);
			}
		}
		rs_writer_clear(&wr);
		assert_int_equal(w.len, n);
		assert_memory_equal(buf_data(&w), want, n);
		read_all(&res, k, want, n, 7);
		assert_int_equal(res.err, 0);
		assert_int_equal(res.fin, 0);
		assert_int_equal(res.data.len, wantdata);
		buf_clear(&res.data);
		buf_clear(&w);
		free(want);
		nvec++;
	}
	assert_true(nvec >= 3);
	cJSON_Delete(root);
}

/* --- version 2: padded frames --- */

#define V2_FRAME(b) (RS_FRAME_HDR_LEN + RS_ABYTES + (b))

static void
test_v2_roundtrip_padding(void **state)
{
	struct rs_writer wr;
	struct result res;
	struct buf w;
	size_t steps[] = {1, 3, 64, 1000, WIRE_MAX}, want = 0;

	buf_init(&w, WIRE_MAX);
	assert_int_equal(rs_writer_init_v2(&wr, &w, key), 0);
	assert_int_equal(w.len, RS_PREAMBLE_LEN);
	assert_int_equal(buf_data(&w)[1], RS_VERSION2);
	for (size_t i = 0; i < SM_ARRAY_LEN(sse) - 1; i++) {
		size_t before = w.len, n = strlen(sse[i]);

		assert_int_equal(rs_write_padded(&wr, &w, RS_T_DATA, 1024,
				     (const uint8_t *)sse[i], n),
		    0);
		assert_int_equal(w.len - before, V2_FRAME(1024));
		/* A padding frame has the same size as a data frame. */
		before = w.len;
		assert_int_equal(
		    rs_write_padded(&wr, &w, RS_T_DATA, 1024, NULL, 0), 0);
		assert_int_equal(w.len - before, V2_FRAME(1024));
		want += n;
	}
	/* END carries the last bytes, in a frame of the same size. */
	{
		size_t before = w.len, n = strlen(sse[SM_ARRAY_LEN(sse) - 1]);

		assert_int_equal(
		    rs_write_padded(&wr, &w, RS_T_END, 1024,
			(const uint8_t *)sse[SM_ARRAY_LEN(sse) - 1], n),
		    0);
		assert_int_equal(w.len - before, V2_FRAME(1024));
		want += n;
	}
	assert_int_equal(
	    rs_write_padded(&wr, &w, RS_T_DATA, 1024, NULL, 0), SM_ERR_CLOSED);
	rs_writer_clear(&wr);
	read_v2 = true;
	for (size_t i = 0; i < SM_ARRAY_LEN(steps); i++) {
		read_all(&res, key, buf_data(&w), w.len, steps[i]);
		assert_true(read_ok(&res));
		assert_int_equal(res.data.len, want);
		/* head+token+token+pad... : DATA events only for real data */
		assert_int_equal(res.events, SM_ARRAY_LEN(sse));
		buf_clear(&res.data);
	}
	read_v2 = false;
	/* A reader that did not ask for v2 refuses it. */
	read_all(&res, key, buf_data(&w), w.len, 7);
	assert_int_equal(res.err, SM_ERR_UNSUPP);
	buf_clear(&res.data);
	buf_clear(&w);
}

static void
test_v2_error_and_sizes(void **state)
{
	struct rs_writer wr;
	struct result res;
	struct buf w;
	char longr[400];

	memset(longr, 'x', sizeof(longr) - 1);
	longr[sizeof(longr) - 1] = '\0';
	buf_init(&w, WIRE_MAX);
	assert_int_equal(rs_writer_init_v2(&wr, &w, key), 0);
	/* Not a bucket, or a body larger than the bucket holds. */
	assert_int_equal(
	    rs_write_padded(&wr, &w, RS_T_DATA, 300, NULL, 0), SM_ERR_INVAL);
	assert_int_equal(rs_write_padded(&wr, &w, RS_T_DATA, 256,
			     (const uint8_t *)longr, RS2_CAP(256) + 1),
	    SM_ERR_INVAL);
	assert_int_equal(
	    rs_write_padded(&wr, &w, RS_T_ERROR, 256, NULL, 0), SM_ERR_INVAL);
	/* v1 writers' calls refuse a v2 writer, and the other way round. */
	assert_int_equal(rs_write_end(&wr, &w), SM_ERR_INVAL);
	assert_int_equal(w.len, RS_PREAMBLE_LEN);
	assert_int_equal(rs_write_padded(&wr, &w, RS_T_DATA, 256,
			     (const uint8_t *)longr, RS2_CAP(256)),
	    0);
	assert_int_equal(rs_write_padded_error(&wr, &w, 256, 502, longr), 0);
	assert_int_equal(w.len, RS_PREAMBLE_LEN + 2 * V2_FRAME(256));
	rs_writer_clear(&wr);
	read_v2 = true;
	read_all(&res, key, buf_data(&w), w.len, 5);
	read_v2 = false;
	assert_int_equal(res.err, 0);
	assert_true(res.error_ev);
	assert_int_equal(res.status, 502);
	assert_int_equal(strlen(res.reason), RS_REASON_MAX);
	assert_int_equal(res.data.len, RS2_CAP(256));
	buf_clear(&res.data);
	buf_clear(&w);

	assert_int_equal(rs2_bucket_for(0), 256);
	assert_int_equal(rs2_bucket_for(251), 256);
	assert_int_equal(rs2_bucket_for(252), 1024);
	assert_int_equal(rs2_bucket_for(65531), 65536);
	assert_int_equal(rs2_bucket_for(1 << 20), 65536);
	assert_int_equal(rs2_bucket_round(1000), 1024);
	assert_int_equal(rs2_bucket_round(1), 256);
}

/* A chunk crafted with the right key and AD but a bad v2 layout. */
static int
v2_raw_result(const uint8_t *pt, size_t len, uint8_t tag, bool v1_ad)
{
	struct rs_writer wr;
	struct result res;
	struct buf w;
	int err;

	buf_init(&w, WIRE_MAX);
	assert_int_equal(rs_writer_init_v2(&wr, &w, key), 0);
	if (v1_ad)
		wr.version = RS_VERSION; /* push without the v2 AD */
	assert_int_equal(rs_write_raw(&wr, &w, pt, len, tag), 0);
	rs_writer_clear(&wr);
	read_v2 = true;
	read_all(&res, key, buf_data(&w), w.len, 9);
	read_v2 = false;
	err = res.err != 0 ? res.err : res.fin;
	buf_clear(&res.data);
	buf_clear(&w);
	return err;
}

static void
test_v2_bad_chunks(void **state)
{
	const uint8_t TM = crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
	const uint8_t TF = crypto_secretstream_xchacha20poly1305_TAG_FINAL;
	uint8_t pt[1024];
	struct rs_writer wr;
	struct result res;
	struct buf w, v1;

	memset(pt, 0, sizeof(pt));
	pt[0] = RS_T_DATA;
	pt[4] = 3;
	pt[5] = 'a';
	pt[6] = 'b';
	pt[7] = 'c';
	/* Well formed (control), then: non-zero padding, length past the
	 * bucket, a size that is no bucket, wrong tags, unknown type, v1 AD. */
	assert_int_equal(v2_raw_result(pt, 256, TM, false), SM_ERR_CLOSED);
	pt[200] = 1;
	assert_int_equal(v2_raw_result(pt, 256, TM, false), SM_ERR_PROTO);
	pt[200] = 0;
	pt[3] = 1; /* n = 259 > 251 */
	assert_int_equal(v2_raw_result(pt, 256, TM, false), SM_ERR_PROTO);
	pt[3] = 0;
	assert_int_equal(v2_raw_result(pt, 300, TM, false), SM_ERR_PROTO);
	assert_int_equal(v2_raw_result(pt, 256, TF, false), SM_ERR_PROTO);
	pt[0] = RS_T_END;
	assert_int_equal(v2_raw_result(pt, 256, TM, false), SM_ERR_PROTO);
	assert_int_equal(v2_raw_result(pt, 256, TF, false), 0);
	pt[0] = 0x09;
	assert_int_equal(v2_raw_result(pt, 256, TF, false), SM_ERR_PROTO);
	pt[0] = RS_T_END;
	assert_int_equal(v2_raw_result(pt, 256, TF, true), SM_ERR_DECRYPT);

	/* Version byte flipped either way: the AD differs, nothing opens. */
	buf_init(&w, WIRE_MAX);
	assert_int_equal(rs_writer_init_v2(&wr, &w, key), 0);
	assert_int_equal(rs_write_padded(&wr, &w, RS_T_END, 256, pt, 3), 0);
	rs_writer_clear(&wr);
	buf_data(&w)[1] = RS_VERSION;
	read_v2 = true;
	read_all(&res, key, buf_data(&w), w.len, 64);
	assert_int_equal(res.err, SM_ERR_DECRYPT);
	buf_clear(&res.data);
	buf_clear(&w);
	make_stream(&v1, sse, SM_ARRAY_LEN(sse));
	read_all(&res, key, buf_data(&v1), v1.len, 64);
	assert_true(read_ok(&res)); /* a v2 reader still reads v1 */
	buf_clear(&res.data);
	buf_data(&v1)[1] = RS_VERSION2;
	read_all(&res, key, buf_data(&v1), v1.len, 64);
	assert_true(res.err == SM_ERR_PROTO || res.err == SM_ERR_DECRYPT);
	buf_clear(&res.data);
	buf_clear(&v1);
	/* A refusal reads the same in v2 readers; a "v2 refusal" does not. */
	buf_init(&w, 8);
	assert_int_equal(rs_write_refusal(&w, RS_REFUSE_REPLAY), 0);
	read_all(&res, key, buf_data(&w), w.len, 1);
	assert_true(res.refused && res.err == 0 && res.fin == 0);
	buf_data(&w)[1] = RS_VERSION2;
	read_all(&res, key, buf_data(&w), w.len, 1);
	assert_int_equal(res.err, SM_ERR_PROTO);
	read_v2 = false;
	buf_clear(&w);
}

static void
test_v2_vectors(void **state)
{
	cJSON *root = vec_load("tests/vectors/rstream_v2.json"), *v, *c;
	const cJSON *vecs = cJSON_GetObjectItemCaseSensitive(root, "vectors");
	uint8_t k[RS_KEY_LEN], hdr[RS_SSHDR_LEN], *want;
	struct rs_writer wr;
	struct result res;
	struct buf w;
	const char *type, *d;
	size_t n, nvec = 0, b;

	cJSON_ArrayForEach(v, vecs)
	{
		d = cJSON_GetObjectItemCaseSensitive(v, "stream")->valuestring;
		n = strlen(d) / 2;
		want = malloc(n);
		assert_non_null(want);
		assert_int_equal(sm_unhex(want, n, d), 0);
		vec_hex(k, sizeof(k), v, "key");
		vec_hex(hdr, sizeof(hdr), v, "sshdr");
		buf_init(&w, WIRE_MAX);
		assert_int_equal(rs_writer_init_v2_det(&wr, &w, k, hdr), 0);
		cJSON_ArrayForEach(
		    c, cJSON_GetObjectItemCaseSensitive(v, "chunks"))
		{
			type = cJSON_GetObjectItem(c, "type")->valuestring;
			b = (size_t)cJSON_GetObjectItem(c, "bucket")->valueint;
			if (strcmp(type, "error") == 0) {
				assert_int_equal(
				    rs_write_padded_error(&wr, &w, b,
					(uint16_t)cJSON_GetObjectItem(
					    c, "status")
					    ->valueint,
					cJSON_GetObjectItem(c, "reason")
					    ->valuestring),
				    0);
				continue;
			}
			d = cJSON_GetObjectItem(c, "data")->valuestring;
			assert_int_equal(
			    rs_write_padded(&wr, &w,
				strcmp(type, "end") == 0 ? RS_T_END : RS_T_DATA,
				b, (const uint8_t *)d, strlen(d)),
			    0);
		}
		rs_writer_clear(&wr);
		assert_int_equal(w.len, n);
		assert_memory_equal(buf_data(&w), want, n);
		read_v2 = true;
		read_all(&res, k, want, n, 11);
		read_v2 = false;
		assert_int_equal(res.err, 0);
		assert_int_equal(res.fin, 0);
		buf_clear(&res.data);
		buf_clear(&w);
		free(want);
		nvec++;
	}
	assert_int_equal(nvec, 2);
	cJSON_Delete(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip_any_slicing),
	    cmocka_unit_test(test_large_data_split),
	    cmocka_unit_test(test_error_chunk),
	    cmocka_unit_test(test_wrong_key),
	    cmocka_unit_test(test_every_byte_flip_refused),
	    cmocka_unit_test(test_drop_reorder_replay_truncate),
	    cmocka_unit_test(test_bad_authenticated_chunks),
	    cmocka_unit_test(test_parser_limits),
	    cmocka_unit_test(test_refusal),
	    cmocka_unit_test(test_det_matches_push),
	    cmocka_unit_test(test_out_full_no_partial),
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_v2_roundtrip_padding),
	    cmocka_unit_test(test_v2_error_and_sizes),
	    cmocka_unit_test(test_v2_bad_chunks),
	    cmocka_unit_test(test_v2_vectors),
	};

	if (sodium_init() < 0)
		return 1;
	randombytes_buf(key, sizeof(key));
	return cmocka_run_group_tests_name("rstream", tests, NULL, NULL);
}
