/*
 * A mesh node: identity-pinned links to peers (net/link), joining with an
 * invite token, signed gossip, the peer table, and the routing and tunnel
 * hooks the gateway calls for remote models.
 */
#ifndef SM_MESH_NODE_H
#define SM_MESH_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include <cJSON.h>
#include <uv.h>

#include "core/buf.h"
#include "http/gateway.h"
#include "mesh/announce.h"
#include "mesh/identity.h"
#include "mesh/peers.h"
#include "mesh/route.h"
#include "mesh/token.h"

#define MESH_MAX_JOIN 8
#define MESH_MAX_ADVERTISE 16
#define MESH_MAX_LINKS 256
#define MESH_MAX_SEEN_MODELS 256
#define MESH_DIAL_TIMEOUT_MS 5000
#define MESH_LEAVE_FLUSH_MS 100 /* leaving gossip goes out before GOAWAY */
#define MESH_SECRET_FILE "mesh.secret"

struct link_ctx;
struct tunnel_state;
struct mesh_att;
struct link_listener;
struct link;
struct mesh_dial;
struct roster;

struct signer_client;
struct signer_hello;

struct mesh_opts {
	/* Privilege separation (doc/PRIVSEP.md): the signer holds the keys and
	 * the attestation provider; NULL when this process holds them. */
	struct signer_client *signer;
	const struct signer_hello *signer_hello;
	const char *bind; /* default "0.0.0.0" */
	uint16_t port; /* 0: ephemeral */
	const char *advertise[MESH_MAX_ADVERTISE];
	size_t n_advertise;
	const char *join[MESH_MAX_JOIN]; /* invite tokens */
	size_t n_join;
	uint64_t gossip_interval_ms;
	size_t max_peers; /* peer table cap; 0: PEERS_MAX */
	bool no_relay;
	uint32_t role; /* enum ann_role */
	const char *state_dir; /* where a created mesh keeps its secret */
	int api_port;
	int console_port;
	/* End-to-end encryption (see mesh/tunnel.h). */
	bool require_hardened; /* route only to hosts reporting "hardened" */
	/* Attestation (see mesh/attest.h). */
	const char *attest; /* --attest none|software|tpm, NULL: choose */
	const char *tpm_tcti; /* --tpm */
	const char *tpm_ca; /* --tpm-ca DIR */
	const char *tpm_crl; /* --tpm-crl DIR */
	const char *allowed_binaries;
	int min_trust; /* enum att_level, default tpm */
	bool require_attested;
	uint64_t challenge_interval_ms;
	uint64_t attest_window_ms;
	/* Measured boot and IMA (attest/measure.h). */
	const char *event_log; /* --event-log FILE (host) */
	const char *ima_log; /* --ima-log FILE (host) */
	const char *pcr_policy; /* --pcr-policy FILE (verifier) */
	const char *ima_allowlist; /* --ima-allowlist FILE (verifier) */
	bool require_measured_binary; /* --require-measured-binary */
	bool no_e2e; /* advertise no inference key, send plaintext */
	bool allow_plaintext; /* send plaintext to hosts without a key */
	uint64_t key_epoch_s; /* inference key lifetime (default 3600) */
	uint32_t envelope_version; /* newest sealed-request version to send
				      and offer; 0: ENV_VERSION_MAX */
	/* Response shaping (see mesh/shape.h). */
	bool no_shaping; /* neither ask for nor send padded, paced answers */
	uint32_t response_pacing_ms; /* 0: pad only */
	uint32_t response_bucket; /* smallest frame bucket */
	/* Freshness and per-member limits (mesh/peers.h, mesh/tunnel.h). */
	uint64_t clock_skew_ms; /* 0: PEERS_SKEW_DEFAULT_MS */
	const char *memory_dir; /* downgrade memory file; NULL: memory only */
	/* Test builds only (--test-gossip-v1): speak gossip v1 as a node
	 * before anti-entropy did (full push, re-sign every interval). */
	bool gossip_v1;
	/* Streams per link (net/link.h; 0: the defaults). */
	uint32_t link_streams; /* --link-streams */
	uint32_t queue_max; /* --queue-max */
	uint32_t queue_timeout_ms; /* --queue-timeout */
};

