/*
 * Signed peer announcements (proto/mesh.proto, doc/PROTOCOL.md "Gossip:
 * signed announcements"). Each node signs its own PeerAnnouncement with its
 * Ed25519 identity; everyone else forwards the signed bytes unchanged, so no
 * node can alter what another says about itself. No I/O here.
 *
 * Wire: SignedAnnouncement { 1: body = PeerAnnouncement bytes,
 *                            2: signature = Ed25519("sealmesh-announce-v1\0"
 *                                                   || body) }
 */
#ifndef SM_MESH_ANNOUNCE_H
#define SM_MESH_ANNOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "mesh/identity.h"

#define ANN_DOMAIN "sealmesh-announce-v1" /* signed with its NUL */
#define ANN_DOMAIN_LEN (sizeof(ANN_DOMAIN))
#define ANN_MESH_ID_LEN 16
#define ANN_INFERENCE_KEY_LEN 32

/* Limits: a hostile peer must not make us allocate without bound. */
#define ANN_MAX_LEN (64 * 1024) /* one SignedAnnouncement, whole */
#define ANN_MAX_MODELS 64 /* per list (serving, hosted) */
#define ANN_MAX_ADDRS 16 /* addresses */
#define ANN_MAX_LINKED 512 /* linked_peers */
#define ANN_MAX_STR 255 /* version, model name, address */
#define ANN_MAX_POSTURE 1024 /* security_posture */
#define ANN_MAX_ATTESTATION (16 * 1024) /* hardware_attestation_blob */
#define ANN_MAX_CREDENTIAL 256 /* membership_credential */
#define GOSSIP_MAX_REVOCATIONS 1024 /* revocations per GossipMessage */
#define GOSSIP_REVOCATION_MAX_LEN 256 /* one revocation */

/* A GossipMessage: the transport caps its frames at GOSSIP_MAX_LEN. */
#define GOSSIP_MAX_LEN (8 * 1024 * 1024)
#define GOSSIP_MAX_ANNOUNCEMENTS 1100 /* PEERS_MAX + self + slack */

/* mesh-llm's NodeRole numbers; unknown values are kept as they came. */
enum ann_role {
	ANN_ROLE_UNSPECIFIED = 0,
	ANN_ROLE_WORKER = 1,
	ANN_ROLE_HOST = 2,
	ANN_ROLE_CLIENT = 3,
};

/*
 * One announcement in plain C. For announce_sign() the caller fills it with
 * its own pointers (nothing is taken over; do not announce_free() such a
 * struct). announce_verify_parse() fills it with pointers it owns; release
 * those with announce_free(), or hand the struct to peers_merge().
 */
struct announce {
	uint8_t id[ID_PK_LEN]; /* endpoint_id: set from the signer */
	uint8_t mesh_id[ANN_MESH_ID_LEN];
	uint64_t seq;
	uint32_t role; /* enum ann_role */
	uint32_t http_port; /* 0: not advertised */
	uint32_t console_port; /* 0: not advertised */
	uint64_t vram_bytes;
	const char *version; /* NULL: absent */
	const char *const *serving;
	size_t n_serving;
	const char *const *hosted;
	size_t n_hosted;
	bool hosted_known;
	const char *const *addrs; /* "host:port" */
	size_t n_addrs;
	const uint8_t (*linked)[ID_PK_LEN]; /* ids of direct links */
	size_t n_linked;
	bool relay_allowed;
	bool leaving;
	bool has_inference_key;
	uint8_t inference_key[ANN_INFERENCE_KEY_LEN];
	uint32_t inference_key_epoch; /* non-zero when has_inference_key */
	uint32_t gossip_version; /* field 47; 0: absent (a v1 node) */
	uint32_t envelope_version; /* newest sealed-request version the
				      host opens; 0 or 1: version 1 only */
	uint32_t rs_version; /* response_stream_version; 0: absent (v1) */
	const uint8_t *posture; /* NULL: absent */
	size_t posture_len;
	const uint8_t *attestation; /* NULL: absent */
	size_t attestation_len;
	const uint8_t *credential; /* membership credential; NULL: absent */
	size_t credential_len;

	/* Set by announce_verify_parse(): the exact SignedAnnouncement bytes,
	 * forward these and nothing else. */
	uint8_t *wire;
	size_t wire_len;
	void *priv_; /* decoded message the pointers above refer to */
};

/*
 * The seq for a new announcement: 'wall_ms' (ms since the epoch) if larger
 * than 'prev', else prev + 1. A restarted node starts from its wall clock,
 * so its seq is higher than before the restart.
 */
uint64_t announce_next_seq(uint64_t prev, uint64_t wall_ms);

