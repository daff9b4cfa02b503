/*
 * TLS link filter (OpenSSL 3): TLS 1.3 only, mutual authentication with
 * self-signed Ed25519 certificates, no CAs. Trust is a pinned public key:
 * the dialer knows the node id it expects; the acceptor learns the peer's id
 * from the certificate. The TLS 1.3 CertificateVerify proves the peer holds
 * the private key of the certificate it sent; the certificate's own
 * signature, dates and issuer are deliberately ignored.
 *
 * The certificate key is NOT the node's identity key: each context has a
 * fresh Ed25519 link key (made by OpenSSL, never written anywhere), and its
 * certificate carries a link-key certificate (private X.509 extension
 * TLS_LINKCERT_OID) in which the identity key signs the link key and an
 * expiry (doc/PROTOCOL.md "Link-key certificate (TLS)"). The peer's node id
 * is the identity key named there, once its signature and expiry check out.
 * So the identity key never enters the TLS stack, and a delegated identity
 * (crypto/sign.h: signatures from the privilege-separated signer) links as
 * well as a held one. A certificate without the extension (nodes before link
 * keys) is still accepted with the old rule: certificate key == node id.
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

/*
 * Link-key certificate: the extnValue of a non-critical X.509 extension
 * with OID TLS_LINKCERT_OID (a UUID OID under 2.25, ITU-T X.667: private,
 * no registration). extnValue is the DER OCTET STRING (04 69) wrapping a
 * 105-byte body:
 *   version u8 = 1 | identity_pk[32] | not_after u64 BE (unix s) | sig[64]
 * sig = Ed25519 by identity_pk over
 *   TLS_LINKCERT_DOMAIN ("sealmesh-link-key-v1\0", 21 bytes)
 *   || link_pk[32] || identity_pk[32] || not_after u64 BE
 * where link_pk is the certificate's own (TLS) key.
 */
#define TLS_LINKCERT_OID "2.25.46246353617816348732442524153924720400"
#define TLS_LINKCERT_VERSION 1
#define TLS_LINKCERT_BODY_LEN (1 + ID_PK_LEN + 8 + ID_SIG_LEN) /* 105 */
#define TLS_LINKCERT_LEN (2 + TLS_LINKCERT_BODY_LEN) /* with 04 69 */
#define TLS_LINKCERT_DOMAIN "sealmesh-link-key-v1"
#define TLS_LINKCERT_DOMAIN_LEN 21 /* with its NUL */
#define TLS_LINKCERT_MSG_LEN                                                   \
	(TLS_LINKCERT_DOMAIN_LEN + ID_PK_LEN + ID_PK_LEN + 8) /* 93 */
/* How long a context's link key is certified for; link.c renews a context
 * once half of it has passed. */
#define TLS_LINKCERT_LIFETIME_S (24 * 3600)
/* Clock skew allowed both ways when checking not_after (seconds). A peer's
 * not_after must lie in [now - SKEW, now + LIFETIME + SKEW]: a link key
 * certified for longer (by a signer asked for it) is refused. */
#define TLS_LINKCERT_SKEW_S 300

/* A parsed link-key certificate (views nothing: all copied). */
struct tls_linkcert {
	uint8_t version;
	uint8_t identity_pk[ID_PK_LEN];
	uint64_t not_after;
	uint8_t sig[ID_SIG_LEN];
};

/*
 * Parse an extnValue: exactly TLS_LINKCERT_LEN bytes, 04 69, version 1.
 * Checks no signature (tls_linkcert_verify()). Pure: no I/O, no clock.
 * Returns 0 and fills '*out', SM_ERR_INVAL (length or DER header) or
 * SM_ERR_UNSUPP (version); '*out' is zeroed on failure.
 */
int tls_linkcert_parse(
    const uint8_t *in, size_t len, struct tls_linkcert *out) SM_MUST_CHECK;
/*
 * The message the identity signs for 'link_pk' (TLS_LINKCERT_MSG_LEN bytes).
 */
void tls_linkcert_message(uint8_t out[TLS_LINKCERT_MSG_LEN],
    const uint8_t link_pk[ID_PK_LEN], const uint8_t identity_pk[ID_PK_LEN],
    uint64_t not_after);
