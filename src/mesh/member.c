#include <string.h>

#include <sodium.h>

#include "core/util.h"
#include "mesh/member.h"

_Static_assert(
    MEMBER_INVITE_STR_MAX >= sodium_base64_ENCODED_LEN(MEMBER_INVITE_BIN_MAX,
				 sodium_base64_VARIANT_URLSAFE_NO_PADDING),
    "MEMBER_INVITE_STR_MAX too small");

#define SIGNED_MAX MEMBER_INVITE_BIN_MAX

void
member_mesh_id(
    const uint8_t owner_pk[ID_PK_LEN], uint8_t out[TOKEN_MESH_ID_LEN])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, TOKEN_MESH_ID_LEN);
	crypto_generichash_update(&st, (const uint8_t *)MEMBER_MESH_DOMAIN,
	    sizeof(MEMBER_MESH_DOMAIN));
	crypto_generichash_update(&st, owner_pk, ID_PK_LEN);
	crypto_generichash_final(&st, out, TOKEN_MESH_ID_LEN);
}

void
member_rights_text(uint8_t rights, char out[MEMBER_RIGHTS_TEXT_MAX])
{
	out[0] = '\0';
	if (rights & MEMBER_RIGHT_HOST)
		strcat(out, "host,");
	if (rights & MEMBER_RIGHT_RELAY)
		strcat(out, "relay,");
	strcat(out, "use");
}

int
member_rights_parse(const char *s, uint8_t *out)
{
	const char *p = s;
	uint8_t r = MEMBER_RIGHT_USE;

	*out = 0;
	if (s == NULL || *s == '\0')
		return SM_ERR_INVAL;
	while (*p != '\0') {
		size_t n = strcspn(p, ",");

		if (n == 4 && strncmp(p, "host", 4) == 0)
			r |= MEMBER_RIGHT_HOST;
		else if (n == 5 && strncmp(p, "relay", 5) == 0)
			r |= MEMBER_RIGHT_RELAY;
		else if (!(n == 3 && strncmp(p, "use", 3) == 0))
			return SM_ERR_INVAL;
		p += n;
		if (*p == ',' && *++p == '\0')
			return SM_ERR_INVAL;
	}
	*out = r;
	return 0;
}

static bool
rights_ok(uint8_t r)
{
	return (r & ~MEMBER_RIGHTS_ALL) == 0 && (r & MEMBER_RIGHT_USE) != 0;
}

/* Sign p[0..len) with the owner key; the signature goes to p + len. */
static int
owner_sign(const struct identity *owner, uint8_t *p, size_t len)
{
	uint8_t msg[sizeof(MEMBER_DOMAIN) + SIGNED_MAX];

	if (len > SIGNED_MAX)
		return SM_ERR_INVAL;
	memcpy(msg, MEMBER_DOMAIN, sizeof(MEMBER_DOMAIN));
	memcpy(msg + sizeof(MEMBER_DOMAIN), p, len);
	return identity_sign(owner, msg, sizeof(MEMBER_DOMAIN) + len, p + len);
}

/* Verify the signature at p + len over p[0..len) by 'pk'. */
static int
owner_check(const uint8_t pk[ID_PK_LEN], const uint8_t *p, size_t len)
{
	uint8_t msg[sizeof(MEMBER_DOMAIN) + SIGNED_MAX];

	if (len > SIGNED_MAX)
		return SM_ERR_INVAL;
	memcpy(msg, MEMBER_DOMAIN, sizeof(MEMBER_DOMAIN));
	memcpy(msg + sizeof(MEMBER_DOMAIN), p, len);
	return identity_verify(pk, msg, sizeof(MEMBER_DOMAIN) + len, p + len) ==
		0
	    ? 0
	    : SM_ERR_VERIFY;
}

int
member_cred_write(const struct member_cred *c, const struct identity *owner,
    uint8_t out[MEMBER_CRED_LEN])
{
	size_t n = 0;

	memset(out, 0, MEMBER_CRED_LEN);
	if (!rights_ok(c->rights))
		return SM_ERR_INVAL;
	out[n++] = MEMBER_TYPE_CRED;
	memcpy(out + n, owner->pk, ID_PK_LEN);
	n += ID_PK_LEN;
	memcpy(out + n, c->node_id, ID_PK_LEN);
	n += ID_PK_LEN;
	out[n++] = c->rights;
	sm_put_be64(out + n, c->issued);
	n += 8;
	sm_put_be64(out + n, c->expires);
	n += 8;
	return owner_sign(owner, out, n);
}

