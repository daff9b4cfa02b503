/*
 * Attestation against a real (software) TPM: swtpm started by this test in
 * socket mode on loopback, state in a temporary directory, EK certificate from
 * swtpm_setup --create-ek-cert, issued by swtpm's local CA
 * (/var/lib/swtpm-localca), which the test copies into a --tpm-ca directory.
 * An unrelated CA made with openssl(1) is the untrusted case. Without swtpm
 * the test fails loudly (CI installs swtpm swtpm-tools tpm2-tools).
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include "attest/blob.h"
#include "attest/challenge.h"
#include "attest/ec.h"
#include "attest/pins.h"
#include "attest/provider.h"
#include "attest/verify.h"
#include "core/util.h"

#define LOCALCA "/var/lib/swtpm-localca"

struct env {
	char dir[64]; /* TPM state + CA dirs */
	char tcti[128];
	pid_t pid;
	struct att_trust *trusted;
	struct att_trust *untrusted;
};

static struct env E;
static const uint8_t node_a[32] = {0xaa, 1};
static const uint8_t node_b[32] = {0xbb, 2};

static double
ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
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

/*
 * swtpm needs two adjacent ports. Pick them below the ephemeral range
 * (32768 and up), where TIME_WAIT sockets of a busy test run pile up.
 */
static int
pick_port(void)
{
	int i, port;

	for (i = 0; i < 200; i++) {
		port = 20000 + 2 * (int)randombytes_uniform(6000);
		if (port_free(port) && port_free(port + 1))
			return port;
	}
	return -1;
}

static int
wait_port(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int i, fd, ok;

	for (i = 0; i < 100; i++) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok)
			return 0;
		usleep(50000);
	}
	return -1;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int
sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int
setup(void **state)
{
	char srv[64], ctl[64], st[96], path[128];
	int port;

	if (access("/usr/bin/swtpm", X_OK) != 0 &&
	    sh("command -v swtpm >/dev/null") != 0) {
		fprintf(stderr,
		    "test_attest_tpm: swtpm is not installed "
		    "(apt-get install swtpm swtpm-tools tpm2-tools)\n");
		return -1;
	}
	snprintf(E.dir, sizeof(E.dir), "/tmp/sm-attest-tpm-XXXXXX");
	if (mkdtemp(E.dir) == NULL)
		return -1;
	if (sh("mkdir -p %s/state %s/ca %s/bad && "
	       "swtpm_setup --tpm2 --tpmstate %s/state --create-ek-cert "
	       "--create-platform-cert --overwrite >%s/setup.log 2>&1",
		E.dir, E.dir, E.dir, E.dir, E.dir) != 0) {
		fprintf(stderr,
		    "test_attest_tpm: swtpm_setup failed, see "
		    "%s/setup.log\n",
		    E.dir);
		return -1;
	}
	if (sh("cp " LOCALCA "/swtpm-localca-rootca-cert.pem " LOCALCA
	       "/issuercert.pem %s/ca/ && "
	       "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	       "-nodes -subj /CN=untrusted-test-ca -days 2 -keyout "
	       "%s/bad/key.pem -out %s/bad/ca.pem >/dev/null 2>&1 && "
	       "rm %s/bad/key.pem",
		E.dir, E.dir, E.dir, E.dir) != 0)
		return -1;
	if ((port = pick_port()) < 0)
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
	snprintf(path, sizeof(path), "%s/ca", E.dir);
	if (att_trust_load_dir(path, &E.trusted) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/bad", E.dir);
	if (att_trust_load_dir(path, &E.untrusted) != 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	if (E.pid > 0) {
		kill(E.pid, SIGTERM);
		waitpid(E.pid, NULL, 0);
	}
	att_trust_free(E.trusted);
	att_trust_free(E.untrusted);
	if (E.dir[0] != '\0')
		sh("rm -rf %s", E.dir);
	return 0;
}

static void
make_blob(struct att_blob *b, const uint8_t node[32], struct infkey_pub *ik)
{
	struct posture p;

	ik->epoch = 42;
	memset(ik->pk, 0x5a, sizeof(ik->pk));
	posture_init(&p);
	p.os = POSTURE_OS_LINUX;
	p.no_new_privs = TRI_TRUE;
	att_blob_init(b, node, ik, &p);
	att_platform_probe(b);
}

static void
tpm_message(struct att_provider *p, const uint8_t node[32],
    struct infkey_pub *ik, struct buf *msg, uint8_t bh[32])
{
	struct att_blob b;

	make_blob(&b, node, ik);
	buf_init(msg, ATT_MSG_MAX);
	assert_int_equal(att_attest(p, &b, msg, bh), 0);
}

static void
policy(struct att_policy *pol, const struct att_trust *t,
    const struct att_pins *pins)
{
	memset(pol, 0, sizeof(*pol));
	pol->min_level = ATT_LEVEL_TPM;
	pol->trust = t;
	pol->pins = pins;
}

/* Verifier and host run the activation round in one challenge. */
static int
activate_round(struct att_provider *host, const struct att_verdict *v,
    const uint8_t bh[32], struct att_pins *pins, struct att_live *l,
    double *activate_ms)
{
	struct att_activation act;
	struct att_live_cfg c;
	struct buf chal, ans;
	struct timespec t0;
	int r;

	att_live_cfg_default(&c);
	buf_init(&chal, ATT_CHAL_MAX);
	buf_init(&ans, ATT_ANSWER_MAX);
	assert_int_equal(att_activation_new(v, &act), 0);
	assert_int_equal(att_live_challenge(l, 1000, &act, &chal), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = att_answer_make(host, buf_data(&chal), chal.len, bh, &ans);
	if (activate_ms != NULL)
		*activate_ms = ms_since(&t0);
	if (r == 0)
		r = att_live_answer(
		    l, &c, v, pins, buf_data(&ans), ans.len, 1001);
	buf_clear(&chal);
	buf_clear(&ans);
	return r;
}

static void
test_tpm_valid_activation_and_timings(void **state)
{
	struct att_provider *p;
	struct att_pins *pins;
	struct att_policy pol;
	struct att_verdict v;
	struct att_live l;
	struct att_live_cfg c;
	struct infkey_pub ik;
	struct buf msg;
	struct timespec t0;
	uint8_t bh[32];
	double open_ms, quote_ms, verify_ms, act_ms;
	int i;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(att_tpm_open(E.tcti, &p), 0);
	open_ms = ms_since(&t0);
	assert_int_equal(p->level, ATT_LEVEL_TPM);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	tpm_message(p, node_a, &ik, &msg, bh);
	quote_ms = ms_since(&t0);
	assert_int_equal(att_pins_new(&pins), 0);
	policy(&pol, E.trusted, pins);

	/* Chain and quote fine, but the AK is not proven yet. */
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v),
	    SM_ERR_AGAIN);
	assert_int_equal(v.status, ATT_UNVERIFIED);
	assert_int_equal(v.reason, ATT_R_AK_NOT_ACTIVATED);
	assert_int_equal(v.level, ATT_LEVEL_NONE);
	assert_true(v.tpm_manufacturer != 0);
	att_live_init(&l);
	att_live_cfg_default(&c);
	assert_false(att_route_ok(&v, &l, &c, ATT_LEVEL_TPM, &ik, 1001));

	assert_int_equal(activate_round(p, &v, bh, pins, &l, &act_ms), 0);
	assert_int_equal(att_pins_count(pins), 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 100; i++)
		assert_int_equal(
		    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v),
		    0);
	verify_ms = ms_since(&t0) / 100;
	assert_int_equal(v.status, ATT_VERIFIED);
	assert_int_equal(v.level, ATT_LEVEL_TPM);
	assert_true(att_route_ok(&v, &l, &c, ATT_LEVEL_TPM, &ik, 1001));
	assert_false(att_live_attested(&l, &c, 1001 + c.window_ms));

	print_message("timings on swtpm: open %.2f ms, attest (quote) %.2f ms, "
		      "challenge+activate %.2f ms, verify %.3f ms\n",
	    open_ms, quote_ms, act_ms, verify_ms);
	buf_clear(&msg);
	att_live_clear(&l);
	att_pins_free(pins);
	att_provider_free(p);
}

