/*
 * Node-to-node links: TCP -> TLS 1.3 (tls.h) -> join proof -> two HTTP/2
 * sessions -> streams. libuv drives everything; no call here blocks.
 *
 * Wire format (doc/PROTOCOL.md should mirror this). After the TLS handshake
 * (ALPN "sealmesh-link/1") every byte of TLS plaintext is a sequence of
 * chunks:
 *
 *   chan (1 byte) || len (3 bytes, big-endian) || len bytes
 *
 *   chan 0: link control, one message per chunk, len <= LINK_CTL_MAX:
 *           0x01 JOIN || proof (32)          the join proof (join.h)
 *           0x02 DENY || reason (4, BE)      proof refused; link closes
 *   chan 1: an HTTP/2 connection in which the dialer is the client
 *   chan 2: an HTTP/2 connection in which the acceptor is the client
 *
 * The dialer sends JOIN first. The acceptor checks it and answers with its
 * own JOIN, or with DENY and closes. Each side starts its HTTP/2 traffic only
 * after it has checked the peer's proof, and a chunk on chan 1 or 2 before
 * that is a protocol error: no stream reaches the app of a node whose peer
 * has not proved the join secret on this very TLS session.
 *
 * Two HTTP/2 sessions over one TLS connection make streams symmetric: either
 * end opens streams as a plain HTTP/2 client in its own session, so a node
 * behind NAT (it can dial, it cannot be dialed) still serves tunnels over the
 * link it dialed. Each session has its own flow control, RST_STREAM, PING and
 * GOAWAY; the chunk framing costs 4 bytes per HTTP/2 frame and parses
 * nothing of the HTTP/2 bytes.
 *
 * The process must ignore SIGPIPE (serve does): libuv writes to sockets
 * with write(2), and a peer that vanished would otherwise kill the node.
 *
 * Ownership. The library owns links and streams. A link pointer is valid
 * until its on_close callback returns; a stream pointer until its on_close
 * callback returns. Every stream the app saw gets on_close exactly once, also
 * when the link dies. Any call may be made from inside any callback; work
 * that would re-enter HTTP/2 is deferred to the loop.
 *
 * Flow control: each stream's receive window starts at
 * LINK_STREAM_WINDOW_INIT and doubles, up to LINK_STREAM_WINDOW, each time
 * the stream has received a whole window and the app has consumed all of it
 * (a bulk transfer that keeps up); the sender stops once the receiver holds
 * that many bytes it has not lstream_consume()d. A stream that never moves
 * much (a token stream) never reserves more than the initial window. The
 * connection window is credited on arrival, so a stalled stream never blocks
 * its siblings. Memory per link is bounded by LINK_WQ_HIGH (ciphertext in
 * flight) + LSTREAM_SEND_MAX per open stream (body bytes queued by the app)
 * + what the app holds unconsumed.
 *
 * Stream limit and queue: each side advertises SETTINGS_MAX_CONCURRENT_STREAMS
 * = link_opts.max_streams (LINK_MAX_STREAMS by default) + LINK_CTL_STREAMS.
 * lstream_open() never has more outgoing streams open than min(our
 * max_streams, the peer's advertised limit - LINK_CTL_STREAMS): beyond that
 * the stream waits in the link's FIFO queue
 * (at most queue_max streams), and is opened as soon as a stream closes. A
 * stream still queued after queue_timeout_ms gets on_close(SM_ERR_BUSY,
 * LINK_H2_REFUSED_STREAM) without having reached the peer. lstream_write()
 * and lstream_end() work on a queued stream (bytes wait in its send queue).
 * lstream_open_ctl() (gossip, attestation challenges) never queues: it uses
 * the LINK_CTL_STREAMS reserve, so a link full of tunnels still gossips.
 *
 * Relay pattern (forward src -> dst without parsing):
 *   on_data(src, p, n): lstream_write(dst, p, n); held += n;
 *                       if (lstream_queued(dst) <= LSTREAM_LOWAT)
 *                               lstream_consume(src, held), held = 0;
 *   on_drain(dst):      lstream_consume(src, held), held = 0;
 *   on_end(src): lstream_end(dst);  on_close(src, err != 0): lstream_reset(dst)
 * dst then never queues more than LSTREAM_LOWAT + LINK_STREAM_WINDOW bytes.
 */
#ifndef SM_NET_LINK_H
#define SM_NET_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/err.h"
#include "crypto/sign.h"
#include "net/join.h"

