/*
 * loadgen: a small HTTP/1.1 load driver for `make bench`. A BENCHMARK TOOL,
 * never part of the product.
 *
 * usage: loadgen --url http://127.0.0.1:PORT/v1/chat/completions
 *                [--concurrency C] [--duration S | --requests N]
 *                [--tokens T] [--delay-ms D] [--stream | --no-stream]
 *                [--body-bytes B] [--model NAME] [--ready-file PATH] [--json]
 *
 * One libuv loop, one thread. C connections each send chat requests back to
 * back: keep-alive where the server allows it, a new connection when it
 * closes. The body carries {"mock":{"tokens":T,"delay_ms":D}} so the mock
 * backend (tests/fixtures/mock_backend.c) paces its answer.
 *
 * Per request: TTFB is "request handed to the socket" -> first body byte
 * (non-stream) or first complete SSE "data:" event that is not [DONE]
 * (stream); total is "request handed to the socket" -> last byte of the
 * response. Tokens are SSE data events other than [DONE] (the mock sends T
 * content events plus one finish event), or T per non-streamed answer.
 * Errors: connect failures, non-200 answers, parse errors, streams cut
 * before [DONE] or before the end of the body.
 *
 * With --duration no request starts after S seconds; requests in flight then
 * are let finish and counted. With --requests exactly N requests are started.
 * Either way the run stops after LG_HARD_CAP_S seconds, cutting what is left.
 * --ready-file PATH: the file is created once all C requests are streaming
 * at the same time (each has had its first event and not yet ended), so a
 * script may sample memory with C live streams.
 *
 * Only loopback targets are accepted (127.0.0.0/8, ::1, localhost): this
 * tool is not for load-testing other people's hosts.
 *
 * Output: one JSON object on stdout (requests, errors, rps, ttfb_p50_ms,
 * ttfb_p99_ms, total_p50_ms, tokens_per_s, duration_s, and a few more).
 * Percentiles are nearest-rank over the sorted samples of all successful
 * requests.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <uv.h>

#include "http/parse.h"

/* Also bounded by the open files limit, raised to its hard cap. */
#define LG_MAX_CONNS 65536
#define LG_HARD_CAP_S 120
#define LG_MAX_DURATION_S 55
#define LG_MAX_REQUESTS 10000000
#define LG_MAX_BODY_BYTES (16u << 20) /* room for 8 MiB prompts */
#define LG_HDR_MAX (64 * 1024)
#define LG_READ_LEN (64 * 1024)
#define LG_RETRY_MS 20
#define LG_LINE_KEEP 16 /* bytes of each SSE line kept to classify it */

enum lg_state {
	ST_DOWN, /* no socket; waiting for the retry timer */
	ST_CONNECTING, /* uv_tcp_connect pending */
	ST_IDLE, /* connected, nothing in flight */
	ST_BUSY, /* a request in flight */
	ST_CLOSING, /* uv_close pending */
	ST_DONE, /* closed for good */
};

struct lg_conn {
	uv_tcp_t tcp;
	uv_connect_t creq;
	uv_write_t wreq;
	struct hparse hp;
	bool hp_live;
	enum lg_state state;
	/* The request in flight. */
	uint64_t t_sent, t_first;
	uint64_t events;
	int status;
	bool got_first;
	bool got_done_event; /* SSE [DONE] */
	bool msg_done; /* llhttp saw the end of the message */
	bool keep_alive;
	bool streaming; /* counted in lg.nstreaming */
	bool writing; /* wreq in use */
	bool backoff; /* reconnect on the retry timer, not at once */
	char line[LG_LINE_KEEP];
	size_t linelen; /* whole length of the current line so far */
};

struct lg_samples {
	double *v;
	size_t n, cap;
};

