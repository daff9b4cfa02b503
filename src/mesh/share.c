#include <stdlib.h>
#include <string.h>

#include "mesh/share.h"

void
share_init(struct share *s, uint64_t member_max, uint64_t total_max)
{
	memset(s, 0, sizeof(*s));
	s->member_max = member_max;
	s->total_max = total_max;
}

void
share_clear(struct share *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
	s->total = 0;
}

static struct share_ent *
find(const struct share *s, const uint8_t id[ID_PK_LEN])
{
	for (size_t i = 0; i < s->n; i++)
		if (memcmp(s->v[i].id, id, ID_PK_LEN) == 0)
			return &s->v[i];
	return NULL;
}

uint64_t
share_used(const struct share *s, const uint8_t id[ID_PK_LEN])
{
	const struct share_ent *e = find(s, id);

	return e != NULL ? e->used : 0;
}

int
share_take(struct share *s, const uint8_t id[ID_PK_LEN], uint64_t amount)
{
	struct share_ent *e = find(s, id), *v;
	uint64_t held = e != NULL ? e->used : 0;
	int r;

	if (amount > s->member_max || held > s->member_max - amount) {
		r = SM_ERR_UNAVAIL;
		goto out;
	}
	if (amount > s->total_max || s->total > s->total_max - amount) {
		r = SM_ERR_TOOBIG;
		goto out;
	}
	if (e == NULL) {
		r = SM_ERR_NOMEM;
		if (s->n >= SHARE_MAX_MEMBERS)
			goto out;
		if (s->n == s->cap) {
			size_t cap = s->cap == 0 ? 8 : s->cap * 2;

			if ((v = realloc(s->v, cap * sizeof(*v))) == NULL)
				goto out;
			s->v = v;
			s->cap = cap;
		}
		e = &s->v[s->n++];
		memcpy(e->id, id, ID_PK_LEN);
		e->used = 0;
	}
	e->used += amount;
	s->total += amount;
	r = 0;
out:
	if (r != 0)
		s->refused++;
	return r;
}

void
share_give(struct share *s, const uint8_t id[ID_PK_LEN], uint64_t amount)
{
	struct share_ent *e = find(s, id);

	if (e == NULL)
		return;
	if (amount > e->used)
		amount = e->used;
	e->used -= amount;
	s->total -= amount;
	if (e->used == 0)
		*e = s->v[--s->n];
}
