/*
 * Measured boot and IMA against a real (software) TPM: swtpm started by this
 * test; the test extends its PCRs 0-7 with the synthetic event log's digests
 * and PCR 10 with the IMA list's (tpm2_pcrextend, values computed by
 * tests/vectors/gen_measure.py with hashlib), writes the logs to files the
 * host provider reads (as --event-log / --ima-log would name), and runs the
 * verifier on real challenge answers. Accepted, then each forgery refused
 * with its reason named: a tampered IMA entry, a tampered event, a binary
 * the IMA list never measured, a PCR that differs from --pcr-policy, an
 * entry outside --ima-allowlist, a measurement replayed into another
 * challenge. Without swtpm the test fails loudly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "attest/blob.h"
#include "attest/challenge.h"
#include "attest/measure.h"
#include "attest/pins.h"
#include "attest/provider.h"
#include "attest/verify.h"
#include "core/util.h"
#include "util_vectors.h"

#define LOCALCA "/var/lib/swtpm-localca"
#define VEC "tests/vectors/measure.json"

struct env {
	char dir[64];
	char tcti[128];
	char evlog[128], ima[128], ima_long[128], none[128];
	pid_t pid;
	struct att_trust *trusted;
	struct att_pins *pins;
	struct att_provider *p;
	struct att_pcr_policy *pol_ok, *pol_bad;
	struct ima_allowlist *allow_ok, *allow_short;
	uint8_t binary[32];
	cJSON *vec;
};

static struct env E;
static const uint8_t node_a[32] = {0xaa, 1};

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int
sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int
port_free(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static int
wait_port(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	for (int i = 0; i < 100; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

		ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok)
			return 0;
		usleep(50000);
	}
	return -1;
}

static const cJSON *
item(const cJSON *o, const char *arr, int i)
{
	return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, arr), i);
}

static const char *
str(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k)->valuestring;
}

static int
write_hex(const char *path, const char *hex, const char *more_hex)
{
	size_t n = strlen(hex) / 2, m = more_hex ? strlen(more_hex) / 2 : 0;
	uint8_t *b = malloc(n + m + 1);
	FILE *f;
	int r = -1;

	if (b == NULL || sm_unhex(b, n, hex) != 0 ||
	    (m && sm_unhex(b + n, m, more_hex) != 0))
		goto out;
	if ((f = fopen(path, "wb")) == NULL)
		goto out;
	r = fwrite(b, 1, n + m, f) == n + m ? 0 : -1;
	fclose(f);
out:
	free(b);
	return r;
}

/* Extend swtpm with every digest a vector lists (tpm2-tools). */
static int
extend_all(void)
{
	const cJSON *ev = item(E.vec, "eventlog", 0), *x;
	char cmd[3072];
	size_t at;

	at = (size_t)snprintf(
	    cmd, sizeof(cmd), "TPM2TOOLS_TCTI=%s tpm2_pcrextend", E.tcti);
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(ev, "extends"))
	{
		at += (size_t)snprintf(cmd + at, sizeof(cmd) - at,
		    " %d:sha256=%s",
		    cJSON_GetObjectItemCaseSensitive(x, "pcr")->valueint,
		    str(x, "sha256"));
	}
	cJSON_ArrayForEach(x,
	    cJSON_GetObjectItemCaseSensitive(item(E.vec, "ima", 0), "extends"))
	{
		at += (size_t)snprintf(cmd + at, sizeof(cmd) - at,
		    " 10:sha256=%s", x->valuestring);
	}
	if (at >= sizeof(cmd) - 32)
		return -1;
	snprintf(cmd + at, sizeof(cmd) - at, " >%s/extend.log 2>&1", E.dir);
	return system(cmd);
}

/* The last entry of IMA vector 1 (an unlisted file), as hex. */
static char *
unquoted_entry_hex(void)
{
	const char *h = str(item(E.vec, "ima", 1), "list");
	const char *h0 = str(item(E.vec, "ima", 0), "list");
	size_t n = strlen(h) / 2, off = 0, last = 0;
	uint8_t *b = malloc(n);
	struct ima_entry e;
	char *out;

	(void)h0;
	if (b == NULL || sm_unhex(b, n, h) != 0)
		return NULL;
	while (off < n) {
		last = off;
		if (ima_next(b, n, &off, &e) != 0)
			return NULL;
	}
	out = strdup(h + 2 * last);
	free(b);
	return out;
}

