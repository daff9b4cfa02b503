/*
 * TPM provider (tpm2-tss ESYS). Handles: the AK (a transient primary, flushed
 * in tpm_free), policy sessions (flushed after each activation), the
 * persistent RSA EK (closed, never flushed). swtpm has no resource manager,
 * so nothing transient may leak.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "attest/challenge.h"
#include "attest/cred.h"
#include "attest/measure.h"
#include "attest/provider.h"
#include "core/log.h"

#define EK_RSA_HANDLE 0x81010001
#define EK_CERT_NV 0x01C00002
#define NV_CHUNK 512

struct tpm_provider {
	struct att_provider base; /* first */
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	ESYS_TR ek;
	ESYS_TR ak;
	uint32_t manufacturer;
	uint8_t ak_pub[ATT_TPM_PUB_MAX];
	size_t ak_pub_len;
	uint8_t *ek_cert;
	size_t ek_cert_len;
};

static const TPML_PCR_SELECTION boot_pcrs = {
    .count = 1,
    .pcrSelections = {{
	.hash = TPM2_ALG_SHA256,
	.sizeofSelect = 3,
	.pcrSelect = {0xff, 0x00, 0x00},
    }},
};

static int
tss_fail(const char *what, TSS2_RC rc)
{
	log_warn("attest: tpm: %s: %s", what, Tss2_RC_Decode(rc));
	return SM_ERR_INTERNAL;
}

static int
read_ek_cert(struct tpm_provider *t)
{
	TPM2B_NV_PUBLIC *nvpub = NULL;
	TPM2B_MAX_NV_BUFFER *data = NULL;
	ESYS_TR nv = ESYS_TR_NONE, auth;
	uint16_t size, off, n;
	TSS2_RC rc;
	int r = SM_ERR_NOTFOUND;

	rc = Esys_TR_FromTPMPublic(
	    t->esys, EK_CERT_NV, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv);
	if (rc != TSS2_RC_SUCCESS) {
		log_warn(
		    "attest: tpm: no EK certificate in NV 0x%08x", EK_CERT_NV);
		goto out;
	}
	rc = Esys_NV_ReadPublic(t->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, &nvpub, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		r = tss_fail("NV_ReadPublic", rc);
		goto out;
	}
	size = nvpub->nvPublic.dataSize;
	if (size == 0 || size > ATT_CERT_MAX) {
		r = SM_ERR_TOOBIG;
		goto out;
	}
	auth = (nvpub->nvPublic.attributes & TPMA_NV_OWNERREAD) != 0
	    ? ESYS_TR_RH_OWNER
	    : nv;
	if ((t->ek_cert = malloc(size)) == NULL) {
		r = SM_ERR_NOMEM;
		goto out;
	}
	for (off = 0; off < size; off += n) {
		n = size - off > NV_CHUNK ? NV_CHUNK : size - off;
		rc = Esys_NV_Read(t->esys, auth, nv, ESYS_TR_PASSWORD,
		    ESYS_TR_NONE, ESYS_TR_NONE, n, off, &data);
		if (rc != TSS2_RC_SUCCESS || data->size != n) {
			r = tss_fail("NV_Read", rc);
			goto out;
		}
		memcpy(t->ek_cert + off, data->buffer, n);
		Esys_Free(data);
		data = NULL;
	}
	t->ek_cert_len = size;
	r = 0;
out:
	Esys_Free(data);
	Esys_Free(nvpub);
	if (nv != ESYS_TR_NONE)
		(void)Esys_TR_Close(t->esys, &nv);
	return r;
}

/*
 * The AK's parent: an ECC P-256 storage key, primary in the endorsement
 * hierarchy from the TCG SRK-style template. Anyone can re-create it (it is
 * deterministic); that is harmless, it only wraps the AK's private blob. The
 * AK itself is an ordinary key with a TPM-drawn private part and a random
 * authValue: neither can be re-derived (doc/PROTOCOL.md, "An AK only sealmesh
 * can use").
 */