static void
test_tpm_untrusted_chain(void **state)
{
	struct att_provider *p;
	struct att_policy pol;
	struct att_verdict v;
	struct infkey_pub ik;
	struct buf msg;
	uint8_t bh[32];

	assert_int_equal(att_tpm_open(E.tcti, &p), 0);
	tpm_message(p, node_a, &ik, &msg, bh);
	policy(&pol, E.untrusted, NULL);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v),
	    SM_ERR_VERIFY);
	assert_int_equal(v.reason, ATT_R_EK_UNTRUSTED);
	policy(&pol, NULL, NULL); /* no --tpm-ca at all */
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v),
	    SM_ERR_VERIFY);
	assert_int_equal(v.reason, ATT_R_EK_UNTRUSTED);
	buf_clear(&msg);
	att_provider_free(p);
}

static void
test_tpm_tampered(void **state)
{
	struct att_provider *p;
	struct att_policy pol;
	struct att_verdict v;
	struct att_msg m;
	struct infkey_pub ik;
	struct buf msg;
	uint8_t bh[32], *d;
	size_t i, off;

	assert_int_equal(att_tpm_open(E.tcti, &p), 0);
	tpm_message(p, node_a, &ik, &msg, bh);
	policy(&pol, E.trusted, NULL);
	d = buf_data(&msg);
	assert_int_equal(att_msg_parse(d, msg.len, &m), 0);
	/* Every byte of the blob: the quote no longer covers it. */
	for (i = 0; i < m.blob_len; i++) {
		off = (size_t)(m.blob - d) + i;
		d[off] ^= 0x01;
		assert_int_equal(att_verify(&pol, d, msg.len, node_a, &ik, &v),
		    SM_ERR_VERIFY);
		assert_true(v.reason == ATT_R_QUOTE_MISMATCH ||
		    v.reason == ATT_R_MALFORMED ||
		    v.reason == ATT_R_UNSUPPORTED ||
		    v.reason == ATT_R_LEVEL_CLAIM);
		d[off] ^= 0x01;
	}
	/* A PCR value: digest mismatch. */
	off = (size_t)(m.tpm.pcrs - d) + 3;
	d[off] ^= 0x01;
	assert_int_equal(
	    att_verify(&pol, d, msg.len, node_a, &ik, &v), SM_ERR_VERIFY);
	assert_int_equal(v.reason, ATT_R_PCR_MISMATCH);
	d[off] ^= 0x01;
	/* The quote body (its clock field) and the signature. */
	off = (size_t)(m.tpm.attest - d) + m.tpm.attest_len - 40;
	d[off] ^= 0x01;
	assert_int_equal(
	    att_verify(&pol, d, msg.len, node_a, &ik, &v), SM_ERR_VERIFY);
	assert_int_equal(v.reason, ATT_R_BAD_SIGNATURE);
	d[off] ^= 0x01;
	off = (size_t)(m.tpm.sig - d) + m.tpm.sig_len - 1;
	d[off] ^= 0x01;
	assert_int_equal(
	    att_verify(&pol, d, msg.len, node_a, &ik, &v), SM_ERR_VERIFY);
	assert_int_equal(v.reason, ATT_R_BAD_SIGNATURE);
	d[off] ^= 0x01;
	/* The EK certificate's signature. */
	off = (size_t)(m.tpm.certs[0] - d) + m.tpm.cert_lens[0] - 5;
	d[off] ^= 0x01;
	assert_int_equal(
	    att_verify(&pol, d, msg.len, node_a, &ik, &v), SM_ERR_VERIFY);
	assert_int_equal(v.reason, ATT_R_EK_UNTRUSTED);
	d[off] ^= 0x01;
	/* Untouched again: chain fine, waiting for activation. */
	assert_int_equal(
	    att_verify(&pol, d, msg.len, node_a, &ik, &v), SM_ERR_AGAIN);
	assert_int_equal(
	    att_verify(&pol, d, msg.len, node_b, &ik, &v), SM_ERR_VERIFY);
	assert_int_equal(v.reason, ATT_R_WRONG_NODE_ID);
	ik.epoch++;
	assert_int_equal(
	    att_verify(&pol, d, msg.len, node_a, &ik, &v), SM_ERR_VERIFY);
	assert_int_equal(v.reason, ATT_R_WRONG_INFKEY);
	buf_clear(&msg);
	att_provider_free(p);
}

