/*
 * Invite token parser: arbitrary bytes as token text; a token that parses
 * must write back to the same text, and its addresses must split.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "mesh/token.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char text[TOKEN_STR_MAX + 16], back[TOKEN_STR_MAX];
	struct token t;
	const char *why;
	char host[TOKEN_ADDR_MAX + 1];
	uint16_t port;
	size_t i;

	if (sodium_init() < 0 || size >= sizeof(text))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (token_parse(text, &t, &why) != 0) {
		if (why == NULL)
			abort();
		return 0;
	}
	if (token_write(&t, back, sizeof(back)) != 0 || strcmp(back, text) != 0)
		abort();
	for (i = 0; i < t.n_addrs; i++)
		if (token_addr_split(t.addrs[i], host, sizeof(host), &port) !=
			0 ||
		    port == 0)
			abort();
	token_clear(&t);
	return 0;
}
