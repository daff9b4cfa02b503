#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "core/err.h"
#include "core/log.h"

static enum log_format log_fmt = LOG_PRETTY;
static enum log_level log_min = LOG_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

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
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000));
}

/* Write 's' as the inside of a JSON string. */
static void
json_escape(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	char ts[64], msg[1024];
	va_list ap;

	if (lvl < log_min)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	timestamp(ts, sizeof(ts));
	flockfile(stderr);
	if (log_fmt == LOG_JSON) {
		fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
		    level_names[lvl]);
		json_escape(stderr, msg);
		fputs("\"}\n", stderr);
	} else {
		fprintf(stderr, "%s %-5s %s\n", ts, level_names[lvl], msg);
	}
	funlockfile(stderr);
}

void
log_request(const struct log_req *r)
{
	char ts[64];
	const char *model = r->model ? r->model : "-";
	const char *route = r->route ? r->route : "-";

	if (LOG_INFO < log_min)
		return;
	timestamp(ts, sizeof(ts));
	flockfile(stderr);
	if (log_fmt == LOG_JSON) {
		fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"info\",\"msg\":\"request\","
		    "\"method\":\"", ts);
		json_escape(stderr, r->method);
		fputs("\",\"path\":\"", stderr);
		json_escape(stderr, r->path);
		fputs("\",\"model\":\"", stderr);
		json_escape(stderr, model);
		fputs("\",\"route\":\"", stderr);
		json_escape(stderr, route);
		fprintf(stderr, "\",\"status\":%d,\"stream\":%s,\"bytes_in\":%llu,"
		    "\"bytes_out\":%llu,\"duration_ms\":%.3f",
		    r->status, r->stream ? "true" : "false",
		    (unsigned long long)r->bytes_in,
		    (unsigned long long)r->bytes_out, r->duration_ms);
		if (r->ttfb_ms >= 0)
			fprintf(stderr, ",\"ttfb_ms\":%.3f", r->ttfb_ms);
		fputs("}\n", stderr);
	} else {
		fprintf(stderr, "%s info  %s %s model=%s route=%s status=%d "
		    "stream=%d in=%llu out=%llu dur=%.1fms", ts, r->method,
		    r->path, model, route, r->status, r->stream,
		    (unsigned long long)r->bytes_in,
		    (unsigned long long)r->bytes_out, r->duration_ms);
		if (r->ttfb_ms >= 0)
			fprintf(stderr, " ttfb=%.1fms", r->ttfb_ms);
		fputc('\n', stderr);
	}
	funlockfile(stderr);
}
