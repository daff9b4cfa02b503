/* AK pin store: a small sorted-free array; linear search is fine at 4096. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attest/pins.h"
#include "core/util.h"

struct pin {
	uint8_t node[ATT_NODE_ID_LEN];
	uint8_t ak[ATT_HASH_LEN];
};

struct att_pins {
	struct pin *v;
	size_t n, cap;
};

int
att_pins_new(struct att_pins **out)
{
	if ((*out = calloc(1, sizeof(**out))) == NULL)
		return SM_ERR_NOMEM;
	return 0;
}

void
att_pins_free(struct att_pins *p)
{
	if (p == NULL)
		return;
	free(p->v);
	free(p);
}

static struct pin *
find(const struct att_pins *p, const uint8_t node[ATT_NODE_ID_LEN])
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (memcmp(p->v[i].node, node, ATT_NODE_ID_LEN) == 0)
			return &p->v[i];
	return NULL;
}

int
att_pins_lookup(const struct att_pins *p,
    const uint8_t node_id[ATT_NODE_ID_LEN], uint8_t ak[ATT_HASH_LEN])
{
	const struct pin *e = find(p, node_id);

	if (e == NULL) {
		memset(ak, 0, ATT_HASH_LEN);
		return SM_ERR_NOTFOUND;
	}
	memcpy(ak, e->ak, ATT_HASH_LEN);
	return 0;
}

int
att_pins_add(struct att_pins *p, const uint8_t node_id[ATT_NODE_ID_LEN],
    const uint8_t ak[ATT_HASH_LEN])
{
	struct pin *e = find(p, node_id), *nv;
	size_t cap;

	if (e != NULL)
		return memcmp(e->ak, ak, ATT_HASH_LEN) == 0 ? 0 : SM_ERR_PERM;
	if (p->n >= ATT_PINS_MAX)
		return SM_ERR_TOOBIG;
	if (p->n == p->cap) {
		cap = p->cap ? p->cap * 2 : 16;
		if ((nv = realloc(p->v, cap * sizeof(*nv))) == NULL)
			return SM_ERR_NOMEM;
		p->v = nv;
		p->cap = cap;
	}
	memcpy(p->v[p->n].node, node_id, ATT_NODE_ID_LEN);
	memcpy(p->v[p->n].ak, ak, ATT_HASH_LEN);
	p->n++;
	return 0;
}

int
att_pins_remove(struct att_pins *p, const uint8_t node_id[ATT_NODE_ID_LEN])
{
	struct pin *e = find(p, node_id);

	if (e == NULL)
		return SM_ERR_NOTFOUND;
	*e = p->v[--p->n];
	return 0;
}

size_t
att_pins_count(const struct att_pins *p)
{
	return p->n;
}

int
att_pins_load(struct att_pins *p, const char *path)
{
	char line[256], nh[2 * ATT_NODE_ID_LEN + 1], ah[2 * ATT_HASH_LEN + 1];
	uint8_t node[ATT_NODE_ID_LEN], ak[ATT_HASH_LEN];
	FILE *f;
	int r = 0;

	if ((f = fopen(path, "re")) == NULL)
		return errno == ENOENT ? 0 : SM_ERR_IO;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "%64s %64s", nh, ah) != 2 ||
		    strlen(nh) != 2 * ATT_NODE_ID_LEN ||
		    strlen(ah) != 2 * ATT_HASH_LEN ||
		    sm_unhex(node, sizeof(node), nh) != 0 ||
		    sm_unhex(ak, sizeof(ak), ah) != 0) {
			r = SM_ERR_INVAL;
			break;
		}
		if ((r = att_pins_add(p, node, ak)) != 0)
			break;
	}
	if (r == 0 && ferror(f))
		r = SM_ERR_IO;
	fclose(f);
	return r;
}

int
att_pins_save(const struct att_pins *p, const char *path)
{
	char tmp[4096], nh[2 * ATT_NODE_ID_LEN + 1], ah[2 * ATT_HASH_LEN + 1];
	FILE *f = NULL;
	size_t i;
	int fd, r = SM_ERR_IO;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return SM_ERR_INVAL;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) <
	    0)
		return SM_ERR_IO;
	if ((f = fdopen(fd, "w")) == NULL) {
		close(fd);
		goto out;
	}
	fputs(
	    "# sealmesh AK pins: node id, SHA-256 of the AK public area\n", f);
	for (i = 0; i < p->n; i++) {
		sm_hex(nh, p->v[i].node, ATT_NODE_ID_LEN);
		sm_hex(ah, p->v[i].ak, ATT_HASH_LEN);
		fprintf(f, "%s %s\n", nh, ah);
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		goto out;
	if (fclose(f) != 0) {
		f = NULL;
		goto out;
	}
	f = NULL;
	if (rename(tmp, path) != 0)
		goto out;
	r = 0;
out:
	if (f != NULL)
		fclose(f);
	if (r != 0)
		unlink(tmp);
	return r;
}
