/*
 * Unit tests for src/harden: the posture wire encoding, JSON, the hardened
 * rule, the file hash and the environment checks. No privileges needed;
 * process-level checks live in test_harden_proc.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cJSON.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "core/buf.h"
#include "core/err.h"
#include "harden/harden.h"

/* A good Linux posture, every field measured. */
static void
full_posture(struct posture *p)
{
	int i;

	posture_init(p);
	p->os = POSTURE_OS_LINUX;
	p->env_clean = TRI_TRUE;
	p->env_reexec = TRI_FALSE;
	p->dumpable = TRI_FALSE;
	p->core_dumps_disabled = TRI_TRUE;
	p->no_new_privs = TRI_TRUE;
	p->memory_locked = TRI_TRUE;
	p->ptrace_scope = 1;
	p->ptrace_restricted = TRI_TRUE;
	p->lockdown = LOCKDOWN_INTEGRITY;
	p->secure_boot = TRI_TRUE;
	p->debugger_attached = TRI_FALSE;
	p->pt_deny_attach = TRI_FALSE;
	p->sip_enabled = TRI_FALSE;
	p->binary_hash_known = true;
	for (i = 0; i < POSTURE_HASH_LEN; i++)
		p->binary_hash[i] = (uint8_t)i;
	p->hardened = posture_is_hardened(p);
}

static void
assert_posture_equal(const struct posture *a, const struct posture *b)
{
	assert_int_equal(a->os, b->os);
	assert_int_equal(a->env_clean, b->env_clean);
	assert_int_equal(a->env_reexec, b->env_reexec);
	assert_int_equal(a->dumpable, b->dumpable);
	assert_int_equal(a->core_dumps_disabled, b->core_dumps_disabled);
	assert_int_equal(a->no_new_privs, b->no_new_privs);
	assert_int_equal(a->memory_locked, b->memory_locked);
	assert_int_equal(a->ptrace_scope, b->ptrace_scope);
	assert_int_equal(a->ptrace_restricted, b->ptrace_restricted);
	assert_int_equal(a->lockdown, b->lockdown);
	assert_int_equal(a->secure_boot, b->secure_boot);
	assert_int_equal(a->debugger_attached, b->debugger_attached);
	assert_int_equal(a->pt_deny_attach, b->pt_deny_attach);
	assert_int_equal(a->sip_enabled, b->sip_enabled);
	assert_int_equal(a->binary_hash_known, b->binary_hash_known);
	assert_memory_equal(a->binary_hash, b->binary_hash, POSTURE_HASH_LEN);
	assert_int_equal(a->seccomp, b->seccomp);
	assert_int_equal(a->keys_separate, b->keys_separate);
	assert_int_equal(a->measured_by, b->measured_by);
	assert_int_equal(a->hardened, b->hardened);
}

static void
roundtrip(const struct posture *in, struct posture *out)
{
	struct buf b;

	buf_init(&b, POSTURE_WIRE_MAX);
	assert_int_equal(posture_write(in, &b), 0);
	assert_int_equal(posture_parse(buf_data(&b), b.len, out), 0);
	buf_clear(&b);
}

static void
test_wire_roundtrip(void **state)
{
	struct posture p, q;

	full_posture(&p);
	assert_true(p.hardened);
	roundtrip(&p, &q);
	assert_posture_equal(&p, &q);
	assert_true(q.hardened);

	/* A mixed posture, with a scope of 0 (a real value, not unknown). */
	full_posture(&p);
	p.ptrace_scope = 0;
	p.ptrace_restricted = TRI_FALSE;
	p.dumpable = TRI_TRUE;
	p.lockdown = LOCKDOWN_NONE;
	p.os = POSTURE_OS_MACOS;
	p.hardened = posture_is_hardened(&p);
	roundtrip(&p, &q);
	assert_posture_equal(&p, &q);
	assert_false(q.hardened);
}

