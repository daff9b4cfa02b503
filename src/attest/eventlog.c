/* TCG PC Client crypto-agile event log: parse, replay, derive secure boot. */
#include <string.h>

#include "attest/blob.h"
#include "attest/eventlog.h"
#include "core/rd.h"

#define SPEC_ID_SIG "Spec ID Event03" /* 16 bytes with the NUL */
#define STARTUP_LOCALITY "StartupLocality" /* 16 bytes with the NUL */

/* EFI_GLOBAL_VARIABLE 8BE4DF61-93CA-11d2-AA0D-00E098032B8C, EFI_GUID layout */
static const uint8_t efi_global_guid[16] = {0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93,
    0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c};

static uint32_t
rd_le(struct rd *r, size_t n)
{
	const uint8_t *p = rd_take(r, n);
	uint32_t v = 0;

	for (size_t i = 0; p != NULL && i < n; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

struct algs {
	uint16_t id[EVLOG_ALGS_MAX];
	uint16_t size[EVLOG_ALGS_MAX];
	size_t n;
};

static int
parse_spec_id(struct rd *r, struct algs *a)
{
	const uint8_t *p, *sig;
	uint32_t size, n, i;
	struct rd ev;
	bool sha256 = false;

	if (rd_le(r, 4) != 0 || rd_le(r, 4) != EV_NO_ACTION)
		return SM_ERR_UNSUPP;
	(void)rd_take(r, 20); /* SHA-1 digest, zero */
	size = rd_le(r, 4);
	if (r->bad)
		return SM_ERR_INVAL;
	if (size > EVLOG_EVENT_MAX)
		return SM_ERR_TOOBIG;
	if ((p = rd_take(r, size)) == NULL)
		return SM_ERR_INVAL;
	ev = (struct rd){p, size, 0, false};
	if ((sig = rd_take(&ev, 16)) == NULL ||
	    memcmp(sig, SPEC_ID_SIG, 16) != 0)
		return SM_ERR_UNSUPP; /* a SHA-1-only (TPM 1.2 style) log */
	(void)rd_le(&ev, 4); /* platformClass */
	(void)rd_take(&ev, 4); /* minor, major, errata, uintnSize */
	n = rd_le(&ev, 4);
	if (ev.bad || n == 0 || n > EVLOG_ALGS_MAX)
		return SM_ERR_INVAL;
	for (i = 0; i < n; i++) {
		a->id[i] = (uint16_t)rd_le(&ev, 2);
		a->size[i] = (uint16_t)rd_le(&ev, 2);
		if (a->size[i] == 0 || a->size[i] > 64)
			return SM_ERR_INVAL;
		if (a->id[i] == TPM_ALG_SHA256) {
			if (a->size[i] != EVLOG_DIGEST_LEN)
				return SM_ERR_INVAL;
			sha256 = true;
		}
	}
	a->n = n;
	size = rd_le(&ev, 1);
	(void)rd_take(&ev, size); /* vendorInfo */
	if (ev.bad || ev.off != ev.len)
		return SM_ERR_INVAL;
	return sha256 ? 0 : SM_ERR_UNSUPP;
}

/* UEFI_VARIABLE_DATA naming EFI_GLOBAL_VARIABLE "SecureBoot": its value. */
static enum tri
secure_boot_value(const uint8_t *d, size_t len, bool *is_sb)
{
	static const char name[] = "SecureBoot";
	struct rd r = {d, len, 0, false};
	const uint8_t *guid, *un, *val;
	uint32_t nlo, nhi, vlo, vhi;
	size_t i, nlen = sizeof(name) - 1;

	*is_sb = false;
	guid = rd_take(&r, 16);
	nlo = rd_le(&r, 4);
	nhi = rd_le(&r, 4);
	vlo = rd_le(&r, 4);
	vhi = rd_le(&r, 4);
	if (r.bad || guid == NULL || memcmp(guid, efi_global_guid, 16) != 0 ||
	    nhi != 0 || vhi != 0 || nlo != nlen)
		return TRI_UNKNOWN;
	if ((un = rd_take(&r, 2 * nlen)) == NULL)
		return TRI_UNKNOWN;
	for (i = 0; i < nlen; i++)
		if (un[2 * i] != (uint8_t)name[i] || un[2 * i + 1] != 0)
			return TRI_UNKNOWN;
	*is_sb = true;
	if (vlo != 1 || (val = rd_take(&r, 1)) == NULL || r.off != len)
		return TRI_FALSE; /* malformed value: not enabled */
	return val[0] == 1 ? TRI_TRUE : TRI_FALSE;
}

static int
extend(uint8_t pcr[EVLOG_DIGEST_LEN], const uint8_t d[EVLOG_DIGEST_LEN])
{
	uint8_t cat[2 * EVLOG_DIGEST_LEN];

	memcpy(cat, pcr, EVLOG_DIGEST_LEN);
	memcpy(cat + EVLOG_DIGEST_LEN, d, EVLOG_DIGEST_LEN);
	return att_sha256(cat, sizeof(cat), pcr);
}

int
evlog_replay(const uint8_t *in, size_t len, struct evlog_info *out)
{
	struct rd r = {in, len, 0, false};
	struct evlog_info e;
	struct algs a;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&e, 0, sizeof(e));
	memset(&a, 0, sizeof(a));
	if (len > EVLOG_MAX)
		return SM_ERR_TOOBIG;
	if ((rc = parse_spec_id(&r, &a)) != 0)
		return rc;
	while (r.off < len) {
		const uint8_t *sha256 = NULL, *data, *dg;
		uint32_t pcr, type, count, size, i, alg;
		size_t j;

		if (e.nevents == EVLOG_EVENTS_MAX)
			return SM_ERR_TOOBIG;
		pcr = rd_le(&r, 4);
		type = rd_le(&r, 4);
		count = rd_le(&r, 4);
		if (r.bad || pcr >= EVLOG_PCRS || count == 0 || count > a.n)
			return SM_ERR_INVAL;
		for (i = 0; i < count; i++) {
			alg = rd_le(&r, 2);
			for (j = 0; j < a.n && a.id[j] != alg; j++)
				;
			if (j == a.n)
				return SM_ERR_INVAL; /* size unknown: stop */
			if ((dg = rd_take(&r, a.size[j])) == NULL)
				return SM_ERR_INVAL;
			if (alg == TPM_ALG_SHA256) {
				if (sha256 != NULL)
					return SM_ERR_INVAL; /* two */
				sha256 = dg;
			}
		}
		size = rd_le(&r, 4);
		if (r.bad)
			return SM_ERR_INVAL;
		if (size > EVLOG_EVENT_MAX)
			return SM_ERR_TOOBIG;
		if ((data = rd_take(&r, size)) == NULL)
			return SM_ERR_INVAL;
		e.nevents++;
		if (type == EV_NO_ACTION) {
			/* Not extended. StartupLocality sets PCR 0's start. */
			if (pcr == 0 && size == 17 &&
			    memcmp(data, STARTUP_LOCALITY, 16) == 0) {
				if (e.touched & 1u)
					return SM_ERR_INVAL; /* too late */
				e.startup_locality = data[16];
				memset(e.pcr[0], 0, EVLOG_DIGEST_LEN);
				e.pcr[0][EVLOG_DIGEST_LEN - 1] = data[16];
			}
			continue;
		}
		if (sha256 == NULL)
			return SM_ERR_INVAL; /* the SHA-256 bank skipped it */
		if (extend(e.pcr[pcr], sha256) != 0)
			return SM_ERR_INTERNAL;
		e.touched |= 1u << pcr;
		if (pcr == 7 && type == EV_EFI_VARIABLE_DRIVER_CONFIG) {
			uint8_t h[EVLOG_DIGEST_LEN];
			bool is_sb;
			enum tri v = secure_boot_value(data, size, &is_sb);

			if (!is_sb)
				continue;
			if (att_sha256(data, size, h) != 0)
				return SM_ERR_INTERNAL;
			if (memcmp(h, sha256, EVLOG_DIGEST_LEN) != 0)
				return SM_ERR_VERIFY;
			e.secure_boot = v;
		}
	}
	if (r.bad)
		return SM_ERR_INVAL;
	*out = e;
	return 0;
}