struct mesh_link {
	uint8_t id[ID_PK_LEN];
	struct link *l; /* NULL: slot free */
	bool up;
	/* Owned mesh: the peer proved membership (mesh/roster.h); until
	 * then only the membership streams pass. Always true in a legacy
	 * mesh. */
	bool admitted;
	uint64_t up_ms;
	bool gossip_v1; /* the peer answered or asked the v1 way */
};

/* A peer we could not dial: wait before trying again. */
struct mesh_backoff {
	uint8_t id[ID_PK_LEN];
	uint64_t retry_at_ms;
	uint32_t fails;
};

struct mesh {
	uv_loop_t *loop;
	struct mesh_opts opts;
	const struct identity *id;
	struct gateway *gw;
	struct router *router;
	struct link_ctx *lctx;
	struct link_listener *listener;
	uint16_t port;
	uint8_t secret[TOKEN_SECRET_LEN];
	uint8_t mesh_id[TOKEN_MESH_ID_LEN];
	char *token; /* my invite token (contains the secret: never log it) */
	char *addrs[MESH_MAX_ADVERTISE];
	size_t n_addrs;
	struct peers peers;
	struct mesh_link links[MESH_MAX_LINKS];
	struct mesh_dial *dials; /* in progress */
	struct mesh_backoff backoff[MESH_MAX_LINKS];
	char *seen_models[MESH_MAX_SEEN_MODELS];
	size_t n_seen;
	uint64_t seq;
	uint64_t signed_ms; /* when my_ann got its seq (monotonic clock) */
	struct buf my_ann; /* my current SignedAnnouncement */
	uv_timer_t gossip_timer;
	uv_timer_t soon_timer; /* debounced gossip after a change */
	bool leaving;
	bool joined_once;
	void (*on_join_failed)(struct mesh *m, const char *why);
	struct tunnel_state *tun; /* owned by mesh/tunnel.c */
	struct mesh_att *att; /* owned by mesh/attest.c */
	struct roster *roster; /* owned by mesh/roster.c */
	char why[256]; /* last reason a model had no eligible host */
	/* Counters for /metrics and tests. */
	uint64_t tunnels_out, tunnels_in, relayed, gossip_rx, forged_dropped;
	uint64_t gossip_tx_bytes;
	uint64_t e2e_sealed, e2e_opened, e2e_opened_v2, e2e_decrypt_failures,
	    e2e_refused;
	uint64_t plaintext_out;
};

/*
 * Start listening, load or create the mesh secret (or take it from the first
 * --join token), and dial the join targets. Hooks itself into the router and
 * the gateway. Returns 0 or SM_ERR_* with a message logged.
 */
int mesh_open(struct mesh *m, uv_loop_t *loop, const struct identity *id,
    struct router *rt, struct gateway *gw,
    const struct mesh_opts *opts) SM_MUST_CHECK;
/* Say we are leaving (signed announcement + GOAWAY), then close. */
void mesh_leave(struct mesh *m);
/* Mesh counters in Prometheus text. */
int mesh_metrics(struct mesh *m, struct buf *out) SM_MUST_CHECK;
#ifdef SM_TEST_BUILD
/* Test builds only: also gossip a copy of my announcement with one byte
 * flipped, to prove that peers drop forged announcements. */
extern bool mesh_test_forge;
/* Test builds only (SIGUSR2): gossip, to every link, the remembered signed
 * announcements of peers no longer held (pruned), unchanged. */
void mesh_test_replay(struct mesh *m);
#endif
/* Add mesh fields to /api/status. */
void mesh_status_json(struct mesh *m, cJSON *st);
/* The link to a peer, if up. */
struct link *mesh_link_to(struct mesh *m, const uint8_t id[ID_PK_LEN]);
/* Re-sign my announcement (after a change) and gossip it soon. */
void mesh_changed(struct mesh *m);
/*
 * A revoked peer: drop its announcement (a newer one is refused by the
 * roster), close our link to it (its streams end with SM_ERR_CLOSED).
 * Returns true when a link was closed.
 */
bool mesh_drop_peer(struct mesh *m, const uint8_t id[ID_PK_LEN]);
/* A peer refused our membership: dial it again only after a backoff. */
void mesh_dial_backoff(struct mesh *m, const uint8_t id[ID_PK_LEN]);
/* The peer on 'l' proved membership: the link carries mesh traffic now. */
void mesh_link_admitted(struct mesh *m, struct link *l);

#endif
