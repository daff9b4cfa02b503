/*
 * HTTP/1.1 server on libuv + llhttp. One request at a time per connection
 * (keep-alive, pipelined bytes are held until the current response ends).
 * The request body is read whole (bounded by max_body) before the handler
 * runs; the response may stream. Backpressure: hreq_queued() tells how many
 * response bytes wait in the socket; on_drain fires when it falls below the
 * low watermark.
 */
#ifndef SM_HTTP_SERVER_H
#define SM_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/buf.h"
#include "http/parse.h"

#define HTTP_DEFAULT_MAX_HEADER_BYTES (32 * 1024)
#define HTTP_DEFAULT_MAX_BODY (8u * 1024 * 1024)
#define HTTP_WRITE_HIGH_WATER (64 * 1024)
#define HTTP_WRITE_LOW_WATER (16 * 1024)
#define HREQ_ID_MAX 64 /* x-request-id: 1..64 of [A-Za-z0-9._-] */

struct hconn;
struct hreq;

typedef void (*hreq_handler_cb)(struct hreq *req, void *ctx);
/* The client went away or the response was aborted: drop every reference. */
typedef void (*hreq_abort_cb)(struct hreq *req, void *user);
typedef void (*hreq_drain_cb)(struct hreq *req, void *user);

struct hreq {
	struct hconn *conn;
	const char *method;
	const char *path; /* path part of the URL, NUL-terminated */
	const char *query; /* after '?', or "" */
	const struct hdr *hdrs;
	size_t nhdrs;
	struct buf body;
	bool keep_alive;
	uint64_t start_ns;
	/* x-request-id: the client's when well-formed, else 16 random hex
	 * digits; sent on every response and written in the access log. */
	char id[HREQ_ID_MAX + 1];
	/* Set by the handler: an allowed cross-origin request's Origin (valid
	 * while the request is); the response then carries CORS headers. */
	const char *cors_origin;
	/* Set by the handler while the response is in progress. */
	hreq_abort_cb on_abort;
	hreq_drain_cb on_drain;
	void *user;
	/* Response state. */
	int status;
	bool head_sent;
	bool chunked;
	bool done;
	uint64_t bytes_out;
};

struct hsrv_config {
	size_t max_body;
	size_t max_header_bytes;
	hreq_handler_cb handler;
	void *ctx;
};

struct hsrv {
	uv_tcp_t tcp;
	uv_loop_t *loop;
	struct hsrv_config cfg;
	int port;
	unsigned nconns;
	bool listening;
	bool closing;
	struct hconn *conns; /* list, for shutdown */
};

/* Listen on host:port (port 0: ephemeral; srv->port holds the bound port). */
int hsrv_open(struct hsrv *srv, uv_loop_t *loop, const char *host, int port,
    const struct hsrv_config *cfg) SM_MUST_CHECK;
/* Stop listening and close every connection. */
void hsrv_close(struct hsrv *srv);

/* A server without a listener, for connections carried by other transports. */
void
hsrv_init(struct hsrv *srv, uv_loop_t *loop, const struct hsrv_config *cfg);

/*
 * Transports. A connection reads bytes through hconn_input() and writes
 * through its io: TCP sockets here, HTTP/2 tunnel streams in mesh/. close()
 * must end with hconn_free(); a transport reports write completion with
 * hconn_drained() and a dead peer with hconn_abort().
 */
struct hconn_io {
	int (*write)(struct hconn *c, const uv_buf_t *bufs, unsigned n);
	size_t (*queued)(const struct hconn *c);
	void (*read_stop)(struct hconn *c);
	void (*read_start)(struct hconn *c);
	void (*finish)(struct hconn *c); /* response done, no keep-alive */
	void (*close)(struct hconn *c);
};
struct hconn *
hconn_new(struct hsrv *srv, const struct hconn_io *io, void *io_ctx);
void *hconn_io_ctx(const struct hconn *c);
void hconn_input(struct hconn *c, const char *data, size_t len);
void hconn_drained(struct hconn *c);
void hconn_abort(struct hconn *c);
void hconn_free(struct hconn *c);

/* Header lookup by lowercase name; NULL when absent. */
const char *hreq_header(const struct hreq *req, const char *name);

/* Was the request HTTP/1.1 or later (where Host is mandatory)? */
bool hreq_http11(const struct hreq *req);
/* Is 's' an acceptable client-supplied x-request-id (1..64 of
 * [A-Za-z0-9._-])? */
bool hreq_id_valid(const char *s);

/*
 * Response API. hres_send() writes a complete response with a body.
 * hres_begin() writes the status line and headers: content_length >= 0 sends
 * Content-Length, -1 uses chunked encoding. 'extra' holds more header lines,
 * each ending in CRLF, or NULL. Every response also carries x-request-id;
 * a 4xx one that a retry cannot fix (all but 408, 409, 429) carries
 * x-should-retry: false; and one for an allowed cross-origin request
 * (req->cors_origin) carries Access-Control-Allow-Origin and Vary: Origin.
 * Returns 0 or a negative SM_ERR_*.
 */
int hres_send(struct hreq *req, int status, const char *content_type,
    const char *extra, const void *body, size_t len);
int hres_begin(struct hreq *req, int status, const char *content_type,
    const char *extra, int64_t content_length);
int hres_body(struct hreq *req, const void *data, size_t len);
/* Finish the response (terminating chunk); the connection then serves the
 * next request or closes. */
int hres_end(struct hreq *req);
/* Close the connection now: the client sees an incomplete response. */
void hres_abort(struct hreq *req);
/* Bytes of response waiting in the socket's write queue. */
size_t hreq_queued(const struct hreq *req);
/* Send an OpenAI-shaped error: {"error":{"message","type","code"}}. */
int hres_error(struct hreq *req, int status, const char *type, const char *code,
    const char *message, const char *extra);

/* Standard reason phrase. */
const char *http_reason(int status);

#endif
