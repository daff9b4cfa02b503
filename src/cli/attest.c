/* sealmesh attest: this node's attestation, every peer's verdict, and an
 * on-demand challenge of one peer. Reads the running node's console. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "attest/pins.h"
#include "attest/provider.h"
#include "cli/cli.h"
#include "cli/console.h"
#include "core/util.h"
#include "mesh/attest.h"
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

/*
 * --forget NODE_ID: remove that node's pin (AK and EK) from the state dir's
 * pins file, under the same lock the node takes; a running node notices the
 * change within a second and verifies its peers again.
 */
static int
forget(const char *dir, const char *hex)
{
	uint8_t id[ATT_NODE_ID_LEN];
	char path[4096];
	struct att_pins *p = NULL;
	int fd, r, rc = 1;

	if (strlen(hex) != 2 * ATT_NODE_ID_LEN ||
	    sm_unhex(id, sizeof(id), hex) != 0) {
		fprintf(stderr,
		    "sealmesh attest: --forget needs a full node id "
		    "(64 hex digits)\n");
		return 2;
	}
	if (snprintf(path, sizeof(path), "%s/%s", dir, ATTEST_PINS_FILE) >=
	    (int)sizeof(path))
		return 2;
	if ((fd = att_pins_lock(path)) < 0) {
		fprintf(stderr, "sealmesh attest: cannot lock %s.lock: %s\n",
		    path, strerror(errno));
		return 1;
	}
	if ((r = att_pins_new(&p)) != 0 || (r = att_pins_load(p, path)) != 0) {
		fprintf(stderr, "sealmesh attest: cannot read %s: %s\n", path,
		    sm_strerror(r));
		goto out;
	}
	if ((r = att_pins_remove(p, id)) != 0) {
		fprintf(stderr, "sealmesh attest: no pin for %s in %s\n", hex,
		    path);
		goto out;
	}
	if ((r = att_pins_save(p, path)) != 0) {
		fprintf(stderr, "sealmesh attest: cannot write %s: %s\n", path,
		    sm_strerror(r));
		goto out;
	}
	printf("forgot the AK and EK pinned for %s; its next attestation "
	       "is activated afresh\n",
	    hex);
	rc = 0;
out:
	att_pins_free(p);
	att_pins_unlock(fd);
	return rc;
}

/* --new-ak: remove this node's AK file; the next start makes a new AK. */
static int
new_ak(const char *dir)
{
	char path[4096];

	if (snprintf(path, sizeof(path), "%s/%s", dir, ATT_AK_FILE) >=
	    (int)sizeof(path))
		return 2;
	if (unlink(path) != 0 && errno != ENOENT) {
		fprintf(stderr, "sealmesh attest: cannot remove %s: %s\n", path,
		    strerror(errno));
		return 1;
	}
	printf("removed %s: restart the node to create a new AK. Verifiers "
	       "that pinned the old one refuse the new one (AK changed) "
	       "until their operators run `sealmesh attest --forget "
	       "<this node id>`.\n",
	    path);
	return 0;
}

int
cli_attest(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"console", required_argument, NULL, 'c'},
	    {"peer", required_argument, NULL, 'p'},
	    {"json", no_argument, NULL, 'j'},
	    {"forget", required_argument, NULL, 'f'},
	    {"new-ak", no_argument, NULL, 'n'},
	    {"state-dir", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *peer = NULL, *forget_id = NULL, *dir = NULL;
	const cJSON *p, *at, *self;
	char defdir[4096];
	bool json = false, newak = false;
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
		case 'f':
			forget_id = optarg;
			break;
		case 'n':
			newak = true;
			break;
		case 's':
			dir = optarg;
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
			    "itself: \"binary self-measured\").\n\n"
			    "       sealmesh attest --forget NODE_ID "
			    "[--state-dir DIR]\n"
			    "       sealmesh attest --new-ak [--state-dir "
			    "DIR]\n"
			    "\n--forget removes the AK and EK pinned for "
			    "NODE_ID "
			    "(TPM cleared, machine\nreplaced); a running node "
			    "picks the change up within a second.\n"
			    "--new-ak removes this node's AK file; the next "
			    "start creates a new AK,\nwhich verifiers refuse "
			    "until they --forget this node.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (forget_id != NULL || newak) {
		if (dir == NULL) {
			if (identity_default_dir(defdir, sizeof(defdir)) != 0) {
				fprintf(stderr,
				    "sealmesh attest: no HOME; use "
				    "--state-dir\n");
				return 2;
			}
			dir = defdir;
		}
		return forget_id != NULL ? forget(dir, forget_id) : new_ak(dir);
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
