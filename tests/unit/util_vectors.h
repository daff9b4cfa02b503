/* Known-answer vectors for the unit tests: JSON files under tests/vectors/,
 * read from the repo root. Every helper fails the running test on error. */
#ifndef SM_TEST_UTIL_VECTORS_H
#define SM_TEST_UTIL_VECTORS_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

/* Parse a whole JSON file; the caller deletes it. */
cJSON *vec_load(const char *path);
/* o[name] must be exactly 'len' bytes of hex; decoded into 'out'. */
void vec_hex(uint8_t *out, size_t len, const cJSON *o, const char *name);

#endif
