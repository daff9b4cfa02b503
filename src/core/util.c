#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "core/util.h"

uint64_t
sm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t
sm_now_ms(void)
{
	return sm_now_ns() / 1000000ull;
}

uint64_t
sm_wall_s(void)
{
	return (uint64_t)time(NULL);
}

uint64_t
sm_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000ull +
	    (uint64_t)ts.tv_nsec / 1000000ull;
}

void
sm_hex(char *out, const uint8_t *in, size_t len)
{
	sodium_bin2hex(out, len * 2 + 1, in, len);
}

int
sm_unhex(uint8_t *out, size_t len, const char *hex)
{
	size_t got = 0;

	if (strlen(hex) != len * 2)
		return SM_ERR_INVAL;
	if (sodium_hex2bin(out, len, hex, len * 2, NULL, &got, NULL) != 0 ||
	    got != len)
		return SM_ERR_INVAL;
	return 0;
}

int
sm_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	*out = 0;
	if (s == NULL || *s < '0' || *s > '9')
		return SM_ERR_INVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return SM_ERR_INVAL;
	*out = v;
	return 0;
}
