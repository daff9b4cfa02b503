/*
 * Downgrade memory: the hosts that once offered end-to-end encryption, so
 * that a later keyless announcement from them is refused (mesh/tunnel.c,
 * tunnel_policy). Bounded at STICKY_MAX ids; when full, the id not seen for
 * the longest time is evicted (never "the first STICKY_MAX forever"). Pure
 * logic, no I/O: mesh/tunnel.c keeps it in STATE_DIR/STICKY_FILE (0600,
 * written to a temporary file and renamed) and loads it at start.
 *
 * File format (text, one record a line, doc/PROTOCOL.md "Downgrade
 * memory file"):
 *   sealmesh-downgrade-memory 1\n
 *   <64 lowercase hex: node id> <decimal: last seen, Unix seconds>\n ...
 */
#ifndef SM_MESH_STICKY_H
#define SM_MESH_STICKY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "mesh/identity.h"

#define STICKY_MAX 4096
#define STICKY_FILE "downgrade-memory"
#define STICKY_MAGIC "sealmesh-downgrade-memory 1\n"
#define STICKY_LINE_MAX (ID_PK_LEN * 2 + 1 + 20 + 1)
#define STICKY_FILE_MAX                                                        \
	(sizeof(STICKY_MAGIC) + (size_t)STICKY_MAX * STICKY_LINE_MAX)

struct sticky_ent {
	uint8_t id[ID_PK_LEN];
	uint64_t last_seen; /* Unix seconds */
};

struct sticky {
	struct sticky_ent *v; /* n entries, unordered */
	size_t n;
	size_t max; /* STICKY_MAX unless a test sets less */
};

/* Empty memory holding at most 'max' ids (0 or > STICKY_MAX: STICKY_MAX).
 * Allocates nothing. */
void sticky_init(struct sticky *s, size_t max);
void sticky_clear(struct sticky *s);
/* Whether 'id' is remembered. */
bool sticky_has(const struct sticky *s, const uint8_t id[ID_PK_LEN]);
/*
 * 'id' offered a key at time 'now': remember it, or refresh its last-seen
 * time. When full, the entry with the oldest last-seen time is evicted.
 * '*added' (may be NULL) says whether the set of ids changed. 0 or
 * SM_ERR_NOMEM.
 */
int sticky_note(struct sticky *s, const uint8_t id[ID_PK_LEN], uint64_t now,
    bool *added) SM_MUST_CHECK;
/*
 * Parse a downgrade memory file into 's' (which must be empty). Keeps at
 * most s->max entries, the most recently seen ones. 0; SM_ERR_PROTO
 * (bad header, bad line, duplicate id); SM_ERR_TOOBIG (over
 * STICKY_FILE_MAX); SM_ERR_NOMEM. On failure 's' is empty.
 */
int sticky_parse(struct sticky *s, const uint8_t *p, size_t len) SM_MUST_CHECK;
/* Append the file form of 's' to 'out' (entries in id order). */
int sticky_write(const struct sticky *s, struct buf *out) SM_MUST_CHECK;

#endif
