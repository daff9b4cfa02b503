/*
 * HTTP/1.1 message parsing on llhttp, with no I/O: requests for the server,
 * responses for the upstream client. Header bytes are capped and kept,
 * lowercased names, in one buffer; the body goes to a callback as it is
 * decoded (chunked or not).
 */
#ifndef SM_HTTP_PARSE_H
#define SM_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include <llhttp.h>

#include "core/buf.h"

#define HTTP_MAX_HEADERS 100

struct hdr {
	const char *name; /* NUL-terminated, lowercased */
	const char *value;
};

struct hparse;

/* Each returns 0 to go on, HPE_PAUSED to stop after this event, -1 to fail. */
struct hparse_cbs {
	int (*on_head)(struct hparse *hp, void *user);
	int (*on_body)(
	    struct hparse *hp, void *user, const char *at, size_t len);
	int (*on_done)(struct hparse *hp, void *user);
};

struct hparse {
	llhttp_t llh;
	const struct hparse_cbs *cbs;
	void *user;
	struct buf meta; /* url and headers, NUL-separated */
	size_t url_off;
	size_t name_off[HTTP_MAX_HEADERS];
	size_t value_off[HTTP_MAX_HEADERS];
	size_t nfields;
	/* Valid from on_head until the next message begins. */
	const char *method; /* requests */
	const char *path; /* requests: without the query */
	const char *query; /* requests: after '?', or "" */
	int status; /* responses */
	struct hdr hdrs[HTTP_MAX_HEADERS];
	size_t nhdrs;
	int64_t content_length; /* -1 unless a Content-Length framed body */
	bool keep_alive;
	int reject; /* status a server should refuse with (400, 431...) */
};

/* 'type' is HTTP_REQUEST or HTTP_RESPONSE. */
void hparse_init(struct hparse *hp, llhttp_type_t type, size_t max_header_bytes,
    const struct hparse_cbs *cbs, void *user);
/* Wipe and free. */
void hparse_clear(struct hparse *hp);
/*
 * Parse 'len' bytes. Returns HPE_OK (all used), HPE_PAUSED (a callback
 * paused: *used bytes were consumed, resume with hparse_resume), or an error
 * (hp->reject says which status to answer with).
 */
enum llhttp_errno
hparse_feed(struct hparse *hp, const char *data, size_t len, size_t *used);
void hparse_resume(struct hparse *hp);
/* The peer closed: ends a close-delimited body. */
enum llhttp_errno hparse_finish(struct hparse *hp);
/* Header lookup by lowercase name; NULL when absent. */
const char *hparse_header(const struct hparse *hp, const char *name);

#endif
