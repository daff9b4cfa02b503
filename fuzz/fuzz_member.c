/*
 * Membership records (mesh/member.h), one target dispatching on the first
 * byte as a receiver does: 0x02 an invite (binary, as redeemed over a
 * link), 0x11 a credential, 0x12 a revocation; anything else is tried as
 * invite text (--join). The owner is the test key of
 * tests/vectors/member.json, so the seed corpus verifies and a record
 * that verifies must re-sign to the same bytes (Ed25519 is deterministic).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/err.h"
#include "mesh/member.h"

static struct identity owner;

static void
init_owner(void)
{
	uint8_t seed[32];

	if (owner.sk != NULL)
		return;
	for (size_t i = 0; i < sizeof(seed); i++)
		seed[i] = (uint8_t)(0xa0 + i);
	if (sodium_init() < 0 || (owner.sk = sodium_malloc(ID_SK_LEN)) == NULL)
		abort();
	crypto_sign_seed_keypair(owner.pk, owner.sk, seed);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct member_invite inv;
	static char text[MEMBER_INVITE_STR_MAX + 16];
	static char back[MEMBER_INVITE_STR_MAX];
	struct member_cred c;
	struct member_rev rv;
	uint8_t out[MEMBER_CRED_LEN];
	const char *why;

	init_owner();
	if (size == 0)
		return 0;
	switch (data[0]) {
	case MEMBER_TYPE_CRED:
		if (member_cred_open(data, size, owner.pk, 1, &c) == 0) {
			if (member_cred_write(&c, &owner, out) != 0 ||
			    memcmp(out, data, MEMBER_CRED_LEN) != 0)
				abort();
		}
		break;
	case MEMBER_TYPE_REV:
		if (member_rev_open(data, size, owner.pk, &rv) == 0) {
			if (member_rev_write(&rv, &owner, out) != 0 ||
			    memcmp(out, data, MEMBER_REV_LEN) != 0)
				abort();
		}
		break;
	case MEMBER_TYPE_INVITE:
		if (member_invite_parse_bin(data, size, &inv, &why) != 0) {
			if (why == NULL)
				abort();
			break;
		}
		if (memcmp(inv.owner_pk, owner.pk, ID_PK_LEN) == 0 &&
		    (member_invite_write(&inv, &owner, back, sizeof(back)) !=
			    0 ||
			inv.bin_len != size ||
			memcmp(inv.bin, data, size) != 0))
			abort();
		break;
	default:
		if (size >= sizeof(text))
			return 0;
		memcpy(text, data, size);
		text[size] = '\0';
		if (member_invite_parse(text, &inv, &why) != 0 && why == NULL)
			abort();
		break;
	}
	member_invite_clear(&inv);
	return 0;
}
