/* sealmesh serve: run a node in front of local OpenAI-compatible backends. */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <uv.h>

#include "backend/backend.h"
#include "backend/llama.h"
#include "cli/cli.h"
#include "core/log.h"
#include "core/util.h"
#include "harden/harden.h"
#include "http/gateway.h"
#include "attest/blob.h"
#include "mesh/attest.h"
#include "mesh/identity.h"
#include "mesh/node.h"
#include "mesh/tunnel.h"
#include "net/link.h"
#include "mesh/route.h"

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
	uv_signal_t sigint, sigterm;
#ifdef SM_TEST_BUILD
	uv_signal_t sigusr1;
#endif
	bool stopping;
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
	    "  --console N             console port for /api/status and "
	    "/metrics\n"
	    "                          (default 3131, 0 = ephemeral, -1 = "
	    "off)\n"
	    "  --listen-all            bind 0.0.0.0 instead of 127.0.0.1\n"
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
	    "  --join TOKEN            join the mesh of this invite token "
	    "(repeatable)\n"
	    "  --advertise HOST:PORT   address peers should dial (repeatable; "
	    "default:\n"
	    "                          every interface address, loopback "
	    "last)\n"
	    "  --no-relay              never forward streams for other "
	    "nodes\n"
	    "  --gossip-interval MS    gossip period (default 30000); a peer "
	    "silent for\n"
	    "                          3 periods is stale, then pruned\n"
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
	    "\n"
	    "end-to-end encryption:\n"
	    "  --key-epoch SECS        replace the inference key this often "
	    "(default 3600)\n"
	    "  --allow-plaintext-peers send plaintext to hosts that offer no "
	    "key (never\n"
	    "                          to one that once offered a key)\n"
	    "  --no-e2e                offer no key and send plaintext, as a "
	    "node without\n"
	    "                          E2E would (mixed-version tests, "
	    "benchmarks)\n"
#ifdef SM_TEST_BUILD
	    "  --test-record-relay F   (test builds) append relayed bytes to "
	    "F\n"
	    "  --test-forge-gossip     (test builds) also gossip a forged "
	    "announcement\n"
	    "  --test-ignore-challenges (test builds) never answer "
	    "attestation challenges\n"
	    "  --test-pool-idle-ms MS  (test builds) close idle backend "
	    "connections after MS\n"
#endif
	    "\n"
	    "node:\n"
	    "  --state-dir DIR         identity key directory (default "
	    "~/.sealmesh)\n"
	    "  --log-format FMT        pretty or json (default pretty)\n"
	    "  --log-level LVL         debug, info, warn or error (default "
	    "info)\n"
	    "  -h, --help              this text\n");
}