/*
 * The forger's case: a software P-256 key dressed as an AK (a TPMT_PUBLIC
 * with every attribute set), a quote it signed itself, and the genuine EK
 * certificate copied from a real TPM (certificates are public). Signature,
 * quote and chain all check out; credential activation is what stops it.
 */
static void
test_tpm_software_key_posing_as_ak(void **state)
{
	static const uint8_t priv[32] = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};
	struct att_provider *p;
	struct att_pins *pins;
	struct att_policy pol;
	struct att_verdict v;
	struct att_msg m;
	struct att_tpm_evidence e;
	struct att_activation act;
	struct infkey_pub ik;
	struct buf msg, ev, forged;
	TPMT_PUBLIC pub;
	TPMT_SIGNATURE sig;
	EVP_PKEY *key;
	uint8_t bh[32], point[65], rs[64], fpub[ATT_TPM_PUB_MAX];
	uint8_t fsig[ATT_TPM_SIG_MAX], secret[ATT_SECRET_LEN];
	size_t off = 0, soff = 0;

	assert_int_equal(att_tpm_open(E.tcti, &p), 0);
	tpm_message(p, node_a, &ik, &msg, bh);
	assert_int_equal(att_msg_parse(buf_data(&msg), msg.len, &m), 0);

	assert_int_equal(att_ec_key(priv, &key), 0);
	assert_int_equal(att_ec_pub(key, point), 0);
	memset(&pub, 0, sizeof(pub));
	assert_int_equal(Tss2_MU_TPMT_PUBLIC_Unmarshal(
			     m.tpm.ak_pub, m.tpm.ak_pub_len, &off, &pub),
	    0);
	memcpy(pub.unique.ecc.x.buffer, point + 1, 32);
	memcpy(pub.unique.ecc.y.buffer, point + 33, 32);
	pub.unique.ecc.x.size = pub.unique.ecc.y.size = 32;
	off = 0;
	assert_int_equal(
	    Tss2_MU_TPMT_PUBLIC_Marshal(&pub, fpub, sizeof(fpub), &off), 0);
	assert_int_equal(
	    att_ec_sign(key, m.tpm.attest, m.tpm.attest_len, rs), 0);
	memset(&sig, 0, sizeof(sig));
	sig.sigAlg = TPM2_ALG_ECDSA;
	sig.signature.ecdsa.hash = TPM2_ALG_SHA256;
	sig.signature.ecdsa.signatureR.size = 32;
	memcpy(sig.signature.ecdsa.signatureR.buffer, rs, 32);
	sig.signature.ecdsa.signatureS.size = 32;
	memcpy(sig.signature.ecdsa.signatureS.buffer, rs + 32, 32);
	assert_int_equal(
	    Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, fsig, sizeof(fsig), &soff), 0);
	e = m.tpm;
	e.ak_pub = fpub;
	e.ak_pub_len = off;
	e.sig = fsig;
	e.sig_len = soff;
	buf_init(&ev, ATT_MSG_MAX);
	buf_init(&forged, ATT_MSG_MAX);
	assert_int_equal(att_tpm_evidence_write(&e, &ev), 0);
	assert_int_equal(
	    att_msg_write(m.blob, m.blob_len, buf_data(&ev), ev.len, &forged),
	    0);

	assert_int_equal(att_pins_new(&pins), 0);
	policy(&pol, E.trusted, pins);
	assert_int_equal(
	    att_verify(&pol, buf_data(&forged), forged.len, node_a, &ik, &v),
	    SM_ERR_AGAIN);
	assert_int_equal(v.reason, ATT_R_AK_NOT_ACTIVATED);
	/* The only TPM the forger has cannot activate it: wrong AK name. */
	assert_int_equal(att_activation_new(&v, &act), 0);
	assert_int_not_equal(p->ops->activate(p, act.cred, act.cred_len,
				 act.seed, act.seed_len, secret),
	    0);
	/* Guessing the secret fails; nothing is pinned. */
	memset(secret, 0, sizeof(secret));
	assert_int_equal(
	    att_activation_finish(&act, secret, sizeof(secret), pins),
	    SM_ERR_DECRYPT);
	assert_int_equal(att_pins_count(pins), 0);
	assert_int_equal(
	    att_verify(&pol, buf_data(&forged), forged.len, node_a, &ik, &v),
	    SM_ERR_AGAIN);
	assert_int_not_equal(v.status, ATT_VERIFIED);

	EVP_PKEY_free(key);
	buf_clear(&ev);
	buf_clear(&forged);
	buf_clear(&msg);
	att_pins_free(pins);
	att_provider_free(p);
}

