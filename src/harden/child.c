/*
 * Hardening for child processes (llama-server): a minimal environment and
 * the limits that survive execve. What cannot be carried over: dumpability
 * and PT_DENY_ATTACH are reset by execve, so a same-user debugger can attach
 * to the child and read the prompts it holds; see doc/THREAT-MODEL.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "harden/harden.h"

#define CHILD_PATH "PATH=/usr/bin:/bin"
#define CHILD_LANG "LANG=C.UTF-8"

void
harden_child_env_free(char **envp)
{
	char **e;

	if (envp == NULL)
		return;
	for (e = envp; *e != NULL; e++)
		free(*e);
	free(envp);
}

int
harden_child_env_new(const char *const *extra, char ***envp_out)
{
	const char *home = getenv("HOME");
	char **envp = NULL;
	size_t n = 0, i, cap = 4;
	int r = SM_ERR_NOMEM;

	*envp_out = NULL;
	for (i = 0; extra != NULL && extra[i] != NULL; i++) {
		if (harden_env_is_dirty(extra[i]) ||
		    strchr(extra[i], '=') == NULL) {
			r = SM_ERR_PERM;
			goto out;
		}
		cap++;
	}
	if ((envp = calloc(cap, sizeof(*envp))) == NULL)
		goto out;
	if ((envp[n++] = strdup(CHILD_PATH)) == NULL ||
	    (envp[n++] = strdup(CHILD_LANG)) == NULL)
		goto out;
	if (home == NULL || home[0] != '/')
		home = "/";
	if ((envp[n] = malloc(strlen(home) + sizeof("HOME="))) == NULL)
		goto out;
	sprintf(envp[n++], "HOME=%s", home);
	for (i = 0; extra != NULL && extra[i] != NULL; i++) {
		if ((envp[n++] = strdup(extra[i])) == NULL)
			goto out;
	}
	envp[n] = NULL;
	*envp_out = envp;
	envp = NULL;
	r = 0;
out:
	harden_child_env_free(envp);
	return r;
}

int
harden_child_setup(void)
{
	struct rlimit rl = {0, 0};
	int r = 0;

	if (setrlimit(RLIMIT_CORE, &rl) != 0)
		r = SM_ERR_IO;
#ifdef __linux__
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		r = SM_ERR_IO;
#endif
	return r;
}
