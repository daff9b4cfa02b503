/*
 * The worker's side of privilege separation: ask the signer (doc/PRIVSEP.md).
 *
 * Two channels, each a blocking request/response socket: 'fast' for
 * signatures and inference-key DH (event loop thread, tens of
 * microseconds), 'slow' for TPM work (the attestation thread pool, up to
 * seconds). Each channel is serialised by its own mutex, so a quote never
 * holds up a DH. A channel that fails (signer gone, protocol error) stays
 * failed: every later call returns SM_ERR_CLOSED and the worker exits.
 *
 * The client adapts the signer to the interfaces the rest of the node
 * already uses: a delegated struct identity (crypto/sign.h), a remote
 * inference keyring (crypto/infkey.h) and an attestation provider
 * (attest/provider.h).
 */
#ifndef SM_SIGNER_CLIENT_H
#define SM_SIGNER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/provider.h"
#include "core/buf.h"
#include "core/err.h"
#include "crypto/infkey.h"
#include "crypto/sign.h"
#include "harden/harden.h"

struct signer_client;

/* What the signer told the worker at HELLO. */
struct signer_hello {
	uint8_t node_pk[ID_PK_LEN];
	bool owner; /* the signer holds the mesh owner key */
	uint8_t owner_pk[ID_PK_LEN];
	enum att_provider_kind kind; /* ATT_PROV_NONE without a provider */
	enum att_level level;
	uint32_t tpm_manufacturer;
	bool can_measure;
	struct posture posture; /* the signer's measurement of this worker */
};

/* Take the two connected sockets (closed by signer_client_free). */
int signer_client_new(
    struct signer_client **out, int fast_fd, int slow_fd) SM_MUST_CHECK;
void signer_client_free(struct signer_client *c);

/* HELLO: the public facts and the signer's measurement of this worker. */
int signer_client_hello(
    struct signer_client *c, struct signer_hello *out) SM_MUST_CHECK;

/*
 * One request, one response: 'body' goes out under 'op' on the fast or slow
 * channel; the answer's body is appended to 'resp' (at most 'resp_max').
 * A non-zero status comes back as that SM_ERR_* code.
 */
int signer_client_call(struct signer_client *c, bool slow, uint8_t op,
    const uint8_t *body, size_t len, struct buf *resp) SM_MUST_CHECK;

/* identity_remote_fn for the node identity and the owner key. */
int signer_sign_identity(
    void *c, const uint8_t *msg, size_t len, uint8_t sig[ID_SIG_LEN]);
int signer_sign_owner(
    void *c, const uint8_t *msg, size_t len, uint8_t sig[ID_SIG_LEN]);

/* The inference keyring whose secrets the signer holds. */
int
signer_infkey_new(struct signer_client *c, struct infkey **out) SM_MUST_CHECK;

/* An attestation provider that forwards to the signer's ('h' from HELLO). */
int signer_provider_new(struct signer_client *c, const struct signer_hello *h,
    struct att_provider **out) SM_MUST_CHECK;

#endif
