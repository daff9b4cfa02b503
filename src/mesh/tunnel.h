/*
 * Tunnels: a request for a remote model travels as one HTTP/2 stream to its
 * host (POST /sealmesh/tunnel), or through a neighbour that is linked to the
 * host (POST /sealmesh/relay, header sm-target). The host hands it only to
 * its local backends and streams the answer back. A relay copies bytes
 * between its two streams without parsing them.
 */
#ifndef SM_MESH_TUNNEL_H
#define SM_MESH_TUNNEL_H

#include <stdbool.h>

#include <cJSON.h>

#include "http/upstream.h"
#include "crypto/envelope.h"
#include "crypto/infkey.h"
#include "mesh/node.h"
#include "net/link.h"

#define TUNNEL_PATH "/sealmesh/tunnel"
#define TUNNEL_REPLAY_WINDOW_S 60 /* request timestamps within ±60 s */
#define TUNNEL_REPLAY_MAX                                                      \
	(1u << 20) /* ids per 2-window generation: ~8.7k sealed requests/s     \
		      sustained */
/*
 * Per-member limits (doc/THREAT-MODEL.md, "Freshness and per-member limits").
 * A sealed request is authenticated only by the MAC at its end, so the host
 * buffers it first: the declared size is reserved against the sending
 * member's share (4 envelopes of the largest size) and the node's total
 * before a byte is buffered, and the whole envelope must arrive within
 * TUNNEL_ENVELOPE_TIMEOUT_MS. Beyond either, the stream gets the typed
 * refusal RS_REFUSE_BUSY. A member is the peer whose link carries the
 * stream; a relay names the asker it forwards for (header sm-from), which
 * then gets its own share, and everything one link carries for others
 * counts against TUNNEL_PREAUTH_VIA_MAX as well, so naming made-up askers
 * gains at most that.
 */
#define TUNNEL_PREAUTH_MEMBER_MAX (4 * (uint64_t)ENV_WIRE_MAX)
#define TUNNEL_PREAUTH_VIA_MAX (2 * TUNNEL_PREAUTH_MEMBER_MAX)
#define TUNNEL_PREAUTH_NODE_MAX (8 * TUNNEL_PREAUTH_MEMBER_MAX)
#define TUNNEL_ENVELOPE_TIMEOUT_MS 60000
#define RELAY_MEMBER_MAX 64 /* relay streams open for one asking member */
#define RELAY_PATH "/sealmesh/relay"
#define RELAY_TARGET_HDR "sm-target"
#define RELAY_PATH_HDR "sm-path" /* path to open at the target */
#define RELAY_FROM_HDR "sm-from" /* relay -> host: the asker's node id */

/* The inference key schedule the flags give (epoch and grace, seconds). */
void tunnel_key_schedule(
    const struct mesh_opts *o, uint64_t *epoch_s, uint64_t *grace_s);
int tunnel_init(struct mesh *m) SM_MUST_CHECK;
/* Add this node's tunnel-related fields to its announcement. */
void tunnel_fill_announce(struct mesh *m, struct announce *a);
/*
 * Whether a prompt may go to this host now: reachable (directly or through a
 * relay) and allowed by the encryption policy. See tunnel_policy().
 */
bool tunnel_eligible(struct mesh *m, struct peer *p);
/* Why the policy refuses this host (NULL when it does not). */
const char *tunnel_refusal(struct mesh *m, struct peer *p);
/* A verified announcement was merged: remember hosts that offered E2E. */
void tunnel_peer_seen(struct mesh *m, const struct peer *p);
/* This node's current inference key; SM_ERR_NOTFOUND with --no-e2e. */
int tunnel_current_key(struct mesh *m, struct infkey_pub *out);
/*
 * Open a stream to 'path' on host 'id': on its link, or through a relay
 * (which opens the same path on its link to the host). For exchanges other
 * than tunnels, e.g. attestation challenges.
 */
int tunnel_open_stream(struct mesh *m, const uint8_t id[ID_PK_LEN],
    const char *path, const struct lstream_cb *cb, void *arg,
    struct lstream **out) SM_MUST_CHECK;
/* Own E2E fields for /api/status, and metrics. */
void tunnel_status_self(struct mesh *m, cJSON *st);
int tunnel_metrics(struct mesh *m, struct buf *out) SM_MUST_CHECK;
/* The gateway's remote attempt (struct gateway_remote.start). */
int tunnel_start(void *arg, const struct route_target *t,
    const struct hreq *req, const struct oai_peek *pk,
    const struct upstream_cbs *cbs, void *user, struct upstream **out);
/* A stream a peer opened that is not gossip. */
int tunnel_on_stream(struct mesh *m, struct link *l, struct lstream *s,
    const struct lstream_req *req);
/* Per-peer tunnel fields for /api/status. */
void tunnel_status_peer(struct mesh *m, const struct peer *p, cJSON *o);

#ifdef SM_TEST_BUILD
/* Test builds only: append every byte a relay forwards to this file. */
extern int tunnel_test_record_fd;
/* Test builds only: behave as a node from before response stream v2 (no
 * announcement field 60, no envelope flags sent, flags refused). */
extern bool tunnel_test_old_rstream;
/* Test builds only: open this many tunnel streams to the first linked host,
 * each declaring the largest envelope and never sending its MAC. */
extern unsigned tunnel_test_flood;
/* ... with plaintext HTTP requests whose bodies never complete instead. */
extern bool tunnel_test_flood_plain;
/* Test builds only: no preauth share (the control of the flood test). */
extern bool tunnel_test_no_preauth_limit;
#endif

#endif
