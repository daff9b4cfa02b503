#include <stdio.h>

#include "cli/cli.h"

int
cli_serve(int argc, char **argv)
{
	fprintf(stderr, "serve: not yet built\n");
	return 1;
}