static int
create_parent(struct tpm_provider *t, ESYS_TR *parent)
{
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPM2B_PUBLIC tmpl = {
	    .publicArea =
		{
		    .type = TPM2_ALG_ECC,
		    .nameAlg = TPM2_ALG_SHA256,
		    .objectAttributes = TPMA_OBJECT_FIXEDTPM |
			TPMA_OBJECT_FIXEDPARENT |
			TPMA_OBJECT_SENSITIVEDATAORIGIN |
			TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED |
			TPMA_OBJECT_DECRYPT | TPMA_OBJECT_NODA,
		    .parameters.eccDetail =
			{
			    .symmetric = {.algorithm = TPM2_ALG_AES,
				.keyBits.aes = 128,
				.mode.aes = TPM2_ALG_CFB},
			    .scheme = {.scheme = TPM2_ALG_NULL},
			    .curveID = TPM2_ECC_NIST_P256,
			    .kdf = {.scheme = TPM2_ALG_NULL},
			},
		},
	};
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION none = {0};
	TSS2_RC rc;

	rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_ENDORSEMENT,
	    ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl,
	    &outside, &none, parent, NULL, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		*parent = ESYS_TR_NONE;
		return tss_fail("CreatePrimary(AK parent)", rc);
	}
	return 0;
}

/* The AK template; 'attrs' is the attribute set (tests clear some). */
static void
ak_template(TPM2B_PUBLIC *tmpl, TPMA_OBJECT attrs)
{
	memset(tmpl, 0, sizeof(*tmpl));
	tmpl->publicArea.type = TPM2_ALG_ECC;
	tmpl->publicArea.nameAlg = TPM2_ALG_SHA256;
	tmpl->publicArea.objectAttributes = attrs;
	tmpl->publicArea.parameters.eccDetail.symmetric.algorithm =
	    TPM2_ALG_NULL;
	tmpl->publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
	tmpl->publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg =
	    TPM2_ALG_SHA256;
	tmpl->publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	tmpl->publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
}

#define AK_ATTRS                                                               \
	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |                      \
	    TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |       \
	    TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT |                \
	    TPMA_OBJECT_NODA)

/*
 * AK file (state dir, 0600): "SMAK" | u8 version 1 | authValue[32] |
 * marshalled TPM2B_PUBLIC | marshalled TPM2B_PRIVATE (the private part is
 * wrapped by the parent and useless outside this TPM).
 */
#define AK_FILE_MAGIC "SMAK"
#define AK_FILE_VERSION 1
#define AK_FILE_MAX 2048

static int
ak_file_write(const char *path, const uint8_t auth[ATT_AK_AUTH_LEN],
    const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv)
{
	uint8_t b[AK_FILE_MAX];
	char tmp[4096];
	size_t off = 5;
	ssize_t w;
	int fd = -1, r = SM_ERR_IO;

	memcpy(b, AK_FILE_MAGIC, 4);
	b[4] = AK_FILE_VERSION;
	memcpy(b + off, auth, ATT_AK_AUTH_LEN);
	off += ATT_AK_AUTH_LEN;
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, b, sizeof(b), &off) !=
		TSS2_RC_SUCCESS ||
	    Tss2_MU_TPM2B_PRIVATE_Marshal(priv, b, sizeof(b), &off) !=
		TSS2_RC_SUCCESS) {
		r = SM_ERR_TOOBIG;
		goto out;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		r = SM_ERR_INVAL;
		goto out;
	}
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) <
	    0) {
		log_error("attest: cannot create %s: %s", tmp, strerror(errno));
		goto out;
	}
	w = write(fd, b, off);
	if (w != (ssize_t)off || fsync(fd) != 0) {
		log_error("attest: cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		log_error("attest: cannot rename %s to %s: %s", tmp, path,
		    strerror(errno));
		goto out;
	}
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (r != 0)
		(void)unlink(tmp);
	sodium_memzero(b, sizeof(b));
	return r;
}