static void
test_tpm_ak_not_activated_and_changed(void **state)
{
	struct att_provider *p;
	struct att_pins *pins;
	struct att_policy pol;
	struct att_verdict v;
	struct att_live l;
	struct att_live_cfg c;
	struct att_activation act;
	struct infkey_pub ik;
	struct buf msg, chal, ans;
	uint8_t bh[32], other_ak[32];

	assert_int_equal(att_tpm_open(E.tcti, &p), 0);
	tpm_message(p, node_a, &ik, &msg, bh);
	assert_int_equal(att_pins_new(&pins), 0);
	policy(&pol, E.trusted, pins);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v),
	    SM_ERR_AGAIN);

	/* An answer whose activated secret is wrong: refused, not pinned. */
	att_live_init(&l);
	att_live_cfg_default(&c);
	buf_init(&chal, ATT_CHAL_MAX);
	buf_init(&ans, ATT_ANSWER_MAX);
	assert_int_equal(att_activation_new(&v, &act), 0);
	assert_int_equal(att_live_challenge(&l, 10, &act, &chal), 0);
	assert_int_equal(
	    att_answer_make(p, buf_data(&chal), chal.len, bh, &ans), 0);
	buf_data(&ans)[ans.len - 1] ^= 0x01;
	assert_int_equal(
	    att_live_answer(&l, &c, &v, pins, buf_data(&ans), ans.len, 11),
	    SM_ERR_DECRYPT);
	assert_int_equal(att_pins_count(pins), 0);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v),
	    SM_ERR_AGAIN);
	/* An answer without the activation: refused too. */
	buf_reset(&chal);
	buf_reset(&ans);
	assert_int_equal(att_activation_new(&v, &act), 0);
	assert_int_equal(att_live_challenge(&l, 20, &act, &chal), 0);
	{
		struct att_chal ch;
		struct buf plain;

		assert_int_equal(
		    att_chal_parse(buf_data(&chal), chal.len, &ch), 0);
		ch.cred = ch.seed = NULL;
		ch.cred_len = ch.seed_len = 0;
		buf_init(&plain, ATT_CHAL_MAX);
		assert_int_equal(att_chal_write(&ch, &plain), 0);
		assert_int_equal(
		    att_answer_make(p, buf_data(&plain), plain.len, bh, &ans),
		    0);
		buf_clear(&plain);
	}
	assert_int_equal(
	    att_live_answer(&l, &c, &v, pins, buf_data(&ans), ans.len, 21),
	    SM_ERR_DECRYPT);
	assert_int_equal(att_pins_count(pins), 0);

	/* Pinned to another AK: refused and reported. */
	memset(other_ak, 0x77, sizeof(other_ak));
	assert_int_equal(att_pins_add(pins, node_a, other_ak), 0);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v),
	    SM_ERR_VERIFY);
	assert_int_equal(v.reason, ATT_R_AK_CHANGED);
	assert_string_equal(
	    att_reason_str(v.reason), "AK changed for pinned node");
	/* Activation cannot overwrite a pin either. */
	assert_int_equal(att_pins_remove(pins, node_a), 0);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v),
	    SM_ERR_AGAIN);
	assert_int_equal(att_pins_add(pins, node_a, other_ak), 0);
	assert_int_equal(
	    activate_round(p, &v, bh, pins, &l, NULL), SM_ERR_PERM);
	buf_clear(&chal);
	buf_clear(&ans);
	buf_clear(&msg);
	att_live_clear(&l);
	att_pins_free(pins);
	att_provider_free(p);
}

static void
test_tpm_challenges(void **state)
{
	struct att_provider *p;
	struct att_pins *pins;
	struct att_policy pol;
	struct att_verdict v;
	struct att_live l;
	struct att_live_cfg c;
	struct infkey_pub ik;
	struct buf msg, chal1, chal2, ans1, ans2;
	uint8_t bh[32];
	struct timespec t0;
	double q_ms;

	assert_int_equal(att_tpm_open(E.tcti, &p), 0);
	tpm_message(p, node_a, &ik, &msg, bh);
	assert_int_equal(att_pins_new(&pins), 0);
	policy(&pol, E.trusted, pins);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v),
	    SM_ERR_AGAIN);
	att_live_init(&l);
	att_live_cfg_default(&c);
	assert_int_equal(activate_round(p, &v, bh, pins, &l, NULL), 0);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v), 0);

	buf_init(&chal1, ATT_CHAL_MAX);
	buf_init(&chal2, ATT_CHAL_MAX);
	buf_init(&ans1, ATT_ANSWER_MAX);
	buf_init(&ans2, ATT_ANSWER_MAX);
	/* A quote for one nonce does not satisfy another. */
	assert_int_equal(att_live_challenge(&l, 5000, NULL, &chal1), 0);
	assert_int_equal(
	    att_answer_make(p, buf_data(&chal1), chal1.len, bh, &ans1), 0);
	assert_int_equal(att_live_challenge(&l, 5001, NULL, &chal2), 0);
	assert_int_equal(
	    att_live_answer(&l, &c, &v, pins, buf_data(&ans1), ans1.len, 5002),
	    SM_ERR_REPLAY);
	memcpy(buf_data(&ans1) + 1, l.nonce, ATT_NONCE_LEN);
	assert_int_equal(
	    att_live_answer(&l, &c, &v, pins, buf_data(&ans1), ans1.len, 5002),
	    SM_ERR_VERIFY);
	buf_reset(&chal2);
	assert_int_equal(att_live_challenge(&l, 6000, NULL, &chal2), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(
	    att_answer_make(p, buf_data(&chal2), chal2.len, bh, &ans2), 0);
	q_ms = ms_since(&t0);
	assert_int_equal(
	    att_live_answer(&l, &c, &v, pins, buf_data(&ans2), ans2.len, 6001),
	    0);
	/* Replayed answer. */
	assert_int_equal(
	    att_live_answer(&l, &c, &v, pins, buf_data(&ans2), ans2.len, 6002),
	    SM_ERR_REPLAY);
	assert_true(att_route_ok(&v, &l, &c, ATT_LEVEL_TPM, &ik, 6002));
	print_message("challenge answer (quote) on swtpm: %.2f ms\n", q_ms);

	buf_clear(&chal1);
	buf_clear(&chal2);
	buf_clear(&ans1);
	buf_clear(&ans2);
	buf_clear(&msg);
	att_live_clear(&l);
	att_pins_free(pins);
	att_provider_free(p);
}

