#include <ctype.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/util.h"
#include "harden/harden.h"
#include "http/gateway.h"
#include "http/oai.h"
#include "http/upstream.h"
#include "http/webui.h"

/* One proxied request: lives from the handler until the response ends. */
struct proxy {
	struct gateway *gw;
	struct hreq *req;
	struct upstream *up;
	struct oai_peek peek;
	struct route_target targets[ROUTE_MAX_TARGETS];
	int ntargets;
	int next;
	int last_err;
	bool sse;
	bool counted_stream;
	uint64_t first_byte_ns;
	bool local_only; /* arrived through a tunnel: never routed onward */
	char route[24];
};

static const char *const proxied_paths[] = {"/v1/chat/completions",
    "/v1/completions", "/v1/responses", "/v1/embeddings"};

static void proxy_attempt(struct proxy *px);

static double
ms_since(uint64_t start_ns)
{
	return (double)(sm_now_ns() - start_ns) / 1e6;
}

static void
access_log(struct gateway *gw, struct hreq *req, const char *model,
    const char *route, bool stream, double ttfb_ms)
{
	struct log_req lr = {
	    .method = req->method,
	    .path = req->path,
	    .model = model,
	    .route = route,
	    .status = req->status,
	    .bytes_in = req->body.len,
	    .bytes_out = req->bytes_out,
	    .duration_ms = ms_since(req->start_ns),
	    .ttfb_ms = ttfb_ms,
	    .stream = stream,
	    .request_id = req->id,
	};

	log_request(&lr);
	metrics_request(
	    &gw->metrics, model, req->status, req->body.len, req->bytes_out);
}

/* A response the gateway makes itself (errors, lists). */
static void
reply_error(struct gateway *gw, struct hreq *req, const char *model, int status,
    const char *type, const char *code, const char *msg, const char *extra)
{
	(void)hres_error(req, status, type, code, msg, extra);
	access_log(gw, req, model, NULL, false, -1);
}

static void
proxy_free(struct proxy *px)
{
	struct gateway *gw = px->gw;

	gw->metrics.inflight--;
	if (px->counted_stream)
		gw->metrics.active_streams--;
	free(px);
}

static void
proxy_done(struct proxy *px)
{
	access_log(px->gw, px->req, px->peek.model, px->route, px->peek.stream,
	    px->first_byte_ns
		? (double)(px->first_byte_ns - px->req->start_ns) / 1e6
		: -1);
	proxy_free(px);
}

/* --- upstream events ---------------------------------------------------- */

static bool
relay_header(const char *name)
{
	static const char *const drop[] = {"content-type", "content-length",
	    "transfer-encoding", "connection", "keep-alive", "date", "server",
	    "trailer", "upgrade", "proxy-connection", "te", "x-sealmesh-route",
	    /* ours, set per response by the server */
	    "x-request-id", "x-should-retry", "vary"};

	/* CORS is the gateway's decision, never a backend's (llama-server
	 * answers "Access-Control-Allow-Origin: *"). */
	if (strncmp(name, "access-control-", 15) == 0)
		return false;
	for (size_t i = 0; i < SM_ARRAY_LEN(drop); i++)
		if (strcmp(name, drop[i]) == 0)
			return false;
	return true;
}

static void
px_on_head(
    void *user, int status, const struct hdr *hdrs, size_t n, int64_t clen)
{
	struct proxy *px = user;
	const char *ctype = "application/json";
	struct buf extra;

	buf_init(&extra, 16 * 1024);
	px->first_byte_ns = sm_now_ns();
	metrics_ttft(&px->gw->metrics,
	    (double)(px->first_byte_ns - px->req->start_ns) / 1e9);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(hdrs[i].name, "content-type") == 0)
			ctype = hdrs[i].value;
		else if (relay_header(hdrs[i].name) &&
		    buf_appendf(
			&extra, "%s: %s\r\n", hdrs[i].name, hdrs[i].value) != 0)
			break;
	}
	px->sse = strncasecmp(ctype, "text/event-stream", 17) == 0;
	if (px->sse) {
		px->counted_stream = true;
		px->gw->metrics.active_streams++;
	}
	if (buf_appendf(&extra, "X-Sealmesh-Route: %s\r\n", px->route) != 0) {
		/* headers too large: send without the extras */
	}
	(void)hres_begin(px->req, status, ctype,
	    extra.len ? (const char *)buf_data(&extra) : NULL, clen);
	buf_clear(&extra);
}

