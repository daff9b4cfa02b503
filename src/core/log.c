#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"

static enum log_format log_fmt = LOG_PRETTY;
static enum log_level log_min = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void
log_setup(enum log_format fmt, enum log_level min)
{
	log_fmt = fmt;
	log_min = min;
}

int
log_format_parse(const char *s, enum log_format *out)
{
	if (strcmp(s, "pretty") == 0)
		*out = LOG_PRETTY;
	else if (strcmp(s, "json") == 0)
		*out = LOG_JSON;
	else
		return SM_ERR_INVAL;
	return 0;
}

static void
timestamp(char *out, size_t len)
{
	struct timeval tv;
	struct tm tm;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (long)(tv.tv_usec / 1000));
}

/* A log line is built in memory and written with one write(2). */
struct line {
	char b[2048];
	size_t n;
};

static void
put(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(struct line *l, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (l->n >= sizeof(l->b))
		return;
	va_start(ap, fmt);
	n = vsnprintf(l->b + l->n, sizeof(l->b) - l->n, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->n += (size_t)n < sizeof(l->b) - l->n
		    ? (size_t)n
		    : sizeof(l->b) - l->n - 1;
}

/* Append 's' as the inside of a JSON string. */
static void
put_json(struct line *l, const char *s)
{
	for (; *s != '\0' && l->n + 7 < sizeof(l->b); s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			l->b[l->n++] = '\\';
			l->b[l->n++] = (char)c;
		} else if (c < 0x20) {
			l->n += (size_t)snprintf(l->b + l->n, 7, "\\u%04x", c);
		} else {
			l->b[l->n++] = (char)c;
		}
	}
}

static void
emit(struct line *l)
{
	if (l->n >= sizeof(l->b) - 1)
		l->n = sizeof(l->b) - 2; /* truncated: keep the newline */
	l->b[l->n++] = '\n';
	if (write(STDERR_FILENO, l->b, l->n) < 0) {
		/* nowhere to report it */
	}
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	char ts[64], msg[1024];
	struct line l = {.n = 0};
	va_list ap;

	if (lvl < log_min)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	timestamp(ts, sizeof(ts));
	if (log_fmt == LOG_JSON) {
		put(&l, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
		    level_names[lvl]);
		put_json(&l, msg);
		put(&l, "\"}");
	} else {
		put(&l, "%s %-5s %s", ts, level_names[lvl], msg);
	}
	emit(&l);
}

void
log_request(const struct log_req *r)
{
	char ts[64];
	const char *model = r->model ? r->model : "-";
	const char *route = r->route && *r->route ? r->route : "-";
	struct line l = {.n = 0};

	if (LOG_INFO < log_min)
		return;
	timestamp(ts, sizeof(ts));
	if (log_fmt == LOG_JSON) {
		put(&l,
		    "{\"ts\":\"%s\",\"level\":\"info\",\"msg\":\"request\","
		    "\"method\":\"",
		    ts);
		put_json(&l, r->method);
		put(&l, "\",\"path\":\"");
		put_json(&l, r->path);
		put(&l, "\",\"model\":\"");
		put_json(&l, model);
		put(&l, "\",\"route\":\"");
		put_json(&l, route);
		put(&l,
		    "\",\"status\":%d,\"stream\":%s,\"bytes_in\":%llu,"
		    "\"bytes_out\":%llu,\"duration_ms\":%.3f",
		    r->status, r->stream ? "true" : "false",
		    (unsigned long long)r->bytes_in,
		    (unsigned long long)r->bytes_out, r->duration_ms);
		if (r->ttfb_ms >= 0)
			put(&l, ",\"ttfb_ms\":%.3f", r->ttfb_ms);
		if (r->request_id != NULL) {
			put(&l, ",\"request_id\":\"");
			put_json(&l, r->request_id);
			put(&l, "\"");
		}
		put(&l, "}");
	} else {
		put(&l,
		    "%s info  %s %s model=%s route=%s status=%d stream=%d "
		    "in=%llu out=%llu dur=%.1fms",
		    ts, r->method, r->path, model, route, r->status, r->stream,
		    (unsigned long long)r->bytes_in,
		    (unsigned long long)r->bytes_out, r->duration_ms);
		if (r->ttfb_ms >= 0)
			put(&l, " ttfb=%.1fms", r->ttfb_ms);
		if (r->request_id != NULL)
			put(&l, " id=%s", r->request_id);
	}
	emit(&l);
}