/* The vector in doc/PROTOCOL.md, "Security posture (field 37)". */
static const uint8_t vector[] = {
    0x01, /* version */
    0x01, 0x01, 0x01, /* os linux */
    0x02, 0x01, 0x02, /* env_clean true */
    0x03, 0x01, 0x01, /* env_reexec false */
    0x04, 0x01, 0x01, /* dumpable false */
    0x05, 0x01, 0x02, /* core_dumps_disabled true */
    0x06, 0x01, 0x02, /* no_new_privs true */
    0x08, 0x01, 0x01, /* ptrace_scope 1 */
    0x09, 0x01, 0x02, /* ptrace_restricted true */
    0x0a, 0x01, 0x02, /* lockdown integrity */
    0x0c, 0x01, 0x01, /* debugger_attached false */
    0x0f, 0x20, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
    0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
    0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e,
    0x1f, /* binary_hash */
};

static void
test_wire_vector_and_unknown(void **state)
{
	struct posture p, q;
	struct buf b;

	/* All unknown: the version byte alone, and back to all unknown. */
	posture_init(&p);
	buf_init(&b, POSTURE_WIRE_MAX);
	assert_int_equal(posture_write(&p, &b), 0);
	assert_int_equal(b.len, 1);
	assert_int_equal(buf_data(&b)[0], POSTURE_WIRE_VERSION);
	assert_int_equal(posture_parse(buf_data(&b), b.len, &q), 0);
	assert_posture_equal(&p, &q);
	assert_int_equal(q.ptrace_scope, -1);
	assert_false(q.hardened);
	buf_clear(&b);

	/* Unknown fields are omitted and come back unknown. */
	full_posture(&p);
	p.memory_locked = TRI_UNKNOWN;
	p.secure_boot = TRI_UNKNOWN;
	p.pt_deny_attach = TRI_UNKNOWN;
	p.sip_enabled = TRI_UNKNOWN;
	p.hardened = posture_is_hardened(&p);
	assert_false(p.hardened); /* memory_locked unknown */
	buf_init(&b, POSTURE_WIRE_MAX);
	assert_int_equal(posture_write(&p, &b), 0);
	assert_int_equal(b.len, sizeof(vector));
	assert_memory_equal(buf_data(&b), vector, sizeof(vector));
	buf_clear(&b);
	assert_int_equal(posture_parse(vector, sizeof(vector), &q), 0);
	assert_posture_equal(&p, &q);
	assert_int_equal(q.memory_locked, TRI_UNKNOWN);
	assert_int_equal(q.secure_boot, TRI_UNKNOWN);
	assert_int_equal(q.sip_enabled, TRI_UNKNOWN);
}

static void
test_wire_unknown_tags_skipped(void **state)
{
	uint8_t in[sizeof(vector) + 16];
	struct posture p, q;
	size_t n;

	/* Tags a newer peer may add, after the last known one. */
	assert_int_equal(posture_parse(vector, sizeof(vector), &p), 0);
	memcpy(in, vector, sizeof(vector));
	n = sizeof(vector);
	in[n++] = 0x13; /* a newer peer's tag, 3 bytes */
	in[n++] = 3;
	in[n++] = 0xaa;
	in[n++] = 0xbb;
	in[n++] = 0xcc;
	in[n++] = 0xfe; /* and an empty one */
	in[n++] = 0;
	assert_int_equal(posture_parse(in, n, &q), 0);
	assert_posture_equal(&p, &q);

	/* A newer os or lockdown value reads as unknown, not refused. */
	memcpy(in, vector, sizeof(vector));
	in[3] = 9; /* os */
	in[27] = 7; /* lockdown */
	assert_int_equal(posture_parse(in, sizeof(vector), &q), 0);
	assert_int_equal(q.os, POSTURE_OS_UNKNOWN);
	assert_int_equal(q.lockdown, LOCKDOWN_UNKNOWN);
	assert_false(q.hardened);
}

/* Tags 16..18 (privilege separation): seccomp, keys_separate, measured_by.
 * The vector in doc/PROTOCOL.md, after the table. */
