/* Writing to libuv streams without holding the caller's buffers. */
#ifndef SM_HTTP_IO_H
#define SM_HTTP_IO_H

#include <stddef.h>

#include <uv.h>

/*
 * Write 'n' buffers to 's'. Bytes the kernel takes at once are not copied;
 * the rest is copied into one heap block queued with uv_write, so the caller
 * may reuse its buffers on return. 'done' (may be NULL) runs when a queued
 * write completes, with s->data as the argument. Returns 0 or SM_ERR_*.
 */
int io_write(uv_stream_t *s, const uv_buf_t *bufs, unsigned n,
    void (*done)(uv_stream_t *s, int status));

/* uv_close() wrapper that frees 'h' (allocated with malloc) when closed. */
void io_close_free(uv_handle_t *h);

/* Shared receive buffer for a single-threaded loop (64 KiB, reused). */
void io_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

#endif
