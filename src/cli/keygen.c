#include <stdio.h>

#include "cli/cli.h"

int
cli_keygen(int argc, char **argv)
{
	fprintf(stderr, "keygen: not yet built\n");
	return 1;
}
