#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "http/access.h"

#define SCHEME_MAX 32

void
access_init(struct access_policy *p)
{
	memset(p, 0, sizeof(*p));
}

static bool
name_char(int c)
{
	return isalnum(c) || c == '.' || c == '-' || c == '_';
}

static bool
v6_char(int c)
{
	return isxdigit(c) || c == ':' || c == '.';
}

/* 1..65535, digits only. */
static int
parse_port(const char *s, int *port)
{
	long v = 0;
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		if (n == 5 || !isdigit((unsigned char)s[n]))
			return SM_ERR_INVAL;
		v = v * 10 + (s[n] - '0');
	}
	if (n == 0 || v < 1 || v > 65535)
		return SM_ERR_INVAL;
	*port = (int)v;
	return 0;
}

/* Copy s[0..len) lowercased into out (outlen bytes with the NUL). */
static int
copy_lower(char *out, size_t outlen, const char *s, size_t len)
{
	if (len == 0 || len >= outlen)
		return SM_ERR_INVAL;
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[len] = '\0';
	return 0;
}

int
access_host_split(const char *value, char *host, size_t hostlen, int *port)
{
	const char *end, *rest;
	size_t len;
	uint8_t a6[16];

	*port = -1;
	if (hostlen > 0)
		host[0] = '\0';
	if (value[0] == '[') {
		if ((end = strchr(value, ']')) == NULL)
			return SM_ERR_INVAL;
		len = (size_t)(end - value - 1);
		for (size_t i = 0; i < len; i++)
			if (!v6_char((unsigned char)value[1 + i]))
				return SM_ERR_INVAL;
		if (copy_lower(host, hostlen, value + 1, len) != 0 ||
		    inet_pton(AF_INET6, host, a6) != 1)
			goto bad;
		rest = end + 1;
	} else {
		for (len = 0; value[len] != '\0' && value[len] != ':'; len++)
			if (!name_char((unsigned char)value[len]))
				return SM_ERR_INVAL;
		if (len > ACCESS_NAME_MAX ||
		    copy_lower(host, hostlen, value, len) != 0)
			goto bad;
		rest = value + len;
	}
	if (*rest == '\0')
		return 0;
	if (*rest == ':' && parse_port(rest + 1, port) == 0)
		return 0;
bad:
	*port = -1;
	if (hostlen > 0)
		host[0] = '\0';
	return SM_ERR_INVAL;
}

/* An IP literal: family and bytes; 0 when 'host' is a name. */
static int
ip_literal(const char *host, uint8_t a[16])
{
	if (inet_pton(AF_INET, host, a) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, host, a) == 1)
		return AF_INET6;
	return 0;
}

bool
access_is_loopback(const char *host)
{
	static const uint8_t v6lo[16] = {[15] = 1};
	static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
	uint8_t a[16];

	switch (ip_literal(host, a)) {
	case AF_INET:
		return a[0] == 127;
	case AF_INET6:
		return memcmp(a, v6lo, 16) == 0 ||
		    (memcmp(a, mapped, 12) == 0 && a[12] == 127);
	default:
		return strcmp(host, "localhost") == 0;
	}
}

/* The name part alone (no port rule): loopback, own address, or listed. */
static bool
host_name_ok(const struct access_policy *p, const char *host)
{
	uint8_t a[16], b[16];
	int fam, bfam;

	if (access_is_loopback(host))
		return true;
	fam = ip_literal(host, a);
	for (size_t i = 0; fam != 0 && i < p->naddrs; i++)
		if (p->addrs[i].family == fam &&
		    memcmp(p->addrs[i].a, a, fam == AF_INET ? 4 : 16) == 0)
			return true;
	for (size_t i = 0; i < p->nnames; i++) {
		if (strcmp(p->names[i], host) == 0)
			return true;
		/* IP literals compare as addresses ("::1" == "0::1"). */
		if (fam != 0 && (bfam = ip_literal(p->names[i], b)) == fam &&
		    memcmp(a, b, fam == AF_INET ? 4 : 16) == 0)
			return true;
	}
	return false;
}

bool
access_host_ok(const struct access_policy *p, const char *value, int port)
{
	char host[ACCESS_NAME_MAX + 1];
	int hport;

	if (value == NULL ||
	    access_host_split(value, host, sizeof(host), &hport) != 0)
		return false;
	if (hport != -1 && hport != port)
		return false;
	return host_name_ok(p, host);
}

