/*
 * IMA measurement list (runtime measurement), binary format as in
 * /sys/kernel/security/ima/binary_runtime_measurements, templates "ima-ng"
 * and "ima-sig". No I/O; attacker-facing: bounded and fuzzed.
 *
 * One entry (host byte order: little-endian on every machine we run on, and
 * the kernel's ima_canonical_fmt):
 *   u32 pcr | u8 template_digest[20] (SHA-1) | u32 name_len | name |
 *   u32 data_len | template data
 * Template data, ima-ng: u32 len | d-ng | u32 len | n-ng
 *   d-ng: "<algo>:\0" || file digest, e.g. "sha256:\0" + 32 bytes
 *   n-ng: path, NUL-terminated
 * ima-sig adds u32 len | sig (may be empty).
 *
 * How the kernel extends the SHA-256 bank (Linux >= 5.8, ima_calc_field_
 * array_hash per bank): the digest extended into PCR 10 of the SHA-256 bank
 * is SHA-256 over the template data exactly as listed (each field's u32
 * length then its bytes); the 20-byte SHA-1 in the list is only the SHA-1
 * bank's digest. So replay recomputes SHA-256(template data) and never
 * trusts the carried SHA-1. A violation (open-writers / ToMToU) is listed
 * with an all-zero template digest and extended as 32 bytes of 0xff: its
 * data is not covered by the PCR and is never used as a measurement.
 * (Kernels before 5.8 extended the SHA-256 bank with the SHA-1 digest
 * zero-padded; not supported.)
 */
#ifndef SM_ATTEST_IMA_H
#define SM_ATTEST_IMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define IMA_LIST_MAX (768 * 1024) /* whole list (fits one stream queue) */
#define IMA_ENTRIES_MAX 32768
#define IMA_DATA_MAX 8192 /* one entry's template data */
#define IMA_PATH_MAX 4096
#define IMA_PCR 10
#define IMA_DIGEST_LEN 32
#define IMA_SHA1_LEN 20

/* One entry, views into the list. */
struct ima_entry {
	uint32_t pcr;
	const uint8_t *template_sha1; /* 20 bytes as listed */
	bool violation; /* template digest all zero */
	const uint8_t *data; /* template data */
	size_t data_len;
	uint8_t template_sha256[IMA_DIGEST_LEN]; /* recomputed */
	bool file_sha256; /* the file digest is "sha256:" */
	const uint8_t *file_digest; /* view; IMA_DIGEST_LEN when sha256 */
	size_t file_digest_len;
	const char *path; /* view, NUL-terminated inside the data */
	size_t path_len; /* without the NUL */
};

/*
 * Read the entry at '*off' and advance '*off'. 0; SM_ERR_TOOBIG past a cap;
 * SM_ERR_UNSUPP for another template; SM_ERR_INVAL otherwise.
 */
int ima_next(const uint8_t *in, size_t len, size_t *off,
    struct ima_entry *e) SM_MUST_CHECK;

/* PCR 10 after replaying entries one by one from zero. */
void ima_pcr_init(uint8_t pcr[IMA_DIGEST_LEN]);
/* Extend 'pcr' with entry 'e' (0xff..ff for a violation). */
int ima_pcr_extend(
    uint8_t pcr[IMA_DIGEST_LEN], const struct ima_entry *e) SM_MUST_CHECK;

/*
 * Replay a whole list (every entry must parse; entries for another PCR are
 * skipped) and look for 'quoted' (may be NULL): '*prefix' gets how many
 * entries replay to it (SIZE_MAX: no prefix does), '*n' the number of
 * entries, 'final' (may be NULL) the value after all of them. The kernel
 * may append between the quote and the read, so a list may be longer than
 * what the quote covers; only the first '*prefix' entries are proven.
 * Errors as ima_next, SM_ERR_TOOBIG past IMA_LIST_MAX / IMA_ENTRIES_MAX.
 */
int
ima_replay(const uint8_t *in, size_t len, const uint8_t quoted[IMA_DIGEST_LEN],
    size_t *prefix, size_t *n, uint8_t final[IMA_DIGEST_LEN]) SM_MUST_CHECK;
/* The same, starting from PCR value 'start' (NULL: zero) instead of zero:
 * the rest of a list whose first entries replayed to 'start' before. */
int ima_replay_from(const uint8_t *in, size_t len,
    const uint8_t start[IMA_DIGEST_LEN], const uint8_t quoted[IMA_DIGEST_LEN],
    size_t *prefix, size_t *n, uint8_t final[IMA_DIGEST_LEN]) SM_MUST_CHECK;

/*
 * --ima-allowlist (Keylime's runtime policy idea, simplified): text lines
 * "<sha256 hex> <absolute path>", '#' comments and blank lines ignored; a
 * path may be listed with several hashes. Every measured entry (but
 * boot_aggregate and violations) must have its (path, hash) pair listed.
 */
struct ima_allowlist;

/*
 * Parse allowlist text ('len' bytes). SM_ERR_INVAL names the first bad line
 * in '*bad_line' (1-based; 0 otherwise); SM_ERR_TOOBIG over 65536 entries.
 */
int ima_allowlist_parse(const char *text, size_t len,
    struct ima_allowlist **out, size_t *bad_line) SM_MUST_CHECK;
void ima_allowlist_free(struct ima_allowlist *a);
size_t ima_allowlist_count(const struct ima_allowlist *a);
/* True when the entry's (path, sha256) pair is listed. */
bool ima_allowlist_ok(const struct ima_allowlist *a, const struct ima_entry *e);

#endif
