/*
 * A growable byte buffer with a mandatory maximum size (as OpenSSH's sshbuf).
 * Data lives in p[off .. off+len). buf_clear() wipes the bytes before freeing,
 * so a buf may hold secrets or plaintext.
 */
#ifndef SM_CORE_BUF_H
#define SM_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct buf {
	uint8_t *p;
	size_t off; /* start of unread data */
	size_t len; /* bytes of unread data */
	size_t cap; /* allocated bytes */
	size_t max; /* never grow len beyond this */
};

/* Set up an empty buffer that may hold at most 'max' bytes. Allocates nothing.
 */
void buf_init(struct buf *b, size_t max);
/* Wipe and free the storage; the buffer is empty afterwards and may be reused.
 */
void buf_clear(struct buf *b);
/* Drop all data (wiped), keep the storage. */
void buf_reset(struct buf *b);
/* Make room for 'n' more bytes. SM_ERR_TOOBIG past max, SM_ERR_NOMEM. */
int buf_reserve(struct buf *b, size_t n) SM_MUST_CHECK;
/* Append 'n' bytes. Same errors as buf_reserve. */
int buf_append(struct buf *b, const void *data, size_t n) SM_MUST_CHECK;
/* Append a formatted string (no NUL stored). */
int buf_appendf(struct buf *b, const char *fmt, ...) SM_MUST_CHECK
    __attribute__((format(printf, 2, 3)));
/* Pointer to the unread data. */
static inline uint8_t *
buf_data(const struct buf *b)
{
	return b->p ? b->p + b->off : NULL;
}
/* Pointer to the free space after the data (valid after buf_reserve). */
static inline uint8_t *
buf_tail(const struct buf *b)
{
	return b->p + b->off + b->len;
}
/* Mark 'n' bytes written at buf_tail() as data. */
void buf_advance(struct buf *b, size_t n);
/* Drop 'n' bytes from the front (wiped when the buffer empties or compacts). */
void buf_consume(struct buf *b, size_t n);

#endif
