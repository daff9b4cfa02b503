/*
 * Runtime hardening and the measured security posture.
 *
 * harden_early() runs first thing in main(), before any thread, event loop or
 * library initialisation: it checks the environment the dynamic loader saw,
 * optionally re-executes the binary once with a clean environment
 * (--strict-env), makes the process non-dumpable, sets RLIMIT_CORE to 0, sets
 * no_new_privs, hashes the running executable and reads the host's ptrace,
 * lockdown and Secure Boot state. Every value is *measured*; a value that
 * could not be measured stays unknown and is never reported as true.
 *
 * Linux is the primary platform; the macOS parts (PT_DENY_ATTACH, P_TRACED,
 * SIP) are compiled only under __APPLE__. See README.md "Runtime hardening and
 * posture" for the fields and doc/THREAT-MODEL.md ("Runtime hardening") for
 * what this buys.
 */
#ifndef SM_HARDEN_HARDEN_H
#define SM_HARDEN_HARDEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

/* A measured boolean. Zero is unknown, so a zeroed struct claims nothing. */
enum tri { TRI_UNKNOWN = 0, TRI_FALSE, TRI_TRUE };

enum posture_os {
	POSTURE_OS_UNKNOWN = 0,
	POSTURE_OS_LINUX,
	POSTURE_OS_MACOS,
	POSTURE_OS_OTHER
};

/* Kernel lockdown (Linux, /sys/kernel/security/lockdown). */
enum lockdown {
	LOCKDOWN_UNKNOWN = 0,
	LOCKDOWN_NONE,
	LOCKDOWN_INTEGRITY,
	LOCKDOWN_CONFIDENTIALITY
};

/* Who measured a posture: the process itself, or its signer from outside
 * (posture_measure_pid). Zero is unknown. */
enum posture_measurer {
	POSTURE_MEASURED_UNKNOWN = 0,
	POSTURE_MEASURED_SELF = 1,
	POSTURE_MEASURED_SIGNER = 2,
};

#define POSTURE_HASH_LEN 32 /* SHA-256 of the running executable */

/*
 * The node's security posture. Fill with posture_init() (all unknown), never
 * by hand-written "true". 'hardened' is derived by posture_is_hardened() and
 * is never taken from the wire.
 */
struct posture {
	enum posture_os os;
	enum tri env_clean; /* no loader-injection variable at start */
	enum tri env_reexec; /* re-executed clean by --strict-env */
	enum tri dumpable; /* PR_GET_DUMPABLE != 0; FALSE is good */
	enum tri core_dumps_disabled; /* RLIMIT_CORE soft and hard are 0 */
	enum tri no_new_privs; /* PR_GET_NO_NEW_PRIVS == 1 */
	enum tri memory_locked; /* every key lock / mlockall succeeded */
	int ptrace_scope; /* YAMA 0..3, -1 unknown */
	enum tri ptrace_restricted; /* ptrace_scope >= 1 */
	enum lockdown lockdown;
	enum tri secure_boot; /* EFI SecureBoot variable == 1 */
	enum tri debugger_attached; /* TracerPid != 0 / P_TRACED */
	enum tri pt_deny_attach; /* macOS PT_DENY_ATTACH succeeded */
	enum tri sip_enabled; /* macOS System Integrity Protection */
	bool binary_hash_known;
	uint8_t binary_hash[POSTURE_HASH_LEN];
	enum tri seccomp; /* a seccomp filter is active (Seccomp: 2) */
	enum tri keys_separate; /* long-term keys live in a separate signer */
	enum posture_measurer measured_by; /* who measured these values */
	bool hardened; /* posture_is_hardened(), kept in sync by this module */
};

struct harden_opts {
	bool strict_env; /* also set when argv holds "--strict-env" */
	bool lock_all; /* mlockall(MCL_CURRENT|MCL_FUTURE); off by default */
	bool quiet; /* no warnings on stderr */
};

