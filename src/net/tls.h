/*
 * TLS link filter (OpenSSL 3): TLS 1.3 only, mutual authentication with
 * self-signed Ed25519 certificates, no CAs. Trust is a pinned public key:
 * the dialer knows the node id it expects; the acceptor learns the peer's id
 * from its certificate. The TLS 1.3 CertificateVerify proves the peer holds
 * the private key of the certificate it sent; the certificate's own
 * signature, dates and issuer are deliberately ignored.
 *
 * No I/O here: ciphertext goes in with tls_conn_feed() and comes out with
 * tls_conn_take(); the caller moves it over the socket (memory BIOs).
 */
#ifndef SM_NET_TLS_H
#define SM_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "crypto/sign.h"

#define TLS_ALPN "sealmesh-link/1"
#define TLS_EXPORTER_LABEL "EXPORTER-sealmesh-join-v1"
#define TLS_EXPORTER_LEN 32
#define TLS_MAX_CERT_LIST (16 * 1024)

struct tls_ctx;
struct ssl_st;
struct bio_st;

/* One TLS connection over memory BIOs. Embedded in a link. */
struct tls_conn {
	struct ssl_st *ssl;
	struct bio_st *rbio; /* ciphertext from the peer (owned by ssl) */
	struct bio_st *wbio; /* ciphertext to the peer (owned by ssl) */
	bool dialer;
	bool pinned; /* dialer: peer key must equal 'expect' */
	bool have_peer; /* peer_pk is set */
	bool pin_mismatch; /* verify saw a key other than 'expect' */
	bool bad_key; /* peer certificate key is not Ed25519 */
	bool done; /* handshake complete and peer checked */
	uint8_t expect[ID_PK_LEN];
	uint8_t peer_pk[ID_PK_LEN];
};

/*
 * Build a TLS 1.3 context for identity 'id': a self-signed X509 certificate
 * (CN = node id hex) made in memory for its Ed25519 key. 'id' is only read
 * during the call; OpenSSL keeps its own copy of the seed in the context,
 * which tls_ctx_free() releases. Returns 0 and sets '*out', or SM_ERR_NOMEM,
 * SM_ERR_INVAL (no secret key), SM_ERR_INTERNAL (OpenSSL failure, logged).
 */
int tls_ctx_new(struct tls_ctx **out, const struct identity *id) SM_MUST_CHECK;
/* Free the context. NULL is a no-op. Connections made from it must be gone. */
void tls_ctx_free(struct tls_ctx *t);

/*
 * Set up 'c' as the client (dialer, with 'expect' the 32-byte public key the
 * peer must present) or the server (expect == NULL). Returns 0 or
 * SM_ERR_NOMEM / SM_ERR_INTERNAL. Free with tls_conn_clear().
 */
int tls_conn_init(struct tls_conn *c, struct tls_ctx *t, bool dialer,
    const uint8_t *expect) SM_MUST_CHECK;
/* Free the SSL object and BIOs; 'c' is zeroed. Safe on a zeroed conn. */
void tls_conn_clear(struct tls_conn *c);

/* Hand 'n' bytes of ciphertext read from the socket to TLS. */
int tls_conn_feed(struct tls_conn *c, const uint8_t *p, size_t n) SM_MUST_CHECK;
/*
 * Advance the handshake. Returns 0 once it is complete and the peer key is
 * checked (c->peer_pk valid), SM_ERR_AGAIN while it needs more input,
 * SM_ERR_VERIFY when the peer's key is not the pinned one or not Ed25519,
 * SM_ERR_PROTO on any other TLS failure (details logged). Call tls_conn_take()
 * afterwards in every case: alerts must reach the peer too.
 */
int tls_conn_handshake(struct tls_conn *c) SM_MUST_CHECK;
/*
 * Decrypt into 'out'. Returns 0 with '*n' > 0, SM_ERR_AGAIN when no full
 * record is buffered, SM_ERR_CLOSED on the peer's close_notify, SM_ERR_PROTO.
 */
int tls_conn_read(
    struct tls_conn *c, uint8_t *out, size_t cap, size_t *n) SM_MUST_CHECK;
/* Encrypt 'n' bytes (all of them; memory BIOs never push back). */
int
tls_conn_write(struct tls_conn *c, const uint8_t *p, size_t n) SM_MUST_CHECK;
/* Bytes of ciphertext waiting to be sent. */
size_t tls_conn_pending(const struct tls_conn *c);
/* Move up to 'cap' bytes of waiting ciphertext into 'out'; returns the count.
 */
size_t tls_conn_take(struct tls_conn *c, uint8_t *out, size_t cap);
/* Queue a close_notify alert (take it out with tls_conn_take()). */
void tls_conn_shutdown(struct tls_conn *c);
/*
 * The RFC 8446 exporter value for TLS_EXPORTER_LABEL, empty context: unique to
 * this TLS session, equal on both ends. 0 or SM_ERR_INTERNAL.
 */
int tls_conn_exporter(
    struct tls_conn *c, uint8_t out[TLS_EXPORTER_LEN]) SM_MUST_CHECK;

#endif
