/*
 * Where does model X go: the one routing interface of the gateway. Local
 * backends come first; the mesh adds remote hosts behind the same call.
 */
#ifndef SM_MESH_ROUTE_H
#define SM_MESH_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "backend/backend.h"
#include "core/err.h"

#define ROUTE_MAX_LOCAL 64
#define ROUTE_MAX_TARGETS 16

enum route_kind { ROUTE_LOCAL, ROUTE_REMOTE };

struct route_target {
	enum route_kind kind;
	struct backend *backend; /* ROUTE_LOCAL */
	const void *peer;        /* ROUTE_REMOTE: owned by the mesh */
};

struct router {
	struct backend *local[ROUTE_MAX_LOCAL];
	size_t nlocal;
};

void router_init(struct router *rt);
/* Add a local backend (not copied: it must outlive the router). */
int router_add_local(struct router *rt, struct backend *b) SM_MUST_CHECK;

/*
 * Fill 'out' with up to 'max' targets for 'model', best first. Returns the
 * number found (> 0), SM_ERR_NOTFOUND when no node ever served the model, or
 * SM_ERR_UNAVAIL when it is known but no host can take it now.
 */
int route_lookup(const struct router *rt, const char *model,
    struct route_target *out, size_t max);

/* Call 'fn' once per distinct routable model name. */
void route_each_model(const struct router *rt,
    void (*fn)(const char *model, void *arg), void *arg);

#endif
