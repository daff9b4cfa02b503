/* sealmesh attest: this node's attestation, every peer's verdict, and an
 * on-demand challenge of one peer. Reads the running node's console. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/console.h"
#include "core/util.h"
#include "mesh/identity.h"

static const char *
s_of(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : "-";
}

static bool
b_of(const cJSON *o, const char *k)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static const cJSON *
peer_by_id(const cJSON *st, const char *id)
{
	const cJSON *p, *peers = cJSON_GetObjectItemCaseSensitive(st, "peers");

	cJSON_ArrayForEach(
	    p, peers) if (strncmp(s_of(p, "id"), id, strlen(id)) == 0) return p;
	return NULL;
}

static void
print_json(const cJSON *o)
{
	char *s = cJSON_Print(o);

	printf("%s\n", s ? s : "null");
	cJSON_free(s);
}

/*
 * Per-claim levels (attest/measure.h): who measured the binary hash, secure
 * boot and the posture, and what the last measurement check said.
 */
static void
print_claims(const cJSON *at)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(at, "claims");
	const cJSON *ms = cJSON_GetObjectItemCaseSensitive(at, "measurement");

	if (!cJSON_IsObject(c))
		return;
	printf("             binary %s, secure boot %s, posture %s (%s)\n",
	    s_of(c, "binary"), s_of(c, "secure_boot"), s_of(c, "posture"),
	    s_of(ms, "reason"));
}

/* Challenge one peer now, wait for its answer, print its verdict. */
static int
challenge_peer(int port, const char *id)
{
	const cJSON *p, *at;
	char path[160], full[ID_HEX_LEN + 1];
	cJSON *st = NULL, *res = NULL;
	int status, i, rc = 1;

	if (console_status(port, &st) != 0)
		return 1;
	if ((p = peer_by_id(st, id)) == NULL) {
		fprintf(stderr, "sealmesh attest: no peer %s\n", id);
		goto out;
	}
	snprintf(full, sizeof(full), "%s", s_of(p, "id"));
	snprintf(path, sizeof(path), "/api/attest/challenge?peer=%s", full);
	if (console_call(port, "POST", path, &status, &res) != 0) {
		fprintf(stderr,
		    "sealmesh attest: cannot challenge %s now (%s)\n", full,
		    s_of(cJSON_GetObjectItemCaseSensitive(res, "error"),
			"message"));
		goto out;
	}
	/* The answer comes back on the node's own loop: poll its status. */
	for (i = 0; i < 100; i++) {
		cJSON_Delete(st);
		st = NULL;
		usleep(100 * 1000);
		if (console_status(port, &st) != 0)
			goto out;
		p = peer_by_id(st, full);
		at = p ? cJSON_GetObjectItemCaseSensitive(p, "attestation")
		       : NULL;
		const cJSON *age =
		    cJSON_GetObjectItemCaseSensitive(at, "challenged_age_s");
		if (cJSON_IsNumber(age) && age->valuedouble < 0.1 * (i + 2))
			break;
	}
	at = p ? cJSON_GetObjectItemCaseSensitive(p, "attestation") : NULL;
	print_json(at);
	rc = b_of(at, "fresh") && strcmp(s_of(at, "status"), "verified") == 0
	    ? 0
	    : 1;
out:
	cJSON_Delete(res);
	cJSON_Delete(st);
	return rc;
}

int
cli_attest(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"console", required_argument, NULL, 'c'},
	    {"peer", required_argument, NULL, 'p'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *peer = NULL;
	const cJSON *p, *at, *self;
	bool json = false;
	uint64_t v;
	int port = 3131, c;
	cJSON *st;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (sm_parse_u64(optarg, 1, 65535, &v) != 0)
				return 2;
			port = (int)v;
			break;
		case 'p':
			peer = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			printf(
			    "usage: sealmesh attest [--console PORT] [--json]\n"
			    "       sealmesh attest --peer ID [--console "
			    "PORT]\n\n"
			    "Without --peer: this node's attestation and "
			    "every peer's verdict.\n"
			    "With --peer (an id or a prefix of one): challenge "
			    "that peer now with a\nfresh nonce and print its "
			    "verdict; exit 0 only if it is verified and "
			    "fresh.\n\n"
			    "Each peer's claims show who measured them: "
			    "kernel_measured (an IMA list or\nTCG event log "
			    "replayed against a TPM quote), signer_measured "
			    "(reserved), or\nself_reported (the host said so "
			    "itself: \"binary self-measured\").\n");
			return 0;
		default:
			return 2;
		}
	}
	if (peer != NULL)
		return challenge_peer(port, peer);
	if (console_status(port, &st) != 0)
		return 1;
	self = cJSON_GetObjectItemCaseSensitive(st, "attestation");
	if (json) {
		print_json(st);
		cJSON_Delete(st);
		return 0;
	}
	printf("node      %s\nprovider  %s\nblob      %s\npolicy    %s, "
	       "min trust %s\n\n",
	    s_of(st, "node_id"), s_of(self, "provider"),
	    s_of(self, "blob_hash"),
	    b_of(self, "require_attested_hosts") ? "--require-attested-hosts"
						 : "any host",
	    s_of(self, "min_trust"));
	printf("%-12s %-11s %-11s %-6s %-8s %s\n", "PEER", "LEVEL", "STATUS",
	    "FRESH", "ELIGIBLE", "REASON");
	cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(st, "peers"))
	{
		at = cJSON_GetObjectItemCaseSensitive(p, "attestation");
		printf("%-12.12s %-11s %-11s %-6s %-8s %s\n", s_of(p, "id"),
		    s_of(at, "level"), s_of(at, "status"),
		    b_of(at, "fresh") ? "yes" : "no",
		    b_of(at, "eligible") ? "yes" : "no", s_of(at, "reason"));
		print_claims(at);
	}
	cJSON_Delete(st);
	return 0;
}
