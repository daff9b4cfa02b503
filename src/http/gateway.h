/*
 * The node's HTTP faces: the OpenAI-compatible API (127.0.0.1:9337 by
 * default) and the console (/api/status, /metrics). Requests are routed by
 * their "model" through the router and relayed as they stream.
 */
#ifndef SM_HTTP_GATEWAY_H
#define SM_HTTP_GATEWAY_H

#include <stdbool.h>
#include <stdint.h>

#include <cJSON.h>
#include <uv.h>

#include "http/access.h"
#include "http/apikey.h"
#include "http/metrics.h"
#include "http/oai.h"
#include "http/upstream.h"
#include "http/server.h"
#include "mesh/route.h"

struct gateway_opts {
	const char *listen_host; /* "127.0.0.1" unless --listen-all */
	const char *console_host; /* NULL: 127.0.0.1 (--console-listen-all) */
	int api_port; /* 0: ephemeral */
	int console_port; /* 0: ephemeral, -1: none */
	size_t max_body;
	uint64_t connect_timeout_ms;
	uint64_t backend_timeout_ms; /* request sent → response head */
	const char *node_id;
	const char *role; /* "host", "client" */
};

/*
 * The mesh's side of a remote attempt: start carrying 'req' to host t->peer.
 * On 0, *out is the upstream and 'cbs' get its events; on failure nothing is
 * called back and the gateway tries the next target.
 */
struct gateway_remote {
	int (*start)(void *arg, const struct route_target *t,
	    const struct hreq *req, const struct oai_peek *pk,
	    const struct upstream_cbs *cbs, void *user, struct upstream **out);
	void *arg;
};

struct gateway {
	uv_loop_t *loop;
	struct gateway_opts opts;
	struct router *router;
	struct hsrv api;
	struct hsrv console;
	struct hsrv tunnel; /* requests arriving through the mesh */
	bool console_open;
	/* Host/Origin allowlists for the API and the console (see access.h);
	 * the node's own addresses are added when a face listens on all. */
	struct access_policy access;
	/* API keys (--api-key-file); NULL: no key needed. Owned. */
	struct apikeys *keys;
	struct gateway_remote remote;
	struct metrics metrics;
	uint64_t start_ms;
	/* Adds mesh-specific fields (peers, token, posture) to /api/status. */
	void (*status_hook)(void *arg, cJSON *status);
	/* Appends mesh metrics to /metrics. */
	int (*metrics_hook)(void *arg, struct buf *out);
	/* POST /api/attest/challenge?peer=ID: challenge a peer now. Returns
	 * 0, SM_ERR_NOTFOUND (no such peer) or SM_ERR_UNAVAIL. */
	int (*challenge_hook)(void *arg, const char *peer_hex);
	void *status_arg;
};

/*
 * Open both listeners. 'access' (NULL: loopback only) is copied; 'keys'
 * (NULL: none) is taken over, also on failure. Every request on the API and
 * the console passes the gate before it is routed: Host, Origin (and CORS
 * preflight), then the API key (all but GET /health, and the console's
 * GET /). On failure nothing stays open.
 */
int gateway_open(struct gateway *gw, uv_loop_t *loop, struct router *rt,
    const struct gateway_opts *opts, const struct access_policy *access,
    struct apikeys *keys) SM_MUST_CHECK;
/* Replace the key set (SIGHUP); the old one is wiped and freed. */
void gateway_set_keys(struct gateway *gw, struct apikeys *keys);
/* Add this host's interface addresses to the Host allowlist (for a face
 * listening on all addresses). Returns how many were added. */
size_t gateway_add_own_addrs(struct gateway *gw);
/* Stop listening and drop every connection (in-flight requests cancelled);
 * the API keys are wiped. */
void gateway_close(struct gateway *gw);
/* /api/status body as a cJSON object (caller deletes). */
cJSON *gateway_status_json(struct gateway *gw);

#endif
