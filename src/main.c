/* sealmesh: runtime hardening first, then CLI dispatch. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "harden/harden.h"

int
main(int argc, char **argv)
{
	/* Before any thread or event loop: see harden_early(). */
	if (harden_early(argc, argv, NULL, NULL) != 0)
		return 1;
	return cli_main(argc, argv);
}
