/* Attestation verifier, EK trust store, credential activation (verifier). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "attest/ec.h"
#include "attest/verify.h"
#include "core/log.h"
#include "core/util.h"

struct att_trust {
	X509_STORE *store;
	size_t n;
};

static bool
cert_name_ok(const char *n)
{
	size_t l = strlen(n);
	static const char *const sfx[] = {".pem", ".crt", ".cer", ".der"};
	size_t i;

	for (i = 0; i < SM_ARRAY_LEN(sfx); i++)
		if (l > 4 && strcmp(n + l - 4, sfx[i]) == 0)
			return true;
	return false;
}

static int
trust_add_file(struct att_trust *t, const char *path)
{
	BIO *b;
	X509 *x;
	size_t before = t->n;

	if ((b = BIO_new_file(path, "rb")) == NULL)
		return SM_ERR_IO;
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_cert(t->store, x) == 1)
			t->n++;
		X509_free(x);
	}
	ERR_clear_error();
	if (t->n == before) {
		(void)BIO_reset(b);
		if ((x = d2i_X509_bio(b, NULL)) != NULL) {
			if (X509_STORE_add_cert(t->store, x) == 1)
				t->n++;
			X509_free(x);
		}
		ERR_clear_error();
	}
	BIO_free(b);
	return t->n > before ? 0 : SM_ERR_INVAL;
}

int
att_trust_load_dir(const char *dir, struct att_trust **out)
{
	char path[4096];
	struct att_trust *t;
	struct dirent *de;
	DIR *d;
	int r = 0;

	*out = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return SM_ERR_NOMEM;
	if ((t->store = X509_STORE_new()) == NULL) {
		free(t);
		return SM_ERR_NOMEM;
	}
	if ((d = opendir(dir)) == NULL) {
		att_trust_free(t);
		return SM_ERR_IO;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !cert_name_ok(de->d_name))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >=
		    (int)sizeof(path)) {
			r = SM_ERR_INVAL;
			break;
		}
		if ((r = trust_add_file(t, path)) != 0) {
			log_warn(
			    "attest: --tpm-ca: %s is not a certificate", path);
			break;
		}
	}
	closedir(d);
	if (r == 0 && t->n == 0)
		r = SM_ERR_NOTFOUND;
	if (r != 0) {
		att_trust_free(t);
		return r;
	}
	*out = t;
	return 0;
}

static bool
crl_name_ok(const char *n)
{
	size_t l = strlen(n);

	return l > 4 &&
	    (strcmp(n + l - 4, ".pem") == 0 || strcmp(n + l - 4, ".crl") == 0 ||
		strcmp(n + l - 4, ".der") == 0);
}

static int
crl_add_file(struct att_trust *t, const char *path, size_t *n)
{
	X509_CRL *c;
	BIO *b;
	size_t before = *n;

	if ((b = BIO_new_file(path, "rb")) == NULL)
		return SM_ERR_IO;
	while ((c = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_crl(t->store, c) == 1)
			(*n)++;
		X509_CRL_free(c);
	}
	ERR_clear_error();
	if (*n == before) {
		(void)BIO_reset(b);
		if ((c = d2i_X509_CRL_bio(b, NULL)) != NULL) {
			if (X509_STORE_add_crl(t->store, c) == 1)
				(*n)++;
			X509_CRL_free(c);
		}
		ERR_clear_error();
	}
	BIO_free(b);
	return *n > before ? 0 : SM_ERR_INVAL;
}

int
att_trust_load_crls(struct att_trust *t, const char *dir)
{
	char path[4096];
	struct dirent *de;
	size_t n = 0;
	DIR *d;
	int r = 0;

	if ((d = opendir(dir)) == NULL)
		return SM_ERR_IO;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !crl_name_ok(de->d_name))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >=
		    (int)sizeof(path)) {
			r = SM_ERR_INVAL;
			break;
		}
		if ((r = crl_add_file(t, path, &n)) != 0) {
			log_warn("attest: --tpm-crl: %s is not a CRL", path);
			break;
		}
	}
	closedir(d);
	if (r == 0 && n == 0)
		r = SM_ERR_NOTFOUND;
	if (r == 0 &&
	    X509_STORE_set_flags(t->store, X509_V_FLAG_CRL_CHECK) != 1)
		r = SM_ERR_INTERNAL;
	return r;
}

void
att_trust_free(struct att_trust *t)
{
	if (t == NULL)
		return;
	X509_STORE_free(t->store);
	free(t);
}

/* The TCG EK credential profile's extended key usage, tcg-kp-EKCertificate. */
#define TCG_KP_EK_CERTIFICATE "2.23.133.8.1"

