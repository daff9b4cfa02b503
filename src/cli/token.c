/*
 * sealmesh token: print the node's invite token, read from its state
 * directory (DIR/invite.token, 0600, written by `sealmesh serve`). The token
 * carries the mesh's join secret, so it is never served over the console's
 * HTTP: reading it takes the file permissions of the node's operator.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/cli.h"
#include "mesh/identity.h"

#define TOKEN_FILE_MAX 8192

int
cli_token(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 'd'},
	    {"console", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char dflt[4096], path[4200], buf[TOKEN_FILE_MAX];
	const char *dir = NULL;
	struct stat st;
	ssize_t n;
	int c, fd = -1, rc = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'c':
			fprintf(stderr,
			    "sealmesh token: the console no longer serves the "
			    "token (it carries the join secret); run this as "
			    "the node's user, with --state-dir DIR if not "
			    "~/.sealmesh\n");
			return 2;
		case 'h':
			printf("usage: sealmesh token [--state-dir DIR]\n"
			       "Print the invite token of the node whose state "
			       "directory is DIR\n(default ~/.sealmesh). It "
			       "holds the mesh's join secret: share it like "
			       "a password.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (dir == NULL) {
		if (identity_default_dir(dflt, sizeof(dflt)) != 0) {
			fprintf(stderr,
			    "sealmesh token: no HOME; use --state-dir\n");
			return 2;
		}
		dir = dflt;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, CLI_TOKEN_FILE);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		fprintf(stderr,
		    "sealmesh token: cannot read %s: %s (`sealmesh serve "
		    "--state-dir %s` writes it when it starts)\n",
		    path, strerror(errno), dir);
		return 1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (st.st_uid != geteuid() && geteuid() != 0) ||
	    (st.st_mode & 077) != 0) {
		fprintf(stderr,
		    "sealmesh token: %s must be a file of this user with mode "
		    "0600; refusing it\n",
		    path);
		goto out;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0 || n == (ssize_t)sizeof(buf) - 1) {
		fprintf(stderr, "sealmesh token: %s: %s\n", path,
		    n < 0 ? strerror(errno) : "empty or too large");
		goto out;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	/* The token holds the mesh's join secret: share it like a password. */
	printf("%s\n", buf);
	rc = 0;
out:
	sodium_memzero(buf, sizeof(buf));
	close(fd);
	return rc;
}
