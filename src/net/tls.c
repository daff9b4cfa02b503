/*
 * TLS 1.3 link filter on memory BIOs. See tls.h for the trust model.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "core/log.h"
#include "core/util.h"
#include "net/tls.h"

struct tls_ctx {
	SSL_CTX *ssl_ctx;
	uint64_t not_after; /* link key certified until; 0: no expiry */
	uint8_t cert_pk[ID_PK_LEN];
};

_Static_assert(sizeof(TLS_LINKCERT_DOMAIN) == TLS_LINKCERT_DOMAIN_LEN,
    "domain string with its NUL");
_Static_assert(TLS_LINKCERT_BODY_LEN == 105 && TLS_LINKCERT_BODY_LEN < 128,
    "one-byte DER length");

/* The X.509 notAfter follows the link key's not_after up to 9999-12-31
 * (informational: the receiver reads the extension, not the dates). */
#define CERT_TIME_MAX 253402300799ULL

/* ALPN wire form: one length byte, then the protocol name. */
static const unsigned char alpn_wire[] = "\x0f" TLS_ALPN;

/* Log and clear the OpenSSL error queue. */
static void
log_ssl_errors(const char *what)
{
	unsigned long e;
	char text[256];
	int logged = 0;

	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, text, sizeof(text));
		log_warn("tls: %s: %s", what, text);
		logged = 1;
	}
	if (!logged)
		log_warn("tls: %s failed", what);
}

/* ---- link-key certificate (pure) ------------------------------------ */

int
tls_linkcert_parse(const uint8_t *in, size_t len, struct tls_linkcert *out)
{
	const uint8_t *p;
	int r = SM_ERR_INVAL;

	memset(out, 0, sizeof(*out));
	if (in == NULL || len != TLS_LINKCERT_LEN || in[0] != 0x04 ||
	    in[1] != TLS_LINKCERT_BODY_LEN)
		goto out;
	p = in + 2;
	r = SM_ERR_UNSUPP;
	if (p[0] != TLS_LINKCERT_VERSION)
		goto out;
	out->version = p[0];
	p += 1;
	memcpy(out->identity_pk, p, ID_PK_LEN);
	p += ID_PK_LEN;
	out->not_after = sm_get_be64(p);
	p += 8;
	memcpy(out->sig, p, ID_SIG_LEN);
	r = 0;
out:
	if (r != 0)
		memset(out, 0, sizeof(*out));
	return r;
}

void
tls_linkcert_message(uint8_t out[TLS_LINKCERT_MSG_LEN],
    const uint8_t link_pk[ID_PK_LEN], const uint8_t identity_pk[ID_PK_LEN],
    uint64_t not_after)
{
	uint8_t *p = out;

	memcpy(p, TLS_LINKCERT_DOMAIN, TLS_LINKCERT_DOMAIN_LEN);
	p += TLS_LINKCERT_DOMAIN_LEN;
	memcpy(p, link_pk, ID_PK_LEN);
	p += ID_PK_LEN;
	memcpy(p, identity_pk, ID_PK_LEN);
	p += ID_PK_LEN;
	sm_put_be64(p, not_after);
}

int
tls_linkcert_verify(const struct tls_linkcert *lc,
    const uint8_t link_pk[ID_PK_LEN], uint64_t now)
{
	uint8_t msg[TLS_LINKCERT_MSG_LEN];
	int r;

	tls_linkcert_message(msg, link_pk, lc->identity_pk, lc->not_after);
	if ((r = identity_verify(lc->identity_pk, msg, sizeof(msg), lc->sig)) !=
	    0)
		return SM_ERR_VERIFY;
	if (now > TLS_LINKCERT_SKEW_S &&
	    lc->not_after < now - TLS_LINKCERT_SKEW_S)
		return SM_ERR_STALE;
	if (lc->not_after > now &&
	    lc->not_after - now >
		(uint64_t)TLS_LINKCERT_LIFETIME_S + TLS_LINKCERT_SKEW_S)
		return SM_ERR_TOOBIG;
	return 0;
}

int
tls_linkcert_write(uint8_t out[TLS_LINKCERT_LEN], const struct identity *id,
    const uint8_t link_pk[ID_PK_LEN], uint64_t not_after)
{
	uint8_t msg[TLS_LINKCERT_MSG_LEN];
	uint8_t *p = out;
	int r;

	memset(out, 0, TLS_LINKCERT_LEN);
	*p++ = 0x04;
	*p++ = TLS_LINKCERT_BODY_LEN;
	*p++ = TLS_LINKCERT_VERSION;
	memcpy(p, id->pk, ID_PK_LEN);
	p += ID_PK_LEN;
	sm_put_be64(p, not_after);
	p += 8;
	tls_linkcert_message(msg, link_pk, id->pk, not_after);
	if ((r = identity_sign(id, msg, sizeof(msg), p)) != 0)
		memset(out, 0, TLS_LINKCERT_LEN);
	return r;
}

