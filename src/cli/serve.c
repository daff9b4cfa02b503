/* sealmesh serve: run a node in front of local OpenAI-compatible backends. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/resource.h>

#include <uv.h>

#include "backend/backend.h"
#include "backend/llama.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "core/log.h"
#include "core/util.h"
#include "harden/harden.h"
#include "http/gateway.h"
#include "attest/blob.h"
#include "crypto/envelope.h"
#include "mesh/attest.h"
#include "mesh/identity.h"
#include "mesh/member.h"
#include "mesh/node.h"
#include "mesh/shape.h"
#include "mesh/roster.h"
#include "mesh/tunnel.h"
#include "net/link.h"
#include "mesh/route.h"
#include "harden/sandbox.h"
#include "signer/client.h"
#include "signer/proto.h"
#include "signer/signer.h"

#define MAX_BACKENDS ROUTE_MAX_LOCAL
#define MAX_GGUF 8

struct serve {
	uv_loop_t *loop;
	struct identity id;
	struct router router;
	struct gateway gw;
	struct mesh mesh;
	uv_timer_t exit_timer;
	struct backend backends[MAX_BACKENDS];
	size_t nbackends;
	struct llama_child llama[MAX_GGUF];
	size_t nllama;
	uv_signal_t sigint, sigterm, sighup;
	const char *api_key_file; /* reloaded on SIGHUP */
#ifdef SM_TEST_BUILD
	uv_signal_t sigusr1, sigusr2, sigwinch;
#endif
	bool stopping;
	struct signer_client *signer; /* privilege separation: the keys */
	const char *drop_user; /* root worker: drop to it before the loop */
	pid_t signer_pid;
	struct signer_hello hello;
};

static void
serve_usage(FILE *f, bool client)
{
	if (client)
		fprintf(f,
		    "usage: sealmesh client --join TOKEN [options]\n"
		    "\n"
		    "Join a mesh with an ephemeral identity, serve no models, "
		    "and expose\nthe mesh's models on "
		    "http://127.0.0.1:PORT/v1. Options as for serve.\n\n");
	fprintf(f,
	    "usage: sealmesh serve [options]\n"
	    "\n"
	    "Serve local OpenAI-compatible backends on "
	    "http://127.0.0.1:PORT/v1\n"
	    "and every model of the mesh it joins.\n"
	    "\n"
	    "backends:\n"
	    "  --model NAME=URL        serve backend at base URL under NAME "
	    "(repeatable)\n"
	    "  --gguf PATH             run llama-server on this model file, "
	    "served\n"
	    "                          under the file's stem name "
	    "(repeatable)\n"
	    "  --llama-server BIN      llama-server binary for --gguf "
	    "(default: from PATH)\n"
	    "\n"
	    "listening:\n"
	    "  --port N                API port (default 9337, 0 = ephemeral)\n"
	    "  --console N             console port: web console at /, "
	    "/api/status, /metrics\n"
	    "                          (default 3131, 0 = ephemeral, -1 = "
	    "off)\n"
	    "  --listen-all            bind the API on 0.0.0.0 instead of "
	    "127.0.0.1\n"
	    "                          (needs --api-key-file or "
	    "--insecure-no-auth)\n"
	    "  --console-listen-all    bind the console on 0.0.0.0 too (same "
	    "rule)\n"
	    "\n"
	    "local access:\n"
	    "  --api-key-file FILE     keys (one a line, file mode 0600) "
	    "required on the API\n"
	    "                          and the console as 'Authorization: "
	    "Bearer KEY' or\n"
	    "                          'x-api-key: KEY'; reloaded on SIGHUP\n"
	    "  --insecure-no-auth      allow --listen-all without API keys\n"
	    "  --allow-host NAME       also accept this Host name "
	    "(repeatable; default:\n"
	    "                          loopback, and own addresses under "
	    "--listen-all)\n"
	    "  --allow-origin URL      answer CORS for this exact web origin, "
	    "e.g.\n"
	    "                          http://localhost:5173 (repeatable)\n"
	    "\n"
	    "limits:\n"
	    "  --max-body BYTES        largest request body (default 8388608)\n"
	    "  --backend-timeout SECS  wait this long for a backend's answer "
	    "(default 300)\n"
	    "  --connect-timeout SECS  wait this long to connect to a backend "
	    "(default 5)\n"
	    "\n"
	    "mesh:\n"
	    "  --mesh-port N           node-to-node TLS port (default 9338, 0 "
	    "= "
	    "ephemeral)\n"
	    "  --bind ADDR             address for the mesh port (default "
	    "0.0.0.0)\n"
	    "  --join TOKEN            join the mesh of this invite token, or "
	    "of this\n"
	    "                          invite of an owned mesh (sealmesh "
	    "invite; repeatable)\n"
	    "  --advertise HOST:PORT   address peers should dial (repeatable; "
	    "default:\n"
	    "                          every interface address, loopback "
	    "last)\n"
	    "  --no-relay              never forward streams for other "
	    "nodes\n"
	    "  --gossip-interval MS    gossip period (default 30000); a linked "
	    "peer silent\n"
	    "                          for 3 periods is stale, then pruned (a "
	    "peer known\n"
	    "                          by gossip only: 3 refresh periods of 10 "
	    "intervals,\n"
	    "                          at most 5 min each)\n"
	    "  --max-peers N           cap on the peer table (default 16384)\n"
	    "  --link-streams N        concurrent streams per link and "
	    "direction\n"
	    "                          (default 32768); more wait in a queue\n"
	    "  --queue-max N           streams waiting per link (default "
	    "32768); beyond: 503\n"
	    "  --queue-timeout MS      longest wait in that queue (default "
	    "10000); then 503\n"
	    "                          with Retry-After\n"
	    "\n"
	    "hardening:\n" HARDEN_HELP_STRICT_ENV HARDEN_HELP_REQUIRE_HARDENED
	    "  --user NAME             started as root: the network-facing "
	    "worker runs\n"
	    "                          as NAME (default nobody); the keys "
	    "stay with the\n"
	    "                          signer (see doc/PRIVSEP.md)\n"
	    "  --no-privsep            one process holds the keys and faces "
	    "the network\n"
	    "                          (no signer, no sandbox; debugging "
	    "only)\n"
	    "\n"
	    "attestation:\n"
	    "  --attest KIND           none, software or tpm (default: tpm "
	    "when --tpm is\n"
	    "                          given or /dev/tpmrm0 exists, else "
	    "software)\n"
	    "  --tpm TCTI              TPM to use, e.g. device:/dev/tpmrm0 or\n"
	    "                          swtpm:host=127.0.0.1,port=2321\n"
	    "  --tpm-ca DIR            trusted TPM manufacturers' EK CA "
	    "certificates (PEM)\n"
	    "  --tpm-crl DIR           CRLs for the EK CAs (PEM or DER); "
	    "with it every EK\n"
	    "                          certificate needs a current CRL from "
	    "its issuer\n"
	    "  --require-attested-hosts  send prompts only to hosts whose "
	    "attestation is\n"
	    "                          verified, fresh and >= --min-trust; "
	    "otherwise 503\n"
	    "  --min-trust LEVEL       none, self_signed or tpm (default "
	    "tpm)\n"
	    "  --allowed-binaries FILE only hosts running a binary whose "
	    "SHA-256 is listed\n"
	    "  --challenge-interval S  challenge each host this often "
	    "(default 300)\n"
	    "  --attest-window S       a host is attested while its last "
	    "answer is younger\n"
	    "                          than this (default 660)\n"
	    "  --event-log FILE        (host) TCG event log to send (default "
	    "the kernel's\n"
	    "                          tpm0/binary_bios_measurements)\n"
	    "  --ima-log FILE          (host) IMA list to send (default the "
	    "kernel's\n"
	    "                          ima/binary_runtime_measurements)\n"
	    "  --pcr-policy FILE       expected PCR values, lines "
	    "\"sha256:N HEX\"; a host\n"
	    "                          whose quoted PCR differs is not "
	    "eligible\n"
	    "  --ima-allowlist FILE    lines \"SHA256HEX PATH\": every file "
	    "a host's IMA\n"
	    "                          list measured must be listed\n"
	    "  --require-measured-binary  route only to hosts whose binary "
	    "hash is\n"
	    "                          kernel-measured (IMA replayed against "
	    "a quote);\n"
	    "                          this and the two above imply "
	    "--require-attested-hosts\n"
	    "\n"
	    "end-to-end encryption:\n"
	    "  --key-epoch SECS        replace the inference key this often "
	    "(default 3600)\n"
	    "  --allow-plaintext-peers send plaintext to hosts that offer no "
	    "key (never\n"
	    "                          to one that once offered a key)\n"
	    "  --e2e-envelope N        newest sealed-request version to send "
	    "and offer:\n"
	    "                          2 (default: ephemeral key reused per "
	    "host key\n"
	    "                          for 60 s, per-request salt) or 1 (fresh "
	    "key per request)\n"
	    "  --no-e2e                offer no key and send plaintext, as a "
	    "node without\n"
	    "                          E2E would (mixed-version tests, "
	    "benchmarks)\n"
	    "  --max-clock-skew MS     clock-skew tolerance for signed "
	    "announcements:\n"
	    "                          older than 4 refresh periods + MS, or "
	    "more than MS\n"
	    "                          ahead, are refused (default 30000)\n"
	    "\n"
	    "traffic shaping (sealed answers):\n"
	    "  --response-pacing MS    send answer frames on a clock of this "
	    "period\n"
	    "                          (default 30); 0 pads frames but sends "
	    "them at once\n"
	    "  --response-bucket B     smallest padded frame: 256, 1024, 4096, "
	    "16384 or\n"
	    "                          65536 bytes (default 1024)\n"
	    "  --no-shaping            neither ask hosts for padded, paced "
	    "answers nor\n"
	    "                          give them (answers show token sizes "
	    "and timing)\n"
#ifdef SM_TEST_BUILD
	    "  --test-old-rstream      (test builds) act as a node from before "
	    "response\n"
	    "                          stream v2\n"
	    "  --test-record-relay F   (test builds) append relayed bytes to "
	    "F\n"
	    "  --test-forge-gossip     (test builds) also gossip a forged "
	    "announcement\n"
	    "  --test-ignore-challenges (test builds) never answer "
	    "attestation challenges\n"
	    "  --test-gossip-v1        (test builds) speak gossip v1 (full "
	    "push, re-sign\n"
	    "                          every interval), for mixed-version "
	    "tests\n"
	    "  --test-corrupt-answers  (test builds) flip a byte in every "
	    "attestation answer\n"
	    "                          (SIGWINCH toggles it)\n"
	    "  --test-challenge-flood N (test builds) keep N raw challenges "
	    "open to every\n"
	    "                          attested peer\n"
	    "  --test-attest-unhardened (test builds) attest a posture that "
	    "is not hardened\n"
	    "  --test-flood-incomplete N (test builds) open N tunnel streams "
	    "to the first\n"
	    "                          host serving a model (through a relay "
	    "if need be),\n"
	    "                          each declaring a large "
	    "envelope that\n"
	    "                          never completes; SIGUSR2 re-gossips "
	    "remembered\n"
	    "                          announcements of pruned peers\n"
	    "  --test-flood-plaintext  (test builds) flood with plaintext "
	    "requests instead\n"
	    "  --test-no-preauth-limit (test builds) no per-member bound on "
	    "unauthenticated\n"
	    "                          envelope bytes (control runs)\n"
	    "  --test-pool-idle-ms MS  (test builds) close idle backend "
	    "connections after MS\n"
#endif
	    "\n"
	    "node:\n"
	    "  --config FILE           read options from FILE, one 'name = "
	    "value' or\n"
	    "                          'name' per line (names as the long "
	    "flags);\n"
	    "                          command-line flags override it\n"
	    "  --state-dir DIR         identity key directory (default "
	    "~/.sealmesh); also\n"
	    "                          keeps the downgrade memory (client: "
	    "only if given)\n"
	    "  --log-format FMT        pretty or json (default pretty)\n"
	    "  --log-level LVL         debug, info, warn or error (default "
	    "info)\n"
	    "  -h, --help              this text\n");
}

