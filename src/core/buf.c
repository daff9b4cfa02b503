#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/buf.h"

void
buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void
buf_clear(struct buf *b)
{
	size_t max = b->max;

	if (b->p != NULL) {
		sodium_memzero(b->p, b->cap);
		free(b->p);
	}
	buf_init(b, max);
}

void
buf_reset(struct buf *b)
{
	if (b->p != NULL)
		sodium_memzero(b->p, b->off + b->len);
	b->off = 0;
	b->len = 0;
}

int
buf_reserve(struct buf *b, size_t n)
{
	size_t need, ncap;
	uint8_t *np;

	if (n > b->max || b->len > b->max - n)
		return SM_ERR_TOOBIG;
	need = b->len + n;
	if (b->off + need <= b->cap)
		return 0;
	if (need <= b->cap) {
		/* Compact: move the data to the front and wipe the old tail. */
		memmove(b->p, b->p + b->off, b->len);
		sodium_memzero(b->p + b->len, b->cap - b->len);
		b->off = 0;
		return 0;
	}
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	if (ncap > b->max)
		ncap = b->max > need ? b->max : need;
	/* Never realloc: the old block may hold secrets and must be wiped. */
	if ((np = malloc(ncap)) == NULL)
		return SM_ERR_NOMEM;
	if (b->p != NULL) {
		memcpy(np, b->p + b->off, b->len);
		sodium_memzero(b->p, b->cap);
		free(b->p);
	}
	b->p = np;
	b->cap = ncap;
	b->off = 0;
	return 0;
}

int
buf_append(struct buf *b, const void *data, size_t n)
{
	int r;

	if (n == 0)
		return 0;
	if ((r = buf_reserve(b, n)) != 0)
		return r;
	memcpy(buf_tail(b), data, n);
	b->len += n;
	return 0;
}

int
buf_appendf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return SM_ERR_INVAL;
	if ((r = buf_reserve(b, (size_t)n + 1)) != 0)
		return r;
	va_start(ap, fmt);
	vsnprintf((char *)buf_tail(b), (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void
buf_advance(struct buf *b, size_t n)
{
	b->len += n;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_reset(b);
		return;
	}
	sodium_memzero(b->p + b->off, n);
	b->off += n;
	b->len -= n;
}