/*
 * The AK lives in the state directory: a restarted provider loads the same
 * key and keeps its pin; only --new-ak replaces it; a file readable by
 * others is refused.
 */
static void
test_tpm_ak_file_survives_restart(void **state)
{
	struct att_tpm_opts o = {.tcti = E.tcti};
	struct att_provider *p;
	struct att_pins *pins;
	struct att_policy pol;
	struct att_verdict v;
	struct att_live l;
	struct infkey_pub ik;
	struct buf msg;
	uint8_t bh[32], ak1[32];
	char path[128];

	snprintf(path, sizeof(path), "%s/attest.ak", E.dir);
	unlink(path);
	o.ak_path = path;
	assert_int_equal(att_tpm_open_opts(&o, &p), 0);
	assert_int_equal(access(path, R_OK), 0);
	tpm_message(p, node_a, &ik, &msg, bh);
	assert_int_equal(att_pins_new(&pins), 0);
	policy(&pol, E.trusted, pins);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v),
	    SM_ERR_AGAIN);
	att_live_init(&l);
	assert_int_equal(activate_round(p, &v, bh, pins, &l, NULL), 0);
	memcpy(ak1, v.ak_name + 2, 32);
	/* Restart: same AK, the pin holds. */
	att_provider_free(p);
	buf_clear(&msg);
	assert_int_equal(att_tpm_open_opts(&o, &p), 0);
	tpm_message(p, node_a, &ik, &msg, bh);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v), 0);
	assert_memory_equal(v.ak_name + 2, ak1, 32);
	/* A challenge after the restart (the AK's auth came from the file). */
	assert_int_equal(activate_round(p, &v, bh, pins, &l, NULL), 0);
	att_provider_free(p);
	buf_clear(&msg);
	/* Group-readable: refused. */
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(att_tpm_open_opts(&o, &p), SM_ERR_PERM);
	assert_int_equal(chmod(path, 0600), 0);
	/* Deliberately new: another AK, refused as a change for the pin. */
	o.new_ak = true;
	assert_int_equal(att_tpm_open_opts(&o, &p), 0);
	tpm_message(p, node_a, &ik, &msg, bh);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v),
	    SM_ERR_VERIFY);
	assert_int_equal(v.reason, ATT_R_AK_CHANGED);
	buf_clear(&msg);
	att_live_clear(&l);
	att_pins_free(pins);
	att_provider_free(p);
}

/*
 * The outsider: another program with access to the same TPM (tpm2-tools,
 * as a member of the tss group or the llama-server child could run it).
 * It re-creates the primary key the old code used as its AK (control: the
 * same template gives the same public area twice, so a primary AK would be
 * reproduced) and cannot reproduce our AK's public area; it can see our
 * loaded AK's handle but cannot quote with it (no authValue).
 */
static void
test_tpm_outsider_cannot_reproduce_or_use_ak(void **state)
{
	struct att_provider *p;
	uint8_t h[32], file[1024];
	char path[160];
	FILE *f;
	size_t n;
	int i;

	if (sh("command -v tpm2_createprimary >/dev/null") != 0) {
		fprintf(stderr, "tpm2-tools missing: outsider test skipped\n");
		skip();
	}
	assert_int_equal(att_tpm_open(E.tcti, &p), 0);
	/* Our AK is loaded: the outsider sees its handle and public area. */
	assert_int_equal(
	    sh("cd %s && export TPM2TOOLS_TCTI=%s && "
	       "h=$(tpm2_getcap handles-transient | sed -n 's/^- //p' | "
	       "head -1) && test -n \"$h\" && "
	       "tpm2_readpublic -c $h -o ours.pub -f tpmt >/dev/null 2>&1 && "
	       "echo $h > ours.handle",
		E.dir, E.tcti),
	    0);
	snprintf(path, sizeof(path), "%s/ours.pub", E.dir);
	assert_non_null(f = fopen(path, "rb"));
	n = fread(file, 1, sizeof(file), f);
	fclose(f);
	assert_int_equal(att_sha256(file, n, h), 0);
	{
		struct infkey_pub ik;
		struct buf msg;
		struct att_msg m;
		uint8_t bh[32], ours[32];

		tpm_message(p, node_a, &ik, &msg, bh);
		assert_int_equal(att_msg_parse(buf_data(&msg), msg.len, &m), 0);
		assert_int_equal(
		    att_sha256(m.tpm.ak_pub, m.tpm.ak_pub_len, ours), 0);
		/* Control: the handle the outsider found is our AK. */
		assert_memory_equal(h, ours, 32);
		buf_clear(&msg);
	}
	/* Quoting with it needs the authValue: refused by the TPM, for
	 * exactly that reason (TPM_RC_BAD_AUTH, 0x9a2: the AK is noDA). */
	assert_int_not_equal(
	    sh("cd %s && TPM2TOOLS_TCTI=%s tpm2_quote -c $(cat ours.handle) "
	       "-l sha256:0,1,2,3,4,5,6,7 -q 00112233 -m q.msg -s q.sig "
	       ">q.err 2>&1",
		E.dir, E.tcti),
	    0);
	assert_int_equal(sh("grep -q 'Esys_Quote(0x9A2)' %s/q.err", E.dir), 0);
	att_provider_free(p);
	/* Re-derivation: the old fixed template, twice (control: same key). */
	for (i = 0; i < 2; i++) {
		assert_int_equal(
		    sh("cd %s && export TPM2TOOLS_TCTI=%s && "
		       "tpm2_createprimary -C e -g sha256 -G "
		       "ecc256:ecdsa-sha256:null -a "
		       "\"fixedtpm|fixedparent|sensitivedataorigin|"
		       "userwithauth|restricted|sign|noda\" -c o.ctx "
		       ">/dev/null 2>&1 && tpm2_readpublic -c o.ctx -o o%d.pub "
		       "-f tpmt >/dev/null 2>&1 && tpm2_flushcontext -t",
			E.dir, E.tcti, i),
		    0);
	}
	assert_int_equal(sh("cmp -s %s/o0.pub %s/o1.pub", E.dir, E.dir), 0);
	snprintf(path, sizeof(path), "%s/o0.pub", E.dir);
	assert_non_null(f = fopen(path, "rb"));
	n = fread(file, 1, sizeof(file), f);
	fclose(f);
	{
		uint8_t oh[32];

		assert_int_equal(att_sha256(file, n, oh), 0);
		assert_memory_not_equal(oh, h, 32);
	}
	/* Nor does a second open of our own kind give the same AK. */
	assert_int_equal(att_tpm_open(E.tcti, &p), 0);
	{
		struct infkey_pub ik;
		struct buf msg;
		struct att_msg m;
		uint8_t bh[32], second[32];

		tpm_message(p, node_a, &ik, &msg, bh);
		assert_int_equal(att_msg_parse(buf_data(&msg), msg.len, &m), 0);
		assert_int_equal(
		    att_sha256(m.tpm.ak_pub, m.tpm.ak_pub_len, second), 0);
		assert_memory_not_equal(second, h, 32);
		buf_clear(&msg);
	}
	att_provider_free(p);
}

