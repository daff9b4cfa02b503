/*
 * Worker sandbox: user drop and the seccomp allowlist (libseccomp).
 *
 * The filter's default action kills the whole process (SCMP_ACT_KILL_PROCESS:
 * the worker dies with SIGSYS, wait status 159 << 8 for a shell, signal 31 for
 * waitpid). Everything the worker does after start must be in the table
 * below; a missing entry shows up as the node dying with SIGSYS, never as a
 * silent weakening. Calls from another ABI (x32, i386 int 0x80) are killed
 * too (libseccomp's bad-arch action).
 *
 * Sanitizer builds (make check): ASan and UBSan need nothing more at run
 * time. LeakSanitizer's end-of-process check forks a tracer (clone without
 * CLONE_THREAD), makes the process dumpable (PR_SET_DUMPABLE 1) and
 * ptrace-attaches every thread, i.e. exactly what this filter exists to
 * forbid. Rather than weaken the filter in those builds (the tests would then
 * prove a different filter than the product's), a sanitizer build runs the
 * leak check once when the filter is applied (__lsan_do_leak_check(), which
 * also turns off the one at exit). The filter is the same in every build.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>

#include <linux/netlink.h>
#include <seccomp.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define SM_SANDBOX_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SM_SANDBOX_LSAN 1
#endif
#endif
#ifdef SM_SANDBOX_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#include "core/log.h"
#include "harden/sandbox.h"

int
sandbox_drop_user(const char *user)
{
	struct passwd pw, *res = NULL;
	char strbuf[4096];
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;
	int e, r = SM_ERR_PERM;

	if (geteuid() != 0)
		return 0;
	if (user == NULL || *user == '\0') {
		log_error("sandbox: no user to drop to");
		return SM_ERR_INVAL;
	}
	errno = 0;
	e = getpwnam_r(user, &pw, strbuf, sizeof(strbuf), &res);
	if (res == NULL) {
		log_error("sandbox: user '%s': %s", user,
		    e != 0 ? strerror(e) : "no such user");
		r = SM_ERR_NOTFOUND;
		goto out;
	}
	if (pw.pw_uid == 0 || pw.pw_gid == 0) {
		log_error(
		    "sandbox: user '%s' has uid or gid 0: refusing", user);
		r = SM_ERR_NOTFOUND;
		goto out;
	}
	/* Groups first: after setresuid we could no longer change them. */
	if (setgroups(0, NULL) != 0) {
		log_error(
		    "sandbox: setgroups for '%s': %s", user, strerror(errno));
		goto out;
	}
	if (setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid) != 0) {
		log_error("sandbox: setresgid(%u) for '%s': %s",
		    (unsigned)pw.pw_gid, user, strerror(errno));
		goto out;
	}
	if (setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid) != 0) {
		log_error("sandbox: setresuid(%u) for '%s': %s",
		    (unsigned)pw.pw_uid, user, strerror(errno));
		goto out;
	}
	/* The drop must hold: every id is the user's and root is gone. */
	if (getresuid(&ruid, &euid, &suid) != 0 ||
	    getresgid(&rgid, &egid, &sgid) != 0 || ruid != pw.pw_uid ||
	    euid != pw.pw_uid || suid != pw.pw_uid || rgid != pw.pw_gid ||
	    egid != pw.pw_gid || sgid != pw.pw_gid) {
		log_error("sandbox: ids after dropping to '%s' are not the "
			  "user's",
		    user);
		goto out;
	}
	if (setgid(0) == 0 || setuid(0) == 0) {
		log_error("sandbox: root could be regained after dropping to "
			  "'%s': refusing",
		    user);
		goto out;
	}
	r = 0;
out:
	explicit_bzero(strbuf, sizeof(strbuf));
	return r;
}

#ifdef __linux__

/*
 * The allowlist. Plain entries are allowed with any arguments; the calls
 * whose arguments matter (clone, socket, ioctl, prctl, kill, tgkill,
 * prlimit64) get their own rules in add_arg_rules(). A name the running
 * architecture does not have is skipped (x86_64 still has the legacy
 * open/stat/rename... forms glibc uses there; aarch64 has only the *at ones).
 */
