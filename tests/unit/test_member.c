#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util_vectors.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cJSON.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/util.h"
#include "mesh/announce.h"
#include "mesh/member.h"
#include "mesh/peers.h"

#define VECTORS "tests/vectors/member.json"

static cJSON *V;

/* An identity from a fixed seed (as identity_load would make it). */
static void
id_from_seed(struct identity *id, const char *name)
{
	uint8_t seed[32];

	memset(id, 0, sizeof(*id));
	vec_hex(seed, sizeof(seed), V, name);
	id->sk = sodium_malloc(ID_SK_LEN);
	assert_non_null(id->sk);
	assert_int_equal(crypto_sign_seed_keypair(id->pk, id->sk, seed), 0);
	sm_hex(id->id_hex, id->pk, ID_PK_LEN);
}

static const cJSON *
obj(const char *name)
{
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(V, name);

	assert_non_null(o);
	return o;
}

static uint64_t
num(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	assert_true(cJSON_IsNumber(v));
	return (uint64_t)v->valuedouble;
}

static void
test_mesh_id(void **state)
{
	struct identity owner;
	uint8_t want[TOKEN_MESH_ID_LEN], got[TOKEN_MESH_ID_LEN];

	id_from_seed(&owner, "owner_seed");
	vec_hex(want, sizeof(want), V, "mesh_id");
	member_mesh_id(owner.pk, got);
	assert_memory_equal(got, want, sizeof(want));
	identity_clear(&owner);
}

static void
test_credential_vector(void **state)
{
	const cJSON *o = obj("credential");
	struct identity owner;
	struct member_cred c = {0}, back;
	uint8_t want[MEMBER_CRED_LEN], got[MEMBER_CRED_LEN];
	uint64_t now = num(V, "now");

	id_from_seed(&owner, "owner_seed");
	vec_hex(c.node_id, ID_PK_LEN, V, "node_id");
	c.rights = (uint8_t)num(o, "rights");
	c.issued = num(o, "issued");
	c.expires = num(o, "expires");
	vec_hex(want, sizeof(want), o, "binary");
	assert_int_equal(member_cred_write(&c, &owner, got), 0);
	assert_memory_equal(got, want, sizeof(want));
	assert_int_equal(
	    member_cred_open(want, sizeof(want), owner.pk, now, &back), 0);
	assert_memory_equal(back.node_id, c.node_id, ID_PK_LEN);
	assert_memory_equal(back.owner_pk, owner.pk, ID_PK_LEN);
	assert_int_equal(back.rights, MEMBER_RIGHT_HOST | MEMBER_RIGHT_USE);
	assert_int_equal(back.issued, c.issued);
	assert_int_equal(back.expires, 0);
	/* No use of the wrong length, ever. */
	assert_int_equal(
	    member_cred_open(want, sizeof(want) + 1, owner.pk, now, &back),
	    SM_ERR_PROTO);
	assert_int_equal(
	    member_cred_open(NULL, 0, owner.pk, now, &back), SM_ERR_PROTO);
	identity_clear(&owner);
}

static void
test_credential_expiry(void **state)
{
	const cJSON *o = obj("credential_expiring");
	struct identity owner;
	struct member_cred back;
	uint8_t bin[MEMBER_CRED_LEN];
	uint64_t at = num(o, "expired_at");

	id_from_seed(&owner, "owner_seed");
	vec_hex(bin, sizeof(bin), o, "binary");
	assert_int_equal(
	    member_cred_open(bin, sizeof(bin), owner.pk, at - 1, &back), 0);
	assert_int_equal(back.expires, at);
	assert_int_equal(
	    member_cred_open(bin, sizeof(bin), owner.pk, at, &back),
	    SM_ERR_STALE);
	/* Zeroed on failure: nothing usable leaks out. */
	assert_int_equal(back.rights, 0);
	identity_clear(&owner);
}

static void
test_credential_invalid(void **state)
{
	const cJSON *arr = obj("invalid_credentials"), *it;
	struct identity owner;
	struct member_cred back;
	uint8_t bin[MEMBER_CRED_LEN + 8];
	size_t n = 0;

	id_from_seed(&owner, "owner_seed");
	cJSON_ArrayForEach(it, arr)
	{
		const char *hex =
		    cJSON_GetObjectItemCaseSensitive(it, "binary")->valuestring;
		const char *err =
		    cJSON_GetObjectItemCaseSensitive(it, "error")->valuestring;
		size_t len = strlen(hex) / 2;
		int want = strcmp(err, "verify") == 0 ? SM_ERR_VERIFY
		    : strcmp(err, "perm") == 0        ? SM_ERR_PERM
						      : SM_ERR_PROTO;

		assert_true(len <= sizeof(bin));
		assert_int_equal(sm_unhex(bin, len, hex), 0);
		assert_int_equal(
		    member_cred_open(bin, len, owner.pk, num(V, "now"), &back),
		    want);
		n++;
	}
	assert_true(n >= 7);
	identity_clear(&owner);
}

