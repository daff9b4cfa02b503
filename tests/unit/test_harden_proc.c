/*
 * Process-level tests for runtime hardening, against the built product
 * ($SM_BUILD/sealmesh, SM_BUILD defaults to "build"):
 *  - an unprivileged user cannot ptrace-attach to or read /proc/PID/mem of a
 *    sealmesh it started itself, while it can do both to an unhardened
 *    control process (so the denial is due to hardening, not the setup);
 *  - the files in /proc/PID of the node are owned by root (not dumpable),
 * TracerPid 0;
 *  - LD_PRELOAD makes env_clean false; --strict-env re-execs clean once and
 *    refuses when the environment is still dirty after the re-exec;
 *  - binary_hash equals sha256sum of the binary;
 *  - values that cannot be measured here are reported as null;
 *  - children inherit RLIMIT_CORE=0 and no_new_privs, and get a clean env.
 * Privilege-dependent parts are skipped when not run as root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>
#include <cmocka.h>

#include "core/util.h"
#include "harden/harden.h"

#define OUT_MAX 8192
#define WAIT_MS 20000

static char sm_path[4096], probe_path[4096], preload_lib[4096];

static char *base_env[] = {"PATH=/usr/bin:/bin", "HOME=/",
    /* An ASan build must tolerate LD_PRELOAD coming first. */
    "ASAN_OPTIONS=verify_asan_link_order=0", NULL};

/* Helpers */

static void
paths_setup(void)
{
	const char *b = getenv("SM_BUILD");
	char line[4096], *slash;
	FILE *f;

	if (b == NULL || *b == '\0')
		b = "build";
	snprintf(sm_path, sizeof(sm_path), "%s/sealmesh", b);
	snprintf(probe_path, sizeof(probe_path), "%s/fixtures/harden_probe", b);
	/* A harmless library that exists: our own libsodium. */
	if ((f = fopen("/proc/self/maps", "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, "libsodium") == NULL ||
		    (slash = strchr(line, '/')) == NULL)
			continue;
		slash[strcspn(slash, "\n")] = '\0';
		snprintf(preload_lib, sizeof(preload_lib), "%s", slash);
		break;
	}
	fclose(f);
}

/* base_env plus up to 4 more entries; static storage. */
static char **
env_with(const char *a, const char *b)
{
	static char *env[8];
	size_t n = 0, i;

	for (i = 0; base_env[i] != NULL; i++)
		env[n++] = base_env[i];
	if (a != NULL)
		env[n++] = (char *)a;
	if (b != NULL)
		env[n++] = (char *)b;
	env[n] = NULL;
	return env;
}

static int
drop_to_nobody(void)
{
	struct passwd *pw = getpwnam("nobody");
	uid_t uid = pw != NULL ? pw->pw_uid : 65534;
	gid_t gid = pw != NULL ? pw->pw_gid : 65534;

	if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
		return -1;
	return getuid() == uid && geteuid() == uid ? 0 : -1;
}

/* Read until EOF, a newline (when 'line'), or the deadline. */
static size_t
read_out(int fd, char *out, size_t len, bool line)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	uint64_t end = sm_now_ms() + WAIT_MS;
	size_t got = 0;
	ssize_t n;

	while (got < len - 1 && sm_now_ms() < end) {
		if (poll(&pfd, 1, (int)(end - sm_now_ms())) <= 0)
			break;
		n = read(fd, out + got, line ? 1 : len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (line && out[got - 1] == '\n')
			break;
	}
	out[got] = '\0';
	return got;
}

/* fork + execve with stdout on a pipe; returns the pid, '*fd' the pipe. */
static pid_t
spawn(char *const argv[], char *const envp[], int *fd)
{
	int p[2];
	pid_t pid;

	if (pipe(p) != 0)
		return -1;
	if ((pid = fork()) == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	close(p[1]);
	*fd = p[0];
	return pid;
}

/* Run to completion; returns the exit status (128+signal when killed). */
static int
run(char *const argv[], char *const envp[], char *out, size_t len)
{
	int fd, st;
	pid_t pid = spawn(argv, envp, &fd);

	assert_true(pid > 0);
	read_out(fd, out, len, false);
	close(fd);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static cJSON *
run_posture(char *const envp[], const char *arg, int *rc)
{
	char *argv[] = {sm_path, "posture", (char *)arg, NULL};
	char out[OUT_MAX];
	cJSON *j;

	*rc = run(argv, envp, out, sizeof(out));
	if (*rc != 0)
		return NULL;
	j = cJSON_Parse(out);
	if (j == NULL)
		print_error("not JSON: %s\n", out);
	assert_non_null(j);
	return j;
}

static bool
is_true(const cJSON *j, const char *k)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, k));
}

