/*
 * The posture as data: the 'hardened' rule, the binary wire encoding for
 * gossip and attestation, and the JSON for /api/status. No I/O.
 */
#include <string.h>

#include <cJSON.h>

#include "core/util.h"
#include "harden/harden.h"

void
posture_init(struct posture *p)
{
	memset(p, 0, sizeof(*p));
	p->ptrace_scope = -1;
}

bool
posture_is_hardened(const struct posture *p)
{
	bool common = p->env_clean == TRI_TRUE &&
	    p->core_dumps_disabled == TRI_TRUE &&
	    p->debugger_attached == TRI_FALSE && p->memory_locked == TRI_TRUE &&
	    p->binary_hash_known;

	switch (p->os) {
	case POSTURE_OS_LINUX:
		return common && p->dumpable == TRI_FALSE &&
		    p->no_new_privs == TRI_TRUE;
	case POSTURE_OS_MACOS:
		return common && p->pt_deny_attach == TRI_TRUE &&
		    p->sip_enabled == TRI_TRUE;
	default:
		return false;
	}
}

/* Encoding */

static int
put_tlv(struct buf *out, uint8_t tag, const void *v, size_t n)
{
	uint8_t h[2] = {tag, (uint8_t)n};
	int r;

	if ((r = buf_append(out, h, sizeof(h))) != 0)
		return r;
	return buf_append(out, v, n);
}

/* A tri goes on the wire only when known: 1 false, 2 true. */
static int
put_tri(struct buf *out, uint8_t tag, enum tri t)
{
	uint8_t v = (uint8_t)t;

	if (t != TRI_FALSE && t != TRI_TRUE)
		return 0;
	return put_tlv(out, tag, &v, 1);
}

static int
put_u8(struct buf *out, uint8_t tag, int v)
{
	uint8_t b = (uint8_t)v;

	if (v <= 0 || v > 255)
		return 0;
	return put_tlv(out, tag, &b, 1);
}

int
posture_write(const struct posture *p, struct buf *out)
{
	uint8_t version = POSTURE_WIRE_VERSION, scope;
	int r;

	if ((r = buf_append(out, &version, 1)) != 0 ||
	    (r = put_u8(out, PT_TAG_OS, (int)p->os)) != 0 ||
	    (r = put_tri(out, PT_TAG_ENV_CLEAN, p->env_clean)) != 0 ||
	    (r = put_tri(out, PT_TAG_ENV_REEXEC, p->env_reexec)) != 0 ||
	    (r = put_tri(out, PT_TAG_DUMPABLE, p->dumpable)) != 0 ||
	    (r = put_tri(out, PT_TAG_CORE_DUMPS_DISABLED,
		 p->core_dumps_disabled)) != 0 ||
	    (r = put_tri(out, PT_TAG_NO_NEW_PRIVS, p->no_new_privs)) != 0 ||
	    (r = put_tri(out, PT_TAG_MEMORY_LOCKED, p->memory_locked)) != 0)
		return r;
	/* The scope is 0..3 and 0 is a real value: no "0 = unknown" here. */
	if (p->ptrace_scope >= 0 && p->ptrace_scope <= 255) {
		scope = (uint8_t)p->ptrace_scope;
		if ((r = put_tlv(out, PT_TAG_PTRACE_SCOPE, &scope, 1)) != 0)
			return r;
	}
	if ((r = put_tri(
		 out, PT_TAG_PTRACE_RESTRICTED, p->ptrace_restricted)) != 0 ||
	    (r = put_u8(out, PT_TAG_LOCKDOWN, (int)p->lockdown)) != 0 ||
	    (r = put_tri(out, PT_TAG_SECURE_BOOT, p->secure_boot)) != 0 ||
	    (r = put_tri(
		 out, PT_TAG_DEBUGGER_ATTACHED, p->debugger_attached)) != 0 ||
	    (r = put_tri(out, PT_TAG_PT_DENY_ATTACH, p->pt_deny_attach)) != 0 ||
	    (r = put_tri(out, PT_TAG_SIP_ENABLED, p->sip_enabled)) != 0)
		return r;
	if (p->binary_hash_known &&
	    (r = put_tlv(out, PT_TAG_BINARY_HASH, p->binary_hash,
		 POSTURE_HASH_LEN)) != 0)
		return r;
	if ((r = put_tri(out, PT_TAG_SECCOMP, p->seccomp)) != 0 ||
	    (r = put_tri(out, PT_TAG_KEYS_SEPARATE, p->keys_separate)) != 0 ||
	    (r = put_u8(out, PT_TAG_MEASURED_BY, (int)p->measured_by)) != 0)
		return r;
	return 0;
}

