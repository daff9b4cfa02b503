/*
 * Response shaping: one shared clock, one padded frame per stream and tick.
 * See shape.h.
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "mesh/shape.h"

enum { SS_OPEN = 1, SS_END, SS_ERROR, SS_DONE };

#define SHAPE_ERROR_REASON "the host's backend failed"
/* A transport holding this much skips the tick (congestion); below it, a
 * tick adds at most what fits under it (and at least one frame). */
#define SHAPE_SINK_MAX (512 * 1024)

struct shaper {
	uv_timer_t timer;
	struct shape_opts o;
	struct shape_stream *head;
	size_t n;
	bool running;
	struct buf ct; /* scratch: one tick's frames for one stream */
	struct shape_stats st;
};

int
shaper_new(struct shaper **out, uv_loop_t *loop, const struct shape_opts *o)
{
	struct shaper *sh;

	*out = NULL;
	if ((sh = calloc(1, sizeof(*sh))) == NULL)
		return SM_ERR_NOMEM;
	sh->o = *o;
	sh->o.bucket = (uint32_t)rs2_bucket_round(o->bucket);
	if (sh->o.pacing_ms > SHAPE_PACING_MAX_MS)
		sh->o.pacing_ms = SHAPE_PACING_MAX_MS;
	buf_init(&sh->ct,
	    SHAPE_MAX_FRAMES * (RS_FRAME_HDR_LEN + RS_ABYTES + RS2_BUCKET_MAX));
	uv_timer_init(loop, &sh->timer);
	sh->timer.data = sh;
	*out = sh;
	return 0;
}

static void
shaper_closed(uv_handle_t *h)
{
	struct shaper *sh = h->data;

	buf_clear(&sh->ct);
	free(sh);
}

void
shaper_free(struct shaper *sh)
{
	if (sh == NULL)
		return;
	uv_close((uv_handle_t *)&sh->timer, shaper_closed);
}

const struct shape_opts *
shaper_opts(const struct shaper *sh)
{
	return &sh->o;
}

const struct shape_stats *
shaper_stats(const struct shaper *sh)
{
	return &sh->st;
}

size_t
shaper_active(const struct shaper *sh)
{
	return sh->n;
}

static void
unlink_stream(struct shape_stream *ss)
{
	struct shaper *sh = ss->sh;

	if (!ss->linked)
		return;
	if (ss->prev != NULL)
		ss->prev->next = ss->next;
	else
		sh->head = ss->next;
	if (ss->next != NULL)
		ss->next->prev = ss->prev;
	ss->prev = ss->next = NULL;
	ss->linked = false;
	if (--sh->n == 0 && sh->running) {
		uv_timer_stop(&sh->timer);
		sh->running = false;
	}
}

/*
 * Seal up to SHAPE_MAX_FRAMES frames of the stream's bucket into sh->ct:
 * at least one (padding when nothing is queued), more only at the largest
 * bucket. Sets '*final' when END or ERROR was written.
 */
static int
seal_tick(struct shape_stream *ss, size_t max_frames, bool *final)
{
	struct shaper *sh = ss->sh;
	size_t cap, n, frames = 0;
	int r = 0;

	*final = false;
	/* Grow (never shrink) when the backlog exceeds a few ticks. */
	if (ss->pending.len > SHAPE_BACKLOG_TICKS * RS2_CAP(ss->bucket)) {
		size_t want =
		    rs2_bucket_for((ss->pending.len + SHAPE_BACKLOG_TICKS - 1) /
			SHAPE_BACKLOG_TICKS);

		if (want > ss->bucket)
			ss->bucket = want;
	}
	cap = RS2_CAP(ss->bucket);
	do {
		n = ss->pending.len < cap ? ss->pending.len : cap;
		if (ss->state == SS_ERROR) {
			r = rs_write_padded_error(ss->w, &sh->ct, ss->bucket,
			    ss->status, SHAPE_ERROR_REASON);
			*final = true;
		} else if (ss->state == SS_END && n == ss->pending.len) {
			r = rs_write_padded(ss->w, &sh->ct, RS_T_END,
			    ss->bucket, buf_data(&ss->pending), n);
			*final = true;
		} else {
			r = rs_write_padded(ss->w, &sh->ct, RS_T_DATA,
			    ss->bucket, buf_data(&ss->pending), n);
		}
		if (r != 0)
			break;
		if (n > 0)
			buf_consume(&ss->pending, n);
		else if (!*final)
			sh->st.padding_frames++;
		sh->st.data_bytes += n;
		sh->st.frames++;
		frames++;
	} while (!*final && ss->bucket == RS2_BUCKET_MAX &&
	    ss->pending.len > 0 && frames < max_frames);
	return r;
}