static void
px_on_drain(struct hreq *req, void *user)
{
	struct proxy *px = user;

	if (px->up != NULL)
		upstream_resume(px->up);
}

static void
px_on_body(void *user, const uint8_t *data, size_t len)
{
	struct proxy *px = user;

	if (hres_body(px->req, data, len) != 0)
		return;
	/* A slow client: stop reading the backend until the socket drains. */
	if (hreq_queued(px->req) > HTTP_WRITE_HIGH_WATER)
		upstream_pause(px->up);
}

static void
px_on_end(void *user, int err)
{
	struct proxy *px = user;
	struct hreq *req = px->req;

	px->up = NULL;
	if (err == 0) {
		(void)hres_end(req);
		proxy_done(px);
		return;
	}
	if (!req->head_sent) {
		/* Nothing reached the client yet: try the next host. */
		px->gw->metrics.upstream_failures++;
		px->last_err = err;
		log_warn("request to model %s via %s failed: %s",
		    px->peek.model, px->route, sm_strerror(err));
		proxy_attempt(px);
		return;
	}
	log_warn("stream of model %s via %s cut: %s", px->peek.model, px->route,
	    sm_strerror(err));
	if (px->sse) {
		/* Tell an SSE client in-band, then end the stream cleanly. */
		static const char ev[] =
		    "data: {\"error\":{\"message\":\"the backend closed the "
		    "stream before it ended\",\"type\":\"server_error\","
		    "\"code\":\"upstream_stream_cut\"}}\n\n";

		req->keep_alive = false;
		(void)hres_body(req, ev, sizeof(ev) - 1);
		(void)hres_end(req);
	} else {
		hres_abort(req);
	}
	proxy_done(px);
}

static const struct upstream_cbs px_cbs = {
    .on_head = px_on_head,
    .on_body = px_on_body,
    .on_end = px_on_end,
};

/* The client left: stop the backend work it started. */
static void
px_on_abort(struct hreq *req, void *user)
{
	struct proxy *px = user;

	if (px->up != NULL)
		upstream_cancel(px->up);
	px->up = NULL;
	if (!req->head_sent)
		req->status = 499; /* nginx's "client closed request" */
	proxy_done(px);
}

static void
proxy_fail(struct proxy *px)
{
	struct hreq *req = px->req;
	int err = px->last_err;

	req->on_abort = NULL;
	req->on_drain = NULL;
	if (err == SM_ERR_TIMEOUT)
		(void)hres_error(req, 504, "server_error", "backend_timeout",
		    "the model backend did not answer in time", NULL);
	else if (err == SM_ERR_BUSY)
		/* The link's stream queue (--queue-timeout, --queue-max). */
		(void)hres_error(req, 503, "server_error", "mesh_busy",
		    "the link to the host is at its stream limit and the "
		    "request waited too long for a slot",
		    "Retry-After: 1\r\n");
	else if (err == SM_ERR_PERM || err == SM_ERR_UNAVAIL)
		/* Refused by policy (a retry cannot fix it) or gone since the
		 * lookup: nothing sent. */
		(void)hres_error(req, 503, "server_error", "model_unavailable",
		    "no host can serve this model right now",
		    err == SM_ERR_PERM ? "x-should-retry: false\r\n"
				       : "Retry-After: 5\r\n");
	else
		(void)hres_error(req, 502, "server_error",
		    "backend_unreachable",
		    "the model backend could not be reached", NULL);
	proxy_done(px);
}

