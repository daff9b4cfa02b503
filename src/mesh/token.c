#include <string.h>

#include <sodium.h>

#include "mesh/token.h"

#define MESH_ID_INFO "sealmesh-mesh-id-v1"
#define JOIN_DOMAIN "sealmesh-join-v1" /* hashed with its NUL */

_Static_assert(TOKEN_STR_MAX >= sodium_base64_ENCODED_LEN(TOKEN_BIN_MAX,
				    sodium_base64_VARIANT_URLSAFE_NO_PADDING),
    "TOKEN_STR_MAX too small");

void
token_mesh_id(
    const uint8_t secret[TOKEN_SECRET_LEN], uint8_t out[TOKEN_MESH_ID_LEN])
{
	crypto_generichash(out, TOKEN_MESH_ID_LEN,
	    (const unsigned char *)MESH_ID_INFO, sizeof(MESH_ID_INFO) - 1,
	    secret, TOKEN_SECRET_LEN);
}

void
token_init(struct token *t, const uint8_t secret[TOKEN_SECRET_LEN],
    const uint8_t node_id[ID_PK_LEN])
{
	memset(t, 0, sizeof(*t));
	memcpy(t->join_secret, secret, TOKEN_SECRET_LEN);
	memcpy(t->node_id, node_id, ID_PK_LEN);
	token_mesh_id(secret, t->mesh_id);
}

void
token_clear(struct token *t)
{
	sodium_memzero(t, sizeof(*t));
}

static bool
name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static bool
v6_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

/* Find where the host ends and check it; returns the index of the ':'
 * before the port, or 0 on error. */
static size_t
addr_host_end(const char *a, size_t len)
{
	size_t i = 0;

	if (len == 0)
		return 0;
	if (a[0] == '[') {
		for (i = 1; i < len && v6_char(a[i]); i++)
			;
		if (i == 1)
			return 0;
		if (i < len && a[i] == '%') {
			size_t z = ++i;
			for (; i < len && name_char(a[i]); i++)
				;
			if (i == z)
				return 0;
		}
		if (i + 1 >= len || a[i] != ']' || a[i + 1] != ':')
			return 0;
		return i + 1;
	}
	for (; i < len && name_char(a[i]); i++)
		;
	if (i == 0 || i >= len || a[i] != ':')
		return 0;
	return i;
}

static int
addr_port(const char *p, size_t len, uint16_t *port)
{
	uint32_t v = 0;
	size_t i;

	if (len == 0 || len > 5)
		return SM_ERR_INVAL;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return SM_ERR_INVAL;
		v = v * 10 + (uint32_t)(p[i] - '0');
	}
	if (v == 0 || v > 65535)
		return SM_ERR_INVAL;
	*port = (uint16_t)v;
	return 0;
}

int
token_addr_check(const char *addr, size_t len)
{
	uint16_t port;
	size_t colon;

	if (len == 0 || len > TOKEN_ADDR_MAX)
		return SM_ERR_INVAL;
	if ((colon = addr_host_end(addr, len)) == 0)
		return SM_ERR_INVAL;
	return addr_port(addr + colon + 1, len - colon - 1, &port);
}

int
token_addr_split(const char *addr, char *host, size_t hostlen, uint16_t *port)
{
	size_t len = strlen(addr), colon, start = 0, hlen;
	int r;

	*port = 0;
	if (hostlen > 0)
		host[0] = '\0';
	if ((r = token_addr_check(addr, len)) != 0)
		return r;
	colon = addr_host_end(addr, len);
	hlen = colon;
	if (addr[0] == '[') {
		start = 1;
		hlen = colon - 2;
	}
	if (hlen + 1 > hostlen)
		return SM_ERR_TOOBIG;
	memcpy(host, addr + start, hlen);
	host[hlen] = '\0';
	return addr_port(addr + colon + 1, len - colon - 1, port);
}

int
token_add_addr(struct token *t, const char *addr)
{
	size_t len = strlen(addr);

	if (token_addr_check(addr, len) != 0)
		return SM_ERR_INVAL;
	if (t->n_addrs >= TOKEN_MAX_ADDRS)
		return SM_ERR_TOOBIG;
	memcpy(t->addrs[t->n_addrs], addr, len + 1);
	t->n_addrs++;
	return 0;
}

