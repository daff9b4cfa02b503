/*
 * The peer table: pure logic, no I/O. The caller passes a monotonic clock
 * (ms) to every call that needs time. Entries hold verified announcements
 * (announce_verify_parse) and the per-peer link data the link layer fills.
 *
 * Liveness: a peer is "heard" when a strictly newer announcement from it is
 * merged or when the link layer calls peers_touch() for a live direct link.
 * A v1 node re-signs every gossip interval; a v2 node only on change and once
 * per refresh period (mesh/gossip.h), so a peer heard only through gossip is
 * judged on 'refresh_ms' (peers_set_refresh), one with a direct link on the
 * interval. Forwarded copies
 * of an announcement we already hold do not count, so a dead node cannot be
 * kept alive by others echoing its last words. Not heard for
 * PEERS_STALE_INTERVALS periods: stale (not routed to, not gossiped); for
 * PEERS_PRUNE_INTERVALS: removed.
 */
#ifndef SM_MESH_PEERS_H
#define SM_MESH_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "mesh/announce.h"
#include "mesh/identity.h"

/* Default cap on the table (tombstones included); peers_set_max() changes
 * it. Bounded so a flood of valid announcements cannot exhaust memory;
 * membership bounds the mesh by construction. v1 capped at 1,024. */
#define PEERS_MAX 16384
#define PEERS_DEFAULT_INTERVAL_MS 30000
#define PEERS_STALE_INTERVALS 3
#define PEERS_PRUNE_INTERVALS 6
/*
 * Freshness (doc/THREAT-MODEL.md, "Freshness and per-member limits"): an
 * announcement's seq is its signer's wall clock in ms at signing, and every
 * node re-signs once per refresh period (an interval for v1, see
 * mesh/gossip.h for v2). One signed more than PEERS_FRESH_INTERVALS refresh
 * periods + the clock-skew tolerance ago, or more than the tolerance in the
 * future, is refused by peers_merge() whether or not we hold its peer, so an
 * old signed announcement cannot bring a pruned peer (or its wiped key) back.
 */
#define PEERS_FRESH_INTERVALS 4
#define PEERS_SKEW_DEFAULT_MS 30000

enum peer_state {
	PEER_ALIVE, /* heard within PEERS_STALE_INTERVALS */
	PEER_STALE, /* not heard for a while; pruned later */
	PEER_GONE, /* left or removed: a tombstone that only remembers the
		      seq, so older copies cannot bring it back */
};

/* How we reach a peer; written by the link layer, read by status/routing. */
enum peer_link {
	PEER_LINK_NONE, /* known through gossip only */
	PEER_LINK_DIRECT, /* we hold a live link to it */
	PEER_LINK_RELAY, /* reached through 'via' */
};

/* What peers_merge() did. */
enum peer_change {
	PEER_CHANGE_NONE,
	PEER_CHANGE_NEW, /* a peer we did not know (or revived) */
	PEER_CHANGE_UPDATED, /* a newer announcement from a known peer */
	PEER_CHANGE_LEFT, /* the peer announced it is leaving */
};

struct peer {
	struct announce ann; /* latest verified announcement; owned */
	enum peer_state state;
	uint64_t first_heard_ms;
	uint64_t last_heard_ms;
	/* Link data, owned by the link layer; peers_* never reads them except
	 * peers_relays_for(), which needs link == PEER_LINK_DIRECT. */
	enum peer_link link;
	uint8_t via[ID_PK_LEN]; /* relay's id when link == PEER_LINK_RELAY */
	int32_t rtt_ms; /* -1: unknown */
	/* Rights the mesh withholds from this peer (PEER_DENY_*), set by the
	 * membership layer right after each merge; 0 for a legacy mesh. */
	uint8_t denied;
};

#define PEER_DENY_HOST 0x01 /* never routed to: its models are ignored */
#define PEER_DENY_RELAY 0x02 /* never chosen as a relay */

struct peers {
	uint8_t self[ID_PK_LEN];
	uint8_t mesh_id[ANN_MESH_ID_LEN];
	uint64_t interval_ms;
	uint64_t refresh_ms; /* >= interval_ms; for peers without a link */
	size_t max; /* cap on n */
	uint64_t skew_ms; /* clock-skew tolerance, PEERS_SKEW_DEFAULT_MS */
	uint64_t refused_old; /* counters: merges refused as too old */
	uint64_t refused_future; /* ... or as signed in the future */
	struct peer **v; /* n entries, unordered; pointers stay valid until the
			    entry is pruned or the table cleared */
	size_t n;
	size_t cap;
};

