/*
 * Where does model X go: the one routing interface of the gateway. Local
 * backends come first; the mesh adds remote hosts behind the same call.
 */
#ifndef SM_MESH_ROUTE_H
#define SM_MESH_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "core/err.h"

#define ROUTE_MAX_LOCAL 64
#define ROUTE_MAX_TARGETS 16

enum route_kind { ROUTE_LOCAL, ROUTE_REMOTE };

struct route_target {
	enum route_kind kind;
	struct backend *backend; /* ROUTE_LOCAL */
	uint8_t peer[32]; /* ROUTE_REMOTE: the host's node id */
};

/* What the mesh adds: remote hosts of a model, and remote model names. */
struct route_remote {
	/* Append up to 'max' remote targets; return how many. Sets *known when
	 * some node ever served the model. */
	size_t (*lookup)(void *arg, const char *model, struct route_target *out,
	    size_t max, bool *known);
	void (*each_model)(
	    void *arg, void (*fn)(const char *model, void *a), void *a);
	/* Why the last lookup found no eligible remote host (or NULL). */
	const char *(*why)(void *arg);
	void *arg;
};

struct router {
	struct backend *local[ROUTE_MAX_LOCAL];
	size_t nlocal;
	struct route_remote remote; /* lookup NULL: no mesh */
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
/* The same, local backends only: a host answering a tunneled request never
 * routes it onward. */
int route_lookup_local(const struct router *rt, const char *model,
    struct route_target *out, size_t max);

/* Call 'fn' once per distinct routable model name. */
void route_each_model(const struct router *rt,
    void (*fn)(const char *model, void *arg), void *arg);

#endif