/*
 * The leaf's TCG EK profile: EKU tcg-kp-EKCertificate, keyUsage with
 * keyEncipherment (an RSA EK decrypts credentials), and not a CA. ATT_R_OK
 * or the reason.
 */
static enum att_reason
ek_profile_check(X509 *leaf)
{
	EXTENDED_KEY_USAGE *eku;
	char oid[64];
	uint32_t ku;
	int i, crit = -1;
	bool ek = false;

	eku = X509_get_ext_d2i(leaf, NID_ext_key_usage, &crit, NULL);
	for (i = 0; eku != NULL && i < sk_ASN1_OBJECT_num(eku); i++)
		if (OBJ_obj2txt(oid, sizeof(oid), sk_ASN1_OBJECT_value(eku, i),
			1) > 0 &&
		    strcmp(oid, TCG_KP_EK_CERTIFICATE) == 0)
			ek = true;
	EXTENDED_KEY_USAGE_free(eku);
	if (!ek)
		return ATT_R_EK_NOT_EK;
	/* Also computes the cached extension flags used below. */
	ku = X509_get_key_usage(leaf);
	if (ku == UINT32_MAX || (ku & KU_KEY_ENCIPHERMENT) == 0)
		return ATT_R_EK_KEY_USAGE;
	if ((X509_get_extension_flags(leaf) & EXFLAG_CA) != 0)
		return ATT_R_EK_IS_CA;
	return ATT_R_OK;
}

/*
 * Chain the EK certificate (certs[0], with certs[1..] as untrusted
 * intermediates) to an anchor, check the leaf's EK profile; on success write
 * the EK's SPKI DER. ATT_R_OK or the reason.
 */
static enum att_reason
ek_chain_check(const struct att_trust *t, const struct att_tpm_evidence *e,
    uint8_t *spki, size_t *spki_len)
{
	STACK_OF(X509) *chain = NULL;
	X509_STORE_CTX *ctx = NULL;
	X509 *leaf = NULL, *x;
	const unsigned char *p;
	unsigned char *q;
	EVP_PKEY *pk;
	size_t i;
	int n;
	enum att_reason r = ATT_R_EK_UNTRUSTED;

	*spki_len = 0;
	if (t == NULL)
		goto out;
	p = e->certs[0];
	if ((leaf = d2i_X509(NULL, &p, (long)e->cert_lens[0])) == NULL ||
	    p != e->certs[0] + e->cert_lens[0])
		goto out;
	if ((chain = sk_X509_new_null()) == NULL)
		goto out;
	for (i = 1; i < e->ncerts; i++) {
		p = e->certs[i];
		if ((x = d2i_X509(NULL, &p, (long)e->cert_lens[i])) == NULL)
			goto out;
		if (!sk_X509_push(chain, x)) {
			X509_free(x);
			goto out;
		}
	}
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, t->store, leaf, chain) != 1)
		goto out;
	if (X509_verify_cert(ctx) != 1) {
		n = X509_STORE_CTX_get_error(ctx);
		log_info("attest: EK certificate: %s",
		    X509_verify_cert_error_string(n));
		if (n == X509_V_ERR_CERT_REVOKED)
			r = ATT_R_EK_REVOKED;
		goto out;
	}
	if ((r = ek_profile_check(leaf)) != ATT_R_OK) {
		log_info("attest: EK certificate: %s", att_reason_str(r));
		goto out;
	}
	r = ATT_R_EK_UNTRUSTED;
	if ((pk = X509_get0_pubkey(leaf)) == NULL ||
	    (n = i2d_PUBKEY(pk, NULL)) <= 0 || n > ATT_EK_SPKI_MAX)
		goto out;
	q = spki;
	if (i2d_PUBKEY(pk, &q) != n)
		goto out;
	*spki_len = (size_t)n;
	r = ATT_R_OK;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	sk_X509_pop_free(chain, X509_free);
	X509_free(leaf);
	return r;
}

static int
verdict(struct att_verdict *v, enum att_status s, enum att_reason why)
{
	v->status = s;
	v->reason = why;
	if (s == ATT_VERIFIED)
		return 0;
	if (s == ATT_UNVERIFIED)
		return SM_ERR_AGAIN;
	return SM_ERR_VERIFY;
}