/* Marker variable that tells the re-executed process it was re-executed. */
#define HARDEN_REEXEC_ENV "SEALMESH_HARDEN_REEXEC"

/* Help text for the serve option; the posture is self-reported. */
#define HARDEN_HELP_REQUIRE_HARDENED                                           \
	"  --require-hardened  route only to hosts whose posture is "          \
	"hardened;\n"                                                          \
	"                      without it hardened hosts are preferred. The\n" \
	"                      posture is self-reported by each peer unless "  \
	"it\n"                                                                 \
	"                      is covered by a verified attestation.\n"
#define HARDEN_HELP_STRICT_ENV                                                 \
	"  --strict-env        if started with LD_PRELOAD, LD_AUDIT, GLIBC_\n" \
	"                      TUNABLES, MALLOC_* or similar set, re-exec "    \
	"once\n"                                                               \
	"                      with them removed, or refuse to start.\n"

/*
 * Call first in main(), before any thread exists. Scans argv for
 * "--strict-env" (up to a "--" terminator) because it must act before normal
 * option parsing; the option stays in argv for the subcommand to ignore.
 *
 * With a dirty environment and strict mode, execve()s /proc/self/exe once
 * with the dirty variables removed and HARDEN_REEXEC_ENV=1 added; it does not
 * return then. If the environment is still dirty after that re-exec, or the
 * re-exec fails, prints a message and returns SM_ERR_PERM: main() must exit
 * with status 1. Without strict mode a dirty environment is reported
 * (env_clean = false, warning on stderr) and the variables are removed from
 * this process's environment (they already did their work in the loader).
 *
 * Every hardening step is advisory: a failed step is recorded in the posture
 * and startup continues. Fills '*out' (may be NULL) and the global returned
 * by harden_posture(). Returns 0 or SM_ERR_PERM.
 */
int harden_early(int argc, char **argv, const struct harden_opts *opts,
    struct posture *out) SM_MUST_CHECK;

/*
 * The posture measured by harden_early(); all unknown before it ran. The
 * pointer stays valid for the life of the process. Written only from the main
 * thread (harden_early, harden_lock_key); read it from anywhere after the
 * keys are loaded.
 */
const struct posture *harden_posture(void);
/*
 * Privilege separation: the worker reports what its signer measured of it
 * (doc/PRIVSEP.md), not its own view. Replaces the global posture; call
 * from the main thread before the event loop.
 */
void harden_posture_adopt(const struct posture *p);

/*
 * mlock() key memory (e.g. a sodium_malloc'd secret, which libsodium tries to
 * lock but does not report) and record the result in the global posture:
 * memory_locked becomes TRUE after the first success, FALSE after any failure
 * and then stays FALSE. Call from the main thread before the event loop.
 * Returns 0 or SM_ERR_IO.
 */
int harden_lock_key(void *p, size_t len);

/*
 * Loader-injection variables in 'envp' (NULL-terminated "NAME=value" list):
 * LD_* (LD_PRELOAD, LD_AUDIT, LD_LIBRARY_PATH, ...), GLIBC_TUNABLES,
 * MALLOC_*, DYLD_* and OpenSSL's code-loading OPENSSL_CONF, OPENSSL_ENGINES,
 * OPENSSL_MODULES. Returns how many were found (0 = clean). When 'first' is
 * not NULL it receives the first offending entry (a pointer into envp).
 */
int harden_env_check(char *const *envp, const char **first);
/* True when one "NAME=value" entry is a loader-injection variable. */
bool harden_env_is_dirty(const char *entry);

/*
 * SHA-256 of a file's contents, read in 64 KiB blocks. 0, SM_ERR_IO.
 * harden_hash_self() hashes the executable that is running (/proc/self/exe
 * on Linux, so a binary replaced on disk after start is not what is hashed).
 */
int
harden_hash_file(const char *path, uint8_t out[POSTURE_HASH_LEN]) SM_MUST_CHECK;
int harden_hash_self(uint8_t out[POSTURE_HASH_LEN]) SM_MUST_CHECK;