static const uint8_t vector_privsep[] = {0x01, 0x01, 0x01, 0x01, 0x10, 0x01,
    0x02, 0x11, 0x01, 0x01, 0x12, 0x01, 0x02};

static void
test_wire_privsep_fields(void **state)
{
	struct posture p, q;
	struct buf b;
	cJSON *j;

	posture_init(&p);
	p.os = POSTURE_OS_LINUX;
	p.seccomp = TRI_TRUE;
	p.keys_separate = TRI_FALSE;
	p.measured_by = POSTURE_MEASURED_SIGNER;
	buf_init(&b, 1024);
	assert_int_equal(posture_write(&p, &b), 0);
	assert_int_equal(b.len, sizeof(vector_privsep));
	assert_memory_equal(buf_data(&b), vector_privsep, b.len);
	buf_clear(&b);
	assert_int_equal(
	    posture_parse(vector_privsep, sizeof(vector_privsep), &q), 0);
	assert_posture_equal(&p, &q);

	/* JSON: tri as bool/null, measured_by a name or null. */
	assert_non_null(j = posture_to_json(&q));
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "seccomp")));
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "keys_separate")));
	assert_string_equal(
	    cJSON_GetObjectItem(j, "measured_by")->valuestring, "signer");
	cJSON_Delete(j);
	q.measured_by = POSTURE_MEASURED_SELF;
	q.seccomp = TRI_UNKNOWN;
	assert_non_null(j = posture_to_json(&q));
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "seccomp")));
	assert_string_equal(
	    cJSON_GetObjectItem(j, "measured_by")->valuestring, "self");
	cJSON_Delete(j);

	/* A measurer a newer peer names reads as unknown; bad tri refused;
	 * the new tags do not change 'hardened' (not required). */
	{
		uint8_t in[sizeof(vector_privsep)];

		memcpy(in, vector_privsep, sizeof(in));
		in[12] = 9;
		assert_int_equal(posture_parse(in, sizeof(in), &q), 0);
		assert_int_equal(q.measured_by, POSTURE_MEASURED_UNKNOWN);
		memcpy(in, vector_privsep, sizeof(in));
		in[6] = 3;
		assert_int_equal(
		    posture_parse(in, sizeof(in), &q), SM_ERR_INVAL);
		memcpy(in, vector_privsep, sizeof(in));
		in[5] = 2; /* seccomp with length 2 */
		assert_int_equal(
		    posture_parse(in, sizeof(in), &q), SM_ERR_INVAL);
	}
	full_posture(&p);
	assert_true(posture_is_hardened(&p));
	p.seccomp = TRI_FALSE;
	p.keys_separate = TRI_FALSE;
	assert_true(posture_is_hardened(&p));
}

static void
expect_refused(const uint8_t *in, size_t len, int want)
{
	struct posture q;

	q.env_clean = TRI_TRUE;
	assert_int_equal(posture_parse(in, len, &q), want);
	/* Nothing survives a failed parse. */
	assert_int_equal(q.env_clean, TRI_UNKNOWN);
	assert_false(q.binary_hash_known);
	assert_false(q.hardened);
}