#ifdef SM_TEST_BUILD
/* Test builds: SIGUSR1 toggles answering attestation challenges. */
static void
on_sigusr1(uv_signal_t *h, int signum)
{
	mesh_att_test_ignore_challenges = !mesh_att_test_ignore_challenges;
	log_info("test: challenges %s",
	    mesh_att_test_ignore_challenges ? "ignored" : "answered");
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
#ifdef SM_TEST_BUILD
	uv_close((uv_handle_t *)&s->sigusr1, NULL);
#endif
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
	OPT_TEST_RECORD,
	OPT_TEST_FORGE,
	OPT_NO_E2E,
	OPT_ALLOW_PLAINTEXT,
	OPT_KEY_EPOCH,
	OPT_REQUIRE_HARDENED,
	OPT_ATTEST,
	OPT_TPM,
	OPT_TPM_CA,
	OPT_MIN_TRUST,
	OPT_ALLOWED_BINARIES,
	OPT_REQUIRE_ATTESTED,
	OPT_CHALLENGE_INTERVAL,
	OPT_ATTEST_WINDOW,
	OPT_TEST_IGNORE_CHALLENGES,
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
    {"no-e2e", no_argument, NULL, OPT_NO_E2E},
    {"allow-plaintext-peers", no_argument, NULL, OPT_ALLOW_PLAINTEXT},
    {"key-epoch", required_argument, NULL, OPT_KEY_EPOCH},
    {"require-hardened", no_argument, NULL, OPT_REQUIRE_HARDENED},
    {"attest", required_argument, NULL, OPT_ATTEST},
    {"tpm", required_argument, NULL, OPT_TPM},
    {"tpm-ca", required_argument, NULL, OPT_TPM_CA},
    {"min-trust", required_argument, NULL, OPT_MIN_TRUST},
    {"allowed-binaries", required_argument, NULL, OPT_ALLOWED_BINARIES},
    {"require-attested-hosts", no_argument, NULL, OPT_REQUIRE_ATTESTED},
    {"challenge-interval", required_argument, NULL, OPT_CHALLENGE_INTERVAL},
    {"attest-window", required_argument, NULL, OPT_ATTEST_WINDOW},
    {"link-streams", required_argument, NULL, OPT_LINK_STREAMS},
    {"queue-max", required_argument, NULL, OPT_QUEUE_MAX},
    {"queue-timeout", required_argument, NULL, OPT_QUEUE_TIMEOUT},
#ifdef SM_TEST_BUILD
    {"test-record-relay", required_argument, NULL, OPT_TEST_RECORD},
    {"test-forge-gossip", no_argument, NULL, OPT_TEST_FORGE},
    {"test-ignore-challenges", no_argument, NULL, OPT_TEST_IGNORE_CHALLENGES},
    {"test-pool-idle-ms", required_argument, NULL, OPT_TEST_POOL_IDLE},
#endif
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int
bad(const char *flag, const char *val)
{
	fprintf(stderr, "sealmesh: bad value for %s: '%s'\n", flag, val);
	return 2;
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

static int
run(int argc, char **argv, bool client)
{
	static struct serve s; /* large; lives for the whole process */
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
	};
	const char *gguf[MAX_GGUF], *llama_bin = "llama-server";
	const char *state_dir = NULL;
	char default_dir[4096], err[256];
	enum log_format lf = LOG_PRETTY;
	enum log_level ll = LOG_INFO;
	size_t ngguf = 0;
	uint64_t v;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", serve_opts, NULL)) != -1) {
		switch (c) {
		case OPT_MODEL:
			if (s.nbackends == MAX_BACKENDS)
				return bad("--model", "too many backends");
			if (backend_parse(&s.backends[s.nbackends], optarg, err,
				sizeof(err)) != 0) {
				fprintf(stderr, "sealmesh serve: %s\n", err);
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
			    strcmp(optarg, "off") == 0)
				go.console_port = -1;
			else if (sm_parse_u64(optarg, 0, 65535, &v) != 0)
				return bad("--console", optarg);
			else
				go.console_port = (int)v;
			break;
		case OPT_LISTEN_ALL:
			go.listen_host = "0.0.0.0";
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
			break;
		case OPT_TPM_CA:
			mo.tpm_ca = optarg;
			break;
		case OPT_MIN_TRUST: {
			enum att_level lvl;

			if (att_level_parse(optarg, &lvl) != 0)
				return bad("--min-trust", optarg);
			mo.min_trust = (int)lvl;
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
		case OPT_REQUIRE_HARDENED:
			mo.require_hardened = true;
			break;
		case OPT_NO_E2E:
			mo.no_e2e = true;
			break;
		case OPT_ALLOW_PLAINTEXT:
			mo.allow_plaintext = true;
			break;
		case OPT_KEY_EPOCH:
			if (sm_parse_u64(optarg, 1, 30 * 86400, &v) != 0)
				return bad("--key-epoch", optarg);
			mo.key_epoch_s = v;
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
		case OPT_TEST_IGNORE_CHALLENGES:
			mesh_att_test_ignore_challenges = true;
			break;
		case OPT_TEST_POOL_IDLE:
			if (sm_parse_u64(optarg, 10, 3600000, &v) != 0)
				return bad("--test-pool-idle-ms", optarg);
			upstream_idle_timeout_ms = v;
			break;
#endif
		case 'h':
			serve_usage(stdout, client);
			return 0;
		default:
			serve_usage(stderr, client);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sealmesh: unexpected argument '%s'\n",
		    argv[optind]);
		return 2;
	}
	if (client && mo.n_join == 0) {
		fprintf(stderr, "sealmesh client: --join TOKEN is required\n");
		return 2;
	}
	if (client && (s.nbackends > 0 || ngguf > 0)) {
		fprintf(
		    stderr, "sealmesh client: serves no models; use serve\n");
		return 2;
	}
	/* A malformed token is a usage error: say so before anything starts. */
	for (size_t i = 0; i < mo.n_join; i++) {
		struct token tok;
		const char *why;

		if (token_parse(mo.join[i], &tok, &why) != 0) {
			fprintf(
			    stderr, "sealmesh: bad invite token: %s\n", why);
			return 2;
		}
		token_clear(&tok);
	}
	log_setup(lf, ll);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();

	if (client) {
		r = identity_ephemeral(&s.id);
	} else if (state_dir == NULL &&
	    identity_default_dir(default_dir, sizeof(default_dir)) != 0) {
		fprintf(stderr, "sealmesh serve: no HOME; use --state-dir\n");
		return 2;
	}
	if (!client) {
		if (state_dir == NULL)
			state_dir = default_dir;
		r = identity_load(&s.id, state_dir, true);
	}
	if (r != 0) {
		fprintf(stderr, "sealmesh: identity: %s\n", sm_strerror(r));
		return 1;
	}
	/* Keep the identity key out of swap; the posture records the result. */
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
	if ((r = gateway_open(&s.gw, s.loop, &s.router, &go)) != 0) {
		fprintf(
		    stderr, "sealmesh: cannot listen: %s\n", sm_strerror(r));
		return 1;
	}
	mo.state_dir = client ? NULL : state_dir;
	mo.api_port = s.gw.api.port;
	mo.console_port = s.gw.console_open ? s.gw.console.port : 0;
	if ((r = mesh_open(&s.mesh, s.loop, &s.id, &s.router, &s.gw, &mo)) !=
	    0) {
		fprintf(stderr, "sealmesh: cannot start the mesh: %s\n",
		    sm_strerror(r));
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
#ifdef SM_TEST_BUILD
	uv_signal_init(s.loop, &s.sigusr1);
	uv_signal_start(&s.sigusr1, on_sigusr1, SIGUSR1);
#endif

	log_info("node %s serving %zu model(s)", s.id.id_hex, s.nbackends);
	for (size_t i = 0; i < s.nbackends; i++)
		log_info("model %s -> %s", s.backends[i].name,
		    i < s.nbackends - s.nllama ? "backend" : "llama-server");
	printf("sealmesh: api http://%s:%d/v1 console http://%s:%d mesh %u\n",
	    go.listen_host, s.gw.api.port, go.listen_host,
	    s.gw.console_open ? s.gw.console.port : -1, s.mesh.port);
	printf("sealmesh: token %s\n", s.mesh.token);
	fflush(stdout);

	uv_run(s.loop, UV_RUN_DEFAULT);
	identity_clear(&s.id);
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