/*
 * Child processes (llama-server). A minimal environment: PATH=/usr/bin:/bin,
 * HOME (this process's, else "/"), LANG=C.UTF-8, plus each "NAME=value" of
 * 'extra' (may be NULL) unless it is a loader-injection variable
 * (SM_ERR_PERM then). On success '*envp_out' is a NULL-terminated array for
 * uv_spawn/execve; free it with harden_child_env_free(). SM_ERR_NOMEM.
 */
int
harden_child_env_new(const char *const *extra, char ***envp_out) SM_MUST_CHECK;
void harden_child_env_free(char **envp);
/*
 * In a forked child before execve: RLIMIT_CORE = 0 (soft and hard) and
 * no_new_privs. Async-signal-safe (raw system calls only). Dumpability is
 * reset by execve and cannot be carried into the child; see
 * doc/THREAT-MODEL.md. With uv_spawn (no pre-exec hook) nothing extra is
 * needed: harden_early() already set this process's hard RLIMIT_CORE to 0 and
 * no_new_privs, and both are inherited across fork and execve.
 * Returns 0 or SM_ERR_IO.
 */
int harden_child_setup(void);

/* Posture helpers (posture.c). */

/* All fields unknown, ptrace_scope -1, no hash, not hardened. */
void posture_init(struct posture *p);
/*
 * The 'hardened' summary: true only when every essential field is measured
 * and good. Linux: env_clean, !dumpable, core_dumps_disabled, no_new_privs,
 * !debugger_attached, memory_locked, binary hash known. macOS: env_clean,
 * pt_deny_attach, core_dumps_disabled, !debugger_attached, sip_enabled,
 * memory_locked, binary hash known. Any other os: false. Host properties
 * (ptrace_scope, lockdown, secure_boot) are reported but not required: they
 * protect against root, which this posture does not claim to resist.
 */
bool posture_is_hardened(const struct posture *p);

/*
 * Wire encoding (goes into gossip field 37 and the attestation blob):
 *   version byte (POSTURE_WIRE_VERSION), then TLVs: tag u8, len u8, value.
 * Tags strictly ascending; unknown fields are omitted; unknown tags are
 * skipped by the parser; absent fields stay unknown. Layout in
 * doc/PROTOCOL.md "Security posture (field 37)". The encoding is deterministic
 * (same posture, same bytes).
 */
#define POSTURE_WIRE_VERSION 1
#define POSTURE_WIRE_MAX 512 /* parser refuses more (SM_ERR_TOOBIG) */

enum posture_tag {
	PT_TAG_OS = 1,
	PT_TAG_ENV_CLEAN = 2,
	PT_TAG_ENV_REEXEC = 3,
	PT_TAG_DUMPABLE = 4,
	PT_TAG_CORE_DUMPS_DISABLED = 5,
	PT_TAG_NO_NEW_PRIVS = 6,
	PT_TAG_MEMORY_LOCKED = 7,
	PT_TAG_PTRACE_SCOPE = 8,
	PT_TAG_PTRACE_RESTRICTED = 9,
	PT_TAG_LOCKDOWN = 10,
	PT_TAG_SECURE_BOOT = 11,
	PT_TAG_DEBUGGER_ATTACHED = 12,
	PT_TAG_PT_DENY_ATTACH = 13,
	PT_TAG_SIP_ENABLED = 14,
	PT_TAG_BINARY_HASH = 15,
	PT_TAG_SECCOMP = 16,
	PT_TAG_KEYS_SEPARATE = 17,
	PT_TAG_MEASURED_BY = 18,
};

/* Append the encoding of 'p' to 'out'. 0 or buf errors. */
int posture_write(const struct posture *p, struct buf *out) SM_MUST_CHECK;
/*
 * Decode; '*out' is posture_init()ed first and holds nothing on failure.
 * SM_ERR_INVAL (truncated, bad value, tags out of order), SM_ERR_UNSUPP
 * (other version), SM_ERR_TOOBIG. 'hardened' is recomputed from the fields.
 */
