#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util_vectors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cJSON.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/util.h"
#include "mesh/announce.h"
#include "mesh/identity.h"
#include "mesh/token.h"
#include "proto/mesh.pb-c.h"
#include "proto/mesh_v0.pb-c.h"

#define VECTORS "tests/vectors/announce.json"

static void
fill(uint8_t *p, size_t n, uint8_t start)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(start + i);
}

/* An identity from a fixed seed (identity.h has no seeded constructor). */
static void
seeded(struct identity *id, const uint8_t seed[ID_SEED_LEN])
{
	memset(id, 0, sizeof(*id));
	assert_non_null(id->sk = sodium_malloc(ID_SK_LEN));
	assert_int_equal(crypto_sign_seed_keypair(id->pk, id->sk, seed), 0);
	sm_hex(id->id_hex, id->pk, ID_PK_LEN);
}

static void
seeded_byte(struct identity *id, uint8_t start)
{
	uint8_t seed[ID_SEED_LEN];

	fill(seed, sizeof(seed), start);
	seeded(id, seed);
}

static const char *serving[] = {"qwen2.5-0.5b", "llama-3.2-1b"};
static const char *hosted[] = {"qwen2.5-0.5b"};
static const char *addrs[] = {"192.168.1.20:7946", "127.0.0.1:7946"};
static uint8_t linked[2][ID_PK_LEN];
static const uint8_t posture[] = {0x01, 0x00, 0x2f};
static const uint8_t attestation[] = "{\"v\":1}";

static void
sample(struct announce *a)
{
	uint8_t secret[TOKEN_SECRET_LEN];

	memset(a, 0, sizeof(*a));
	fill(secret, sizeof(secret), 0x40);
	token_mesh_id(secret, a->mesh_id);
	fill(linked[0], ID_PK_LEN, 0x80);
	fill(linked[1], ID_PK_LEN, 0xa0);
	a->seq = 1700000000000ull;
	a->role = ANN_ROLE_HOST;
	a->http_port = 9337;
	a->console_port = 3131;
	a->vram_bytes = 8ull << 30;
	a->version = "0.1.0";
	a->serving = serving;
	a->n_serving = 2;
	a->hosted = hosted;
	a->n_hosted = 1;
	a->hosted_known = true;
	a->addrs = addrs;
	a->n_addrs = 2;
	a->linked = (const uint8_t(*)[ID_PK_LEN])linked;
	a->n_linked = 2;
	a->relay_allowed = true;
	a->has_inference_key = true;
	a->inference_key_epoch = 0x1234abcd;
	fill(a->inference_key, ANN_INFERENCE_KEY_LEN, 0xc0);
	a->posture = posture;
	a->posture_len = sizeof(posture);
	a->attestation = attestation;
	a->attestation_len = sizeof(attestation) - 1;
}

static void
sign_sample(struct identity *id, struct buf *out)
{
	struct announce a;

	sample(&a);
	buf_init(out, ANN_MAX_LEN);
	assert_int_equal(announce_sign(&a, id, out), 0);
}