static void
proxy_attempt(struct proxy *px)
{
	struct gateway *gw = px->gw;
	struct upstream_opts uo = {
	    .connect_timeout_ms = gw->opts.connect_timeout_ms,
	    .header_timeout_ms = gw->opts.backend_timeout_ms,
	};
	struct buf rq;
	int r;

	while (px->next < px->ntargets) {
		struct route_target *t = &px->targets[px->next++];

		if (t->kind == ROUTE_REMOTE) {
			char hex[9];

			if (gw->remote.start == NULL)
				continue;
			sm_hex(hex, t->peer, 4);
			snprintf(
			    px->route, sizeof(px->route), "remote:%s", hex);
			r = gw->remote.start(gw->remote.arg, t, px->req,
			    &px->peek, &px_cbs, px, &px->up);
			if (r == 0)
				return;
			log_warn(
			    "remote attempt for model %s via %s failed: %s",
			    px->peek.model, px->route, sm_strerror(r));
			px->gw->metrics.upstream_failures++;
			px->last_err = r;
			continue;
		}
		snprintf(px->route, sizeof(px->route), "local");
		buf_init(&rq, px->req->body.len + 64 * 1024);
		r = upstream_build_request(&rq, t->backend, px->req);
		if (r == 0)
			r = upstream_tcp_start(&px->up, gw->loop, t->backend,
			    &rq, &uo, &px_cbs, px);
		buf_clear(&rq);
		if (r == 0)
			return;
		px->last_err = r;
	}
	proxy_fail(px);
}

static void
handle_proxy(struct gateway *gw, struct hreq *req, bool local_only)
{
	struct proxy *px;
	int r;

	if ((px = calloc(1, sizeof(*px))) == NULL) {
		reply_error(gw, req, NULL, 500, "server_error", NULL,
		    "out of memory", NULL);
		return;
	}
	px->gw = gw;
	px->req = req;
	px->local_only = local_only;
	r = oai_peek(buf_data(&req->body), req->body.len, &px->peek);
	if (r == SM_ERR_INVAL) {
		free(px);
		reply_error(gw, req, NULL, 400, "invalid_request_error",
		    "invalid_json", "the request body is not a JSON object",
		    NULL);
		return;
	}
	if (r != 0) {
		free(px);
		reply_error(gw, req, NULL, 400, "invalid_request_error",
		    "missing_model", "the request has no \"model\" string",
		    NULL);
		return;
	}
	r = (local_only ? route_lookup_local : route_lookup)(
	    gw->router, px->peek.model, px->targets, ROUTE_MAX_TARGETS);
	if (r == SM_ERR_NOTFOUND || r == SM_ERR_UNAVAIL) {
		bool gone = r == SM_ERR_UNAVAIL;
		const char *why = gone && gw->router->remote.why != NULL
		    ? gw->router->remote.why(gw->router->remote.arg)
		    : NULL;
		char msg[384];

		/* Fail closed, and say why: no byte of the prompt left. */
		snprintf(msg, sizeof(msg), "%s%s%s",
		    gone ? "no host can serve this model right now"
			 : "no node in the mesh serves this model",
		    why ? ": " : "", why ? why : "");
		/* Every host refused by this node's policy (why != NULL): a
		 * retry cannot fix that; hosts merely gone may come back. */
		reply_error(gw, req, px->peek.model, gone ? 503 : 404,
		    gone ? "server_error" : "invalid_request_error",
		    gone ? "model_unavailable" : "model_not_found", msg,
		    !gone             ? NULL
			: why != NULL ? "x-should-retry: false\r\n"
				      : "Retry-After: 5\r\n");
		free(px);
		return;
	}
	px->ntargets = r;
	px->last_err = SM_ERR_UNAVAIL;
	gw->metrics.inflight++;
	req->on_abort = px_on_abort;
	req->on_drain = px_on_drain;
	req->user = px;
	proxy_attempt(px);
}

/* --- model list --------------------------------------------------------- */

struct list_ctx {
	struct buf *out;
	bool first;
	const char *want; /* single model lookup, or NULL */
	bool found;
	int err;
};