/* An AK without restricted, or without fixedTPM: ATT_R_BAD_AK. */
static void
test_tpm_bad_ak_attributes(void **state)
{
	static const uint32_t clear[] = {
	    TPMA_OBJECT_RESTRICTED,
	    TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT,
	    0, /* control: the same path with every attribute verifies */
	};
	struct att_tpm_opts o = {.tcti = E.tcti};
	struct att_provider *p;
	struct att_policy pol;
	struct att_verdict v;
	struct infkey_pub ik;
	struct buf msg;
	uint8_t bh[32];
	size_t i;

	for (i = 0; i < SM_ARRAY_LEN(clear); i++) {
		o.ak_attrs_clear = clear[i];
		assert_int_equal(att_tpm_open_opts(&o, &p), 0);
		tpm_message(p, node_a, &ik, &msg, bh);
		policy(&pol, E.trusted, NULL);
		if (clear[i] != 0) {
			assert_int_equal(att_verify(&pol, buf_data(&msg),
					     msg.len, node_a, &ik, &v),
			    SM_ERR_VERIFY);
			assert_int_equal(v.reason, ATT_R_BAD_AK);
		} else {
			assert_int_equal(att_verify(&pol, buf_data(&msg),
					     msg.len, node_a, &ik, &v),
			    SM_ERR_AGAIN);
		}
		buf_clear(&msg);
		att_provider_free(p);
	}
}

/* The message with certs[0] replaced by the DER file 'leaf'. */
static void
swap_ek_cert(const struct buf *msg, const char *leaf, struct buf *out)
{
	struct att_msg m;
	struct att_tpm_evidence e;
	struct buf ev;
	uint8_t der[ATT_CERT_MAX];
	size_t n;
	FILE *f;

	assert_non_null(f = fopen(leaf, "rb"));
	n = fread(der, 1, sizeof(der), f);
	fclose(f);
	assert_true(n > 0 && n < sizeof(der));
	assert_int_equal(att_msg_parse(buf_data(msg), msg->len, &m), 0);
	e = m.tpm;
	e.certs[0] = der;
	e.cert_lens[0] = n;
	buf_init(&ev, ATT_MSG_MAX);
	buf_init(out, ATT_MSG_MAX);
	assert_int_equal(att_tpm_evidence_write(&e, &ev), 0);
	assert_int_equal(
	    att_msg_write(m.blob, m.blob_len, buf_data(&ev), ev.len, out), 0);
	buf_clear(&ev);
}

/*
 * The TCG EK profile, under a CA the verifier trusts (made here): a leaf over
 * the TPM's real EK public key verifies (control); without the EK EKU, with
 * CA:TRUE, or with keyUsage digitalSignature only, it is refused by name;
 * with --tpm-crl a revoked leaf is refused (ATT_R_EK_REVOKED).
 */
