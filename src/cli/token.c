/* sealmesh token: print the running node's invite token. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/console.h"

int
cli_token(int argc, char **argv)
{
	const cJSON *t;
	cJSON *st;
	int port, r;

	if ((r = console_port_arg(argc, argv, "token", &port, NULL)) >= 0)
		return r;
	if (console_status(port, &st) != 0)
		return 1;
	t = cJSON_GetObjectItemCaseSensitive(st, "token");
	if (!cJSON_IsString(t)) {
		fprintf(stderr, "sealmesh token: the node has no mesh token\n");
		cJSON_Delete(st);
		return 1;
	}
	/* The token holds the mesh's join secret: share it like a password. */
	printf("%s\n", t->valuestring);
	cJSON_Delete(st);
	return 0;
}