static bool
is_false(const cJSON *j, const char *k)
{
	return cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, k));
}

static bool
is_null(const cJSON *j, const char *k)
{
	return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, k));
}

/* Posture of a plain run */

static void
test_binary_hash_is_sha256sum(void **state)
{
	char cmd[4200], line[256], hex[POSTURE_HASH_LEN * 2 + 1];
	uint8_t h[POSTURE_HASH_LEN];
	uint64_t t0, ns;
	cJSON *j, *v;
	FILE *f;
	int rc, i;

	j = run_posture(env_with(NULL, NULL), NULL, &rc);
	assert_int_equal(rc, 0);
	v = cJSON_GetObjectItemCaseSensitive(j, "binary_hash");
	assert_true(cJSON_IsString(v));
	assert_int_equal(strlen(v->valuestring), 64);

	snprintf(cmd, sizeof(cmd), "sha256sum '%s'", sm_path);
	assert_non_null(f = popen(cmd, "r"));
	assert_non_null(fgets(line, sizeof(line), f));
	assert_int_equal(pclose(f), 0);
	line[64] = '\0';
	assert_string_equal(v->valuestring, line);

	/* The same function, timed in this process, for the record. */
	t0 = sm_now_ns();
	for (i = 0; i < 20; i++)
		assert_int_equal(harden_hash_file(sm_path, h), 0);
	ns = (sm_now_ns() - t0) / 20;
	sm_hex(hex, h, sizeof(h));
	assert_string_equal(hex, line);
	print_message(
	    "binary hash of %s: %.2f ms per run\n", sm_path, (double)ns / 1e6);
	cJSON_Delete(j);
}

static void
test_clean_run(void **state)
{
	cJSON *j;
	int rc;

	j = run_posture(env_with(NULL, NULL), NULL, &rc);
	assert_int_equal(rc, 0);
	assert_true(is_true(j, "env_clean"));
	assert_true(is_false(j, "env_reexec"));
	assert_true(is_false(j, "dumpable"));
	assert_true(is_true(j, "core_dumps_disabled"));
	assert_true(is_true(j, "no_new_privs"));
	assert_true(is_false(j, "debugger_attached"));
	assert_string_equal(cJSON_GetObjectItem(j, "os")->valuestring, "linux");
	cJSON_Delete(j);

	/* --strict-env with nothing to clean: no re-exec. */
	j = run_posture(env_with(NULL, NULL), "--strict-env", &rc);
	assert_int_equal(rc, 0);
	assert_true(is_true(j, "env_clean"));
	assert_true(is_false(j, "env_reexec"));
	cJSON_Delete(j);
}

static void
test_ld_preload(void **state)
{
	char pre[4200], out[OUT_MAX];
	char *argv[] = {sm_path, "posture", "--strict-env", NULL};
	cJSON *j;
	int rc;

	if (preload_lib[0] == '\0')
		skip();
	snprintf(pre, sizeof(pre), "LD_PRELOAD=%s", preload_lib);

	/* Reported, not hidden: the loader has already used it. */
	j = run_posture(env_with(pre, NULL), NULL, &rc);
	assert_int_equal(rc, 0);
	assert_true(is_false(j, "env_clean"));
	assert_true(is_false(j, "env_reexec"));
	assert_false(is_true(j, "hardened"));
	cJSON_Delete(j);

	j = run_posture(env_with("MALLOC_ARENA_MAX=2", NULL), NULL, &rc);
	assert_int_equal(rc, 0);
	assert_true(is_false(j, "env_clean"));
	cJSON_Delete(j);

	/* --strict-env: re-executed once, clean. */
	j = run_posture(env_with(pre, NULL), "--strict-env", &rc);
	assert_int_equal(rc, 0);
	assert_true(is_true(j, "env_clean"));
	assert_true(is_true(j, "env_reexec"));
	cJSON_Delete(j);

	/* Still dirty after the re-exec (the marker says it happened):
	 * refuse with status 1 and print nothing, never loop. */
	rc = run(argv, env_with(pre, HARDEN_REEXEC_ENV "=1"), out, sizeof(out));
	assert_int_equal(rc, 1);
	assert_string_equal(out, "");
}