/* SM_ERR_NOTFOUND when absent, SM_ERR_PERM when group/others can read it. */
static int
ak_file_read(const char *path, uint8_t auth[ATT_AK_AUTH_LEN], TPM2B_PUBLIC *pub,
    TPM2B_PRIVATE *priv)
{
	uint8_t b[AK_FILE_MAX];
	struct stat st;
	size_t off = 5;
	ssize_t n;
	int fd, r = SM_ERR_INVAL;

	memset(pub, 0, sizeof(*pub));
	memset(priv, 0, sizeof(*priv));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		if (errno == ENOENT)
			return SM_ERR_NOTFOUND;
		log_error("attest: cannot open %s: %s", path, strerror(errno));
		return SM_ERR_IO;
	}
	if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
		log_error("attest: %s is readable by group or others "
			  "(mode %03o); refusing it (chmod 600)",
		    path, (unsigned)(st.st_mode & 0777));
		close(fd);
		return SM_ERR_PERM;
	}
	n = read(fd, b, sizeof(b));
	close(fd);
	if (n < 5 + ATT_AK_AUTH_LEN || n == (ssize_t)sizeof(b) ||
	    memcmp(b, AK_FILE_MAGIC, 4) != 0 || b[4] != AK_FILE_VERSION)
		goto out;
	memcpy(auth, b + 5, ATT_AK_AUTH_LEN);
	off += ATT_AK_AUTH_LEN;
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(b, (size_t)n, &off, pub) !=
		TSS2_RC_SUCCESS ||
	    Tss2_MU_TPM2B_PRIVATE_Unmarshal(b, (size_t)n, &off, priv) !=
		TSS2_RC_SUCCESS ||
	    off != (size_t)n)
		goto out;
	r = 0;
out:
	if (r != 0)
		log_error("attest: %s is not a sealmesh AK file", path);
	sodium_memzero(b, sizeof(b));
	return r;
}

/*
 * Load (or, when 'path' is NULL, missing, or 'fresh', create) the AK under
 * the parent, set its authValue on the handle and keep its public area.
 */
static int
create_ak(
    struct tpm_provider *t, const char *path, bool fresh, TPMA_OBJECT attrs)
{
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPM2B_PUBLIC tmpl, pubf, *pub = NULL;
	TPM2B_PRIVATE privf, *priv = NULL;
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION none = {0};
	TPM2B_AUTH auth = {.size = ATT_AK_AUTH_LEN};
	ESYS_TR parent = ESYS_TR_NONE;
	size_t off = 0;
	TSS2_RC rc;
	int r;

	r = path != NULL && !fresh
	    ? ak_file_read(path, auth.buffer, &pubf, &privf)
	    : SM_ERR_NOTFOUND;
	if (r != 0 && r != SM_ERR_NOTFOUND)
		goto out;
	if (r == SM_ERR_NOTFOUND && path != NULL)
		log_info("attest: tpm: creating a new AK in %s", path);
	if ((r = create_parent(t, &parent)) != 0)
		goto out;
	if (pubf.size == 0 || path == NULL || fresh) {
		/* A new key: the TPM draws the private part, we the auth. */
		randombytes_buf(auth.buffer, ATT_AK_AUTH_LEN);
		memcpy(sens.sensitive.userAuth.buffer, auth.buffer,
		    ATT_AK_AUTH_LEN);
		sens.sensitive.userAuth.size = ATT_AK_AUTH_LEN;
		ak_template(&tmpl, attrs);
		rc = Esys_Create(t->esys, parent, ESYS_TR_PASSWORD,
		    ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl, &outside, &none,
		    &priv, &pub, NULL, NULL, NULL);
		if (rc != TSS2_RC_SUCCESS) {
			r = tss_fail("Create(AK)", rc);
			goto out;
		}
		if (path != NULL &&
		    (r = ak_file_write(path, auth.buffer, pub, priv)) != 0)
			goto out;
		pubf = *pub;
		privf = *priv;
	}
	rc = Esys_Load(t->esys, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	    ESYS_TR_NONE, &privf, &pubf, &t->ak);
	if (rc != TSS2_RC_SUCCESS) {
		t->ak = ESYS_TR_NONE;
		log_error("attest: tpm: the AK in %s does not load in this "
			  "TPM (%s): was the TPM cleared or replaced? Make a "
			  "new one deliberately with `sealmesh attest "
			  "--new-ak`",
		    path ? path : "memory", Tss2_RC_Decode(rc));
		r = SM_ERR_INTERNAL;
		goto out;
	}
	rc = Esys_TR_SetAuth(t->esys, t->ak, &auth);
	if (rc != TSS2_RC_SUCCESS) {
		r = tss_fail("TR_SetAuth(AK)", rc);
		goto out;
	}
	rc = Tss2_MU_TPMT_PUBLIC_Marshal(
	    &pubf.publicArea, t->ak_pub, sizeof(t->ak_pub), &off);
	if (rc != TSS2_RC_SUCCESS) {
		r = tss_fail("marshal AK", rc);
		goto out;
	}
	t->ak_pub_len = off;
	r = 0;
out:
	if (parent != ESYS_TR_NONE)
		(void)Esys_FlushContext(t->esys, parent);
	sodium_memzero(&auth, sizeof(auth));
	sodium_memzero(&sens, sizeof(sens));
	sodium_memzero(&privf, sizeof(privf));
	Esys_Free(pub);
	Esys_Free(priv);
	return r;
}

