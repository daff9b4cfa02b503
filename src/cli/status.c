/* sealmesh status: the running node and its peers, as a table. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/console.h"

static const char *
str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : "-";
}

static void
join_array(const cJSON *o, const char *k, char *out, size_t len)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, k), *it;
	size_t off = 0;

	out[0] = '\0';
	cJSON_ArrayForEach(it, arr)
	{
		if (!cJSON_IsString(it))
			continue;
		int n = snprintf(out + off, len - off, "%s%s", off ? "," : "",
		    it->valuestring);
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
	if (off == 0)
		snprintf(out, len, "-");
}

/* "member  owned by 1234abcd5678 (rights use; 2 revocations)" */
static void
member_line(const cJSON *m)
{
	const cJSON *rev = cJSON_GetObjectItemCaseSensitive(m, "revocations");

	if (m == NULL)
		return;
	if (strcmp(str(m, "mode"), "owned") != 0) {
		printf("member  legacy token mesh (anyone with the token)\n");
		return;
	}
	printf("member  owned by %.12s%s (rights %s; %d revocation(s))\n",
	    str(m, "owner"),
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "owner_key"))
		? ", owner key here"
		: "",
	    str(m, "rights"), cJSON_IsNumber(rev) ? rev->valueint : 0);
}

int
cli_status(int argc, char **argv)
{
	const cJSON *peers, *p, *rtt, *seen;
	char models[256], addrs[256], rtts[16], via[16];
	bool json;
	cJSON *st;
	int port, r;

	if ((r = console_port_arg(argc, argv, "status", &port, &json)) >= 0)
		return r;
	if (console_status(port, &st) != 0)
		return 1;
	if (json) {
		char *s = cJSON_Print(st);

		printf("%s\n", s);
		cJSON_free(s);
		cJSON_Delete(st);
		return 0;
	}
	join_array(st, "models", models, sizeof(models));
	printf("node    %s (%s)\nversion %s\nmesh    %s\n", str(st, "node_id"),
	    str(st, "role"), str(st, "version"), str(st, "mesh_id"));
	member_line(cJSON_GetObjectItemCaseSensitive(st, "membership"));
	printf("models  %s\n\n", models);
	printf("%-12s %-7s %-8s %-7s %-12s %8s %9s %-4s %-22s %-20s %s\n",
	    "PEER", "ROLE", "STATE", "LINK", "VIA", "RTT(ms)", "SEEN(s)", "E2E",
	    "ATTESTATION", "MODELS", "ADDRESSES");
	peers = cJSON_GetObjectItemCaseSensitive(st, "peers");
	cJSON_ArrayForEach(p, peers)
	{
		join_array(p, "models", models, sizeof(models));
		join_array(p, "addresses", addrs, sizeof(addrs));
		rtt = cJSON_GetObjectItemCaseSensitive(p, "rtt_ms");
		seen = cJSON_GetObjectItemCaseSensitive(p, "last_seen_ms");
		if (cJSON_IsNumber(rtt))
			snprintf(rtts, sizeof(rtts), "%.1f", rtt->valuedouble);
		else
			snprintf(rtts, sizeof(rtts), "-");
		snprintf(via, sizeof(via), "%.12s", str(p, "via"));
		const cJSON *at =
		    cJSON_GetObjectItemCaseSensitive(p, "attestation");
		char att[64];

		snprintf(att, sizeof(att), "%s/%s%s", str(at, "level"),
		    str(at, "status"),
		    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(at, "fresh"))
			? ",fresh"
			: "");
		printf("%-12.12s %-7s %-8s %-7s %-12s %8s %9.1f %-4s %-22s "
		       "%-20s %s\n",
		    str(p, "id"), str(p, "role"), str(p, "state"),
		    str(p, "link"), via, rtts,
		    cJSON_IsNumber(seen) ? seen->valuedouble / 1000.0 : -1.0,
		    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "e2e"))
			? "yes"
			: "no",
		    att, models, addrs);
	}
	cJSON_Delete(st);
	return 0;
}
