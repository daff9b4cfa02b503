/*
 * Membership of an owned mesh (doc/PROTOCOL.md, "Membership: owner,
 * invites, credentials, revocations"). Formats, signing and verification;
 * no I/O here.
 *
 * Every record is signed by the mesh owner's Ed25519 key:
 *   sig = Ed25519(owner_sk, "sealmesh-member-v1\0" || record without sig)
 * and its first byte says what it is, so one signature can never be read as
 * another kind of record. Integers are big-endian; times are Unix seconds.
 *
 *   credential (MEMBER_CRED_LEN = 146 bytes, binary)
 *     u8 0x11 | owner_pk[32] | node_id[32] | u8 rights | u64 issued |
 *     u64 expires (0: never) | sig[64]
 *   revocation (MEMBER_REV_LEN = 137 bytes, binary)
 *     u8 0x12 | owner_pk[32] | node_id[32] | u64 issued | sig[64]
 *   invite (base64url text without padding, like the token)
 *     u8 0x02 | owner_pk[32] | invite_id[16] | u8 rights | u8 flags |
 *     u64 expires | join_secret[32] | node_id[32] | u8 n_addrs |
 *     n_addrs x (u8 len | "host:port") | sig[64]
 *
 * The mesh id of an owned mesh is BLAKE2b-128("sealmesh-owner-mesh-v1\0" ||
 * owner_pk), so a mesh names its owner and nobody can present another.
 */
#ifndef SM_MESH_MEMBER_H
#define SM_MESH_MEMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "mesh/identity.h"
#include "mesh/token.h"

#define MEMBER_DOMAIN "sealmesh-member-v1" /* signed with its NUL */
#define MEMBER_MESH_DOMAIN "sealmesh-owner-mesh-v1" /* hashed with its NUL */

#define MEMBER_TYPE_INVITE 0x02 /* the token is 0x01 */
#define MEMBER_TYPE_CRED 0x11
#define MEMBER_TYPE_REV 0x12

#define MEMBER_INVITE_ID_LEN 16
#define MEMBER_CRED_LEN (1 + 2 * ID_PK_LEN + 1 + 8 + 8 + ID_SIG_LEN)
#define MEMBER_REV_LEN (1 + 2 * ID_PK_LEN + 8 + ID_SIG_LEN)
#define MEMBER_INVITE_FIXED                                                    \
	(1 + ID_PK_LEN + MEMBER_INVITE_ID_LEN + 1 + 1 + 8 + TOKEN_SECRET_LEN + \
	    ID_PK_LEN + 1)
#define MEMBER_INVITE_BIN_MAX                                                  \
	(MEMBER_INVITE_FIXED + TOKEN_MAX_ADDRS * (1 + TOKEN_ADDR_MAX) +        \
	    ID_SIG_LEN)
#define MEMBER_INVITE_STR_MAX (((MEMBER_INVITE_BIN_MAX * 4) + 2) / 3 + 1)

/* Rights. Every member may use the mesh; host and relay are granted. */
#define MEMBER_RIGHT_HOST 0x01 /* its announced models are routed to */
#define MEMBER_RIGHT_RELAY 0x02 /* it may forward streams for others */
#define MEMBER_RIGHT_USE 0x04 /* it may send requests */
#define MEMBER_RIGHTS_ALL                                                      \
	(MEMBER_RIGHT_HOST | MEMBER_RIGHT_RELAY | MEMBER_RIGHT_USE)
#define MEMBER_RIGHTS_TEXT_MAX 16 /* "host,relay,use" + NUL */

#define MEMBER_FLAG_SINGLE_USE 0x01

struct member_cred {
	uint8_t owner_pk[ID_PK_LEN];
	uint8_t node_id[ID_PK_LEN];
	uint8_t rights;
	uint64_t issued;
	uint64_t expires; /* 0: never */
};

struct member_rev {
	uint8_t owner_pk[ID_PK_LEN];
	uint8_t node_id[ID_PK_LEN];
	uint64_t issued;
};