static int
setup(void **state)
{
	char srv[64], ctl[64], st[96], path[160], *extra;
	const char *allow;
	char pol[512];
	size_t bad;
	int port = -1;

	if (sh("command -v swtpm >/dev/null && command -v tpm2_pcrextend "
	       ">/dev/null") != 0) {
		fprintf(stderr,
		    "test_measure_tpm: swtpm or tpm2-tools missing "
		    "(apt-get install swtpm swtpm-tools "
		    "tpm2-tools)\n");
		return -1;
	}
	E.vec = vec_load(VEC);
	vec_hex(E.binary, 32, E.vec, "binary_sha256");
	snprintf(E.dir, sizeof(E.dir), "/tmp/sm-measure-tpm-XXXXXX");
	if (mkdtemp(E.dir) == NULL)
		return -1;
	if (sh("mkdir -p %s/state %s/ca && swtpm_setup --tpm2 --tpmstate "
	       "%s/state --create-ek-cert --overwrite >%s/setup.log 2>&1 && "
	       "cp " LOCALCA "/swtpm-localca-rootca-cert.pem " LOCALCA
	       "/issuercert.pem %s/ca/",
		E.dir, E.dir, E.dir, E.dir, E.dir) != 0)
		return -1;
	for (int i = 0; i < 200 && port < 0; i++) {
		int p = 21000 + 2 * (int)randombytes_uniform(5000);

		if (port_free(p) && port_free(p + 1))
			port = p;
	}
	if (port < 0)
		return -1;
	snprintf(srv, sizeof(srv), "type=tcp,port=%d,bindaddr=127.0.0.1", port);
	snprintf(
	    ctl, sizeof(ctl), "type=tcp,port=%d,bindaddr=127.0.0.1", port + 1);
	snprintf(st, sizeof(st), "dir=%s/state", E.dir);
	snprintf(E.tcti, sizeof(E.tcti), "swtpm:host=127.0.0.1,port=%d", port);
	if ((E.pid = fork()) == 0) {
		execlp("swtpm", "swtpm", "socket", "--tpm2", "--tpmstate", st,
		    "--server", srv, "--ctrl", ctl, "--flags",
		    "not-need-init,startup-clear", (char *)NULL);
		_exit(127);
	}
	if (E.pid < 0 || wait_port(port) != 0)
		return -1;
	if (extend_all() != 0) {
		fprintf(stderr,
		    "test_measure_tpm: tpm2_pcrextend failed, see "
		    "%s/extend.log\n",
		    E.dir);
		return -1;
	}
	snprintf(E.evlog, sizeof(E.evlog), "%s/evlog", E.dir);
	snprintf(E.ima, sizeof(E.ima), "%s/ima", E.dir);
	snprintf(E.ima_long, sizeof(E.ima_long), "%s/ima-long", E.dir);
	snprintf(E.none, sizeof(E.none), "%s/absent", E.dir);
	if ((extra = unquoted_entry_hex()) == NULL ||
	    write_hex(E.evlog, str(item(E.vec, "eventlog", 0), "log"), NULL) !=
		0 ||
	    write_hex(E.ima, str(item(E.vec, "ima", 0), "list"), NULL) != 0 ||
	    write_hex(E.ima_long, str(item(E.vec, "ima", 0), "list"), extra) !=
		0)
		return -1;
	free(extra);
	snprintf(path, sizeof(path), "%s/ca", E.dir);
	if (att_trust_load_dir(path, &E.trusted) != 0 ||
	    att_pins_new(&E.pins) != 0)
		return -1;
	/* Policies: PCR 7 and 0 as the log replays them; then PCR 4 wrong. */
	snprintf(pol, sizeof(pol), "sha256:0 %s\nsha256:7 %s\n",
	    cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
				   item(E.vec, "eventlog", 0), "pcrs"),
		0)
		->valuestring,
	    cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
				   item(E.vec, "eventlog", 0), "pcrs"),
		7)
		->valuestring);
	if (att_pcr_policy_parse(pol, strlen(pol), &E.pol_ok, &bad) != 0)
		return -1;
	strcat(pol,
	    "sha256:4 "
	    "4444444444444444444444444444444444444444444444444444444444"
	    "444444\n");
	if (att_pcr_policy_parse(pol, strlen(pol), &E.pol_bad, &bad) != 0)
		return -1;
	allow = str(E.vec, "allowlist");
	if (ima_allowlist_parse(allow, strlen(allow), &E.allow_ok, &bad) != 0)
		return -1;
	/* Without its last line (libc). */
	{
		const char *last = strstr(allow, "/usr/bin/sealmesh\n");

		if (last == NULL ||
		    ima_allowlist_parse(allow,
			(size_t)(last - allow) + strlen("/usr/bin/sealmesh\n"),
			&E.allow_short, &bad) != 0)
			return -1;
	}
	if (att_tpm_open(E.tcti, &E.p) != 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	att_provider_free(E.p);
	if (E.pid > 0) {
		kill(E.pid, SIGTERM);
		waitpid(E.pid, NULL, 0);
	}
	att_trust_free(E.trusted);
	att_pins_free(E.pins);
	att_pcr_policy_free(E.pol_ok);
	att_pcr_policy_free(E.pol_bad);
	ima_allowlist_free(E.allow_ok);
	ima_allowlist_free(E.allow_short);
	cJSON_Delete(E.vec);
	if (E.dir[0] != '\0')
		sh("rm -rf %s", E.dir);
	return 0;
}