static const char *const allow[] = {
    /* Descriptors and files (state dir, key/API-key files on SIGHUP,
     * /proc/self, config, TLS certificates). */
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "open", /* x86_64 legacy form; openat on every arch */
    "openat",
    "close",
    "fstat",
    "stat",
    "lstat",
    "newfstatat",
    "statx",
    "lseek",
    "getdents64",
    "access", /* glibc access() on x86_64 */
    "faccessat",
    "faccessat2",
    "readlink", /* glibc readlink() on x86_64: /proc/self/exe */
    "readlinkat",
    "rename", /* atomic state-file replace (tmp + rename) */
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
    "mkdir",
    "mkdirat",
    "fsync",
    "fdatasync",
    "ftruncate",
    "fchmod", /* files written 0600 */
    "flock", /* attest/pins.c: the pin file lock */
    "fadvise64",
    "statfs",
    "fstatfs",
    "getcwd",
    "umask",
    /* Memory. mlock: sodium_malloc/sodium_mlock for per-request keys. */
    "mmap",
    "munmap",
    "mprotect",
    "mremap",
    "madvise",
    "brk",
    "mlock",
    "mlock2",
    "munlock",
    /* Signals (libuv's signal pipe: SIGHUP reload, SIGINT/SIGTERM). */
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "restart_syscall",
    /* Time. */
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    "time",
    /* Sockets: creation is in add_arg_rules(); the rest work on
     * descriptors the worker already has. */
    "connect",
    "accept",
    "accept4",
    "bind",
    "listen",
    "getsockname",
    "getpeername",
    "setsockopt",
    "getsockopt",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "sendmmsg", /* glibc resolver: A and AAAA queries at once */
    "recvmmsg",
    "shutdown",
    "socketpair",
    /* Event loop (libuv 1.44: epoll, eventfd for uv_async, pipes). */
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "eventfd",
    "eventfd2",
    "pipe",
    "pipe2",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "fcntl",
    "dup",
    "dup2",
    "dup3",
    /* Threads (libuv pool, getaddrinfo through it, TPM worker). */
    "futex",
    "set_robust_list",
    "get_robust_list",
    "set_tid_address",
    "rseq",
    "sched_yield",
    "sched_getaffinity", /* uv_available_parallelism, sysconf */
    "membarrier",
    "exit",
    "exit_group",
    /* Randomness and identity. */
    "getrandom",
    "uname",
    "getpid",
    "gettid",
    "getppid", /* a worker notices its signer is gone */
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "getrusage", /* metrics */
    "sysinfo", /* uv_get_total_memory */
    "getcpu",
};

/* prctl options that change nothing that matters. PR_SET_DUMPABLE is not
 * here: a worker that could make itself dumpable could be read by any
 * process of its user. */
static const int prctl_ok[] = {
    PR_SET_NAME, /* uv thread names, pthread_setname_np */
    PR_GET_NAME, PR_GET_DUMPABLE, PR_GET_NO_NEW_PRIVS, PR_GET_SECCOMP,
    PR_SET_PDEATHSIG, /* re-armed after a drop, which clears it */
};

/* ioctl requests libuv and glibc use on descriptors. */
static const unsigned long ioctl_ok[] = {
    FIONBIO, /* libuv uv__nonblock_ioctl */
    FIOCLEX, /* libuv uv__cloexec_ioctl */
    FIONCLEX, FIONREAD, /* libuv: bytes pending on a socket/pipe */
    TCGETS, /* isatty() in stdio and libuv's uv_guess_handle */
    TIOCGWINSZ, /* uv_tty_get_winsize (console on a terminal) */
};

/* Socket families the worker opens. AF_NETLINK only with NETLINK_ROUTE
 * (getifaddrs, glibc's getaddrinfo AI_ADDRCONFIG check). No AF_PACKET, no
 * raw sockets of other families, no AF_ALG/AF_VSOCK/... kernel surface. */
static const int family_ok[] = {AF_UNIX, AF_INET, AF_INET6};

/* clone(2) is allowed only for threads: CLONE_THREAD set and no namespace
 * flag. fork()/vfork()/posix_spawn use clone without CLONE_THREAD. */
#define CLONE_NS_FLAGS                                                         \
	(CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |         \
	    CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)

static int
add_arg_rules(scmp_filter_ctx ctx, pid_t self)
{
	size_t i;
	int r;

	/* Threads only (x86_64/aarch64: flags are argument 0). */
	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
		 SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD | CLONE_NS_FLAGS,
		     CLONE_THREAD))) != 0)
		return r;
	/* clone3 passes its flags in memory the filter cannot read: ENOSYS
	 * makes glibc (2.34+) fall back to clone, which is checked above. */
	if ((r = seccomp_rule_add(
		 ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) != 0)
		return r;
	/* A newer libuv (1.45+) probes io_uring and falls back to epoll;
	 * io_uring is a large kernel surface the worker does not need. */
	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS),
		 SCMP_SYS(io_uring_setup), 0)) != 0)
		return r;
	for (i = 0; i < sizeof(family_ok) / sizeof(family_ok[0]); i++)
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket),
			 1,
			 SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)family_ok[i]))) !=
		    0)
			return r;
	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
		 SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
		 SCMP_A2(SCMP_CMP_EQ, NETLINK_ROUTE))) != 0)
		return r;
	/* The kernel reads ioctl's request as 32 bits: compare those. */
	for (i = 0; i < sizeof(ioctl_ok) / sizeof(ioctl_ok[0]); i++)
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl),
			 1,
			 SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu,
			     (scmp_datum_t)ioctl_ok[i]))) != 0)
			return r;
	for (i = 0; i < sizeof(prctl_ok) / sizeof(prctl_ok[0]); i++)
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl),
			 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)prctl_ok[i]))) !=
		    0)
			return r;
	/* Signals only to this process: raise(), abort(), pthread_kill. */
	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
		 SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self))) != 0 ||
	    (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
		 SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self))) != 0)
		return r;
	/* Limits: read only (new_limit NULL), own process. */
	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 2,
		 SCMP_A0(SCMP_CMP_EQ, 0), SCMP_A2(SCMP_CMP_EQ, 0))) != 0 ||
	    (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 2,
		 SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self),
		 SCMP_A2(SCMP_CMP_EQ, 0))) != 0)
		return r;
	if ((r = seccomp_rule_add(
		 ctx, SCMP_ACT_ALLOW, SCMP_SYS(getrlimit), 0)) != 0)
		return r;
	return 0;
}