static void
list_one(const char *model, void *arg)
{
	struct list_ctx *lc = arg;

	if (lc->err != 0)
		return;
	if (lc->want != NULL) {
		if (strcmp(model, lc->want) != 0 || lc->found)
			return;
		lc->found = true;
	} else if (lc->out->len > 0) {
		/* skip duplicates: a model may have several hosts */
		char needle[OAI_MODEL_MAX + 16];

		snprintf(needle, sizeof(needle), "\"id\":\"%s\"", model);
		if (memmem(buf_data(lc->out), lc->out->len, needle,
			strlen(needle)) != NULL)
			return;
	}
	lc->err = oai_model_json(lc->out, model, "sealmesh", lc->first);
	lc->first = false;
}

static void
handle_models(struct gateway *gw, struct hreq *req, const char *one)
{
	struct list_ctx lc = {.first = true, .want = one};
	struct buf b;

	buf_init(&b, 4 * 1024 * 1024);
	lc.out = &b;
	if (one == NULL)
		lc.err = buf_appendf(&b, "{\"object\":\"list\",\"data\":[");
	route_each_model(gw->router, list_one, &lc);
	if (one == NULL && lc.err == 0)
		lc.err = buf_appendf(&b, "]}");
	if (lc.err != 0)
		reply_error(gw, req, NULL, 500, "server_error", NULL,
		    "model list too large", NULL);
	else if (one != NULL && !lc.found)
		reply_error(gw, req, one, 404, "invalid_request_error",
		    "model_not_found", "no node in the mesh serves this model",
		    NULL);
	else {
		(void)hres_send(
		    req, 200, "application/json", NULL, buf_data(&b), b.len);
		access_log(gw, req, one, NULL, false, -1);
	}
	buf_clear(&b);
}

/* --- the gate: Host, Origin, CORS preflight, API key -------------------- */

/* How many headers named 'name' the request has. */
static size_t
header_count(const struct hreq *req, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < req->nhdrs; i++)
		n += strcmp(req->hdrs[i].name, name) == 0;
	return n;
}

/* A console access-log line (not counted in the API metrics). */
static void
console_log(struct hreq *req)
{
	struct log_req lr = {
	    .method = req->method,
	    .path = req->path,
	    .status = req->status,
	    .bytes_in = req->body.len,
	    .bytes_out = req->bytes_out,
	    .duration_ms = ms_since(req->start_ns),
	    .ttfb_ms = -1,
	    .route = "console",
	    .request_id = req->id,
	};

	log_request(&lr);
}

static void
gate_refuse(struct gateway *gw, struct hreq *req, bool console, int status,
    const char *code, const char *msg, const char *extra)
{
	/* A refused request says nothing about the node; close after it. */
	req->keep_alive = false;
	(void)hres_error(
	    req, status, "invalid_request_error", code, msg, extra);
	if (console)
		console_log(req);
	else
		access_log(gw, req, NULL, NULL, false, -1);
}

/* Requested headers echoed in a preflight when they are plain tokens. */
static bool
header_list_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (n == 1024 ||
		    !(isalnum((unsigned char)s[n]) || s[n] == '-' ||
			s[n] == '_' || s[n] == ',' || s[n] == ' '))
			return false;
	return true;
}

static void
preflight(struct gateway *gw, struct hreq *req, bool console)
{
	const char *want = hreq_header(req, "access-control-request-headers");
	char extra[1400];

	snprintf(extra, sizeof(extra),
	    "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
	    "Access-Control-Allow-Headers: %s\r\n"
	    "Access-Control-Max-Age: 600\r\n",
	    want != NULL && *want != '\0' && header_list_ok(want)
		? want
		: "authorization, x-api-key, content-type, x-request-id");
	(void)hres_send(req, 204, "text/plain", extra, NULL, 0);
	if (console)
		console_log(req);
	else
		access_log(gw, req, NULL, NULL, false, -1);
}

/* Paths a client may reach without a key. */
static bool
public_path(const struct hreq *req, bool console)
{
	if (strcmp(req->method, "GET") != 0)
		return false;
	return strcmp(req->path, "/health") == 0 ||
	    (console && strcmp(req->path, "/") == 0);
}

/*
 * Decide whether 'req' on the API (console false) or the console may be
 * routed. Returns true to go on; otherwise the request has been answered
 * (refused, or a CORS preflight) and nothing was served.
 */
