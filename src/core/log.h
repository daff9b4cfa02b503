/*
 * Logging to stderr, pretty or JSON lines. Never pass prompts, completions,
 * keys or other secrets to these functions.
 */
#ifndef SM_CORE_LOG_H
#define SM_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_PRETTY, LOG_JSON };

void log_setup(enum log_format fmt, enum log_level min);
/* Parse "pretty" or "json". Returns 0 or SM_ERR_INVAL. */
int log_format_parse(const char *s, enum log_format *out);

void log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* One access-log line per request: metadata only, never bodies. */
struct log_req {
	const char *method;
	const char *path;
	const char *model; /* may be NULL */
	const char *route; /* "local", "remote:<id>", NULL */
	int status;
	uint64_t bytes_in;
	uint64_t bytes_out;
	double duration_ms;
	double ttfb_ms; /* < 0 when unknown */
	bool stream;
	const char *request_id; /* x-request-id, or NULL */
};
void log_request(const struct log_req *r);

#endif