#ifdef SM_TEST_BUILD
/* Test builds: SM_TEST_FORBIDDEN_SYSCALL makes the node call execve once
 * it runs, which its sandbox forbids (tests/integration/privsep.test.mjs). */
static void
on_forbidden(uv_timer_t *t)
{
	char *const av[] = {"true", NULL}, *const ev[] = {NULL};

	log_info("test: calling execve");
	execve("/bin/true", av, ev);
	log_error("test: execve: %s", strerror(errno));
}

/* Test builds: SIGWINCH toggles corrupting attestation answers. */
static void
on_sigwinch(uv_signal_t *h, int signum)
{
	mesh_att_test_corrupt_answers = !mesh_att_test_corrupt_answers;
	log_info("test: answers %s",
	    mesh_att_test_corrupt_answers ? "corrupted" : "intact");
}

/* Test builds: SIGUSR1 toggles answering attestation challenges. */
static void
on_sigusr1(uv_signal_t *h, int signum)
{
	mesh_att_test_ignore_challenges = !mesh_att_test_ignore_challenges;
	log_info("test: challenges %s",
	    mesh_att_test_ignore_challenges ? "ignored" : "answered");
}

/* Test builds: SIGUSR2 re-gossips remembered announcements of pruned
 * peers (the freshness test's replayed old announcement). */
static void
on_sigusr2(uv_signal_t *h, int signum)
{
	struct serve *s = h->data;

	mesh_test_replay(&s->mesh);
}
#endif

static void
exit_timer_cb(uv_timer_t *t)
{
	uv_stop(t->loop);
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct serve *s = h->data;

	if (s->stopping)
		return;
	s->stopping = true;
	log_info("signal %d: shutting down", signum);
	mesh_leave(&s->mesh);
	gateway_close(&s->gw);
	/* Give the leaving announcement and GOAWAYs a moment to go out. */
	uv_timer_init(s->loop, &s->exit_timer);
	uv_timer_start(&s->exit_timer, exit_timer_cb, 300, 0);
	for (size_t i = 0; i < s->nllama; i++)
		llama_stop(&s->llama[i]);
	uv_close((uv_handle_t *)&s->sigint, NULL);
	uv_close((uv_handle_t *)&s->sigterm, NULL);
	uv_close((uv_handle_t *)&s->sighup, NULL);
#ifdef SM_TEST_BUILD
	uv_close((uv_handle_t *)&s->sigusr1, NULL);
	uv_close((uv_handle_t *)&s->sigusr2, NULL);
	uv_close((uv_handle_t *)&s->sigwinch, NULL);
#endif
}

