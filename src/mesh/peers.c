#include <stdlib.h>
#include <string.h>

#include "mesh/peers.h"

void
peers_init(struct peers *t, const uint8_t self[ID_PK_LEN],
    const uint8_t mesh_id[ANN_MESH_ID_LEN], uint64_t interval_ms)
{
	memset(t, 0, sizeof(*t));
	memcpy(t->self, self, ID_PK_LEN);
	memcpy(t->mesh_id, mesh_id, ANN_MESH_ID_LEN);
	t->interval_ms =
	    interval_ms != 0 ? interval_ms : PEERS_DEFAULT_INTERVAL_MS;
	t->refresh_ms = t->interval_ms;
	t->max = PEERS_MAX;
	t->skew_ms = PEERS_SKEW_DEFAULT_MS;
}

void
peers_set_refresh(struct peers *t, uint64_t refresh_ms)
{
	t->refresh_ms =
	    refresh_ms > t->interval_ms ? refresh_ms : t->interval_ms;
}

void
peers_set_max(struct peers *t, size_t max)
{
	t->max = max != 0 ? max : PEERS_MAX;
}

int
peers_fresh(const struct peers *t, uint64_t seq, uint64_t wall_ms)
{
	/* refresh_ms: a v2 signer re-signs once per refresh period (at least
	 * GOSSIP_ANN_MAX_AGE_MIN_MS must pass, see mesh/gossip.h); a v1
	 * table keeps refresh_ms == interval_ms. */
	uint64_t max_age = t->refresh_ms * PEERS_FRESH_INTERVALS + t->skew_ms;

	if (seq > wall_ms && seq - wall_ms > t->skew_ms)
		return SM_ERR_UNSUPP;
	if (wall_ms > seq && wall_ms - seq > max_age)
		return SM_ERR_STALE;
	return 0;
}

static void
peer_free(struct peer *p)
{
	if (p == NULL)
		return;
	announce_free(&p->ann);
	free(p);
}

void
peers_clear(struct peers *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		peer_free(t->v[i]);
	free(t->v);
	t->v = NULL;
	t->n = t->cap = 0;
}

static struct peer *
lookup(const struct peers *t, const uint8_t id[ID_PK_LEN], size_t *idx)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		if (memcmp(t->v[i]->ann.id, id, ID_PK_LEN) == 0) {
			if (idx != NULL)
				*idx = i;
			return t->v[i];
		}
	}
	return NULL;
}

struct peer *
peers_find(const struct peers *t, const uint8_t id[ID_PK_LEN])
{
	struct peer *p = lookup(t, id, NULL);

	return p != NULL && p->state != PEER_GONE ? p : NULL;
}

/* Take over *a into p->ann and set the state it implies. */
static void
adopt(struct peer *p, struct announce *a, uint64_t now_ms)
{
	announce_free(&p->ann);
	p->ann = *a;
	memset(a, 0, sizeof(*a));
	p->state = p->ann.leaving ? PEER_GONE : PEER_ALIVE;
	p->last_heard_ms = now_ms;
}