static void
test_wire_refused(void **state)
{
	uint8_t in[POSTURE_WIRE_MAX + 1];
	size_t i, boundary = 1;

	expect_refused(vector, 0, SM_ERR_INVAL);
	memcpy(in, vector, sizeof(vector));
	in[0] = 2;
	expect_refused(in, sizeof(vector), SM_ERR_UNSUPP);

	/* Every cut inside a TLV is refused; cuts between TLVs parse. */
	for (i = 1; i < sizeof(vector); i++) {
		struct posture q;

		if (i == boundary) {
			assert_int_equal(posture_parse(vector, i, &q), 0);
			boundary += 2 + vector[boundary + 1];
		} else {
			expect_refused(vector, i, SM_ERR_INVAL);
		}
	}

	memcpy(in, vector, sizeof(vector));
	in[6] = 3; /* env_clean: not a tri */
	expect_refused(in, sizeof(vector), SM_ERR_INVAL);
	memcpy(in, vector, sizeof(vector));
	in[5] = 2; /* env_clean with 2 bytes */
	expect_refused(in, sizeof(vector), SM_ERR_INVAL);
	memcpy(in, vector, sizeof(vector));
	in[7] = 0x02; /* duplicate tag */
	expect_refused(in, sizeof(vector), SM_ERR_INVAL);
	memcpy(in, vector, sizeof(vector));
	in[7] = 0x01; /* descending */
	expect_refused(in, sizeof(vector), SM_ERR_INVAL);
	memcpy(in, vector, sizeof(vector));
	in[1] = 0x00; /* tag 0 is never valid */
	expect_refused(in, sizeof(vector), SM_ERR_INVAL);
	memcpy(in, vector, sizeof(vector));
	in[24] = 0x01; /* restricted false with scope 1 */
	expect_refused(in, sizeof(vector), SM_ERR_INVAL);
	memcpy(in, vector, sizeof(vector));
	in[32] = 31; /* a 31-byte hash */
	expect_refused(in, sizeof(vector) - 1, SM_ERR_INVAL);

	/* Oversized input. */
	memset(in, 0, sizeof(in));
	in[0] = POSTURE_WIRE_VERSION;
	expect_refused(in, sizeof(in), SM_ERR_TOOBIG);
}

static void
test_hardened_rule(void **state)
{
	struct posture p;

	full_posture(&p);
	assert_true(posture_is_hardened(&p));
#define FLIP(field, v)                                                         \
	do {                                                                   \
		full_posture(&p);                                              \
		p.field = (v);                                                 \
		assert_false(posture_is_hardened(&p));                         \
	} while (0)
	FLIP(env_clean, TRI_UNKNOWN);
	FLIP(env_clean, TRI_FALSE);
	FLIP(dumpable, TRI_UNKNOWN);
	FLIP(dumpable, TRI_TRUE);
	FLIP(core_dumps_disabled, TRI_UNKNOWN);
	FLIP(core_dumps_disabled, TRI_FALSE);
	FLIP(no_new_privs, TRI_UNKNOWN);
	FLIP(debugger_attached, TRI_UNKNOWN);
	FLIP(debugger_attached, TRI_TRUE);
	FLIP(memory_locked, TRI_UNKNOWN);
	FLIP(memory_locked, TRI_FALSE);
	FLIP(binary_hash_known, false);
	FLIP(os, POSTURE_OS_UNKNOWN);
	FLIP(os, POSTURE_OS_OTHER);
#undef FLIP
	/* Host properties are reported, not required. */
	full_posture(&p);
	p.ptrace_scope = -1;
	p.ptrace_restricted = TRI_UNKNOWN;
	p.lockdown = LOCKDOWN_UNKNOWN;
	p.secure_boot = TRI_UNKNOWN;
	assert_true(posture_is_hardened(&p));
	/* macOS has its own essentials. */
	full_posture(&p);
	p.os = POSTURE_OS_MACOS;
	assert_false(posture_is_hardened(&p));
	p.pt_deny_attach = TRI_TRUE;
	p.sip_enabled = TRI_TRUE;
	assert_true(posture_is_hardened(&p));
	p.sip_enabled = TRI_UNKNOWN;
	assert_false(posture_is_hardened(&p));
}

static cJSON *
json_of(const struct posture *p)
{
	cJSON *j = posture_to_json(p);
	char *s;
	cJSON *back;

	assert_non_null(j);
	/* Through text, as /api/status readers see it. */
	s = cJSON_PrintUnformatted(j);
	assert_non_null(s);
	back = cJSON_Parse(s);
	assert_non_null(back);
	cJSON_free(s);
	cJSON_Delete(j);
	return back;
}

