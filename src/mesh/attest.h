/*
 * Attestation in the mesh: this node's own attestation message (field 38),
 * refreshed on every key epoch and every few minutes; for each peer, a
 * verdict computed when its message arrives and kept in a cache; nonce
 * challenges on an HTTP/2 stream (POST /sealmesh/attest) that prove a host
 * is alive and still holds its key; and the routing gate that reads only the
 * cached state.
 */
#ifndef SM_MESH_ATTEST_H
#define SM_MESH_ATTEST_H

#include <stdbool.h>

#include <cJSON.h>

#include "core/buf.h"
#include "mesh/node.h"
#include "net/link.h"

#define ATTEST_PATH "/sealmesh/attest"
#define ATTEST_REFRESH_MS (5 * 60 * 1000)
#define ATTEST_TICK_MS 1000
#define ATTEST_PINS_FILE "attest.pins"

/* Open the provider, load trust anchors, pins and allowed binaries, and make
 * this node's first message. Needs the inference key (tunnel_init first). */
int mesh_att_init(struct mesh *m) SM_MUST_CHECK;
/*
 * The provider --attest / --tpm / --event-log / --ima-log name (NULL for
 * none); the AK lives in o->state_dir. Used by mesh_att_init() and, under
 * privilege separation, by the signer.
 */
struct att_provider;
int mesh_att_provider_open(
    const struct mesh_opts *o, struct att_provider **out) SM_MUST_CHECK;
/* Re-attest now (new key epoch) and announce it. */
void mesh_att_refresh(struct mesh *m);
/* Put this node's message into its announcement. */
void mesh_att_fill_announce(struct mesh *m, struct announce *a);
/* A peer's announcement was merged: verify its message if it changed. */
void mesh_att_peer_seen(struct mesh *m, const struct peer *p);
/*
 * The routing gate (cached state only). With --require-attested-hosts, true
 * only for a host verified at or above --min-trust, freshly challenged, whose
 * attested inference key is the one in its announcement (the key a request
 * is sealed to), and whose binary is allowed. Always true without the flag.
 */
bool mesh_att_route_ok(struct mesh *m, const struct peer *p, const char **why);
/*
 * Whether to treat 'p' as hardened: the posture inside its verified
 * attestation when there is one (attested posture wins), else the
 * self-reported field 37 ('*self_hardened' always gets that one). '*why' is
 * set, a named refusal, when both exist and disagree.
 */
bool mesh_att_peer_hardened(struct mesh *m, const struct peer *p,
    bool *self_hardened, const char **why);
/* POST /sealmesh/attest from a peer: answer its challenge (TPM work on a
 * worker thread; busy beyond the rate limits and the queue bound). */
int mesh_att_on_stream(struct mesh *m, struct lstream *s);
void mesh_att_status_self(struct mesh *m, cJSON *st);
void mesh_att_status_peer(struct mesh *m, const struct peer *p, cJSON *o);
int mesh_att_metrics(struct mesh *m, struct buf *out) SM_MUST_CHECK;
void mesh_att_close(struct mesh *m);
/* Challenge peer 'hex' (its node id) now. 0, SM_ERR_NOTFOUND, UNAVAIL. */
int mesh_att_challenge_now(struct mesh *m, const char *hex) SM_MUST_CHECK;

#ifdef SM_TEST_BUILD
/* Test builds only: leave every challenge unanswered. */
extern bool mesh_att_test_ignore_challenges;
/* Test builds only: flip a byte inside every answer's quote/signature. */
extern bool mesh_att_test_corrupt_answers;
/* Test builds only: keep this many raw challenges open to every peer. */
extern unsigned mesh_att_test_flood;
/* Test builds only: attest a posture that is not hardened (field 37 as is). */
extern bool mesh_att_test_attest_unhardened;
#endif

#endif
