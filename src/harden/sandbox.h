/*
 * The network-facing worker's sandbox (Linux): drop to an unprivileged user,
 * then no_new_privs, non-dumpable and a seccomp allowlist whose default action
 * kills the whole process. Threads are allowed, new processes are not: no
 * fork, no exec, no ptrace, no PR_SET_DUMPABLE, sockets only of the families
 * the node uses. The table of allowed system calls and who needs each lives
 * in sandbox.c; doc/THREAT-MODEL.md "Worker sandbox (seccomp)" says what the
 * filter stops and what it does not.
 *
 * Order in the worker: sandbox_apply() (with allow_drop when root), the
 * startup that reads the files the flags name, sandbox_drop_user(), then
 * the event loop. Both are one-way: nothing here can be undone by the
 * process.
 */
#ifndef SM_HARDEN_SANDBOX_H
#define SM_HARDEN_SANDBOX_H

#include <stdbool.h>

#include "core/err.h"

struct sandbox_opts {
	/*
	 * Diagnostics only: a forbidden call raises SIGSYS (SCMP_ACT_TRAP)
	 * and a handler writes "sandbox: forbidden syscall N" to stderr
	 * before the process dies of SIGSYS, instead of a silent kill. For
	 * finding a missing entry (strace -f shows the number too); never set
	 * it in production, where the process could catch SIGSYS itself.
	 */
	bool trap_report;
	/*
	 * Root that drops to an unprivileged user only after the filter is
	 * in (privilege separation: the worker reads the files its flags name
	 * first): the filter lets exactly that change through — setgroups to
	 * none, setresgid/setresuid to these ids, setuid(0)/setgid(0) for
	 * sandbox_drop_user()'s check that root is gone — and nothing else.
	 */
	bool allow_drop;
	unsigned drop_uid, drop_gid;
};

/*
 * When the effective uid is 0: look 'user' up (getpwnam), drop every
 * supplementary group, setresgid and setresuid to that user's ids, then make
 * sure the drop holds (setuid(0) and setgid(0) must now fail; a process that
 * can regain root is refused). Not root: nothing to do, returns 0.
 * Errors name the user and the OS error in the log. SM_ERR_NOTFOUND (no such
 * user, or user is root), SM_ERR_INVAL (NULL or empty name), SM_ERR_PERM
 * (a step failed or root could be regained: the caller must exit).
 */
int sandbox_drop_user(const char *user) SM_MUST_CHECK;

/*
 * PR_SET_NO_NEW_PRIVS, PR_SET_DUMPABLE 0, then load the allowlist filter
 * (default action: kill the process). Applies to the calling thread and every
 * thread it creates later; call it before creating threads (libuv's pool
 * starts on the first uv_queue_work / getaddrinfo) so all of them are
 * covered — seccomp TSYNC is also requested, so threads that already exist
 * get the filter too. 'o' may be NULL (defaults). SM_ERR_IO (a prctl or the
 * load failed, logged), SM_ERR_NOMEM, SM_ERR_UNSUPP (not Linux).
 */
int sandbox_apply(const struct sandbox_opts *o) SM_MUST_CHECK;

#endif