static void
test_json(void **state)
{
	static const char *const tris[] = {"env_clean", "env_reexec",
	    "dumpable", "core_dumps_disabled", "no_new_privs", "memory_locked",
	    "ptrace_restricted", "secure_boot", "debugger_attached",
	    "pt_deny_attach", "sip_enabled"};
	struct posture p;
	cJSON *j, *v;
	size_t i;

	/* Unknown prints as null, never as true. */
	posture_init(&p);
	p.hardened = true; /* a stale flag must not leak into the JSON */
	j = json_of(&p);
	for (i = 0; i < sizeof(tris) / sizeof(tris[0]); i++) {
		v = cJSON_GetObjectItemCaseSensitive(j, tris[i]);
		assert_non_null(v);
		assert_true(cJSON_IsNull(v));
	}
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "os")));
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "ptrace_scope")));
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "lockdown")));
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "binary_hash")));
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "hardened")));
	cJSON_Delete(j);

	full_posture(&p);
	p.ptrace_scope = 0;
	p.ptrace_restricted = TRI_FALSE;
	p.secure_boot = TRI_UNKNOWN;
	j = json_of(&p);
	assert_string_equal(cJSON_GetObjectItem(j, "os")->valuestring, "linux");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "hardened")));
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "env_clean")));
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "dumpable")));
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "secure_boot")));
	v = cJSON_GetObjectItem(j, "ptrace_scope");
	assert_true(cJSON_IsNumber(v));
	assert_int_equal(v->valueint, 0);
	assert_string_equal(
	    cJSON_GetObjectItem(j, "lockdown")->valuestring, "integrity");
	assert_string_equal(cJSON_GetObjectItem(j, "binary_hash")->valuestring,
	    "000102030405060708090a0b0c0d0e0f"
	    "101112131415161718191a1b1c1d1e1f");
	cJSON_Delete(j);
}

static void
openssl_sha256(const char *path, uint8_t out[32])
{
	uint8_t block[4096];
	unsigned int n = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	FILE *f = fopen(path, "rb");
	size_t got;

	assert_non_null(ctx);
	assert_non_null(f);
	assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
	while ((got = fread(block, 1, sizeof(block), f)) > 0)
		assert_int_equal(EVP_DigestUpdate(ctx, block, got), 1);
	assert_int_equal(EVP_DigestFinal_ex(ctx, out, &n), 1);
	assert_int_equal(n, 32);
	EVP_MD_CTX_free(ctx);
	fclose(f);
}

static void
write_file(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	if (n > 0)
		assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static void
test_hash_file(void **state)
{
	static const uint8_t abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01,
	    0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0,
	    0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
	    0xf2, 0x00, 0x15, 0xad};
	char path[] = "/tmp/sm-harden-hash-XXXXXX";
	uint8_t got[32], want[32], *big;
	size_t i, n = 300 * 1024 + 17; /* crosses several 64 KiB blocks */
	int fd;

	assert_true((fd = mkstemp(path)) >= 0);
	close(fd);
	write_file(path, (const uint8_t *)"abc", 3);
	assert_int_equal(harden_hash_file(path, got), 0);
	assert_memory_equal(got, abc, 32);

	assert_non_null(big = malloc(n));
	for (i = 0; i < n; i++)
		big[i] = (uint8_t)(i * 2654435761u >> 13);
	write_file(path, big, n);
	free(big);
	assert_int_equal(harden_hash_file(path, got), 0);
	openssl_sha256(path, want);
	assert_memory_equal(got, want, 32);

	write_file(path, NULL, 0);
	assert_int_equal(harden_hash_file(path, got), 0);
	openssl_sha256(path, want);
	assert_memory_equal(got, want, 32);

	unlink(path);
	assert_int_equal(harden_hash_file(path, got), SM_ERR_IO);
}