static int
check_tpm(const struct att_policy *pol, const struct att_msg *m,
    struct att_verdict *v)
{
	const struct att_tpm_evidence *e = &m->tpm;
	uint8_t digest[ATT_HASH_LEN];
	enum att_reason why;
	int r;

	if (att_ak_check(e->ak_pub, e->ak_pub_len, v->ak_name) != 0)
		return verdict(v, ATT_FAILED, ATT_R_BAD_AK);
	r = att_quote_check(e->ak_pub, e->ak_pub_len, e->attest, e->attest_len,
	    e->sig, e->sig_len, v->blob_hash, v->pcr_digest);
	if (r == SM_ERR_PROTO)
		return verdict(v, ATT_FAILED, ATT_R_QUOTE_MISMATCH);
	if (r == SM_ERR_INVAL)
		return verdict(v, ATT_FAILED, ATT_R_PCR_MISMATCH);
	if (r != 0)
		return verdict(v, ATT_FAILED, ATT_R_BAD_SIGNATURE);
	if (att_sha256(e->pcrs, ATT_PCR_COUNT * ATT_PCR_LEN, digest) != 0 ||
	    sodium_memcmp(digest, v->pcr_digest, ATT_HASH_LEN) != 0)
		return verdict(v, ATT_FAILED, ATT_R_PCR_MISMATCH);
	if ((why = ek_chain_check(
		 pol->trust, e, v->ek_spki, &v->ek_spki_len)) != ATT_R_OK)
		return verdict(v, ATT_FAILED, why);
	if (att_sha256(v->ek_spki, v->ek_spki_len, v->ek_hash) != 0)
		return verdict(v, ATT_FAILED, ATT_R_EK_UNTRUSTED);
	memcpy(v->ak_pub, e->ak_pub, e->ak_pub_len);
	v->ak_pub_len = e->ak_pub_len;
	return 0;
}

int
att_verify(const struct att_policy *pol, const uint8_t *msg, size_t len,
    const uint8_t node_id[ATT_NODE_ID_LEN], const struct infkey_pub *ik,
    struct att_verdict *v)
{
	struct att_msg m;
	uint8_t pinned[ATT_HASH_LEN];
	enum att_level level;
	size_t i;
	int r;

	memset(v, 0, sizeof(*v));
	posture_init(&v->posture);
	if (msg == NULL || len == 0)
		return verdict(v, ATT_FAILED, ATT_R_NONE);
	if ((r = att_msg_parse(msg, len, &m)) != 0)
		return verdict(v, ATT_FAILED,
		    r == SM_ERR_UNSUPP ? ATT_R_UNSUPPORTED : ATT_R_MALFORMED);
	v->provider = m.b.provider;
	if (att_sha256(m.blob, m.blob_len, v->blob_hash) != 0)
		return verdict(v, ATT_FAILED, ATT_R_MALFORMED);

	/* 2. What the provider can prove at most. */
	switch (m.b.provider) {
	case ATT_PROV_SOFTWARE:
		level = ATT_LEVEL_SELF_SIGNED;
		break;
	case ATT_PROV_TPM:
		level = ATT_LEVEL_TPM;
		break;
	default:
		return verdict(v, ATT_FAILED, ATT_R_UNSUPPORTED);
	}
	if (m.b.level != level)
		return verdict(v, ATT_FAILED, ATT_R_LEVEL_CLAIM);

	/* 3. The key binds the blob. */
	if (m.b.provider == ATT_PROV_SOFTWARE) {
		if (att_ec_verify_point(
			m.sw_pub, m.sw_sig, m.blob, m.blob_len) != 0)
			return verdict(v, ATT_FAILED, ATT_R_BAD_SIGNATURE);
		memcpy(v->sw_pub, m.sw_pub, ATT_SW_PUB_LEN);
	} else if ((r = check_tpm(pol, &m, v)) != 0)
		return r;

	/* The blob is authentic from here on: expose what it says. */
	memcpy(v->node_id, m.b.node_id, ATT_NODE_ID_LEN);
	v->infkey = m.b.infkey;
	v->binary_hash_known = m.b.binary_hash_known;
	memcpy(v->binary_hash, m.b.binary_hash, ATT_HASH_LEN);
	v->posture = m.b.posture;
	memcpy(v->cpu_model, m.b.cpu_model, sizeof(v->cpu_model));
	v->mem_bytes = m.b.mem_bytes;
	v->tpm_manufacturer = m.b.tpm_manufacturer;
	v->timestamp = m.b.timestamp;