/* A verified tpm verdict for a blob claiming 'binary' (activated once). */
static void
verified(const uint8_t binary[32], struct att_verdict *v, uint8_t bh[32])
{
	struct att_policy pol = {
	    .min_level = ATT_LEVEL_TPM, .trust = E.trusted, .pins = E.pins};
	struct infkey_pub ik = {.epoch = 7};
	struct att_activation act;
	struct att_live_cfg c;
	struct att_live l;
	struct att_blob b;
	struct posture p;
	struct buf msg, chal, ans;
	int r;

	memset(ik.pk, 0x5a, sizeof(ik.pk));
	posture_init(&p);
	p.os = POSTURE_OS_LINUX;
	p.binary_hash_known = true;
	memcpy(p.binary_hash, binary, 32);
	att_blob_init(&b, node_a, &ik, &p);
	buf_init(&msg, ATT_MSG_MAX);
	assert_int_equal(att_attest(E.p, &b, &msg, bh), 0);
	r = att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, v);
	if (r == SM_ERR_AGAIN) {
		att_live_init(&l);
		att_live_cfg_default(&c);
		buf_init(&chal, ATT_CHAL_MAX);
		buf_init(&ans, ATT_ANSWER_MAX);
		assert_int_equal(att_activation_new(v, &act), 0);
		assert_int_equal(att_live_challenge(&l, 1000, &act, &chal), 0);
		assert_int_equal(
		    att_answer_make(E.p, buf_data(&chal), chal.len, bh, &ans),
		    0);
		assert_int_equal(att_live_answer(&l, &c, v, E.pins,
				     buf_data(&ans), ans.len, 1001),
		    0);
		buf_clear(&chal);
		buf_clear(&ans);
		att_live_clear(&l);
		r = att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, v);
	}
	assert_int_equal(r, 0);
	assert_int_equal(v->level, ATT_LEVEL_TPM);
	buf_clear(&msg);
}

typedef void (*tamper_fn)(uint8_t *ans, size_t len);

/* Incremental IMA state for round_trip (NULL: every list whole). */
static struct att_ima_state *rt_state;
/* When set, round_trip stores the section's length there. */
static size_t *keep_len;

/*
 * One challenge asking for measurements, answered by the host provider
 * (logs from 'evlog' / 'ima'), optionally tampered, checked by the liveness
 * code and then by att_meas_check under 'pol'. Returns att_meas_check's
 * result. With 'keep' the answer is copied out (for the replay test).
 */
static int
round_trip(const struct att_verdict *v, const uint8_t bh[32], const char *evlog,
    const char *ima, const struct att_meas_policy *pol, tamper_fn tamper,
    struct att_meas_verdict *mv, struct buf *keep)
{
	struct att_live_cfg c;
	struct att_live l;
	struct att_answer a;
	struct buf chal, ans;
	uint8_t nonce[ATT_NONCE_LEN];
	int r;

