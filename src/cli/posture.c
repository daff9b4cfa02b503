/*
 * sealmesh posture [--hold] [--strict-env]: print this process's measured
 * security posture as one JSON line. With --hold, stay alive until SIGTERM or
 * SIGINT (tests attach to it; operators can inspect /proc/PID).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "cli/cli.h"
#include "harden/harden.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: sealmesh posture [--hold] [--strict-env]\n"
	    "\n"
	    "Print this process's measured security posture as JSON (null =\n"
	    "could not be measured). The posture is what this node reports to\n"
	    "peers; peers cannot verify it unless an attestation covers it.\n"
	    "\n"
	    "  --hold              stay alive until SIGTERM or "
	    "SIGINT\n" HARDEN_HELP_STRICT_ENV);
}

static int
hold(void)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		return 1;
	while (sigwait(&set, &sig) != 0)
		;
	return 0;
}

int
cli_posture(int argc, char **argv)
{
	bool do_hold = false;
	cJSON *j;
	char *s;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--hold") == 0) {
			do_hold = true;
		} else if (strcmp(argv[i], "--strict-env") == 0) {
			/* acted on by harden_early() before parsing */
		} else if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(
			    stderr, "posture: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if ((j = posture_to_json(harden_posture())) == NULL ||
	    (s = cJSON_PrintUnformatted(j)) == NULL) {
		cJSON_Delete(j);
		fprintf(stderr, "posture: out of memory\n");
		return 1;
	}
	printf("%s\n", s);
	fflush(stdout);
	cJSON_free(s);
	cJSON_Delete(j);
	return do_hold ? hold() : 0;
}