static void
test_tpm_ek_profile_and_crl(void **state)
{
	static const struct {
		const char *name, *ext;
		enum att_reason want;
	} leaf[] = {
	    {"good",
		"keyUsage=critical,keyEncipherment\n"
		"extendedKeyUsage=2.23.133.8.1\n"
		"basicConstraints=critical,CA:FALSE\n",
		ATT_R_OK},
	    {"noeku", "keyUsage=critical,keyEncipherment\n", ATT_R_EK_NOT_EK},
	    {"ca",
		"keyUsage=critical,keyEncipherment,keyCertSign\n"
		"extendedKeyUsage=2.23.133.8.1\n"
		"basicConstraints=critical,CA:TRUE\n",
		ATT_R_EK_IS_CA},
	    {"ku",
		"keyUsage=critical,digitalSignature\n"
		"extendedKeyUsage=2.23.133.8.1\n",
		ATT_R_EK_KEY_USAGE},
	    {"revoked",
		"keyUsage=critical,keyEncipherment\n"
		"extendedKeyUsage=2.23.133.8.1\n",
		ATT_R_OK}, /* fine until the CRL lists it */
	};
	struct att_provider *p;
	struct att_trust *t, *tc;
	struct att_policy pol;
	struct att_verdict v;
	struct infkey_pub ik;
	struct buf msg, forged;
	uint8_t bh[32];
	char path[256], d[128];
	const unsigned char *sp;
	EVP_PKEY *ek;
	FILE *f;
	size_t i;
	int r;

	assert_int_equal(att_tpm_open(E.tcti, &p), 0);
	tpm_message(p, node_a, &ik, &msg, bh);
	/* The genuine certificate: its profile passes (control). */
	policy(&pol, E.trusted, NULL);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v),
	    SM_ERR_AGAIN);
	snprintf(d, sizeof(d), "%s/ekp", E.dir);
	assert_int_equal(
	    sh("mkdir -p %s/ca %s/crl && cd %s && "
	       "openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
	       "-subj /CN=test-ek-ca -keyout ca.key -out ca/ca.pem "
	       "-addext basicConstraints=critical,CA:TRUE -addext "
	       "keyUsage=critical,keyCertSign,cRLSign "
	       ">/dev/null 2>&1",
		d, d, d),
	    0);
	sp = v.ek_spki;
	assert_non_null(ek = d2i_PUBKEY(NULL, &sp, (long)v.ek_spki_len));
	snprintf(path, sizeof(path), "%s/ek.pem", d);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(PEM_write_PUBKEY(f, ek), 1);
	fclose(f);
	EVP_PKEY_free(ek);
	snprintf(path, sizeof(path), "%s/ca", d);
	assert_int_equal(att_trust_load_dir(path, &t), 0);
	for (i = 0; i < SM_ARRAY_LEN(leaf); i++) {
		snprintf(path, sizeof(path), "%s/%s.ext", d, leaf[i].name);
		assert_non_null(f = fopen(path, "w"));
		fputs(leaf[i].ext, f);
		fclose(f);
		assert_int_equal(
		    sh("cd %s && openssl x509 -new -force_pubkey ek.pem "
		       "-subj /CN=ek-%s -set_serial %zu -days 2 -CA ca/ca.pem "
		       "-CAkey ca.key -extfile %s.ext -outform DER -out %s.der "
		       ">/dev/null 2>&1",
			d, leaf[i].name, i + 2, leaf[i].name, leaf[i].name),
		    0);
		snprintf(path, sizeof(path), "%s/%s.der", d, leaf[i].name);
		swap_ek_cert(&msg, path, &forged);
		policy(&pol, t, NULL);
		r = att_verify(
		    &pol, buf_data(&forged), forged.len, node_a, &ik, &v);
		if (leaf[i].want == ATT_R_OK) {
			assert_int_equal(r, SM_ERR_AGAIN);
		} else {
			assert_int_equal(r, SM_ERR_VERIFY);
			assert_int_equal(v.reason, leaf[i].want);
		}
		buf_clear(&forged);
	}
	/* A CRL from the test CA listing "revoked" (serial 6). */
	assert_int_equal(
	    sh("cd %s && touch index.txt && echo 01 > crlnumber && "
	       "printf '[ca]\\ndefault_ca=d\\n[d]\\ndatabase=index.txt\\n"
	       "crlnumber=crlnumber\\ndefault_md=sha256\\n"
	       "default_crl_days=2\\n' > ca.cnf && "
	       "openssl x509 -inform DER -in revoked.der -out revoked.pem && "
	       "openssl ca -config ca.cnf -keyfile ca.key -cert ca/ca.pem "
	       "-revoke revoked.pem >/dev/null 2>&1 && "
	       "openssl ca -config ca.cnf -keyfile ca.key -cert ca/ca.pem "
	       "-gencrl -out crl/test.crl >/dev/null 2>&1",
		d),
	    0);
	snprintf(path, sizeof(path), "%s/ca", d);
	assert_int_equal(att_trust_load_dir(path, &tc), 0);
	snprintf(path, sizeof(path), "%s/crl", d);
	assert_int_equal(att_trust_load_crls(tc, path), 0);
	policy(&pol, tc, NULL);
	snprintf(path, sizeof(path), "%s/good.der", d);
	swap_ek_cert(&msg, path, &forged);
	assert_int_equal(
	    att_verify(&pol, buf_data(&forged), forged.len, node_a, &ik, &v),
	    SM_ERR_AGAIN);
	buf_clear(&forged);
	snprintf(path, sizeof(path), "%s/revoked.der", d);
	swap_ek_cert(&msg, path, &forged);
	assert_int_equal(
	    att_verify(&pol, buf_data(&forged), forged.len, node_a, &ik, &v),
	    SM_ERR_VERIFY);
	assert_int_equal(v.reason, ATT_R_EK_REVOKED);
	buf_clear(&forged);
	/* An empty CRL directory is a configuration error; so is a file
	 * that is not a CRL. */
	snprintf(path, sizeof(path), "%s/empty", d);
	assert_int_equal(sh("mkdir -p %s", path), 0);
	assert_int_equal(att_trust_load_crls(tc, path), SM_ERR_NOTFOUND);
	snprintf(path, sizeof(path), "%s/ca", d);
	assert_int_equal(att_trust_load_crls(tc, path), SM_ERR_INVAL);
	att_trust_free(t);
	att_trust_free(tc);
	buf_clear(&msg);
	att_provider_free(p);
}

/*
 * One AK, one EK, one node id: after node_a is activated and pinned, the
 * same TPM presenting its AK for node_b is refused (AK pinned elsewhere), and
 * a second AK from the same TPM (same EK) for node_b too (EK pinned
 * elsewhere). Forgetting node_a frees them.
 */
