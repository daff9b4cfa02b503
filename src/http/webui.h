/*
 * The web console: a static page (HTML, CSS, JS from src/http/webui/,
 * compiled into the binary) served on the console port. The page itself
 * reads /api/status and /metrics; it holds no data of its own.
 */
#ifndef SM_HTTP_WEBUI_H
#define SM_HTTP_WEBUI_H

#include <stdbool.h>

#include "http/server.h"

/* Content-Security-Policy of every console page response: scripts and
 * styles from this origin only (no inline code), fetches to this origin
 * only, no frames, no forms posting anywhere. */
#define WEBUI_CSP                                                              \
	"default-src 'none'; script-src 'self'; style-src 'self'; "            \
	"connect-src 'self'; img-src 'self'; base-uri 'none'; "                \
	"form-action 'none'; frame-ancestors 'none'"

/*
 * Answer a GET for one of the page's files ("/", "/index.html",
 * "/app.js", "/app.css", "/favicon.svg") and return true; return false (nothing
 * sent) for any other path, which the caller then handles.
 */
bool webui_serve(struct hreq *req);

#endif
