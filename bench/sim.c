/*
 * Gossip simulation: N nodes in one process over a simulated network, each
 * running the real anti-entropy logic of src/mesh/gossip.c (gossip_open,
 * gossip_answer, gossip_msg_write/parse) and verifying every announcement it
 * receives with announce_verify_parse(). Only the store is the simulator's:
 * a compact per-node table (which version of each node's announcement it
 * holds) with an incrementally kept digest, so 10,000 nodes fit in memory.
 *
 * Each node has about 8 random links and each round opens a contact with 3
 * of them (GOSSIP_FANOUT in node.c). A contact is the node.c exchange: the
 * opener's request, the answer, and follow-ups while the opener has more
 * to say. Bytes are the encoded GossipMessage sizes, counted at the sender.
 *
 * Scenarios, starting from a converged mesh: steady rounds with no change;
 * then C nodes re-sign (a change), counting rounds until every node holds
 * every new announcement and the bytes sent meanwhile. The v1 column is
 * what one v1 round costs a node in the same mesh (every contact pushes
 * every announcement both ways), computed from the same announcement sizes.
 *
 *   build/bench/sim [--n N]... [--changes C] [--seed S] [--json]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/buf.h"
#include "mesh/announce.h"
#include "mesh/gossip.h"
#include "mesh/identity.h"

#define FANOUT 3
#define LINKS_PICK 4 /* each node links to 4 random others: ~8 per node */
#define MAX_VERSIONS 2
#define MAX_MSGS_PER_CONTACT 8
#define MAX_ROUNDS 200

struct gnode {
	uint8_t id[ID_PK_LEN];
	uint8_t seed[ID_SEED_LEN];
	uint64_t seq[MAX_VERSIONS];
	uint8_t hash[MAX_VERSIONS][GOSSIP_HASH_LEN];
	uint8_t *wire[MAX_VERSIONS];
	size_t wire_len[MAX_VERSIONS];
	uint8_t nver;
};

struct snode {
	uint8_t *ver; /* N bytes: 0 unknown, else version + 1 */
	struct gossip_digest d;
	uint32_t *links;
	size_t n_links, cap_links;
	uint64_t bytes;
};

struct sim {
	size_t n;
	struct gnode *g;
	struct snode *s;
	uint32_t *sorted; /* node indexes sorted by id */
	uint32_t *bucket_v[GOSSIP_BUCKETS];
	size_t bucket_n[GOSSIP_BUCKETS];
	uint64_t rng;
	uint64_t verifies;
	/* Synchronous rounds: what a node learns in a round is applied at its
	 * end, so nothing travels two hops in one round (a conservative model:
	 * real timers are not aligned, and news can go further). */
	struct pending {
		uint32_t i, j;
		uint8_t v;
	} * pend;
	size_t n_pend, cap_pend;
};

struct sarg {
	struct sim *sim;
	uint32_t i;
};

static uint64_t
rnd(struct sim *S)
{
	/* xorshift64*: reproducible runs for a seed */
	S->rng ^= S->rng >> 12;
	S->rng ^= S->rng << 25;
	S->rng ^= S->rng >> 27;
	return S->rng * 2685821657736338717ULL;
}

