/* IMA measurement list (ima-ng, ima-sig): parse, replay PCR 10, allowlist. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/blob.h"
#include "attest/ima.h"
#include "core/rd.h"
#include "core/util.h"

#define IMA_ALLOW_MAX 65536

static uint32_t
rd_le32(struct rd *r)
{
	const uint8_t *p = rd_take(r, 4);

	return p == NULL ? 0
			 : (uint32_t)p[0] | (uint32_t)p[1] << 8 |
		(uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One template field: u32 length, bytes. */
static const uint8_t *
field(struct rd *r, size_t max, size_t *n)
{
	*n = rd_le32(r);
	if (*n > max) {
		r->bad = true;
		return NULL;
	}
	return rd_take(r, *n);
}

static int
parse_data(struct ima_entry *e, bool sig)
{
	struct rd r = {e->data, e->data_len, 0, false};
	const uint8_t *d, *n, *colon;
	size_t dl, nl, al;

	d = field(&r, IMA_DATA_MAX, &dl);
	n = field(&r, IMA_PATH_MAX + 1, &nl);
	if (sig) {
		size_t sl;

		(void)field(&r, IMA_DATA_MAX, &sl);
	}
	if (r.bad || r.off != r.len)
		return SM_ERR_INVAL;
	/* d-ng: "<algo>:\0" digest */
	if ((colon = memchr(d, ':', dl > 16 ? 16 : dl)) == NULL)
		return SM_ERR_INVAL;
	al = (size_t)(colon - d);
	if (al + 2 > dl || colon[1] != '\0')
		return SM_ERR_INVAL;
	e->file_digest = colon + 2;
	e->file_digest_len = dl - al - 2;
	e->file_sha256 = al == 6 && memcmp(d, "sha256", 6) == 0;
	if (e->file_sha256 && e->file_digest_len != IMA_DIGEST_LEN)
		return SM_ERR_INVAL;
	/* n-ng: a NUL-terminated path with no other NUL */
	if (nl < 1 || n[nl - 1] != '\0' || memchr(n, '\0', nl - 1) != NULL)
		return SM_ERR_INVAL;
	e->path = (const char *)n;
	e->path_len = nl - 1;
	return 0;
}

int
ima_next(const uint8_t *in, size_t len, size_t *off, struct ima_entry *e)
{
	static const uint8_t zero[IMA_SHA1_LEN];
	struct rd r = {in, len, *off, false};
	const uint8_t *name;
	size_t nl;
	bool sig;
	int rc;

	memset(e, 0, sizeof(*e));
	if (len > IMA_LIST_MAX)
		return SM_ERR_TOOBIG;
	e->pcr = rd_le32(&r);
	e->template_sha1 = rd_take(&r, IMA_SHA1_LEN);
	nl = rd_le32(&r);
	if (r.bad)
		return SM_ERR_INVAL;
	if (nl > 32)
		return SM_ERR_UNSUPP;
	if ((name = rd_take(&r, nl)) == NULL)
		return SM_ERR_INVAL;
	if (nl == 6 && memcmp(name, "ima-ng", 6) == 0)
		sig = false;
	else if (nl == 7 && memcmp(name, "ima-sig", 7) == 0)
		sig = true;
	else
		return SM_ERR_UNSUPP;
	e->data_len = rd_le32(&r);
	if (r.bad)
		return SM_ERR_INVAL;
	if (e->data_len > IMA_DATA_MAX)
		return SM_ERR_TOOBIG;
	if ((e->data = rd_take(&r, e->data_len)) == NULL)
		return SM_ERR_INVAL;
	if ((rc = parse_data(e, sig)) != 0)
		return rc;
	e->violation = memcmp(e->template_sha1, zero, IMA_SHA1_LEN) == 0;
	if (e->violation)
		memset(e->template_sha256, 0xff, IMA_DIGEST_LEN);
	else if (att_sha256(e->data, e->data_len, e->template_sha256) != 0)
		return SM_ERR_INTERNAL;
	*off = r.off;
	return 0;
}

void
ima_pcr_init(uint8_t pcr[IMA_DIGEST_LEN])
{
	memset(pcr, 0, IMA_DIGEST_LEN);
}

int
ima_pcr_extend(uint8_t pcr[IMA_DIGEST_LEN], const struct ima_entry *e)
{
	uint8_t cat[2 * IMA_DIGEST_LEN];

	memcpy(cat, pcr, IMA_DIGEST_LEN);
	memcpy(cat + IMA_DIGEST_LEN, e->template_sha256, IMA_DIGEST_LEN);
	return att_sha256(cat, sizeof(cat), pcr);
}

int
ima_replay(const uint8_t *in, size_t len, const uint8_t quoted[IMA_DIGEST_LEN],
    size_t *prefix, size_t *n, uint8_t final[IMA_DIGEST_LEN])
{
	return ima_replay_from(in, len, NULL, quoted, prefix, n, final);
}