static int
read_manufacturer(struct tpm_provider *t)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more;
	TSS2_RC rc;

	rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES, TPM2_PT_MANUFACTURER, 1,
	    &more, &cap);
	if (rc != TSS2_RC_SUCCESS)
		return tss_fail("GetCapability", rc);
	if (cap->data.tpmProperties.count >= 1 &&
	    cap->data.tpmProperties.tpmProperty[0].property ==
		TPM2_PT_MANUFACTURER)
		t->manufacturer = cap->data.tpmProperties.tpmProperty[0].value;
	Esys_Free(cap);
	return 0;
}

/*
 * Quote 'extra' over the boot PCRs; appends u16 attest_len || attest ||
 * u16 sig_len || sig, and the PCR values to 'pcrs' when not NULL. Reads the
 * PCRs before and after and retries when they moved in between.
 */
static int
quote(struct tpm_provider *t, const uint8_t extra[ATT_HASH_LEN],
    uint8_t *attest, size_t *attest_len, uint8_t *sig, size_t *sig_len,
    uint8_t pcrs[ATT_PCR_COUNT * ATT_PCR_LEN])
{
	TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL};
	TPM2B_DATA qd = {.size = ATT_HASH_LEN};
	TPM2B_ATTEST *q = NULL;
	TPMT_SIGNATURE *s = NULL;
	TPML_DIGEST *vals = NULL;
	TPML_PCR_SELECTION *sel = NULL;
	UINT32 upd0, upd1;
	size_t off, i;
	TSS2_RC rc;
	int tries, r = SM_ERR_INTERNAL;

	memcpy(qd.buffer, extra, ATT_HASH_LEN);
	for (tries = 0; tries < 3; tries++) {
		Esys_Free(vals);
		Esys_Free(sel);
		Esys_Free(q);
		Esys_Free(s);
		vals = NULL, sel = NULL, q = NULL, s = NULL;
		rc = Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE,
		    ESYS_TR_NONE, &boot_pcrs, &upd0, &sel, &vals);
		if (rc != TSS2_RC_SUCCESS)
			return tss_fail("PCR_Read", rc);
		if (vals->count != ATT_PCR_COUNT)
			goto out;
		rc = Esys_Quote(t->esys, t->ak, ESYS_TR_PASSWORD, ESYS_TR_NONE,
		    ESYS_TR_NONE, &qd, &scheme, &boot_pcrs, &q, &s);
		if (rc != TSS2_RC_SUCCESS) {
			r = tss_fail("Quote", rc);
			goto out;
		}
		Esys_Free(sel);
		sel = NULL;
		{
			TPML_DIGEST *v2 = NULL;

			rc = Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE,
			    ESYS_TR_NONE, &boot_pcrs, &upd1, &sel, &v2);
			Esys_Free(v2);
			if (rc != TSS2_RC_SUCCESS)
				return tss_fail("PCR_Read", rc);
		}
		if (upd0 == upd1)
			break;
	}
	if (tries == 3)
		goto out;
	if (q->size > ATT_TPM_ATTEST_MAX)
		goto out;
	memcpy(attest, q->attestationData, q->size);
	*attest_len = q->size;
	off = 0;
	rc = Tss2_MU_TPMT_SIGNATURE_Marshal(s, sig, ATT_TPM_SIG_MAX, &off);
	if (rc != TSS2_RC_SUCCESS) {
		r = tss_fail("marshal signature", rc);
		goto out;
	}
	*sig_len = off;
	if (pcrs != NULL)
		for (i = 0; i < ATT_PCR_COUNT; i++) {
			if (vals->digests[i].size != ATT_PCR_LEN)
				goto out;
			memcpy(pcrs + i * ATT_PCR_LEN, vals->digests[i].buffer,
			    ATT_PCR_LEN);
		}
	r = 0;
