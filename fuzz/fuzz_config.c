/*
 * Config file parser: arbitrary bytes as file text. Every entry it returns
 * must be "--NAME" or "--NAME=VALUE" for a NAME in the table, with its
 * origin "PATH:LINE"; a failure must leave a message naming the path.
 */
#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/config.h"

static const struct option opts[] = {
    {"port", required_argument, NULL, 1},
    {"no-relay", no_argument, NULL, 2},
    {"join", required_argument, NULL, 3},
    {"model", required_argument, NULL, 4},
    {"strict-env", no_argument, NULL, 5},
    {NULL, 0, NULL, 0},
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const deny[] = {"strict-env", NULL};
	struct config_args a = {0};
	char err[512];

	if (config_parse((const char *)data, size, "f.conf", opts, deny, "no",
		&a, err, sizeof(err)) != 0) {
		if (strncmp(err, "f.conf", 6) != 0)
			abort();
		config_args_clear(&a);
		return 0;
	}
	for (int i = 0; i < a.argc; i++) {
		const char *s = a.argv[i], *eq;
		const struct option *o;
		size_t n;

		if (strncmp(s, "--", 2) != 0 ||
		    strncmp(a.origin[i], "f.conf:", 7) != 0)
			abort();
		s += 2;
		eq = strchr(s, '=');
		n = eq ? (size_t)(eq - s) : strlen(s);
		for (o = opts; o->name != NULL; o++)
			if (strlen(o->name) == n && strncmp(o->name, s, n) == 0)
				break;
		if (o->name == NULL || o->val == 5 ||
		    (o->has_arg == no_argument) != (eq == NULL))
			abort();
	}
	if (a.argc > 0 && a.argv[a.argc] != NULL)
		abort();
	config_args_clear(&a);
	return 0;
}
