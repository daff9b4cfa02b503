#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/util.h"

int
backend_init(struct backend *b, const char *name, const char *url, char *err,
    size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	const char *p, *hend, *slash;
	char portstr[8];
	uint64_t port = 80;
	size_t hlen, plen;
	int r;

	memset(b, 0, sizeof(*b));
	if (*name == '\0' || strlen(name) >= sizeof(b->name)) {
		snprintf(err, errlen, "bad model name");
		return SM_ERR_INVAL;
	}
	strcpy(b->name, name);
	if (strncmp(url, "http://", 7) != 0) {
		snprintf(err, errlen,
		    "backend URL must start with http:// (%s)", url);
		return SM_ERR_INVAL;
	}
	p = url + 7;
	slash = strchr(p, '/');
	if (*p == '[') { /* [v6addr]:port */
		if ((hend = strchr(p, ']')) == NULL) {
			snprintf(err, errlen, "bad IPv6 address in %s", url);
			return SM_ERR_INVAL;
		}
		hlen = (size_t)(hend - p - 1);
		p++;
		hend++;
	} else {
		hend = p + strcspn(p, ":/");
		hlen = (size_t)(hend - p);
	}
	if (hlen == 0 || hlen > BACKEND_HOST_MAX) {
		snprintf(err, errlen, "bad host in %s", url);
		return SM_ERR_INVAL;
	}
	memcpy(b->host, p, hlen);
	if (*hend == ':') {
		size_t n =
		    slash ? (size_t)(slash - hend - 1) : strlen(hend + 1);

		if (n == 0 || n >= sizeof(portstr)) {
			snprintf(err, errlen, "bad port in %s", url);
			return SM_ERR_INVAL;
		}
		memcpy(portstr, hend + 1, n);
		portstr[n] = '\0';
		if (sm_parse_u64(portstr, 1, 65535, &port) != 0) {
			snprintf(err, errlen, "bad port in %s", url);
			return SM_ERR_INVAL;
		}
	}
	b->port = (int)port;
	if (slash != NULL) {
		plen = strlen(slash);
		while (plen > 0 && slash[plen - 1] == '/')
			plen--;
		if (plen >= sizeof(b->base_path)) {
			snprintf(err, errlen, "backend path too long");
			return SM_ERR_INVAL;
		}
		memcpy(b->base_path, slash, plen);
		b->base_has_v1 =
		    plen >= 3 && strcmp(b->base_path + plen - 3, "/v1") == 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(portstr, sizeof(portstr), "%d", b->port);
	if ((r = getaddrinfo(b->host, portstr, &hints, &res)) != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", b->host,
		    gai_strerror(r));
		return SM_ERR_INVAL;
	}
	memcpy(&b->addr, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	b->up = true;
	return 0;
}

int
backend_parse(struct backend *b, const char *spec, char *err, size_t errlen)
{
	const char *eq = strchr(spec, '=');
	char name[257];

	if (eq == NULL || eq == spec || (size_t)(eq - spec) >= sizeof(name)) {
		snprintf(err, errlen, "--model wants NAME=URL, got '%s'", spec);
		return SM_ERR_INVAL;
	}
	memcpy(name, spec, (size_t)(eq - spec));
	name[eq - spec] = '\0';
	return backend_init(b, name, eq + 1, err, errlen);
}

int
backend_path(
    const struct backend *b, const char *client_path, char *out, size_t len)
{
	const char *rest = client_path;
	int n;

	/* A base ending in /v1 (Ollama, vLLM style) already has the prefix. */
	if (b->base_has_v1 && strncmp(rest, "/v1/", 4) == 0)
		rest += 3;
	n = snprintf(out, len, "%s%s", b->base_path, rest);
	return n < 0 || (size_t)n >= len ? SM_ERR_TOOBIG : 0;
}