static struct {
	uv_loop_t *loop;
	uv_timer_t deadline, hardcap, retry;
	uv_signal_t sigint, sigterm;
	/* options */
	struct sockaddr_storage addr;
	char host[64];
	int port;
	char path[512];
	unsigned conc;
	double duration_s; /* 0: use nreq */
	uint64_t nreq;
	uint64_t tokens, delay_ms;
	bool stream;
	size_t body_bytes;
	const char *model;
	const char *ready_file;
	bool json;
	/* state */
	char *req;
	size_t req_len;
	struct lg_conn *conns;
	bool stopping; /* start no new request */
	bool truncated;
	bool ready_written;
	bool handles_closed;
	unsigned nstreaming;
	unsigned max_streaming;
	uint64_t started;
	uint64_t ok, errors, err_connect, err_status, err_cut, err_parse;
	uint64_t events;
	uint64_t reconnects;
	uint64_t t_start, t_last;
	struct lg_samples ttfb, total;
} lg;

static char lg_rbuf[LG_READ_LEN];

static void conn_connect(struct lg_conn *c);
static void conn_close(struct lg_conn *c);
static void conn_next(struct lg_conn *c);

/* ---- samples ---- */

static int
samples_add(struct lg_samples *s, double v)
{
	double *p;
	size_t ncap;

	if (s->n == s->cap) {
		ncap = s->cap ? s->cap * 2 : 1024;
		if (ncap > LG_MAX_REQUESTS)
			return -1;
		if ((p = realloc(s->v, ncap * sizeof(*p))) == NULL)
			return -1;
		s->v = p;
		s->cap = ncap;
	}
	s->v[s->n++] = v;
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted sample set; 0 when empty. */
static double
samples_pct(const struct lg_samples *s, double q)
{
	size_t k;

	if (s->n == 0)
		return 0;
	k = (size_t)ceil(q * (double)s->n);
	if (k < 1)
		k = 1;
	if (k > s->n)
		k = s->n;
	return s->v[k - 1];
}

static double
samples_mean(const struct lg_samples *s)
{
	double sum = 0;

	for (size_t i = 0; i < s->n; i++)
		sum += s->v[i];
	return s->n ? sum / (double)s->n : 0;
}

/* ---- ending the run ---- */

static bool
all_closed(void)
{
	for (unsigned i = 0; i < lg.conc; i++)
		if (lg.conns[i].state != ST_DONE)
			return false;
	return true;
}

static void
finish_if_idle(void)
{
	if (!lg.stopping || lg.handles_closed || !all_closed())
		return;
	lg.handles_closed = true;
	uv_timer_stop(&lg.deadline);
	uv_timer_stop(&lg.hardcap);
	uv_timer_stop(&lg.retry);
	uv_close((uv_handle_t *)&lg.deadline, NULL);
	uv_close((uv_handle_t *)&lg.hardcap, NULL);
	uv_close((uv_handle_t *)&lg.retry, NULL);
	uv_close((uv_handle_t *)&lg.sigint, NULL);
	uv_close((uv_handle_t *)&lg.sigterm, NULL);
}

/* No new requests; idle connections close now, busy ones after their answer. */
static void
stop_issuing(void)
{
	lg.stopping = true;
	for (unsigned i = 0; i < lg.conc; i++) {
		struct lg_conn *c = &lg.conns[i];

		if (c->state == ST_IDLE || c->state == ST_DOWN)
			conn_close(c);
	}
	finish_if_idle();
}

/* Cut everything, in flight included (hard cap, signal). */
static void
stop_now(void)
{
	lg.stopping = true;
	for (unsigned i = 0; i < lg.conc; i++) {
		struct lg_conn *c = &lg.conns[i];

		if (c->state == ST_BUSY) {
			lg.truncated = true;
			if (c->streaming) {
				c->streaming = false;
				lg.nstreaming--;
			}
		}
		conn_close(c);
	}
	finish_if_idle();
}

static void
on_deadline(uv_timer_t *t)
{
	stop_issuing();
}

static void
on_hardcap(uv_timer_t *t)
{
	fprintf(stderr, "loadgen: hard cap of %d s reached, cutting\n",
	    LG_HARD_CAP_S);
	stop_now();
}

static void
on_signal(uv_signal_t *s, int signum)
{
	stop_now();
}

/* ---- per-request accounting ---- */

static void
streaming_set(struct lg_conn *c, bool on)
{
	int fd;

	if (c->streaming == on)
		return;
	c->streaming = on;
	if (!on) {
		lg.nstreaming--;
		return;
	}
	lg.nstreaming++;
	if (lg.nstreaming > lg.max_streaming)
		lg.max_streaming = lg.nstreaming;
	if (lg.ready_file != NULL && !lg.ready_written &&
	    lg.nstreaming >= lg.conc) {
		lg.ready_written = true;
		fd = open(lg.ready_file,
		    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0)
			close(fd);
		else
			fprintf(stderr, "loadgen: %s: %s\n", lg.ready_file,
			    strerror(errno));
	}
}

static void
req_error(struct lg_conn *c, uint64_t *kind)
{
	lg.errors++;
	(*kind)++;
	streaming_set(c, false);
}

/* The response ended well: record it. */
static void
req_ok(struct lg_conn *c, uint64_t now)
{
	double ttfb, total;

	streaming_set(c, false);
	if (c->status != 200) {
		req_error(c, &lg.err_status);
		return;
	}
	if (lg.stream && !c->got_done_event) {
		req_error(c, &lg.err_cut);
		return;
	}
	if (!c->got_first)
		c->t_first = now;
	ttfb = (double)(c->t_first - c->t_sent) / 1e6;
	total = (double)(now - c->t_sent) / 1e6;
	if (samples_add(&lg.ttfb, ttfb) != 0 ||
	    samples_add(&lg.total, total) != 0) {
		req_error(c, &lg.err_parse);
		return;
	}
	lg.ok++;
	lg.events += lg.stream ? c->events : lg.tokens;
	if (now > lg.t_last)
		lg.t_last = now;
}

/* ---- SSE scanning ---- */

static void
sse_line_end(struct lg_conn *c, uint64_t now)
{
	size_t n = c->linelen < LG_LINE_KEEP ? c->linelen : LG_LINE_KEEP;
	size_t len = c->linelen;
	const char *p = c->line;

	if (len > 0 && len <= LG_LINE_KEEP && p[len - 1] == '\r')
		len--;
	if (n < 5 || memcmp(p, "data:", 5) != 0)
		return;
	p += 5;
	len -= 5;
	if (len > 0 && *p == ' ') {
		p++;
		len--;
	}
	if (len == 6 && memcmp(p, "[DONE]", 6) == 0) {
		c->got_done_event = true;
		return;
	}
	c->events++;
	if (!c->got_first) {
		c->got_first = true;
		c->t_first = now;
		streaming_set(c, true);
	}
}

static void
sse_scan(struct lg_conn *c, const char *at, size_t len, uint64_t now)
{
	const char *nl;
	size_t seg, keep;

	while (len > 0) {
		nl = memchr(at, '\n', len);
		seg = nl ? (size_t)(nl - at) : len;
		if (c->linelen < LG_LINE_KEEP) {
			keep = LG_LINE_KEEP - c->linelen;
			if (keep > seg)
				keep = seg;
			memcpy(c->line + c->linelen, at, keep);
		}
		c->linelen += seg;
		if (nl == NULL)
			return;
		sse_line_end(c, now);
		c->linelen = 0;
		at = nl + 1;
		len -= seg + 1;
	}
}

/* ---- parser callbacks ---- */

static uint64_t lg_now; /* time of the read being parsed */

static int
on_head(struct hparse *hp, void *user)
{
	struct lg_conn *c = user;

	c->status = hp->status;
	return 0;
}

static int
on_body(struct hparse *hp, void *user, const char *at, size_t len)
{
	struct lg_conn *c = user;

	if (lg.stream) {
		sse_scan(c, at, len, lg_now);
	} else if (!c->got_first && len > 0) {
		c->got_first = true;
		c->t_first = lg_now;
	}
	return 0;
}

static int
on_done(struct hparse *hp, void *user)
{
	struct lg_conn *c = user;

	c->msg_done = true;
	c->keep_alive = hp->keep_alive;
	return HPE_PAUSED;
}

static const struct hparse_cbs lg_cbs = {
    .on_head = on_head,
    .on_body = on_body,
    .on_done = on_done,
};

/* ---- connections ---- */

static void
on_closed(uv_handle_t *h)
{
	struct lg_conn *c = h->data;

	if (c->hp_live) {
		hparse_clear(&c->hp);
		c->hp_live = false;
	}
	if (lg.stopping) {
		c->state = ST_DONE;
		finish_if_idle();
		return;
	}
	c->state = ST_DOWN;
	if (!c->backoff)
		conn_connect(c); /* the server closed: reconnect at once */
}

static void
conn_close(struct lg_conn *c)
{
	switch (c->state) {
	case ST_DOWN:
		c->state = ST_DONE;
		return;
	case ST_CONNECTING:
	case ST_IDLE:
	case ST_BUSY:
		c->state = ST_CLOSING;
		uv_close((uv_handle_t *)&c->tcp, on_closed);
		return;
	default:
		return;
	}
}

/* The response is complete (or cut): go on with this connection. */
static void
req_end(struct lg_conn *c, uint64_t now)
{
	bool ka = c->keep_alive;

	req_ok(c, now);
	c->state = ST_IDLE;
	if (!ka || c->writing) {
		lg.reconnects++;
		conn_close(c);
		return;
	}
	conn_next(c);
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	*b = uv_buf_init(lg_rbuf, sizeof(lg_rbuf));
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct lg_conn *c = s->data;
	enum llhttp_errno err;
	size_t used;

	if (nread == 0)
		return;
	lg_now = uv_hrtime();
	if (nread < 0) {
		if (c->state == ST_BUSY) {
			/* A close-delimited body ends here; else it was cut. */
			c->msg_done = false;
			err = hparse_finish(&c->hp);
			if ((err == HPE_OK || err == HPE_PAUSED) &&
			    c->msg_done) {
				c->keep_alive = false;
				req_end(c, lg_now);
				return;
			}
			req_error(c, &lg.err_cut);
			lg.reconnects++;
		}
		conn_close(c);
		return;
	}
	if (c->state != ST_BUSY) {
		/* Bytes nobody asked for. */
		req_error(c, &lg.err_parse);
		conn_close(c);
		return;
	}
	err = hparse_feed(&c->hp, b->base, (size_t)nread, &used);
	if (err == HPE_PAUSED && c->msg_done) {
		hparse_resume(&c->hp);
		if (used < (size_t)nread)
			c->keep_alive = false; /* trailing junk: start afresh */
		req_end(c, lg_now);
		return;
	}
	if (err != HPE_OK) {
		req_error(c, &lg.err_parse);
		conn_close(c);
	}
}

static void
on_written(uv_write_t *w, int status)
{
	struct lg_conn *c = w->data;

	c->writing = false;
	if (status < 0 && c->state == ST_BUSY) {
		req_error(c, &lg.err_cut);
		conn_close(c);
	}
}

/* Send the next request on an idle connection, or close when done. */
static void
conn_next(struct lg_conn *c)
{
	uv_buf_t ub;

	if (c->state != ST_IDLE)
		return;
	if (!lg.stopping && lg.duration_s == 0 && lg.started >= lg.nreq)
		stop_issuing(); /* closes 'c' too: it is idle */
	if (lg.stopping) {
		conn_close(c);
		return;
	}
	lg.started++;
	c->state = ST_BUSY;
	c->status = 0;
	c->events = 0;
	c->got_first = c->got_done_event = c->msg_done = false;
	c->keep_alive = true;
	c->linelen = 0;
	c->wreq.data = c;
	ub = uv_buf_init(lg.req, (unsigned)lg.req_len);
	c->t_sent = uv_hrtime();
	if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &ub, 1, on_written) !=
	    0) {
		req_error(c, &lg.err_cut);
		conn_close(c);
		return;
	}
	c->writing = true;
}