out:
	Esys_Free(vals);
	Esys_Free(sel);
	Esys_Free(q);
	Esys_Free(s);
	return r;
}

static int
tpm_evidence(
    struct att_provider *p, const uint8_t *blob, size_t len, struct buf *out)
{
	struct tpm_provider *t = (struct tpm_provider *)p;
	struct att_tpm_evidence e;
	uint8_t h[ATT_HASH_LEN], attest[ATT_TPM_ATTEST_MAX];
	uint8_t sig[ATT_TPM_SIG_MAX], pcrs[ATT_PCR_COUNT * ATT_PCR_LEN];
	int r;

	memset(&e, 0, sizeof(e));
	if ((r = att_sha256(blob, len, h)) != 0 ||
	    (r = quote(t, h, attest, &e.attest_len, sig, &e.sig_len, pcrs)) !=
		0)
		return r;
	e.ak_pub = t->ak_pub;
	e.ak_pub_len = t->ak_pub_len;
	e.attest = attest;
	e.sig = sig;
	e.pcrs = pcrs;
	e.certs[0] = t->ek_cert;
	e.cert_lens[0] = t->ek_cert_len;
	e.ncerts = 1;
	return att_tpm_evidence_write(&e, out);
}

static int
put16(struct buf *b, size_t v)
{
	uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	return buf_append(b, x, 2);
}

static int
tpm_answer(struct att_provider *p, const uint8_t nonce[ATT_NONCE_LEN],
    const uint8_t blob_hash[ATT_HASH_LEN], struct buf *out)
{
	struct tpm_provider *t = (struct tpm_provider *)p;
	uint8_t msg[ATT_CHAL_SIGNED_LEN], qd[ATT_HASH_LEN];
	uint8_t attest[ATT_TPM_ATTEST_MAX], sig[ATT_TPM_SIG_MAX];
	size_t alen = 0, slen = 0;
	int r;

	att_chal_signed_bytes(nonce, blob_hash, msg);
	if ((r = att_sha256(msg, sizeof(msg), qd)) != 0 ||
	    (r = quote(t, qd, attest, &alen, sig, &slen, NULL)) != 0)
		return r;
	if ((r = put16(out, alen)) != 0 ||
	    (r = buf_append(out, attest, alen)) != 0 ||
	    (r = put16(out, slen)) != 0 ||
	    (r = buf_append(out, sig, slen)) != 0)
		return r;
	return 0;
}

