#include <string.h>

#include "core/util.h"
#include "http/webui.h"
#include "http/webui_assets.h" /* generated: $(BUILD)/gen/http/ */

struct asset {
	const char *path;
	const char *ctype;
	const unsigned char *data;
	const unsigned int *len;
};

static const struct asset assets[] = {
    {"/", "text/html; charset=utf-8", webui_index_html, &webui_index_html_len},
    {"/index.html", "text/html; charset=utf-8", webui_index_html,
	&webui_index_html_len},
    {"/app.js", "text/javascript; charset=utf-8", webui_app_js,
	&webui_app_js_len},
    {"/app.css", "text/css; charset=utf-8", webui_app_css, &webui_app_css_len},
    {"/favicon.svg", "image/svg+xml", webui_favicon_svg,
	&webui_favicon_svg_len},
};

/* Same headers for every file: the page works offline and same-origin only,
 * cannot be framed, and leaks no referrer. */
static const char headers[] = "Content-Security-Policy: " WEBUI_CSP "\r\n"
			      "X-Content-Type-Options: nosniff\r\n"
			      "X-Frame-Options: DENY\r\n"
			      "Referrer-Policy: no-referrer\r\n"
			      "Cross-Origin-Opener-Policy: same-origin\r\n"
			      "Cross-Origin-Resource-Policy: same-origin\r\n"
			      "Cache-Control: no-cache\r\n";

bool
webui_serve(struct hreq *req)
{
	for (size_t i = 0; i < SM_ARRAY_LEN(assets); i++) {
		if (strcmp(req->path, assets[i].path) != 0)
			continue;
		(void)hres_send(req, 200, assets[i].ctype, headers,
		    assets[i].data, *assets[i].len);
		return true;
	}
	return false;
}