int
access_add_host(struct access_policy *p, const char *name)
{
	char host[ACCESS_NAME_MAX + 1], br[ACCESS_NAME_MAX + 3];
	uint8_t a[16];
	int port;

	if (p->nnames == ACCESS_MAX_NAMES)
		return SM_ERR_TOOBIG;
	/* A bare IPv6 literal is accepted as if bracketed. */
	if (strchr(name, ':') != NULL && name[0] != '[' &&
	    inet_pton(AF_INET6, name, a) == 1) {
		if (strlen(name) > ACCESS_NAME_MAX)
			return SM_ERR_INVAL;
		snprintf(br, sizeof(br), "[%s]", name);
		name = br;
	}
	if (access_host_split(name, host, sizeof(host), &port) != 0 ||
	    port != -1)
		return SM_ERR_INVAL;
	memcpy(p->names[p->nnames++], host, strlen(host) + 1);
	return 0;
}

int
access_add_addr(struct access_policy *p, int family, const uint8_t *addr)
{
	struct access_addr *a;

	if (family != AF_INET && family != AF_INET6)
		return SM_ERR_INVAL;
	if (p->naddrs == ACCESS_MAX_ADDRS)
		return SM_ERR_TOOBIG;
	a = &p->addrs[p->naddrs++];
	memset(a, 0, sizeof(*a));
	a->family = family;
	memcpy(a->a, addr, family == AF_INET ? 4 : 16);
	return 0;
}

/*
 * Parse "scheme://host[:port]" into its parts; the host lowercased and
 * unbracketed, port -1 when absent. Nothing may follow (no path, query,
 * userinfo).
 */
static int
origin_split(const char *s, char *scheme, char *host, size_t hostlen, int *port)
{
	const char *sep = strstr(s, "://");
	size_t n;

	if (sep == NULL || (n = (size_t)(sep - s)) == 0 || n >= SCHEME_MAX ||
	    !isalpha((unsigned char)s[0]))
		return SM_ERR_INVAL;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (!isalnum(c) && c != '+' && c != '-' && c != '.')
			return SM_ERR_INVAL;
		scheme[i] = (char)tolower(c);
	}
	scheme[n] = '\0';
	return access_host_split(sep + 3, host, hostlen, port);
}

static int
default_port(const char *scheme)
{
	return strcmp(scheme, "http") == 0 ? 80
	    : strcmp(scheme, "https") == 0 ? 443
					   : -1;
}

/* The serialized form browsers send: lowercase, default port dropped. */
static int
origin_normal(const char *s, char *out, size_t outlen, char *scheme, char *host,
    size_t hostlen, int *port)
{
	int n;

	if (origin_split(s, scheme, host, hostlen, port) != 0)
		return SM_ERR_INVAL;
	if (*port == default_port(scheme))
		*port = -1;
	n = snprintf(out, outlen, "%s://%s%s%s", scheme,
	    strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "");
	if (n > 0 && (size_t)n < outlen && *port != -1)
		n += snprintf(out + n, outlen - (size_t)n, ":%d", *port);
	return n > 0 && (size_t)n < outlen ? 0 : SM_ERR_INVAL;
}

int
access_add_origin(struct access_policy *p, const char *url)
{
	char tmp[ACCESS_ORIGIN_MAX + 1], scheme[SCHEME_MAX];
	char host[ACCESS_NAME_MAX + 1];
	size_t len = strlen(url);
	int port;

	if (p->norigins == ACCESS_MAX_ORIGINS)
		return SM_ERR_TOOBIG;
	if (len == 0 || len > ACCESS_ORIGIN_MAX)
		return SM_ERR_INVAL;
	memcpy(tmp, url, len + 1);
	if (tmp[len - 1] == '/')
		tmp[len - 1] = '\0';
	return origin_normal(tmp, p->origins[p->norigins],
		   ACCESS_ORIGIN_MAX + 1, scheme, host, sizeof(host),
		   &port) == 0
	    ? (p->norigins++, 0)
	    : SM_ERR_INVAL;
}

enum access_origin
access_origin_check(const struct access_policy *p, const char *value, int port,
    int sibling_port)
{
	char norm[ACCESS_ORIGIN_MAX + 1], scheme[SCHEME_MAX];
	char host[ACCESS_NAME_MAX + 1];
	int oport, eport;

	if (value == NULL)
		return ACCESS_ORIGIN_NONE;
	if (strlen(value) > ACCESS_ORIGIN_MAX ||
	    origin_normal(value, norm, sizeof(norm), scheme, host, sizeof(host),
		&oport) != 0)
		return ACCESS_ORIGIN_REFUSED;
	if (strcmp(scheme, "http") == 0 && host_name_ok(p, host)) {
		eport = oport == -1 ? 80 : oport;
		if (eport == port)
			return ACCESS_ORIGIN_SAME;
		if (sibling_port > 0 && eport == sibling_port)
			return ACCESS_ORIGIN_CORS;
	}
	for (size_t i = 0; i < p->norigins; i++)
		if (strcmp(p->origins[i], norm) == 0)
			return ACCESS_ORIGIN_CORS;
	return ACCESS_ORIGIN_REFUSED;
}
