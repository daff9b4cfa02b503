/* Fuzz the Host/Origin allowlist parsers and the API key-file parser. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/access.h"
#include "http/apikey.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct access_policy p;
	static int ready;
	char host[ACCESS_NAME_MAX + 1];
	struct apikeys *k;
	char why[128], *s;
	int port;

	if (!ready) {
		access_init(&p);
		(void)access_add_host(&p, "mesh.lan");
		(void)access_add_origin(&p, "http://app.example:5173");
		ready = 1;
	}
	/* As a header value (NUL-terminated, as the HTTP parser gives it). */
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	(void)access_host_split(s, host, sizeof(host), &port);
	(void)access_host_split(s, host, 8, &port);
	(void)access_host_ok(&p, s, 9337);
	(void)access_origin_check(&p, s, 9337, 3131);
	{
		struct access_policy q;

		access_init(&q);
		(void)access_add_host(&q, s);
		(void)access_add_origin(&q, s);
		if (q.nnames == 1)
			(void)access_host_ok(&q, s, 9337);
	}
	/* As a key file, and as presented keys. */
	if (apikeys_parse(&k, (const char *)data, size, why, sizeof(why)) ==
	    0) {
		(void)apikeys_check(k, s, strlen(s));
		(void)apikeys_check_headers(k, s, s);
		apikeys_free(k);
	}
	free(s);
	return 0;
}