#define LINK_DEFAULT_PORT 9338
#define LINK_STREAM_WINDOW_INIT (16 * 1024) /* initial stream window */
#define LINK_STREAM_WINDOW (256 * 1024) /* largest stream window */
#define LINK_CONN_WINDOW (16 * 1024 * 1024) /* per-session receive window */
#define LINK_MAX_STREAMS 32768 /* concurrent, per direction (default) */
#define LINK_MAX_STREAMS_MAX (1u << 20) /* largest --link-streams */
#define LINK_QUEUE_MAX 32768 /* streams waiting per link (default) */
#define LINK_QUEUE_TIMEOUT_MS 10000 /* longest wait in the queue (default) */
#define LINK_QUEUE_BUCKETS 12 /* queue-time histogram buckets (+Inf) */
#define LINK_CTL_STREAMS 16 /* advertised beyond max_streams for control */
#define LINK_WQ_HIGH (256 * 1024) /* ciphertext queued to the socket */
#define LINK_MAX_PREAUTH 64 /* accepted, not yet joined */
#define LINK_HANDSHAKE_TIMEOUT_MS 10000 /* TCP + TLS + join proof */
#define LINK_PING_INTERVAL_MS 1000
#define LINK_PING_TIMEOUT_MS 10000 /* silence that kills a link */
#define LINK_CTL_MAX 64
#define LSTREAM_SEND_MAX (1024 * 1024) /* queued body bytes per stream */
#define LSTREAM_LOWAT (64 * 1024) /* on_drain fires at or below */
#define LSTREAM_MAX_HDRS 32
#define LSTREAM_HDR_BYTES (8 * 1024)

/* DENY reasons (chan 0). */
#define LINK_DENY_PROOF 1

/* HTTP/2 error codes for lstream_reset() (RFC 9113 section 7). */
#define LINK_H2_NO_ERROR 0x0
#define LINK_H2_INTERNAL_ERROR 0x2
#define LINK_H2_REFUSED_STREAM 0x7
#define LINK_H2_CANCEL 0x8
#define LINK_H2_ENHANCE_YOUR_CALM 0xb /* a relay's queue deadline passed */

struct link_ctx;
struct link;
struct link_listener;
struct lstream;

/* One header; both strings NUL-terminated, valid during the callback only. */
struct link_hdr {
	const char *name;
	const char *value;
};

/* An incoming request: valid during on_stream only. */
struct lstream_req {
	const char *method;
	const char *path;
	const struct link_hdr
	    *hdrs; /* regular headers, pseudo-headers removed */
	size_t nhdrs;
};

struct link_cb {
	/* The peer proved the join secret; the link is usable. */
	void (*on_up)(struct link *l, void *arg);
	/*
	 * The peer opened a stream. Return 0 after lstream_set_cb() to take it
	 * (answer later with lstream_respond()), or a negative value to refuse
	 * it (RST_STREAM REFUSED_STREAM; no other stream callback follows).
	 */
	int (*on_stream)(struct link *l, struct lstream *s,
	    const struct lstream_req *req, void *arg);
	/* The peer sent GOAWAY: it is leaving; open streams may finish. */
	void (*on_goaway)(struct link *l, uint32_t h2_error, void *arg);
	/*
	 * The link is gone: 0 after a GOAWAY/link_close(), else SM_ERR_VERIFY
	 * (wrong node id, bad proof), SM_ERR_PERM (peer refused our proof),
	 * SM_ERR_TIMEOUT (handshake or ping), SM_ERR_CLOSED (TCP/TLS closed),
	 * SM_ERR_PROTO, SM_ERR_IO. Streams got their on_close before this.
	 * Dialed links always get it; accepted links only after on_up.
	 */
	void (*on_close)(struct link *l, int reason, void *arg);
};

struct lstream_cb {
	/* Response headers of a stream we opened. */
	void (*on_headers)(struct lstream *s, int status,
	    const struct link_hdr *hdrs, size_t nhdrs, void *arg);
	/* Body bytes. Call lstream_consume() once they are really processed. */
	void (*on_data)(
	    struct lstream *s, const uint8_t *p, size_t n, void *arg);
	/* The peer sent END_STREAM. */
	void (*on_end)(struct lstream *s, void *arg);
	/* lstream_queued() fell to LSTREAM_LOWAT or below after exceeding it.
	 */
	void (*on_drain)(struct lstream *s, void *arg);
	/*
	 * Final: err 0 when both sides ended cleanly, else SM_ERR_CLOSED (reset
	 * by either side: h2_error says why; or the link closed) or the link's
	 * error (SM_ERR_TIMEOUT, ...). The stream is freed when this returns.
	 */
	void (*on_close)(
	    struct lstream *s, int err, uint32_t h2_error, void *arg);
};

