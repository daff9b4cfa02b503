/*
 * Measuring another process from outside: the signer measures its worker
 * through /proc instead of trusting the worker's own report. The two text
 * parsers are pure and bounded (fuzz/fuzz_procstatus.c); the I/O is in
 * posture_measure_pid() alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "harden/harden.h"

void
proc_facts_init(struct proc_facts *f)
{
	f->no_new_privs = TRI_UNKNOWN;
	f->seccomp_mode = -1;
	f->seccomp_filters = -1;
	f->tracer_pid = -1;
	f->core_soft = -1;
	f->core_hard = -1;
}

/* Parsers */

#define FACT_MAX_DIGITS 18 /* fits int64_t; the kernel prints far fewer */

/*
 * One unsigned decimal at s[*i..end), after optional spaces/tabs; the number
 * must end at a space, tab or end of line. Returns 0 and the value, or
 * SM_ERR_INVAL.
 */
static int
get_num(const char *s, size_t *i, size_t end, int64_t *v)
{
	size_t k = *i, digits = 0;
	int64_t n = 0;

	while (k < end && (s[k] == ' ' || s[k] == '\t'))
		k++;
	while (k < end && s[k] >= '0' && s[k] <= '9') {
		if (++digits > FACT_MAX_DIGITS)
			return SM_ERR_INVAL;
		n = n * 10 + (s[k] - '0');
		k++;
	}
	if (digits == 0 || (k < end && s[k] != ' ' && s[k] != '\t'))
		return SM_ERR_INVAL;
	*i = k;
	*v = n;
	return 0;
}

/* The rest of the line holds only spaces and tabs. */
static bool
rest_blank(const char *s, size_t i, size_t end)
{
	for (; i < end; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return false;
	return true;
}

enum { K_NNP, K_SECCOMP, K_FILTERS, K_TRACER, K_COUNT };
static const char *const status_keys[K_COUNT] = {
    "NoNewPrivs", "Seccomp", "Seccomp_filters", "TracerPid"};

int
procstatus_parse(const char *text, size_t len, struct proc_facts *out)
{
	struct proc_facts f = *out;
	bool seen[K_COUNT] = {false};
	size_t pos = 0, end, colon, klen, i;
	int64_t v;
	int k, r = SM_ERR_INVAL;

	if (len > PROCSTATUS_MAX)
		return SM_ERR_TOOBIG;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);

		end = nl != NULL ? (size_t)(nl - text) : len;
		const char *c = memchr(text + pos, ':', end - pos);
		if (c == NULL)
			goto next; /* not a "Key:" line: not ours */
		colon = (size_t)(c - text);
		klen = colon - pos;
		for (k = 0; k < K_COUNT; k++)
			if (strlen(status_keys[k]) == klen &&
			    memcmp(text + pos, status_keys[k], klen) == 0)
				break;
		if (k == K_COUNT)
			goto next;
		if (seen[k])
			goto out; /* one encoding: a key appears once */
		seen[k] = true;
		i = colon + 1;
		if (get_num(text, &i, end, &v) != 0 ||
		    !rest_blank(text, i, end))
			goto out;
		switch (k) {
		case K_NNP:
			if (v > 1)
				goto out;
			f.no_new_privs = v == 1 ? TRI_TRUE : TRI_FALSE;
			break;
		case K_SECCOMP:
			if (v > 2)
				goto out;
			f.seccomp_mode = (int)v;
			break;
		case K_FILTERS:
			if (v > 0x7fffffff)
				goto out;
			f.seccomp_filters = (long)v;
			break;
		case K_TRACER:
			if (v > 0x7fffffff) /* pid_t */
				goto out;
			f.tracer_pid = (long)v;
			break;
		}
next:
		pos = end + 1;
	}
	*out = f;
	r = 0;
out:
	return r;
}

#define CORE_ROW "Max core file size"

/* A limits column: a number or "unlimited". */
static int
get_limit(const char *s, size_t *i, size_t end, int64_t *v)
{
	size_t k = *i;

	while (k < end && (s[k] == ' ' || s[k] == '\t'))
		k++;
	if (end - k >= 9 && memcmp(s + k, "unlimited", 9) == 0 &&
	    (end - k == 9 || s[k + 9] == ' ' || s[k + 9] == '\t')) {
		*i = k + 9;
		*v = PROC_LIMIT_UNLIMITED;
		return 0;
	}
	*i = k;
	return get_num(s, i, end, v);
}

