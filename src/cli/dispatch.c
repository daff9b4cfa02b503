#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cli/cli.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: sealmesh <command> [options]\n"
	    "\n"
	    "commands:\n"
	    "  serve     run a node in front of local LLM backends\n"
	    "  client    join a mesh and use its models, serving none\n"
	    "  status    show the running node and its peers\n"
	    "  token     print the running node's invite token\n"
	    "  attest    show attestation verdicts; challenge a peer now\n"
	    "  posture   print this binary's runtime hardening posture\n"
	    "  keygen    create this node's identity key\n"
	    "  owner     create (init) or show the owner key of an owned "
	    "mesh\n"
	    "  invite    print a signed, expiring invite to an owned mesh\n"
	    "  revoke    revoke a member of an owned mesh\n"
	    "\n"
	    "sealmesh <command> --help shows the options of a command;\n"
	    "sealmesh --version prints the version. See sealmesh(1).\n");
}

int
cli_main(int argc, char **argv)
{
	if (sodium_init() < 0) {
		fprintf(stderr, "sealmesh: libsodium failed to initialise\n");
		return 1;
	}
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--version") == 0 ||
	    strcmp(argv[1], "version") == 0) {
		printf("sealmesh %s\n", SM_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "serve") == 0)
		return cli_serve(argc - 1, argv + 1);
	if (strcmp(argv[1], "client") == 0)
		return cli_client(argc - 1, argv + 1);
	if (strcmp(argv[1], "token") == 0)
		return cli_token(argc - 1, argv + 1);
	if (strcmp(argv[1], "status") == 0)
		return cli_status(argc - 1, argv + 1);
	if (strcmp(argv[1], "attest") == 0)
		return cli_attest(argc - 1, argv + 1);
	if (strcmp(argv[1], "keygen") == 0)
		return cli_keygen(argc - 1, argv + 1);
	if (strcmp(argv[1], "owner") == 0)
		return cli_owner(argc - 1, argv + 1);
	if (strcmp(argv[1], "invite") == 0)
		return cli_invite(argc - 1, argv + 1);
	if (strcmp(argv[1], "revoke") == 0)
		return cli_revoke(argc - 1, argv + 1);
	if (strcmp(argv[1], "posture") == 0)
		return cli_posture(argc - 1, argv + 1);
	fprintf(stderr, "sealmesh: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
