/*
 * The host's response shaper (mesh/shape.c) on a real libuv loop with a
 * recording sink: one frame per tick and stream, all the same size, padding
 * when idle, END/ERROR on a tick in a frame of the same size, the bucket
 * ladder, pacing 0, stop. Every recorded stream is read back with the v2
 * reader.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sodium.h>
#include <uv.h>

#include "core/buf.h"
#include "core/util.h"
#include "crypto/rstream.h"
#include "mesh/shape.h"

#define MAXF 4096

static uint8_t key[RS_KEY_LEN];

struct rec {
	struct shape_stream ss;
	struct rs_writer w;
	struct buf wire; /* preamble and frames, as sent */
	size_t nframes;
	size_t fsize[MAXF]; /* each write's size */
	uint64_t fat[MAXF]; /* loop time of each write */
	int done; /* 0: not yet, 1: ok, 2: error */
	int drained;
	uv_loop_t *loop;
};

static int
sink_write(void *arg, const uint8_t *p, size_t n)
{
	struct rec *r = arg;

	assert_true(r->nframes < MAXF);
	r->fsize[r->nframes] = n;
	r->fat[r->nframes++] = uv_now(r->loop);
	return buf_append(&r->wire, p, n);
}

static size_t
sink_queued(void *arg)
{
	return 0;
}

static void
sink_drained(void *arg)
{
	((struct rec *)arg)->drained++;
}

static void
sink_done(void *arg, int err)
{
	((struct rec *)arg)->done = err == 0 ? 1 : 2;
}

static const struct shape_sink sink = {
    sink_write, sink_queued, sink_drained, sink_done};

static void
rec_start(struct rec *r, struct shaper *sh, uv_loop_t *loop)
{
	memset(r, 0, sizeof(*r));
	r->loop = loop;
	buf_init(&r->wire, 64u << 20);
	assert_int_equal(rs_writer_init_v2(&r->w, &r->wire, key), 0);
	shape_stream_start(&r->ss, sh, &r->w, &sink, r);
}

/* Read r->wire back: all data, and whether it ended with END or ERROR. */
static void
rec_read(struct rec *r, struct buf *data, int *end)
{
	struct rs_reader rd;
	struct rs_event ev;
	size_t off = 0, used;
	int ret;

	*end = 0;
	buf_init(data, 64u << 20);
	rs_reader_init_v2(&rd, key);
	while (off < r->wire.len) {
		ret = rs_reader_feed(&rd, &ev, &used, buf_data(&r->wire) + off,
		    r->wire.len - off);
		off += used;
		if (ret == SM_ERR_AGAIN)
			break;
		assert_int_equal(ret, 0);
		if (ev.len > 0)
			assert_int_equal(buf_append(data, ev.data, ev.len), 0);
		if (ev.type == RS_EV_END)
			*end = 1;
		if (ev.type == RS_EV_ERROR) {
			*end = 2;
			assert_int_equal(ev.status, 502);
		}
	}
	assert_int_equal(off, r->wire.len);
	assert_int_equal(rs_reader_finish(&rd), 0);
	rs_reader_clear(&rd);
}

static void
rec_clear(struct rec *r)
{
	shape_stream_stop(&r->ss);
	rs_writer_clear(&r->w);
	buf_clear(&r->wire);
}

/* Run the loop until 'ms' of loop time have passed. */
static void
run_for(uv_loop_t *loop, uint64_t ms)
{
	uint64_t end = uv_now(loop) + ms;

	while (uv_now(loop) < end) {
		uv_run(loop, UV_RUN_ONCE);
		uv_update_time(loop);
	}
}