int
proclimits_parse(const char *text, size_t len, struct proc_facts *out)
{
	size_t pos = 0, end, i, rl = strlen(CORE_ROW);
	int64_t soft = -1, hard = -1;
	bool seen = false;

	if (len > PROCSTATUS_MAX)
		return SM_ERR_TOOBIG;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);

		end = nl != NULL ? (size_t)(nl - text) : len;
		/* The row name is followed by at least one space. */
		if (end - pos > rl && memcmp(text + pos, CORE_ROW, rl) == 0 &&
		    (text[pos + rl] == ' ' || text[pos + rl] == '\t')) {
			if (seen)
				return SM_ERR_INVAL;
			seen = true;
			i = pos + rl;
			if (get_limit(text, &i, end, &soft) != 0 ||
			    get_limit(text, &i, end, &hard) != 0)
				return SM_ERR_INVAL;
			/* Then the units column ("bytes") or nothing. */
		}
		pos = end + 1;
	}
	if (seen) {
		out->core_soft = soft;
		out->core_hard = hard;
	}
	return 0;
}

/* Measuring */

#ifdef __linux__

/* Read a /proc text file (at most PROCSTATUS_MAX bytes). Bytes or -1. */
static ssize_t
read_proc(const char *path, char *buf, size_t cap)
{
	ssize_t n, got = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	while ((size_t)got < cap) {
		n = read(fd, buf + got, cap - (size_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			got = -1;
			break;
		}
		if (n == 0)
			break;
		got += n;
	}
	close(fd);
	return got;
}

int
proc_facts_read(int pid, struct proc_facts *f)
{
	char *text = NULL;
	char path[64];
	ssize_t n;
	int r = SM_ERR_IO;

	proc_facts_init(f);
	if (pid <= 0)
		return SM_ERR_INVAL;
	if ((text = malloc(PROCSTATUS_MAX)) == NULL)
		return SM_ERR_NOMEM;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((n = read_proc(path, text, PROCSTATUS_MAX)) <= 0)
		goto out;
	if ((r = procstatus_parse(text, (size_t)n, f)) != 0)
		goto out;
	snprintf(path, sizeof(path), "/proc/%d/limits", pid);
	if ((n = read_proc(path, text, PROCSTATUS_MAX)) > 0 &&
	    proclimits_parse(text, (size_t)n, f) != 0)
		proc_facts_init(f); /* cannot happen with a real kernel */
out:
	free(text);
	return r;
}

int
posture_measure_pid(int pid, struct posture *out)
{
	struct proc_facts f;
	char path[64];
	int r;

	posture_init(out);
	if ((r = proc_facts_read(pid, &f)) != 0)
		return r;
	out->os = POSTURE_OS_LINUX;
	out->measured_by = POSTURE_MEASURED_SIGNER;
	out->no_new_privs = f.no_new_privs;
	if (f.seccomp_mode == 2)
		out->seccomp = TRI_TRUE;
	else if (f.seccomp_mode == 0)
		out->seccomp = TRI_FALSE;
	/* (strict mode 1 is not this filter: unknown) */
	if (f.tracer_pid >= 0)
		out->debugger_attached =
		    f.tracer_pid != 0 ? TRI_TRUE : TRI_FALSE;
	if (f.core_soft >= 0 && f.core_hard >= 0)
		out->core_dumps_disabled =
		    f.core_soft == 0 && f.core_hard == 0 ? TRI_TRUE : TRI_FALSE;
	/* Derived, see harden.h: never TRUE, FALSE only with a filter. */
	if (out->seccomp == TRI_TRUE && prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0)
		out->dumpable = TRI_FALSE;
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	out->binary_hash_known = harden_hash_file(path, out->binary_hash) == 0;
	out->hardened = posture_is_hardened(out);
	return 0;
}

#else

int
proc_facts_read(int pid, struct proc_facts *f)
{
	(void)pid;
	proc_facts_init(f);
	return SM_ERR_UNSUPP;
}

int
posture_measure_pid(int pid, struct posture *out)
{
	(void)pid;
	posture_init(out);
	return SM_ERR_UNSUPP;
}

#endif