int
peers_merge(struct peers *t, struct announce *a, uint64_t now_ms,
    uint64_t wall_ms, enum peer_change *change)
{
	struct peer *p, **v;
	bool was_gone;
	int r;

	if (change != NULL)
		*change = PEER_CHANGE_NONE;
	if (memcmp(a->id, t->self, ID_PK_LEN) == 0 ||
	    memcmp(a->mesh_id, t->mesh_id, ANN_MESH_ID_LEN) != 0)
		return SM_ERR_PERM;
	/* Before anything else: held or not, an old announcement is refused. */
	if ((r = peers_fresh(t, a->seq, wall_ms)) != 0) {
		if (r == SM_ERR_STALE)
			t->refused_old++;
		else
			t->refused_future++;
		return SM_ERR_REPLAY;
	}
	if ((p = lookup(t, a->id, NULL)) != NULL) {
		if (a->seq <= p->ann.seq)
			return SM_ERR_STALE;
		was_gone = p->state == PEER_GONE;
		adopt(p, a, now_ms);
		if (change == NULL)
			return 0;
		if (p->state == PEER_GONE)
			*change = PEER_CHANGE_LEFT;
		else
			*change =
			    was_gone ? PEER_CHANGE_NEW : PEER_CHANGE_UPDATED;
		return 0;
	}
	if (t->n >= t->max)
		return SM_ERR_TOOBIG;
	if (t->n == t->cap) {
		size_t cap = t->cap == 0 ? 16 : t->cap * 2;

		if (cap > t->max)
			cap = t->max;
		if ((v = realloc(t->v, cap * sizeof(*v))) == NULL)
			return SM_ERR_NOMEM;
		t->v = v;
		t->cap = cap;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return SM_ERR_NOMEM;
	p->rtt_ms = -1;
	p->link = PEER_LINK_NONE;
	p->first_heard_ms = now_ms;
	adopt(p, a, now_ms);
	t->v[t->n++] = p;
	if (change != NULL)
		*change =
		    p->state == PEER_GONE ? PEER_CHANGE_LEFT : PEER_CHANGE_NEW;
	return 0;
}

int
peers_touch(struct peers *t, const uint8_t id[ID_PK_LEN], uint64_t now_ms)
{
	struct peer *p = peers_find(t, id);

	if (p == NULL)
		return SM_ERR_NOTFOUND;
	p->last_heard_ms = now_ms;
	p->state = PEER_ALIVE;
	return 0;
}

int
peers_remove(struct peers *t, const uint8_t id[ID_PK_LEN])
{
	struct peer *p = peers_find(t, id);

	if (p == NULL)
		return SM_ERR_NOTFOUND;
	p->state = PEER_GONE;
	p->link = PEER_LINK_NONE;
	/* last_heard_ms stays: the tombstone is pruned on the usual clock. */
	return 0;
}

size_t
peers_tick(struct peers *t, uint64_t now_ms)
{
	size_t i = 0, pruned = 0;

	while (i < t->n) {
		struct peer *p = t->v[i];
		uint64_t age =
		    now_ms > p->last_heard_ms ? now_ms - p->last_heard_ms : 0;
		/* Linked peers are touched every interval; the others re-sign
		 * once per refresh period at the latest. */
		uint64_t period = p->link == PEER_LINK_DIRECT ? t->interval_ms
							      : t->refresh_ms;
		uint64_t stale = period * PEERS_STALE_INTERVALS;
		uint64_t prune = period * PEERS_PRUNE_INTERVALS;

		if (age >= prune) {
			peer_free(p);
			t->v[i] = t->v[--t->n];
			pruned++;
			continue;
		}
		if (p->state == PEER_ALIVE && age >= stale)
			p->state = PEER_STALE;
		i++;
	}
	return pruned;
}

static int
by_id(const void *x, const void *y)
{
	const struct peer *a = *(struct peer *const *)x;
	const struct peer *b = *(struct peer *const *)y;

	return memcmp(a->ann.id, b->ann.id, ID_PK_LEN);
}

size_t
peers_hosts_for_model(
    const struct peers *t, const char *model, struct peer **out, size_t max)
{
	struct peer **c;
	uint64_t h = 0;
	size_t n = 0, i, rot;

	if (t->n == 0 || (c = malloc(t->n * sizeof(*c))) == NULL)
		return 0;
	for (i = 0; i < t->n; i++) {
		struct peer *p = t->v[i];

		if (p->state == PEER_ALIVE && p->ann.role == ANN_ROLE_HOST &&
		    !(p->denied & PEER_DENY_HOST) &&
		    announce_routes_model(&p->ann, model))
			c[n++] = p;
	}
	if (n == 0) {
		free(c);
		return 0;
	}
	qsort(c, n, sizeof(c[0]), by_id);
	/* mesh-llm's spread: rotate left by (fold of our id) mod n */
	for (i = 0; i < ID_PK_LEN; i++)
		h = h * 31 + t->self[i];
	rot = (size_t)(h % n);
	for (i = 0; i < n && i < max; i++)
		out[i] = c[(i + rot) % n];
	free(c);
	return i;
}

size_t
peers_collect(
    const struct peers *t, const uint8_t **items, size_t *lens, size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < t->n && n < max; i++) {
		const struct peer *p = t->v[i];

		if (p->state == PEER_ALIVE ||
		    (p->state == PEER_GONE && p->ann.leaving)) {
			items[n] = p->ann.wire;
			lens[n] = p->ann.wire_len;
			n++;
		}
	}
	return n;
}

size_t
peers_relays_for(const struct peers *t, const uint8_t target[ID_PK_LEN],
    struct peer **out, size_t max)
{
	size_t i, j, n = 0;

	for (i = 0; i < t->n && n < max; i++) {
		struct peer *p = t->v[i];

		if (p->state != PEER_ALIVE || p->link != PEER_LINK_DIRECT ||
		    !p->ann.relay_allowed || (p->denied & PEER_DENY_RELAY))
			continue;
		for (j = 0; j < p->ann.n_linked; j++) {
			if (memcmp(p->ann.linked[j], target, ID_PK_LEN) == 0) {
				out[n++] = p;
				break;
			}
		}
	}
	return n;
}

const char *
peers_state_name(enum peer_state s)
{
	switch (s) {
	case PEER_ALIVE:
		return "alive";
	case PEER_STALE:
		return "stale";
	case PEER_GONE:
		return "gone";
	}
	return "unknown";
}