static bool
gate(struct gateway *gw, struct hreq *req, bool console)
{
	int port = console ? gw->console.port : gw->api.port;
	int sibling = !console && gw->console_open ? gw->console.port : -1;
	const char *host = hreq_header(req, "host");
	const char *origin = hreq_header(req, "origin");
	const char *site = hreq_header(req, "sec-fetch-site");
	size_t nhost = header_count(req, "host");
	enum access_origin o;

	if (nhost > 1 || (nhost == 0 && hreq_http11(req))) {
		gate_refuse(gw, req, console, 400, "invalid_host",
		    nhost ? "more than one Host header"
			  : "an HTTP/1.1 request needs a Host header",
		    NULL);
		return false;
	}
	if (host != NULL && !access_host_ok(&gw->access, host, port)) {
		gate_refuse(gw, req, console, 403, "host_not_allowed",
		    "the Host header does not name this node (DNS rebinding "
		    "is refused); a name the operator trusts can be added "
		    "with --allow-host",
		    NULL);
		return false;
	}
	if (header_count(req, "origin") > 1) {
		gate_refuse(gw, req, console, 403, "origin_not_allowed",
		    "more than one Origin header", NULL);
		return false;
	}
	o = access_origin_check(&gw->access, origin, port, sibling);
	if (o == ACCESS_ORIGIN_REFUSED ||
	    (o == ACCESS_ORIGIN_NONE && site != NULL &&
		(strcmp(site, "cross-site") == 0 ||
		    strcmp(site, "same-site") == 0))) {
		gate_refuse(gw, req, console, 403, "origin_not_allowed",
		    "requests from this web origin are refused; a browser "
		    "app the operator trusts can be added with --allow-origin",
		    NULL);
		return false;
	}
	if (o == ACCESS_ORIGIN_CORS)
		req->cors_origin = origin;
	if (o == ACCESS_ORIGIN_CORS && strcmp(req->method, "OPTIONS") == 0 &&
	    hreq_header(req, "access-control-request-method") != NULL) {
		preflight(gw, req, console);
		return false;
	}
	if (gw->keys != NULL && !public_path(req, console) &&
	    !apikeys_check_headers(gw->keys, hreq_header(req, "authorization"),
		hreq_header(req, "x-api-key"))) {
		gate_refuse(gw, req, console, 401, "invalid_api_key",
		    "a valid API key is required: send it as "
		    "\"Authorization: Bearer KEY\" or \"x-api-key: KEY\"",
		    "WWW-Authenticate: Bearer realm=\"sealmesh\"\r\n");
		return false;
	}
	return true;
}

static void
api_handler(struct hreq *req, void *ctx)
{
	struct gateway *gw = ctx;
	bool get = strcmp(req->method, "GET") == 0;
	bool post = strcmp(req->method, "POST") == 0;

	if (!gate(gw, req, false))
		return;

	for (size_t i = 0; i < SM_ARRAY_LEN(proxied_paths); i++) {
		if (strcmp(req->path, proxied_paths[i]) != 0)
			continue;
		if (post)
			handle_proxy(gw, req, false);
		else
			reply_error(gw, req, NULL, 405, "invalid_request_error",
			    "method_not_allowed", "use POST",
			    "Allow: POST\r\n");
		return;
	}
	if (strcmp(req->path, "/v1/models") == 0 ||
	    strncmp(req->path, "/v1/models/", 11) == 0) {
		const char *one = req->path[10] == '/' ? req->path + 11 : NULL;

		if (get)
			handle_models(gw, req, one);
		else
			reply_error(gw, req, NULL, 405, "invalid_request_error",
			    "method_not_allowed", "use GET", "Allow: GET\r\n");
		return;
	}
	if (get && strcmp(req->path, "/health") == 0) {
		static const char ok[] = "{\"status\":\"ok\"}";

		(void)hres_send(
		    req, 200, "application/json", NULL, ok, sizeof(ok) - 1);
		access_log(gw, req, NULL, NULL, false, -1);
		return;
	}
	reply_error(gw, req, NULL, 404, "invalid_request_error", "not_found",
	    "unknown endpoint", NULL);
}

