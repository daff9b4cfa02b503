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

#include "http/metrics.h"
#include "http/oai.h"
#include "http/upstream.h"
#include "http/server.h"
#include "mesh/route.h"

struct gateway_opts {
	const char *listen_host; /* "127.0.0.1" unless --listen-all */
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

/* Open both listeners. On failure nothing stays open. */
int gateway_open(struct gateway *gw, uv_loop_t *loop, struct router *rt,
    const struct gateway_opts *opts) SM_MUST_CHECK;
/* Stop listening and drop every connection (in-flight requests cancelled). */
void gateway_close(struct gateway *gw);
/* /api/status body as a cJSON object (caller deletes). */
cJSON *gateway_status_json(struct gateway *gw);

#endif