struct member_invite {
	uint8_t owner_pk[ID_PK_LEN];
	uint8_t id[MEMBER_INVITE_ID_LEN];
	uint8_t rights;
	uint8_t flags;
	uint64_t expires;
	uint8_t join_secret[TOKEN_SECRET_LEN]; /* secret: _clear() wipes */
	uint8_t node_id[ID_PK_LEN]; /* the owner node that redeems it */
	size_t n_addrs;
	char addrs[TOKEN_MAX_ADDRS][TOKEN_ADDR_MAX + 1];
	/* The signed binary form, as parsed or written. */
	uint8_t bin[MEMBER_INVITE_BIN_MAX];
	size_t bin_len;
};

/* The mesh id of the mesh owned by 'owner_pk'. */
void member_mesh_id(
    const uint8_t owner_pk[ID_PK_LEN], uint8_t out[TOKEN_MESH_ID_LEN]);

/*
 * Rights as text ("host,relay,use"; "use" is always included) and back.
 * member_rights_parse() accepts a comma list of host, relay, use; it
 * returns 0 or SM_ERR_INVAL and always adds MEMBER_RIGHT_USE.
 */
void member_rights_text(uint8_t rights, char out[MEMBER_RIGHTS_TEXT_MAX]);
int member_rights_parse(const char *s, uint8_t *out) SM_MUST_CHECK;

/* Sign a credential for c->node_id with 'owner' (c->owner_pk is ignored and
 * set from owner). Writes MEMBER_CRED_LEN bytes. 0 or SM_ERR_INVAL. */
int member_cred_write(const struct member_cred *c, const struct identity *owner,
    uint8_t out[MEMBER_CRED_LEN]) SM_MUST_CHECK;

/*
 * Parse and verify a credential: exactly MEMBER_CRED_LEN bytes, type 0x11,
 * known rights bits with USE set, signed by 'owner_pk' (and naming it), not
 * expired at 'now_s'. 'out' is zeroed on entry and on failure. Returns 0,
 * SM_ERR_PROTO (malformed), SM_ERR_PERM (another owner), SM_ERR_VERIFY (bad
 * signature) or SM_ERR_STALE (expired).
 */
int member_cred_open(const uint8_t *p, size_t len,
    const uint8_t owner_pk[ID_PK_LEN], uint64_t now_s,
    struct member_cred *out) SM_MUST_CHECK;

/* Sign a revocation of r->node_id. Writes MEMBER_REV_LEN bytes. */
int member_rev_write(const struct member_rev *r, const struct identity *owner,
    uint8_t out[MEMBER_REV_LEN]) SM_MUST_CHECK;

/* Parse and verify a revocation (as member_cred_open, no expiry). */
int member_rev_open(const uint8_t *p, size_t len,
    const uint8_t owner_pk[ID_PK_LEN], struct member_rev *out) SM_MUST_CHECK;

/*
 * Sign 'inv' (its owner_pk and bin are set from 'owner') and write it as
 * base64url text into 'out' (MEMBER_INVITE_STR_MAX bytes, NUL-terminated).
 * The text holds the join secret: treat it as a secret. 0, SM_ERR_INVAL,
 * SM_ERR_TOOBIG.
 */
int member_invite_write(struct member_invite *inv, const struct identity *owner,
    char *out, size_t outlen) SM_MUST_CHECK;

/*
 * Parse invite text and verify its signature by the owner key it carries
 * (who that owner is, the redeeming node checks). Expiry is not checked
 * here. 'out' is zeroed on entry and wiped on failure. Returns 0,
 * SM_ERR_TOOBIG, SM_ERR_UNSUPP (not an invite: first byte other than 0x02),
 * SM_ERR_VERIFY or SM_ERR_INVAL; '*why' (may be NULL) a static sentence.
 */
int member_invite_parse(
    const char *s, struct member_invite *out, const char **why) SM_MUST_CHECK;

/* The same from the binary form (as sent over the link to redeem it). */
int member_invite_parse_bin(const uint8_t *p, size_t len,
    struct member_invite *out, const char **why) SM_MUST_CHECK;

/* Wipe an invite (it holds the join secret). */
void member_invite_clear(struct member_invite *inv);

#endif