static void
test_tpm_second_node_id_refused(void **state)
{
	struct att_provider *p, *p2;
	struct att_pins *pins;
	struct att_policy pol;
	struct att_verdict v;
	struct att_live l;
	struct infkey_pub ik;
	struct buf msg;
	uint8_t bh[32];

	assert_int_equal(att_tpm_open(E.tcti, &p), 0);
	tpm_message(p, node_a, &ik, &msg, bh);
	assert_int_equal(att_pins_new(&pins), 0);
	policy(&pol, E.trusted, pins);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v),
	    SM_ERR_AGAIN);
	att_live_init(&l);
	assert_int_equal(activate_round(p, &v, bh, pins, &l, NULL), 0);
	buf_clear(&msg);
	/* Same AK, another node id. */
	tpm_message(p, node_b, &ik, &msg, bh);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_b, &ik, &v),
	    SM_ERR_VERIFY);
	assert_int_equal(v.reason, ATT_R_AK_PINNED_ELSEWHERE);
	buf_clear(&msg);
	att_provider_free(p);
	/* Another AK from the same TPM, another node id. */
	assert_int_equal(att_tpm_open(E.tcti, &p2), 0);
	tpm_message(p2, node_b, &ik, &msg, bh);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_b, &ik, &v),
	    SM_ERR_VERIFY);
	assert_int_equal(v.reason, ATT_R_EK_PINNED_ELSEWHERE);
	/* Even an activation cannot pin it. */
	assert_int_equal(att_pins_remove(pins, node_b), SM_ERR_NOTFOUND);
	/* Forget node_a: node_b may now be activated with this TPM. */
	assert_int_equal(att_pins_remove(pins, node_a), 0);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_b, &ik, &v),
	    SM_ERR_AGAIN);
	assert_int_equal(activate_round(p2, &v, bh, pins, &l, NULL), 0);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_b, &ik, &v), 0);
	buf_clear(&msg);
	att_live_clear(&l);
	att_pins_free(pins);
	att_provider_free(p2);
}

/* tpm2_makecredential -T none (tpm2-tools) output activates in our host. */
static void
test_cross_check_tpm2_tools(void **state)
{
	struct att_provider *p;
	struct att_policy pol;
	struct att_verdict v;
	struct infkey_pub ik;
	struct buf msg;
	uint8_t bh[32], file[2048], secret[ATT_SECRET_LEN];
	char path[256], namehex[2 * ATT_TPM_NAME_LEN + 1];
	const unsigned char *sp;
	EVP_PKEY *ek;
	FILE *f;
	size_t n, cl, sl;

	if (sh("command -v tpm2_makecredential >/dev/null") != 0) {
		fprintf(stderr, "tpm2-tools missing: cross-check skipped\n");
		skip();
	}
	assert_int_equal(att_tpm_open(E.tcti, &p), 0);
	tpm_message(p, node_a, &ik, &msg, bh);
	policy(&pol, E.trusted, NULL);
	assert_int_equal(
	    att_verify(&pol, buf_data(&msg), msg.len, node_a, &ik, &v),
	    SM_ERR_AGAIN);
	sp = v.ek_spki;
	assert_non_null(ek = d2i_PUBKEY(NULL, &sp, (long)v.ek_spki_len));
	snprintf(path, sizeof(path), "%s/ek.pem", E.dir);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(PEM_write_PUBKEY(f, ek), 1);
	fclose(f);
	EVP_PKEY_free(ek);
	sm_hex(namehex, v.ak_name, ATT_TPM_NAME_LEN);
	assert_int_equal(sh("printf 0123456789abcdef0123456789abcdef > "
			    "%s/secret && tpm2_makecredential -T none -e "
			    "%s/ek.pem -G rsa -s %s/secret -n %s -o %s/cred "
			    ">/dev/null 2>&1",
			     E.dir, E.dir, E.dir, namehex, E.dir),
	    0);
	snprintf(path, sizeof(path), "%s/cred", E.dir);
	assert_non_null(f = fopen(path, "rb"));
	n = fread(file, 1, sizeof(file), f);
	fclose(f);
	/* magic 0xBADCC0DE, version 1, TPM2B_ID_OBJECT, TPM2B_ENC_SECRET */
	assert_true(n > 12);
	assert_int_equal(file[0], 0xba);
	cl = (size_t)file[8] << 8 | file[9];
	assert_true(10 + cl + 2 <= n);
	sl = (size_t)file[10 + cl] << 8 | file[11 + cl];
	assert_int_equal(12 + cl + sl, n);
	assert_int_equal(
	    p->ops->activate(p, file + 10, cl, file + 12 + cl, sl, secret), 0);
	assert_memory_equal(secret, "0123456789abcdef0123456789abcdef", 32);
	buf_clear(&msg);
	att_provider_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tpm_valid_activation_and_timings),
	    cmocka_unit_test(test_tpm_untrusted_chain),
	    cmocka_unit_test(test_tpm_tampered),
	    cmocka_unit_test(test_tpm_software_key_posing_as_ak),
	    cmocka_unit_test(test_tpm_ak_not_activated_and_changed),
	    cmocka_unit_test(test_tpm_challenges),
	    cmocka_unit_test(test_tpm_ak_file_survives_restart),
	    cmocka_unit_test(test_tpm_outsider_cannot_reproduce_or_use_ak),
	    cmocka_unit_test(test_tpm_bad_ak_attributes),
	    cmocka_unit_test(test_tpm_ek_profile_and_crl),
	    cmocka_unit_test(test_tpm_second_node_id_refused),
	    cmocka_unit_test(test_cross_check_tpm2_tools),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name(
	    "attest_tpm", tests, setup, teardown);
}