/* ---- peer check ------------------------------------------------------ */

/*
 * The link-key certificate extension of 'x': 0 and '*ext' NULL when there is
 * none, 0 and '*ext' set for exactly one, -1 for several (refused).
 */
static int
find_linkcert(X509 *x, const ASN1_OCTET_STRING **ext)
{
	ASN1_OBJECT *oid;
	int i, n = 0;

	*ext = NULL;
	if ((oid = OBJ_txt2obj(TLS_LINKCERT_OID, 1)) == NULL)
		return -1;
	for (i = -1; (i = X509_get_ext_by_OBJ(x, oid, i)) >= 0;) {
		*ext = X509_EXTENSION_get_data(X509_get_ext(x, i));
		n++;
	}
	ASN1_OBJECT_free(oid);
	if (n > 1 || (n == 1 && *ext == NULL)) {
		*ext = NULL;
		return -1;
	}
	return 0;
}

/*
 * Check the link-key certificate 'ext' for certificate key 'raw'; on success
 * 'node' gets the identity key it names. Sets c->refused and returns 0 to
 * refuse, 1 to accept.
 */
static int
check_linkcert(struct tls_conn *c, const ASN1_OCTET_STRING *ext,
    const uint8_t raw[ID_PK_LEN], uint8_t node[ID_PK_LEN])
{
	struct tls_linkcert lc;
	const uint8_t *d = ASN1_STRING_get0_data(ext);
	size_t n = (size_t)ASN1_STRING_length(ext);
	uint64_t now = sm_wall_s();
	bool cached;
	int r;

	if ((r = tls_linkcert_parse(d, n, &lc)) != 0) {
		c->refused = r == SM_ERR_UNSUPP
		    ? "unsupported link-key certificate version"
		    : "malformed link-key certificate";
		return 0;
	}
	/* Same extension for the same certificate key as verified before: the
	 * signature stands; the expiry is checked again below. */
	cached = c->lc_cached &&
	    sodium_memcmp(c->cert_pk, raw, ID_PK_LEN) == 0 &&
	    memcmp(c->lc_seen, d, TLS_LINKCERT_LEN) == 0;
	if (!cached) {
		c->lc_cached = false;
		r = tls_linkcert_verify(&lc, raw, now);
	} else if (now > TLS_LINKCERT_SKEW_S &&
	    lc.not_after < now - TLS_LINKCERT_SKEW_S) {
		r = SM_ERR_STALE;
	} else {
		r = 0;
	}
	if (r != 0) {
		c->refused = r == SM_ERR_STALE ? "link-key certificate expired"
		    : r == SM_ERR_TOOBIG
		    ? "link-key certificate valid for longer than allowed"
		    : "link-key certificate signature does not verify";
		return 0;
	}
	memcpy(c->lc_seen, d, TLS_LINKCERT_LEN);
	c->lc_cached = true;
	memcpy(node, lc.identity_pk, ID_PK_LEN);
	return 1;
}

/*
 * Check the peer's leaf certificate: an Ed25519 key; its link-key
 * certificate when it has one (then the node id is the identity key named
 * there), else the certificate key is the node id (nodes before link keys);
 * the pinned node id when we dialed. Records the keys in 'c'. Returns 1 to
 * accept, 0 to refuse.
 */
static int
check_peer_cert(struct tls_conn *c, X509 *x)
{
	EVP_PKEY *pk;
	const ASN1_OCTET_STRING *ext;
	uint8_t raw[ID_PK_LEN], node[ID_PK_LEN];
	size_t len = sizeof(raw);

	c->have_peer = false;
	c->linkcert = false;
	if (x == NULL || (pk = X509_get0_pubkey(x)) == NULL ||
	    EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(pk, raw, &len) != 1 ||
	    len != ID_PK_LEN) {
		c->bad_key = true;
		return 0;
	}
	if (find_linkcert(x, &ext) != 0) {
		c->refused = "several link-key certificates";
		return 0;
	}
	if (ext != NULL) {
		if (!check_linkcert(c, ext, raw, node))
			return 0;
		c->linkcert = true;
	} else {
		memcpy(node, raw, ID_PK_LEN);
	}
	memcpy(c->cert_pk, raw, ID_PK_LEN);
	memcpy(c->peer_pk, node, ID_PK_LEN);
	if (c->pinned && sodium_memcmp(node, c->expect, ID_PK_LEN) != 0) {
		c->pin_mismatch = true;
		return 0;
	}
	c->have_peer = true;
	return 1;
}

