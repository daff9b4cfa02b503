#include <string.h>

#include "mesh/route.h"

void
router_init(struct router *rt)
{
	memset(rt, 0, sizeof(*rt));
}

int
router_add_local(struct router *rt, struct backend *b)
{
	for (size_t i = 0; i < rt->nlocal; i++)
		if (strcmp(rt->local[i]->name, b->name) == 0)
			return SM_ERR_INVAL;
	if (rt->nlocal >= ROUTE_MAX_LOCAL)
		return SM_ERR_TOOBIG;
	rt->local[rt->nlocal++] = b;
	return 0;
}

static int
lookup(const struct router *rt, const char *model, struct route_target *out,
    size_t max, bool remote)
{
	size_t n = 0;
	bool known = false;

	for (size_t i = 0; i < rt->nlocal && n < max; i++) {
		struct backend *b = rt->local[i];

		if (strcmp(b->name, model) != 0)
			continue;
		known = true;
		if (!b->up)
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		out[n].kind = ROUTE_LOCAL;
		out[n].backend = b;
		n++;
	}
	if (remote && rt->remote.lookup != NULL && n < max) {
		bool rknown = false;

		n += rt->remote.lookup(
		    rt->remote.arg, model, out + n, max - n, &rknown);
		known = known || rknown;
	}
	if (n > 0)
		return (int)n;
	return known ? SM_ERR_UNAVAIL : SM_ERR_NOTFOUND;
}

int
route_lookup(const struct router *rt, const char *model,
    struct route_target *out, size_t max)
{
	return lookup(rt, model, out, max, true);
}

int
route_lookup_local(const struct router *rt, const char *model,
    struct route_target *out, size_t max)
{
	return lookup(rt, model, out, max, false);
}

void
route_each_model(const struct router *rt,
    void (*fn)(const char *model, void *arg), void *arg)
{
	for (size_t i = 0; i < rt->nlocal; i++)
		fn(rt->local[i]->name, arg);
	if (rt->remote.each_model != NULL)
		rt->remote.each_model(rt->remote.arg, fn, arg);
}