/* A request that came through a tunnel: the proxied endpoints only, served
 * by this node's own backends. */
static void
tunnel_handler(struct hreq *req, void *ctx)
{
	struct gateway *gw = ctx;

	for (size_t i = 0; i < SM_ARRAY_LEN(proxied_paths); i++)
		if (strcmp(req->path, proxied_paths[i]) == 0 &&
		    strcmp(req->method, "POST") == 0) {
			handle_proxy(gw, req, true);
			return;
		}
	req->keep_alive = false;
	reply_error(gw, req, NULL, 404, "invalid_request_error", "not_found",
	    "unknown endpoint", NULL);
}

/* --- console ------------------------------------------------------------ */

static void
status_model(const char *model, void *arg)
{
	cJSON *arr = arg;
	cJSON *it;

	cJSON_ArrayForEach(it, arr) if (cJSON_IsString(it) &&
	    strcmp(it->valuestring, model) == 0) return;
	cJSON_AddItemToArray(arr, cJSON_CreateString(model));
}

cJSON *
gateway_status_json(struct gateway *gw)
{
	cJSON *st = cJSON_CreateObject(), *models;

	if (st == NULL)
		return NULL;
	cJSON_AddStringToObject(st, "version", SM_VERSION);
	cJSON_AddStringToObject(st, "node_id", gw->opts.node_id);
	cJSON_AddStringToObject(st, "role", gw->opts.role);
	models = cJSON_AddArrayToObject(st, "models");
	for (size_t i = 0; models != NULL && i < gw->router->nlocal; i++)
		status_model(gw->router->local[i]->name, models);
	cJSON_AddNumberToObject(st, "api_port", gw->api.port);
	cJSON_AddNumberToObject(
	    st, "console_port", gw->console_open ? gw->console.port : -1);
	cJSON_AddArrayToObject(st, "peers");
	cJSON_AddNumberToObject(st, "inflight", (double)gw->metrics.inflight);
	cJSON_AddNumberToObject(
	    st, "active_streams", (double)gw->metrics.active_streams);
	cJSON_AddNumberToObject(
	    st, "uptime", (double)(sm_now_ms() - gw->start_ms) / 1000.0);
	cJSON_AddItemToObject(st, "posture", posture_to_json(harden_posture()));
	if (gw->status_hook != NULL)
		gw->status_hook(gw->status_arg, st);
	return st;
}

static void
console_route(struct gateway *gw, struct hreq *req)
{
	struct buf b;

	if (strcmp(req->method, "GET") == 0 &&
	    strcmp(req->path, "/health") == 0) {
		static const char ok[] = "{\"status\":\"ok\"}";

		(void)hres_send(
		    req, 200, "application/json", NULL, ok, sizeof(ok) - 1);
		return;
	}

	if (strcmp(req->method, "POST") == 0 &&
	    strcmp(req->path, "/api/attest/challenge") == 0) {
		static const char ok[] = "{\"challenged\":true}";
		const char *q = req->query;
		int r = SM_ERR_UNAVAIL;

		if (strncmp(q, "peer=", 5) == 0 && gw->challenge_hook != NULL)
			r = gw->challenge_hook(gw->status_arg, q + 5);
		if (r == 0)
			(void)hres_send(req, 202, "application/json", NULL, ok,
			    sizeof(ok) - 1);
		else
			(void)hres_error(req, r == SM_ERR_NOTFOUND ? 404 : 503,
			    "invalid_request_error", "no_such_peer",
			    "no peer with that id can be challenged now", NULL);
		return;
	}
	if (strcmp(req->method, "GET") != 0) {
		(void)hres_error(req, 405, "invalid_request_error",
		    "method_not_allowed", "use GET", "Allow: GET\r\n");
		return;
	}
	if (webui_serve(req)) /* the web console page: /, /app.js, /app.css */
		return;
	if (strcmp(req->path, "/api/status") == 0) {
		cJSON *st = gateway_status_json(gw);
		char *s = st ? cJSON_PrintUnformatted(st) : NULL;

		if (s == NULL)
			(void)hres_error(req, 500, "server_error", NULL,
			    "out of memory", NULL);
		else
			(void)hres_send(
			    req, 200, "application/json", NULL, s, strlen(s));
		cJSON_free(s);
		cJSON_Delete(st);
		return;
	}
	if (strcmp(req->path, "/metrics") == 0) {
		buf_init(&b, 1024 * 1024);
		if (metrics_render(&gw->metrics, &b) == 0 &&
		    (gw->metrics_hook == NULL ||
			gw->metrics_hook(gw->status_arg, &b) == 0))
			(void)hres_send(req, 200, "text/plain; version=0.0.4",
			    NULL, buf_data(&b), b.len);
		else
			(void)hres_error(req, 500, "server_error", NULL,
			    "metrics too large", NULL);
		buf_clear(&b);
		return;
	}
	(void)hres_error(req, 404, "invalid_request_error", "not_found",
	    "unknown endpoint", NULL);
}