static void
test_revocation_vector(void **state)
{
	const cJSON *o = obj("revocation");
	struct identity owner, other;
	struct member_rev rv = {0}, back;
	uint8_t want[MEMBER_REV_LEN], got[MEMBER_REV_LEN];

	id_from_seed(&owner, "owner_seed");
	id_from_seed(&other, "other_seed");
	vec_hex(rv.node_id, ID_PK_LEN, V, "node_id");
	rv.issued = num(o, "issued");
	vec_hex(want, sizeof(want), o, "binary");
	assert_int_equal(member_rev_write(&rv, &owner, got), 0);
	assert_memory_equal(got, want, sizeof(want));
	assert_int_equal(
	    member_rev_open(want, sizeof(want), owner.pk, &back), 0);
	assert_memory_equal(back.node_id, rv.node_id, ID_PK_LEN);
	assert_int_equal(back.issued, rv.issued);
	/* Another owner's key does not accept it. */
	assert_int_equal(
	    member_rev_open(want, sizeof(want), other.pk, &back), SM_ERR_PERM);
	/* A revocation signed by anyone else does not verify. */
	assert_int_equal(member_rev_write(&rv, &other, got), 0);
	memcpy(got + 1, owner.pk, ID_PK_LEN); /* claim the owner */
	assert_int_equal(
	    member_rev_open(got, sizeof(got), owner.pk, &back), SM_ERR_VERIFY);
	/* A credential is not a revocation (type byte, length). */
	assert_int_equal(
	    member_rev_open(want, sizeof(want) - 1, owner.pk, &back),
	    SM_ERR_PROTO);
	want[0] = MEMBER_TYPE_CRED;
	assert_int_equal(
	    member_rev_open(want, sizeof(want), owner.pk, &back), SM_ERR_PROTO);
	identity_clear(&owner);
	identity_clear(&other);
}

static void
test_invite_vector(void **state)
{
	const cJSON *o = obj("invite"), *addrs, *a;
	static struct member_invite inv, back;
	static char text[MEMBER_INVITE_STR_MAX];
	struct identity owner;
	const char *why = "x";
	size_t i = 0;

	id_from_seed(&owner, "owner_seed");
	memset(&inv, 0, sizeof(inv));
	vec_hex(inv.id, MEMBER_INVITE_ID_LEN, o, "id");
	vec_hex(inv.join_secret, TOKEN_SECRET_LEN, o, "join_secret");
	vec_hex(inv.node_id, ID_PK_LEN, V, "node_id");
	inv.rights = (uint8_t)num(o, "rights");
	inv.flags = (uint8_t)num(o, "flags");
	inv.expires = num(o, "expires");
	addrs = cJSON_GetObjectItemCaseSensitive(o, "addresses");
	cJSON_ArrayForEach(a, addrs) snprintf(
	    inv.addrs[inv.n_addrs++], TOKEN_ADDR_MAX + 1, "%s", a->valuestring);
	assert_int_equal(
	    member_invite_write(&inv, &owner, text, sizeof(text)), 0);
	assert_string_equal(
	    text, cJSON_GetObjectItemCaseSensitive(o, "text")->valuestring);
	assert_int_equal(member_invite_parse(text, &back, &why), 0);
	assert_null(why);
	assert_memory_equal(back.owner_pk, owner.pk, ID_PK_LEN);
	assert_memory_equal(back.id, inv.id, MEMBER_INVITE_ID_LEN);
	assert_memory_equal(
	    back.join_secret, inv.join_secret, TOKEN_SECRET_LEN);
	assert_memory_equal(back.node_id, inv.node_id, ID_PK_LEN);
	assert_int_equal(back.rights, inv.rights);
	assert_int_equal(back.flags, MEMBER_FLAG_SINGLE_USE);
	assert_int_equal(back.expires, inv.expires);
	assert_int_equal(back.n_addrs, 2);
	for (i = 0; i < back.n_addrs; i++)
		assert_string_equal(back.addrs[i], inv.addrs[i]);
	assert_int_equal(back.bin_len, inv.bin_len);
	assert_memory_equal(back.bin, inv.bin, inv.bin_len);
	member_invite_clear(&back);
	member_invite_clear(&inv);
	identity_clear(&owner);
}

