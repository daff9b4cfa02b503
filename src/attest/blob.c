/*
 * Attestation blob and message encoding. Strict, canonical, capped: one
 * statement has exactly one encoding, so the signed bytes are the bytes.
 */
#include <string.h>

#include <openssl/evp.h>

#include "core/rd.h"
#include "attest/blob.h"

/* Big-endian writers and a bounds-checked reader. */

static int
put_u8(struct buf *b, unsigned v)
{
	uint8_t x = (uint8_t)v;

	return buf_append(b, &x, 1);
}

static int
put_u16(struct buf *b, size_t v)
{
	uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	return buf_append(b, x, 2);
}

static int
put_u32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16),
	    (uint8_t)(v >> 8), (uint8_t)v};

	return buf_append(b, x, 4);
}

static int
put_u64(struct buf *b, uint64_t v)
{
	int r;

	if ((r = put_u32(b, (uint32_t)(v >> 32))) != 0)
		return r;
	return put_u32(b, (uint32_t)v);
}

static bool
printable(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
			return false;
	return true;
}

void
att_blob_init(struct att_blob *b, const uint8_t node_id[ATT_NODE_ID_LEN],
    const struct infkey_pub *ik, const struct posture *p)
{
	memset(b, 0, sizeof(*b));
	memcpy(b->node_id, node_id, ATT_NODE_ID_LEN);
	b->infkey = *ik;
	b->posture = *p;
	b->binary_hash_known = p->binary_hash_known;
	if (p->binary_hash_known)
		memcpy(b->binary_hash, p->binary_hash, ATT_HASH_LEN);
}

int
att_blob_write(const struct att_blob *b, struct buf *out)
{
	static const uint8_t zero[ATT_HASH_LEN];
	struct buf pb;
	size_t cpu_len = strnlen(b->cpu_model, sizeof(b->cpu_model));
	int r;

	buf_init(&pb, POSTURE_WIRE_MAX);
	r = SM_ERR_INVAL;
	if (cpu_len > ATT_CPU_MODEL_MAX || !printable(b->cpu_model, cpu_len) ||
	    b->provider < ATT_PROV_SOFTWARE ||
	    b->provider > ATT_PROV_SECURE_ENCLAVE ||
	    b->level < ATT_LEVEL_SELF_SIGNED || b->level > ATT_LEVEL_TPM ||
	    b->binary_hash_known != b->posture.binary_hash_known ||
	    (b->binary_hash_known &&
		memcmp(b->binary_hash, b->posture.binary_hash, ATT_HASH_LEN) !=
		    0))
		goto out;
	if ((r = posture_write(&b->posture, &pb)) != 0)
		goto out;
	if ((r = buf_append(out, ATT_DOMAIN, ATT_DOMAIN_LEN)) != 0 ||
	    (r = buf_append(out, b->node_id, ATT_NODE_ID_LEN)) != 0 ||
	    (r = put_u32(out, b->infkey.epoch)) != 0 ||
	    (r = buf_append(out, b->infkey.pk, INFKEY_PK_LEN)) != 0 ||
	    (r = put_u8(out, b->provider)) != 0 ||
	    (r = put_u8(out, b->level)) != 0 ||
	    (r = put_u64(out, b->timestamp)) != 0 ||
	    (r = put_u8(out, b->binary_hash_known)) != 0 ||
	    (r = buf_append(out, b->binary_hash_known ? b->binary_hash : zero,
		 ATT_HASH_LEN)) != 0 ||
	    (r = put_u8(out, cpu_len)) != 0 ||
	    (r = buf_append(out, b->cpu_model, cpu_len)) != 0 ||
	    (r = put_u64(out, b->mem_bytes)) != 0 ||
	    (r = put_u32(out, b->tpm_manufacturer)) != 0 ||
	    (r = put_u16(out, pb.len)) != 0 ||
	    (r = buf_append(out, buf_data(&pb), pb.len)) != 0)
		goto out;
	r = 0;
out:
	buf_clear(&pb);
	return r;
}