static void
on_connect(uv_connect_t *req, int status)
{
	struct lg_conn *c = req->data;

	if (c->state != ST_CONNECTING)
		return; /* closed meanwhile */
	if (status < 0) {
		lg.errors++;
		lg.err_connect++;
		c->backoff = true;
		conn_close(c);
		return;
	}
	c->backoff = false;
	uv_tcp_nodelay(&c->tcp, 1);
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
		lg.errors++;
		lg.err_connect++;
		conn_close(c);
		return;
	}
	hparse_init(&c->hp, HTTP_RESPONSE, LG_HDR_MAX, &lg_cbs, c);
	c->hp_live = true;
	c->state = ST_IDLE;
	conn_next(c);
}

static void
conn_connect(struct lg_conn *c)
{
	if (lg.stopping) {
		c->state = ST_DONE;
		finish_if_idle();
		return;
	}
	if (uv_tcp_init(lg.loop, &c->tcp) != 0) {
		lg.errors++;
		lg.err_connect++;
		c->state = ST_DOWN;
		return;
	}
	c->tcp.data = c;
	c->creq.data = c;
	c->writing = false;
	c->state = ST_CONNECTING;
	if (uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&lg.addr,
		on_connect) != 0) {
		lg.errors++;
		lg.err_connect++;
		c->backoff = true;
		c->state = ST_CLOSING;
		uv_close((uv_handle_t *)&c->tcp, on_closed);
	}
}