static void
test_round_trip(void **state)
{
	struct identity id;
	struct announce a, b;
	struct buf w;
	size_t i;

	seeded_byte(&id, 1);
	sample(&a);
	sign_sample(&id, &w);
	assert_int_equal(announce_verify_parse(buf_data(&w), w.len, &b), 0);
	assert_memory_equal(b.id, id.pk, ID_PK_LEN);
	assert_memory_equal(b.mesh_id, a.mesh_id, ANN_MESH_ID_LEN);
	assert_true(b.seq == a.seq);
	assert_int_equal(b.role, ANN_ROLE_HOST);
	assert_int_equal(b.http_port, 9337);
	assert_int_equal(b.console_port, 3131);
	assert_true(b.vram_bytes == a.vram_bytes);
	assert_string_equal(b.version, "0.1.0");
	assert_int_equal(b.n_serving, 2);
	for (i = 0; i < 2; i++)
		assert_string_equal(b.serving[i], serving[i]);
	assert_int_equal(b.n_hosted, 1);
	assert_string_equal(b.hosted[0], hosted[0]);
	assert_true(b.hosted_known);
	assert_int_equal(b.n_addrs, 2);
	assert_string_equal(b.addrs[1], "127.0.0.1:7946");
	assert_int_equal(b.n_linked, 2);
	assert_memory_equal(b.linked, linked, sizeof(linked));
	assert_true(b.relay_allowed);
	assert_false(b.leaving);
	assert_true(b.has_inference_key);
	assert_memory_equal(b.inference_key, a.inference_key, 32);
	assert_int_equal(b.inference_key_epoch, 0x1234abcd);
	assert_int_equal(b.posture_len, sizeof(posture));
	assert_memory_equal(b.posture, posture, sizeof(posture));
	assert_int_equal(b.attestation_len, sizeof(attestation) - 1);
	/* what we forward is byte for byte what the signer produced */
	assert_int_equal(b.wire_len, w.len);
	assert_memory_equal(b.wire, buf_data(&w), w.len);
	assert_true(announce_routes_model(&b, "qwen2.5-0.5b"));
	assert_false(announce_routes_model(&b, "llama-3.2-1b"));
	b.hosted_known = false;
	assert_true(announce_routes_model(&b, "llama-3.2-1b"));
	announce_free(&b);
	announce_free(&b); /* idempotent */
	announce_free(NULL);

	/* a minimal announcement: only what is required */
	memset(&a, 0, sizeof(a));
	a.seq = 1;
	buf_reset(&w);
	assert_int_equal(announce_sign(&a, &id, &w), 0);
	assert_int_equal(announce_verify_parse(buf_data(&w), w.len, &b), 0);
	assert_null(b.version);
	assert_null(b.posture);
	assert_null(b.attestation);
	assert_false(b.has_inference_key);
	assert_int_equal(b.n_serving + b.n_hosted + b.n_addrs + b.n_linked, 0);
	announce_free(&b);
	buf_clear(&w);
	identity_clear(&id);
}

/* Any single changed byte anywhere makes the announcement unacceptable. */
static void
test_flipped_byte_refused(void **state)
{
	static const uint8_t flips[] = {0x01, 0x80, 0xff};
	struct identity id;
	struct announce b;
	struct buf w;
	uint8_t *p;
	size_t i, f;

	seeded_byte(&id, 1);
	sign_sample(&id, &w);
	assert_non_null(p = malloc(w.len));
	for (i = 0; i < w.len; i++) {
		for (f = 0; f < SM_ARRAY_LEN(flips); f++) {
			memcpy(p, buf_data(&w), w.len);
			p[i] ^= flips[f];
			assert_int_not_equal(
			    announce_verify_parse(p, w.len, &b), 0);
			assert_null(b.wire);
			assert_null(b.priv_);
		}
	}
	/* every truncation too */
	for (i = 0; i < w.len; i++)
		assert_int_not_equal(
		    announce_verify_parse(buf_data(&w), i, &b), 0);
	free(p);
	buf_clear(&w);
	identity_clear(&id);
}

/* Pack 'pa' as a body and sign it with 'signer' under 'domain'. */
static void
sign_raw(const Sealmesh__PeerAnnouncement *pa, const uint8_t *extra,
    size_t extra_len, const struct identity *signer, bool domain,
    struct buf *out)
{
	Sealmesh__SignedAnnouncement sa = SEALMESH__SIGNED_ANNOUNCEMENT__INIT;
	size_t blen = protobuf_c_message_get_packed_size(&pa->base);
	size_t off = domain ? ANN_DOMAIN_LEN : 0;
	uint8_t *msg, sig[ID_SIG_LEN];

	assert_non_null(msg = malloc(off + blen + extra_len + 1));
	memcpy(msg, ANN_DOMAIN, off);
	protobuf_c_message_pack(&pa->base, msg + off);
	if (extra_len > 0)
		memcpy(msg + off + blen, extra, extra_len);
	blen += extra_len;
	assert_int_equal(identity_sign(signer, msg, off + blen, sig), 0);
	sa.has_body = sa.has_signature = 1;
	sa.body.data = msg + off;
	sa.body.len = blen;
	sa.signature.data = sig;
	sa.signature.len = ID_SIG_LEN;
	buf_init(out, 1 << 20);
	assert_int_equal(
	    buf_reserve(out, protobuf_c_message_get_packed_size(&sa.base)), 0);
	buf_advance(out, protobuf_c_message_pack(&sa.base, buf_tail(out)));
	free(msg);
}