int
member_cred_open(const uint8_t *p, size_t len,
    const uint8_t owner_pk[ID_PK_LEN], uint64_t now_s, struct member_cred *out)
{
	size_t n = 1;
	int r = SM_ERR_PROTO;

	memset(out, 0, sizeof(*out));
	if (p == NULL || len != MEMBER_CRED_LEN || p[0] != MEMBER_TYPE_CRED)
		goto out;
	memcpy(out->owner_pk, p + n, ID_PK_LEN);
	n += ID_PK_LEN;
	memcpy(out->node_id, p + n, ID_PK_LEN);
	n += ID_PK_LEN;
	out->rights = p[n++];
	out->issued = sm_get_be64(p + n);
	n += 8;
	out->expires = sm_get_be64(p + n);
	n += 8;
	if (!rights_ok(out->rights))
		goto out;
	r = SM_ERR_PERM;
	if (sodium_memcmp(out->owner_pk, owner_pk, ID_PK_LEN) != 0)
		goto out;
	if ((r = owner_check(owner_pk, p, n)) != 0)
		goto out;
	r = out->expires != 0 && out->expires <= now_s ? SM_ERR_STALE : 0;
out:
	if (r != 0)
		memset(out, 0, sizeof(*out));
	return r;
}

int
member_rev_write(const struct member_rev *rv, const struct identity *owner,
    uint8_t out[MEMBER_REV_LEN])
{
	size_t n = 0;

	out[n++] = MEMBER_TYPE_REV;
	memcpy(out + n, owner->pk, ID_PK_LEN);
	n += ID_PK_LEN;
	memcpy(out + n, rv->node_id, ID_PK_LEN);
	n += ID_PK_LEN;
	sm_put_be64(out + n, rv->issued);
	n += 8;
	return owner_sign(owner, out, n);
}

int
member_rev_open(const uint8_t *p, size_t len, const uint8_t owner_pk[ID_PK_LEN],
    struct member_rev *out)
{
	size_t n = 1;
	int r = SM_ERR_PROTO;

	memset(out, 0, sizeof(*out));
	if (p == NULL || len != MEMBER_REV_LEN || p[0] != MEMBER_TYPE_REV)
		goto out;
	memcpy(out->owner_pk, p + n, ID_PK_LEN);
	n += ID_PK_LEN;
	memcpy(out->node_id, p + n, ID_PK_LEN);
	n += ID_PK_LEN;
	out->issued = sm_get_be64(p + n);
	n += 8;
	r = SM_ERR_PERM;
	if (sodium_memcmp(out->owner_pk, owner_pk, ID_PK_LEN) != 0)
		goto out;
	r = owner_check(owner_pk, p, n);
out:
	if (r != 0)
		memset(out, 0, sizeof(*out));
	return r;
}

void
member_invite_clear(struct member_invite *inv)
{
	sodium_memzero(inv, sizeof(*inv));
}