/*
 * Any self-signed (or otherwise unverifiable) chain is fine: only the leaf
 * key matters, and TLS 1.3 CertificateVerify proves possession of it.
 */
static int
verify_cb(int preverify_ok, X509_STORE_CTX *xs)
{
	SSL *ssl;
	struct tls_conn *c;

	(void)preverify_ok;
	ssl = X509_STORE_CTX_get_ex_data(
	    xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	if (ssl == NULL || (c = SSL_get_app_data(ssl)) == NULL)
		return 0;
	if (!check_peer_cert(c, X509_STORE_CTX_get0_cert(xs))) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
		return 0;
	}
	return 1;
}

static int
alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned char *sel;

	if (SSL_select_next_proto(&sel, outlen, alpn_wire,
		sizeof(alpn_wire) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/*
 * A self-signed certificate for 'key' (CN 'cn'), carrying 'ext' as the
 * extnValue of the non-critical TLS_LINKCERT_OID extension unless NULL.
 */
static int
make_cert(EVP_PKEY *key, const char *cn, const uint8_t *ext, size_t ext_len,
    uint64_t not_after, X509 **out)
{
	X509 *x = NULL;
	X509_NAME *name;
	ASN1_OBJECT *oid = NULL;
	ASN1_OCTET_STRING *os = NULL;
	X509_EXTENSION *xe = NULL;
	uint8_t serial[8];
	uint64_t s;
	int r = SM_ERR_INTERNAL;

	*out = NULL;
	randombytes_buf(serial, sizeof(serial));
	memcpy(&s, serial, sizeof(s));
	if ((x = X509_new()) == NULL ||
	    X509_set_version(x, X509_VERSION_3) != 1 ||
	    ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), s >> 1 | 1) !=
		1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -86400L) == NULL ||
	    (not_after != 0 && not_after < CERT_TIME_MAX
		    ? ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after)
		    : X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 3650)) ==
		NULL ||
	    X509_set_pubkey(x, key) != 1 ||
	    (name = X509_get_subject_name(x)) == NULL ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
		(const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1) {
		log_ssl_errors("self-signed certificate");
		goto out;
	}
	if (ext != NULL &&
	    ((oid = OBJ_txt2obj(TLS_LINKCERT_OID, 1)) == NULL ||
		(os = ASN1_OCTET_STRING_new()) == NULL ||
		ASN1_OCTET_STRING_set(os, ext, (int)ext_len) != 1 ||
		(xe = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, os)) == NULL ||
		X509_add_ext(x, xe, -1) != 1)) {
		log_ssl_errors("link-key certificate extension");
		goto out;
	}
	if (X509_sign(x, key, NULL) <= 0) {
		log_ssl_errors("self-signed certificate");
		goto out;
	}
	*out = x;
	x = NULL;
	r = 0;
out:
	X509_EXTENSION_free(xe);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(oid);
	X509_free(x);
	return r;
}