/* Reconnect every closed connection, now and then. */
static void
on_retry(uv_timer_t *t)
{
	for (unsigned i = 0; i < lg.conc; i++)
		if (lg.conns[i].state == ST_DOWN)
			conn_connect(&lg.conns[i]);
}

/* ---- setup ---- */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen --url http://127.0.0.1:PORT/PATH [--concurrency "
	    "C]\n"
	    "               [--duration S | --requests N] [--tokens T]\n"
	    "               [--delay-ms D] [--stream | --no-stream]\n"
	    "               [--body-bytes B] [--model NAME]\n"
	    "               [--ready-file PATH] [--json]\n");
	exit(2);
}

static uint64_t
num_arg(const char *opt, const char *val, uint64_t max)
{
	char *end;
	unsigned long long v;

	if (val == NULL)
		usage();
	errno = 0;
	v = strtoull(val, &end, 10);
	if (errno != 0 || end == val || *end != '\0' || v > max) {
		fprintf(stderr, "loadgen: %s: bad value '%s'\n", opt, val);
		exit(2);
	}
	return v;
}

/* Accept http://HOST:PORT/PATH with a loopback HOST only. */
static int
parse_url(const char *url)
{
	const char *p, *hs, *he, *ps;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&lg.addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&lg.addr;
	size_t hl;
	char port[8];

	if (strncmp(url, "http://", 7) != 0) {
		fprintf(stderr, "loadgen: only http:// URLs\n");
		return -1;
	}
	p = url + 7;
	if (*p == '[') {
		hs = p + 1;
		if ((he = strchr(hs, ']')) == NULL)
			return -1;
		p = he + 1;
	} else {
		hs = p;
		he = p + strcspn(p, ":/");
		p = he;
	}
	hl = (size_t)(he - hs);
	if (hl == 0 || hl >= sizeof(lg.host))
		return -1;
	memcpy(lg.host, hs, hl);
	lg.host[hl] = '\0';
	if (*p != ':')
		return -1;
	p++;
	ps = p + strcspn(p, "/");
	if (ps == p || (size_t)(ps - p) >= sizeof(port))
		return -1;
	memcpy(port, p, (size_t)(ps - p));
	port[ps - p] = '\0';
	lg.port = (int)num_arg("port", port, 65535);
	if (lg.port == 0)
		return -1;
	if (*ps == '\0')
		ps = "/";
	if (strlen(ps) >= sizeof(lg.path) || strpbrk(ps, " \r\n\t") != NULL)
		return -1;
	strcpy(lg.path, ps);

	memset(&lg.addr, 0, sizeof(lg.addr));
	if (strcmp(lg.host, "localhost") == 0)
		strcpy(lg.host, "127.0.0.1");
	if (inet_pton(AF_INET, lg.host, &a4->sin_addr) == 1) {
		if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127)
			goto refuse;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)lg.port);
		return 0;
	}
	if (inet_pton(AF_INET6, lg.host, &a6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
			goto refuse;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)lg.port);
		return 0;
	}