int
member_invite_write(struct member_invite *inv, const struct identity *owner,
    char *out, size_t outlen)
{
	uint8_t *b = inv->bin;
	size_t n = 0, alen;
	int r = SM_ERR_INVAL;

	if (outlen > 0)
		out[0] = '\0';
	if (!rights_ok(inv->rights) || inv->n_addrs > TOKEN_MAX_ADDRS)
		goto out;
	memcpy(inv->owner_pk, owner->pk, ID_PK_LEN);
	b[n++] = MEMBER_TYPE_INVITE;
	memcpy(b + n, owner->pk, ID_PK_LEN);
	n += ID_PK_LEN;
	memcpy(b + n, inv->id, MEMBER_INVITE_ID_LEN);
	n += MEMBER_INVITE_ID_LEN;
	b[n++] = inv->rights;
	b[n++] = inv->flags;
	sm_put_be64(b + n, inv->expires);
	n += 8;
	memcpy(b + n, inv->join_secret, TOKEN_SECRET_LEN);
	n += TOKEN_SECRET_LEN;
	memcpy(b + n, inv->node_id, ID_PK_LEN);
	n += ID_PK_LEN;
	b[n++] = (uint8_t)inv->n_addrs;
	for (size_t i = 0; i < inv->n_addrs; i++) {
		alen = strnlen(inv->addrs[i], TOKEN_ADDR_MAX + 1);
		if (token_addr_check(inv->addrs[i], alen) != 0)
			goto out;
		b[n++] = (uint8_t)alen;
		memcpy(b + n, inv->addrs[i], alen);
		n += alen;
	}
	if ((r = owner_sign(owner, b, n)) != 0)
		goto out;
	n += ID_SIG_LEN;
	inv->bin_len = n;
	r = SM_ERR_TOOBIG;
	if (outlen < sodium_base64_ENCODED_LEN(
			 n, sodium_base64_VARIANT_URLSAFE_NO_PADDING))
		goto out;
	sodium_bin2base64(
	    out, outlen, b, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	r = 0;
out:
	return r;
}

#define FAIL(code, text)                                                       \
	do {                                                                   \
		r = (code);                                                    \
		msg = (text);                                                  \
		goto out;                                                      \
	} while (0)

int
member_invite_parse_bin(
    const uint8_t *p, size_t len, struct member_invite *out, const char **why)
{
	const char *msg = NULL;
	size_t n = 1, alen;
	int r = SM_ERR_INVAL;

	memset(out, 0, sizeof(*out));
	if (why != NULL)
		*why = NULL;
	if (p == NULL || len == 0)
		FAIL(SM_ERR_INVAL, "the invite is empty");
	if (len > MEMBER_INVITE_BIN_MAX)
		FAIL(SM_ERR_TOOBIG, "the invite is too long");
	if (p[0] != MEMBER_TYPE_INVITE)
		FAIL(SM_ERR_UNSUPP, "not an invite");
	if (len < MEMBER_INVITE_FIXED + ID_SIG_LEN)
		FAIL(SM_ERR_INVAL, "the invite is truncated");
	memcpy(out->owner_pk, p + n, ID_PK_LEN);
	n += ID_PK_LEN;
	memcpy(out->id, p + n, MEMBER_INVITE_ID_LEN);
	n += MEMBER_INVITE_ID_LEN;
	out->rights = p[n++];
	out->flags = p[n++];
	out->expires = sm_get_be64(p + n);
	n += 8;
	memcpy(out->join_secret, p + n, TOKEN_SECRET_LEN);
	n += TOKEN_SECRET_LEN;
	memcpy(out->node_id, p + n, ID_PK_LEN);
	n += ID_PK_LEN;
	out->n_addrs = p[n++];
	if (out->n_addrs > TOKEN_MAX_ADDRS)
		FAIL(SM_ERR_INVAL, "the invite lists too many addresses");
	for (size_t i = 0; i < out->n_addrs; i++) {
		if (n >= len - ID_SIG_LEN)
			FAIL(SM_ERR_INVAL, "the invite is truncated");
		alen = p[n++];
		if (alen > len - ID_SIG_LEN - n)
			FAIL(SM_ERR_INVAL, "the invite is truncated");
		if (token_addr_check((const char *)p + n, alen) != 0)
			FAIL(SM_ERR_INVAL,
			    "the invite holds an invalid address");
		memcpy(out->addrs[i], p + n, alen);
		out->addrs[i][alen] = '\0';
		n += alen;
	}
	if (n != len - ID_SIG_LEN)
		FAIL(SM_ERR_INVAL, "the invite has trailing bytes");
	if (!rights_ok(out->rights) ||
	    (out->flags & ~MEMBER_FLAG_SINGLE_USE) != 0)
		FAIL(SM_ERR_INVAL, "the invite names unknown rights or flags");
	if (crypto_core_ed25519_is_valid_point(out->owner_pk) != 1 ||
	    crypto_core_ed25519_is_valid_point(out->node_id) != 1)
		FAIL(SM_ERR_INVAL, "the invite holds an invalid key");
	if (owner_check(out->owner_pk, p, n) != 0)
		FAIL(SM_ERR_VERIFY,
		    "the invite's signature does not verify (was it altered?)");
	memcpy(out->bin, p, len);
	out->bin_len = len;
	r = 0;
out:
	if (r != 0) {
		member_invite_clear(out);
		if (why != NULL)
			*why = msg;
	}
	return r;
}

static bool
b64url_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int
member_invite_parse(const char *s, struct member_invite *out, const char **why)
{
	uint8_t bin[MEMBER_INVITE_BIN_MAX];
	const char *end = NULL, *msg = NULL;
	size_t slen, n = 0;
	int r = SM_ERR_INVAL;

	memset(out, 0, sizeof(*out));
	if (why != NULL)
		*why = NULL;
	slen = s != NULL ? strnlen(s, MEMBER_INVITE_STR_MAX) : 0;
	if (slen == 0)
		FAIL(SM_ERR_INVAL, "the invite is empty");
	if (slen >= MEMBER_INVITE_STR_MAX)
		FAIL(SM_ERR_TOOBIG, "the invite is too long");
	for (size_t i = 0; i < slen; i++)
		if (!b64url_char(s[i]))
			FAIL(SM_ERR_INVAL,
			    "the invite is not valid base64url "
			    "(was it copied whole?)");
	if (sodium_base642bin(bin, sizeof(bin), s, slen, NULL, &n, &end,
		sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    end != s + slen)
		FAIL(SM_ERR_INVAL,
		    "the invite is not valid base64url (was it copied whole?)");
	r = member_invite_parse_bin(bin, n, out, &msg);
out:
	sodium_memzero(bin, sizeof(bin));
	if (r != 0 && why != NULL)
		*why = msg;
	return r;
}