/* Tunables; link_ctx_new() fills the defaults above. */
struct link_opts {
	uint32_t handshake_timeout_ms;
	uint32_t ping_interval_ms;
	uint32_t ping_timeout_ms;
	/* Concurrent streams per direction, 1..LINK_MAX_STREAMS_MAX. */
	uint32_t max_streams;
	uint32_t queue_max; /* streams waiting per link; 0: the default */
	uint32_t queue_timeout_ms; /* 0: the default */
	/* Renew the TLS link key before a new link once fewer than this many
	 * seconds of its certified life remain (0: TLS_LINKCERT_LIFETIME_S / 2;
	 * above TLS_LINKCERT_LIFETIME_S: before every link, for tests). */
	uint32_t key_renew_s;
};

/* Upper bounds (ms) of the queue-time histogram's buckets; the last, +Inf. */
extern const double link_queue_bounds_ms[LINK_QUEUE_BUCKETS - 1];

struct link_stats {
	uint64_t accepted; /* TCP connections accepted */
	/* Closed before coming up: bad id or proof, timeout, TLS, connect. */
	uint64_t refused;
	uint64_t up; /* links that reached on_up */
	uint64_t key_renewals; /* fresh TLS link keys after the first */
	/* The stream queue, over all links. */
	uint64_t queued_now; /* streams waiting now */
	uint64_t queue_full; /* lstream_open() refused: queue at queue_max */
	uint64_t queue_timeouts; /* waited queue_timeout_ms: SM_ERR_BUSY */
	/* Time from lstream_open() to leaving the queue (opened, timed out or
	 * cancelled), for streams that had to wait: non-cumulative counts. */
	uint64_t queue_hist[LINK_QUEUE_BUCKETS];
	double queue_sum_s;
	uint64_t queue_count;
};

/*
 * Per-node state shared by all links: the TLS context for identity 'id' and a
 * copy of the join secret (sodium_malloc'd, wiped by link_ctx_free()). 'id'
 * (held or delegated) is kept, not copied, and must outlive the context: it
 * certifies a fresh TLS link key whenever the current one is past half its
 * lifetime (tls.h TLS_LINKCERT_LIFETIME_S; opts->key_renew_s), checked as
 * links are made. The
 * identity key itself never enters the TLS stack. 'opts' may be
 * NULL. Returns 0 or SM_ERR_INVAL (secret length outside
 * [JOIN_SECRET_MIN, JOIN_SECRET_MAX]), SM_ERR_NOMEM, SM_ERR_INTERNAL.
 */
int link_ctx_new(struct link_ctx **out, const struct identity *id,
    const uint8_t *join_secret, size_t join_secret_len,
    const struct link_opts *opts) SM_MUST_CHECK;
/* Free; every link and listener made from it must already be closed. */
void link_ctx_free(struct link_ctx *c);
/* Replace the proof computation (default join_proof()). For tests/mesh. */
void link_ctx_set_proof(struct link_ctx *c, join_proof_fn fn, void *arg);
void link_ctx_stats(const struct link_ctx *c, struct link_stats *out);

/*
 * Listen on 'bind_addr' (numeric IPv4/IPv6; NULL = "0.0.0.0") and 'port'
 * (0 = ephemeral); '*bound_port' gets the port. Each accepted link that comes
 * up is reported with cb->on_up(l, arg) and uses 'cb'/'arg' (copied) until
 * link_set_cb(). Returns 0 or SM_ERR_INVAL, SM_ERR_IO (logged), SM_ERR_NOMEM.
 */
int link_listen(struct link_ctx *c, uv_loop_t *loop, const char *bind_addr,
    uint16_t port, const struct link_cb *cb, void *arg,
    struct link_listener **out, uint16_t *bound_port) SM_MUST_CHECK;
/* Stop listening and free (asynchronously); accepted links live on. */
void link_listener_close(struct link_listener *ls);