static void
test_forged_refused(void **state)
{
	Sealmesh__PeerAnnouncement pa = SEALMESH__PEER_ANNOUNCEMENT__INIT;
	struct identity a, b;
	struct announce out;
	uint8_t mesh[ANN_MESH_ID_LEN] = {0};
	struct buf w;

	seeded_byte(&a, 1);
	seeded_byte(&b, 2);
	pa.has_endpoint_id = pa.has_mesh_id = pa.has_seq = 1;
	pa.mesh_id.data = mesh;
	pa.mesh_id.len = sizeof(mesh);
	pa.seq = 5;

	/* honest: B's body signed by B */
	pa.endpoint_id.data = b.pk;
	pa.endpoint_id.len = ID_PK_LEN;
	sign_raw(&pa, NULL, 0, &b, true, &w);
	assert_int_equal(announce_verify_parse(buf_data(&w), w.len, &out), 0);
	announce_free(&out);
	buf_clear(&w);

	/* A signs a body that claims to be B */
	sign_raw(&pa, NULL, 0, &a, true, &w);
	assert_int_equal(
	    announce_verify_parse(buf_data(&w), w.len, &out), SM_ERR_VERIFY);
	buf_clear(&w);

	/* B's key, but no domain separation */
	sign_raw(&pa, NULL, 0, &b, false, &w);
	assert_int_equal(
	    announce_verify_parse(buf_data(&w), w.len, &out), SM_ERR_VERIFY);
	buf_clear(&w);

	/* required fields */
	pa.has_seq = 0;
	sign_raw(&pa, NULL, 0, &b, true, &w);
	assert_int_equal(
	    announce_verify_parse(buf_data(&w), w.len, &out), SM_ERR_PROTO);
	buf_clear(&w);
	pa.has_seq = 1;
	pa.mesh_id.len = 15;
	sign_raw(&pa, NULL, 0, &b, true, &w);
	assert_int_equal(
	    announce_verify_parse(buf_data(&w), w.len, &out), SM_ERR_PROTO);
	buf_clear(&w);
	pa.mesh_id.len = 16;
	pa.endpoint_id.len = 31;
	sign_raw(&pa, NULL, 0, &b, true, &w);
	assert_int_equal(
	    announce_verify_parse(buf_data(&w), w.len, &out), SM_ERR_PROTO);
	buf_clear(&w);
	identity_clear(&a);
	identity_clear(&b);
}