/* Decoding */

static int
get_tri(const uint8_t *v, size_t n, enum tri *t)
{
	if (n != 1 || v[0] > TRI_TRUE)
		return SM_ERR_INVAL;
	*t = (enum tri)v[0];
	return 0;
}

static int
parse_field(struct posture *p, uint8_t tag, const uint8_t *v, size_t n)
{
	switch (tag) {
	case PT_TAG_OS:
		if (n != 1)
			return SM_ERR_INVAL;
		/* A value from a newer peer is an os we cannot name. */
		p->os = v[0] <= POSTURE_OS_OTHER ? (enum posture_os)v[0]
						 : POSTURE_OS_UNKNOWN;
		return 0;
	case PT_TAG_ENV_CLEAN:
		return get_tri(v, n, &p->env_clean);
	case PT_TAG_ENV_REEXEC:
		return get_tri(v, n, &p->env_reexec);
	case PT_TAG_DUMPABLE:
		return get_tri(v, n, &p->dumpable);
	case PT_TAG_CORE_DUMPS_DISABLED:
		return get_tri(v, n, &p->core_dumps_disabled);
	case PT_TAG_NO_NEW_PRIVS:
		return get_tri(v, n, &p->no_new_privs);
	case PT_TAG_MEMORY_LOCKED:
		return get_tri(v, n, &p->memory_locked);
	case PT_TAG_PTRACE_SCOPE:
		if (n != 1)
			return SM_ERR_INVAL;
		p->ptrace_scope = v[0];
		return 0;
	case PT_TAG_PTRACE_RESTRICTED:
		return get_tri(v, n, &p->ptrace_restricted);
	case PT_TAG_LOCKDOWN:
		if (n != 1)
			return SM_ERR_INVAL;
		p->lockdown = v[0] <= LOCKDOWN_CONFIDENTIALITY
		    ? (enum lockdown)v[0]
		    : LOCKDOWN_UNKNOWN;
		return 0;
	case PT_TAG_SECURE_BOOT:
		return get_tri(v, n, &p->secure_boot);
	case PT_TAG_DEBUGGER_ATTACHED:
		return get_tri(v, n, &p->debugger_attached);
	case PT_TAG_PT_DENY_ATTACH:
		return get_tri(v, n, &p->pt_deny_attach);
	case PT_TAG_SIP_ENABLED:
		return get_tri(v, n, &p->sip_enabled);
	case PT_TAG_BINARY_HASH:
		if (n != POSTURE_HASH_LEN)
			return SM_ERR_INVAL;
		memcpy(p->binary_hash, v, POSTURE_HASH_LEN);
		p->binary_hash_known = true;
		return 0;
	case PT_TAG_SECCOMP:
		return get_tri(v, n, &p->seccomp);
	case PT_TAG_KEYS_SEPARATE:
		return get_tri(v, n, &p->keys_separate);
	case PT_TAG_MEASURED_BY:
		if (n != 1)
			return SM_ERR_INVAL;
		/* A measurer a newer peer names is one we cannot name. */
		p->measured_by = v[0] <= POSTURE_MEASURED_SIGNER
		    ? (enum posture_measurer)v[0]
		    : POSTURE_MEASURED_UNKNOWN;
		return 0;
	default:
		return 0; /* a newer peer's field: skipped, stays unknown */
	}
}