refuse:
	fprintf(stderr, "loadgen: refusing non-loopback host '%s'\n", lg.host);
	return -1;
}

/* The one request every connection sends. */
static int
build_request(void)
{
	static const char pre[] = "hello";
	char *body = NULL, *pad = NULL;
	size_t padn = 0;
	int n, bn, r = -1;

	/* Size the prompt so the whole body is about body_bytes long. */
	for (int pass = 0; pass < 2; pass++) {
		free(body);
		body = NULL;
		free(pad);
		if ((pad = malloc(padn + 1)) == NULL)
			goto out;
		memset(pad, 'x', padn);
		pad[padn] = '\0';
		bn = asprintf(&body,
		    "{\"model\":\"%s\",\"stream\":%s,\"messages\":[{\"role\":"
		    "\"user\",\"content\":\"%s%s\"}],\"mock\":{\"tokens\":"
		    "%" PRIu64 ",\"delay_ms\":%" PRIu64 "}}",
		    lg.model, lg.stream ? "true" : "false", pre, pad, lg.tokens,
		    lg.delay_ms);
		if (bn < 0) {
			body = NULL;
			goto out;
		}
		if ((size_t)bn >= lg.body_bytes)
			break;
		padn = lg.body_bytes - (size_t)bn;
	}
	n = asprintf(&lg.req,
	    "POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
	    "Content-Type: application/json\r\nAccept: %s\r\n"
	    "Content-Length: %zu\r\n\r\n%s",
	    lg.path, lg.host, lg.port,
	    lg.stream ? "text/event-stream" : "application/json", strlen(body),
	    body);
	if (n < 0) {
		lg.req = NULL;
		goto out;
	}
	lg.req_len = (size_t)n;
	r = 0;
out:
	free(body);
	free(pad);
	return r;
}