static void
test_limits(void **state)
{
	Sealmesh__PeerAnnouncement pa = SEALMESH__PEER_ANNOUNCEMENT__INIT;
	char *many[ANN_MAX_MODELS + 1], longname[ANN_MAX_STR + 2];
	const char *bad_addr[] = {"no-port"};
	const char *ctl[] = {"bad\nname"};
	uint8_t mesh[ANN_MESH_ID_LEN] = {0}, *big;
	struct identity id;
	struct announce a, out;
	struct buf w;
	size_t i;

	seeded_byte(&id, 1);
	for (i = 0; i < SM_ARRAY_LEN(many); i++)
		many[i] = "m";
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	buf_init(&w, ANN_MAX_LEN);

	/* the signer refuses what a receiver would refuse */
	memset(&a, 0, sizeof(a));
	a.serving = (const char *const *)many;
	a.n_serving = ANN_MAX_MODELS + 1;
	assert_int_equal(announce_sign(&a, &id, &w), SM_ERR_INVAL);
	a.n_serving = ANN_MAX_MODELS;
	assert_int_equal(announce_sign(&a, &id, &w), 0);
	buf_reset(&w);
	a.n_serving = 0;
	a.version = longname;
	assert_int_equal(announce_sign(&a, &id, &w), SM_ERR_INVAL);
	longname[ANN_MAX_STR] = '\0';
	assert_int_equal(announce_sign(&a, &id, &w), 0);
	buf_reset(&w);
	a.version = "";
	assert_int_equal(announce_sign(&a, &id, &w), SM_ERR_INVAL);
	a.version = NULL;
	a.addrs = bad_addr;
	a.n_addrs = 1;
	assert_int_equal(announce_sign(&a, &id, &w), SM_ERR_INVAL);
	a.n_addrs = 0;
	a.hosted = ctl;
	a.n_hosted = 1;
	assert_int_equal(announce_sign(&a, &id, &w), SM_ERR_INVAL);
	a.n_hosted = 0;
	assert_non_null(big = calloc(1, ANN_MAX_LEN));
	a.attestation = big;
	a.attestation_len = ANN_MAX_ATTESTATION + 1;
	assert_int_equal(announce_sign(&a, &id, &w), SM_ERR_INVAL);
	a.attestation = NULL;
	a.posture = big;
	a.posture_len = ANN_MAX_POSTURE + 1;
	assert_int_equal(announce_sign(&a, &id, &w), SM_ERR_INVAL);
	a.posture = NULL;
	assert_int_equal(w.len, 0);
	buf_clear(&w);

	/* a receiver refuses a properly signed body that breaks a limit */
	pa.has_endpoint_id = pa.has_mesh_id = pa.has_seq = 1;
	pa.endpoint_id.data = id.pk;
	pa.endpoint_id.len = ID_PK_LEN;
	pa.mesh_id.data = mesh;
	pa.mesh_id.len = sizeof(mesh);
	pa.n_serving_models = ANN_MAX_MODELS + 1;
	pa.serving_models = many;
	sign_raw(&pa, NULL, 0, &id, true, &w);
	assert_int_equal(
	    announce_verify_parse(buf_data(&w), w.len, &out), SM_ERR_PROTO);
	buf_clear(&w);
	pa.n_serving_models = 0;
	pa.has_inference_public_key = 1;
	pa.inference_public_key.data = big;
	pa.inference_public_key.len = 31;
	sign_raw(&pa, NULL, 0, &id, true, &w);
	assert_int_equal(
	    announce_verify_parse(buf_data(&w), w.len, &out), SM_ERR_PROTO);
	buf_clear(&w);
	pa.has_inference_public_key = 0;
	/* oversized as a whole */
	pa.has_hardware_attestation_blob = 1;
	pa.hardware_attestation_blob.data = big;
	pa.hardware_attestation_blob.len = ANN_MAX_LEN;
	sign_raw(&pa, NULL, 0, &id, true, &w);
	assert_int_equal(
	    announce_verify_parse(buf_data(&w), w.len, &out), SM_ERR_TOOBIG);
	buf_clear(&w);
	free(big);
	identity_clear(&id);
}

/*
 * A newer node's announcement (fields this build does not know) verifies
 * and forwards unchanged: the unknown field stays inside the signed body.
 */
static void
test_unknown_fields_kept(void **state)
{
	Sealmesh__PeerAnnouncement pa = SEALMESH__PEER_ANNOUNCEMENT__INIT;
	/* field 99, varint 1; field 100, bytes "hi" */
	static const uint8_t extra[] = {
	    0x98, 0x06, 0x01, 0xa2, 0x06, 0x02, 'h', 'i'};
	uint8_t mesh[ANN_MESH_ID_LEN] = {0};
	struct identity id;
	struct announce out;
	struct buf w;

	seeded_byte(&id, 1);
	pa.has_endpoint_id = pa.has_mesh_id = pa.has_seq = 1;
	pa.endpoint_id.data = id.pk;
	pa.endpoint_id.len = ID_PK_LEN;
	pa.mesh_id.data = mesh;
	pa.mesh_id.len = sizeof(mesh);
	pa.seq = 9;
	sign_raw(&pa, extra, sizeof(extra), &id, true, &w);
	assert_int_equal(announce_verify_parse(buf_data(&w), w.len, &out), 0);
	assert_true(out.seq == 9);
	assert_int_equal(out.wire_len, w.len);
	assert_memory_equal(out.wire, buf_data(&w), w.len);
	announce_free(&out);
	buf_clear(&w);
	identity_clear(&id);
}