	E.p->evlog_path = evlog;
	E.p->ima_path = ima;
	att_live_init(&l);
	att_live_cfg_default(&c);
	buf_init(&chal, ATT_CHAL_MAX);
	buf_init(&ans, ATT_ANSWER_MEAS_MAX);
	assert_int_equal(att_live_challenge(&l, 5000, NULL, &chal), 0);
	assert_int_equal(
	    att_chal_add_measure(&chal, att_ima_state_from(rt_state, v)), 0);
	assert_int_equal(
	    att_answer_make(E.p, buf_data(&chal), chal.len, bh, &ans), 0);
	if (tamper != NULL)
		tamper(buf_data(&ans), ans.len);
	memcpy(nonce, l.nonce, sizeof(nonce));
	/* The liveness half does not look at the measurements. */
	assert_int_equal(
	    att_live_answer(&l, &c, v, E.pins, buf_data(&ans), ans.len, 5001),
	    0);
	assert_int_equal(att_answer_parse(buf_data(&ans), ans.len, &a), 0);
	assert_non_null(a.meas);
	if (keep != NULL)
		assert_int_equal(buf_append(keep, a.meas, a.meas_len), 0);
	if (keep_len != NULL)
		*keep_len = a.meas_len;
	r = att_meas_check_inc(pol, v, nonce, a.meas, a.meas_len, rt_state, mv);
	print_message(
	    "    measurement: %s (eligible %d, binary %s, secure boot "
	    "%s)\n",
	    mv->why, mv->eligible, att_claim_str(mv->binary),
	    att_claim_str(mv->secure_boot_claim));
	buf_clear(&chal);
	buf_clear(&ans);
	att_live_clear(&l);
	return r;
}

static struct att_meas_policy
strict_pol(void)
{
	return (struct att_meas_policy){
	    .pcr = E.pol_ok, .allow = E.allow_ok, .require_binary = true};
}

static void
test_accepted(void **state)
{
	struct att_meas_policy pol = strict_pol();
	struct att_meas_verdict mv;
	struct att_verdict v;
	uint8_t bh[32];

	verified(E.binary, &v, bh);
	assert_int_equal(
	    round_trip(&v, bh, E.evlog, E.ima, &pol, NULL, &mv, NULL), 0);
	assert_true(mv.present && mv.quote_ok && mv.evlog_ok && mv.ima_ok);
	assert_true(mv.binary_in_ima && mv.eligible);
	assert_int_equal(mv.binary, ATT_CLAIM_KERNEL_MEASURED);
	assert_int_equal(mv.secure_boot_claim, ATT_CLAIM_KERNEL_MEASURED);
	assert_int_equal(mv.secure_boot, TRI_TRUE);
	assert_int_equal(mv.posture, ATT_CLAIM_SELF_REPORTED);
	assert_int_equal(mv.ima_quoted, 4);
	assert_int_equal(mv.evlog_events, 12);
	assert_string_equal(mv.why, "measured");

	/* The kernel appended an entry after the quote: only the quoted
	 * prefix counts (the new, unlisted file is not judged yet). */
	assert_int_equal(
	    round_trip(&v, bh, E.evlog, E.ima_long, &pol, NULL, &mv, NULL), 0);
	assert_int_equal(mv.ima_entries, 5);
	assert_int_equal(mv.ima_quoted, 4);
}

/* Find 'needle' in the answer and change one byte of it. */
static void
flip(uint8_t *b, size_t len, const char *needle, size_t at)
{
	uint8_t *p = memmem(b, len, needle, strlen(needle));

	assert_non_null(p);
	p[at] ^= 0x01;
}

static void
tamper_ima_path(uint8_t *b, size_t len)
{
	flip(b, len, "/usr/lib/x86_64-linux-gnu/libc.so.6", 6);
}

static void
tamper_ima_hash(uint8_t *b, size_t len)
{
	/* The libc entry's file digest ("sha256:\0" + 32 bytes). */
	uint8_t *p = memmem(b, len, "sha256:", 7);

	assert_non_null(p);
	p = memmem(p + 7, len - (size_t)(p + 7 - b), "sha256:", 7);
	assert_non_null(p);
	p = memmem(p + 7, len - (size_t)(p + 7 - b), "sha256:", 7);
	assert_non_null(p);
	p[8] ^= 0x80;
}

