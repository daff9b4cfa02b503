/*
 * Join proof: a node shows it knows the mesh's join secret, bound to one TLS
 * session so that a captured proof is worthless on any other session.
 *
 *   proof = HMAC-SHA256(join_secret, JOIN_LABEL || 0x00 || u8 32 ||
 *                       exporter || prover_id || verifier_id)
 *
 * exporter is the TLS exporter value (tls.h, TLS_EXPORTER_LABEL, 32 bytes),
 * prover_id and verifier_id the two Ed25519 public keys (32 bytes each), so a
 * proof cannot be reflected back to its sender either. JOIN_LABEL is the 16
 * ASCII bytes "sealmesh-join-v1", hashed with its NUL, then the exporter
 * length as one byte. This is byte for byte the proof of mesh/token.h
 * (token_join_proof() with a 32-byte secret); tests/unit/test_net_join.c
 * checks that the two agree.
 */
#ifndef SM_NET_JOIN_H
#define SM_NET_JOIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define JOIN_LABEL "sealmesh-join-v1"
#define JOIN_PROOF_LEN 32
#define JOIN_EXPORTER_LEN 32
#define JOIN_ID_LEN 32
#define JOIN_SECRET_MIN 16
#define JOIN_SECRET_MAX 256

/*
 * The computation a link uses for both making and checking proofs. The
 * default is join_proof(); a caller may plug in another (for instance the
 * mesh's token_join_proof()) with link_ctx_set_proof(). Returns 0 or a
 * negative SM_ERR_*; must write exactly JOIN_PROOF_LEN bytes on success.
 */
typedef int (*join_proof_fn)(uint8_t out[JOIN_PROOF_LEN], const uint8_t *secret,
    size_t secret_len, const uint8_t exporter[JOIN_EXPORTER_LEN],
    const uint8_t prover[JOIN_ID_LEN], const uint8_t verifier[JOIN_ID_LEN],
    void *arg);

/* The proof above. Returns 0, or SM_ERR_INVAL for an empty secret. */
int join_proof(uint8_t out[JOIN_PROOF_LEN], const uint8_t *secret,
    size_t secret_len, const uint8_t exporter[JOIN_EXPORTER_LEN],
    const uint8_t prover[JOIN_ID_LEN], const uint8_t verifier[JOIN_ID_LEN],
    void *arg) SM_MUST_CHECK;

#endif
