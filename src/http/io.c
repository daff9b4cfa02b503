#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "http/io.h"

struct io_wreq {
	uv_write_t req;
	void (*done)(uv_stream_t *s, int status);
	size_t len;
	char data[];
};

static void
io_write_cb(uv_write_t *req, int status)
{
	struct io_wreq *w = (struct io_wreq *)req;

	if (w->done != NULL)
		w->done(req->handle, status);
	free(w);
}

int
io_write(uv_stream_t *s, const uv_buf_t *bufs, unsigned n,
    void (*done)(uv_stream_t *s, int status))
{
	size_t total = 0, skip, off = 0;
	struct io_wreq *w;
	uv_buf_t one;
	int r = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		total += bufs[i].len;
	if (total == 0)
		return 0;
	/* Only try a direct write when nothing is queued, to keep order. */
	if (uv_stream_get_write_queue_size(s) == 0) {
		r = uv_try_write(s, bufs, n);
		if (r < 0 && r != UV_EAGAIN)
			return SM_ERR_IO;
		if (r < 0)
			r = 0;
	}
	if ((size_t)r == total)
		return 0;
	skip = (size_t)r;
	if ((w = malloc(sizeof(*w) + total - skip)) == NULL)
		return SM_ERR_NOMEM;
	w->done = done;
	w->len = total - skip;
	for (i = 0; i < n; i++) {
		size_t len = bufs[i].len;
		const char *p = bufs[i].base;

		if (skip >= len) {
			skip -= len;
			continue;
		}
		memcpy(w->data + off, p + skip, len - skip);
		off += len - skip;
		skip = 0;
	}
	one = uv_buf_init(w->data, (unsigned)w->len);
	if (uv_write(&w->req, s, &one, 1, io_write_cb) != 0) {
		free(w);
		return SM_ERR_IO;
	}
	return 0;
}

static void
io_free_cb(uv_handle_t *h)
{
	free(h);
}

void
io_close_free(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, io_free_cb);
}

void
io_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char slab[64 * 1024];

	(void)h;
	(void)suggested;
	buf->base = slab;
	buf->len = sizeof(slab);
}