static void
token_check(const uint8_t *p, size_t len, uint8_t out[TOKEN_CHECK_LEN])
{
	uint8_t h[crypto_generichash_BYTES_MIN];

	crypto_generichash(h, sizeof(h), p, len, NULL, 0);
	memcpy(out, h, TOKEN_CHECK_LEN);
}

int
token_write(const struct token *t, char *out, size_t outlen)
{
	uint8_t bin[TOKEN_BIN_MAX];
	size_t n = 0, i, alen;
	int r = SM_ERR_INVAL;

	if (outlen > 0)
		out[0] = '\0';
	if (t->n_addrs > TOKEN_MAX_ADDRS)
		goto out;
	bin[n++] = TOKEN_VERSION;
	memcpy(bin + n, t->mesh_id, TOKEN_MESH_ID_LEN);
	n += TOKEN_MESH_ID_LEN;
	memcpy(bin + n, t->join_secret, TOKEN_SECRET_LEN);
	n += TOKEN_SECRET_LEN;
	memcpy(bin + n, t->node_id, ID_PK_LEN);
	n += ID_PK_LEN;
	bin[n++] = (uint8_t)t->n_addrs;
	for (i = 0; i < t->n_addrs; i++) {
		alen = strnlen(t->addrs[i], TOKEN_ADDR_MAX + 1);
		if (token_addr_check(t->addrs[i], alen) != 0)
			goto out;
		bin[n++] = (uint8_t)alen;
		memcpy(bin + n, t->addrs[i], alen);
		n += alen;
	}
	token_check(bin, n, bin + n);
	n += TOKEN_CHECK_LEN;
	if (outlen < sodium_base64_ENCODED_LEN(
			 n, sodium_base64_VARIANT_URLSAFE_NO_PADDING)) {
		r = SM_ERR_TOOBIG;
		goto out;
	}
	sodium_bin2base64(
	    out, outlen, bin, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	r = 0;
out:
	sodium_memzero(bin, sizeof(bin));
	return r;
}

static bool
b64url_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

#define FAIL(code, text)                                                       \
	do {                                                                   \
		r = (code);                                                    \
		msg = (text);                                                  \
		goto out;                                                      \
	} while (0)

int
token_parse(const char *s, struct token *out, const char **why)
{
	uint8_t bin[TOKEN_BIN_MAX], check[TOKEN_CHECK_LEN],
	    mesh_id[TOKEN_MESH_ID_LEN];
	const char *end = NULL, *msg = NULL;
	size_t slen, n = 0, off, i, alen;
	int r = SM_ERR_INVAL;

	memset(out, 0, sizeof(*out));
	if (why != NULL)
		*why = NULL;
	slen = s != NULL ? strnlen(s, TOKEN_STR_MAX) : 0;
	if (slen == 0)
		FAIL(SM_ERR_INVAL, "the token is empty");
	if (slen >= TOKEN_STR_MAX)
		FAIL(SM_ERR_TOOBIG, "the token is too long");
	/* libsodium 1.0.18 maps some bytes >= 0x80 onto '-' and '_' (signed
	 * char in its constant-time compare): check the alphabet first. */
	for (i = 0; i < slen; i++)
		if (!b64url_char(s[i]))
			FAIL(SM_ERR_INVAL,
			    "the token is not valid base64url "
			    "(was it copied whole?)");
	if (sodium_base642bin(bin, sizeof(bin), s, slen, NULL, &n, &end,
		sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    end != s + slen)
		FAIL(SM_ERR_INVAL,
		    "the token is not valid base64url (was it copied whole?)");
	if (n < 1)
		FAIL(SM_ERR_INVAL, "the token is truncated");
	if (bin[0] != TOKEN_VERSION)
		FAIL(SM_ERR_UNSUPP,
		    "the token has an unsupported version "
		    "(this build reads version 1)");
	if (n < TOKEN_FIXED_LEN + TOKEN_CHECK_LEN)
		FAIL(SM_ERR_INVAL, "the token is truncated");
	token_check(bin, n - TOKEN_CHECK_LEN, check);
	if (sodium_memcmp(check, bin + n - TOKEN_CHECK_LEN, TOKEN_CHECK_LEN) !=
	    0)
		FAIL(SM_ERR_INVAL,
		    "the token is damaged or truncated "
		    "(checksum mismatch)");
	n -= TOKEN_CHECK_LEN;
	off = 1;
	memcpy(out->mesh_id, bin + off, TOKEN_MESH_ID_LEN);
	off += TOKEN_MESH_ID_LEN;
	memcpy(out->join_secret, bin + off, TOKEN_SECRET_LEN);
	off += TOKEN_SECRET_LEN;
	memcpy(out->node_id, bin + off, ID_PK_LEN);
	off += ID_PK_LEN;
	out->n_addrs = bin[off++];
	if (out->n_addrs > TOKEN_MAX_ADDRS)
		FAIL(SM_ERR_INVAL, "the token lists too many addresses");
	for (i = 0; i < out->n_addrs; i++) {
		if (off >= n)
			FAIL(SM_ERR_INVAL, "the token is truncated");
		alen = bin[off++];
		if (alen > n - off)
			FAIL(SM_ERR_INVAL, "the token is truncated");
		if (token_addr_check((const char *)bin + off, alen) != 0)
			FAIL(
			    SM_ERR_INVAL, "the token holds an invalid address");
		memcpy(out->addrs[i], bin + off, alen);
		out->addrs[i][alen] = '\0';
		off += alen;
	}
	if (off != n)
		FAIL(SM_ERR_INVAL, "the token has trailing bytes");
	token_mesh_id(out->join_secret, mesh_id);
	if (sodium_memcmp(mesh_id, out->mesh_id, TOKEN_MESH_ID_LEN) != 0)
		FAIL(SM_ERR_INVAL,
		    "the token's mesh id does not match its join secret");
	if (crypto_core_ed25519_is_valid_point(out->node_id) != 1)
		FAIL(SM_ERR_INVAL, "the token's node id is not a valid key");
	r = 0;
out:
	sodium_memzero(bin, sizeof(bin));
	if (r != 0) {
		token_clear(out);
		if (why != NULL)
			*why = msg;
	}
	return r;
}

static int
join_mac(const uint8_t secret[TOKEN_SECRET_LEN], const uint8_t *exporter,
    size_t exporter_len, const uint8_t prover[ID_PK_LEN],
    const uint8_t verifier[ID_PK_LEN], uint8_t out[TOKEN_PROOF_LEN])
{
	crypto_auth_hmacsha256_state st;
	uint8_t elen;

	memset(out, 0, TOKEN_PROOF_LEN);
	if (exporter == NULL || exporter_len < TOKEN_EXPORTER_MIN ||
	    exporter_len > TOKEN_EXPORTER_MAX)
		return SM_ERR_INVAL;
	elen = (uint8_t)exporter_len;
	crypto_auth_hmacsha256_init(&st, secret, TOKEN_SECRET_LEN);
	crypto_auth_hmacsha256_update(
	    &st, (const unsigned char *)JOIN_DOMAIN, sizeof(JOIN_DOMAIN));
	crypto_auth_hmacsha256_update(&st, &elen, 1);
	crypto_auth_hmacsha256_update(&st, exporter, exporter_len);
	crypto_auth_hmacsha256_update(&st, prover, ID_PK_LEN);
	crypto_auth_hmacsha256_update(&st, verifier, ID_PK_LEN);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
	return 0;
}

int
token_join_proof(const uint8_t secret[TOKEN_SECRET_LEN],
    const uint8_t *exporter, size_t exporter_len,
    const uint8_t prover[ID_PK_LEN], const uint8_t verifier[ID_PK_LEN],
    uint8_t out[TOKEN_PROOF_LEN])
{
	return join_mac(secret, exporter, exporter_len, prover, verifier, out);
}

int
token_join_proof_check(const uint8_t secret[TOKEN_SECRET_LEN],
    const uint8_t *exporter, size_t exporter_len,
    const uint8_t prover[ID_PK_LEN], const uint8_t verifier[ID_PK_LEN],
    const uint8_t proof[TOKEN_PROOF_LEN])
{
	uint8_t want[TOKEN_PROOF_LEN];
	int r;

	if ((r = join_mac(
		 secret, exporter, exporter_len, prover, verifier, want)) != 0)
		goto out;
	r = sodium_memcmp(want, proof, TOKEN_PROOF_LEN) == 0 ? 0
							     : SM_ERR_VERIFY;
out:
	sodium_memzero(want, sizeof(want));
	return r;
}