/* SIGHUP: reload the API keys; a failed reload keeps the old ones. */
/*
 * The API keys through the signer: the worker may not open the file
 * (--user), so the signer reads it with apikeys_load()'s checks and the
 * worker parses what comes back (doc/PRIVSEP.md, op APIKEYS).
 */
static int
apikeys_from_signer(
    struct serve *s, struct apikeys **k, char *why, size_t whylen)
{
	struct buf text;
	int r;

	*k = NULL;
	buf_init(&text, APIKEY_FILE_MAX);
	r = signer_client_call(
	    s->signer, false, SIGNER_OP_APIKEYS, NULL, 0, &text);
	if (r == 0 && text.len > 0 && buf_data(&text)[0] == 1)
		r = apikeys_parse(k, (const char *)buf_data(&text) + 1,
		    text.len - 1, why, whylen);
	else if (r == 0 && text.len > 0) {
		snprintf(why, whylen, "%.*s", (int)text.len - 1,
		    (const char *)buf_data(&text) + 1);
		r = SM_ERR_IO;
	} else
		snprintf(why, whylen, "the signer could not read %s: %s",
		    s->api_key_file, sm_strerror(r));
	buf_clear(&text);
	return r;
}

static void
on_sighup(uv_signal_t *h, int signum)
{
	struct serve *s = h->data;
	struct apikeys *k;
	char why[512];

	if (s->api_key_file == NULL) {
		log_info("SIGHUP: no --api-key-file to reload");
		return;
	}
	if ((s->signer != NULL ? apikeys_from_signer(s, &k, why, sizeof(why))
			       : apikeys_load(&k, s->api_key_file, why,
				     sizeof(why))) != 0) {
		log_error("SIGHUP: API keys not reloaded, keeping the %zu "
			  "old ones: %s",
		    apikeys_count(s->gw.keys), why);
		return;
	}
	gateway_set_keys(&s->gw, k);
	log_info("SIGHUP: %zu API key(s) loaded from %s", apikeys_count(k),
	    s->api_key_file);
}

/*
 * Write the invite token to DIR/invite.token, mode 0600, replacing the file
 * atomically. `sealmesh token` reads it there: the join secret never travels
 * over the console's HTTP.
 */