static void
console_handler(struct hreq *req, void *ctx)
{
	struct gateway *gw = ctx;

	if (!gate(gw, req, true))
		return;
	console_route(gw, req);
	console_log(req);
}

void
gateway_set_keys(struct gateway *gw, struct apikeys *keys)
{
	apikeys_free(gw->keys);
	gw->keys = keys;
}

size_t
gateway_add_own_addrs(struct gateway *gw)
{
	uv_interface_address_t *ifs;
	size_t added = 0;
	int n;

	if (uv_interface_addresses(&ifs, &n) != 0)
		return 0;
	for (int i = 0; i < n; i++) {
		const struct sockaddr *sa =
		    (const struct sockaddr *)&ifs[i].address;
		int r;

		if (sa->sa_family == AF_INET)
			r = access_add_addr(&gw->access, AF_INET,
			    (const uint8_t *)&ifs[i].address.address4.sin_addr);
		else if (sa->sa_family == AF_INET6)
			r = access_add_addr(&gw->access, AF_INET6,
			    (const uint8_t *)&ifs[i]
				.address.address6.sin6_addr);
		else
			continue;
		if (r != 0)
			break;
		added++;
	}
	uv_free_interface_addresses(ifs, n);
	return added;
}

int
gateway_open(struct gateway *gw, uv_loop_t *loop, struct router *rt,
    const struct gateway_opts *opts, const struct access_policy *access,
    struct apikeys *keys)
{
	struct hsrv_config api = {
	    .max_body = opts->max_body,
	    .handler = api_handler,
	    .ctx = gw,
	};
	struct hsrv_config con = {.handler = console_handler, .ctx = gw};
	struct hsrv_config tun = {
	    .max_body = opts->max_body,
	    .handler = tunnel_handler,
	    .ctx = gw,
	};
	int r;

	memset(gw, 0, sizeof(*gw));
	gw->loop = loop;
	gw->opts = *opts;
	gw->keys = keys;
	if (access != NULL)
		gw->access = *access;
	else
		access_init(&gw->access);
	gw->router = rt;
	gw->start_ms = sm_now_ms();
	metrics_init(&gw->metrics);
	hsrv_init(&gw->tunnel, loop, &tun);
	if ((r = hsrv_open(
		 &gw->api, loop, opts->listen_host, opts->api_port, &api)) != 0)
		goto fail;
	if (opts->console_port >= 0) {
		if ((r = hsrv_open(&gw->console, loop,
			 opts->console_host ? opts->console_host : "127.0.0.1",
			 opts->console_port, &con)) != 0) {
			hsrv_close(&gw->api);
			goto fail;
		}
		gw->console_open = true;
	}
	return 0;
fail:
	gateway_set_keys(gw, NULL);
	return r;
}

void
gateway_close(struct gateway *gw)
{
	hsrv_close(&gw->api);
	hsrv_close(&gw->tunnel);
	if (gw->console_open)
		hsrv_close(&gw->console);
	gateway_set_keys(gw, NULL); /* wipes */
}
