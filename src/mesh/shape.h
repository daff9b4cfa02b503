/*
 * Response shaping on the host (doc/PROTOCOL.md "Response stream v2: padded
 * frames and paced emission", doc/THREAT-MODEL.md "Traffic shape").
 *
 * A shaped response is a v2 response stream (crypto/rstream.h) whose frames
 * leave on one clock shared by every stream of the node: at each tick every
 * open stream emits exactly one frame of its current bucket, carrying
 * whatever the backend produced since the last tick (up to the bucket), or
 * nothing (a padding frame of the same size). END and ERROR go out on a tick
 * too, in a frame of the same size. What an observer of the link sees per
 * stream is therefore: when it started, a train of equal frames at the tick
 * rate, and when it stopped — not how many tokens there were, how long each
 * was, or when each was produced.
 *
 * The bucket starts at the configured minimum (--response-bucket, default
 * 1 KiB: ~4 llama-server SSE events per 30 ms tick, 130 tokens/s) and only
 * grows, when the backlog exceeds SHAPE_BACKLOG_TICKS frames (a large
 * non-streamed body, a very fast backend). At the largest bucket (64 KiB) up
 * to SHAPE_MAX_FRAMES frames leave per tick, as many as keep the transport's
 * queue under 512 KiB. The growth steps are the only
 * rate information that leaks, and only for streams that outrun the
 * minimum bucket.
 *
 * With pacing 0 every write leaves at once, padded to a bucket (sizes
 * hidden, timing not). No I/O of its own: the sink moves the bytes.
 */
#ifndef SM_MESH_SHAPE_H
#define SM_MESH_SHAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/buf.h"
#include "crypto/rstream.h"

#define SHAPE_PACING_DEFAULT_MS 30
#define SHAPE_PACING_MAX_MS 1000
#define SHAPE_BUCKET_DEFAULT 1024
#define SHAPE_BACKLOG_TICKS 2 /* grow the bucket past this many frames */
#define SHAPE_MAX_FRAMES 16 /* per stream and tick, at the largest bucket */
#define SHAPE_PENDING_MAX (4u << 20) /* plaintext held per stream */

struct shape_opts {
	uint32_t pacing_ms; /* 0: pad only, no clock */
	uint32_t bucket; /* smallest frame bucket (a v2 bucket) */
};

/* Where a shaped stream's frames go; implemented by the tunnel. */
struct shape_sink {
	/* Append ciphertext to the transport; non-zero on failure. */
	int (*write)(void *arg, const uint8_t *p, size_t n);
	/* Bytes the transport holds that are not yet on the wire. */
	size_t (*queued)(void *arg);
	/* Pending plaintext fell: the producer may write again. */
	void (*drained)(void *arg);
	/* The final frame was written (err 0), or writing failed: end the
	 * transport. Last call for this stream; it may free the stream. */
	void (*done)(void *arg, int err);
};

struct shape_stats {
	uint64_t streams; /* shaped streams started */
	uint64_t frames; /* frames written */
	uint64_t padding_frames; /* of which carried no byte */
	uint64_t data_bytes; /* response bytes carried */
	uint64_t wire_bytes; /* frame bytes written */
	uint64_t skipped; /* ticks a stream skipped: transport backed up */
};

struct shaper;

struct shape_stream {
	struct shaper *sh;
	struct shape_stream *prev, *next;
	const struct shape_sink *sink;
	void *arg;
	struct rs_writer *w;
	struct buf pending; /* plaintext not yet sealed; wiped */
	size_t bucket;
	int state;
	uint16_t status; /* for ERROR */
	bool linked;
};

/* One per node. 'o' is copied. */
int shaper_new(struct shaper **out, uv_loop_t *loop,
    const struct shape_opts *o) SM_MUST_CHECK;
/* Close the clock (streams must be stopped first); frees on close. */
void shaper_free(struct shaper *sh);
const struct shape_opts *shaper_opts(const struct shaper *sh);
const struct shape_stats *shaper_stats(const struct shaper *sh);
size_t shaper_active(const struct shaper *sh);

/*
 * Shape the stream written by 'w' (already started as v2, preamble sent).
 * From the next tick on, one frame per tick. 'ss' is embedded by the caller
 * and must be stopped with shape_stream_stop() before it is freed.
 */
void shape_stream_start(struct shape_stream *ss, struct shaper *sh,
    struct rs_writer *w, const struct shape_sink *sink, void *arg);
/* Queue response bytes. SM_ERR_CLOSED after end/fail, SM_ERR_TOOBIG. */
int shape_stream_write(
    struct shape_stream *ss, const uint8_t *p, size_t n) SM_MUST_CHECK;
/* Bytes queued and not yet sealed. */
size_t shape_stream_pending(const struct shape_stream *ss);
/* The response is complete: END goes out after the queued bytes. */
void shape_stream_end(struct shape_stream *ss);
/* The response failed: queued bytes are dropped, ERROR goes out on the next
 * tick. No-op after end/fail. */
void shape_stream_fail(struct shape_stream *ss, uint16_t status);
/* Whether END or ERROR was asked for (or written). */
bool shape_stream_closing(const struct shape_stream *ss);
/* The transport is gone: forget the stream, wipe what it held. Idempotent. */
void shape_stream_stop(struct shape_stream *ss);

#endif
