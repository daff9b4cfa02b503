/* AK pin store: a small sorted-free array; linear search is fine at 4096. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "attest/pins.h"
#include "core/util.h"

struct pin {
	uint8_t node[ATT_NODE_ID_LEN];
	uint8_t ak[ATT_HASH_LEN];
	uint8_t ek[ATT_HASH_LEN];
	bool has_ek;
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
att_pins_owner(const struct att_pins *p, const uint8_t ak[ATT_HASH_LEN],
    const uint8_t ek[ATT_HASH_LEN], uint8_t node_id[ATT_NODE_ID_LEN])
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		if (ak != NULL && memcmp(p->v[i].ak, ak, ATT_HASH_LEN) == 0) {
			memcpy(node_id, p->v[i].node, ATT_NODE_ID_LEN);
			return ATT_PIN_AK;
		}
		if (ek != NULL && p->v[i].has_ek &&
		    memcmp(p->v[i].ek, ek, ATT_HASH_LEN) == 0) {
			memcpy(node_id, p->v[i].node, ATT_NODE_ID_LEN);
			return ATT_PIN_EK;
		}
	}
	memset(node_id, 0, ATT_NODE_ID_LEN);
	return 0;
}

int
att_pins_add(struct att_pins *p, const uint8_t node_id[ATT_NODE_ID_LEN],
    const uint8_t ak[ATT_HASH_LEN])
{
	return att_pins_add_ek(p, node_id, ak, NULL);
}

int
att_pins_add_ek(struct att_pins *p, const uint8_t node_id[ATT_NODE_ID_LEN],
    const uint8_t ak[ATT_HASH_LEN], const uint8_t ek[ATT_HASH_LEN])
{
	struct pin *e = find(p, node_id), *nv;
	uint8_t other[ATT_NODE_ID_LEN];
	size_t cap;

	if (e != NULL) {
		if (memcmp(e->ak, ak, ATT_HASH_LEN) != 0 ||
		    (ek != NULL && e->has_ek &&
			memcmp(e->ek, ek, ATT_HASH_LEN) != 0))
			return SM_ERR_PERM;
		if (ek != NULL && !e->has_ek) {
			/* An old two-column pin learns its EK, if free. */
			if (att_pins_owner(p, NULL, ek, other) != 0)
				return SM_ERR_PERM;
			memcpy(e->ek, ek, ATT_HASH_LEN);
			e->has_ek = true;
		}
		return 0;
	}
	/* One AK, one EK, one node id. */
	if (att_pins_owner(p, ak, ek, other) != 0)
		return SM_ERR_PERM;
	if (p->n >= ATT_PINS_MAX)
		return SM_ERR_TOOBIG;
	if (p->n == p->cap) {
		cap = p->cap ? p->cap * 2 : 16;
		if ((nv = realloc(p->v, cap * sizeof(*nv))) == NULL)
			return SM_ERR_NOMEM;
		p->v = nv;
		p->cap = cap;
	}
	memset(&p->v[p->n], 0, sizeof(p->v[p->n]));
	memcpy(p->v[p->n].node, node_id, ATT_NODE_ID_LEN);
	memcpy(p->v[p->n].ak, ak, ATT_HASH_LEN);
	if (ek != NULL) {
		memcpy(p->v[p->n].ek, ek, ATT_HASH_LEN);
		p->v[p->n].has_ek = true;
	}
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
	char eh[2 * ATT_HASH_LEN + 1];
	uint8_t node[ATT_NODE_ID_LEN], ak[ATT_HASH_LEN], ek[ATT_HASH_LEN];
	FILE *f;
	int r = 0, nf;

	if ((f = fopen(path, "re")) == NULL)
		return errno == ENOENT ? 0 : SM_ERR_IO;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		nf = sscanf(line, "%64s %64s %64s", nh, ah, eh);
		if (nf < 2 || strlen(nh) != 2 * ATT_NODE_ID_LEN ||
		    strlen(ah) != 2 * ATT_HASH_LEN ||
		    sm_unhex(node, sizeof(node), nh) != 0 ||
		    sm_unhex(ak, sizeof(ak), ah) != 0 ||
		    (nf == 3 &&
			(strlen(eh) != 2 * ATT_HASH_LEN ||
			    sm_unhex(ek, sizeof(ek), eh) != 0))) {
			r = SM_ERR_INVAL;
			break;
		}
		if ((r = att_pins_add_ek(p, node, ak, nf == 3 ? ek : NULL)) !=
		    0)
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
	char eh[2 * ATT_HASH_LEN + 1];
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
	fputs("# sealmesh AK pins: node id, SHA-256 of the AK public area, "
	      "SHA-256 of the EK's SubjectPublicKeyInfo (DER)\n",
	    f);
	for (i = 0; i < p->n; i++) {
		sm_hex(nh, p->v[i].node, ATT_NODE_ID_LEN);
		sm_hex(ah, p->v[i].ak, ATT_HASH_LEN);
		if (p->v[i].has_ek) {
			sm_hex(eh, p->v[i].ek, ATT_HASH_LEN);
			fprintf(f, "%s %s %s\n", nh, ah, eh);
		} else
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

int
att_pins_lock(const char *path)
{
	char lp[4096];
	int fd;

	if (snprintf(lp, sizeof(lp), "%s.lock", path) >= (int)sizeof(lp))
		return SM_ERR_INVAL;
	if ((fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return SM_ERR_IO;
	if (flock(fd, LOCK_EX) != 0) {
		close(fd);
		return SM_ERR_IO;
	}
	return fd;
}

void
att_pins_unlock(int fd)
{
	if (fd >= 0) {
		(void)flock(fd, LOCK_UN);
		close(fd);
	}
}