int
att_blob_parse(const uint8_t *in, size_t len, struct att_blob *out)
{
	struct att_blob b;
	struct rd rd = {in, len, 0, false};
	const uint8_t *p;
	size_t n;
	unsigned v;
	int r = SM_ERR_INVAL;

	memset(out, 0, sizeof(*out));
	memset(&b, 0, sizeof(b));
	if (len > ATT_BLOB_MAX)
		return SM_ERR_TOOBIG;
	if ((p = rd_take(&rd, ATT_DOMAIN_LEN)) == NULL)
		goto out;
	if (memcmp(p, ATT_DOMAIN, ATT_DOMAIN_LEN) != 0) {
		r = SM_ERR_UNSUPP;
		goto out;
	}
	if ((p = rd_take(&rd, ATT_NODE_ID_LEN)) == NULL)
		goto out;
	memcpy(b.node_id, p, ATT_NODE_ID_LEN);
	b.infkey.epoch = (uint32_t)rd_be(&rd, 4);
	if ((p = rd_take(&rd, INFKEY_PK_LEN)) == NULL)
		goto out;
	memcpy(b.infkey.pk, p, INFKEY_PK_LEN);
	v = (unsigned)rd_be(&rd, 1);
	if (v < ATT_PROV_SOFTWARE || v > ATT_PROV_SECURE_ENCLAVE)
		goto out;
	b.provider = (enum att_provider_kind)v;
	v = (unsigned)rd_be(&rd, 1);
	if (v < ATT_LEVEL_SELF_SIGNED || v > ATT_LEVEL_TPM)
		goto out;
	b.level = (enum att_level)v;
	b.timestamp = rd_be(&rd, 8);
	v = (unsigned)rd_be(&rd, 1);
	if (v > 1 || (p = rd_take(&rd, ATT_HASH_LEN)) == NULL)
		goto out;
	b.binary_hash_known = v == 1;
	memcpy(b.binary_hash, p, ATT_HASH_LEN);
	if (!b.binary_hash_known) {
		/* One encoding: an unknown hash is all zero. */
		static const uint8_t zero[ATT_HASH_LEN];

		if (memcmp(p, zero, ATT_HASH_LEN) != 0)
			goto out;
	}
	n = (size_t)rd_be(&rd, 1);
	if (n > ATT_CPU_MODEL_MAX || (p = rd_take(&rd, n)) == NULL ||
	    !printable((const char *)p, n))
		goto out;
	memcpy(b.cpu_model, p, n);
	b.mem_bytes = rd_be(&rd, 8);
	b.tpm_manufacturer = (uint32_t)rd_be(&rd, 4);
	if ((p = rd_lv16(&rd, POSTURE_WIRE_MAX, &n)) == NULL)
		goto out;
	if ((r = posture_parse(p, n, &b.posture)) != 0)
		goto out;
	/*
	 * posture_parse skips tags from newer nodes (they count as unknown,
	 * so as false) and takes an explicit "unknown": the bytes are then
	 * not what posture_write would give. That is fine because the
	 * signature covers the bytes as received and nothing re-encodes them.
	 */
	r = SM_ERR_INVAL;
	if (rd.bad || rd.off != len)
		goto out;
	if (b.binary_hash_known != b.posture.binary_hash_known ||
	    (b.binary_hash_known &&
		memcmp(b.binary_hash, b.posture.binary_hash, ATT_HASH_LEN) !=
		    0))
		goto out;
	*out = b;
	r = 0;
out:
	return r;
}

int
att_sha256(const uint8_t *in, size_t len, uint8_t out[ATT_HASH_LEN])
{
	unsigned int n = 0;

	if (EVP_Digest(in, len, out, &n, EVP_sha256(), NULL) != 1 ||
	    n != ATT_HASH_LEN) {
		memset(out, 0, ATT_HASH_LEN);
		return SM_ERR_INTERNAL;
	}
	return 0;
}

int
att_msg_write(const uint8_t *blob, size_t blob_len, const uint8_t *evidence,
    size_t evidence_len, struct buf *out)
{
	int r;

	if (blob_len > ATT_BLOB_MAX || evidence_len > ATT_MSG_MAX ||
	    1 + 2 + blob_len + 2 + evidence_len > ATT_MSG_MAX)
		return SM_ERR_TOOBIG;
	if ((r = put_u8(out, ATT_MSG_FORMAT)) != 0 ||
	    (r = put_u16(out, blob_len)) != 0 ||
	    (r = buf_append(out, blob, blob_len)) != 0 ||
	    (r = put_u16(out, evidence_len)) != 0 ||
	    (r = buf_append(out, evidence, evidence_len)) != 0)
		return r;
	return 0;
}

int
att_tpm_evidence_write(const struct att_tpm_evidence *e, struct buf *out)
{
	size_t i;
	int r;

	if (e->ak_pub_len > ATT_TPM_PUB_MAX ||
	    e->attest_len > ATT_TPM_ATTEST_MAX ||
	    e->sig_len > ATT_TPM_SIG_MAX || e->ncerts < 1 ||
	    e->ncerts > ATT_CERTS_MAX)
		return SM_ERR_INVAL;
	for (i = 0; i < e->ncerts; i++)
		if (e->cert_lens[i] < 1 || e->cert_lens[i] > ATT_CERT_MAX)
			return SM_ERR_INVAL;
	if ((r = put_u16(out, e->ak_pub_len)) != 0 ||
	    (r = buf_append(out, e->ak_pub, e->ak_pub_len)) != 0 ||
	    (r = put_u16(out, e->attest_len)) != 0 ||
	    (r = buf_append(out, e->attest, e->attest_len)) != 0 ||
	    (r = put_u16(out, e->sig_len)) != 0 ||
	    (r = buf_append(out, e->sig, e->sig_len)) != 0 ||
	    (r = put_u8(out, ATT_PCR_COUNT)) != 0 ||
	    (r = buf_append(out, e->pcrs, ATT_PCR_COUNT * ATT_PCR_LEN)) != 0 ||
	    (r = put_u8(out, e->ncerts)) != 0)
		return r;
	for (i = 0; i < e->ncerts; i++)
		if ((r = put_u16(out, e->cert_lens[i])) != 0 ||
		    (r = buf_append(out, e->certs[i], e->cert_lens[i])) != 0)
			return r;
	return 0;
}