static void
test_invite_invalid(void **state)
{
	const cJSON *o = obj("invite");
	static struct member_invite back;
	static uint8_t bin[MEMBER_INVITE_BIN_MAX + 4];
	const char *hex =
	    cJSON_GetObjectItemCaseSensitive(o, "binary")->valuestring;
	size_t len = strlen(hex) / 2;
	const char *why;

	assert_int_equal(sm_unhex(bin, len, hex), 0);
	assert_int_equal(member_invite_parse_bin(bin, len, &back, &why), 0);
	/* Every byte is signed: flip each in turn (after the type byte and
	 * outside the keys, which fail earlier as invalid points). */
	for (size_t i = 1 + ID_PK_LEN; i < len; i++) {
		bin[i] ^= 0x01;
		assert_int_not_equal(
		    member_invite_parse_bin(bin, len, &back, &why), 0);
		assert_non_null(why);
		bin[i] ^= 0x01;
	}
	assert_int_not_equal(
	    member_invite_parse_bin(bin, len - 1, &back, &why), 0);
	assert_int_equal(
	    member_invite_parse_bin(bin, 40, &back, &why), SM_ERR_INVAL);
	assert_string_equal(why, "the invite is truncated");
	bin[0] = 0x01; /* a token */
	assert_int_equal(
	    member_invite_parse_bin(bin, len, &back, &why), SM_ERR_UNSUPP);
	assert_int_equal(member_invite_parse_bin(
			     bin, MEMBER_INVITE_BIN_MAX + 1, &back, &why),
	    SM_ERR_TOOBIG);
	assert_int_equal(member_invite_parse("", &back, &why), SM_ERR_INVAL);
	assert_int_equal(
	    member_invite_parse("AA==", &back, &why), SM_ERR_INVAL);
	assert_int_equal(
	    member_invite_parse("not base64!", &back, &why), SM_ERR_INVAL);
}

static void
test_rights(void **state)
{
	char t[MEMBER_RIGHTS_TEXT_MAX];
	uint8_t r;

	assert_int_equal(member_rights_parse("host,relay", &r), 0);
	assert_int_equal(r, MEMBER_RIGHTS_ALL);
	member_rights_text(r, t);
	assert_string_equal(t, "host,relay,use");
	assert_int_equal(member_rights_parse("use", &r), 0);
	assert_int_equal(r, MEMBER_RIGHT_USE);
	member_rights_text(r, t);
	assert_string_equal(t, "use");
	assert_int_equal(member_rights_parse("relay", &r), 0);
	assert_int_equal(r, MEMBER_RIGHT_RELAY | MEMBER_RIGHT_USE);
	assert_int_equal(member_rights_parse("root", &r), SM_ERR_INVAL);
	assert_int_equal(member_rights_parse("host,", &r), SM_ERR_INVAL);
	assert_int_equal(member_rights_parse("", &r), SM_ERR_INVAL);
	assert_int_equal(member_rights_parse("hostx", &r), SM_ERR_INVAL);
}

/* The credential rides in the signed announcement (field 46) byte for
 * byte, and revocations in the GossipMessage (field 3). */
static void
test_carried_in_gossip(void **state)
{
	const cJSON *o = obj("credential");
	struct identity node;
	struct announce a, back;
	struct announce_msg msg;
	struct buf sa, g;
	uint8_t cred[MEMBER_CRED_LEN], rev[MEMBER_REV_LEN];
	const uint8_t *items[1], *revs[1];
	size_t lens[1], rlens[1];

	id_from_seed(&node, "node_seed");
	vec_hex(cred, sizeof(cred), o, "binary");
	vec_hex(rev, sizeof(rev), obj("revocation"), "binary");
	memset(&a, 0, sizeof(a));
	a.seq = 7;
	a.credential = cred;
	a.credential_len = sizeof(cred);
	buf_init(&sa, ANN_MAX_LEN);
	buf_init(&g, GOSSIP_MAX_LEN);
	assert_int_equal(announce_sign(&a, &node, &sa), 0);
	assert_int_equal(
	    announce_verify_parse(buf_data(&sa), sa.len, &back), 0);
	assert_int_equal(back.credential_len, sizeof(cred));
	assert_memory_equal(back.credential, cred, sizeof(cred));
	announce_free(&back);
	a.credential_len = ANN_MAX_CREDENTIAL + 1;
	buf_reset(&sa);
	assert_int_equal(announce_sign(&a, &node, &sa), SM_ERR_INVAL);
	a.credential_len = sizeof(cred);
	assert_int_equal(announce_sign(&a, &node, &sa), 0);

	items[0] = buf_data(&sa);
	lens[0] = sa.len;
	revs[0] = rev;
	rlens[0] = sizeof(rev);
	assert_int_equal(
	    announce_msg_write_revs(items, lens, 1, revs, rlens, 1, false, &g),
	    0);
	assert_int_equal(announce_msg_parse(buf_data(&g), g.len, &msg), 0);
	assert_int_equal(msg.n, 1);
	assert_int_equal(msg.n_revs, 1);
	assert_int_equal(msg.rev_lens[0], sizeof(rev));
	assert_memory_equal(msg.revs[0], rev, sizeof(rev));
	announce_msg_free(&msg);
	/* Bounds on the sending side too. */
	rlens[0] = GOSSIP_REVOCATION_MAX_LEN + 1;
	buf_reset(&g);
	assert_int_equal(
	    announce_msg_write_revs(items, lens, 1, revs, rlens, 1, false, &g),
	    SM_ERR_INVAL);
	buf_clear(&sa);
	buf_clear(&g);
	identity_clear(&node);
}