	/* 4, 5. Bound to the announcing node and its inference key. */
	if (sodium_memcmp(m.b.node_id, node_id, ATT_NODE_ID_LEN) != 0)
		return verdict(v, ATT_FAILED, ATT_R_WRONG_NODE_ID);
	if (ik == NULL || m.b.infkey.epoch != ik->epoch ||
	    sodium_memcmp(m.b.infkey.pk, ik->pk, INFKEY_PK_LEN) != 0)
		return verdict(v, ATT_FAILED, ATT_R_WRONG_INFKEY);

	/* 6. The AK must be the one activated and pinned for this node. */
	if (m.b.provider == ATT_PROV_TPM) {
		uint8_t owner[ATT_NODE_ID_LEN];
		int who = pol->pins == NULL
		    ? 0
		    : att_pins_owner(
			  pol->pins, v->ak_name + 2, v->ek_hash, owner);

		/* One AK, one EK, one node id. */
		if (who != 0 &&
		    sodium_memcmp(owner, node_id, ATT_NODE_ID_LEN) != 0) {
			log_warn("attest: node presented an %s pinned for "
				 "another node id",
			    who == ATT_PIN_AK ? "AK" : "EK");
			return verdict(v, ATT_FAILED,
			    who == ATT_PIN_AK ? ATT_R_AK_PINNED_ELSEWHERE
					      : ATT_R_EK_PINNED_ELSEWHERE);
		}
		if (pol->pins == NULL ||
		    att_pins_lookup(pol->pins, node_id, pinned) != 0)
			return verdict(
			    v, ATT_UNVERIFIED, ATT_R_AK_NOT_ACTIVATED);
		if (sodium_memcmp(pinned, v->ak_name + 2, ATT_HASH_LEN) != 0) {
			log_warn("attest: node presented a different AK than "
				 "the one pinned for it");
			return verdict(v, ATT_FAILED, ATT_R_AK_CHANGED);
		}
	}
	v->level = level;

	/* 7. Binary allow-list. */
	if (pol->allowed != NULL) {
		bool ok = false;

		for (i = 0; m.b.binary_hash_known && i < pol->nallowed; i++)
			if (memcmp(pol->allowed[i], m.b.binary_hash,
				ATT_HASH_LEN) == 0)
				ok = true;
		if (!ok)
			return verdict(v, ATT_FAILED, ATT_R_BINARY_NOT_ALLOWED);
	}

	/* 8. Policy floor. */
	if (level < pol->min_level)
		return verdict(v, ATT_FAILED, ATT_R_BELOW_MIN_TRUST);
	return verdict(v, ATT_VERIFIED, ATT_R_OK);
}

const char *
att_reason_str(enum att_reason r)
{
	switch (r) {
	case ATT_R_OK:
		return "verified";
	case ATT_R_NONE:
		return "no attestation";
	case ATT_R_MALFORMED:
		return "malformed attestation";
	case ATT_R_UNSUPPORTED:
		return "unsupported attestation provider or version";
	case ATT_R_LEVEL_CLAIM:
		return "claimed trust level exceeds what the provider proves";
	case ATT_R_BAD_SIGNATURE:
		return "bad signature";
	case ATT_R_BAD_AK:
		return "attestation key is not a restricted TPM signing key";
	case ATT_R_QUOTE_MISMATCH:
		return "quote qualifying data mismatch";
	case ATT_R_PCR_MISMATCH:
		return "PCR selection or digest mismatch";
	case ATT_R_EK_UNTRUSTED:
		return "EK certificate chain untrusted";
	case ATT_R_WRONG_NODE_ID:
		return "wrong node id";
	case ATT_R_WRONG_INFKEY:
		return "wrong inference key";
	case ATT_R_AK_NOT_ACTIVATED:
		return "AK not activated";
	case ATT_R_AK_CHANGED:
		return "AK changed for pinned node";
	case ATT_R_ACTIVATION_FAILED:
		return "credential activation failed";
	case ATT_R_BINARY_NOT_ALLOWED:
		return "binary not allowed";
	case ATT_R_BELOW_MIN_TRUST:
		return "below minimum trust level";
	case ATT_R_EK_NOT_EK:
		return "EK certificate lacks the TCG EK extended key usage "
		       "(2.23.133.8.1)";
	case ATT_R_EK_KEY_USAGE:
		return "EK certificate keyUsage lacks keyEncipherment";
	case ATT_R_EK_IS_CA:
		return "EK certificate is a CA certificate";
	case ATT_R_EK_REVOKED:
		return "EK certificate revoked (--tpm-crl)";
	case ATT_R_AK_PINNED_ELSEWHERE:
		return "AK already pinned for another node id";
	case ATT_R_EK_PINNED_ELSEWHERE:
		return "EK already pinned for another node id";
	}
	return "unknown reason";
}