/*
 * Old-schema compatibility: a reader built from proto/mesh_v0.proto (only
 * fields 1, 2, 4, 10, 19, 22, 23) decodes a current announcement and reads
 * the shared fields back. Re-encoding with the old schema changes the bytes
 * (unknown fields move to the end), which is why nodes forward the original.
 */
static void
test_old_schema_decode(void **state)
{
	Sealmesh__V0__SignedAnnouncement *sa;
	Sealmesh__V0__PeerAnnouncement *pa;
	struct identity id;
	struct announce a, out;
	struct buf w;
	uint8_t *re, *msg;
	size_t i, relen;

	seeded_byte(&id, 1);
	sample(&a);
	sign_sample(&id, &w);
	sa = sealmesh__v0__signed_announcement__unpack(
	    NULL, w.len, buf_data(&w));
	assert_non_null(sa);
	assert_true(sa->has_body && sa->has_signature);
	pa = sealmesh__v0__peer_announcement__unpack(
	    NULL, sa->body.len, sa->body.data);
	assert_non_null(pa);
	assert_true(pa->has_endpoint_id);
	assert_memory_equal(pa->endpoint_id.data, id.pk, ID_PK_LEN);
	assert_true(pa->has_role);
	assert_int_equal(pa->role, ANN_ROLE_HOST);
	assert_string_equal(pa->version, "0.1.0");
	assert_int_equal(pa->n_serving_models, 2);
	for (i = 0; i < 2; i++)
		assert_string_equal(pa->serving_models[i], serving[i]);
	assert_true(pa->has_mesh_id);
	assert_memory_equal(pa->mesh_id.data, a.mesh_id, ANN_MESH_ID_LEN);
	assert_int_equal(pa->n_addresses, 2);
	assert_string_equal(pa->addresses[0], addrs[0]);
	assert_int_equal(pa->n_hosted_models, 1);
	assert_string_equal(pa->hosted_models[0], hosted[0]);
	/* the newer fields survive as unknown fields */
	assert_true(pa->base.n_unknown_fields > 0);

	/* the old reader can still check the signature over the body */
	assert_non_null(msg = malloc(ANN_DOMAIN_LEN + sa->body.len));
	memcpy(msg, ANN_DOMAIN, ANN_DOMAIN_LEN);
	memcpy(msg + ANN_DOMAIN_LEN, sa->body.data, sa->body.len);
	assert_int_equal(identity_verify(pa->endpoint_id.data, msg,
			     ANN_DOMAIN_LEN + sa->body.len, sa->signature.data),
	    0);

	/* but a re-encoded body no longer verifies */
	relen = protobuf_c_message_get_packed_size(&pa->base);
	assert_int_equal(relen, sa->body.len);
	assert_non_null(re = malloc(relen));
	protobuf_c_message_pack(&pa->base, re);
	assert_memory_not_equal(re, sa->body.data, relen);
	memcpy(msg + ANN_DOMAIN_LEN, re, relen);
	assert_int_equal(identity_verify(pa->endpoint_id.data, msg,
			     ANN_DOMAIN_LEN + relen, sa->signature.data),
	    SM_ERR_VERIFY);
	{
		Sealmesh__V0__SignedAnnouncement fwd =
		    SEALMESH__V0__SIGNED_ANNOUNCEMENT__INIT;
		struct buf f;

		fwd.has_body = fwd.has_signature = 1;
		fwd.body.data = re;
		fwd.body.len = relen;
		fwd.signature = sa->signature;
		buf_init(&f, ANN_MAX_LEN);
		assert_int_equal(
		    buf_reserve(
			&f, protobuf_c_message_get_packed_size(&fwd.base)),
		    0);
		buf_advance(
		    &f, protobuf_c_message_pack(&fwd.base, buf_tail(&f)));
		assert_int_equal(
		    announce_verify_parse(buf_data(&f), f.len, &out),
		    SM_ERR_VERIFY);
		buf_clear(&f);
	}
	free(re);
	free(msg);
	sealmesh__v0__peer_announcement__free_unpacked(pa, NULL);
	sealmesh__v0__signed_announcement__free_unpacked(sa, NULL);
	buf_clear(&w);
	identity_clear(&id);
}