/* Merge a signed announcement by 'id' into 't' as a receiver does. */
static struct peer *
merge_host(struct peers *t, const struct identity *id, const uint8_t *mid,
    const uint8_t (*linked)[ID_PK_LEN], size_t n_linked)
{
	const char *models[1] = {"m"};
	struct announce a, in;
	struct buf b;

	memset(&a, 0, sizeof(a));
	memcpy(a.mesh_id, mid, ANN_MESH_ID_LEN);
	a.seq = 1;
	a.role = ANN_ROLE_HOST;
	a.serving = a.hosted = models;
	a.n_serving = a.n_hosted = 1;
	a.hosted_known = true;
	a.relay_allowed = true;
	a.linked = linked;
	a.n_linked = n_linked;
	buf_init(&b, ANN_MAX_LEN);
	assert_int_equal(announce_sign(&a, id, &b), 0);
	assert_int_equal(announce_verify_parse(buf_data(&b), b.len, &in), 0);
	assert_int_equal(peers_merge(t, &in, 1000, in.seq, NULL), 0);
	buf_clear(&b);
	return peers_find(t, id->pk);
}

/* Rights withheld by a credential take effect in the peer table: no host
 * right, never a host for a model; no relay right, never a relay. */
static void
test_rights_in_peer_table(void **state)
{
	struct identity self, a, b;
	struct peers t;
	struct peer *pa, *pb, *out[4];
	uint8_t mid[ANN_MESH_ID_LEN], linked[1][ID_PK_LEN];

	id_from_seed(&self, "node_seed");
	id_from_seed(&a, "owner_seed");
	id_from_seed(&b, "other_seed");
	memset(mid, 9, sizeof(mid));
	memset(linked[0], 0x42, ID_PK_LEN);
	peers_init(&t, self.pk, mid, 1000);
	pa = merge_host(&t, &a, mid, (const uint8_t(*)[ID_PK_LEN])linked, 1);
	pb = merge_host(&t, &b, mid, (const uint8_t(*)[ID_PK_LEN])linked, 1);
	assert_non_null(pa);
	assert_non_null(pb);
	pa->link = pb->link = PEER_LINK_DIRECT;
	/* Control: both host and relay when nothing is withheld. */
	assert_int_equal(peers_hosts_for_model(&t, "m", out, 4), 2);
	assert_int_equal(peers_relays_for(&t, linked[0], out, 4), 2);
	pa->denied = PEER_DENY_HOST;
	pb->denied = PEER_DENY_RELAY;
	assert_int_equal(peers_hosts_for_model(&t, "m", out, 4), 1);
	assert_ptr_equal(out[0], pb);
	assert_int_equal(peers_relays_for(&t, linked[0], out, 4), 1);
	assert_ptr_equal(out[0], pa);
	pa->denied = pb->denied = PEER_DENY_HOST | PEER_DENY_RELAY;
	assert_int_equal(peers_hosts_for_model(&t, "m", out, 4), 0);
	assert_int_equal(peers_relays_for(&t, linked[0], out, 4), 0);
	peers_clear(&t);
	identity_clear(&self);
	identity_clear(&a);
	identity_clear(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mesh_id),
	    cmocka_unit_test(test_credential_vector),
	    cmocka_unit_test(test_credential_expiry),
	    cmocka_unit_test(test_credential_invalid),
	    cmocka_unit_test(test_revocation_vector),
	    cmocka_unit_test(test_invite_vector),
	    cmocka_unit_test(test_invite_invalid),
	    cmocka_unit_test(test_rights),
	    cmocka_unit_test(test_carried_in_gossip),
	    cmocka_unit_test(test_rights_in_peer_table),
	};
	int r;

	if (sodium_init() < 0)
		return 1;
	V = vec_load(VECTORS);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	cJSON_Delete(V);
	return r;
}
