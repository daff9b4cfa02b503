/*
 * Gossip anti-entropy (v2): what two nodes send each other so that each ends
 * up with the newest signed announcement of every node, at a cost that
 * follows what changed rather than how many nodes there are. Pure logic, no
 * I/O: src/mesh/node.c drives it over link streams, bench/sim.c over a
 * simulated network (doc/PROTOCOL.md, "Gossip anti-entropy (v2)").
 *
 * The set a node reconciles is one entry (node id, seq) per announcement it
 * would forward (its own, every ALIVE peer's, and remembered "leaving"
 * ones). Each entry hashes to 16 bytes; a bucket (id[0]) digest is the XOR
 * of its entries' hashes, the root the XOR of all 256 buckets. A contact is
 * at most three round trips, each answer derived from what the other side
 * sent:
 *
 *   root            -> buckets        (only when the roots differ)
 *   buckets         -> entries of the buckets that differ
 *   entries         -> announcements the other lacks + ids it has newer
 *   want (ids)      -> those announcements
 *
 * A message with no v2 'version' comes from a v1 node: the caller answers it
 * the v1 way (everything it knows) and remembers that the link is v1.
 */
#ifndef SM_MESH_GOSSIP_H
#define SM_MESH_GOSSIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "mesh/announce.h"
#include "mesh/identity.h"
#include "mesh/peers.h"

#define GOSSIP_VERSION 2
#define GOSSIP_BUCKETS 256
#define GOSSIP_HASH_LEN 16
#define GOSSIP_BUCKETS_LEN (GOSSIP_BUCKETS * GOSSIP_HASH_LEN)
#define GOSSIP_ENTRY_LEN (ID_PK_LEN + 8) /* id || seq big-endian */
#define GOSSIP_HASH_DOMAIN "sealmesh-gossip-v2" /* hashed with its NUL */

/* Per-message limits (a receiver refuses more; a sender sends less and
 * leaves the rest to the next contact). */
#define GOSSIP_MAX_ENTRIES 16384
#define GOSSIP_MAX_WANT 1024
#define GOSSIP_ANN_BUDGET (4 * 1024 * 1024) /* announcement bytes/answer */

/*
 * Liveness is decoupled from re-signing. A v2 node re-signs its announcement
 * when its content changes, and otherwise once per refresh period:
 * min(GOSSIP_REFRESH_INTERVALS gossip intervals, GOSSIP_REFRESH_MS). A peer
 * known only through gossip is stale after PEERS_STALE_INTERVALS refresh
 * periods without a newer seq; one we hold a live link to is heard through
 * the link's PINGs every interval, as before.
 *
 * THE freshness constant: any bound on announcement age (seq is the signer's
 * wall clock in ms) must allow at least GOSSIP_ANN_MAX_AGE_MIN_MS, i.e. three
 * refresh periods, or live v2 nodes would be refused between refreshes.
 */
#define GOSSIP_REFRESH_INTERVALS 10
#define GOSSIP_REFRESH_MS (5 * 60 * 1000)
#define GOSSIP_ANN_MAX_AGE_MIN_MS (3 * GOSSIP_REFRESH_MS)

/* A v2 announcement lists at most this many linked peers (relay routes),
 * hosts first; a v1 announcement may carry up to ANN_MAX_LINKED. */
#define GOSSIP_LINKED_SAMPLE 32

/* The refresh period for a gossip interval (see above). */
uint64_t gossip_refresh_ms(uint64_t interval_ms);

struct gossip_digest {
	uint8_t b[GOSSIP_BUCKETS][GOSSIP_HASH_LEN];
};

struct gossip_entry {
	uint8_t id[ID_PK_LEN];
	uint64_t seq;
};

/* BLAKE2b-128("sealmesh-gossip-v2\0" || id || seq big-endian). */
void gossip_entry_hash(
    const uint8_t id[ID_PK_LEN], uint64_t seq, uint8_t out[GOSSIP_HASH_LEN]);
/* The bucket of an id: its first byte. */
static inline unsigned
gossip_bucket_of(const uint8_t id[ID_PK_LEN])
{
	return id[0];
}
/* Toggle an entry hash in (or out of) its bucket: XOR is its own inverse,
 * so a store updates a digest in O(1) when an entry changes. */
void gossip_digest_xor(struct gossip_digest *d, const uint8_t id[ID_PK_LEN],
    const uint8_t h[GOSSIP_HASH_LEN]);
/* XOR of the 256 buckets. */
void
gossip_digest_root(const struct gossip_digest *d, uint8_t out[GOSSIP_HASH_LEN]);

/*
 * What the anti-entropy logic needs from a node's state. Everything is read
 * only; the caller merges received announcements itself (verification and
 * peers_merge) before asking for an answer.
 */
struct gossip_store {
	void *arg;
	/* The digest of the set (kept current by the store). */
	const struct gossip_digest *(*digest)(void *arg);
	/* Entries of the set in bucket 'b'; writes at most 'max', returns how
	 * many there are in all (more than 'max': the bucket did not fit). */
	size_t (*bucket)(
	    void *arg, unsigned b, struct gossip_entry *out, size_t max);
	/* The highest seq held for 'id' in any state (tombstones included),
	 * 0 if none: what is not newer than this is not worth asking for. */
	uint64_t (*seq_of)(void *arg, const uint8_t id[ID_PK_LEN]);
	/* The signed bytes of 'id's announcement if it is in the set. */
	bool (*wire)(void *arg, const uint8_t id[ID_PK_LEN], const uint8_t **p,
	    size_t *len);
};