static int
tpm_activate(struct att_provider *p, const uint8_t *cred, size_t cred_len,
    const uint8_t *seed, size_t seed_len, uint8_t secret[ATT_SECRET_LEN])
{
	struct tpm_provider *t = (struct tpm_provider *)p;
	TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
	TPM2B_ID_OBJECT idobj = {0};
	TPM2B_ENCRYPTED_SECRET enc = {0};
	TPM2B_DIGEST *info = NULL;
	ESYS_TR sess = ESYS_TR_NONE;
	TSS2_RC rc;
	int r = SM_ERR_INVAL;

	memset(secret, 0, ATT_SECRET_LEN);
	if (cred_len == 0 || cred_len > sizeof(idobj.credential) ||
	    seed_len == 0 || seed_len > sizeof(enc.secret))
		goto out;
	idobj.size = (UINT16)cred_len;
	memcpy(idobj.credential, cred, cred_len);
	enc.size = (UINT16)seed_len;
	memcpy(enc.secret, seed, seed_len);
	/* The EK's policy: PolicySecret(TPM_RH_ENDORSEMENT). */
	rc = Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_POLICY,
	    &sym, TPM2_ALG_SHA256, &sess);
	if (rc != TSS2_RC_SUCCESS) {
		sess = ESYS_TR_NONE;
		r = tss_fail("StartAuthSession", rc);
		goto out;
	}
	rc = Esys_PolicySecret(t->esys, ESYS_TR_RH_ENDORSEMENT, sess,
	    ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, NULL, NULL, NULL, 0,
	    NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		r = tss_fail("PolicySecret", rc);
		goto out;
	}
	rc = Esys_ActivateCredential(t->esys, t->ak, t->ek, ESYS_TR_PASSWORD,
	    sess, ESYS_TR_NONE, &idobj, &enc, &info);
	if (rc != TSS2_RC_SUCCESS) {
		/* A credential made for another AK or EK ends here. */
		log_info(
		    "attest: tpm: ActivateCredential: %s", Tss2_RC_Decode(rc));
		r = SM_ERR_DECRYPT;
		goto out;
	}
	if (info->size != ATT_SECRET_LEN) {
		r = SM_ERR_PROTO;
		goto out;
	}
	memcpy(secret, info->buffer, ATT_SECRET_LEN);
	r = 0;
out:
	if (info != NULL) {
		sodium_memzero(info, sizeof(*info));
		Esys_Free(info);
	}
	if (sess != ESYS_TR_NONE)
		(void)Esys_FlushContext(t->esys, sess);
	return r;
}

static void
tpm_describe(struct att_provider *p, struct att_blob *b)
{
	struct tpm_provider *t = (struct tpm_provider *)p;

	b->provider = ATT_PROV_TPM;
	b->level = ATT_LEVEL_TPM;
	b->tpm_manufacturer = t->manufacturer;
}

static void
tpm_free(struct att_provider *p)
{
	struct tpm_provider *t = (struct tpm_provider *)p;

	if (t->esys != NULL) {
		if (t->ak != ESYS_TR_NONE)
			(void)Esys_FlushContext(t->esys, t->ak);
		if (t->ek != ESYS_TR_NONE)
			(void)Esys_TR_Close(t->esys, &t->ek);
		Esys_Finalize(&t->esys);
	}
	if (t->tcti != NULL)
		Tss2_TctiLdr_Finalize(&t->tcti);
	free(t->ek_cert);
	free(t);
}

static int
tpm_measure(struct att_provider *p, const uint8_t nonce[ATT_NONCE_LEN],
    const uint8_t blob_hash[ATT_HASH_LEN], uint32_t ima_from, struct buf *out);

static const struct att_provider_ops tpm_ops = {
    .evidence = tpm_evidence,
    .answer = tpm_answer,
    .activate = tpm_activate,
    .describe = tpm_describe,
    .free = tpm_free,
    .measure = tpm_measure,
};

int
att_tpm_open(const char *tcti, struct att_provider **out)
{
	struct att_tpm_opts o = {.tcti = tcti};

	return att_tpm_open_opts(&o, out);
}