/* The context around certificate key 'key' (see make_cert()). */
static int
ctx_build(struct tls_ctx **out, EVP_PKEY *key, const char *cn,
    const uint8_t *ext, size_t ext_len, uint64_t not_after)
{
	struct tls_ctx *t = NULL;
	X509 *cert = NULL;
	SSL_CTX *sc;
	size_t len = ID_PK_LEN;
	int r = SM_ERR_NOMEM;

	*out = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto out;
	t->not_after = not_after;
	r = SM_ERR_INTERNAL;
	if (EVP_PKEY_get_raw_public_key(key, t->cert_pk, &len) != 1 ||
	    len != ID_PK_LEN) {
		log_ssl_errors("link key");
		goto out;
	}
	if ((r = make_cert(key, cn, ext, ext_len, not_after, &cert)) != 0)
		goto out;
	r = SM_ERR_INTERNAL;
	if ((t->ssl_ctx = sc = SSL_CTX_new(TLS_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(sc, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(sc, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_use_certificate(sc, cert) != 1 ||
	    SSL_CTX_use_PrivateKey(sc, key) != 1 ||
	    SSL_CTX_check_private_key(sc) != 1 ||
	    SSL_CTX_set_alpn_protos(sc, alpn_wire, sizeof(alpn_wire) - 1) !=
		0 ||
	    SSL_CTX_set1_sigalgs_list(sc, "ed25519") != 1 ||
	    SSL_CTX_set_num_tickets(sc, 0) != 1) {
		log_ssl_errors("context");
		goto out;
	}
	SSL_CTX_set_verify(
	    sc, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	SSL_CTX_set_alpn_select_cb(sc, alpn_select_cb, NULL);
	SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(sc, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_max_cert_list(sc, TLS_MAX_CERT_LIST);
	*out = t;
	t = NULL;
	r = 0;
out:
	X509_free(cert);
	tls_ctx_free(t);
	return r;
}

int
tls_ctx_new(struct tls_ctx **out, const struct identity *id)
{
	EVP_PKEY *key = NULL;
	uint8_t link_pk[ID_PK_LEN], ext[TLS_LINKCERT_LEN];
	size_t len = sizeof(link_pk);
	uint64_t not_after;
	int r = SM_ERR_INVAL;

	*out = NULL;
	if (id == NULL || (id->sk == NULL && id->remote == NULL))
		goto out;
	r = SM_ERR_INTERNAL;
	/* The link key: made and kept by OpenSSL, in this context only. */
	if ((key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL ||
	    EVP_PKEY_get_raw_public_key(key, link_pk, &len) != 1 ||
	    len != ID_PK_LEN) {
		log_ssl_errors("link key");
		goto out;
	}
	not_after = sm_wall_s() + TLS_LINKCERT_LIFETIME_S;
	if ((r = tls_linkcert_write(ext, id, link_pk, not_after)) != 0) {
		log_warn("tls: the identity did not certify the link key: %s",
		    sm_strerror(r));
		goto out;
	}
	r = ctx_build(out, key, id->id_hex, ext, sizeof(ext), not_after);
out:
	EVP_PKEY_free(key);
	return r;
}

int
tls_ctx_new_raw(struct tls_ctx **out, const uint8_t cert_seed[ID_SEED_LEN],
    const uint8_t *ext, size_t ext_len, uint64_t not_after)
{
	EVP_PKEY *key = NULL;
	uint8_t pk[ID_PK_LEN];
	char cn[ID_HEX_LEN + 1];
	size_t len = sizeof(pk);
	int r = SM_ERR_INTERNAL;

	*out = NULL;
	if ((key = EVP_PKEY_new_raw_private_key(
		 EVP_PKEY_ED25519, NULL, cert_seed, ID_SEED_LEN)) == NULL ||
	    EVP_PKEY_get_raw_public_key(key, pk, &len) != 1 ||
	    len != ID_PK_LEN) {
		log_ssl_errors("certificate key");
		goto out;
	}
	sm_hex(cn, pk, ID_PK_LEN);
	r = ctx_build(out, key, cn, ext, ext_len, not_after);
out:
	EVP_PKEY_free(key);
	return r;
}

uint64_t
tls_ctx_not_after(const struct tls_ctx *t)
{
	return t->not_after;
}

void
tls_ctx_cert_pk(const struct tls_ctx *t, uint8_t out[ID_PK_LEN])
{
	memcpy(out, t->cert_pk, ID_PK_LEN);
}

void
tls_ctx_free(struct tls_ctx *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ssl_ctx);
	free(t);
}

int
tls_conn_init(
    struct tls_conn *c, struct tls_ctx *t, bool dialer, const uint8_t *expect)
{
	memset(c, 0, sizeof(*c));
	c->dialer = dialer;
	if (expect != NULL) {
		c->pinned = true;
		memcpy(c->expect, expect, ID_PK_LEN);
	}
	if ((c->ssl = SSL_new(t->ssl_ctx)) == NULL ||
	    (c->rbio = BIO_new(BIO_s_mem())) == NULL ||
	    (c->wbio = BIO_new(BIO_s_mem())) == NULL) {
		BIO_free(c->rbio);
		BIO_free(c->wbio);
		SSL_free(c->ssl);
		memset(c, 0, sizeof(*c));
		return SM_ERR_NOMEM;
	}
	/* An empty read BIO means "want read", not EOF. */
	BIO_set_mem_eof_return(c->rbio, -1);
	BIO_set_mem_eof_return(c->wbio, -1);
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	SSL_set_app_data(c->ssl, c);
	if (dialer)
		SSL_set_connect_state(c->ssl);
	else
		SSL_set_accept_state(c->ssl);
	return 0;
}

void
tls_conn_clear(struct tls_conn *c)
{
	if (c->ssl != NULL)
		SSL_free(c->ssl); /* frees both BIOs */
	memset(c, 0, sizeof(*c));
}

int
tls_conn_feed(struct tls_conn *c, const uint8_t *p, size_t n)
{
	size_t done;

	if (n == 0)
		return 0;
	if (BIO_write_ex(c->rbio, p, n, &done) != 1 || done != n)
		return SM_ERR_NOMEM;
	return 0;
}

int
tls_conn_handshake(struct tls_conn *c)
{
	char hex[ID_HEX_LEN + 1];
	int ret, e;

	if (c->done)
		return 0;
	ERR_clear_error();
	ret = SSL_do_handshake(c->ssl);
	if (ret != 1) {
		e = SSL_get_error(c->ssl, ret);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return SM_ERR_AGAIN;
		if (c->pin_mismatch) {
			sm_hex(hex, c->peer_pk, ID_PK_LEN);
			log_warn(
			    "tls: peer presented key %.16s..., not the node "
			    "id we dialed",
			    hex);
			ERR_clear_error();
			return SM_ERR_VERIFY;
		}
		if (c->bad_key) {
			log_warn("tls: peer certificate key is not Ed25519");
			ERR_clear_error();
			return SM_ERR_VERIFY;
		}
		if (c->refused != NULL) {
			log_warn("tls: peer refused: %s", c->refused);
			ERR_clear_error();
			return SM_ERR_VERIFY;
		}
		log_ssl_errors("handshake");
		return SM_ERR_PROTO;
	}
	/* Defence in depth: check the leaf again now that it is final. */
	if (!check_peer_cert(c, SSL_get0_peer_certificate(c->ssl)) ||
	    !c->have_peer) {
		log_warn("tls: peer certificate refused after handshake%s%s",
		    c->refused != NULL ? ": " : "",
		    c->refused != NULL ? c->refused : "");
		return SM_ERR_VERIFY;
	}
	if (SSL_version(c->ssl) != TLS1_3_VERSION)
		return SM_ERR_PROTO;
	/* Both sides must have agreed on our protocol, not merely not refused
	 * it: a peer that sent no ALPN at all is not speaking it. */
	{
		const unsigned char *proto = NULL;
		unsigned int plen = 0;

		SSL_get0_alpn_selected(c->ssl, &proto, &plen);
		if (plen != sizeof(alpn_wire) - 2 ||
		    memcmp(proto, alpn_wire + 1, plen) != 0) {
			log_warn("tls: peer did not negotiate %s", TLS_ALPN);
			return SM_ERR_PROTO;
		}
	}
	c->done = true;
	return 0;
}

int
tls_conn_read(struct tls_conn *c, uint8_t *out, size_t cap, size_t *n)
{
	int ret, e;

	*n = 0;
	ERR_clear_error();
	ret = SSL_read_ex(c->ssl, out, cap, n);
	if (ret == 1)
		return 0;
	e = SSL_get_error(c->ssl, ret);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return SM_ERR_AGAIN;
	if (e == SSL_ERROR_ZERO_RETURN)
		return SM_ERR_CLOSED;
	log_ssl_errors("read");
	return SM_ERR_PROTO;
}

int
tls_conn_write(struct tls_conn *c, const uint8_t *p, size_t n)
{
	size_t done = 0;

	if (n == 0)
		return 0;
	ERR_clear_error();
	if (SSL_write_ex(c->ssl, p, n, &done) != 1 || done != n) {
		log_ssl_errors("write");
		return SM_ERR_PROTO;
	}
	return 0;
}

size_t
tls_conn_pending(const struct tls_conn *c)
{
	return c->wbio != NULL ? BIO_ctrl_pending(c->wbio) : 0;
}

size_t
tls_conn_take(struct tls_conn *c, uint8_t *out, size_t cap)
{
	size_t n = 0;

	if (c->wbio == NULL || cap == 0)
		return 0;
	if (BIO_read_ex(c->wbio, out, cap, &n) != 1)
		return 0;
	return n;
}

void
tls_conn_shutdown(struct tls_conn *c)
{
	if (c->ssl == NULL || !SSL_is_init_finished(c->ssl))
		return;
	ERR_clear_error();
	(void)SSL_shutdown(c->ssl);
	ERR_clear_error();
}

int
tls_conn_exporter(struct tls_conn *c, uint8_t out[TLS_EXPORTER_LEN])
{
	if (!c->done ||
	    SSL_export_keying_material(c->ssl, out, TLS_EXPORTER_LEN,
		TLS_EXPORTER_LABEL, strlen(TLS_EXPORTER_LABEL), NULL, 0,
		0) != 1) {
		log_ssl_errors("exporter");
		return SM_ERR_INTERNAL;
	}
	return 0;
}
