/*
 * API keys for the node's local HTTP faces (--api-key-file). Only a keyed
 * BLAKE2b hash of each key is kept, in sodium_malloc memory, wiped when the
 * set is freed; a presented key is hashed the same way and compared against
 * every stored hash with sodium_memcmp, without an early exit, so the time
 * taken says nothing about which key (or how much of one) matched.
 *
 * File format: one key per line; blank lines and lines starting with '#'
 * (after leading blanks) are ignored; a key is 16 to 512 printable ASCII
 * characters without spaces. The file must be a regular file owned by this
 * user and not readable or writable by group or others (0600).
 */
#ifndef SM_HTTP_APIKEY_H
#define SM_HTTP_APIKEY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

#define APIKEY_MIN_LEN 16
#define APIKEY_MAX_LEN 512
#define APIKEY_MAX_KEYS 1024
#define APIKEY_FILE_MAX (1024 * 1024)

struct apikeys;

/*
 * Parse key-file text (no I/O). On success *out is a new set (free with
 * apikeys_free) and 0 is returned; otherwise *out is NULL, SM_ERR_INVAL or
 * SM_ERR_TOOBIG is returned and 'why' says which line is wrong (never its
 * content). 'text' is not modified; the caller wipes it.
 */
int apikeys_parse(struct apikeys **out, const char *text, size_t len, char *why,
    size_t whylen) SM_MUST_CHECK;

/*
 * Read and parse 'path', refusing a file group or others may access (as
 * for the identity key). On failure 'why' names the path and the reason
 * (OS error text, mode, or the line at fault). The read copy is wiped.
 */
int apikeys_load(struct apikeys **out, const char *path, char *why,
    size_t whylen) SM_MUST_CHECK;

/*
 * apikeys_load()'s checks and read, without the parse: the file's bytes are
 * appended to 'out'. Under privilege separation the signer reads the file
 * for its worker (which may not be able to open it after dropping to
 * --user) and the worker parses what it gets.
 */
struct buf;
int apikeys_read(
    const char *path, struct buf *out, char *why, size_t whylen) SM_MUST_CHECK;

/* Wipe and free (NULL: no-op). */
void apikeys_free(struct apikeys *k);

size_t apikeys_count(const struct apikeys *k);

/* Does 'key' (len bytes) equal one of the set's keys? Constant time in the
 * stored keys; false for an empty or oversized key. */
bool apikeys_check(const struct apikeys *k, const char *key, size_t len);

/*
 * The key a request presents: "Authorization: Bearer KEY" (scheme compared
 * case-insensitively) or "x-api-key: KEY" (either may be NULL). Returns true
 * when one of them holds a key that apikeys_check() accepts.
 */
bool apikeys_check_headers(
    const struct apikeys *k, const char *authorization, const char *x_api_key);

#endif
