/*
 * The worker sandbox (src/harden/sandbox.c) and the outside measurement
 * (src/harden/inspect.c), against real forked processes:
 *  - each forbidden call (execve, fork, raw clone without CLONE_THREAD,
 *    ptrace TRACEME, prctl PR_SET_DUMPABLE 1, an AF_PACKET socket) kills a
 *    sandboxed child with SIGSYS, while the same child without the sandbox
 *    makes the call and exits 0 (the control proves the filter kills);
 *  - a sandboxed child still does the worker's work: a thread, files in a
 *    temp dir (write, fsync, rename, read, unlink), a loopback TCP
 *    connection, a libuv loop with a timer, a thread-pool job and
 *    uv_getaddrinfo, and getaddrinfo("localhost");
 *  - posture_measure_pid() reads seccomp, no_new_privs, TracerPid and the
 *    binary hash of a sandboxed child (and seccomp false for a control);
 *  - as root: sandbox_drop_user("nobody") gives the user's ids and root
 *    cannot be regained; an unknown user is refused;
 *  - the /proc text parsers against tests/vectors/procstatus.json.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/if_ether.h>

#include <cmocka.h>
#include <uv.h>

#include "core/util.h"
#include "harden/harden.h"
#include "harden/sandbox.h"
#include "util_vectors.h"

#define VEC "tests/vectors/procstatus.json"

/* Exit codes a child uses to say which step failed (not a signal). */
#define X_APPLY 90 /* sandbox_apply failed */
#define X_CALL 91 /* the forbidden call returned instead of killing */