/*
 * Dial 'host' (numeric address or name) at 'port' and require the peer's
 * key to be 'expect' (ID_PK_LEN bytes). Everything (resolve, TCP, TLS, join)
 * must finish within the handshake timeout. The link exists from now on:
 * cb->on_close fires exactly once, after on_up or instead of it. Streams may
 * be opened before on_up; they start once it is up. Returns 0 or
 * SM_ERR_INVAL / SM_ERR_NOMEM (then no callback fires).
 */
int link_dial(struct link_ctx *c, uv_loop_t *loop, const char *host,
    uint16_t port, const uint8_t *expect, const struct link_cb *cb, void *arg,
    struct link **out) SM_MUST_CHECK;

/* Replace the callbacks and their argument ('cb' is copied). */
void link_set_cb(struct link *l, const struct link_cb *cb, void *arg);
/* The peer's Ed25519 key (the expected one until the handshake is done). */
const uint8_t *link_peer_id(const struct link *l);
/* True when we dialed this link. */
bool link_is_dialer(const struct link *l);
/* True between on_up and the start of closing. */
bool link_is_up(const struct link *l);
/* Last PING round-trip in milliseconds, or -1 before the first answer. */
double link_rtt_ms(const struct link *l);
/* Streams open on this link (both directions). */
size_t link_nstreams(const struct link *l);
/*
 * GOAWAY: this node is leaving. No new streams either way; open ones may
 * finish; the link closes (on_close reason 0) when none is left.
 */
void link_goaway(struct link *l);
/*
 * Close now: a GOAWAY goes out (the peer sees on_goaway, then on_close 0),
 * open streams get on_close(SM_ERR_CLOSED), then on_close(l, 0). Queued
 * ciphertext gets up to 1 s to flush (TLS close_notify) before the socket
 * closes.
 */
void link_close(struct link *l);
/* Close now without flushing (TCP RST); as if the process died. */
void link_abort(struct link *l);

/*
 * Open a stream to the peer: HEADERS with 'method', 'path' and 'hdrs' (names
 * must be lowercase). Body: lstream_write()/lstream_end(). '*out' is valid
 * until cb->on_close returns. At the stream limit the stream waits in the
 * link's queue (see above). Returns 0, SM_ERR_CLOSED (link closing or the
 * peer sent GOAWAY), SM_ERR_INVAL, SM_ERR_NOMEM, SM_ERR_UNAVAIL (no stream
 * ids left), SM_ERR_BUSY (at the stream limit and the queue is full).
 */
int lstream_open(struct link *l, const char *method, const char *path,
    const struct link_hdr *hdrs, size_t nhdrs, const struct lstream_cb *cb,
    void *arg, struct lstream **out) SM_MUST_CHECK;
/* The same for a control stream: not counted against max_streams, never
 * queued (see above). */
int lstream_open_ctl(struct link *l, const char *method, const char *path,
    const struct link_hdr *hdrs, size_t nhdrs, const struct lstream_cb *cb,
    void *arg, struct lstream **out) SM_MUST_CHECK;
/* Set the callbacks of an incoming stream (in on_stream). */
void lstream_set_cb(struct lstream *s, const struct lstream_cb *cb, void *arg);
/* Answer an incoming stream once. SM_ERR_INVAL on an outgoing stream. */
int lstream_respond(struct lstream *s, int status, const struct link_hdr *hdrs,
    size_t nhdrs) SM_MUST_CHECK;
/*
 * Queue 'n' body bytes (copied). All or nothing: SM_ERR_TOOBIG when the
 * queue would exceed LSTREAM_SEND_MAX, SM_ERR_CLOSED after end/reset/close.
 */
int lstream_write(struct lstream *s, const void *p, size_t n) SM_MUST_CHECK;
/* Body bytes queued and not yet handed to HTTP/2. */
size_t lstream_queued(const struct lstream *s);
/* END_STREAM after the queued bytes. */
int lstream_end(struct lstream *s);
/* RST_STREAM with 'h2_error'; on_close follows from the loop. */
void lstream_reset(struct lstream *s, uint32_t h2_error);
/* 'n' received bytes are processed: reopen that much window. */
void lstream_consume(struct lstream *s, size_t n);
/* Received bytes not yet consumed. */
size_t lstream_unconsumed(const struct lstream *s);
struct link *lstream_link(const struct lstream *s);
/* True when we opened it (we are the HTTP/2 client of this stream). */
bool lstream_is_outgoing(const struct lstream *s);

#endif