static void
tamper_evlog_secureboot(uint8_t *b, size_t len)
{
	/* UTF-16 "SecureBoot" then its one data byte: 1 -> 0. */
	static const uint8_t sb[] = {'S', 0, 'e', 0, 'c', 0, 'u', 0, 'r', 0,
	    'e', 0, 'B', 0, 'o', 0, 'o', 0, 't', 0};
	uint8_t *p = memmem(b, len, sb, sizeof(sb));

	assert_non_null(p);
	assert_int_equal(p[sizeof(sb)], 1);
	p[sizeof(sb)] = 0;
}

static void
tamper_evlog_event(uint8_t *b, size_t len)
{
	flip(b, len, "bootloader", 0);
}

static void
tamper_evlog_digest(uint8_t *b, size_t len)
{
	/* The bootloader event's SHA-256 digest: 34 + 4 bytes before its
	 * data ("bootloader"), PCR 4. */
	uint8_t *p = memmem(b, len, "bootloader", 10);

	assert_non_null(p);
	p[-4 - 1] ^= 0x01;
}

static void
test_tampered_entries(void **state)
{
	struct att_meas_policy pol = strict_pol();
	struct att_meas_verdict mv;
	struct att_verdict v;
	uint8_t bh[32];

	verified(E.binary, &v, bh);
	assert_int_equal(round_trip(&v, bh, E.evlog, E.ima, &pol,
			     tamper_ima_path, &mv, NULL),
	    SM_ERR_VERIFY);
	assert_int_equal(mv.reason, ATT_M_IMA_REPLAY);
	assert_int_equal(mv.pcr, 10);
	assert_non_null(strstr(mv.why, "PCR 10"));
	assert_int_equal(mv.binary, ATT_CLAIM_SELF_REPORTED);
	assert_false(mv.eligible);

	assert_int_equal(round_trip(&v, bh, E.evlog, E.ima, &pol,
			     tamper_ima_hash, &mv, NULL),
	    SM_ERR_VERIFY);
	assert_int_equal(mv.reason, ATT_M_IMA_REPLAY);

	/* SecureBoot=1 rewritten to 0: the data no longer hashes to the
	 * event's digest. */
	assert_int_equal(round_trip(&v, bh, E.evlog, E.ima, &pol,
			     tamper_evlog_secureboot, &mv, NULL),
	    SM_ERR_VERIFY);
	assert_int_equal(mv.reason, ATT_M_EVLOG_BAD);
	assert_int_equal(mv.pcr, 7);
	assert_int_equal(mv.secure_boot_claim, ATT_CLAIM_SELF_REPORTED);

	/* Event data is not what PCR 4's digest covers (digest unchanged):
	 * replay still matches, data of other event types is not trusted. */
	assert_int_equal(round_trip(&v, bh, E.evlog, E.ima, &pol,
			     tamper_evlog_event, &mv, NULL),
	    0);
	/* A digest changed: PCR 4 no longer replays. */
	assert_int_equal(round_trip(&v, bh, E.evlog, E.ima, &pol,
			     tamper_evlog_digest, &mv, NULL),
	    SM_ERR_VERIFY);
	assert_int_equal(mv.reason, ATT_M_EVLOG_REPLAY);
	assert_int_equal(mv.pcr, 4);
	assert_non_null(strstr(mv.why, "PCR 4"));
}

static void
test_binary_not_measured(void **state)
{
	struct att_meas_policy pol = {.require_binary = true};
	struct att_meas_policy none = {0};
	struct att_meas_verdict mv;
	struct att_verdict v;
	uint8_t other[32], bh[32];

	memset(other, 0x77, sizeof(other));
	verified(other, &v, bh);
	assert_int_equal(
	    round_trip(&v, bh, E.evlog, E.ima, &pol, NULL, &mv, NULL),
	    SM_ERR_VERIFY);
	assert_int_equal(mv.reason, ATT_M_BINARY_NOT_MEASURED);
	assert_non_null(strstr(mv.why, "binary self-measured"));
	assert_int_equal(mv.binary, ATT_CLAIM_SELF_REPORTED);
	assert_true(mv.ima_ok);
	/* Without the requirement: eligible, and honest about the level. */
	assert_int_equal(
	    round_trip(&v, bh, E.evlog, E.ima, &none, NULL, &mv, NULL), 0);
	assert_int_equal(mv.binary, ATT_CLAIM_SELF_REPORTED);
	assert_int_equal(mv.secure_boot_claim, ATT_CLAIM_KERNEL_MEASURED);

	/* A host without IMA (no list): binary self-measured, never more. */
	verified(E.binary, &v, bh);
	assert_int_equal(
	    round_trip(&v, bh, E.none, E.none, &pol, NULL, &mv, NULL),
	    SM_ERR_VERIFY);
	assert_int_equal(mv.reason, ATT_M_NO_IMA);
	assert_non_null(strstr(mv.why, "binary self-measured"));
	assert_int_equal(
	    round_trip(&v, bh, E.none, E.none, &none, NULL, &mv, NULL), 0);
	assert_int_equal(mv.binary, ATT_CLAIM_SELF_REPORTED);
	assert_int_equal(mv.secure_boot_claim, ATT_CLAIM_SELF_REPORTED);
	assert_true(mv.quote_ok);
}