static void
test_one_frame_per_tick(void **state)
{
	struct shape_opts o = {.pacing_ms = 10, .bucket = 1024};
	struct shaper *sh;
	struct rec a, b;
	struct buf data;
	char tok[64];
	size_t i, want = 0;
	int end;
	uv_loop_t loop;

	uv_loop_init(&loop);
	assert_int_equal(shaper_new(&sh, &loop, &o), 0);
	rec_start(&a, sh, &loop);
	rec_start(&b, sh, &loop);
	assert_int_equal(shaper_active(sh), 2);
	/* a: bursts of tokens of varying sizes; b: nothing for a while. */
	for (i = 0; i < 20; i++) {
		size_t n = (size_t)snprintf(tok, sizeof(tok),
		    "data: tok%zu%.*s\n\n", i, (int)(i % 7), "xxxxxxx");

		assert_int_equal(
		    shape_stream_write(&a.ss, (const uint8_t *)tok, n), 0);
		want += n;
		if (i % 3 == 0)
			run_for(&loop, 25);
	}
	/* Nothing is written between ticks: the bytes wait. */
	assert_true(shape_stream_pending(&a.ss) > 0);
	shape_stream_end(&a.ss);
	assert_true(shape_stream_closing(&a.ss));
	assert_int_equal(
	    shape_stream_write(&a.ss, (const uint8_t *)"x", 1), SM_ERR_CLOSED);
	run_for(&loop, 60);
	assert_int_equal(a.done, 1);
	assert_int_equal(b.done, 0);
	assert_int_equal(shaper_active(sh), 1);
	shape_stream_end(&b.ss);
	run_for(&loop, 30);
	assert_int_equal(b.done, 1);
	assert_int_equal(shaper_active(sh), 0);

	/* Every frame of both streams: one bucket; one per tick. */
	for (i = 0; i < a.nframes; i++)
		assert_int_equal(
		    a.fsize[i], RS_FRAME_HDR_LEN + RS_ABYTES + 1024);
	for (i = 1; i < a.nframes; i++)
		assert_true(a.fat[i] - a.fat[i - 1] >= 9);
	for (i = 0; i < b.nframes; i++)
		assert_int_equal(
		    b.fsize[i], RS_FRAME_HDR_LEN + RS_ABYTES + 1024);
	assert_true(b.nframes >= 4); /* padding frames while idle */
	assert_true(shaper_stats(sh)->padding_frames >= b.nframes - 1);
	assert_true(a.drained > 0);
	rec_read(&a, &data, &end);
	assert_int_equal(end, 1);
	assert_int_equal(data.len, want);
	buf_clear(&data);
	rec_read(&b, &data, &end);
	assert_int_equal(end, 1);
	assert_int_equal(data.len, 0);
	buf_clear(&data);
	rec_clear(&a);
	rec_clear(&b);
	shaper_free(sh);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void
test_ladder_and_fail(void **state)
{
	struct shape_opts o = {.pacing_ms = 5, .bucket = 256};
	static uint8_t big[300000];
	struct shaper *sh;
	struct rec a, c;
	struct buf data;
	size_t i, last;
	int end;
	uv_loop_t loop;

	for (i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)('a' + i % 26);
	uv_loop_init(&loop);
	assert_int_equal(shaper_new(&sh, &loop, &o), 0);
	rec_start(&a, sh, &loop);
	/* A large body: the bucket grows (never shrinks), to 64 KiB with
	 * several frames per tick, and it all arrives. */
	assert_int_equal(shape_stream_write(&a.ss, big, sizeof(big)), 0);
	shape_stream_end(&a.ss);
	run_for(&loop, 60);
	assert_int_equal(a.done, 1);
	last = 0;
	for (i = 0; i < a.nframes; i++) {
		assert_true(a.fsize[i] >= last);
		last = a.fsize[i];
	}
	assert_true(last >= RS_FRAME_HDR_LEN + RS_ABYTES + 65536);
	assert_true(a.nframes < 12);
	rec_read(&a, &data, &end);
	assert_int_equal(end, 1);
	assert_int_equal(data.len, sizeof(big));
	assert_memory_equal(buf_data(&data), big, sizeof(big));
	buf_clear(&data);

	/* Failure: queued bytes dropped, ERROR on a tick, same size. */
	rec_start(&c, sh, &loop);
	assert_int_equal(shape_stream_write(&c.ss, big, 100), 0);
	run_for(&loop, 12);
	assert_int_equal(shape_stream_write(&c.ss, big, 100), 0);
	shape_stream_fail(&c.ss, 502);
	shape_stream_end(&c.ss); /* no-op after fail */
	run_for(&loop, 12);
	assert_int_equal(c.done, 1);
	for (i = 0; i < c.nframes; i++)
		assert_int_equal(
		    c.fsize[i], RS_FRAME_HDR_LEN + RS_ABYTES + 256);
	rec_read(&c, &data, &end);
	assert_int_equal(end, 2);
	assert_int_equal(data.len, 100);
	buf_clear(&data);
	rec_clear(&a);
	rec_clear(&c);
	shaper_free(sh);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void
test_pacing_zero_and_stop(void **state)
{
	struct shape_opts o = {.pacing_ms = 0, .bucket = 1000};
	struct shaper *sh;
	struct rec a, s;
	struct buf data;
	int end;
	uv_loop_t loop;

	uv_loop_init(&loop);
	assert_int_equal(shaper_new(&sh, &loop, &o), 0);
	assert_int_equal(shaper_opts(sh)->bucket, 1024); /* rounded up */
	rec_start(&a, sh, &loop);
	/* No clock: each write leaves at once, padded. */
	assert_int_equal(
	    shape_stream_write(&a.ss, (const uint8_t *)"hello", 5), 0);
	assert_int_equal(a.nframes, 1);
	assert_int_equal(a.fsize[0], RS_FRAME_HDR_LEN + RS_ABYTES + 1024);
	assert_int_equal(shape_stream_pending(&a.ss), 0);
	shape_stream_end(&a.ss);
	assert_int_equal(a.done, 1);
	assert_int_equal(a.nframes, 2);
	rec_read(&a, &data, &end);
	assert_int_equal(end, 1);
	assert_int_equal(data.len, 5);
	buf_clear(&data);
	rec_clear(&a);
	shaper_free(sh);

	/* Stopped streams leave the clock, which stops with the last. */
	o.pacing_ms = 5;
	assert_int_equal(shaper_new(&sh, &loop, &o), 0);
	rec_start(&s, sh, &loop);
	assert_int_equal(
	    shape_stream_write(&s.ss, (const uint8_t *)"abc", 3), 0);
	shape_stream_stop(&s.ss);
	shape_stream_stop(&s.ss); /* idempotent */
	assert_int_equal(shaper_active(sh), 0);
	run_for(&loop, 20);
	assert_int_equal(s.nframes, 0);
	assert_int_equal(s.done, 0);
	rec_clear(&s);
	shaper_free(sh);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_one_frame_per_tick),
	    cmocka_unit_test(test_ladder_and_fail),
	    cmocka_unit_test(test_pacing_zero_and_stop),
	};

	if (sodium_init() < 0)
		return 1;
	randombytes_buf(key, sizeof(key));
	return cmocka_run_group_tests_name("shape", tests, NULL, NULL);
}
