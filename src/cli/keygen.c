/* sealmesh keygen: create this node's identity key explicitly. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/err.h"
#include "mesh/identity.h"

int
cli_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 'd'},
	    {"force", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *dir = NULL;
	char def[4096];
	struct identity id;
	bool force = false;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'f':
			force = true;
			break;
		case 'h':
			printf("usage: sealmesh keygen [--state-dir DIR] "
			       "[--force]\n\nCreate DIR/identity.key (default "
			       "~/.sealmesh), mode 0600 in a 0700 directory,\n"
			       "and print the node id. --force replaces an "
			       "existing key.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (dir == NULL) {
		if (identity_default_dir(def, sizeof(def)) != 0) {
			fprintf(stderr,
			    "sealmesh keygen: no HOME; use "
			    "--state-dir\n");
			return 2;
		}
		dir = def;
	}
	if ((r = identity_create(&id, dir, force)) != 0) {
		fprintf(stderr, "sealmesh keygen: %s%s\n", sm_strerror(r),
		    r == SM_ERR_INVAL ? " (a key exists; --force replaces it)"
				      : "");
		return 1;
	}
	printf("%s\n", id.id_hex);
	identity_clear(&id);
	return 0;
}