static void
test_pcr_policy_and_allowlist(void **state)
{
	struct att_meas_policy pol = {.pcr = E.pol_bad};
	struct att_meas_verdict mv;
	struct att_verdict v;
	uint8_t bh[32];

	verified(E.binary, &v, bh);
	assert_int_equal(
	    round_trip(&v, bh, E.evlog, E.ima, &pol, NULL, &mv, NULL),
	    SM_ERR_VERIFY);
	assert_int_equal(mv.reason, ATT_M_PCR_POLICY);
	assert_int_equal(mv.pcr, 4);
	assert_string_equal(mv.why, "PCR 4 differs from --pcr-policy");
	/* Still measured: the quote is fine, the policy says no. */
	assert_true(mv.quote_ok);

	pol = (struct att_meas_policy){.pcr = E.pol_ok, .allow = E.allow_short};
	assert_int_equal(
	    round_trip(&v, bh, E.evlog, E.ima, &pol, NULL, &mv, NULL),
	    SM_ERR_VERIFY);
	assert_int_equal(mv.reason, ATT_M_ALLOWLIST);
	assert_non_null(strstr(mv.why, "/usr/lib/x86_64-linux-gnu/libc.so.6"));
	/* No IMA list at all cannot satisfy an allowlist. */
	assert_int_equal(
	    round_trip(&v, bh, E.evlog, E.none, &pol, NULL, &mv, NULL),
	    SM_ERR_VERIFY);
	assert_int_equal(mv.reason, ATT_M_NO_IMA);
}

static void
test_replayed_measurement(void **state)
{
	struct att_meas_policy pol = strict_pol();
	struct att_meas_verdict mv;
	struct att_verdict v;
	uint8_t bh[32], nonce[ATT_NONCE_LEN];
	struct buf old;

	verified(E.binary, &v, bh);
	buf_init(&old, ATT_MEAS_MAX);
	assert_int_equal(
	    round_trip(&v, bh, E.evlog, E.ima, &pol, NULL, &mv, &old), 0);
	/* The same section for a fresh nonce: the quote is for the old one. */
	randombytes_buf(nonce, sizeof(nonce));
	assert_int_equal(
	    att_meas_check(&pol, &v, nonce, buf_data(&old), old.len, &mv),
	    SM_ERR_VERIFY);
	assert_int_equal(mv.reason, ATT_M_BAD_QUOTE);
	assert_int_equal(mv.binary, ATT_CLAIM_SELF_REPORTED);
	/* Without requirements, a bad quote is not a refusal but proves
	 * nothing either. */
	assert_int_equal(
	    att_meas_check(NULL, &v, nonce, buf_data(&old), old.len, &mv), 0);
	assert_int_equal(mv.binary, ATT_CLAIM_SELF_REPORTED);
	buf_clear(&old);
}

/* Hosts that were not asked, or cannot measure, send no section. */
static void
test_not_asked(void **state)
{
	struct att_live_cfg c;
	struct att_live l;
	struct att_answer a;
	struct att_verdict v;
	struct buf chal, ans;
	uint8_t bh[32];

	verified(E.binary, &v, bh);
	att_live_init(&l);
	att_live_cfg_default(&c);
	buf_init(&chal, ATT_CHAL_MAX);
	buf_init(&ans, ATT_ANSWER_MEAS_MAX);
	assert_int_equal(att_live_challenge(&l, 5000, NULL, &chal), 0);
	assert_int_equal(
	    att_answer_make(E.p, buf_data(&chal), chal.len, bh, &ans), 0);
	assert_true(ans.len <= ATT_ANSWER_MAX);
	assert_int_equal(att_answer_parse(buf_data(&ans), ans.len, &a), 0);
	assert_null(a.meas);
	assert_int_equal(
	    att_live_answer(&l, &c, &v, E.pins, buf_data(&ans), ans.len, 5001),
	    0);
	buf_clear(&chal);
	buf_clear(&ans);
	att_live_clear(&l);
}