/*
 * One GossipMessage, v1 and v2 fields together (proto/mesh.proto). To write
 * one, fill it with your own pointers (nothing is taken over). From
 * gossip_msg_parse() every pointer is owned by 'priv_'/the struct; release
 * with gossip_msg_free().
 */
struct gossip_msg {
	uint32_t version; /* 0: a v1 sender */
	bool request_full;
	bool has_root;
	uint8_t root[GOSSIP_HASH_LEN];
	const uint8_t *buckets; /* NULL or GOSSIP_BUCKETS_LEN bytes */
	const uint8_t *bucket_ids; /* bucket numbers 'entries' covers */
	size_t n_bucket_ids;
	const struct gossip_entry *entries;
	size_t n_entries;
	const uint8_t (*want)[ID_PK_LEN];
	size_t n_want;
	const uint8_t *const *items; /* SignedAnnouncement bytes */
	const size_t *lens;
	size_t n_items;
	/* Membership revocations (field 3), carried verbatim, unverified. */
	const uint8_t *const *revs;
	const size_t *rev_lens;
	size_t n_revs;
	void *priv_;
};

/*
 * Encode 'm' as a GossipMessage appended to 'out'. Returns 0; SM_ERR_INVAL
 * (a count past the limits above or GOSSIP_MAX_ANNOUNCEMENTS, an item empty
 * or over ANN_MAX_LEN, more than 256 bucket ids); SM_ERR_TOOBIG (past
 * GOSSIP_MAX_LEN or out->max); SM_ERR_NOMEM. On failure 'out' is unchanged.
 */
int gossip_msg_write(const struct gossip_msg *m, struct buf *out) SM_MUST_CHECK;

/*
 * Decode a GossipMessage of either version (no signature checks: verify
 * each item with announce_verify_parse()). 'out' is zeroed on entry and on
 * failure. Returns 0; SM_ERR_TOOBIG (len > GOSSIP_MAX_LEN); SM_ERR_PROTO
 * (malformed, too many fields or items, a root not 16 bytes, buckets not
 * 4096, an entry not 40 bytes, a want not 32, an empty or oversized item);
 * SM_ERR_NOMEM. Free with gossip_msg_free().
 */
int gossip_msg_parse(
    const uint8_t *p, size_t len, struct gossip_msg *out) SM_MUST_CHECK;
void gossip_msg_free(struct gossip_msg *m);

/*
 * The opening message of a contact: version 2 and our root, and when 'mine'
 * is not NULL that one signed announcement too (our own, just changed: news
 * travels with the opening instead of waiting for the digests).
 */
int gossip_open(const struct gossip_store *s, const uint8_t *mine,
    size_t mine_len, struct buf *out) SM_MUST_CHECK;
/* The same, also carrying 'n_revs' membership revocations (all we know:
 * they are few, and a contact's opening is how they spread between v2
 * nodes; at most GOSSIP_MAX_REVOCATIONS). */
int gossip_open_revs(const struct gossip_store *s, const uint8_t *mine,
    size_t mine_len, const uint8_t *const *revs, const size_t *rev_lens,
    size_t n_revs, struct buf *out) SM_MUST_CHECK;

/*
 * The v2 answer to 'in' (a request, or an answer we got back), appended to
 * 'out' (always a version-2 message). '*more' is set when it says anything
 * beyond the version: the opener of a contact sends such an answer as a
 * follow-up; one that says nothing ends the contact. Returns 0 or the
 * errors of gossip_msg_write() (on failure 'out' is unchanged).
 */
int gossip_answer(const struct gossip_store *s, const struct gossip_msg *in,
    struct buf *out, bool *more) SM_MUST_CHECK;

/*
 * A store over a peer table plus our own announcement: the set is ourselves,
 * every ALIVE peer and every remembered "leaving" tombstone (what v1 gossip
 * forwards, peers_collect()). gossip_peers_init() builds the digest and an
 * index sorted by id (O(n log n); lookups and bucket listings are then
 * O(log n)); build it again after the table or our announcement changes, and
 * release it with gossip_peers_clear(). Without memory for the index it
 * falls back to scanning the table.
 */
struct gossip_peers {
	const struct peers *t;
	uint8_t self[ID_PK_LEN];
	uint64_t self_seq;
	const uint8_t *self_wire; /* NULL: not in the set */
	size_t self_len;
	struct gossip_digest d;
	const struct peer **idx; /* every entry of t, sorted by id; or NULL */
};
void gossip_peers_init(struct gossip_peers *gp, const struct peers *t,
    const uint8_t self[ID_PK_LEN], uint64_t self_seq, const uint8_t *self_wire,
    size_t self_len);
void gossip_peers_clear(struct gossip_peers *gp);
void gossip_peers_store(struct gossip_peers *gp, struct gossip_store *s);

#endif