int
ima_replay_from(const uint8_t *in, size_t len,
    const uint8_t start[IMA_DIGEST_LEN], const uint8_t quoted[IMA_DIGEST_LEN],
    size_t *prefix, size_t *n, uint8_t final[IMA_DIGEST_LEN])
{
	uint8_t pcr[IMA_DIGEST_LEN];
	struct ima_entry e;
	size_t off = 0, cnt = 0;
	int rc;

	*prefix = SIZE_MAX;
	*n = 0;
	if (len > IMA_LIST_MAX)
		return SM_ERR_TOOBIG;
	ima_pcr_init(pcr);
	if (start != NULL)
		memcpy(pcr, start, IMA_DIGEST_LEN);
	if (quoted != NULL && memcmp(pcr, quoted, IMA_DIGEST_LEN) == 0)
		*prefix = 0;
	while (off < len) {
		if (cnt == IMA_ENTRIES_MAX) {
			*prefix = SIZE_MAX;
			return SM_ERR_TOOBIG;
		}
		if ((rc = ima_next(in, len, &off, &e)) != 0) {
			*prefix = SIZE_MAX;
			return rc;
		}
		cnt++;
		if (e.pcr != IMA_PCR)
			continue;
		if ((rc = ima_pcr_extend(pcr, &e)) != 0) {
			*prefix = SIZE_MAX;
			return rc;
		}
		if (quoted != NULL && *prefix == SIZE_MAX &&
		    memcmp(pcr, quoted, IMA_DIGEST_LEN) == 0)
			*prefix = cnt;
	}
	*n = cnt;
	if (final != NULL)
		memcpy(final, pcr, IMA_DIGEST_LEN);
	return 0;
}

/* --- allowlist ----------------------------------------------------------- */

struct allow {
	uint8_t hash[IMA_DIGEST_LEN];
	char *path;
	size_t path_len;
};

struct ima_allowlist {
	struct allow *v;
	size_t n;
};

static int
allow_cmp(const void *a, const void *b)
{
	const struct allow *x = a, *y = b;
	size_t l = x->path_len < y->path_len ? x->path_len : y->path_len;
	int c = memcmp(x->hash, y->hash, IMA_DIGEST_LEN);

	if (c != 0)
		return c;
	if ((c = memcmp(x->path, y->path, l)) != 0)
		return c;
	return x->path_len < y->path_len ? -1 : x->path_len > y->path_len;
}

int
ima_allowlist_parse(
    const char *text, size_t len, struct ima_allowlist **out, size_t *bad_line)
{
	struct ima_allowlist *a;
	struct allow *nv;
	size_t off = 0, line = 0, cap = 0;
	char hex[2 * IMA_DIGEST_LEN + 1];
	int r = 0;

	*out = NULL;
	*bad_line = 0;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return SM_ERR_NOMEM;
	while (off < len && r == 0) {
		const char *l = text + off, *nl = memchr(l, '\n', len - off);
		size_t ll = nl ? (size_t)(nl - l) : len - off, i = 0, pl;

		off += ll + (nl != NULL);
		line++;
		while (i < ll && (l[i] == ' ' || l[i] == '\t'))
			i++;
		if (ll > 0 && l[ll - 1] == '\r')
			ll--;
		if (i == ll || l[i] == '#')
			continue;
		r = SM_ERR_INVAL;
		if (ll - i < 2 * IMA_DIGEST_LEN + 2)
			break;
		memcpy(hex, l + i, 2 * IMA_DIGEST_LEN);
		hex[2 * IMA_DIGEST_LEN] = '\0';
		i += 2 * IMA_DIGEST_LEN;
		if (l[i] != ' ' && l[i] != '\t')
			break;
		while (i < ll && (l[i] == ' ' || l[i] == '\t'))
			i++;
		pl = ll - i;
		if (pl == 0 || pl > IMA_PATH_MAX || l[i] != '/' ||
		    memchr(l + i, '\0', pl) != NULL)
			break;
		if (a->n == IMA_ALLOW_MAX) {
			r = SM_ERR_TOOBIG;
			break;
		}
		if (a->n == cap) {
			cap = cap ? 2 * cap : 64;
			if ((nv = realloc(a->v, cap * sizeof(*nv))) == NULL) {
				r = SM_ERR_NOMEM;
				break;
			}
			a->v = nv;
		}
		for (size_t k = 0; k < 2 * IMA_DIGEST_LEN; k++)
			if (hex[k] >= 'A' && hex[k] <= 'F')
				hex[k] = (char)(hex[k] - 'A' + 'a');
		if (sm_unhex(a->v[a->n].hash, IMA_DIGEST_LEN, hex) != 0)
			break;
		if ((a->v[a->n].path = malloc(pl + 1)) == NULL) {
			r = SM_ERR_NOMEM;
			break;
		}
		memcpy(a->v[a->n].path, l + i, pl);
		a->v[a->n].path[pl] = '\0';
		a->v[a->n].path_len = pl;
		a->n++;
		r = 0;
	}
	if (r != 0) {
		if (r == SM_ERR_INVAL)
			*bad_line = line;
		ima_allowlist_free(a);
		return r;
	}
	if (a->n > 1)
		qsort(a->v, a->n, sizeof(*a->v), allow_cmp);
	*out = a;
	return 0;
}

void
ima_allowlist_free(struct ima_allowlist *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i].path);
	free(a->v);
	free(a);
}

size_t
ima_allowlist_count(const struct ima_allowlist *a)
{
	return a == NULL ? 0 : a->n;
}

bool
ima_allowlist_ok(const struct ima_allowlist *a, const struct ima_entry *e)
{
	struct allow key;

	if (a == NULL || a->n == 0 || !e->file_sha256 || e->violation)
		return false;
	memcpy(key.hash, e->file_digest, IMA_DIGEST_LEN);
	key.path = (char *)e->path;
	key.path_len = e->path_len;
	return bsearch(&key, a->v, a->n, sizeof(*a->v), allow_cmp) != NULL;
}