static int
write_token_file(const char *dir, const char *token)
{
	char path[4096], tmp[4200];
	size_t len = strlen(token);
	int fd, r = SM_ERR_IO;

	if (snprintf(path, sizeof(path), "%s/%s", dir, CLI_TOKEN_FILE) >=
	    (int)sizeof(path))
		return SM_ERR_TOOBIG;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	(void)unlink(tmp);
	if ((fd = open(tmp,
		 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) <
	    0) {
		log_error("cannot create %s: %s", tmp, strerror(errno));
		return SM_ERR_IO;
	}
	if (fchmod(fd, 0600) != 0 || write(fd, token, len) != (ssize_t)len ||
	    write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
		log_error("cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, path) != 0) {
		log_error(
		    "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		goto out;
	}
	r = 0;
out:
	close(fd);
	if (r != 0)
		(void)unlink(tmp);
	return r;
}

enum {
	OPT_MODEL = 256,
	OPT_GGUF,
	OPT_LLAMA,
	OPT_PORT,
	OPT_CONSOLE,
	OPT_LISTEN_ALL,
	OPT_MAX_BODY,
	OPT_BACKEND_TIMEOUT,
	OPT_CONNECT_TIMEOUT,
	OPT_STATE_DIR,
	OPT_LOG_FORMAT,
	OPT_LOG_LEVEL,
	OPT_STRICT_ENV,
	OPT_MESH_PORT,
	OPT_BIND,
	OPT_JOIN,
	OPT_ADVERTISE,
	OPT_NO_RELAY,
	OPT_GOSSIP_INTERVAL,
	OPT_MAX_PEERS,
	OPT_TEST_RECORD,
	OPT_TEST_FORGE,
	OPT_TEST_CLAIM_RELAY,
	OPT_NO_E2E,
	OPT_NO_PRIVSEP,
	OPT_USER,
	OPT_ALLOW_PLAINTEXT,
	OPT_KEY_EPOCH,
	OPT_E2E_ENVELOPE,
	OPT_REQUIRE_HARDENED,
	OPT_ATTEST,
	OPT_TPM,
	OPT_TPM_CA,
	OPT_TPM_CRL,
	OPT_MIN_TRUST,
	OPT_ALLOWED_BINARIES,
	OPT_REQUIRE_ATTESTED,
	OPT_CHALLENGE_INTERVAL,
	OPT_ATTEST_WINDOW,
	OPT_EVENT_LOG,
	OPT_IMA_LOG,
	OPT_PCR_POLICY,
	OPT_IMA_ALLOWLIST,
	OPT_REQUIRE_MEASURED_BINARY,
	OPT_TEST_IGNORE_CHALLENGES,
	OPT_TEST_GOSSIP_V1,
	OPT_TEST_CORRUPT_ANSWERS,
	OPT_TEST_CHALLENGE_FLOOD,
	OPT_TEST_ATTEST_UNHARDENED,
	OPT_CONSOLE_LISTEN_ALL,
	OPT_API_KEY_FILE,
	OPT_INSECURE_NO_AUTH,
	OPT_ALLOW_HOST,
	OPT_ALLOW_ORIGIN,
	OPT_RESPONSE_PACING,
	OPT_RESPONSE_BUCKET,
	OPT_NO_SHAPING,
	OPT_TEST_OLD_RSTREAM,
	OPT_MAX_CLOCK_SKEW,
	OPT_TEST_FLOOD_INCOMPLETE,
	OPT_TEST_NO_PREAUTH_LIMIT,
	OPT_TEST_FLOOD_PLAIN,
	OPT_CONFIG,
	OPT_LINK_STREAMS,
	OPT_QUEUE_MAX,
	OPT_QUEUE_TIMEOUT,
	OPT_TEST_POOL_IDLE,
};

static const struct option serve_opts[] = {
    {"model", required_argument, NULL, OPT_MODEL},
    {"gguf", required_argument, NULL, OPT_GGUF},
    {"llama-server", required_argument, NULL, OPT_LLAMA},
    {"port", required_argument, NULL, OPT_PORT},
    {"console", required_argument, NULL, OPT_CONSOLE},
    {"listen-all", no_argument, NULL, OPT_LISTEN_ALL},
    {"console-listen-all", no_argument, NULL, OPT_CONSOLE_LISTEN_ALL},
    {"api-key-file", required_argument, NULL, OPT_API_KEY_FILE},
    {"insecure-no-auth", no_argument, NULL, OPT_INSECURE_NO_AUTH},
    {"allow-host", required_argument, NULL, OPT_ALLOW_HOST},
    {"allow-origin", required_argument, NULL, OPT_ALLOW_ORIGIN},
    {"max-body", required_argument, NULL, OPT_MAX_BODY},
    {"backend-timeout", required_argument, NULL, OPT_BACKEND_TIMEOUT},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"state-dir", required_argument, NULL, OPT_STATE_DIR},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"strict-env", no_argument, NULL, OPT_STRICT_ENV},
    {"mesh-port", required_argument, NULL, OPT_MESH_PORT},
    {"bind", required_argument, NULL, OPT_BIND},
    {"join", required_argument, NULL, OPT_JOIN},
    {"advertise", required_argument, NULL, OPT_ADVERTISE},
    {"no-relay", no_argument, NULL, OPT_NO_RELAY},
    {"gossip-interval", required_argument, NULL, OPT_GOSSIP_INTERVAL},
    {"max-peers", required_argument, NULL, OPT_MAX_PEERS},
    {"no-e2e", no_argument, NULL, OPT_NO_E2E},
    {"no-privsep", no_argument, NULL, OPT_NO_PRIVSEP},
    {"user", required_argument, NULL, OPT_USER},
    {"allow-plaintext-peers", no_argument, NULL, OPT_ALLOW_PLAINTEXT},
    {"key-epoch", required_argument, NULL, OPT_KEY_EPOCH},
    {"e2e-envelope", required_argument, NULL, OPT_E2E_ENVELOPE},
    {"require-hardened", no_argument, NULL, OPT_REQUIRE_HARDENED},
    {"attest", required_argument, NULL, OPT_ATTEST},
    {"tpm", required_argument, NULL, OPT_TPM},
    {"tpm-ca", required_argument, NULL, OPT_TPM_CA},
    {"tpm-crl", required_argument, NULL, OPT_TPM_CRL},
    {"min-trust", required_argument, NULL, OPT_MIN_TRUST},
    {"allowed-binaries", required_argument, NULL, OPT_ALLOWED_BINARIES},
    {"require-attested-hosts", no_argument, NULL, OPT_REQUIRE_ATTESTED},
    {"challenge-interval", required_argument, NULL, OPT_CHALLENGE_INTERVAL},
    {"attest-window", required_argument, NULL, OPT_ATTEST_WINDOW},
    {"response-pacing", required_argument, NULL, OPT_RESPONSE_PACING},
    {"response-bucket", required_argument, NULL, OPT_RESPONSE_BUCKET},
    {"no-shaping", no_argument, NULL, OPT_NO_SHAPING},
    {"event-log", required_argument, NULL, OPT_EVENT_LOG},
    {"ima-log", required_argument, NULL, OPT_IMA_LOG},
    {"pcr-policy", required_argument, NULL, OPT_PCR_POLICY},
    {"ima-allowlist", required_argument, NULL, OPT_IMA_ALLOWLIST},
    {"require-measured-binary", no_argument, NULL, OPT_REQUIRE_MEASURED_BINARY},
    {"max-clock-skew", required_argument, NULL, OPT_MAX_CLOCK_SKEW},
    {"link-streams", required_argument, NULL, OPT_LINK_STREAMS},
    {"queue-max", required_argument, NULL, OPT_QUEUE_MAX},
    {"queue-timeout", required_argument, NULL, OPT_QUEUE_TIMEOUT},
#ifdef SM_TEST_BUILD
    {"test-old-rstream", no_argument, NULL, OPT_TEST_OLD_RSTREAM},
    {"test-flood-incomplete", required_argument, NULL,
	OPT_TEST_FLOOD_INCOMPLETE},
    {"test-no-preauth-limit", no_argument, NULL, OPT_TEST_NO_PREAUTH_LIMIT},
    {"test-flood-plaintext", no_argument, NULL, OPT_TEST_FLOOD_PLAIN},
    {"test-record-relay", required_argument, NULL, OPT_TEST_RECORD},
    {"test-forge-gossip", no_argument, NULL, OPT_TEST_FORGE},
    {"test-claim-relay", no_argument, NULL, OPT_TEST_CLAIM_RELAY},
    {"test-ignore-challenges", no_argument, NULL, OPT_TEST_IGNORE_CHALLENGES},
    {"test-gossip-v1", no_argument, NULL, OPT_TEST_GOSSIP_V1},
    {"test-corrupt-answers", no_argument, NULL, OPT_TEST_CORRUPT_ANSWERS},
    {"test-challenge-flood", required_argument, NULL, OPT_TEST_CHALLENGE_FLOOD},
    {"test-attest-unhardened", no_argument, NULL, OPT_TEST_ATTEST_UNHARDENED},
    {"test-pool-idle-ms", required_argument, NULL, OPT_TEST_POOL_IDLE},
#endif
    {"config", required_argument, NULL, OPT_CONFIG},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Where the option being parsed came from: "FILE:LINE" for a config file
 * entry, NULL for the command line. Prefixes usage errors. */
static const char *opt_origin;

static void __attribute__((format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "sealmesh: ");
	if (opt_origin != NULL)
		fprintf(stderr, "%s: ", opt_origin);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int
bad(const char *flag, const char *val)
{
	usage_error("bad value for %s: '%s'", flag, val);
	return 2;
}

/* Flags whose presence (not only value) the pair checks need. */
struct given {
	bool listen_all, console_listen_all, insecure_no_auth, console_off;
	bool min_trust, key_epoch, tpm;
	const char *api_key_file;
};

static int
refuse_pair(const char *a, const char *b, const char *why)
{
	fprintf(
	    stderr, "sealmesh: refusing to start: %s with %s: %s\n", a, b, why);
	return 2;
}

static void
warn_pair(const char *a, const char *b, const char *why)
{
	fprintf(stderr, "sealmesh: warning: %s with %s: %s\n", a, b, why);
}

/*
 * Flag pairs that weaken each other refuse to start; merely redundant ones
 * warn. The table in README ("Flags that weaken each other") lists each.
 * Returns 0 or an exit code.
 */
static int
check_flag_pairs(const struct mesh_opts *mo, const struct given *g)
{
	if (mo->no_e2e && mo->require_attested)
		return refuse_pair("--no-e2e", "--require-attested-hosts",
		    "attestation vouches for the key a prompt is sealed to; "
		    "--no-e2e would send prompts to attested hosts in "
		    "plaintext, readable by every relay on the way");
	if (mo->no_e2e && mo->require_hardened)
		return refuse_pair("--no-e2e", "--require-hardened",
		    "a hardened host protects prompts in its memory, but "
		    "--no-e2e would send them in plaintext, readable by every "
		    "relay on the way");
	if (mo->allow_plaintext && mo->require_hardened)
		return refuse_pair("--allow-plaintext-peers",
		    "--require-hardened",
		    "a hardened host that offers no key would get prompts in "
		    "plaintext, readable by every relay on the way");
	if (g->min_trust && !mo->require_attested)
		return refuse_pair("--min-trust", "no --require-attested-hosts",
		    "the trust level is enforced only when attestation is "
		    "required; add --require-attested-hosts");
	if (mo->allowed_binaries != NULL && !mo->require_attested)
		return refuse_pair("--allowed-binaries",
		    "no --require-attested-hosts",
		    "the binary list is enforced only when attestation is "
		    "required; add --require-attested-hosts");
	if (g->insecure_no_auth && g->api_key_file != NULL)
		return refuse_pair("--insecure-no-auth", "--api-key-file",
		    "say one or the other");
	if (g->listen_all && g->api_key_file == NULL && !g->insecure_no_auth)
		return refuse_pair("--listen-all", "no --api-key-file",
		    "anyone who can reach the API port would use every model "
		    "of the mesh; give --api-key-file FILE, or "
		    "--insecure-no-auth to accept that");
	if (g->console_listen_all && g->api_key_file == NULL &&
	    !g->insecure_no_auth)
		return refuse_pair("--console-listen-all", "no --api-key-file",
		    "anyone who can reach the console port would read the "
		    "node's status and challenge its peers; give "
		    "--api-key-file FILE, or --insecure-no-auth to accept "
		    "that");
	if (mo->no_e2e && mo->allow_plaintext)
		warn_pair("--no-e2e", "--allow-plaintext-peers",
		    "--no-e2e already sends plaintext to every host");
	if (mo->allow_plaintext && mo->require_attested)
		warn_pair("--allow-plaintext-peers", "--require-attested-hosts",
		    "an attested host always offers a key; plaintext is "
		    "never used");
	if (mo->no_e2e && g->key_epoch)
		warn_pair("--no-e2e", "--key-epoch",
		    "no inference key is offered, so none is replaced");
	if (g->insecure_no_auth && !g->listen_all && !g->console_listen_all)
		warn_pair("--insecure-no-auth", "loopback listeners",
		    "nothing to allow: the API and the console listen on "
		    "127.0.0.1 only");
	if (g->console_listen_all && g->console_off)
		warn_pair("--console-listen-all", "--console -1",
		    "there is no console");
	if (g->tpm && mo->attest != NULL && strcmp(mo->attest, "tpm") != 0)
		warn_pair("--tpm", "--attest other than tpm",
		    "this node does not attest with the TPM");
	return 0;
}

/* A file or directory a flag names must be there before anything starts;
 * otherwise say which flag, which path, and the OS error. */
static int
check_path(const char *flag, const char *path, bool dir, int mode)
{
	struct stat st;

	int e = 0;

	if (stat(path, &st) != 0)
		e = errno;
	else if (dir != S_ISDIR(st.st_mode))
		e = dir ? ENOTDIR : EISDIR;
	else if (access(path, mode) != 0)
		e = errno;
	if (e != 0) {
		fprintf(
		    stderr, "sealmesh: %s %s: %s\n", flag, path, strerror(e));
		return -1;
	}
	return 0;
}

/* The llama-server binary: a path, or a name searched in PATH. */
static int
check_program(const char *flag, const char *bin)
{
	const char *path = getenv("PATH"), *p, *e;
	char full[4096];

	if (strchr(bin, '/') != NULL)
		return check_path(flag, bin, false, X_OK);
	for (p = path ? path : ""; *p != '\0'; p = *e ? e + 1 : e) {
		e = strchrnul(p, ':');
		if (e == p)
			continue;
		snprintf(full, sizeof(full), "%.*s/%s", (int)(e - p), p, bin);
		if (access(full, X_OK) == 0)
			return 0;
	}
	fprintf(stderr, "sealmesh: %s %s: not found in PATH (%s)\n", flag, bin,
	    path ? path : "unset");
	return -1;
}

static void
join_failed(struct mesh *m, const char *why)
{
	fprintf(stderr, "sealmesh: cannot join the mesh: %s\n", why);
	exit(1);
}

static void
status_hook(void *arg, cJSON *st)
{
	mesh_status_json(arg, st);
}

static int
metrics_hook(void *arg, struct buf *out)
{
	return mesh_metrics(arg, out);
}

static int
challenge_hook(void *arg, const char *peer_hex)
{
	return mesh_att_challenge_now(arg, peer_hex);
}

/* Every stream may hold a client socket and a backend socket: as many
 * descriptors as the hard limit allows. */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			return;
	}
	log_debug("open files limit: %llu", (unsigned long long)rl.rlim_cur);
}

/*
 * Privilege separation (doc/PRIVSEP.md): fork before any key is loaded. The
 * parent becomes the signer and returns 1 with its exit status in '*code'
 * when it is done; the child becomes the worker: it drops to 'user' when
 * started as root, enters its sandbox (unless it must spawn llama-server
 * children), greets the signer and returns 0 with a delegated identity.
 * Negative: a setup error, already reported.
 */
static int
privsep_split(struct serve *s, struct mesh_opts *mo, const char *state_dir,
    const char *user, bool children, int *code)
{
	int fast[2], slow[2], r;
	pid_t signer = getpid(), pid;

	*code = 1;
	if (geteuid() == 0 && user == NULL)
		user = "nobody";
	if (geteuid() == 0 && (r = signer_prepare_dir(state_dir, user)) != 0)
		return r;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fast) != 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, slow) != 0) {
		log_error("privsep: socketpair: %s", strerror(errno));
		return SM_ERR_IO;
	}
	fflush(NULL);
	if ((pid = fork()) < 0) {
		log_error("privsep: fork: %s", strerror(errno));
		return SM_ERR_IO;
	}
	if (pid > 0) {
		struct signer_cfg sc = {
		    .api_key_file = s->api_key_file,
		    .state_dir = state_dir,
		    .mo = mo,
		    .worker = pid,
		    .fast_fd = fast[0],
		    .slow_fd = slow[0],
		};

		close(fast[1]);
		close(slow[1]);
		*code = signer_run(&sc);
		return 1;
	}
	close(fast[0]);
	close(slow[0]);
	/* The worker never outlives its signer. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != signer)
		_exit(1);
	s->signer_pid = signer;
	if (children) {
		log_warn("privsep: --gguf children need fork and exec, so "
			 "this worker keeps the starting user and runs without "
			 "its seccomp filter (run llama-server yourself and "
			 "use --model for the full sandbox)");
	} else {
		struct sandbox_opts so = {0};
		struct passwd *pw;

		/* Root: the filter lets exactly the drop to 'user' through;
		 * it happens once startup has read the files the flags name
		 * (serve_drop, before the event loop). */
		if (geteuid() == 0) {
			if ((pw = getpwnam(user)) == NULL) {
				log_error(
				    "privsep: --user %s: no such user", user);
				_exit(1);
			}
			so.allow_drop = true;
			so.drop_uid = pw->pw_uid;
			so.drop_gid = pw->pw_gid;
			s->drop_user = user;
		}
		if ((r = sandbox_apply(&so)) != 0) {
			log_error("privsep: cannot enter the sandbox: %s",
			    sm_strerror(r));
			_exit(1);
		}
	}
	if ((r = signer_client_new(&s->signer, fast[1], slow[1])) != 0 ||
	    (r = signer_client_hello(s->signer, &s->hello)) != 0) {
		log_error(
		    "privsep: the signer did not answer: %s", sm_strerror(r));
		_exit(1);
	}
	identity_delegated(
	    &s->id, s->hello.node_pk, signer_sign_identity, s->signer);
	/* What this worker announces is what the signer measured. */
	harden_posture_adopt(&s->hello.posture);
	mo->signer = s->signer;
	mo->signer_hello = &s->hello;
	return 0;
}

