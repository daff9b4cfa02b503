/*
 * Runtime hardening at start: environment check and strict re-exec, process
 * flags, and the measurements that make up the posture. Runs before any
 * thread exists, so it may edit 'environ' and execve() freely.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#ifdef __linux__
#include <sys/prctl.h>
#endif
#ifdef __APPLE__
#include <limits.h>
#include <mach-o/dyld.h>
#include <sys/proc.h>
#include <sys/ptrace.h>
#include <sys/sysctl.h>
#include <sys/types.h>
#endif

#include "core/log.h"
#include "core/util.h"
#include "harden/harden.h"

extern char **environ;

#define HASH_BLOCK (64 * 1024)

static struct posture g_posture = {
    .ptrace_scope = -1,
};

const struct posture *
harden_posture(void)
{
	return &g_posture;
}

void
harden_posture_adopt(const struct posture *p)
{
	g_posture = *p;
}

const char *
tri_str(enum tri t)
{
	return t == TRI_TRUE ? "true" : t == TRI_FALSE ? "false" : "unknown";
}

static enum tri
tri_of(bool v)
{
	return v ? TRI_TRUE : TRI_FALSE;
}

/* Environment */

static bool
has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "NAME=..." starts with exactly 'name' followed by '=' or the end. */
static bool
is_name(const char *entry, const char *name)
{
	size_t n = strlen(name);

	return strncmp(entry, name, n) == 0 &&
	    (entry[n] == '=' || entry[n] == '\0');
}

bool
harden_env_is_dirty(const char *e)
{
	/*
	 * LD_* covers everything ld.so reads (LD_PRELOAD, LD_AUDIT,
	 * LD_LIBRARY_PATH, LD_DEBUG, LD_PROFILE, ...); MALLOC_* and
	 * GLIBC_TUNABLES are read by glibc at start; DYLD_* by macOS dyld.
	 * The OPENSSL_* names make libcrypto dlopen() code.
	 */
	return has_prefix(e, "LD_") || has_prefix(e, "MALLOC_") ||
	    has_prefix(e, "DYLD_") || is_name(e, "GLIBC_TUNABLES") ||
	    is_name(e, "OPENSSL_CONF") || is_name(e, "OPENSSL_ENGINES") ||
	    is_name(e, "OPENSSL_MODULES");
}

int
harden_env_check(char *const *envp, const char **first)
{
	int n = 0;

	if (first != NULL)
		*first = NULL;
	for (; envp != NULL && *envp != NULL; envp++) {
		if (!harden_env_is_dirty(*envp))
			continue;
		if (n++ == 0 && first != NULL)
			*first = *envp;
	}
	return n;
}

/* Length of the NAME part of "NAME=value", for messages without values. */
static int
name_len(const char *entry)
{
	const char *eq = strchr(entry, '=');

	return (int)(eq != NULL ? (size_t)(eq - entry) : strlen(entry));
}

/* Drop dirty entries and the re-exec marker from environ, in place. */
static void
env_scrub(void)
{
	char **r, **w;

	if (environ == NULL)
		return;
	for (r = w = environ; *r != NULL; r++) {
		if (harden_env_is_dirty(*r) || is_name(*r, HARDEN_REEXEC_ENV))
			continue;
		*w++ = *r;
	}
	*w = NULL;
}

static int
self_exe_path(char *out, size_t len)
{
#if defined(__linux__)
	if (len < sizeof("/proc/self/exe"))
		return SM_ERR_TOOBIG;
	memcpy(out, "/proc/self/exe", sizeof("/proc/self/exe"));
	return 0;
#elif defined(__APPLE__)
	char raw[4096];
	uint32_t n = sizeof(raw);

	if (_NSGetExecutablePath(raw, &n) != 0 || len < PATH_MAX ||
	    realpath(raw, out) == NULL)
		return SM_ERR_IO;
	return 0;
#else
	return SM_ERR_UNSUPP;
#endif
}

/*
 * execve() this binary with the dirty variables removed and the marker set.
 * Returns only on failure.
 */