static int
parse_tpm_evidence(const uint8_t *in, size_t len, struct att_tpm_evidence *e)
{
	struct rd rd = {in, len, 0, false};
	size_t i, n;

	e->ak_pub = rd_lv16(&rd, ATT_TPM_PUB_MAX, &e->ak_pub_len);
	e->attest = rd_lv16(&rd, ATT_TPM_ATTEST_MAX, &e->attest_len);
	e->sig = rd_lv16(&rd, ATT_TPM_SIG_MAX, &e->sig_len);
	if (rd.bad || e->ak_pub_len == 0 || e->attest_len == 0 ||
	    e->sig_len == 0)
		return SM_ERR_INVAL;
	if (rd_be(&rd, 1) != ATT_PCR_COUNT)
		return SM_ERR_INVAL;
	e->pcrs = rd_take(&rd, ATT_PCR_COUNT * ATT_PCR_LEN);
	n = (size_t)rd_be(&rd, 1);
	if (rd.bad || n < 1 || n > ATT_CERTS_MAX)
		return SM_ERR_INVAL;
	for (i = 0; i < n; i++) {
		e->certs[i] = rd_lv16(&rd, ATT_CERT_MAX, &e->cert_lens[i]);
		if (rd.bad || e->cert_lens[i] == 0)
			return SM_ERR_INVAL;
	}
	e->ncerts = n;
	if (rd.off != len)
		return SM_ERR_INVAL;
	return 0;
}

int
att_msg_parse(const uint8_t *in, size_t len, struct att_msg *out)
{
	struct att_msg m;
	struct rd rd = {in, len, 0, false};
	int r = SM_ERR_INVAL;

	memset(out, 0, sizeof(*out));
	memset(&m, 0, sizeof(m));
	if (len > ATT_MSG_MAX)
		return SM_ERR_TOOBIG;
	if (len < 1)
		return SM_ERR_INVAL;
	if (rd_be(&rd, 1) != ATT_MSG_FORMAT)
		return SM_ERR_UNSUPP;
	m.blob = rd_lv16(&rd, ATT_BLOB_MAX, &m.blob_len);
	m.evidence = rd_lv16(&rd, ATT_MSG_MAX, &m.evidence_len);
	if (rd.bad || rd.off != len)
		return SM_ERR_INVAL;
	if ((r = att_blob_parse(m.blob, m.blob_len, &m.b)) != 0)
		return r;
	switch (m.b.provider) {
	case ATT_PROV_SOFTWARE:
		if (m.evidence_len != ATT_SW_EVIDENCE_LEN)
			return SM_ERR_INVAL;
		m.sw_pub = m.evidence;
		m.sw_sig = m.evidence + ATT_SW_PUB_LEN;
		break;
	case ATT_PROV_TPM:
		if ((r = parse_tpm_evidence(
			 m.evidence, m.evidence_len, &m.tpm)) != 0)
			return r;
		break;
	default:
		return SM_ERR_UNSUPP;
	}
	*out = m;
	return 0;
}

const char *
att_provider_str(enum att_provider_kind k)
{
	switch (k) {
	case ATT_PROV_NONE:
		return "none";
	case ATT_PROV_SOFTWARE:
		return "software";
	case ATT_PROV_TPM:
		return "tpm";
	case ATT_PROV_SECURE_ENCLAVE:
		return "secure_enclave";
	}
	return "?";
}

const char *
att_level_str(enum att_level l)
{
	switch (l) {
	case ATT_LEVEL_NONE:
		return "none";
	case ATT_LEVEL_SELF_SIGNED:
		return "self_signed";
	case ATT_LEVEL_TPM:
		return "tpm";
	}
	return "?";
}

int
att_level_parse(const char *s, enum att_level *out)
{
	*out = ATT_LEVEL_NONE;
	if (strcmp(s, "none") == 0)
		return 0;
	if (strcmp(s, "self_signed") == 0) {
		*out = ATT_LEVEL_SELF_SIGNED;
		return 0;
	}
	if (strcmp(s, "tpm") == 0) {
		*out = ATT_LEVEL_TPM;
		return 0;
	}
	return SM_ERR_INVAL;
}