/*
 * Encode 'a' as a PeerAnnouncement with endpoint_id = id->pk (a->id is
 * ignored), sign it, and append the SignedAnnouncement bytes to 'out'.
 * Returns 0; SM_ERR_INVAL when a field breaks a limit above (the same checks
 * a receiver applies); SM_ERR_TOOBIG past ANN_MAX_LEN or out->max;
 * SM_ERR_NOMEM. On failure 'out' is unchanged.
 */
int announce_sign(const struct announce *a, const struct identity *id,
    struct buf *out) SM_MUST_CHECK;

/*
 * Decode a SignedAnnouncement, verify its signature by the endpoint_id in
 * its body, and fill 'out'. 'out' is zeroed on entry and on failure. On
 * success 'out' owns a copy of the input (out->wire) and everything it
 * points to; free with announce_free(). Returns 0; SM_ERR_TOOBIG (len >
 * ANN_MAX_LEN); SM_ERR_PROTO (malformed, missing field, limit broken);
 * SM_ERR_VERIFY (bad signature); SM_ERR_NOMEM.
 */
int announce_verify_parse(
    const uint8_t *p, size_t len, struct announce *out) SM_MUST_CHECK;

/*
 * Walk the top-level fields of a protobuf message without decoding it:
 * 0 when it is well-formed at that level with at most 'max' fields, else
 * SM_ERR_PROTO. Run before protobuf-c allocates anything.
 */
int
announce_scan_fields(const uint8_t *p, size_t len, size_t max) SM_MUST_CHECK;

/*
 * For the privilege-separated signer (doc/PRIVSEP.md), before it signs a
 * PeerAnnouncement body the worker built: the body must decode, name
 * 'node_id' as its endpoint, carry exactly 'posture' (the signer's own
 * measurement of the worker) when it carries field 37, and an inference key
 * only when it is one of the 'n_keys' (epoch, key) pairs in 'keys'
 * (4-byte big-endian epoch, 32-byte key each). 0, SM_ERR_PROTO (malformed),
 * SM_ERR_PERM (a claim the signer does not stand behind).
 */
int announce_body_check(const uint8_t *body, size_t len,
    const uint8_t node_id[ID_PK_LEN], const uint8_t *posture,
    size_t posture_len, const uint8_t *keys, size_t n_keys) SM_MUST_CHECK;

/* Free what announce_verify_parse() allocated; 'a' is zeroed. NULL ok. */
void announce_free(struct announce *a);

/* Whether announcement 'a' lists 'model' as one it accepts inference for:
 * hosted models when hosted_known, else serving models. */
bool announce_routes_model(const struct announce *a, const char *model);

/*
 * Encode a GossipMessage holding the given signed announcements verbatim
 * (each as produced by announce_sign or held in announce.wire), appending it
 * to 'out'. Returns 0, SM_ERR_INVAL (count > GOSSIP_MAX_ANNOUNCEMENTS or an
 * item > ANN_MAX_LEN), SM_ERR_TOOBIG (past GOSSIP_MAX_LEN or out->max),
 * SM_ERR_NOMEM.
 */
struct ProtobufCMessage;
/*
 * Append the packed protobuf message 'm' to 'out' when it packs to at most
 * 'max' bytes. 0, SM_ERR_TOOBIG (past 'max' or out->max), SM_ERR_NOMEM; on
 * failure 'out' is unchanged. Shared by every writer of mesh messages.
 */
int announce_pb_append(struct buf *out, const struct ProtobufCMessage *m,
    size_t max) SM_MUST_CHECK;
int announce_msg_write(const uint8_t *const *items, const size_t *lens,
    size_t n, bool request_full, struct buf *out) SM_MUST_CHECK;
/* The same, with 'n_revs' revocations (each 1..GOSSIP_REVOCATION_MAX_LEN
 * bytes, at most GOSSIP_MAX_REVOCATIONS) carried verbatim. */
int announce_msg_write_revs(const uint8_t *const *items, const size_t *lens,
    size_t n, const uint8_t *const *revs, const size_t *rev_lens, size_t n_revs,
    bool request_full, struct buf *out) SM_MUST_CHECK;

/*
 * Decoded GossipMessage. Each announcement is verified separately by
 * announce_verify_parse(): one bad item must not discard the others.
 */
struct announce_msg {
	bool request_full;
	size_t n;
	const uint8_t **items; /* n views into the decoded message */
	size_t *lens;
	size_t n_revs; /* revocations: views, unverified */
	const uint8_t **revs;
	size_t *rev_lens;
	void *priv_;
};

/*
 * Decode a GossipMessage (no signature checks). 'out' is zeroed on entry.
 * Returns 0; SM_ERR_TOOBIG (len > GOSSIP_MAX_LEN or too many items);
 * SM_ERR_PROTO; SM_ERR_NOMEM. Free with announce_msg_free().
 */
int announce_msg_parse(
    const uint8_t *p, size_t len, struct announce_msg *out) SM_MUST_CHECK;
void announce_msg_free(struct announce_msg *m);

#endif