/* An empty table for node 'self' in mesh 'mesh_id'. interval_ms == 0 means
 * PEERS_DEFAULT_INTERVAL_MS. The skew tolerance starts at
 * PEERS_SKEW_DEFAULT_MS (set t->skew_ms to change it). Allocates nothing. */
void peers_init(struct peers *t, const uint8_t self[ID_PK_LEN],
    const uint8_t mesh_id[ANN_MESH_ID_LEN], uint64_t interval_ms);
/* Peers without a direct link are judged on 'refresh_ms' (the period after
 * which they re-sign at the latest); values below interval_ms mean
 * interval_ms. */
void peers_set_refresh(struct peers *t, uint64_t refresh_ms);
/* Cap the table at 'max' entries (0: PEERS_MAX). */
void peers_set_max(struct peers *t, size_t max);
/* Free every entry; the table is empty afterwards. */
void peers_clear(struct peers *t);

/*
 * Merge a verified announcement at monotonic time 'now_ms' and wall time
 * 'wall_ms' (ms since the Unix epoch). On 0 the table took ownership of *a
 * (it is zeroed) and '*change' (may be NULL) says what happened. Otherwise
 * *a is untouched, the caller still owns it, and the return says why it was
 * refused: SM_ERR_REPLAY (outside the freshness window, see peers_fresh();
 * counted in refused_old / refused_future), SM_ERR_STALE (seq not newer than
 * the one we hold — the usual fate of a forwarded copy, not an error),
 * SM_ERR_PERM (claims to be us, or another mesh), SM_ERR_TOOBIG (t->max
 * peers), SM_ERR_NOMEM.
 */
int peers_merge(struct peers *t, struct announce *a, uint64_t now_ms,
    uint64_t wall_ms, enum peer_change *change) SM_MUST_CHECK;

/*
 * Whether an announcement signed at 'seq' (signer's wall ms) is fresh at
 * wall time 'wall_ms': 0, SM_ERR_STALE (older than PEERS_FRESH_INTERVALS
 * intervals + skew) or SM_ERR_UNSUPP (more than the skew in the future).
 */
int peers_fresh(const struct peers *t, uint64_t seq, uint64_t wall_ms);

/* A live direct link to 'id' was seen: refresh it. 0 or SM_ERR_NOTFOUND
 * (also for tombstones). */
int peers_touch(struct peers *t, const uint8_t id[ID_PK_LEN], uint64_t now_ms);

/*
 * Drop 'id' now (a leaving message or GOAWAY on its direct link): it
 * disappears from lookups, routing and gossip at once; a tombstone keeps its
 * seq until pruned, so only a newer announcement (a restart) brings it back.
 * 0 or SM_ERR_NOTFOUND.
 */
int peers_remove(struct peers *t, const uint8_t id[ID_PK_LEN]);

/* Age the table: mark stale, prune old entries and tombstones. Returns the
 * number of entries pruned. Call once per interval or more often. */
size_t peers_tick(struct peers *t, uint64_t now_ms);

/* The entry for 'id' if it is not a tombstone, else NULL. */
struct peer *peers_find(const struct peers *t, const uint8_t id[ID_PK_LEN]);

/*
 * Live hosts for 'model' (role HOST, state ALIVE, routes the model, not
 * PEER_DENY_HOST), at most
 * 'max' written to 'out', in a stable order that differs from node to node
 * (sorted by id, rotated by a hash of our own id) to spread load. Returns
 * the number written.
 */
size_t peers_hosts_for_model(
    const struct peers *t, const char *model, struct peer **out, size_t max);

/*
 * What to gossip: the signed bytes of every ALIVE peer's announcement and of
 * each "leaving" announcement still remembered (so the news spreads), at
 * most 'max' of them. The pointers are valid until the table changes.
 * Returns the number written. The caller sends its own announcement first.
 */
size_t peers_collect(
    const struct peers *t, const uint8_t **items, size_t *lens, size_t max);

/*
 * Peers that can relay to 'target': ALIVE, we hold a direct link to them,
 * they allow relaying (and are not PEER_DENY_RELAY) and their announcement
 * lists 'target' among their direct links. Returns the number written to 'out'
 * (at most 'max').
 */
size_t peers_relays_for(const struct peers *t, const uint8_t target[ID_PK_LEN],
    struct peer **out, size_t max);

/* Text for a state: "alive", "stale", "gone". */
const char *peers_state_name(enum peer_state s);

#endif
