/* Provider-independent parts: making the message, platform facts, choice. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "attest/provider.h"
#include "core/util.h"

void
att_provider_free(struct att_provider *p)
{
	if (p != NULL)
		p->ops->free(p);
}

int
att_attest(struct att_provider *p, const struct att_blob *in, struct buf *out,
    uint8_t blob_hash[ATT_HASH_LEN])
{
	struct att_blob b = *in;
	struct buf blob, ev;
	int r;

	buf_init(&blob, ATT_BLOB_MAX);
	buf_init(&ev, ATT_MSG_MAX);
	if (blob_hash != NULL)
		memset(blob_hash, 0, ATT_HASH_LEN);
	p->ops->describe(p, &b);
	if (b.timestamp == 0)
		b.timestamp = sm_wall_s();
	if ((r = att_blob_write(&b, &blob)) != 0 ||
	    (r = p->ops->evidence(p, buf_data(&blob), blob.len, &ev)) != 0 ||
	    (r = att_msg_write(
		 buf_data(&blob), blob.len, buf_data(&ev), ev.len, out)) != 0)
		goto out;
	if (blob_hash != NULL &&
	    (r = att_sha256(buf_data(&blob), blob.len, blob_hash)) != 0)
		goto out;
	r = 0;
out:
	buf_clear(&blob);
	buf_clear(&ev);
	return r;
}

void
att_platform_probe(struct att_blob *b)
{
	char line[512], *v;
	size_t n;
	long pages, psz;
	FILE *f;

	b->cpu_model[0] = '\0';
	if ((f = fopen("/proc/cpuinfo", "re")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL) {
			if (strncmp(line, "model name", 10) != 0 ||
			    (v = strchr(line, ':')) == NULL)
				continue;
			v++;
			while (*v == ' ' || *v == '\t')
				v++;
			n = strcspn(v, "\r\n");
			if (n > ATT_CPU_MODEL_MAX)
				n = ATT_CPU_MODEL_MAX;
			memcpy(b->cpu_model, v, n);
			b->cpu_model[n] = '\0';
			/* Keep only printable bytes: the wire refuses others.
			 */
			for (v = b->cpu_model; *v != '\0'; v++)
				if ((unsigned char)*v < 0x20 ||
				    (unsigned char)*v == 0x7f)
					*v = '?';
			break;
		}
		fclose(f);
	}
	pages = sysconf(_SC_PHYS_PAGES);
	psz = sysconf(_SC_PAGESIZE);
	b->mem_bytes =
	    pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
}

int
att_provider_choose(const char *flag, const char *tcti,
    enum att_provider_kind *out, const char **tcti_out)
{
	static const char dev[] = "device:/dev/tpmrm0";

	*out = ATT_PROV_NONE;
	*tcti_out = tcti != NULL ? tcti : dev;
	if (flag == NULL) {
		*out = tcti != NULL || access("/dev/tpmrm0", R_OK | W_OK) == 0
		    ? ATT_PROV_TPM
		    : ATT_PROV_SOFTWARE;
		return 0;
	}
	if (strcmp(flag, "none") == 0)
		return 0;
	if (strcmp(flag, "software") == 0) {
		*out = ATT_PROV_SOFTWARE;
		return 0;
	}
	if (strcmp(flag, "tpm") == 0) {
		*out = ATT_PROV_TPM;
		return 0;
	}
	return SM_ERR_INVAL;
}
