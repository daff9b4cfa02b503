/*
 * Who may talk to the node's local HTTP faces (the API and the console):
 * the Host and Origin allowlists that stop DNS rebinding and cross-site
 * requests. Pure functions on strings, no I/O, so they run under a unit test
 * and a fuzzer alone.
 *
 * A Host is accepted when its name part (compared case-insensitively, port
 * stripped, "[v6]:port" understood) is a loopback name or address
 * ("localhost", any canonical dotted 127.x.y.z, "[::1]"), one of the node's
 * own addresses added with access_add_addr() (--listen-all), or a name added
 * with access_add_host() (--allow-host); and its port, when present, is the
 * listener's bound port.
 *
 * An Origin is same-origin when it is http://HOST:PORT for an accepted HOST
 * and this listener's port; cross-origin but allowed (CORS answered) when it
 * equals an origin added with access_add_origin() (--allow-origin) or is the
 * node's own console (http://HOST:SIBLING_PORT); refused otherwise, and
 * always when it is "null" or malformed.
 */
#ifndef SM_HTTP_ACCESS_H
#define SM_HTTP_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define ACCESS_MAX_NAMES 32
#define ACCESS_MAX_ADDRS 64
#define ACCESS_MAX_ORIGINS 32
#define ACCESS_NAME_MAX 253 /* a DNS name, or an IP literal */
#define ACCESS_ORIGIN_MAX 320

struct access_addr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t a[16];
};

struct access_policy {
	char names[ACCESS_MAX_NAMES][ACCESS_NAME_MAX + 1]; /* lowercased */
	size_t nnames;
	struct access_addr addrs[ACCESS_MAX_ADDRS];
	size_t naddrs;
	char origins[ACCESS_MAX_ORIGINS][ACCESS_ORIGIN_MAX + 1]; /* normal */
	size_t norigins;
};

enum access_origin {
	ACCESS_ORIGIN_NONE, /* no Origin header */
	ACCESS_ORIGIN_SAME, /* same origin: no CORS headers needed */
	ACCESS_ORIGIN_CORS, /* allowed cross-origin: answer with CORS */
	ACCESS_ORIGIN_REFUSED,
};

/* Empty policy: loopback only. */
void access_init(struct access_policy *p);

/*
 * --allow-host NAME: a DNS name ([A-Za-z0-9._-], at most 253 bytes) or an IP
 * literal (IPv6 with or without brackets), without a port. Returns 0,
 * SM_ERR_INVAL for a malformed name, SM_ERR_TOOBIG when the list is full.
 */
int access_add_host(struct access_policy *p, const char *name) SM_MUST_CHECK;

/* One of the node's own addresses (4 or 16 bytes). SM_ERR_TOOBIG if full. */
int access_add_addr(
    struct access_policy *p, int family, const uint8_t *addr) SM_MUST_CHECK;

/*
 * --allow-origin URL: "scheme://host[:port]" with no path (one trailing '/'
 * is dropped); kept lowercased with a default port (80 for http, 443 for
 * https) removed. "*" and "null" are refused. Returns 0, SM_ERR_INVAL or
 * SM_ERR_TOOBIG.
 */
int access_add_origin(struct access_policy *p, const char *url) SM_MUST_CHECK;

/*
 * Split a Host value: "name", "name:port", "[v6]" or "[v6]:port". Writes the
 * lowercased name (brackets removed) to 'host' and the port to '*port' (-1
 * when absent). Returns 0 or SM_ERR_INVAL for anything else (empty name,
 * bad characters, port not in 1..65535, too long for 'hostlen').
 */
int access_host_split(
    const char *value, char *host, size_t hostlen, int *port) SM_MUST_CHECK;

/* Is 'host' (a name from access_host_split) a loopback name or address? */
bool access_is_loopback(const char *host);

/* May a request with this Host header value reach a listener on 'port'? */
bool access_host_ok(const struct access_policy *p, const char *value, int port);

/*
 * Classify an Origin header value ('value' NULL: none) for a listener on
 * 'port'; 'sibling_port' (or -1) is another face of this node whose pages
 * may call this one with CORS (the console, for the API).
 */
enum access_origin access_origin_check(const struct access_policy *p,
    const char *value, int port, int sibling_port);

#endif