int
posture_parse(const uint8_t *in, size_t len, struct posture *out) SM_MUST_CHECK;

/*
 * JSON object for /api/status: tri → true / false / null (unknown is never
 * true), ptrace_scope number or null, lockdown and os strings or null,
 * binary_hash lowercase hex or null, hardened bool. NULL on allocation
 * failure; the caller owns the result (cJSON_Delete).
 */
struct cJSON;
struct cJSON *posture_to_json(const struct posture *p);

/* "true" / "false" / "unknown", for log lines. */
const char *tri_str(enum tri t);

/* Measuring another process from outside (inspect.c, Linux). */

/*
 * Facts read from /proc/PID/status and /proc/PID/limits. -1 (or TRI_UNKNOWN)
 * is "not in the text". core_* are bytes; PROC_LIMIT_UNLIMITED for
 * "unlimited".
 */
#define PROC_LIMIT_UNLIMITED INT64_MAX
#define PROCSTATUS_MAX (64 * 1024) /* parsers refuse more (SM_ERR_TOOBIG) */
struct proc_facts {
	enum tri no_new_privs; /* NoNewPrivs: 0/1 */
	int seccomp_mode; /* Seccomp: 0 none, 1 strict, 2 filter */
	long seccomp_filters; /* Seccomp_filters: count */
	long tracer_pid; /* TracerPid: 0 = not traced */
	int64_t core_soft, core_hard; /* limits "Max core file size" */
};

/* All fields unknown. */
void proc_facts_init(struct proc_facts *f);
/*
 * Pure, bounded parsers of the kernel's text (no NUL needed, at most
 * PROCSTATUS_MAX bytes). procstatus_parse() reads NoNewPrivs, Seccomp,
 * Seccomp_filters and TracerPid lines of /proc/PID/status;
 * proclimits_parse() the "Max core file size" row of /proc/PID/limits. Only
 * the fields they read are written; others keep their value (so both may
 * fill one struct). Missing lines leave a field unknown. SM_ERR_INVAL: a
 * known line with a malformed or out-of-range value, or a known key twice;
 * SM_ERR_TOOBIG. Format and vectors: doc/PROTOCOL.md "/proc status and
 * limits (posture_measure_pid)", tests/vectors/procstatus.json.
 */
int procstatus_parse(
    const char *text, size_t len, struct proc_facts *out) SM_MUST_CHECK;
int proclimits_parse(
    const char *text, size_t len, struct proc_facts *out) SM_MUST_CHECK;

/*
 * /proc/PID/status and /proc/PID/limits of process 'pid', parsed: the cheap
 * part of posture_measure_pid(), for a watch every second. SM_ERR_IO (gone),
 * SM_ERR_INVAL, SM_ERR_NOMEM.
 */
int proc_facts_read(int pid, struct proc_facts *f) SM_MUST_CHECK;

/*
 * Measure process 'pid' from outside (meant for a signer measuring the worker
 * it forked): no_new_privs, seccomp (TRUE only for a filter, mode 2),
 * debugger_attached (TracerPid), core_dumps_disabled (soft and hard core
 * limit 0), the SHA-256 of the binary behind /proc/PID/exe (needs
 * ptrace-read access: root, or CAP_SYS_PTRACE; else unknown), os linux,
 * measured_by SIGNER. 'dumpable' cannot be read from outside; it is derived:
 * FALSE when the target has a seccomp filter (mode 2) and the caller itself
 * is not dumpable — true of a worker forked (not exec'd) from a non-dumpable
 * signer that applied sandbox_apply(), which forbids PR_SET_DUMPABLE. The
 * caller vouches for that history by calling this on its own worker;
 * otherwise UNKNOWN. Every other field stays unknown; 'hardened' is computed.
 * 0; SM_ERR_IO when /proc/PID/status cannot be read (the process is gone).
 */
int posture_measure_pid(int pid, struct posture *out) SM_MUST_CHECK;

#endif