int
att_activation_new(const struct att_verdict *v, struct att_activation *a)
{
	struct buf cred, seed;
	int r;

	memset(a, 0, sizeof(*a));
	if (v->provider != ATT_PROV_TPM || v->ek_spki_len == 0 ||
	    v->ak_pub_len == 0 ||
	    (v->status != ATT_VERIFIED && v->reason != ATT_R_AK_NOT_ACTIVATED))
		return SM_ERR_INVAL;
	buf_init(&cred, ATT_CRED_MAX);
	buf_init(&seed, ATT_SEED_MAX);
	if (RAND_bytes(a->secret, ATT_SECRET_LEN) != 1) {
		r = SM_ERR_INTERNAL;
		goto out;
	}
	if ((r = att_make_credential(v->ek_spki, v->ek_spki_len, v->ak_name,
		 ATT_TPM_NAME_LEN, a->secret, ATT_SECRET_LEN, &cred, &seed)) !=
	    0)
		goto out;
	memcpy(a->cred, buf_data(&cred), cred.len);
	a->cred_len = cred.len;
	memcpy(a->seed, buf_data(&seed), seed.len);
	a->seed_len = seed.len;
	memcpy(a->node_id, v->node_id, ATT_NODE_ID_LEN);
	memcpy(a->ak_hash, v->ak_name + 2, ATT_HASH_LEN);
	memcpy(a->ek_hash, v->ek_hash, ATT_HASH_LEN);
	a->pending = true;
	r = 0;
out:
	buf_clear(&cred);
	buf_clear(&seed);
	if (r != 0)
		att_activation_clear(a);
	return r;
}

int
att_activation_finish(struct att_activation *a, const uint8_t *secret,
    size_t secret_len, struct att_pins *pins)
{
	int r = SM_ERR_DECRYPT;

	if (!a->pending)
		return SM_ERR_INVAL;
	if (secret_len != ATT_SECRET_LEN ||
	    sodium_memcmp(secret, a->secret, ATT_SECRET_LEN) != 0)
		goto out;
	r = att_pins_add_ek(pins, a->node_id, a->ak_hash, a->ek_hash);
out:
	att_activation_clear(a);
	return r;
}

void
att_activation_clear(struct att_activation *a)
{
	sodium_memzero(a, sizeof(*a));
}

int
att_allowed_load(const char *path, uint8_t (**out)[ATT_HASH_LEN], size_t *n)
{
	char line[256], hex[2 * ATT_HASH_LEN + 2];
	uint8_t(*v)[ATT_HASH_LEN] = NULL, (*nv)[ATT_HASH_LEN];
	size_t cnt = 0, cap = 0;
	FILE *f;
	int r = 0;

	*out = NULL;
	*n = 0;
	if ((f = fopen(path, "re")) == NULL)
		return SM_ERR_IO;
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t i;

		if (sscanf(line, "%65s", hex) != 1 || hex[0] == '#')
			continue;
		for (i = 0; hex[i] != '\0'; i++)
			if (hex[i] >= 'A' && hex[i] <= 'F')
				hex[i] = (char)(hex[i] - 'A' + 'a');
		if (cnt == 4096) {
			r = SM_ERR_TOOBIG;
			break;
		}
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				r = SM_ERR_NOMEM;
				break;
			}
			v = nv;
		}
		if (strlen(hex) != 2 * ATT_HASH_LEN ||
		    sm_unhex(v[cnt], ATT_HASH_LEN, hex) != 0) {
			r = SM_ERR_INVAL;
			break;
		}
		cnt++;
	}
	fclose(f);
	if (r != 0) {
		free(v);
		return r;
	}
	*out = v;
	*n = cnt;
	return 0;
}
