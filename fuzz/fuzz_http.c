/* Fuzz the HTTP/1.1 request and response parsers, fed in two pieces. */
#include <stddef.h>
#include <stdint.h>

#include "http/parse.h"

static int
f_head(struct hparse *hp, void *user)
{
	/* Touch what a handler reads. */
	(void)hparse_header(hp, "content-type");
	return 0;
}

static int
f_body(struct hparse *hp, void *user, const char *at, size_t len)
{
	struct buf *b = user;

	return buf_append(b, at, len) == 0 ? 0 : -1;
}

static int
f_done(struct hparse *hp, void *user)
{
	return HPE_PAUSED;
}

static const struct hparse_cbs cbs = {f_head, f_body, f_done};

static void
run(llhttp_type_t type, const uint8_t *data, size_t size)
{
	struct hparse hp;
	struct buf body;
	size_t split = size ? data[0] % (size + 1) : 0, off = 0, used;
	enum llhttp_errno e;

	buf_init(&body, 1 << 16);
	hparse_init(&hp, type, 4096, &cbs, &body);
	while (off < size) {
		size_t end = off < split ? split : size;

		e = hparse_feed(
		    &hp, (const char *)data + off, end - off, &used);
		if (e == HPE_PAUSED) {
			hparse_resume(&hp);
			buf_reset(&body);
			off += used;
			continue;
		}
		if (e != HPE_OK)
			break;
		off = end;
	}
	(void)hparse_finish(&hp);
	hparse_clear(&hp);
	buf_clear(&body);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run(HTTP_REQUEST, data, size);
	run(HTTP_RESPONSE, data, size);
	return 0;
}