/* Run fn in a forked child, sandboxed or not; return the wait status. */
static int
run_child(int (*fn)(void), bool sandboxed)
{
	int st = 0;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (sandboxed && sandbox_apply(NULL) != 0)
			_exit(X_APPLY);
		_exit(fn());
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

static void
assert_killed_by_filter(int st)
{
	if (!WIFSIGNALED(st))
		fail_msg("sandboxed child was not killed: exit status %d",
		    WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	assert_int_equal(WTERMSIG(st), SIGSYS);
}

static void
assert_exit_ok(int st)
{
	if (!WIFEXITED(st))
		fail_msg("child died of signal %d", WTERMSIG(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* Forbidden calls: each child returns 0 when the call returned at all (the
 * unsandboxed control), so only the filter can make it die. */

static int
do_execve(void)
{
	char *argv[] = {"/bin/true", NULL}, *envp[] = {NULL};

	execve("/bin/true", argv, envp);
	return X_CALL;
}

/* A path that does not exist: an allowed execve returns ENOENT (exit
 * X_CALL), so a SIGSYS death can only come from the call itself, not from
 * the new program dying under the inherited filter. */
static int
do_execve_missing(void)
{
	char *argv[] = {"/nonexistent-sm/x", NULL}, *envp[] = {NULL};

	execve(argv[0], argv, envp);
	return X_CALL;
}

/* The new process exits at once and is not waited for (wait4 is not in the
 * allowlist either: waiting would kill a sandboxed child for the wrong
 * reason). */
static int
do_fork(void)
{
	pid_t p = fork();

	if (p == 0)
		_exit(0);
	return p > 0 ? 0 : X_CALL;
}

static int
do_raw_clone(void)
{
	/* clone(SIGCHLD) with no CLONE_THREAD: a new process. */
	long p = syscall(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L);

	if (p == 0)
		_exit(0);
	return p > 0 ? 0 : X_CALL;
}

static int
do_traceme(void)
{
	(void)ptrace(PTRACE_TRACEME, 0, NULL, NULL);
	return 0;
}

static int
do_set_dumpable(void)
{
	(void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	return 0;
}

static int
do_packet_socket(void)
{
	/* Root makes one in the control run; a user gets EPERM: either way
	 * the call returns. */
	int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));

	if (fd >= 0)
		close(fd);
	return 0;
}

static void
forbidden(int (*fn)(void))
{
	assert_exit_ok(run_child(fn, false));
	assert_killed_by_filter(run_child(fn, true));
}

static void
test_execve_killed(void **state)
{
	forbidden(do_execve);
	assert_int_equal(run_child(do_execve_missing, false), X_CALL << 8);
	assert_killed_by_filter(run_child(do_execve_missing, true));
}

static void
test_fork_killed(void **state)
{
	forbidden(do_fork);
	forbidden(do_raw_clone);
}

static void
test_ptrace_killed(void **state)
{
	forbidden(do_traceme);
}

static void
test_set_dumpable_killed(void **state)
{
	forbidden(do_set_dumpable);
}

static void
test_packet_socket_killed(void **state)
{
	forbidden(do_packet_socket);
}

/* clone3 is answered ENOSYS (glibc falls back to clone), not killed. */
static int
do_clone3(void)
{
	long r = syscall(SYS_clone3, NULL, 0L);

	return r == -1 && errno == ENOSYS ? 0 : X_CALL;
}

static void
test_clone3_enosys(void **state)
{
	assert_exit_ok(run_child(do_clone3, true));
}

/* The worker's ordinary work */

static char tmpdir[64];

static void *
thread_fn(void *arg)
{
	*(int *)arg = 42;
	return arg;
}

static int
files_ok(void)
{
	char a[128], b[128], got[8];
	int fd;

	snprintf(a, sizeof(a), "%s/state.tmp", tmpdir);
	snprintf(b, sizeof(b), "%s/state", tmpdir);
	if ((fd = open(a, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) <
		0 ||
	    fchmod(fd, 0600) != 0 || write(fd, "hello", 5) != 5 ||
	    fsync(fd) != 0 || close(fd) != 0 || rename(a, b) != 0)
		return 1;
	if ((fd = open(b, O_RDONLY | O_CLOEXEC)) < 0 ||
	    read(fd, got, sizeof(got)) != 5 || close(fd) != 0 ||
	    memcmp(got, "hello", 5) != 0 || unlink(b) != 0)
		return 2;
	return 0;
}

static int
tcp_ok(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	int l, c, s, r = 3;
	char got[4];

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 3;
	if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(l, 4) != 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &sl) != 0 ||
	    (c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		goto out;
	if (connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    (s = accept4(l, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		if (write(c, "ping", 4) == 4 && read(s, got, 4) == 4 &&
		    memcmp(got, "ping", 4) == 0)
			r = 0;
		close(s);
	}
	close(c);
out:
	close(l);
	return r;
}

static int uv_steps;

static void
on_timer(uv_timer_t *t)
{
	uv_steps |= 1;
}

static void
work_cb(uv_work_t *w)
{
	*(int *)w->data = 7;
}

static void
after_work_cb(uv_work_t *w, int status)
{
	if (status == 0 && *(int *)w->data == 7)
		uv_steps |= 2;
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	if (status == 0 && res != NULL)
		uv_steps |= 4;
	uv_freeaddrinfo(res);
}

static int
libuv_ok(void)
{
	uv_loop_t loop;
	uv_timer_t timer;
	uv_work_t work;
	uv_getaddrinfo_t gai;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
	int v = 0;

	if (uv_loop_init(&loop) != 0)
		return 4;
	uv_timer_init(&loop, &timer);
	uv_timer_start(&timer, on_timer, 5, 0);
	work.data = &v;
	if (uv_queue_work(&loop, &work, work_cb, after_work_cb) != 0 ||
	    uv_getaddrinfo(
		&loop, &gai, on_resolved, "localhost", "80", &hints) != 0)
		return 5;
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&timer, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	(void)uv_loop_close(&loop);
	return uv_steps == 7 ? 0 : 6;
}

static int
ordinary_work(void)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	pthread_t t;
	int v = 0, r;
	void *ret;

	if (pthread_create(&t, NULL, thread_fn, &v) != 0 ||
	    pthread_join(t, &ret) != 0 || v != 42)
		return 10;
	if ((r = files_ok()) != 0 || (r = tcp_ok()) != 0 ||
	    (r = libuv_ok()) != 0)
		return 10 + r;
	if (getaddrinfo("localhost", "443", &hints, &res) != 0 || res == NULL)
		return 20;
	freeaddrinfo(res);
	return 0;
}

static void
test_ordinary_work_allowed(void **state)
{
	assert_non_null(mkdtemp(strcpy(tmpdir, "/tmp/sm-sandbox-XXXXXX")));
	assert_exit_ok(run_child(ordinary_work, false));
	assert_exit_ok(run_child(ordinary_work, true));
	rmdir(tmpdir);
}

/* trap_report: the forbidden call is named on stderr, then SIGSYS. */
static void
test_trap_report(void **state)
{
	struct sandbox_opts o = {.trap_report = true};
	char out[256] = {0}, want[64];
	int pfd[2], st;
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(pfd), 0);
	fflush(NULL);
	assert_true((pid = fork()) >= 0);
	if (pid == 0) {
		dup2(pfd[1], 2);
		if (sandbox_apply(&o) != 0)
			_exit(X_APPLY);
		_exit(do_execve());
	}
	close(pfd[1]);
	n = read(pfd[0], out, sizeof(out) - 1);
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_killed_by_filter(st);
	assert_true(n > 0);
	snprintf(want, sizeof(want), "sandbox: forbidden syscall %d\n",
	    (int)SYS_execve);
	assert_non_null(strstr(out, want));
}

/* Measuring from outside */

/* A child that waits (sandboxed or not) until the parent closes 'hold'. */
static pid_t
start_waiting_child(bool sandboxed, int *hold_w)
{
	int ready[2], hold[2];
	char c;
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(hold), 0);
	fflush(NULL);
	assert_true((pid = fork()) >= 0);
	if (pid == 0) {
		close(ready[0]);
		close(hold[1]);
		if (sandboxed && sandbox_apply(NULL) != 0)
			_exit(X_APPLY);
		(void)!write(ready[1], "r", 1);
		(void)!read(hold[0], &c, 1);
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	*hold_w = hold[1];
	return pid;
}

static void
stop_waiting_child(pid_t pid, int hold_w)
{
	int st;

	close(hold_w);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_exit_ok(st);
}

static void
test_measure_pid(void **state)
{
	uint8_t self_hash[POSTURE_HASH_LEN];
	struct posture p;
	int hold;
	pid_t pid;

	assert_int_equal(harden_hash_self(self_hash), 0);

	pid = start_waiting_child(true, &hold);
	assert_int_equal(posture_measure_pid(pid, &p), 0);
	stop_waiting_child(pid, hold);
	assert_int_equal(p.os, POSTURE_OS_LINUX);
	assert_int_equal(p.measured_by, POSTURE_MEASURED_SIGNER);
	assert_int_equal(p.seccomp, TRI_TRUE);
	assert_int_equal(p.no_new_privs, TRI_TRUE);
	assert_int_equal(p.debugger_attached, TRI_FALSE);
	assert_int_not_equal(p.core_dumps_disabled, TRI_UNKNOWN);
	/* The test process is dumpable: nothing can be derived. */
	assert_int_equal(p.dumpable, TRI_UNKNOWN);
	assert_int_equal(p.keys_separate, TRI_UNKNOWN);
	if (geteuid() == 0) {
		assert_true(p.binary_hash_known);
		assert_memory_equal(p.binary_hash, self_hash, POSTURE_HASH_LEN);
	}

	/* Control: a child without the sandbox. */
	pid = start_waiting_child(false, &hold);
	assert_int_equal(posture_measure_pid(pid, &p), 0);
	stop_waiting_child(pid, hold);
	assert_int_equal(p.seccomp, TRI_FALSE);
	assert_int_equal(p.debugger_attached, TRI_FALSE);

	/* Gone: an error, nothing claimed. */
	assert_int_not_equal(posture_measure_pid(pid, &p), 0);
	assert_int_equal(p.seccomp, TRI_UNKNOWN);
	assert_false(p.binary_hash_known);
}

/* The derived 'dumpable': a non-dumpable "signer" measuring its sandboxed
 * worker gets FALSE. Runs in a child so the test process stays as it is. */
static int
signer_measures(void)
{
	struct posture p;
	int hold;
	pid_t pid;

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return 30;
	pid = start_waiting_child(true, &hold);
	if (posture_measure_pid(pid, &p) != 0)
		return 31;
	stop_waiting_child(pid, hold);
	return p.dumpable == TRI_FALSE && p.seccomp == TRI_TRUE ? 0 : 32;
}

static void
test_measure_dumpable_derived(void **state)
{
	assert_exit_ok(run_child(signer_measures, false));
}

/* Dropping privileges */

static const char *drop_user = "nobody";

static int
drop_ok(void)
{
	struct passwd *pw = getpwnam(drop_user);
	uid_t r, e, s;

	if (pw == NULL)
		return 40;
	if (sandbox_drop_user(drop_user) != 0)
		return 41;
	if (getresuid(&r, &e, &s) != 0 || r != pw->pw_uid || e != pw->pw_uid ||
	    s != pw->pw_uid || getgid() != pw->pw_gid)
		return 42;
	if (setuid(0) == 0 || setgid(0) == 0 || setgroups(0, NULL) == 0)
		return 43;
	/* The sandbox still applies after the drop (the worker's order). */
	if (sandbox_apply(NULL) != 0)
		return 44;
	return 0;
}

static int
drop_unknown(void)
{
	int r = sandbox_drop_user("sm-no-such-user-9f3c");

	/* Refused, and still root. */
	return r == SM_ERR_NOTFOUND && geteuid() == 0 ? 0 : 45;
}

static int
drop_root_refused(void)
{
	return sandbox_drop_user("root") == SM_ERR_NOTFOUND ? 0 : 46;
}

static void
test_drop_user(void **state)
{
	if (geteuid() != 0) {
		/* Not root: a no-op. */
		assert_int_equal(sandbox_drop_user("nobody"), 0);
		skip();
	}
	assert_exit_ok(run_child(drop_ok, false));
	assert_exit_ok(run_child(drop_unknown, false));
	assert_exit_ok(run_child(drop_root_refused, false));
}

/* /proc text parsers: vectors */

static void
test_proc_vectors(void **state)
{
	cJSON *j = vec_load(VEC), *v;
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "vectors");
	int n = 0;

	assert_true(cJSON_IsArray(arr));
	cJSON_ArrayForEach(v, arr)
	{
		const char *kind =
		    cJSON_GetObjectItemCaseSensitive(v, "kind")->valuestring;
		const char *text =
		    cJSON_GetObjectItemCaseSensitive(v, "text")->valuestring;
		const cJSON *want = cJSON_GetObjectItemCaseSensitive(v, "want");
		const cJSON *err = cJSON_GetObjectItemCaseSensitive(v, "error");
		struct proc_facts f;
		int r;

		proc_facts_init(&f);
		if (strcmp(kind, "status") == 0)
			r = procstatus_parse(text, strlen(text), &f);
		else
			r = proclimits_parse(text, strlen(text), &f);
		if (err != NULL) {
			assert_int_equal(r, SM_ERR_INVAL);
			n++;
			continue;
		}
		assert_int_equal(r, 0);
#define WANT(name) cJSON_GetObjectItemCaseSensitive(want, name)->valuedouble
		assert_int_equal(f.no_new_privs, (int)WANT("no_new_privs"));
		assert_int_equal(f.seccomp_mode, (int)WANT("seccomp_mode"));
		assert_int_equal(
		    f.seccomp_filters, (long)WANT("seccomp_filters"));
		assert_int_equal(f.tracer_pid, (long)WANT("tracer_pid"));
		if (cJSON_IsString(
			cJSON_GetObjectItemCaseSensitive(want, "core_hard")))
			assert_true(f.core_hard == PROC_LIMIT_UNLIMITED);
		else
			assert_int_equal(
			    f.core_hard, (int64_t)WANT("core_hard"));
		assert_int_equal(f.core_soft, (int64_t)WANT("core_soft"));
#undef WANT
		n++;
	}
	assert_true(n >= 8);
	cJSON_Delete(j);
}

/* Bounds: oversize refused, and a real /proc/self/status parses. */
static void
test_proc_bounds(void **state)
{
	static char big[PROCSTATUS_MAX + 1];
	struct proc_facts f;
	char buf[8192];
	ssize_t n;
	int fd;

	memset(big, 'a', sizeof(big));
	proc_facts_init(&f);
	assert_int_equal(procstatus_parse(big, sizeof(big), &f), SM_ERR_TOOBIG);
	assert_int_equal(proclimits_parse(big, sizeof(big), &f), SM_ERR_TOOBIG);
	assert_int_equal(procstatus_parse(big, sizeof(big) - 1, &f), 0);
	assert_int_equal(f.seccomp_mode, -1);

	assert_true((fd = open("/proc/self/status", O_RDONLY)) >= 0);
	assert_true((n = read(fd, buf, sizeof(buf))) > 0);
	close(fd);
	assert_int_equal(procstatus_parse(buf, (size_t)n, &f), 0);
	assert_int_equal(f.seccomp_mode, 0);
	assert_true(f.tracer_pid >= 0);
	assert_int_not_equal(f.no_new_privs, TRI_UNKNOWN);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_execve_killed),
	    cmocka_unit_test(test_fork_killed),
	    cmocka_unit_test(test_ptrace_killed),
	    cmocka_unit_test(test_set_dumpable_killed),
	    cmocka_unit_test(test_packet_socket_killed),
	    cmocka_unit_test(test_clone3_enosys),
	    cmocka_unit_test(test_ordinary_work_allowed),
	    cmocka_unit_test(test_trap_report),
	    cmocka_unit_test(test_measure_pid),
	    cmocka_unit_test(test_measure_dumpable_derived),
	    cmocka_unit_test(test_drop_user),
	    cmocka_unit_test(test_proc_vectors),
	    cmocka_unit_test(test_proc_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
