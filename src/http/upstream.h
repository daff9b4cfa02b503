/*
 * The answer side of one forwarded request, whatever carries it: a TCP
 * connection to a local backend (here), or later a tunnel stream to a remote
 * host. Events arrive through struct upstream_cbs; after on_end, or after
 * upstream_cancel(), no callback runs again and the upstream frees itself.
 */
#ifndef SM_HTTP_UPSTREAM_H
#define SM_HTTP_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "backend/backend.h"
#include "core/buf.h"
#include "http/server.h"

#define UPSTREAM_MAX_HEADER_BYTES (32 * 1024)
/* Idle keep-alive connections per backend: as many as the load used, each
 * closed after this long unused; the ceiling guards descriptors only. */
#define UPSTREAM_IDLE_TIMEOUT_MS 60000
#define UPSTREAM_IDLE_MAX 65536
#ifdef SM_TEST_BUILD
/* Test builds only (--test-pool-idle-ms): the idle timeout. */
extern uint64_t upstream_idle_timeout_ms;
#else
#define upstream_idle_timeout_ms ((uint64_t)UPSTREAM_IDLE_TIMEOUT_MS)
#endif

struct upstream;

struct upstream_cbs {
	/* Status line and headers (lowercased names). content_length -1 when
	 * the body is chunked or delimited by close. */
	void (*on_head)(void *user, int status, const struct hdr *hdrs,
	    size_t nhdrs, int64_t content_length);
	/* Body bytes as they arrive (decoded from chunked framing). */
	void (*on_body)(void *user, const uint8_t *data, size_t len);
	/*
	 * Done. err 0: complete. Before on_head: SM_ERR_IO (cannot connect,
	 * reset), SM_ERR_TIMEOUT (no answer in time), SM_ERR_PROTO (not HTTP).
	 * After on_head: SM_ERR_CLOSED (cut before the end).
	 */
	void (*on_end)(void *user, int err);
};

/*
 * Every kind of upstream embeds this header; the kind's ops implement
 * pause/resume/cancel, and complete() when its response has fully arrived.
 * Callers use only the upstream_* functions below.
 */
struct upstream_ops {
	void (*pause)(struct upstream *u);
	void (*resume)(struct upstream *u);
	void (*cancel)(struct upstream *u);
	void (*complete)(struct upstream *u);
};
struct upstream {
	const struct upstream_ops *ops;
	struct upstream_cbs cbs;
	void *user;
	uv_timer_t *timer; /* the kind's timer, stopped when the head arrives */
	bool head_seen;
	bool finished; /* on_end delivered or cancelled: no more callbacks */
};

/* Parser callbacks shared by every kind: hparse's user is the upstream. */
extern const struct hparse_cbs upstream_parse_cbs;

struct upstream_opts {
	uint64_t connect_timeout_ms;
	uint64_t header_timeout_ms; /* request sent → response head */
};

/*
 * Send 'request' (complete HTTP/1.1 request bytes; copied) to 'b' on an idle
 * keep-alive connection from its pool, or a new one. A pooled connection that
 * turns out closed before any answer byte is retried once on a new one.
 * Returns 0 and *out, or SM_ERR_* with no callback ever made.
 */
int
upstream_tcp_start(struct upstream **out, uv_loop_t *loop, struct backend *b,
    const struct buf *request, const struct upstream_opts *opts,
    const struct upstream_cbs *cbs, void *user) SM_MUST_CHECK;
/* Stop/resume reading the answer (backpressure). */
static inline void
upstream_pause(struct upstream *u)
{
	u->ops->pause(u);
}
static inline void
upstream_resume(struct upstream *u)
{
	u->ops->resume(u);
}
/* Abort: no callback runs again; the backend sees its client leave. */
static inline void
upstream_cancel(struct upstream *u)
{
	u->ops->cancel(u);
}

/*
 * Build the HTTP/1.1 request for backend 'b' from the client's request:
 * end-to-end headers are kept, hop-by-hop ones dropped, the body is sent with
 * Content-Length.
 */
int upstream_build_request(struct buf *out, const struct backend *b,
    const struct hreq *req) SM_MUST_CHECK;

/* The client's request as it travels to a remote host: its own path, the
 * same header filtering, Content-Length framing. */
int upstream_build_tunnel_request(
    struct buf *out, const struct hreq *req) SM_MUST_CHECK;

#endif