static void
print_result(double dur)
{
	double rps = dur > 0 ? (double)lg.ok / dur : 0;
	double tps = dur > 0 ? (double)lg.events / dur : 0;

	qsort(lg.ttfb.v, lg.ttfb.n, sizeof(double), cmp_double);
	qsort(lg.total.v, lg.total.n, sizeof(double), cmp_double);
	if (lg.json) {
		printf("{\"requests\":%" PRIu64 ",\"errors\":%" PRIu64
		       ",\"rps\":%.2f,\"ttfb_p50_ms\":%.3f,\"ttfb_p99_ms\":%.3f"
		       ",\"ttfb_mean_ms\":%.3f,\"total_p50_ms\":%.3f"
		       ",\"total_p99_ms\":%.3f,\"tokens\":%" PRIu64
		       ",\"tokens_per_s\":%.1f,\"duration_s\":%.3f"
		       ",\"concurrency\":%u,\"stream\":%s,\"max_streaming\":%u"
		       ",\"reconnects\":%" PRIu64 ",\"err_connect\":%" PRIu64
		       ",\"err_status\":%" PRIu64 ",\"err_cut\":%" PRIu64
		       ",\"err_parse\":%" PRIu64 ",\"truncated\":%s}\n",
		    lg.ok, lg.errors, rps, samples_pct(&lg.ttfb, 0.50),
		    samples_pct(&lg.ttfb, 0.99), samples_mean(&lg.ttfb),
		    samples_pct(&lg.total, 0.50), samples_pct(&lg.total, 0.99),
		    lg.events, tps, dur, lg.conc, lg.stream ? "true" : "false",
		    lg.max_streaming, lg.reconnects, lg.err_connect,
		    lg.err_status, lg.err_cut, lg.err_parse,
		    lg.truncated ? "true" : "false");
	} else {
		printf(
		    "requests %" PRIu64 " errors %" PRIu64
		    " rps %.1f ttfb p50 %.3f ms p99 %.3f ms total p50 %.3f ms"
		    " tokens/s %.1f duration %.2f s\n",
		    lg.ok, lg.errors, rps, samples_pct(&lg.ttfb, 0.50),
		    samples_pct(&lg.ttfb, 0.99), samples_pct(&lg.total, 0.50),
		    tps, dur);
	}
}

