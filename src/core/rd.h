/*
 * A bounded reader over untrusted bytes: every take either returns a view of
 * exactly n bytes or marks the reader bad (and keeps it bad), so a parser
 * reads a whole layout and checks r.bad once at the end.
 */
#ifndef SM_CORE_RD_H
#define SM_CORE_RD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rd {
	const uint8_t *p;
	size_t len;
	size_t off;
	bool bad;
};

/* A view of the next n bytes, or NULL (and r->bad) when fewer remain. */
static inline const uint8_t *
rd_take(struct rd *r, size_t n)
{
	const uint8_t *p;

	if (r->bad || r->len - r->off < n) {
		r->bad = true;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

/* An n-byte (n <= 8) big-endian unsigned; 0 once the reader is bad. */
static inline uint64_t
rd_be(struct rd *r, size_t n)
{
	const uint8_t *p = rd_take(r, n);
	uint64_t v = 0;

	for (size_t i = 0; p != NULL && i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* A u16-length-prefixed field of at most 'max' bytes; its length in *n. */
static inline const uint8_t *
rd_lv16(struct rd *r, size_t max, size_t *n)
{
	*n = (size_t)rd_be(r, 2);
	if (*n > max) {
		r->bad = true;
		return NULL;
	}
	return rd_take(r, *n);
}

#endif