/* Values this host cannot provide are null, never true. */
static void
test_unknown_stays_null(void **state)
{
	char buf[64];
	cJSON *j;
	int rc, fd;

	j = run_posture(env_with(NULL, NULL), NULL, &rc);
	assert_int_equal(rc, 0);
	/* macOS-only fields on Linux. */
	assert_true(is_null(j, "pt_deny_attach"));
	assert_true(is_null(j, "sip_enabled"));
	/* No keys in this command: nothing locked, nothing claimed. */
	assert_true(is_null(j, "memory_locked"));
	assert_true(is_false(j, "hardened"));
	if ((fd = open("/sys/kernel/security/lockdown", O_RDONLY)) < 0 ||
	    read(fd, buf, sizeof(buf)) <= 0)
		assert_true(is_null(j, "lockdown"));
	if (fd >= 0)
		close(fd);
	if (access("/proc/sys/kernel/yama/ptrace_scope", R_OK) != 0)
		assert_true(is_null(j, "ptrace_scope"));
	if (access("/sys/firmware/efi", F_OK) == 0 &&
	    access("/sys/firmware/efi/efivars/"
		   "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c",
		R_OK) != 0 &&
	    access("/sys/firmware/efi/vars", F_OK) != 0)
		assert_true(is_null(j, "secure_boot"));
	cJSON_Delete(j);
}

/* Children */