static double
ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/*
 * Figures, not assertions: what measurements add to a challenge on swtpm
 * (a second quote, reading the logs) and to the verifier (replay), and the
 * replay of a list at the size cap.
 */
static void
test_costs(void **state)
{
	struct att_meas_policy pol = strict_pol();
	struct att_meas_verdict mv;
	struct att_live_cfg c;
	struct att_live l;
	struct att_answer a;
	struct att_verdict v;
	struct buf chal, ans;
	struct timespec t0;
	struct ima_entry e;
	uint8_t bh[32], nonce[ATT_NONCE_LEN], pcr[32];
	double plain_ms = 0, meas_ms = 0, check_ms = 0, replay_ms;
	size_t len, off = 0, n, prefix, entries;
	uint8_t *one, *big;
	const int rounds = 20;

	verified(E.binary, &v, bh);
	E.p->evlog_path = E.evlog;
	E.p->ima_path = E.ima;
	att_live_cfg_default(&c);
	buf_init(&chal, ATT_CHAL_MAX);
	buf_init(&ans, ATT_ANSWER_MEAS_MAX);
	for (int i = 0; i < rounds; i++) {
		for (int want = 0; want < 2; want++) {
			att_live_init(&l);
			buf_reset(&chal);
			buf_reset(&ans);
			assert_int_equal(
			    att_live_challenge(&l, 5000, NULL, &chal), 0);
			if (want)
				assert_int_equal(
				    att_chal_add_measure(&chal, 0), 0);
			memcpy(nonce, l.nonce, sizeof(nonce));
			clock_gettime(CLOCK_MONOTONIC, &t0);
			assert_int_equal(att_answer_make(E.p, buf_data(&chal),
					     chal.len, bh, &ans),
			    0);
			*(want ? &meas_ms : &plain_ms) += ms_since(&t0);
			if (!want)
				continue;
			assert_int_equal(
			    att_answer_parse(buf_data(&ans), ans.len, &a), 0);
			clock_gettime(CLOCK_MONOTONIC, &t0);
			assert_int_equal(att_meas_check(&pol, &v, nonce, a.meas,
					     a.meas_len, &mv),
			    0);
			check_ms += ms_since(&t0);
		}
	}
	/* A list at the cap: the libc entry repeated. */
	one = malloc(IMA_LIST_MAX);
	assert_non_null(one);
	len = strlen(str(item(E.vec, "ima", 0), "list")) / 2;
	assert_int_equal(
	    sm_unhex(one, len, str(item(E.vec, "ima", 0), "list")), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ima_next(one, len, &off, &e), 0);
	{
		/* [start, off) is the third entry (libc). */
		size_t start = 0, o2 = 0;

		for (int i = 0; i < 2; i++)
			assert_int_equal(ima_next(one, len, &o2, &e), 0);
		start = o2;
		n = off - start; /* the libc entry's bytes */
		assert_non_null(big = malloc(IMA_LIST_MAX));
		for (entries = 0; (entries + 1) * n <= IMA_LIST_MAX; entries++)
			memcpy(big + entries * n, one + start, n);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(
	    ima_replay(big, entries * n, NULL, &prefix, &len, pcr), 0);
	replay_ms = ms_since(&t0);
	assert_int_equal(len, entries);
	print_message("costs on swtpm (%d rounds): challenge answer %.2f ms, "
		      "with measurements %.2f ms; verifier check %.3f ms; "
		      "replay of %zu IMA entries (%zu KiB, the cap) %.2f ms\n",
	    rounds, plain_ms / rounds, meas_ms / rounds, check_ms / rounds,
	    entries, entries * n / 1024, replay_ms);
	free(one);
	free(big);
	buf_clear(&chal);
	buf_clear(&ans);
}

/*
 * Incremental IMA: after the first answer the verifier asks from the entry
 * count it holds; the host sends only newer entries; the verifier replays
 * from its stored PCR 10. Judgments carry over; a wrong base is refused and
 * reset so the next challenge asks for the whole list. Runs last: it
 * extends PCR 10 beyond what the other tests' list replays to.
 */
static void
test_incremental_ima(void **state)
{
	struct att_meas_policy pol = {
	    .allow = E.allow_ok, .require_binary = true};
	struct att_ima_state st;
	struct att_meas_verdict mv;
	struct att_verdict v;
	uint8_t bh[32];
	size_t sec_full = 0, sec_inc = 0;

	memset(&st, 0, sizeof(st));
	verified(E.binary, &v, bh);
	rt_state = &st;
	keep_len = &sec_full;
	assert_int_equal(att_ima_state_from(&st, &v), 0);
	assert_int_equal(
	    round_trip(&v, bh, E.evlog, E.ima, &pol, NULL, &mv, NULL), 0);
	assert_int_equal(st.n, 4);
	assert_int_equal(mv.ima_entries, 4);
	assert_int_equal(att_ima_state_from(&st, &v), 4);

	/* Nothing new: no entry travels, the binary stays measured. */
	keep_len = &sec_inc;
	assert_int_equal(
	    round_trip(&v, bh, E.evlog, E.ima, &pol, NULL, &mv, NULL), 0);
	assert_int_equal(mv.ima_entries, 0);
	assert_int_equal(mv.ima_quoted, 4);
	assert_int_equal(mv.binary, ATT_CLAIM_KERNEL_MEASURED);
	assert_int_equal(
	    sec_full - sec_inc, strlen(str(item(E.vec, "ima", 0), "list")) / 2);

	/* The kernel measures one more (unlisted) file. */
	assert_int_equal(
	    sh("TPM2TOOLS_TCTI=%s tpm2_pcrextend 10:sha256=%s "
	       ">>%s/extend.log 2>&1",
		E.tcti,
		cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
				       item(E.vec, "ima", 1), "extends"),
		    3)
		    ->valuestring,
		E.dir),
	    0);
	assert_int_equal(
	    round_trip(&v, bh, E.evlog, E.ima_long, &pol, NULL, &mv, NULL),
	    SM_ERR_VERIFY);
	assert_int_equal(mv.ima_entries, 1);
	assert_int_equal(mv.reason, ATT_M_ALLOWLIST);
	assert_string_equal(
	    mv.why, "IMA entry 4 not in --ima-allowlist: /tmp/evil");
	assert_int_equal(st.n, 5);
	/* The violation is remembered, though the entry is not sent again. */
	assert_int_equal(
	    round_trip(&v, bh, E.evlog, E.ima_long, &pol, NULL, &mv, NULL),
	    SM_ERR_VERIFY);
	assert_int_equal(mv.ima_entries, 0);
	assert_string_equal(
	    mv.why, "IMA entry 4 not in --ima-allowlist: /tmp/evil");

	/* A base that does not replay (here: the verifier's own, corrupted)
	 * is refused, forgotten, and the next round is whole. */
	st.pcr[0] ^= 1;
	assert_int_equal(
	    round_trip(&v, bh, E.evlog, E.ima_long, &pol, NULL, &mv, NULL),
	    SM_ERR_VERIFY);
	assert_int_equal(mv.reason, ATT_M_IMA_REPLAY);
	assert_true(mv.ima_retry);
	assert_int_equal(st.n, 0);
	pol.allow = NULL;
	assert_int_equal(
	    round_trip(&v, bh, E.evlog, E.ima_long, &pol, NULL, &mv, NULL), 0);
	assert_int_equal(mv.ima_entries, 5);
	assert_int_equal(st.n, 5);

	/* Asked from past the end of the host's list (a reboot): the host
	 * sends it whole. */
	st.n = 99;
	assert_int_equal(
	    round_trip(&v, bh, E.evlog, E.ima_long, &pol, NULL, &mv, NULL), 0);
	assert_int_equal(mv.ima_entries, 5);
	assert_int_equal(st.n, 5);
	rt_state = NULL;
	keep_len = NULL;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accepted),
	    cmocka_unit_test(test_tampered_entries),
	    cmocka_unit_test(test_binary_not_measured),
	    cmocka_unit_test(test_pcr_policy_and_allowlist),
	    cmocka_unit_test(test_replayed_measurement),
	    cmocka_unit_test(test_not_asked), cmocka_unit_test(test_costs),
	    cmocka_unit_test(test_incremental_ima), /* last: extends PCR 10 */
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name(
	    "measure_tpm", tests, setup, teardown);
}