int
posture_parse(const uint8_t *in, size_t len, struct posture *out)
{
	struct posture p;
	unsigned last = 0;
	size_t i, n;
	int r = SM_ERR_INVAL;

	posture_init(out);
	posture_init(&p);
	if (len > POSTURE_WIRE_MAX) {
		r = SM_ERR_TOOBIG;
		goto out;
	}
	if (len < 1)
		goto out;
	if (in[0] != POSTURE_WIRE_VERSION) {
		r = SM_ERR_UNSUPP;
		goto out;
	}
	for (i = 1; i < len; i += 2 + n) {
		if (len - i < 2) {
			r = SM_ERR_INVAL;
			goto out;
		}
		n = in[i + 1];
		/* Strictly ascending tags: no duplicates, one encoding. */
		if (len - i - 2 < n || in[i] <= last) {
			r = SM_ERR_INVAL;
			goto out;
		}
		last = in[i];
		if ((r = parse_field(&p, in[i], in + i + 2, n)) != 0)
			goto out;
	}
	/* A known scope and a known "restricted" must agree. */
	if (p.ptrace_scope >= 0 && p.ptrace_restricted != TRI_UNKNOWN &&
	    (p.ptrace_scope >= 1) != (p.ptrace_restricted == TRI_TRUE)) {
		r = SM_ERR_INVAL;
		goto out;
	}
	p.hardened = posture_is_hardened(&p);
	*out = p;
	r = 0;
out:
	return r;
}

/* JSON */

static bool
add_tri(cJSON *o, const char *name, enum tri t)
{
	if (t == TRI_TRUE || t == TRI_FALSE)
		return cJSON_AddBoolToObject(o, name, t == TRI_TRUE) != NULL;
	return cJSON_AddNullToObject(o, name) != NULL;
}

static bool
add_str(cJSON *o, const char *name, const char *s)
{
	if (s == NULL)
		return cJSON_AddNullToObject(o, name) != NULL;
	return cJSON_AddStringToObject(o, name, s) != NULL;
}

static const char *
os_name(enum posture_os os)
{
	switch (os) {
	case POSTURE_OS_LINUX:
		return "linux";
	case POSTURE_OS_MACOS:
		return "macos";
	case POSTURE_OS_OTHER:
		return "other";
	default:
		return NULL;
	}
}

static const char *
measurer_name(enum posture_measurer m)
{
	switch (m) {
	case POSTURE_MEASURED_SELF:
		return "self";
	case POSTURE_MEASURED_SIGNER:
		return "signer";
	default:
		return NULL;
	}
}

static const char *
lockdown_name(enum lockdown l)
{
	switch (l) {
	case LOCKDOWN_NONE:
		return "none";
	case LOCKDOWN_INTEGRITY:
		return "integrity";
	case LOCKDOWN_CONFIDENTIALITY:
		return "confidentiality";
	default:
		return NULL;
	}
}

cJSON *
posture_to_json(const struct posture *p)
{
	char hex[POSTURE_HASH_LEN * 2 + 1];
	cJSON *o;
	bool ok;

	if ((o = cJSON_CreateObject()) == NULL)
		return NULL;
	ok = add_str(o, "os", os_name(p->os)) &&
	    cJSON_AddBoolToObject(o, "hardened", posture_is_hardened(p)) &&
	    add_tri(o, "env_clean", p->env_clean) &&
	    add_tri(o, "env_reexec", p->env_reexec) &&
	    add_tri(o, "dumpable", p->dumpable) &&
	    add_tri(o, "core_dumps_disabled", p->core_dumps_disabled) &&
	    add_tri(o, "no_new_privs", p->no_new_privs) &&
	    add_tri(o, "memory_locked", p->memory_locked);
	if (ok && p->ptrace_scope >= 0)
		ok = cJSON_AddNumberToObject(
			 o, "ptrace_scope", p->ptrace_scope) != NULL;
	else if (ok)
		ok = cJSON_AddNullToObject(o, "ptrace_scope") != NULL;
	ok = ok && add_tri(o, "ptrace_restricted", p->ptrace_restricted) &&
	    add_str(o, "lockdown", lockdown_name(p->lockdown)) &&
	    add_tri(o, "secure_boot", p->secure_boot) &&
	    add_tri(o, "debugger_attached", p->debugger_attached) &&
	    add_tri(o, "pt_deny_attach", p->pt_deny_attach) &&
	    add_tri(o, "sip_enabled", p->sip_enabled);
	if (ok) {
		if (p->binary_hash_known)
			sm_hex(hex, p->binary_hash, POSTURE_HASH_LEN);
		ok = add_str(
		    o, "binary_hash", p->binary_hash_known ? hex : NULL);
	}
	ok = ok && add_tri(o, "seccomp", p->seccomp) &&
	    add_tri(o, "keys_separate", p->keys_separate) &&
	    add_str(o, "measured_by", measurer_name(p->measured_by));
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}