/* trap_report: async-signal-safe report, then die of SIGSYS as the kill
 * action would (the signal is re-raised with its default action). */
static void
on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char msg[64], num[16];
	int n = 0, v = si->si_syscall;
	size_t k = 0;
	struct sigaction dfl;

	(void)uc;
	if (v < 0)
		v = 0;
	do
		num[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0 && n < (int)sizeof(num));
	memcpy(msg, "sandbox: forbidden syscall ", 27);
	k = 27;
	while (n > 0)
		msg[k++] = num[--n];
	msg[k++] = '\n';
	(void)!write(2, msg, k);
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(sig, &dfl, NULL);
	kill(getpid(), sig); /* delivered when the handler returns */
}

int
sandbox_apply(const struct sandbox_opts *o)
{
	struct sandbox_opts def = {0};
	scmp_filter_ctx ctx = NULL;
	struct sigaction sa;
	pid_t self = getpid();
	size_t i;
	int nr, e, r = SM_ERR_IO;

	if (o == NULL)
		o = &def;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		log_error("sandbox: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		goto out;
	}
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		log_error("sandbox: PR_SET_DUMPABLE 0: %s", strerror(errno));
		goto out;
	}
	if (o->trap_report) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = on_sigsys;
		sa.sa_flags = SA_SIGINFO;
		if (sigaction(SIGSYS, &sa, NULL) != 0) {
			log_error(
			    "sandbox: SIGSYS handler: %s", strerror(errno));
			goto out;
		}
	}
	ctx = seccomp_init(
	    o->trap_report ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS);
	if (ctx == NULL) {
		r = SM_ERR_NOMEM;
		goto out;
	}
	/* Threads that already exist get the same filter (or the load fails
	 * rather than leave one unfiltered). */
	if ((e = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) != 0) {
		log_error("sandbox: seccomp TSYNC: %s", strerror(-e));
		goto out;
	}
	for (i = 0; i < sizeof(allow) / sizeof(allow[0]); i++) {
		nr = seccomp_syscall_resolve_name(allow[i]);
		if (nr == __NR_SCMP_ERROR || nr < 0)
			continue; /* not a call on this architecture */
		if ((e = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0)) != 0) {
			log_error("sandbox: seccomp rule for %s: %s", allow[i],
			    strerror(-e));
			goto out;
		}
	}
	if (o->allow_drop &&
	    ((e = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setgroups), 1,
		  SCMP_A0(SCMP_CMP_EQ, 0))) != 0 ||
		(e = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setresgid),
		     3, SCMP_A0(SCMP_CMP_EQ, o->drop_gid),
		     SCMP_A1(SCMP_CMP_EQ, o->drop_gid),
		     SCMP_A2(SCMP_CMP_EQ, o->drop_gid))) != 0 ||
		(e = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setresuid),
		     3, SCMP_A0(SCMP_CMP_EQ, o->drop_uid),
		     SCMP_A1(SCMP_CMP_EQ, o->drop_uid),
		     SCMP_A2(SCMP_CMP_EQ, o->drop_uid))) != 0 ||
		(e = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setuid), 1,
		     SCMP_A0(SCMP_CMP_EQ, 0))) != 0 ||
		(e = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setgid), 1,
		     SCMP_A0(SCMP_CMP_EQ, 0))) != 0)) {
		log_error(
		    "sandbox: seccomp rules for the drop: %s", strerror(-e));
		goto out;
	}
	if ((e = add_arg_rules(ctx, self)) != 0) {
		log_error("sandbox: seccomp argument rules: %s", strerror(-e));
		goto out;
	}
#ifdef SM_SANDBOX_LSAN
	/* See the top of this file: the leak check runs now, not at exit. */
	__lsan_do_leak_check();
#endif
	if ((e = seccomp_load(ctx)) != 0) {
		log_error(
		    "sandbox: loading the seccomp filter: %s", strerror(-e));
		goto out;
	}
	r = 0;
out:
	if (ctx != NULL)
		seccomp_release(ctx);
	return r;
}

#else /* !__linux__ */

int
sandbox_apply(const struct sandbox_opts *o)
{
	(void)o;
	return SM_ERR_UNSUPP;
}

#endif
