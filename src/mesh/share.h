/*
 * Per-member shares of a node resource (doc/THREAT-MODEL.md, "Freshness and
 * per-member limits"): a counter per member id (the Ed25519 id of the peer
 * on whose link the use arrived) with a cap per member and a cap for the
 * node. Pure logic, no I/O; the tunnel layer keeps one table for envelope
 * bytes buffered before their MAC and one for relay streams.
 */
#ifndef SM_MESH_SHARE_H
#define SM_MESH_SHARE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "mesh/identity.h"

#define SHARE_MAX_MEMBERS 1024 /* members holding a share at once */

struct share_ent {
	uint8_t id[ID_PK_LEN];
	uint64_t used;
};

struct share {
	struct share_ent *v; /* n entries with used > 0 */
	size_t n;
	size_t cap;
	uint64_t total; /* sum of used */
	uint64_t member_max;
	uint64_t total_max;
	uint64_t refused; /* share_take() refusals, for metrics */
};

/* An empty table: each member may hold up to 'member_max', all together up
 * to 'total_max'. Allocates nothing. */
void share_init(struct share *s, uint64_t member_max, uint64_t total_max);
/* Free the table; it is empty afterwards. */
void share_clear(struct share *s);
/*
 * Take 'amount' for member 'id'. 0, or (nothing taken, 'refused' counted):
 * SM_ERR_UNAVAIL (the member's share would pass member_max), SM_ERR_TOOBIG
 * (the node's total would pass total_max), SM_ERR_NOMEM (SHARE_MAX_MEMBERS
 * members hold a share, or no memory).
 */
int share_take(struct share *s, const uint8_t id[ID_PK_LEN],
    uint64_t amount) SM_MUST_CHECK;
/* Give back 'amount' (at most what 'id' holds); the entry goes at zero. */
void share_give(struct share *s, const uint8_t id[ID_PK_LEN], uint64_t amount);
/* What 'id' holds now. */
uint64_t share_used(const struct share *s, const uint8_t id[ID_PK_LEN]);

#endif