int
main(int argc, char **argv)
{
	const char *url = NULL;
	struct rlimit rl;
	double dur;

	lg.conc = 1;
	lg.tokens = 16;
	lg.stream = true;
	lg.model = "m";
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i],
			   *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(opt, "--url") == 0 && val != NULL)
			url = argv[++i];
		else if (strcmp(opt, "--concurrency") == 0)
			lg.conc =
			    (unsigned)num_arg(opt, argv[++i], LG_MAX_CONNS);
		else if (strcmp(opt, "--duration") == 0)
			lg.duration_s =
			    (double)num_arg(opt, argv[++i], LG_MAX_DURATION_S);
		else if (strcmp(opt, "--requests") == 0)
			lg.nreq = num_arg(opt, argv[++i], LG_MAX_REQUESTS);
		else if (strcmp(opt, "--tokens") == 0)
			lg.tokens = num_arg(opt, argv[++i], 1000000);
		else if (strcmp(opt, "--delay-ms") == 0)
			lg.delay_ms = num_arg(opt, argv[++i], 60000);
		else if (strcmp(opt, "--body-bytes") == 0)
			lg.body_bytes =
			    (size_t)num_arg(opt, argv[++i], LG_MAX_BODY_BYTES);
		else if (strcmp(opt, "--model") == 0 && val != NULL &&
		    strpbrk(val, "\"\\") == NULL)
			lg.model = argv[++i];
		else if (strcmp(opt, "--ready-file") == 0 && val != NULL)
			lg.ready_file = argv[++i];
		else if (strcmp(opt, "--stream") == 0)
			lg.stream = true;
		else if (strcmp(opt, "--no-stream") == 0)
			lg.stream = false;
		else if (strcmp(opt, "--json") == 0)
			lg.json = true;
		else
			usage();
	}
	if (url == NULL || lg.conc == 0 ||
	    (lg.duration_s == 0) == (lg.nreq == 0))
		usage();
	if (parse_url(url) != 0) {
		fprintf(stderr, "loadgen: bad or refused URL '%s'\n", url);
		return 2;
	}
	if (lg.duration_s == 0 && lg.nreq < lg.conc)
		lg.conc = (unsigned)lg.nreq;
	/* One descriptor per connection: as many as the hard limit allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && lg.conc + 64 > rl.rlim_cur)
		fprintf(stderr,
		    "loadgen: warning: %u connections, open files limit %llu\n",
		    lg.conc, (unsigned long long)rl.rlim_cur);
	if (build_request() != 0 ||
	    (lg.conns = calloc(lg.conc, sizeof(*lg.conns))) == NULL) {
		fprintf(stderr, "loadgen: out of memory\n");
		return 1;
	}

	lg.loop = uv_default_loop();
	uv_timer_init(lg.loop, &lg.deadline);
	uv_timer_init(lg.loop, &lg.hardcap);
	uv_timer_init(lg.loop, &lg.retry);
	uv_signal_init(lg.loop, &lg.sigint);
	uv_signal_init(lg.loop, &lg.sigterm);
	uv_signal_start(&lg.sigint, on_signal, SIGINT);
	uv_signal_start(&lg.sigterm, on_signal, SIGTERM);
	uv_timer_start(&lg.hardcap, on_hardcap, LG_HARD_CAP_S * 1000, 0);
	if (lg.duration_s > 0)
		uv_timer_start(&lg.deadline, on_deadline,
		    (uint64_t)(lg.duration_s * 1000), 0);
	uv_timer_start(&lg.retry, on_retry, LG_RETRY_MS, LG_RETRY_MS);

	lg.t_start = uv_hrtime();
	for (unsigned i = 0; i < lg.conc; i++)
		conn_connect(&lg.conns[i]);
	uv_run(lg.loop, UV_RUN_DEFAULT);

	dur =
	    lg.t_last > lg.t_start ? (double)(lg.t_last - lg.t_start) / 1e9 : 0;
	print_result(dur);
	uv_loop_close(lg.loop);
	free(lg.conns);
	free(lg.req);
	free(lg.ttfb.v);
	free(lg.total.v);
	return lg.ok > 0 ? 0 : 1;
}