/* One stream's turn. May end in sink->done(), which may free 'ss'. */
static void
stream_tick(struct shape_stream *ss)
{
	struct shaper *sh = ss->sh;
	size_t before = ss->pending.len, q = ss->sink->queued(ss->arg), room;
	bool final = false;
	int r;

	if (q >= SHAPE_SINK_MAX) {
		sh->st.skipped++;
		return;
	}
	room = (SHAPE_SINK_MAX - q) /
	    (RS_FRAME_HDR_LEN + RS_ABYTES + RS2_BUCKET_MAX);
	buf_reset(&sh->ct);
	r = seal_tick(ss,
	    room < 1                      ? 1
		: room > SHAPE_MAX_FRAMES ? SHAPE_MAX_FRAMES
					  : room,
	    &final);
	if (r == 0 && sh->ct.len > 0) {
		sh->st.wire_bytes += sh->ct.len;
		r = ss->sink->write(ss->arg, buf_data(&sh->ct), sh->ct.len);
	}
	buf_reset(&sh->ct);
	if (r != 0 || final) {
		if (r != 0)
			log_warn("shape: response frame not written: %s",
			    sm_strerror(r));
		ss->state = SS_DONE;
		buf_clear(&ss->pending);
		unlink_stream(ss);
		ss->sink->done(ss->arg, r);
		return;
	}
	if (ss->pending.len < before)
		ss->sink->drained(ss->arg);
}

static void
on_tick(uv_timer_t *t)
{
	struct shaper *sh = t->data;
	struct shape_stream *ss, *next;

	for (ss = sh->head; ss != NULL; ss = next) {
		next = ss->next;
		stream_tick(ss);
	}
}

void
shape_stream_start(struct shape_stream *ss, struct shaper *sh,
    struct rs_writer *w, const struct shape_sink *sink, void *arg)
{
	memset(ss, 0, sizeof(*ss));
	ss->sh = sh;
	ss->w = w;
	ss->sink = sink;
	ss->arg = arg;
	ss->bucket = sh->o.bucket;
	ss->state = SS_OPEN;
	buf_init(&ss->pending, SHAPE_PENDING_MAX);
	sh->st.streams++;
	if (sh->o.pacing_ms == 0)
		return; /* pad only: frames leave from the write calls */
	ss->next = sh->head;
	if (sh->head != NULL)
		sh->head->prev = ss;
	sh->head = ss;
	ss->linked = true;
	if (sh->n++ == 0 && !sh->running) {
		uv_timer_start(
		    &sh->timer, on_tick, sh->o.pacing_ms, sh->o.pacing_ms);
		sh->running = true;
	}
}

/* Pacing 0: everything queued leaves now, in frames just big enough. */
static int
flush_now(struct shape_stream *ss)
{
	struct shaper *sh = ss->sh;
	bool final = false;
	int r = 0;

	while (
	    r == 0 && !final && (ss->pending.len > 0 || ss->state != SS_OPEN)) {
		size_t b = rs2_bucket_for(ss->pending.len);

		ss->bucket = b > sh->o.bucket ? b : sh->o.bucket;
		buf_reset(&sh->ct);
		r = seal_tick(ss, 1, &final);
		if (r == 0) {
			sh->st.wire_bytes += sh->ct.len;
			r = ss->sink->write(
			    ss->arg, buf_data(&sh->ct), sh->ct.len);
		}
		buf_reset(&sh->ct);
	}
	if (r != 0 || final) {
		ss->state = SS_DONE;
		buf_clear(&ss->pending);
		ss->sink->done(ss->arg, r);
	}
	return r;
}

int
shape_stream_write(struct shape_stream *ss, const uint8_t *p, size_t n)
{
	int r;

	if (ss->state != SS_OPEN)
		return SM_ERR_CLOSED;
	if (n == 0)
		return 0;
	if ((r = buf_append(&ss->pending, p, n)) != 0)
		return r;
	if (ss->sh->o.pacing_ms == 0)
		return flush_now(ss);
	return 0;
}

size_t
shape_stream_pending(const struct shape_stream *ss)
{
	return ss->pending.len;
}

bool
shape_stream_closing(const struct shape_stream *ss)
{
	return ss->state != SS_OPEN;
}

void
shape_stream_end(struct shape_stream *ss)
{
	if (ss->state != SS_OPEN)
		return;
	ss->state = SS_END;
	if (ss->sh->o.pacing_ms == 0)
		(void)flush_now(ss);
}

void
shape_stream_fail(struct shape_stream *ss, uint16_t status)
{
	if (ss->state != SS_OPEN)
		return;
	ss->state = SS_ERROR;
	ss->status = status;
	buf_reset(&ss->pending);
	if (ss->sh->o.pacing_ms == 0)
		(void)flush_now(ss);
}

void
shape_stream_stop(struct shape_stream *ss)
{
	if (ss->sh == NULL)
		return;
	unlink_stream(ss);
	buf_clear(&ss->pending);
	ss->state = SS_DONE;
}