static int
run(int argc, char **argv, bool client)
{
	static struct serve s; /* large; lives for the whole process */
	static struct config_args cfg; /* argv; optarg points into it */
	struct gateway_opts go = {
	    .listen_host = "127.0.0.1",
	    .api_port = 9337,
	    .console_port = 3131,
	    .max_body = HTTP_DEFAULT_MAX_BODY,
	    .connect_timeout_ms = 5000,
	    .backend_timeout_ms = 300000,
	    .role = client ? "client" : "host",
	};
	struct mesh_opts mo = {
	    .port = client ? 0 : LINK_DEFAULT_PORT,
	    .role = client ? ANN_ROLE_CLIENT : ANN_ROLE_HOST,
	    .min_trust = ATT_LEVEL_TPM,
	    .response_pacing_ms = SHAPE_PACING_DEFAULT_MS,
	    .response_bucket = SHAPE_BUCKET_DEFAULT,
	};
	const char *gguf[MAX_GGUF], *llama_bin = "llama-server";
	const char *state_dir = NULL, *user = NULL;
	bool no_privsep = false;
	struct access_policy access;
	struct apikeys *keys = NULL;
	struct given g = {0};
	char default_dir[4096], err[256], kwhy[512];
	enum log_format lf = LOG_PRETTY;
	enum log_level ll = LOG_INFO;
	size_t ngguf = 0;
	uint64_t v;
	int c, r;

	access_init(&access);
	/* --config FILE: the file's options go before the command line's. */
	if (config_expand(argc, argv, serve_opts, &cfg, err, sizeof(err)) !=
	    0) {
		fprintf(stderr, "sealmesh: %s\n", err);
		return 2;
	}
	argc = cfg.argc;
	argv = cfg.argv;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", serve_opts, NULL)) != -1) {
		opt_origin = optind - 1 < argc ? cfg.origin[optind - 1] : NULL;
		switch (c) {
		case OPT_CONSOLE_LISTEN_ALL:
			g.console_listen_all = true;
			go.console_host = "0.0.0.0";
			break;
		case OPT_API_KEY_FILE:
			g.api_key_file = optarg;
			break;
		case OPT_INSECURE_NO_AUTH:
			g.insecure_no_auth = true;
			break;
		case OPT_ALLOW_HOST:
			if ((r = access_add_host(&access, optarg)) != 0)
				return bad("--allow-host",
				    r == SM_ERR_TOOBIG ? "too many" : optarg);
			break;
		case OPT_ALLOW_ORIGIN:
			if ((r = access_add_origin(&access, optarg)) != 0)
				return bad("--allow-origin",
				    r == SM_ERR_TOOBIG ? "too many" : optarg);
			break;
		case OPT_MODEL:
			if (s.nbackends == MAX_BACKENDS)
				return bad("--model", "too many backends");
			if (backend_parse(&s.backends[s.nbackends], optarg, err,
				sizeof(err)) != 0) {
				usage_error("%s", err);
				return 2;
			}
			s.nbackends++;
			break;
		case OPT_GGUF:
			if (ngguf == MAX_GGUF)
				return bad("--gguf", "too many models");
			gguf[ngguf++] = optarg;
			break;
		case OPT_LLAMA:
			llama_bin = optarg;
			break;
		case OPT_PORT:
			if (sm_parse_u64(optarg, 0, 65535, &v) != 0)
				return bad("--port", optarg);
			go.api_port = (int)v;
			break;
		case OPT_CONSOLE:
			if (strcmp(optarg, "-1") == 0 ||
			    strcmp(optarg, "off") == 0) {
				go.console_port = -1;
				g.console_off = true;
			} else if (sm_parse_u64(optarg, 0, 65535, &v) != 0)
				return bad("--console", optarg);
			else {
				go.console_port = (int)v;
				g.console_off = false;
			}
			break;
		case OPT_LISTEN_ALL:
			go.listen_host = "0.0.0.0";
			g.listen_all = true;
			break;
		case OPT_MAX_BODY:
			if (sm_parse_u64(optarg, 1024, 1ull << 30, &v) != 0)
				return bad("--max-body", optarg);
			go.max_body = (size_t)v;
			break;
		case OPT_BACKEND_TIMEOUT:
			if (sm_parse_u64(optarg, 1, 86400, &v) != 0)
				return bad("--backend-timeout", optarg);
			go.backend_timeout_ms = v * 1000;
			break;
		case OPT_CONNECT_TIMEOUT:
			if (sm_parse_u64(optarg, 1, 3600, &v) != 0)
				return bad("--connect-timeout", optarg);
			go.connect_timeout_ms = v * 1000;
			break;
		case OPT_STATE_DIR:
			state_dir = optarg;
			break;
		case OPT_LOG_FORMAT:
			if (log_format_parse(optarg, &lf) != 0)
				return bad("--log-format", optarg);
			break;
		case OPT_LOG_LEVEL:
			if (strcmp(optarg, "debug") == 0)
				ll = LOG_DEBUG;
			else if (strcmp(optarg, "info") == 0)
				ll = LOG_INFO;
			else if (strcmp(optarg, "warn") == 0)
				ll = LOG_WARN;
			else if (strcmp(optarg, "error") == 0)
				ll = LOG_ERROR;
			else
				return bad("--log-level", optarg);
			break;
		case OPT_STRICT_ENV:
			break; /* acted on before main's parsing, see harden/ */
		case OPT_MESH_PORT:
			if (sm_parse_u64(optarg, 0, 65535, &v) != 0)
				return bad("--mesh-port", optarg);
			mo.port = (uint16_t)v;
			break;
		case OPT_BIND:
			mo.bind = optarg;
			break;
		case OPT_JOIN:
			if (mo.n_join == MESH_MAX_JOIN)
				return bad("--join", "too many tokens");
			mo.join[mo.n_join++] = optarg;
			break;
		case OPT_ADVERTISE:
			if (mo.n_advertise == MESH_MAX_ADVERTISE)
				return bad("--advertise", "too many");
			mo.advertise[mo.n_advertise++] = optarg;
			break;
		case OPT_NO_RELAY:
			mo.no_relay = true;
			break;
		case OPT_ATTEST:
			mo.attest = optarg;
			break;
		case OPT_TPM:
			mo.tpm_tcti = optarg;
			g.tpm = true;
			break;
		case OPT_TPM_CA:
			mo.tpm_ca = optarg;
			break;
		case OPT_TPM_CRL:
			mo.tpm_crl = optarg;
			break;
		case OPT_MIN_TRUST: {
			enum att_level lvl;

			if (att_level_parse(optarg, &lvl) != 0)
				return bad("--min-trust", optarg);
			mo.min_trust = (int)lvl;
			g.min_trust = true;
			break;
		}
		case OPT_ALLOWED_BINARIES:
			mo.allowed_binaries = optarg;
			break;
		case OPT_REQUIRE_ATTESTED:
			mo.require_attested = true;
			break;
		case OPT_CHALLENGE_INTERVAL:
			if (sm_parse_u64(optarg, 1, 86400, &v) != 0)
				return bad("--challenge-interval", optarg);
			mo.challenge_interval_ms = v * 1000;
			break;
		case OPT_ATTEST_WINDOW:
			if (sm_parse_u64(optarg, 1, 86400, &v) != 0)
				return bad("--attest-window", optarg);
			mo.attest_window_ms = v * 1000;
			break;
		case OPT_EVENT_LOG:
			mo.event_log = optarg;
			break;
		case OPT_IMA_LOG:
			mo.ima_log = optarg;
			break;
		case OPT_PCR_POLICY:
			mo.pcr_policy = optarg;
			break;
		case OPT_IMA_ALLOWLIST:
			mo.ima_allowlist = optarg;
			break;
		case OPT_REQUIRE_MEASURED_BINARY:
			mo.require_measured_binary = true;
			break;
		case OPT_REQUIRE_HARDENED:
			mo.require_hardened = true;
			break;
		case OPT_NO_E2E:
			mo.no_e2e = true;
			break;
		case OPT_NO_PRIVSEP:
			no_privsep = true;
			break;
		case OPT_USER:
			user = optarg;
			break;
		case OPT_ALLOW_PLAINTEXT:
			mo.allow_plaintext = true;
			break;
		case OPT_KEY_EPOCH:
			if (sm_parse_u64(optarg, 1, 30 * 86400, &v) != 0)
				return bad("--key-epoch", optarg);
			mo.key_epoch_s = v;
			g.key_epoch = true;
			break;
		case OPT_MAX_PEERS:
			if (sm_parse_u64(optarg, 1, 1000000, &v) != 0)
				return bad("--max-peers", optarg);
			mo.max_peers = (size_t)v;
			break;
		case OPT_E2E_ENVELOPE:
			if (sm_parse_u64(optarg, 1, ENV_VERSION_MAX, &v) != 0)
				return bad("--e2e-envelope", optarg);
			mo.envelope_version = (uint32_t)v;
			break;
		case OPT_RESPONSE_PACING:
			if (sm_parse_u64(optarg, 0, SHAPE_PACING_MAX_MS, &v) !=
			    0)
				return bad("--response-pacing", optarg);
			mo.response_pacing_ms = (uint32_t)v;
			break;
		case OPT_RESPONSE_BUCKET:
			if (sm_parse_u64(optarg, RS2_BUCKET_MIN, RS2_BUCKET_MAX,
				&v) != 0 ||
			    rs2_bucket_round(v) != v)
				return bad("--response-bucket", optarg);
			mo.response_bucket = (uint32_t)v;
			break;
		case OPT_NO_SHAPING:
			mo.no_shaping = true;
			break;
		case OPT_LINK_STREAMS:
			if (sm_parse_u64(optarg, 1, LINK_MAX_STREAMS_MAX, &v) !=
			    0)
				return bad("--link-streams", optarg);
			mo.link_streams = (uint32_t)v;
			break;
		case OPT_QUEUE_MAX:
			if (sm_parse_u64(optarg, 1, 1u << 24, &v) != 0)
				return bad("--queue-max", optarg);
			mo.queue_max = (uint32_t)v;
			break;
		case OPT_QUEUE_TIMEOUT:
			if (sm_parse_u64(optarg, 1, 3600000, &v) != 0)
				return bad("--queue-timeout", optarg);
			mo.queue_timeout_ms = (uint32_t)v;
			break;
		case OPT_GOSSIP_INTERVAL:
			if (sm_parse_u64(optarg, 100, 86400000, &v) != 0)
				return bad("--gossip-interval", optarg);
			mo.gossip_interval_ms = v;
			break;
		case OPT_MAX_CLOCK_SKEW:
			if (sm_parse_u64(optarg, 1, 86400000, &v) != 0)
				return bad("--max-clock-skew", optarg);
			mo.clock_skew_ms = v;
			break;
#ifdef SM_TEST_BUILD
		case OPT_TEST_RECORD:
			tunnel_test_record_fd = open(optarg,
			    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
			if (tunnel_test_record_fd < 0)
				return bad("--test-record-relay", optarg);
			break;
		case OPT_TEST_FORGE:
			mesh_test_forge = true;
			break;
		case OPT_TEST_GOSSIP_V1:
			mo.gossip_v1 = true;
			break;
		case OPT_TEST_OLD_RSTREAM:
			tunnel_test_old_rstream = true;
			break;
		case OPT_TEST_CLAIM_RELAY:
			roster_test_claim_relay = true;
			break;
		case OPT_TEST_IGNORE_CHALLENGES:
			mesh_att_test_ignore_challenges = true;
			break;
		case OPT_TEST_CORRUPT_ANSWERS:
			mesh_att_test_corrupt_answers = true;
			break;
		case OPT_TEST_CHALLENGE_FLOOD:
			if (sm_parse_u64(optarg, 1, 1024, &v) != 0)
				return bad("--test-challenge-flood", optarg);
			mesh_att_test_flood = (unsigned)v;
			break;
		case OPT_TEST_ATTEST_UNHARDENED:
			mesh_att_test_attest_unhardened = true;
			break;
		case OPT_TEST_FLOOD_INCOMPLETE:
			if (sm_parse_u64(optarg, 1, 100000, &v) != 0)
				return bad("--test-flood-incomplete", optarg);
			tunnel_test_flood = (unsigned)v;
			break;
		case OPT_TEST_NO_PREAUTH_LIMIT:
			tunnel_test_no_preauth_limit = true;
			break;
		case OPT_TEST_FLOOD_PLAIN:
			tunnel_test_flood_plain = true;
			break;
		case OPT_TEST_POOL_IDLE:
			if (sm_parse_u64(optarg, 10, 3600000, &v) != 0)
				return bad("--test-pool-idle-ms", optarg);
			upstream_idle_timeout_ms = v;
			break;
#endif
		case OPT_CONFIG:
			break; /* read by config_expand() above */
		case 'h':
			serve_usage(stdout, client);
			return 0;
		default:
			serve_usage(stderr, client);
			return 2;
		}
	}
	opt_origin = NULL;
	if (optind < argc) {
		fprintf(stderr, "sealmesh: unexpected argument '%s'\n",
		    argv[optind]);
		return 2;
	}
	/* Measurement requirements only mean something at the route gate. */
	if (mo.pcr_policy != NULL || mo.ima_allowlist != NULL ||
	    mo.require_measured_binary)
		mo.require_attested = true;
	if (client && mo.n_join == 0) {
		fprintf(stderr, "sealmesh client: --join TOKEN is required\n");
		return 2;
	}
	if (client && (s.nbackends > 0 || ngguf > 0)) {
		fprintf(
		    stderr, "sealmesh client: serves no models; use serve\n");
		return 2;
	}
	if ((r = check_flag_pairs(&mo, &g)) != 0)
		return r;
	/* A key file that cannot be used stops the start, naming the file. */
	if (g.api_key_file != NULL &&
	    apikeys_load(&keys, g.api_key_file, kwhy, sizeof(kwhy)) != 0) {
		fprintf(stderr, "sealmesh: API keys: %s\n", kwhy);
		return 1;
	}
	s.api_key_file = g.api_key_file;
	/* A malformed token is a usage error: say so before anything starts. */
	for (size_t i = 0; i < mo.n_join; i++) {
		struct token tok;
		const char *why;

		if ((r = token_parse(mo.join[i], &tok, &why)) ==
		    SM_ERR_UNSUPP) {
			/* Not a token: an invite of an owned mesh? */
			static struct member_invite inv;

			r = member_invite_parse(mo.join[i], &inv, &why);
			member_invite_clear(&inv);
		}
		if (r != 0) {
			fprintf(
			    stderr, "sealmesh: bad invite token: %s\n", why);
			return 2;
		}
		token_clear(&tok);
	}
	log_setup(lf, ll);
	signal(SIGPIPE, SIG_IGN);
	/* Files the flags name: fail now, naming the flag, path and error. */
	for (size_t i = 0; i < ngguf; i++)
		if (check_path("--gguf", gguf[i], false, R_OK) != 0)
			return 1;
	if (ngguf > 0 && check_program("--llama-server", llama_bin) != 0)
		return 1;
	if ((mo.tpm_ca != NULL &&
		check_path("--tpm-ca", mo.tpm_ca, true, R_OK | X_OK) != 0) ||
	    (mo.allowed_binaries != NULL &&
		check_path("--allowed-binaries", mo.allowed_binaries, false,
		    R_OK) != 0))
		return 1;
	raise_nofile();

	if (client) {
		r = identity_ephemeral(&s.id);
	} else if (state_dir == NULL &&
	    identity_default_dir(default_dir, sizeof(default_dir)) != 0) {
		fprintf(stderr, "sealmesh serve: no HOME; use --state-dir\n");
		return 2;
	}
	if (!client && state_dir == NULL)
		state_dir = default_dir;
	/* Before the split: the signer keeps its AK there too. */
	mo.state_dir = client ? NULL : state_dir;
	if (!client && !no_privsep) {
		/* The keys go to the signer; this process becomes the worker.
		 */
		int code;

		if ((r = privsep_split(
			 &s, &mo, state_dir, user, ngguf > 0, &code)) != 0)
			return r > 0 ? code : 1;
	} else if (!client) {
		r = identity_load(&s.id, state_dir, true);
	}
	if (r != 0) {
		if (client)
			fprintf(stderr,
			    "sealmesh: cannot make an identity: %s\n",
			    sm_strerror(r));
		else
			fprintf(stderr,
			    "sealmesh: cannot load the node identity from "
			    "state dir %s: %s (see the error above)\n",
			    state_dir, sm_strerror(r));
		return 1;
	}
	/* Keep the identity key out of swap; the posture records the result. */
	if (s.id.sk != NULL)
		(void)harden_lock_key(s.id.sk, ID_SK_LEN);
	s.loop = uv_default_loop();
	router_init(&s.router);
	for (size_t i = 0; i < ngguf; i++) {
		struct backend *b = &s.backends[s.nbackends];

		if (s.nbackends == MAX_BACKENDS ||
		    llama_stem(gguf[i], b->name, sizeof(b->name)) != 0)
			return bad("--gguf", gguf[i]);
		if (llama_start(
			&s.llama[s.nllama], s.loop, llama_bin, gguf[i], b) != 0)
			return 1;
		s.nllama++;
		s.nbackends++;
	}
	for (size_t i = 0; i < s.nbackends; i++) {
		if (router_add_local(&s.router, &s.backends[i]) != 0) {
			fprintf(stderr,
			    "sealmesh serve: model '%s' given "
			    "twice\n",
			    s.backends[i].name);
			return 2;
		}
	}
	go.node_id = s.id.id_hex;
	r = gateway_open(&s.gw, s.loop, &s.router, &go, &access, keys);
	keys = NULL; /* the gateway's now */
	if (r != 0) {
		fprintf(stderr,
		    "sealmesh: cannot listen on %s (api port %d, console port "
		    "%d): %s (see the error above)\n",
		    go.listen_host, go.api_port, go.console_port,
		    sm_strerror(r));
		return 1;
	}
	/* Under --listen-all the node's own addresses are Host names too. */
	if (g.listen_all || g.console_listen_all)
		log_info("accepting Host names of %zu own address(es)",
		    gateway_add_own_addrs(&s.gw));
	if (s.gw.keys != NULL)
		log_info("API keys: %zu loaded from %s",
		    apikeys_count(s.gw.keys), s.api_key_file);
	else if (g.listen_all || g.console_listen_all)
		log_warn("--insecure-no-auth: anyone who can reach the "
			 "node's ports uses it without a key");
	mo.state_dir = client ? NULL : state_dir;
	/* Downgrade memory: a client keeps one only with --state-dir. */
	mo.memory_dir = state_dir;
	mo.api_port = s.gw.api.port;
	mo.console_port = s.gw.console_open ? s.gw.console.port : 0;
	if ((r = mesh_open(&s.mesh, s.loop, &s.id, &s.router, &s.gw, &mo)) !=
	    0) {
		fprintf(stderr,
		    "sealmesh: cannot start the mesh (mesh port %s:%u, state "
		    "dir %s): %s (see the error above)\n",
		    mo.bind ? mo.bind : "0.0.0.0", mo.port,
		    mo.state_dir ? mo.state_dir : "none", sm_strerror(r));
		return 1;
	}
	if (!client && (r = write_token_file(state_dir, s.mesh.token)) != 0) {
		fprintf(stderr,
		    "sealmesh: cannot write the invite token to %s/%s: %s\n",
		    state_dir, CLI_TOKEN_FILE, sm_strerror(r));
		return 1;
	}
	s.mesh.on_join_failed = join_failed;
	s.gw.status_hook = status_hook;
	s.gw.metrics_hook = metrics_hook;
	s.gw.challenge_hook = challenge_hook;
	s.gw.status_arg = &s.mesh;
	uv_signal_init(s.loop, &s.sigint);
	uv_signal_init(s.loop, &s.sigterm);
	s.sigint.data = s.sigterm.data = &s;
	uv_signal_start(&s.sigint, on_signal, SIGINT);
	uv_signal_start(&s.sigterm, on_signal, SIGTERM);
	uv_signal_init(s.loop, &s.sighup);
	s.sighup.data = &s;
	uv_signal_start(&s.sighup, on_sighup, SIGHUP);
#ifdef SM_TEST_BUILD
	uv_signal_init(s.loop, &s.sigusr1);
	uv_signal_start(&s.sigusr1, on_sigusr1, SIGUSR1);
	uv_signal_init(s.loop, &s.sigusr2);
	s.sigusr2.data = &s;
	uv_signal_start(&s.sigusr2, on_sigusr2, SIGUSR2);
	uv_signal_init(s.loop, &s.sigwinch);
	uv_signal_start(&s.sigwinch, on_sigwinch, SIGWINCH);
	if (getenv("SM_TEST_FORBIDDEN_SYSCALL") != NULL) {
		static uv_timer_t forbid;

		uv_timer_init(s.loop, &forbid);
		uv_timer_start(&forbid, on_forbidden, 300, 0);
	}
#endif

	/* Startup has read every file its flags name: a root worker now
	 * becomes --user, before it reads a byte from the network. */
	if (s.drop_user != NULL) {
		if (sandbox_drop_user(s.drop_user) != 0)
			return 1;
		/* A change of ids clears the parent-death signal. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 ||
		    getppid() != s.signer_pid)
			return 1;
		if (faccessat(AT_FDCWD, state_dir, R_OK | W_OK | X_OK, 0) !=
		    0) {
			log_error("privsep: the worker (user %s) cannot use "
				  "state dir %s: %s (choose a --state-dir it "
				  "can reach, e.g. under /var/lib)",
			    s.drop_user, state_dir, strerror(errno));
			return 1;
		}
	}
	log_info("node %s serving %zu model(s)", s.id.id_hex, s.nbackends);
	for (size_t i = 0; i < s.nbackends; i++)
		log_info("model %s -> %s", s.backends[i].name,
		    i < s.nbackends - s.nllama ? "backend" : "llama-server");
	printf("sealmesh: api http://%s:%d/v1 console http://%s:%d mesh %u\n",
	    go.listen_host, s.gw.api.port,
	    go.console_host ? go.console_host : "127.0.0.1",
	    s.gw.console_open ? s.gw.console.port : -1, s.mesh.port);
	printf("sealmesh: token %s\n", s.mesh.token);
	fflush(stdout);

	uv_run(s.loop, UV_RUN_DEFAULT);
	identity_clear(&s.id);
	signer_client_free(s.signer);
	log_info("stopped");
	return 0;
}

int
cli_serve(int argc, char **argv)
{
	return run(argc, argv, false);
}

int
cli_client(int argc, char **argv)
{
	return run(argc, argv, true);
}