int
att_tpm_open_opts(const struct att_tpm_opts *o, struct att_provider **out)
{
	const char *tcti = o->tcti;
	struct tpm_provider *t;
	TSS2_RC rc;
	int r;

	*out = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return SM_ERR_NOMEM;
	t->base.ops = &tpm_ops;
	t->base.kind = ATT_PROV_TPM;
	t->base.level = ATT_LEVEL_TPM;
	t->ak = ESYS_TR_NONE;
	t->ek = ESYS_TR_NONE;
	rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
	if (rc != TSS2_RC_SUCCESS) {
		log_warn("attest: tpm: TCTI %s: %s", tcti, Tss2_RC_Decode(rc));
		r = SM_ERR_IO;
		goto fail;
	}
	rc = Esys_Initialize(&t->esys, t->tcti, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		t->esys = NULL;
		r = tss_fail("Esys_Initialize", rc);
		goto fail;
	}
	rc = Esys_Startup(t->esys, TPM2_SU_CLEAR);
	if (rc != TSS2_RC_SUCCESS && rc != TPM2_RC_INITIALIZE) {
		r = tss_fail("Startup", rc);
		r = SM_ERR_IO;
		goto fail;
	}
	if ((r = read_manufacturer(t)) != 0)
		goto fail;
	rc = Esys_TR_FromTPMPublic(t->esys, EK_RSA_HANDLE, ESYS_TR_NONE,
	    ESYS_TR_NONE, ESYS_TR_NONE, &t->ek);
	if (rc != TSS2_RC_SUCCESS) {
		t->ek = ESYS_TR_NONE;
		log_warn("attest: tpm: no RSA EK at 0x%08x", EK_RSA_HANDLE);
		r = SM_ERR_NOTFOUND;
		goto fail;
	}
	if ((r = read_ek_cert(t)) != 0 ||
	    (r = create_ak(t, o->ak_path, o->new_ak,
		 AK_ATTRS & ~(TPMA_OBJECT)o->ak_attrs_clear)) != 0)
		goto fail;
	*out = &t->base;
	return 0;
fail:
	tpm_free(&t->base);
	return r;
}

/* --- measured boot and IMA (attest/measure.h) ---------------------------- */

static const TPML_PCR_SELECTION meas_pcrs = {
    .count = 1,
    .pcrSelections = {{
	.hash = TPM2_ALG_SHA256,
	.sizeofSelect = 3,
	.pcrSelect = {0xff, 0x04, 0x00}, /* 0-7, 10 */
    }},
};

static const TPML_PCR_SELECTION pcr10 = {
    .count = 1,
    .pcrSelections = {{
	.hash = TPM2_ALG_SHA256,
	.sizeofSelect = 3,
	.pcrSelect = {0x00, 0x04, 0x00},
    }},
};

/*
 * Read a whole log, at most 'max' bytes (securityfs files report size 0, so
 * read to EOF). Missing or unreadable: empty (the host has no such log).
 * Over 'max': empty, with a warning (a partial log cannot replay).
 */
static void
read_log(const char *path, size_t max, struct buf *out)
{
	uint8_t chunk[16384];
	size_t n;
	FILE *f;

	buf_reset(out);
	if ((f = fopen(path, "rbe")) == NULL)
		return;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (out->len + n > max || buf_append(out, chunk, n) != 0) {
			log_warn("attest: %s is over %zu bytes: not sent", path,
			    max);
			buf_reset(out);
			break;
		}
	if (ferror(f))
		buf_reset(out);
	fclose(f);
}

/* PCR 0-7 then PCR 10 (PCR_Read returns at most 8 digests per call). */
static int
read_meas_pcrs(struct tpm_provider *t, uint8_t *pcrs, UINT32 *upd)
{
	const TPML_PCR_SELECTION *sels[2] = {&boot_pcrs, &pcr10};
	size_t at = 0, want[2] = {ATT_PCR_COUNT, 1};
	UINT32 u[2] = {0, 0};
	TSS2_RC rc;

	for (int k = 0; k < 2; k++) {
		TPML_PCR_SELECTION *sel = NULL;
		TPML_DIGEST *vals = NULL;
		int bad = 0;

		rc = Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE,
		    ESYS_TR_NONE, sels[k], &u[k], &sel, &vals);
		if (rc != TSS2_RC_SUCCESS)
			return tss_fail("PCR_Read", rc);
		if (vals->count != want[k])
			bad = 1;
		for (size_t i = 0; !bad && i < want[k]; i++) {
			if (vals->digests[i].size != ATT_PCR_LEN)
				bad = 1;
			else
				memcpy(pcrs + (at + i) * ATT_PCR_LEN,
				    vals->digests[i].buffer, ATT_PCR_LEN);
		}
		Esys_Free(sel);
		Esys_Free(vals);
		if (bad)
			return SM_ERR_INTERNAL;
		at += want[k];
	}
	if (u[0] != u[1])
		return SM_ERR_AGAIN; /* moved between the two reads */
	*upd = u[0];
	return 0;
}