static int
find(const struct sim *S, const uint8_t id[ID_PK_LEN])
{
	size_t lo = 0, hi = S->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = memcmp(S->g[S->sorted[mid]].id, id, ID_PK_LEN);

		if (c == 0)
			return (int)S->sorted[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* --- the store ---------------------------------------------------------- */

static const struct gossip_digest *
st_digest(void *arg)
{
	struct sarg *a = arg;

	return &a->sim->s[a->i].d;
}

static size_t
st_bucket(void *arg, unsigned b, struct gossip_entry *out, size_t max)
{
	struct sarg *a = arg;
	struct sim *S = a->sim;
	const uint8_t *ver = S->s[a->i].ver;
	size_t n = 0;

	for (size_t k = 0; k < S->bucket_n[b]; k++) {
		uint32_t j = S->bucket_v[b][k];

		if (ver[j] == 0)
			continue;
		if (n < max) {
			memcpy(out[n].id, S->g[j].id, ID_PK_LEN);
			out[n].seq = S->g[j].seq[ver[j] - 1];
		}
		n++;
	}
	return n;
}

static uint64_t
st_seq_of(void *arg, const uint8_t id[ID_PK_LEN])
{
	struct sarg *a = arg;
	int j = find(a->sim, id);

	if (j < 0 || a->sim->s[a->i].ver[j] == 0)
		return 0;
	return a->sim->g[j].seq[a->sim->s[a->i].ver[j] - 1];
}

static bool
st_wire(void *arg, const uint8_t id[ID_PK_LEN], const uint8_t **p, size_t *len)
{
	struct sarg *a = arg;
	int j = find(a->sim, id);
	uint8_t v;

	if (j < 0 || (v = a->sim->s[a->i].ver[j]) == 0)
		return false;
	*p = a->sim->g[j].wire[v - 1];
	*len = a->sim->g[j].wire_len[v - 1];
	return true;
}

static void
set_version(struct sim *S, uint32_t i, uint32_t j, uint8_t v)
{
	struct snode *s = &S->s[i];

	if (s->ver[j] != 0)
		gossip_digest_xor(
		    &s->d, S->g[j].id, S->g[j].hash[s->ver[j] - 1]);
	s->ver[j] = v;
	if (v != 0)
		gossip_digest_xor(&s->d, S->g[j].id, S->g[j].hash[v - 1]);
}

static void
defer(struct sim *S, uint32_t i, uint32_t j, uint8_t v)
{
	if (S->n_pend == S->cap_pend) {
		S->cap_pend = S->cap_pend ? S->cap_pend * 2 : 1024;
		S->pend = realloc(S->pend, S->cap_pend * sizeof(*S->pend));
		if (S->pend == NULL)
			exit(1);
	}
	S->pend[S->n_pend].i = i;
	S->pend[S->n_pend].j = j;
	S->pend[S->n_pend++].v = v;
}

static void
apply_pending(struct sim *S)
{
	for (size_t k = 0; k < S->n_pend; k++) {
		const struct pending *p = &S->pend[k];
		uint8_t held = S->s[p->i].ver[p->j];

		if (held == 0 ||
		    S->g[p->j].seq[held - 1] < S->g[p->j].seq[p->v - 1])
			set_version(S, p->i, p->j, p->v);
	}
	S->n_pend = 0;
}

/* Verify and merge what a message carries into node i. */
static void
merge(struct sim *S, uint32_t i, const struct gossip_msg *m)
{
	for (size_t k = 0; k < m->n_items; k++) {
		struct announce a;
		int j;

		S->verifies++;
		if (announce_verify_parse(m->items[k], m->lens[k], &a) != 0) {
			fprintf(
			    stderr, "sim: an announcement failed to verify\n");
			exit(1);
		}
		if ((j = find(S, a.id)) >= 0) {
			for (uint8_t v = 0; v < S->g[j].nver; v++) {
				uint8_t held = S->s[i].ver[j];

				if (S->g[j].seq[v] == a.seq &&
				    (held == 0 ||
					S->g[j].seq[held - 1] < a.seq))
					defer(S, i, (uint32_t)j, v + 1);
			}
		}
		announce_free(&a);
	}
}

static void
store_of(struct sim *S, uint32_t i, struct sarg *a, struct gossip_store *st)
{
	a->sim = S;
	a->i = i;
	st->arg = a;
	st->digest = st_digest;
	st->bucket = st_bucket;
	st->seq_of = st_seq_of;
	st->wire = st_wire;
}

/* Node 'to' receives 'in', merges it and writes its answer to 'out'. */
static void
deliver(struct sim *S, uint32_t to, const struct buf *in, struct buf *out,
    bool *more)
{
	struct gossip_msg m;
	struct gossip_store st;
	struct sarg a;

	if (gossip_msg_parse(buf_data(in), in->len, &m) != 0) {
		fprintf(stderr, "sim: a message failed to parse\n");
		exit(1);
	}
	merge(S, to, &m);
	store_of(S, to, &a, &st);
	buf_reset(out);
	if (gossip_answer(&st, &m, out, more) != 0) {
		fprintf(stderr, "sim: cannot answer\n");
		exit(1);
	}
	gossip_msg_free(&m);
}

/* One contact opened by node a with node b, as node.c runs it. */
static void
contact(
    struct sim *S, uint32_t a, uint32_t b, struct buf *req, struct buf *resp)
{
	struct gossip_store st;
	struct sarg sa;
	bool more;

	store_of(S, a, &sa, &st);
	buf_reset(req);
	if (gossip_open(&st, NULL, 0, req) != 0)
		exit(1);
	for (int k = 0; k < MAX_MSGS_PER_CONTACT; k++) {
		S->s[a].bytes += req->len;
		deliver(S, b, req, resp, &more); /* b answers, always */
		S->s[b].bytes += resp->len;
		deliver(S, a, resp, req, &more); /* a's follow-up, if any */
		if (!more)
			return;
	}
}

static void
round_all(struct sim *S, struct buf *req, struct buf *resp)
{
	for (uint32_t i = 0; i < S->n; i++) {
		struct snode *s = &S->s[i];

		for (size_t k = 0; k < FANOUT && k < s->n_links; k++) {
			size_t j = k + rnd(S) % (s->n_links - k);
			uint32_t t = s->links[k];

			s->links[k] = s->links[j];
			s->links[j] = t;
			contact(S, i, s->links[k], req, resp);
		}
	}
	apply_pending(S);
}

/* --- setup -------------------------------------------------------------- */

static int
by_id(const void *x, const void *y, void *arg)
{
	const struct sim *S = arg;

	return memcmp(S->g[*(const uint32_t *)x].id,
	    S->g[*(const uint32_t *)y].id, ID_PK_LEN);
}

static void
add_link(struct snode *s, uint32_t to)
{
	for (size_t k = 0; k < s->n_links; k++)
		if (s->links[k] == to)
			return;
	if (s->n_links == s->cap_links) {
		s->cap_links = s->cap_links ? s->cap_links * 2 : 8;
		s->links = realloc(s->links, s->cap_links * sizeof(*s->links));
		if (s->links == NULL)
			exit(1);
	}
	s->links[s->n_links++] = to;
}

/* Sign version v of node j's announcement: a host with one model, one
 * address, an inference key and up to GOSSIP_LINKED_SAMPLE linked ids. */
static void
sign_version(struct sim *S, uint32_t j, uint8_t v)
{
	static const uint8_t mesh_id[ANN_MESH_ID_LEN] = {1};
	static uint8_t linked[GOSSIP_LINKED_SAMPLE][ID_PK_LEN];
	const char *models[] = {"qwen2.5-0.5b"};
	const char *addrs[] = {"10.1.2.3:7946"};
	struct gnode *g = &S->g[j];
	struct identity id;
	struct announce a;
	struct buf out;
	size_t nl = 0;

	memset(&id, 0, sizeof(id));
	if ((id.sk = sodium_malloc(ID_SK_LEN)) == NULL ||
	    crypto_sign_seed_keypair(id.pk, id.sk, g->seed) != 0)
		exit(1);
	memcpy(g->id, id.pk, ID_PK_LEN);
	for (size_t k = 0; k < S->s[j].n_links && nl < GOSSIP_LINKED_SAMPLE;
	     k++)
		memcpy(linked[nl++], S->g[S->s[j].links[k]].id, ID_PK_LEN);
	memset(&a, 0, sizeof(a));
	memcpy(a.mesh_id, mesh_id, sizeof(mesh_id));
	g->seq[v] = 1700000000000ULL + j * 7 + v * 1000;
	a.seq = g->seq[v];
	a.role = ANN_ROLE_HOST;
	a.version = "0.2.0";
	a.serving = models;
	a.n_serving = 1;
	a.hosted = models;
	a.n_hosted = 1;
	a.hosted_known = true;
	a.addrs = addrs;
	a.n_addrs = 1;
	a.linked = (const uint8_t(*)[ID_PK_LEN])linked;
	a.n_linked = nl;
	a.relay_allowed = true;
	a.has_inference_key = true;
	randombytes_buf(a.inference_key, sizeof(a.inference_key));
	a.inference_key_epoch = 1 + v;
	a.gossip_version = GOSSIP_VERSION;
	a.http_port = 9337;
	buf_init(&out, ANN_MAX_LEN);
	if (announce_sign(&a, &id, &out) != 0)
		exit(1);
	g->wire[v] = malloc(out.len);
	memcpy(g->wire[v], buf_data(&out), out.len);
	g->wire_len[v] = out.len;
	gossip_entry_hash(g->id, g->seq[v], g->hash[v]);
	if (v + 1 > g->nver)
		g->nver = v + 1;
	buf_clear(&out);
	identity_clear(&id);
}

static void
sim_init(struct sim *S, size_t n, uint64_t seed)
{
	memset(S, 0, sizeof(*S));
	S->n = n;
	S->rng = seed | 1;
	S->g = calloc(n, sizeof(*S->g));
	S->s = calloc(n, sizeof(*S->s));
	S->sorted = calloc(n, sizeof(*S->sorted));
	if (S->g == NULL || S->s == NULL || S->sorted == NULL)
		exit(1);
	for (uint32_t j = 0; j < n; j++) {
		uint64_t x = seed * 1000003 + j;

		crypto_generichash(S->g[j].seed, ID_SEED_LEN,
		    (const uint8_t *)&x, sizeof(x), NULL, 0);
		S->sorted[j] = j;
		if ((S->s[j].ver = calloc(n, 1)) == NULL)
			exit(1);
	}
	/* Random links, both ways. */
	for (uint32_t i = 0; i < n; i++)
		for (int k = 0; k < LINKS_PICK && n > 1; k++) {
			uint32_t t = (uint32_t)(rnd(S) % n);

			if (t == i)
				continue;
			add_link(&S->s[i], t);
			add_link(&S->s[t], i);
		}
	/* Ids first (linked lists name neighbours), then the signatures. */
	for (uint32_t j = 0; j < n; j++) {
		uint8_t sk[crypto_sign_SECRETKEYBYTES];

		crypto_sign_seed_keypair(S->g[j].id, sk, S->g[j].seed);
		sodium_memzero(sk, sizeof(sk));
	}
	for (uint32_t j = 0; j < n; j++)
		sign_version(S, j, 0);
	qsort_r(S->sorted, n, sizeof(*S->sorted), by_id, S);
	for (uint32_t j = 0; j < n; j++) {
		unsigned b = gossip_bucket_of(S->g[j].id);

		S->bucket_v[b] = realloc(
		    S->bucket_v[b], (S->bucket_n[b] + 1) * sizeof(uint32_t));
		S->bucket_v[b][S->bucket_n[b]++] = j;
	}
	/* Converged: everyone holds version 0 of everyone. */
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < n; j++)
			set_version(S, i, j, 1);
}

static void
sim_free(struct sim *S)
{
	for (size_t j = 0; j < S->n; j++) {
		for (int v = 0; v < MAX_VERSIONS; v++)
			free(S->g[j].wire[v]);
		free(S->s[j].ver);
		free(S->s[j].links);
	}
	for (int b = 0; b < GOSSIP_BUCKETS; b++)
		free(S->bucket_v[b]);
	free(S->g);
	free(S->s);
	free(S->sorted);
	free(S->pend);
}

static uint64_t
total_bytes(struct sim *S)
{
	uint64_t t = 0;

	for (size_t i = 0; i < S->n; i++)
		t += S->s[i].bytes;
	return t;
}

/* --- scenarios ---------------------------------------------------------- */

struct result {
	size_t n, changes;
	double steady_bpnr; /* bytes per node per round, no change */
	int rounds; /* to converge after the change; -1: did not */
	double change_bpnr; /* bytes per node per round while converging */
	double v1_bpnr; /* what a v1 round costs a node in this mesh */
	double ann_len; /* mean announcement size */
	double bound; /* 2 log2 N */
};

static bool
converged(struct sim *S, const uint32_t *changed, size_t c)
{
	for (size_t i = 0; i < S->n; i++)
		for (size_t k = 0; k < c; k++)
			if (S->s[i].ver[changed[k]] != 2)
				return false;
	return true;
}

static void
run(size_t n, size_t changes, uint64_t seed, struct result *res)
{
	struct sim S;
	struct buf req, resp;
	uint32_t changed[64];
	uint64_t b0, sum_len = 0;
	int steady_rounds = 3;

	memset(res, 0, sizeof(*res));
	res->n = n;
	res->changes = changes;
	res->bound = 2 * log2((double)n);
	sim_init(&S, n, seed);
	buf_init(&req, GOSSIP_MAX_LEN);
	buf_init(&resp, GOSSIP_MAX_LEN);
	for (size_t j = 0; j < n; j++)
		sum_len += S.g[j].wire_len[0];
	res->ann_len = (double)sum_len / (double)n;
	/* v1: each contact carries every announcement (~len + 3 bytes of
	 * framing each) from the opener and back again. */
	res->v1_bpnr = 2.0 * FANOUT * (double)(sum_len + 3 * n);

	b0 = total_bytes(&S);
	for (int r = 0; r < steady_rounds; r++)
		round_all(&S, &req, &resp);
	res->steady_bpnr =
	    (double)(total_bytes(&S) - b0) / (double)n / steady_rounds;

	/* The change: 'changes' nodes re-sign (their own table first). */
	for (size_t k = 0; k < changes && k < 64; k++) {
		changed[k] = (uint32_t)(rnd(&S) % n);
		if (S.g[changed[k]].nver > 1) {
			changed[k] = (changed[k] + 1) % n;
			k--;
			continue;
		}
		sign_version(&S, changed[k], 1);
		set_version(&S, changed[k], changed[k], 2);
	}
	b0 = total_bytes(&S);
	res->rounds = -1;
	for (int r = 1; r <= MAX_ROUNDS; r++) {
		round_all(&S, &req, &resp);
		if (converged(&S, changed, changes)) {
			res->rounds = r;
			res->change_bpnr =
			    (double)(total_bytes(&S) - b0) / (double)n / r;
			break;
		}
	}
	buf_clear(&req);
	buf_clear(&resp);
	sim_free(&S);
}

int
main(int argc, char **argv)
{
	size_t ns[8], nn = 0, changes = 1;
	uint64_t seed = 1;
	bool json = false;
	int fail = 0;

	if (sodium_init() < 0)
		return 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--n") == 0 && i + 1 < argc && nn < 8)
			ns[nn++] = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--changes") == 0 && i + 1 < argc)
			changes = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--json") == 0)
			json = true;
		else {
			fprintf(stderr,
			    "usage: sim [--n N]... [--changes C] [--seed S] "
			    "[--json]\n");
			return 2;
		}
	}
	if (nn == 0) {
		ns[nn++] = 100;
		ns[nn++] = 1000;
		ns[nn++] = 10000;
	}
	if (changes < 1 || changes > 64) {
		fprintf(stderr, "sim: --changes 1..64\n");
		return 2;
	}
	if (!json)
		printf("gossip v2 simulation: fanout %d, ~%d links/node, %zu "
		       "change(s), seed %llu\n"
		       "%7s %8s %9s %12s %14s %16s %8s\n",
		    FANOUT, 2 * LINKS_PICK, changes, (unsigned long long)seed,
		    "N", "ann B", "rounds", "2*log2(N)", "steady B/n/r",
		    "change B/n/r", "v1 B/n/r");
	else
		printf("[");
	for (size_t k = 0; k < nn; k++) {
		struct result r;

		run(ns[k], changes, seed, &r);
		if (r.rounds < 0 || r.rounds > r.bound)
			fail = 1;
		if (json)
			printf(
			    "%s{\"n\":%zu,\"changes\":%zu,\"ann_len\":%.0f,"
			    "\"rounds\":%d,\"bound\":%.2f,\"steady_bpnr\":%.1f,"
			    "\"change_bpnr\":%.1f,\"v1_bpnr\":%.0f}",
			    k ? "," : "", r.n, r.changes, r.ann_len, r.rounds,
			    r.bound, r.steady_bpnr, r.change_bpnr, r.v1_bpnr);
		else
			printf("%7zu %8.0f %9d %12.1f %14.1f %16.1f %8.0f\n",
			    r.n, r.ann_len, r.rounds, r.bound, r.steady_bpnr,
			    r.change_bpnr, r.v1_bpnr);
		fflush(stdout);
	}
	if (json)
		printf("]\n");
	return fail;
}