/*
 * Check 'lc' for a certificate whose key is 'link_pk', at unix time 'now':
 * the signature under lc->identity_pk (SM_ERR_VERIFY), then not_after within
 * [now - TLS_LINKCERT_SKEW_S, now + TLS_LINKCERT_LIFETIME_S +
 * TLS_LINKCERT_SKEW_S] (SM_ERR_STALE when past, SM_ERR_TOOBIG when too far
 * ahead). Returns 0 when valid.
 */
int tls_linkcert_verify(const struct tls_linkcert *lc,
    const uint8_t link_pk[ID_PK_LEN], uint64_t now) SM_MUST_CHECK;
/*
 * Write the extnValue certifying 'link_pk' until 'not_after' with identity
 * 'id' (held or delegated: the signature comes from identity_sign()).
 * Returns 0 or what identity_sign() returned; 'out' is zeroed on failure.
 */
int tls_linkcert_write(uint8_t out[TLS_LINKCERT_LEN], const struct identity *id,
    const uint8_t link_pk[ID_PK_LEN], uint64_t not_after) SM_MUST_CHECK;

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
	const char *refused; /* why the link-key certificate was refused */
	bool done; /* handshake complete and peer checked */
	uint8_t expect[ID_PK_LEN];
	uint8_t peer_pk[ID_PK_LEN]; /* node id (identity, or legacy cert key) */
	uint8_t cert_pk[ID_PK_LEN]; /* the peer's TLS certificate (link) key */
	bool linkcert; /* peer_pk came from a verified link-key certificate */
	/* The last extension verified with cert_pk: a second check of the same
	 * certificate (verify callback, then after the handshake) skips the
	 * signature, not the expiry or pin. */
	bool lc_cached;
	uint8_t lc_seen[TLS_LINKCERT_LEN];
};

/*
 * Build a TLS 1.3 context for identity 'id': a fresh Ed25519 link key made
 * by OpenSSL, and a self-signed X509 certificate for it (CN = node id hex)
 * carrying the link-key certificate signed through identity_sign(id) with
 * not_after = now + TLS_LINKCERT_LIFETIME_S. 'id' may be delegated (sk NULL,
 * remote set); it is only used during the call. The link key lives only in
 * the context (OpenSSL memory) and goes with tls_ctx_free(). Returns 0 and
 * sets '*out', or SM_ERR_NOMEM, SM_ERR_INVAL (id can sign nothing), what
 * identity_sign() returned, SM_ERR_INTERNAL (OpenSSL failure, logged).
 */
int tls_ctx_new(struct tls_ctx **out, const struct identity *id) SM_MUST_CHECK;
/*
 * Lower-level constructor (tests; tools): a context whose certificate key is
 * the Ed25519 key of 'cert_seed' and whose certificate carries 'ext' (ext_len
 * bytes, copied as the extnValue of TLS_LINKCERT_OID, unchecked) or, when
 * ext is NULL, no link-key certificate at all (the form of nodes before link
 * keys: the certificate key is the node id). 'not_after' is what
 * tls_ctx_not_after() reports (0: never renewed). Returns as tls_ctx_new().
 */
int tls_ctx_new_raw(struct tls_ctx **out, const uint8_t cert_seed[ID_SEED_LEN],
    const uint8_t *ext, size_t ext_len, uint64_t not_after) SM_MUST_CHECK;
/* Unix time the context's link key is certified until (0: no expiry). */
uint64_t tls_ctx_not_after(const struct tls_ctx *t);
/* The context's certificate (link) public key. */
void tls_ctx_cert_pk(const struct tls_ctx *t, uint8_t out[ID_PK_LEN]);
/*
 * Drop the caller's reference. NULL is a no-op. Connections already made
 * from it keep working: each SSL holds its own reference to the OpenSSL
 * context (and so to the link key), released by tls_conn_clear(). A tls_conn
 * never points at the struct tls_ctx itself.
 */
void tls_ctx_free(struct tls_ctx *t);

/*
 * Set up 'c' as the client (dialer, with 'expect' the 32-byte node id the
 * peer must prove: the identity key its link-key certificate names, or for a
 * peer without one its certificate key) or the server (expect == NULL). Returns
 * 0 or SM_ERR_NOMEM / SM_ERR_INTERNAL. Free with tls_conn_clear().
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
 * SM_ERR_VERIFY when the peer's node id is not the pinned one, its key is not
 * Ed25519, or its link-key certificate is malformed, forged, expired or
 * certified for too long (reason logged, no key material),
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