static void
test_gossip_message(void **state)
{
	struct identity a, b;
	struct announce x;
	struct announce_msg m;
	struct buf wa, wb, g;
	const uint8_t *items[2];
	size_t lens[2];

	seeded_byte(&a, 1);
	seeded_byte(&b, 2);
	sign_sample(&a, &wa);
	sign_sample(&b, &wb);
	items[0] = buf_data(&wa);
	lens[0] = wa.len;
	items[1] = buf_data(&wb);
	lens[1] = wb.len;
	buf_init(&g, GOSSIP_MAX_LEN);
	assert_int_equal(announce_msg_write(items, lens, 2, true, &g), 0);
	assert_int_equal(announce_msg_parse(buf_data(&g), g.len, &m), 0);
	assert_true(m.request_full);
	assert_int_equal(m.n, 2);
	assert_int_equal(m.lens[1], wb.len);
	assert_memory_equal(m.items[1], buf_data(&wb), wb.len);
	assert_int_equal(announce_verify_parse(m.items[0], m.lens[0], &x), 0);
	assert_memory_equal(x.id, a.pk, ID_PK_LEN);
	announce_free(&x);
	announce_msg_free(&m);

	/* empty message */
	buf_reset(&g);
	assert_int_equal(announce_msg_write(NULL, NULL, 0, false, &g), 0);
	assert_int_equal(announce_msg_parse(buf_data(&g), g.len, &m), 0);
	assert_int_equal(m.n, 0);
	assert_false(m.request_full);
	announce_msg_free(&m);

	/* garbage and limits */
	assert_int_equal(announce_msg_parse((const uint8_t *)"\x0b\x01", 2, &m),
	    SM_ERR_PROTO);
	assert_int_equal(
	    announce_msg_parse(buf_data(&wa), GOSSIP_MAX_LEN + 1, &m),
	    SM_ERR_TOOBIG);
	{
		/* more items than GOSSIP_MAX_ANNOUNCEMENTS: refused unparsed */
		size_t n = GOSSIP_MAX_ANNOUNCEMENTS + 20, i;
		uint8_t *p = malloc(2 * n);

		assert_non_null(p);
		for (i = 0; i < n; i++) {
			p[2 * i] = 0x0a;
			p[2 * i + 1] = 0;
		}
		assert_int_equal(
		    announce_msg_parse(p, 2 * n, &m), SM_ERR_PROTO);
		free(p);
	}
	lens[0] = ANN_MAX_LEN + 1;
	assert_int_equal(
	    announce_msg_write(items, lens, 2, false, &g), SM_ERR_INVAL);
	buf_clear(&g);
	buf_clear(&wa);
	buf_clear(&wb);
	identity_clear(&a);
	identity_clear(&b);
}

static void
test_next_seq(void **state)
{
	assert_true(announce_next_seq(0, 1000) == 1000);
	assert_true(announce_next_seq(1000, 1000) == 1001);
	assert_true(announce_next_seq(5000, 1000) == 5001);
	assert_true(announce_next_seq(1000, 2000) == 2000);
}

static const cJSON *
jget(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	assert_non_null(v);
	return v;
}

static uint8_t *
jhex(const cJSON *o, const char *k, size_t *len)
{
	const cJSON *v = jget(o, k);
	uint8_t *p;

	assert_true(cJSON_IsString(v));
	*len = strlen(v->valuestring) / 2;
	assert_non_null(p = malloc(*len + 1));
	assert_int_equal(sm_unhex(p, *len, v->valuestring), 0);
	return p;
}

static size_t
jstrings(const cJSON *o, const char *k, const char **out, size_t max)
{
	const cJSON *it;
	size_t n = 0;

	cJSON_ArrayForEach(it, jget(o, k))
	{
		assert_true(n < max);
		out[n++] = it->valuestring;
	}
	return n;
}