/*
 * Quote PCRs 0-7,10 first, then read the logs: the kernel may append IMA
 * entries after the quote, and a verifier replays the prefix that matches.
 * PCR values are read before and after the quote; retried when they moved.
 */
static int
tpm_measure(struct att_provider *p, const uint8_t nonce[ATT_NONCE_LEN],
    const uint8_t blob_hash[ATT_HASH_LEN], uint32_t ima_from, struct buf *out)
{
	struct tpm_provider *t = (struct tpm_provider *)p;
	TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL};
	TPM2B_DATA qd = {.size = ATT_HASH_LEN};
	TPM2B_ATTEST *q = NULL;
	TPMT_SIGNATURE *s = NULL;
	uint8_t pcrs[ATT_MEAS_NPCR * ATT_PCR_LEN], sig[ATT_TPM_SIG_MAX];
	struct att_meas m;
	struct buf ev, ima;
	UINT32 u0 = 0, u1 = 1;
	size_t off = 0;
	TSS2_RC rc;
	int tries, r;

	memset(&m, 0, sizeof(m));
	buf_init(&ev, EVLOG_MAX);
	buf_init(&ima, IMA_LIST_MAX);
	if ((r = att_meas_qualifying(nonce, blob_hash, qd.buffer)) != 0)
		goto out;
	for (tries = 0; tries < 5 && u0 != u1; tries++) {
		Esys_Free(q);
		Esys_Free(s);
		q = NULL, s = NULL;
		if ((r = read_meas_pcrs(t, pcrs, &u0)) == SM_ERR_AGAIN)
			continue;
		if (r != 0)
			goto out;
		rc = Esys_Quote(t->esys, t->ak, ESYS_TR_PASSWORD, ESYS_TR_NONE,
		    ESYS_TR_NONE, &qd, &scheme, &meas_pcrs, &q, &s);
		if (rc != TSS2_RC_SUCCESS) {
			r = tss_fail("Quote", rc);
			goto out;
		}
		{
			uint8_t again[sizeof(pcrs)];

			if ((r = read_meas_pcrs(t, again, &u1)) == SM_ERR_AGAIN)
				u1 = u0 + 1;
			else if (r != 0)
				goto out;
		}
	}
	r = SM_ERR_AGAIN;
	if (u0 != u1 || q == NULL || q->size > ATT_TPM_ATTEST_MAX)
		goto out;
	rc = Tss2_MU_TPMT_SIGNATURE_Marshal(s, sig, sizeof(sig), &off);
	if (rc != TSS2_RC_SUCCESS) {
		r = tss_fail("marshal signature", rc);
		goto out;
	}
	read_log(
	    p->evlog_path ? p->evlog_path : ATT_EVLOG_PATH, EVLOG_MAX, &ev);
	read_log(p->ima_path ? p->ima_path : ATT_IMA_PATH, IMA_LIST_MAX, &ima);
	m.attest = q->attestationData;
	m.attest_len = q->size;
	m.sig = sig;
	m.sig_len = off;
	m.pcrs = pcrs;
	m.evlog = buf_data(&ev);
	m.evlog_len = ev.len;
	m.ima = buf_data(&ima);
	m.ima_len = ima.len;
	if (ima_from != 0 && ima.len > 0) {
		/* The verifier holds the first 'ima_from' entries: skip them
		 * (a shorter list, after a reboot, goes whole). */
		struct ima_entry e;
		size_t skip = 0;
		uint32_t k;

		for (k = 0; k < ima_from && skip < ima.len; k++)
			if (ima_next(m.ima, m.ima_len, &skip, &e) != 0)
				break;
		if (k == ima_from) {
			m.ima_from = ima_from;
			m.ima += skip;
			m.ima_len -= skip;
		}
	}
	r = att_meas_write(&m, out);
out:
	Esys_Free(q);
	Esys_Free(s);
	buf_clear(&ev);
	buf_clear(&ima);
	return r;
}