static int
reexec_clean(char **argv)
{
	static char marker[] = HARDEN_REEXEC_ENV "=1";
	char path[4096];
	char **envp = NULL, **e;
	size_t n = 0;
	int r;

	if ((r = self_exe_path(path, sizeof(path))) != 0)
		return r;
	for (e = environ; e != NULL && *e != NULL; e++)
		n++;
	if ((envp = calloc(n + 2, sizeof(*envp))) == NULL)
		return SM_ERR_NOMEM;
	n = 0;
	for (e = environ; e != NULL && *e != NULL; e++) {
		if (!harden_env_is_dirty(*e) && !is_name(*e, HARDEN_REEXEC_ENV))
			envp[n++] = *e;
	}
	envp[n++] = marker;
	envp[n] = NULL;
	fflush(NULL);
	execve(path, argv, envp);
	r = SM_ERR_IO;
	log_error(
	    "--strict-env: re-exec of %s failed: %s", path, strerror(errno));
	free(envp);
	return r;
}

/* Reads */

/* Read up to len-1 bytes of a small file, NUL-terminated. Returns bytes. */
static ssize_t
read_small(const char *path, char *out, size_t len)
{
	ssize_t n, got = 0;
	int fd;

	out[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	while ((size_t)got < len - 1) {
		n = read(fd, out + got, len - 1 - (size_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	close(fd);
	out[got] = '\0';
	return got;
}

int
harden_hash_file(const char *path, uint8_t out[POSTURE_HASH_LEN])
{
	crypto_hash_sha256_state st;
	uint8_t *block = NULL;
	ssize_t n;
	int fd = -1, r = SM_ERR_IO;

	memset(out, 0, POSTURE_HASH_LEN);
	if ((block = malloc(HASH_BLOCK)) == NULL) {
		r = SM_ERR_NOMEM;
		goto out;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		goto out;
	crypto_hash_sha256_init(&st);
	for (;;) {
		n = read(fd, block, HASH_BLOCK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		crypto_hash_sha256_update(&st, block, (size_t)n);
	}
	crypto_hash_sha256_final(&st, out);
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	free(block);
	return r;
}

int
harden_hash_self(uint8_t out[POSTURE_HASH_LEN])
{
	char path[4096];
	int r;

	memset(out, 0, POSTURE_HASH_LEN);
	if ((r = self_exe_path(path, sizeof(path))) != 0)
		return r;
	return harden_hash_file(path, out);
}

static enum tri
measure_core_limit(void)
{
	struct rlimit rl = {0, 0};

	(void)setrlimit(RLIMIT_CORE, &rl);
	if (getrlimit(RLIMIT_CORE, &rl) != 0)
		return TRI_UNKNOWN;
	return tri_of(rl.rlim_cur == 0 && rl.rlim_max == 0);
}

#ifdef __linux__
static void
measure_ptrace_scope(struct posture *p)
{
	char buf[32], *end;
	long v;
	struct stat st;

	if (read_small("/proc/sys/kernel/yama/ptrace_scope", buf, sizeof(buf)) >
	    0) {
		errno = 0;
		v = strtol(buf, &end, 10);
		if (errno == 0 && end != buf && v >= 0 && v <= 255) {
			p->ptrace_scope = (int)v;
			p->ptrace_restricted = tri_of(v >= 1);
		}
		return;
	}
	/*
	 * No YAMA in a kernel whose sysctl tree is visible: classic ptrace
	 * rules, which is scope 0 without the number.
	 */
	if (errno == ENOENT && stat("/proc/sys/kernel/osrelease", &st) == 0 &&
	    stat("/proc/sys/kernel/yama", &st) != 0 && errno == ENOENT)
		p->ptrace_restricted = TRI_FALSE;
}

/* "none [integrity] confidentiality": the bracketed word is active. */
static enum lockdown
measure_lockdown(void)
{
	char buf[128];
	const char *open;

	if (read_small("/sys/kernel/security/lockdown", buf, sizeof(buf)) <= 0)
		return LOCKDOWN_UNKNOWN;
	if ((open = strchr(buf, '[')) == NULL)
		return LOCKDOWN_UNKNOWN;
	open++;
	if (strncmp(open, "none]", 5) == 0)
		return LOCKDOWN_NONE;
	if (strncmp(open, "integrity]", 10) == 0)
		return LOCKDOWN_INTEGRITY;
	if (strncmp(open, "confidentiality]", 16) == 0)
		return LOCKDOWN_CONFIDENTIALITY;
	return LOCKDOWN_UNKNOWN;
}

/* True when 'dir' can be listed and has at least one entry. */
static bool
dir_nonempty(const char *dir)
{
	struct dirent *de;
	bool found = false;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return false;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0) {
			found = true;
			break;
		}
	}
	closedir(d);
	return found;
}

#define EFI_GLOBAL_GUID "8be4df61-93ca-11d2-aa0d-00e098032b8c"

static enum tri
measure_secure_boot(void)
{
	char buf[16];
	struct stat st;
	ssize_t n;

	/* efivarfs: 4 bytes of attributes, then the 1-byte value. */
	n = read_small("/sys/firmware/efi/efivars/SecureBoot-" EFI_GLOBAL_GUID,
	    buf, sizeof(buf));
	if (n == 5 && (buf[4] == 0 || buf[4] == 1))
		return tri_of(buf[4] == 1);
	/* Legacy sysfs efivars: the value alone. */
	n = read_small("/sys/firmware/efi/vars/SecureBoot-" EFI_GLOBAL_GUID
		       "/data",
	    buf, sizeof(buf));
	if (n == 1 && (buf[0] == 0 || buf[0] == 1))
		return tri_of(buf[0] == 1);
	/*
	 * Not booted through UEFI at all: no Secure Boot. Only when the
	 * firmware directory is populated (a container's empty mask over
	 * /sys/firmware proves nothing).
	 */
	if (stat("/sys/firmware/efi", &st) != 0 && errno == ENOENT &&
	    dir_nonempty("/sys/firmware"))
		return TRI_FALSE;
	return TRI_UNKNOWN;
}

static enum tri
measure_tracer(void)
{
	char buf[4096], *line, *end;
	long pid;

	if (read_small("/proc/self/status", buf, sizeof(buf)) <= 0)
		return TRI_UNKNOWN;
	if ((line = strstr(buf, "\nTracerPid:")) == NULL)
		return TRI_UNKNOWN;
	line += strlen("\nTracerPid:");
	errno = 0;
	pid = strtol(line, &end, 10);
	if (errno != 0 || end == line || pid < 0)
		return TRI_UNKNOWN;
	return tri_of(pid != 0);
}

static void
measure_os(struct posture *p)
{
	int v;

	p->os = POSTURE_OS_LINUX;
	/*
	 * Not dumpable: no same-user ptrace attach, no /proc/PID/mem or
	 * environ reads by others, no core dump even with a piped
	 * core_pattern (which ignores RLIMIT_CORE).
	 */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	v = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	p->dumpable = v < 0 ? TRI_UNKNOWN : tri_of(v != 0);
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	v = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	p->no_new_privs = v < 0 ? TRI_UNKNOWN : tri_of(v == 1);
	measure_ptrace_scope(p);
	p->lockdown = measure_lockdown();
	p->secure_boot = measure_secure_boot();
	p->debugger_attached = measure_tracer();
}
#elif defined(__APPLE__)
static enum tri
measure_sip(void)
{
	char line[256];
	enum tri t = TRI_UNKNOWN;
	FILE *f;

	/* Before any thread exists, so popen()'s fork is safe. */
	if ((f = popen("/usr/bin/csrutil status 2>/dev/null", "r")) == NULL)
		return TRI_UNKNOWN;
	if (fgets(line, sizeof(line), f) != NULL &&
	    strstr(line, "System Integrity Protection status:") != NULL) {
		if (strstr(line, "status: enabled.") != NULL)
			t = TRI_TRUE;
		else if (strstr(line, "disabled") != NULL ||
		    strstr(line, "Custom Configuration") != NULL)
			t = TRI_FALSE;
	}
	if (pclose(f) != 0)
		t = TRI_UNKNOWN;
	return t;
}

static enum tri
measure_tracer(void)
{
	int mib[4] = {CTL_KERN, KERN_PROC, KERN_PROC_PID, (int)getpid()};
	struct kinfo_proc kp;
	size_t len = sizeof(kp);

	memset(&kp, 0, sizeof(kp));
	if (sysctl(mib, 4, &kp, &len, NULL, 0) != 0 || len != sizeof(kp))
		return TRI_UNKNOWN;
	return tri_of((kp.kp_proc.p_flag & P_TRACED) != 0);
}

static void
measure_os(struct posture *p)
{
	p->os = POSTURE_OS_MACOS;
	/*
	 * PT_DENY_ATTACH makes a process that is already traced exit; as on
	 * Linux, a tracer present at start is reported, not acted on.
	 */
	p->debugger_attached = measure_tracer();
	if (p->debugger_attached == TRI_TRUE)
		p->pt_deny_attach = TRI_FALSE;
	else
		p->pt_deny_attach =
		    tri_of(ptrace(PT_DENY_ATTACH, 0, 0, 0) == 0);
	p->sip_enabled = measure_sip();
}
#else
static void
measure_os(struct posture *p)
{
	p->os = POSTURE_OS_OTHER;
}
#endif

/* Entry */

static bool
argv_has(int argc, char **argv, const char *opt)
{
	int i;

	for (i = 1; i < argc && argv[i] != NULL; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], opt) == 0)
			return true;
	}
	return false;
}

int
harden_early(
    int argc, char **argv, const struct harden_opts *opts, struct posture *out)
{
	struct posture *p = &g_posture;
	const char *first = NULL, *marker;
	bool strict, quiet, reexeced;
	uint64_t t0;
	int dirty;

	posture_init(p);
	if (out != NULL)
		posture_init(out);
	strict = (opts != NULL && opts->strict_env) ||
	    argv_has(argc, argv, "--strict-env");
	quiet = opts != NULL && opts->quiet;
	marker = getenv(HARDEN_REEXEC_ENV);
	reexeced = marker != NULL && strcmp(marker, "1") == 0;

	/* 1. Environment, before anything reads it. */
	dirty = harden_env_check(environ, &first);
	if (dirty > 0 && strict) {
		if (reexeced) {
			log_error(
			    "--strict-env: the environment still holds "
			    "%.*s after a clean re-exec; refusing to start",
			    name_len(first), first);
			return SM_ERR_PERM;
		}
		(void)reexec_clean(argv);
		log_error("--strict-env: started with %.*s set and could not "
			  "re-exec with a clean environment; refusing to start",
		    name_len(first), first);
		return SM_ERR_PERM;
	}
	if (dirty > 0 && !quiet)
		log_warn("started with %.*s%s set: the loader and libc have "
			 "already used it, so env_clean=false (removed now; "
			 "--strict-env re-executes clean instead)",
		    name_len(first), first, dirty > 1 ? " and others" : "");
	env_scrub();
	p->env_clean = tri_of(dirty == 0);
	p->env_reexec = tri_of(reexeced && strict);
	p->measured_by = POSTURE_MEASURED_SELF;

	/* 2. The running executable, read once, before the event loop. */
	if (sodium_init() >= 0) {
		t0 = sm_now_ns();
		p->binary_hash_known = harden_hash_self(p->binary_hash) == 0;
		log_debug("harden: binary hash %s in %.2f ms",
		    p->binary_hash_known ? "computed" : "failed",
		    (double)(sm_now_ns() - t0) / 1e6);
	}

	/* 3. Process flags and host measurements. */
	p->core_dumps_disabled = measure_core_limit();
	measure_os(p);
	if (opts != NULL && opts->lock_all)
		p->memory_locked =
		    tri_of(mlockall(MCL_CURRENT | MCL_FUTURE) == 0);

	p->hardened = posture_is_hardened(p);
	if (out != NULL)
		*out = *p;
	return 0;
}

int
harden_lock_key(void *ptr, size_t len)
{
	struct posture *p = &g_posture;
	int ok = mlock(ptr, len) == 0;

	if (!ok)
		log_warn("harden: mlock of key memory failed: %s "
			 "(RLIMIT_MEMLOCK?)",
		    strerror(errno));
	if (!ok)
		p->memory_locked = TRI_FALSE;
	else if (p->memory_locked == TRI_UNKNOWN)
		p->memory_locked = TRI_TRUE;
	p->hardened = posture_is_hardened(p);
	return ok ? 0 : SM_ERR_IO;
}
