/* TPM quote and AK checks in software. */
#include <string.h>

#include <tss2/tss2_mu.h>

#include "attest/ec.h"
#include "attest/quote.h"

#define AK_REQUIRED                                                            \
	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |                      \
	    TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_RESTRICTED |         \
	    TPMA_OBJECT_SIGN_ENCRYPT)

static int
ak_parse(const uint8_t *pub, size_t pub_len, TPMT_PUBLIC *p)
{
	size_t off = 0;

	memset(p, 0, sizeof(*p));
	if (Tss2_MU_TPMT_PUBLIC_Unmarshal(pub, pub_len, &off, p) !=
		TSS2_RC_SUCCESS ||
	    off != pub_len)
		return SM_ERR_VERIFY;
	if (p->type != TPM2_ALG_ECC || p->nameAlg != TPM2_ALG_SHA256 ||
	    (p->objectAttributes & AK_REQUIRED) != AK_REQUIRED ||
	    (p->objectAttributes & TPMA_OBJECT_DECRYPT) != 0 ||
	    p->parameters.eccDetail.curveID != TPM2_ECC_NIST_P256 ||
	    p->parameters.eccDetail.scheme.scheme != TPM2_ALG_ECDSA ||
	    p->parameters.eccDetail.scheme.details.ecdsa.hashAlg !=
		TPM2_ALG_SHA256 ||
	    p->unique.ecc.x.size == 0 || p->unique.ecc.y.size == 0)
		return SM_ERR_VERIFY;
	return 0;
}

int
att_ak_check(const uint8_t *pub, size_t pub_len, uint8_t name[ATT_TPM_NAME_LEN])
{
	TPMT_PUBLIC p;
	int r;

	memset(name, 0, ATT_TPM_NAME_LEN);
	if ((r = ak_parse(pub, pub_len, &p)) != 0)
		return r;
	name[0] = TPM2_ALG_SHA256 >> 8;
	name[1] = TPM2_ALG_SHA256 & 0xff;
	return att_sha256(pub, pub_len, name + 2) == 0 ? 0 : SM_ERR_VERIFY;
}

int
att_quote_check(const uint8_t *pub, size_t pub_len, const uint8_t *attest,
    size_t attest_len, const uint8_t *sig, size_t sig_len,
    const uint8_t extra[ATT_HASH_LEN], uint8_t pcr_digest[ATT_HASH_LEN])
{
	static const uint8_t sel[3] = {0xff, 0x00, 0x00};
	TPMT_PUBLIC p;
	TPMT_SIGNATURE s;
	TPMS_ATTEST a;
	const TPMS_PCR_SELECTION *ps;
	size_t off = 0;
	int r;

	memset(pcr_digest, 0, ATT_HASH_LEN);
	if ((r = ak_parse(pub, pub_len, &p)) != 0)
		return r;
	memset(&s, 0, sizeof(s));
	if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(sig, sig_len, &off, &s) !=
		TSS2_RC_SUCCESS ||
	    off != sig_len || s.sigAlg != TPM2_ALG_ECDSA ||
	    s.signature.ecdsa.hash != TPM2_ALG_SHA256)
		return SM_ERR_VERIFY;
	if (att_ec_verify(p.unique.ecc.x.buffer, p.unique.ecc.x.size,
		p.unique.ecc.y.buffer, p.unique.ecc.y.size,
		s.signature.ecdsa.signatureR.buffer,
		s.signature.ecdsa.signatureR.size,
		s.signature.ecdsa.signatureS.buffer,
		s.signature.ecdsa.signatureS.size, attest, attest_len) != 0)
		return SM_ERR_VERIFY;
	off = 0;
	memset(&a, 0, sizeof(a));
	if (Tss2_MU_TPMS_ATTEST_Unmarshal(attest, attest_len, &off, &a) !=
		TSS2_RC_SUCCESS ||
	    off != attest_len || a.magic != TPM2_GENERATED_VALUE ||
	    a.type != TPM2_ST_ATTEST_QUOTE)
		return SM_ERR_VERIFY;
	if (a.extraData.size != ATT_HASH_LEN ||
	    memcmp(a.extraData.buffer, extra, ATT_HASH_LEN) != 0)
		return SM_ERR_PROTO;
	if (a.attested.quote.pcrSelect.count != 1)
		return SM_ERR_INVAL;
	ps = &a.attested.quote.pcrSelect.pcrSelections[0];
	if (ps->hash != TPM2_ALG_SHA256 || ps->sizeofSelect != sizeof(sel) ||
	    memcmp(ps->pcrSelect, sel, sizeof(sel)) != 0 ||
	    a.attested.quote.pcrDigest.size != ATT_HASH_LEN)
		return SM_ERR_INVAL;
	memcpy(pcr_digest, a.attested.quote.pcrDigest.buffer, ATT_HASH_LEN);
	return 0;
}
