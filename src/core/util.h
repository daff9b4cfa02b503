/* Small helpers shared by every module: time, hex, parsing numbers. */
#ifndef SM_CORE_UTIL_H
#define SM_CORE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define SM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Monotonic clock in milliseconds / nanoseconds (never jumps back). */
uint64_t sm_now_ms(void);
uint64_t sm_now_ns(void);
/* Wall clock, seconds since the epoch. */
uint64_t sm_wall_s(void);
/* Wall clock, milliseconds since the epoch. */
uint64_t sm_wall_ms(void);

/* Lowercase hex of 'len' bytes into 'out' (2*len+1 bytes, NUL-terminated). */
void sm_hex(char *out, const uint8_t *in, size_t len);
/* Parse exactly 'len' bytes of hex. SM_ERR_INVAL on bad length or digit. */
int sm_unhex(uint8_t *out, size_t len, const char *hex) SM_MUST_CHECK;

/* Big-endian integers in wire formats. */
static inline void
sm_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t
sm_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline void
sm_put_be64(uint8_t *p, uint64_t v)
{
	sm_put_be32(p, (uint32_t)(v >> 32));
	sm_put_be32(p + 4, (uint32_t)v);
}

static inline uint64_t
sm_get_be64(const uint8_t *p)
{
	return (uint64_t)sm_get_be32(p) << 32 | sm_get_be32(p + 4);
}

/* Parse a decimal unsigned in [min, max]. SM_ERR_INVAL otherwise. */
int sm_parse_u64(
    const char *s, uint64_t min, uint64_t max, uint64_t *out) SM_MUST_CHECK;

#endif
