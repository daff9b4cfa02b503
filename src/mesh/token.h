/*
 * Invite tokens and the join proof (doc/PROTOCOL.md, "Invite token" and
 * "Join proof"). No I/O here.
 *
 * Token, before base64url (no padding):
 *   u8 version = 1 | mesh_id[16] | join_secret[32] | node_id[32] |
 *   u8 n_addrs | n_addrs x (u8 len | len bytes "host:port") | check[4]
 * check = first 4 bytes of BLAKE2b-128 (unkeyed) over everything before it.
 * mesh_id = BLAKE2b-128(key = join_secret, "sealmesh-mesh-id-v1"), so one
 * join secret names one mesh and the id reveals nothing of the secret.
 *
 * Join proof, sent by each side of a fresh TLS link:
 *   HMAC-SHA256(join_secret, "sealmesh-join-v1\0" || u8 len(exporter) ||
 *               exporter || prover_id[32] || verifier_id[32])
 * where exporter is that TLS session's exporter value
 * (TOKEN_EXPORTER_LABEL, no context, TOKEN_EXPORTER_LEN bytes).
 */
#ifndef SM_MESH_TOKEN_H
#define SM_MESH_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "mesh/identity.h"

#define TOKEN_VERSION 1
#define TOKEN_MESH_ID_LEN 16
#define TOKEN_SECRET_LEN 32
#define TOKEN_MAX_ADDRS 16
#define TOKEN_ADDR_MAX 255 /* "host:port" bytes, without NUL */
#define TOKEN_CHECK_LEN 4
/* version, mesh id, secret, node id, address count */
#define TOKEN_FIXED_LEN                                                        \
	(1 + TOKEN_MESH_ID_LEN + TOKEN_SECRET_LEN + ID_PK_LEN + 1)
#define TOKEN_BIN_MAX                                                          \
	(TOKEN_FIXED_LEN + TOKEN_MAX_ADDRS * (1 + TOKEN_ADDR_MAX) +            \
	    TOKEN_CHECK_LEN)
/* base64url without padding of TOKEN_BIN_MAX bytes, plus the NUL */
#define TOKEN_STR_MAX (((TOKEN_BIN_MAX * 4) + 2) / 3 + 1)

#define TOKEN_PROOF_LEN 32
#define TOKEN_EXPORTER_LABEL "EXPORTER-sealmesh-join-v1"
#define TOKEN_EXPORTER_LEN 32
#define TOKEN_EXPORTER_MIN 16
#define TOKEN_EXPORTER_MAX 64

struct token {
	uint8_t mesh_id[TOKEN_MESH_ID_LEN];
	uint8_t join_secret[TOKEN_SECRET_LEN]; /* secret: token_clear() wipes */
	uint8_t node_id[ID_PK_LEN];
	size_t n_addrs;
	char addrs[TOKEN_MAX_ADDRS][TOKEN_ADDR_MAX + 1]; /* NUL-terminated */
};

/* The mesh id for a join secret (see above). */
void token_mesh_id(
    const uint8_t secret[TOKEN_SECRET_LEN], uint8_t out[TOKEN_MESH_ID_LEN]);

/* Fill 't' for a node: copies secret and node id, derives the mesh id, no
 * addresses. Wipe with token_clear(). */
void token_init(struct token *t, const uint8_t secret[TOKEN_SECRET_LEN],
    const uint8_t node_id[ID_PK_LEN]);
/* Wipe 't' (it holds the join secret). */
void token_clear(struct token *t);

/*
 * Append an address "host:port" (IPv6 as "[addr]:port"). Returns 0,
 * SM_ERR_INVAL (not a valid address, see token_addr_check) or SM_ERR_TOOBIG
 * (TOKEN_MAX_ADDRS reached).
 */
int token_add_addr(struct token *t, const char *addr) SM_MUST_CHECK;

/*
 * Check one address: "host:port", at most TOKEN_ADDR_MAX bytes; host is a
 * name or IPv4 ([A-Za-z0-9._-]) or "[IPv6]" (hex digits, ':', '.', and a
 * "%zone" of [A-Za-z0-9._-]); port is 1..65535 in decimal. 0 or SM_ERR_INVAL.
 */
int token_addr_check(const char *addr, size_t len) SM_MUST_CHECK;

/* Split a checked address into host (brackets removed, NUL-terminated) and
 * port. SM_ERR_INVAL, or SM_ERR_TOOBIG if host does not fit in 'hostlen'. */
int token_addr_split(
    const char *addr, char *host, size_t hostlen, uint16_t *port) SM_MUST_CHECK;

/* Write 't' as base64url text (NUL-terminated) into 'out', which must hold
 * TOKEN_STR_MAX bytes or the exact need. 0, SM_ERR_INVAL or SM_ERR_TOOBIG.
 * The text holds the join secret: treat it as a secret. */
int token_write(const struct token *t, char *out, size_t outlen) SM_MUST_CHECK;

/*
 * Parse token text. 'out' is zeroed on entry and wiped on failure. Returns 0,
 * SM_ERR_TOOBIG (too long), SM_ERR_UNSUPP (other version) or SM_ERR_INVAL;
 * on failure '*why' (if not NULL) is a static sentence for the user saying
 * exactly what is wrong; it never contains token bytes.
 */
int
token_parse(const char *s, struct token *out, const char **why) SM_MUST_CHECK;

/*
 * The proof that 'prover' knows the join secret, bound to one TLS session
 * ('exporter', TOKEN_EXPORTER_MIN..TOKEN_EXPORTER_MAX bytes) and to the
 * direction (prover, verifier), so it cannot be replayed on another session
 * or reflected. Returns 0 or SM_ERR_INVAL (exporter length).
 */
int token_join_proof(const uint8_t secret[TOKEN_SECRET_LEN],
    const uint8_t *exporter, size_t exporter_len,
    const uint8_t prover[ID_PK_LEN], const uint8_t verifier[ID_PK_LEN],
    uint8_t out[TOKEN_PROOF_LEN]) SM_MUST_CHECK;

/* Recompute and compare in constant time: 0, SM_ERR_VERIFY or SM_ERR_INVAL. */
int token_join_proof_check(const uint8_t secret[TOKEN_SECRET_LEN],
    const uint8_t *exporter, size_t exporter_len,
    const uint8_t prover[ID_PK_LEN], const uint8_t verifier[ID_PK_LEN],
    const uint8_t proof[TOKEN_PROOF_LEN]) SM_MUST_CHECK;

#endif