/* Run the probe's report from a child prepared by 'prep'. */
static void
child_report(bool early, bool setup, char *out, size_t len)
{
	struct harden_opts o = {.quiet = true};
	char *argv[] = {probe_path, "report", NULL};
	char *targv[] = {"test", NULL};
	char **envp;
	int p[2], st;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	if ((pid = fork()) == 0) {
		close(p[0]);
		dup2(p[1], 1);
		/* As a node would: harden itself, then spawn with the clean
		 * env and no pre-exec hook (uv_spawn). */
		if (early && harden_early(1, targv, &o, NULL) != 0)
			_exit(120);
		setenv("LD_PRELOAD", "/nonexistent.so", 1);
		if (harden_child_env_new(NULL, &envp) != 0)
			_exit(121);
		if (fork() == 0) {
			if (setup && harden_child_setup() != 0)
				_exit(122);
			execve(argv[0], argv, envp);
			_exit(127);
		}
		_exit(wait(&st) > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : 123);
	}
	close(p[1]);
	read_out(p[0], out, len, false);
	close(p[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void
test_child_limits_and_env(void **state)
{
	char out[OUT_MAX];

	/* Inherited from a hardened parent (the uv_spawn path). */
	child_report(true, false, out, sizeof(out));
	assert_non_null(strstr(out, "core 0 0\n"));
	assert_non_null(strstr(out, "nnp 1\n"));
	/* What cannot be protected: execve makes the child dumpable. */
	assert_non_null(strstr(out, "dumpable 1\n"));
	assert_null(strstr(out, "env LD_"));
	assert_non_null(strstr(out, "env PATH=/usr/bin:/bin\n"));
	assert_non_null(strstr(out, "env LANG=C.UTF-8\n"));

	/* Set in the child itself (the fork + exec path). */
	child_report(false, true, out, sizeof(out));
	assert_non_null(strstr(out, "core 0 0\n"));
	assert_non_null(strstr(out, "nnp 1\n"));
	assert_null(strstr(out, "env LD_"));
}

/* An unprivileged attacker */

struct attack {
	int started; /* the target printed its first line */
	int attach_errno; /* 0: PTRACE_ATTACH succeeded */
	int mem_open_errno; /* 0: /proc/PID/mem opened */
	int mem_read_errno; /* 0: one byte read; -1 not tried */
	long status_uid; /* owner of /proc/PID/status */
	long task_uid; /* the target's real uid (Uid: line) */
	long tracer_pid; /* TracerPid: line */
	char line[2048]; /* the target's first line */
};

static long
status_field(const char *status, const char *name)
{
	const char *p = strstr(status, name);

	return p != NULL ? strtol(p + strlen(name), NULL, 10) : -2;
}

/* As nobody: start 'argv' as our own child, then attack it. */
static void
attacker(char *const argv[], struct attack *a)
{
	char path[64], status[4096], maps[256];
	unsigned long addr = 0;
	struct stat st;
	int fd, w;
	uint8_t byte;
	pid_t pid;

	a->attach_errno = a->mem_open_errno = a->mem_read_errno = -1;
	if ((pid = spawn(argv, env_with(NULL, NULL), &fd)) <= 0)
		return;
	a->started = read_out(fd, a->line, sizeof(a->line), true) > 0;
	if (!a->started)
		goto out;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (stat(path, &st) == 0)
		a->status_uid = (long)st.st_uid;
	if ((w = open(path, O_RDONLY)) >= 0) {
		ssize_t n = read(w, status, sizeof(status) - 1);

		status[n > 0 ? n : 0] = '\0';
		a->task_uid = status_field(status, "\nUid:");
		a->tracer_pid = status_field(status, "\nTracerPid:");
		close(w);
	}

	errno = 0;
	if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) == 0) {
		a->attach_errno = 0;
		waitpid(pid, &w, __WALL);
		ptrace(PTRACE_DETACH, pid, NULL, NULL);
	} else {
		a->attach_errno = errno;
	}

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	if ((w = open(path, O_RDONLY)) >= 0) {
		ssize_t n = read(w, maps, sizeof(maps) - 1);

		maps[n > 0 ? n : 0] = '\0';
		addr = strtoul(maps, NULL, 16);
		close(w);
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	if ((w = open(path, O_RDONLY)) >= 0) {
		a->mem_open_errno = 0;
		/* Read at a mapped address when maps was readable, else at
		 * a typical PIE text address: either way must fail. */
		if (addr == 0)
			addr = 0x555555554000ul;
		errno = 0;
		a->mem_read_errno =
		    pread(w, &byte, 1, (off_t)addr) == 1 ? 0 : errno;
		close(w);
	} else {
		a->mem_open_errno = errno;
	}
out:
	kill(pid, SIGTERM);
	waitpid(pid, &w, 0);
	close(fd);
}

/* Fork, drop to nobody, attack; the result comes back over a pipe. */
static void
attack_as_nobody(char *const argv[], struct attack *a)
{
	int p[2], st;
	pid_t pid;

	memset(a, 0, sizeof(*a));
	assert_int_equal(pipe(p), 0);
	if ((pid = fork()) == 0) {
		struct attack r;

		close(p[0]);
		memset(&r, 0, sizeof(r));
		if (drop_to_nobody() != 0)
			_exit(3);
		if (access(argv[0], X_OK) != 0)
			_exit(4);
		attacker(argv, &r);
		_exit(write(p[1], &r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : 5);
	}
	close(p[1]);
	st = (int)read(p[0], a, sizeof(*a));
	close(p[0]);
	(void)st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 4) {
		print_message(
		    "%s is not executable by nobody; skipped\n", argv[0]);
		skip();
	}
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void
test_unprivileged_attack(void **state)
{
	char *node[] = {sm_path, "posture", "--hold", NULL};
	char *control[] = {probe_path, "hold", NULL};
	struct attack a;
	char scope[8] = "";
	bool control_ok;
	cJSON *j;
	int fd;

	if (geteuid() != 0) {
		print_message("not root: cannot switch to an unprivileged "
			      "user; skipped\n");
		skip();
	}
	if ((fd = open("/proc/sys/kernel/yama/ptrace_scope", O_RDONLY)) >= 0) {
		if (read(fd, scope, sizeof(scope) - 1) < 0)
			scope[0] = '\0';
		close(fd);
	}
	/* YAMA 0/1 let a process trace its own child; 2/3 need privilege. */
	control_ok = scope[0] == '\0' || scope[0] == '0' || scope[0] == '1';

	/* Control: an unhardened process, same user, same procedure. */
	attack_as_nobody(control, &a);
	assert_true(a.started);
	assert_string_equal(a.line, "ready\n");
	assert_int_equal(a.task_uid, a.status_uid); /* dumpable: own files */
	assert_int_equal(a.tracer_pid, 0);
	if (control_ok) {
		assert_int_equal(a.attach_errno, 0);
		assert_int_equal(a.mem_open_errno, 0);
		assert_int_equal(a.mem_read_errno, 0);
	} else {
		print_message(
		    "ptrace_scope %s: control attach not expected\n", scope);
	}

	/* The node. */
	attack_as_nobody(node, &a);
	assert_true(a.started);
	assert_non_null(j = cJSON_Parse(a.line));
	assert_true(is_false(j, "dumpable"));
	assert_true(is_false(j, "debugger_attached"));
	assert_true(is_true(j, "core_dumps_disabled"));
	assert_true(is_true(j, "no_new_privs"));
	cJSON_Delete(j);
	assert_true(a.task_uid > 0); /* runs as nobody ... */
	assert_int_equal(a.status_uid, 0); /* ... but /proc/PID is root's */
	assert_int_equal(a.tracer_pid, 0); /* nobody is tracing it */
	print_message("node as uid %ld: /proc owner %ld, attach errno %d, "
		      "mem open errno %d, mem read errno %d\n",
	    a.task_uid, a.status_uid, a.attach_errno, a.mem_open_errno,
	    a.mem_read_errno);
	assert_int_equal(a.attach_errno, EPERM);
	assert_true(a.mem_open_errno != 0 || a.mem_read_errno != 0);
	if (a.mem_open_errno != 0)
		assert_int_equal(a.mem_open_errno, EACCES);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_binary_hash_is_sha256sum),
	    cmocka_unit_test(test_clean_run),
	    cmocka_unit_test(test_ld_preload),
	    cmocka_unit_test(test_unknown_stays_null),
	    cmocka_unit_test(test_child_limits_and_env),
	    cmocka_unit_test(test_unprivileged_attack),
	};

	paths_setup();
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
