#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "mesh/sticky.h"

void
sticky_init(struct sticky *s, size_t max)
{
	memset(s, 0, sizeof(*s));
	s->max = max == 0 || max > STICKY_MAX ? STICKY_MAX : max;
}

void
sticky_clear(struct sticky *s)
{
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static struct sticky_ent *
find(const struct sticky *s, const uint8_t id[ID_PK_LEN])
{
	for (size_t i = 0; i < s->n; i++)
		if (memcmp(s->v[i].id, id, ID_PK_LEN) == 0)
			return &s->v[i];
	return NULL;
}

bool
sticky_has(const struct sticky *s, const uint8_t id[ID_PK_LEN])
{
	return find(s, id) != NULL;
}

int
sticky_note(
    struct sticky *s, const uint8_t id[ID_PK_LEN], uint64_t now, bool *added)
{
	struct sticky_ent *e = find(s, id);

	if (added != NULL)
		*added = false;
	if (e != NULL) {
		if (now > e->last_seen)
			e->last_seen = now;
		return 0;
	}
	if (s->v == NULL && (s->v = calloc(s->max, sizeof(*s->v))) == NULL)
		return SM_ERR_NOMEM;
	if (s->n < s->max) {
		e = &s->v[s->n++];
	} else {
		/* Full: the longest unseen goes (ties: the first found). */
		e = &s->v[0];
		for (size_t i = 1; i < s->n; i++)
			if (s->v[i].last_seen < e->last_seen)
				e = &s->v[i];
		if (now < e->last_seen)
			return 0; /* older than all we keep (a file's line) */
	}
	memcpy(e->id, id, ID_PK_LEN);
	e->last_seen = now;
	if (added != NULL)
		*added = true;
	return 0;
}

/* One line without its '\n': hex id, one space, decimal seconds. */
static int
parse_line(const char *p, size_t len, uint8_t id[ID_PK_LEN], uint64_t *t)
{
	char hex[ID_PK_LEN * 2 + 1], num[21];
	size_t nlen;

	if (len <= ID_PK_LEN * 2 + 1 || p[ID_PK_LEN * 2] != ' ')
		return SM_ERR_PROTO;
	nlen = len - ID_PK_LEN * 2 - 1;
	if (nlen >= sizeof(num))
		return SM_ERR_PROTO;
	memcpy(hex, p, ID_PK_LEN * 2);
	hex[ID_PK_LEN * 2] = '\0';
	for (size_t i = 0; i < ID_PK_LEN * 2; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') ||
			(hex[i] >= 'a' && hex[i] <= 'f')))
			return SM_ERR_PROTO;
	if (sm_unhex(id, ID_PK_LEN, hex) != 0)
		return SM_ERR_PROTO;
	memcpy(num, p + ID_PK_LEN * 2 + 1, nlen);
	num[nlen] = '\0';
	return sm_parse_u64(num, 0, UINT64_MAX, t) == 0 ? 0 : SM_ERR_PROTO;
}

int
sticky_parse(struct sticky *s, const uint8_t *p, size_t len)
{
	const size_t mlen = sizeof(STICKY_MAGIC) - 1;
	const char *c = (const char *)p;
	size_t off;
	int r = SM_ERR_TOOBIG;

	if (len > STICKY_FILE_MAX)
		goto out;
	r = SM_ERR_PROTO;
	if (len < mlen || memcmp(p, STICKY_MAGIC, mlen) != 0)
		goto out;
	for (off = mlen; off < len;) {
		const char *nl = memchr(c + off, '\n', len - off);
		uint8_t id[ID_PK_LEN];
		uint64_t t;

		r = SM_ERR_PROTO;
		if (nl == NULL || (size_t)(nl - (c + off)) > STICKY_LINE_MAX)
			goto out;
		if ((r = parse_line(
			 c + off, (size_t)(nl - (c + off)), id, &t)) != 0)
			goto out;
		if (find(s, id) != NULL) {
			r = SM_ERR_PROTO;
			goto out;
		}
		if ((r = sticky_note(s, id, t, NULL)) != 0)
			goto out;
		off = (size_t)(nl - c) + 1;
	}
	r = 0;
out:
	if (r != 0)
		sticky_clear(s);
	return r;
}

static int
by_id(const void *x, const void *y)
{
	return memcmp(((const struct sticky_ent *)x)->id,
	    ((const struct sticky_ent *)y)->id, ID_PK_LEN);
}

int
sticky_write(const struct sticky *s, struct buf *out)
{
	char hex[ID_PK_LEN * 2 + 1];
	int r;

	if (s->n > 0)
		qsort(s->v, s->n, sizeof(s->v[0]), by_id);
	if ((r = buf_append(out, STICKY_MAGIC, sizeof(STICKY_MAGIC) - 1)) != 0)
		return r;
	for (size_t i = 0; i < s->n; i++) {
		sm_hex(hex, s->v[i].id, ID_PK_LEN);
		if ((r = buf_appendf(out, "%s %llu\n", hex,
			 (unsigned long long)s->v[i].last_seen)) != 0)
			return r;
	}
	return 0;
}