/* tests/vectors/announce.json: fixed seed and fields -> exact bytes. */
static void
test_vectors(void **state)
{
	cJSON *j = vec_load(VECTORS);
	const cJSON *v = jget(j, "announcement"), *f = jget(v, "fields"), *it;
	const char *sv[8], *hv[8], *av[8];
	uint8_t *seed, *mesh, *ik, *pos, *att, *body, *sig, *wire, *pk;
	size_t n, blen, slen, wlen, i;
	uint8_t lkv[4][ID_PK_LEN];
	struct identity id;
	struct announce a, out;
	struct buf w;

	seed = jhex(v, "seed", &n);
	assert_int_equal(n, ID_SEED_LEN);
	seeded(&id, seed);
	pk = jhex(v, "endpoint_id", &n);
	assert_memory_equal(pk, id.pk, ID_PK_LEN);
	memset(&a, 0, sizeof(a));
	mesh = jhex(f, "mesh_id", &n);
	memcpy(a.mesh_id, mesh, ANN_MESH_ID_LEN);
	a.seq = (uint64_t)jget(f, "seq")->valuedouble;
	a.role = (uint32_t)jget(f, "role")->valueint;
	a.http_port = (uint32_t)jget(f, "http_port")->valueint;
	a.console_port = (uint32_t)jget(f, "console_port")->valueint;
	a.vram_bytes = (uint64_t)jget(f, "vram_bytes")->valuedouble;
	a.version = jget(f, "version")->valuestring;
	a.n_serving = jstrings(f, "serving_models", sv, 8);
	a.serving = sv;
	a.n_hosted = jstrings(f, "hosted_models", hv, 8);
	a.hosted = hv;
	a.hosted_known = cJSON_IsTrue(jget(f, "hosted_models_known"));
	a.n_addrs = jstrings(f, "addresses", av, 8);
	a.addrs = av;
	n = 0;
	cJSON_ArrayForEach(it, jget(f, "linked_peers"))
	{
		assert_true(n < 4);
		assert_int_equal(
		    sm_unhex(lkv[n], ID_PK_LEN, it->valuestring), 0);
		n++;
	}
	a.linked = (const uint8_t(*)[ID_PK_LEN])lkv;
	a.n_linked = n;
	a.relay_allowed = cJSON_IsTrue(jget(f, "relay_allowed"));
	a.leaving = cJSON_IsTrue(jget(f, "leaving"));
	ik = jhex(f, "inference_public_key", &n);
	assert_int_equal(n, ANN_INFERENCE_KEY_LEN);
	a.has_inference_key = true;
	a.inference_key_epoch =
	    (uint32_t)jget(f, "inference_key_epoch")->valuedouble;
	memcpy(a.inference_key, ik, n);
	pos = jhex(f, "security_posture", &a.posture_len);
	a.posture = pos;
	att = jhex(f, "hardware_attestation_blob", &a.attestation_len);
	a.attestation = att;

	body = jhex(v, "body", &blen);
	sig = jhex(v, "signature", &slen);
	wire = jhex(v, "signed_announcement", &wlen);
	buf_init(&w, ANN_MAX_LEN);
	assert_int_equal(announce_sign(&a, &id, &w), 0);
	assert_int_equal(w.len, wlen);
	assert_memory_equal(buf_data(&w), wire, wlen);
	assert_int_equal(announce_verify_parse(wire, wlen, &out), 0);
	assert_true(out.seq == a.seq);
	announce_free(&out);
	/* body and signature appear in the wrapper as documented */
	assert_int_equal(slen, ID_SIG_LEN);
	for (i = 0; i + blen <= wlen; i++)
		if (memcmp(wire + i, body, blen) == 0)
			break;
	assert_true(i + blen <= wlen);
	assert_memory_equal(wire + wlen - ID_SIG_LEN, sig, ID_SIG_LEN);

	buf_clear(&w);
	free(seed);
	free(pk);
	free(mesh);
	free(ik);
	free(pos);
	free(att);
	free(body);
	free(sig);
	free(wire);
	identity_clear(&id);
	cJSON_Delete(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_flipped_byte_refused),
	    cmocka_unit_test(test_forged_refused),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_unknown_fields_kept),
	    cmocka_unit_test(test_old_schema_decode),
	    cmocka_unit_test(test_gossip_message),
	    cmocka_unit_test(test_next_seq),
	    cmocka_unit_test(test_vectors),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("announce", tests, NULL, NULL);
}
