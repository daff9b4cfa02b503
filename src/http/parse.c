#include <ctype.h>
#include <string.h>

#include "http/parse.h"

#define NONE ((size_t)-1)

static int
meta_append(struct hparse *hp, const char *at, size_t len, bool lower)
{
	size_t start = hp->meta.len;

	if (buf_append(&hp->meta, at, len) != 0) {
		hp->reject = 431;
		return -1;
	}
	if (lower)
		for (size_t i = start; i < hp->meta.len; i++)
			buf_data(&hp->meta)[i] =
			    (uint8_t)tolower(buf_data(&hp->meta)[i]);
	return 0;
}

static int
on_message_begin(llhttp_t *p)
{
	struct hparse *hp = p->data;

	buf_reset(&hp->meta);
	hp->url_off = 0;
	hp->nfields = 0;
	hp->name_off[0] = NONE;
	hp->nhdrs = 0;
	hp->reject = 0;
	hp->content_length = -1;
	hp->path = hp->query = hp->method = NULL;
	return 0;
}

static int
on_url(llhttp_t *p, const char *at, size_t len)
{
	return meta_append(p->data, at, len, false);
}

static int
on_url_complete(llhttp_t *p)
{
	return meta_append(p->data, "", 1, false);
}

static int
on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct hparse *hp = p->data;

	if (hp->nfields >= HTTP_MAX_HEADERS) {
		hp->reject = 431;
		return -1;
	}
	if (hp->name_off[hp->nfields] == NONE)
		hp->name_off[hp->nfields] = hp->meta.len;
	return meta_append(hp, at, len, true);
}

static int
on_header_field_complete(llhttp_t *p)
{
	struct hparse *hp = p->data;

	hp->value_off[hp->nfields] = NONE;
	return meta_append(hp, "", 1, false);
}

static int
on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct hparse *hp = p->data;

	if (hp->value_off[hp->nfields] == NONE)
		hp->value_off[hp->nfields] = hp->meta.len;
	return meta_append(hp, at, len, false);
}

static int
on_header_value_complete(llhttp_t *p)
{
	struct hparse *hp = p->data;

	if (hp->value_off[hp->nfields] == NONE)
		hp->value_off[hp->nfields] = hp->meta.len; /* empty value */
	if (meta_append(hp, "", 1, false) != 0)
		return -1;
	hp->nfields++;
	if (hp->nfields < HTTP_MAX_HEADERS)
		hp->name_off[hp->nfields] = NONE;
	return 0;
}

static int
on_headers_complete(llhttp_t *p)
{
	struct hparse *hp = p->data;
	char *base = (char *)buf_data(&hp->meta);
	char *q;

	if (p->type == HTTP_RESPONSE && p->status_code < 200) {
		on_message_begin(p); /* 1xx: wait for the real answer */
		return 0;
	}
	for (size_t i = 0; i < hp->nfields; i++) {
		hp->hdrs[i].name = base + hp->name_off[i];
		hp->hdrs[i].value = base + hp->value_off[i];
	}
	hp->nhdrs = hp->nfields;
	hp->keep_alive = llhttp_should_keep_alive(p);
	if ((p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED))
		hp->content_length = (int64_t)p->content_length;
	if (p->type == HTTP_REQUEST) {
		hp->method = llhttp_method_name(llhttp_get_method(p));
		hp->path = base != NULL ? base + hp->url_off : "";
		if ((q = strchr((char *)hp->path, '?')) != NULL) {
			*q = '\0';
			hp->query = q + 1;
		} else {
			hp->query = "";
		}
	} else {
		hp->status = p->status_code;
	}
	return hp->cbs->on_head ? hp->cbs->on_head(hp, hp->user) : 0;
}

static int
on_body(llhttp_t *p, const char *at, size_t len)
{
	struct hparse *hp = p->data;

	return hp->cbs->on_body ? hp->cbs->on_body(hp, hp->user, at, len) : 0;
}

static int
on_message_complete(llhttp_t *p)
{
	struct hparse *hp = p->data;

	if (p->type == HTTP_RESPONSE && hp->nhdrs == 0 && p->status_code < 200)
		return 0;
	hp->keep_alive = llhttp_should_keep_alive(p);
	return hp->cbs->on_done ? hp->cbs->on_done(hp, hp->user) : 0;
}

static const llhttp_settings_t *
settings(void)
{
	static llhttp_settings_t s;
	static bool done;

	if (!done) {
		llhttp_settings_init(&s);
		s.on_message_begin = on_message_begin;
		s.on_url = on_url;
		s.on_url_complete = on_url_complete;
		s.on_header_field = on_header_field;
		s.on_header_field_complete = on_header_field_complete;
		s.on_header_value = on_header_value;
		s.on_header_value_complete = on_header_value_complete;
		s.on_headers_complete = on_headers_complete;
		s.on_body = on_body;
		s.on_message_complete = on_message_complete;
		done = true;
	}
	return &s;
}

void
hparse_init(struct hparse *hp, llhttp_type_t type, size_t max_header_bytes,
    const struct hparse_cbs *cbs, void *user)
{
	memset(hp, 0, sizeof(*hp));
	hp->cbs = cbs;
	hp->user = user;
	buf_init(&hp->meta, max_header_bytes);
	hp->name_off[0] = NONE;
	hp->content_length = -1;
	llhttp_init(&hp->llh, type, settings());
	hp->llh.data = hp;
}

void
hparse_clear(struct hparse *hp)
{
	buf_clear(&hp->meta);
}

enum llhttp_errno
hparse_feed(struct hparse *hp, const char *data, size_t len, size_t *used)
{
	enum llhttp_errno err = llhttp_execute(&hp->llh, data, len);
	const char *pos;

	*used = len;
	if (err != HPE_OK) {
		pos = llhttp_get_error_pos(&hp->llh);
		if (pos != NULL && pos >= data && pos <= data + len)
			*used = (size_t)(pos - data);
		if (err != HPE_PAUSED && hp->reject == 0)
			hp->reject = 400;
	}
	return err;
}

void
hparse_resume(struct hparse *hp)
{
	llhttp_resume(&hp->llh);
}

enum llhttp_errno
hparse_finish(struct hparse *hp)
{
	return llhttp_finish(&hp->llh);
}

const char *
hparse_header(const struct hparse *hp, const char *name)
{
	for (size_t i = 0; i < hp->nhdrs; i++)
		if (strcmp(hp->hdrs[i].name, name) == 0)
			return hp->hdrs[i].value;
	return NULL;
}
