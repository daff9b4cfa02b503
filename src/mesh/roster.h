/*
 * Membership on a running node (doc/PROTOCOL.md, "Membership"): which mode
 * the mesh is in, this node's credential, the owner key when this node
 * holds it, the revocations it knows (persisted in the state dir), the
 * single-use invites it redeemed (persisted, bounded) and the admission of
 * each new link. Formats and signatures are mesh/member.h; this file does
 * the files and the link streams, node.c calls it at fixed points.
 *
 * Files in the state dir (all 0600, written by this node or the CLI):
 *   owner/identity.key  the owner key (an Ed25519 seed, as identity.key)
 *   member.cred         this node's credential (MEMBER_CRED_LEN bytes)
 *   revocations         revocation records (MEMBER_REV_LEN bytes each),
 *                       appended by `sealmesh revoke` and by this node
 *   invites.used        redeemed single-use invites: id[16] | u64 expires
 *   mesh.addrs          this node's addresses, one a line (for
 *                       `sealmesh invite`)
 */
#ifndef SM_MESH_ROSTER_H
#define SM_MESH_ROSTER_H

#include <stdbool.h>
#include <stdint.h>

#include <cJSON.h>

#include "core/buf.h"
#include "mesh/member.h"

#define ROSTER_OWNER_DIR "owner"
#define ROSTER_CRED_FILE "member.cred"
#define ROSTER_REV_FILE "revocations"
#define ROSTER_USED_FILE "invites.used"
#define ROSTER_ADDRS_FILE "mesh.addrs"
#define ROSTER_MAX_REVS 1024 /* = GOSSIP_MAX_REVOCATIONS */
#define ROSTER_MAX_USED 4096 /* unexpired single-use invites redeemed */
#define ROSTER_ADMIT_MS 5000 /* a new link proves membership within */
#define ROSTER_MAX_UNADMITTED 32 /* links waiting for admission */
#define ROSTER_MEMBER_PATH "/sealmesh/member"
#define ROSTER_REDEEM_PATH "/sealmesh/redeem"

struct mesh;
struct link;
struct lstream;
struct lstream_req;
struct announce;
struct peer;

/*
 * Decide the mode and load the files. 'inv' is the invite of --join (NULL
 * when joining with a token or creating a mesh). In an owned mesh this
 * sets m->mesh_id from the owner key. Returns 0 or SM_ERR_* (logged).
 */
int roster_open(struct mesh *m, const struct member_invite *inv) SM_MUST_CHECK;
/* Free and wipe; stop the timer. */
void roster_close(struct mesh *m);
/* Whether the mesh is owned (false: legacy token mesh). */
bool roster_owned(const struct mesh *m);

/* My credential for my announcement (nothing in a legacy mesh). */
void roster_fill_announce(struct mesh *m, struct announce *a);
/*
 * May this announcement be merged? 0 with '*denied' (PEER_DENY_*) set, or
 * SM_ERR_PERM (revoked, no or bad credential). Legacy: always 0, none
 * denied.
 */
int roster_check_announce(
    struct mesh *m, const struct announce *a, uint8_t *denied) SM_MUST_CHECK;
/* Whether 'id' is revoked. */
bool roster_revoked(const struct mesh *m, const uint8_t id[ID_PK_LEN]);

/* A link came up: start the admission exchange if we dialed it. */
void roster_link_up(struct mesh *m, struct link *l);
/* A stream on a link not (yet) admitted, or a membership path: handle it.
 * Returns what on_stream should return. */
int roster_on_stream(struct mesh *m, struct link *l, struct lstream *s,
    const struct lstream_req *req, bool admitted);
/* Whether 'path' is one of the membership paths. */
bool roster_path(const char *path);

/* Once per gossip interval: pick up new revocations from the state dir. */
void roster_tick(struct mesh *m);
/* Revocations to gossip: pointers valid until the next roster call. */
size_t
roster_revs(struct mesh *m, const uint8_t **items, size_t *lens, size_t max);
/* Revocations received in gossip: verify, persist, enforce. */
void roster_merge_revs(
    struct mesh *m, const uint8_t *const *items, const size_t *lens, size_t n);

#ifdef SM_TEST_BUILD
/* Test builds only: a node without the relay right announces relay_allowed
 * and relays anyway, to prove that the others never choose it. */
extern bool roster_test_claim_relay;
#endif

/* /api/status and /metrics fields. */
void roster_status(struct mesh *m, cJSON *st);
/* A peer's "rights" in /api/status (owned mesh only). */
void roster_status_peer(struct mesh *m, const struct peer *p, cJSON *o);
int roster_metrics(struct mesh *m, struct buf *out) SM_MUST_CHECK;

#endif