static void
test_env_check(void **state)
{
	char *clean[] = {"PATH=/usr/bin:/bin", "HOME=/root", "LANG=C.UTF-8",
	    "LDFLAGS=-s", "MALLOCX=1", "XLD_PRELOAD=x", "GLIBC_TUNABLESX=1",
	    NULL};
	char *preload[] = {"PATH=/bin", "LD_PRELOAD=/tmp/evil.so", NULL};
	char *arena[] = {"MALLOC_ARENA_MAX=2", "HOME=/", NULL};
	char *tunables[] = {
	    "HOME=/", "GLIBC_TUNABLES=glibc.malloc.check=3", NULL};
	char *many[] = {"LD_AUDIT=/a.so", "LD_LIBRARY_PATH=/x",
	    "DYLD_INSERT_LIBRARIES=/y", "MALLOC_CHECK_=3", "OPENSSL_CONF=/c",
	    "LD_PRELOAD", NULL};
	const char *first;

	assert_int_equal(harden_env_check(clean, &first), 0);
	assert_null(first);
	assert_int_equal(harden_env_check(NULL, &first), 0);
	assert_int_equal(harden_env_check(preload, &first), 1);
	assert_string_equal(first, "LD_PRELOAD=/tmp/evil.so");
	assert_int_equal(harden_env_check(arena, &first), 1);
	assert_string_equal(first, "MALLOC_ARENA_MAX=2");
	assert_int_equal(harden_env_check(tunables, NULL), 1);
	assert_int_equal(harden_env_check(many, &first), 6);
	assert_string_equal(first, "LD_AUDIT=/a.so");
}

static void
test_child_env(void **state)
{
	const char *extra[] = {"CUDA_VISIBLE_DEVICES=0", NULL};
	const char *bad[] = {"LD_PRELOAD=/x.so", NULL};
	const char *noeq[] = {"FOO", NULL};
	char **envp;
	size_t n;

	setenv("LD_PRELOAD", "/tmp/none.so", 1);
	setenv("HOME", "/home/test", 1);
	assert_int_equal(harden_child_env_new(NULL, &envp), 0);
	for (n = 0; envp[n] != NULL; n++)
		;
	assert_int_equal(n, 3);
	assert_string_equal(envp[0], "PATH=/usr/bin:/bin");
	assert_string_equal(envp[1], "LANG=C.UTF-8");
	assert_string_equal(envp[2], "HOME=/home/test");
	assert_int_equal(harden_env_check(envp, NULL), 0);
	harden_child_env_free(envp);

	assert_int_equal(harden_child_env_new(extra, &envp), 0);
	assert_string_equal(envp[3], "CUDA_VISIBLE_DEVICES=0");
	assert_null(envp[4]);
	harden_child_env_free(envp);

	assert_int_equal(harden_child_env_new(bad, &envp), SM_ERR_PERM);
	assert_null(envp);
	assert_int_equal(harden_child_env_new(noeq, &envp), SM_ERR_PERM);
	harden_child_env_free(NULL);
	unsetenv("LD_PRELOAD");
}

/* Nothing measured, nothing claimed: the global before harden_early(). */
static void
test_global_unknown_and_lock(void **state)
{
	const struct posture *g = harden_posture();
	void *page;

	assert_int_equal(g->env_clean, TRI_UNKNOWN);
	assert_int_equal(g->dumpable, TRI_UNKNOWN);
	assert_int_equal(g->memory_locked, TRI_UNKNOWN);
	assert_int_equal(g->ptrace_scope, -1);
	assert_false(g->binary_hash_known);
	assert_false(g->hardened);
	assert_string_equal(tri_str(g->secure_boot), "unknown");

	/* A key lock is measured: one page fits any RLIMIT_MEMLOCK. */
	assert_int_equal(posix_memalign(&page, 4096, 4096), 0);
	assert_int_equal(harden_lock_key(page, 4096), 0);
	assert_int_equal(g->memory_locked, TRI_TRUE);
	assert_false(g->hardened); /* the rest is still unknown */
	munlock(page, 4096);
	free(page);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wire_roundtrip),
	    cmocka_unit_test(test_wire_vector_and_unknown),
	    cmocka_unit_test(test_wire_unknown_tags_skipped),
	    cmocka_unit_test(test_wire_privsep_fields),
	    cmocka_unit_test(test_wire_refused),
	    cmocka_unit_test(test_hardened_rule),
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_hash_file),
	    cmocka_unit_test(test_env_check),
	    cmocka_unit_test(test_child_env),
	    cmocka_unit_test(test_global_unknown_and_lock),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
