/*
 * Link-key certificate (net/tls.h): the extnValue a peer's TLS certificate
 * carries under TLS_LINKCERT_OID, parsed and verified exactly as
 * check_peer_cert() does. The identity and link key are those of
 * tests/vectors/linkcert.json, so the seed corpus verifies; a body that
 * parses must re-encode to the same bytes, and one that verifies must
 * re-sign to them (Ed25519 is deterministic).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/err.h"
#include "core/util.h"
#include "crypto/sign.h"
#include "net/tls.h"

static struct identity ident;
static uint8_t link_pk[ID_PK_LEN];

static void
init_keys(void)
{
	uint8_t seed[ID_SEED_LEN];
	struct identity link;

	if (ident.sk != NULL)
		return;
	if (sodium_init() < 0)
		abort();
	for (size_t i = 0; i < sizeof(seed); i++)
		seed[i] = (uint8_t)(0x90 + i);
	if (identity_from_seed(&link, seed) != 0)
		abort();
	memcpy(link_pk, link.pk, ID_PK_LEN);
	identity_clear(&link);
	for (size_t i = 0; i < sizeof(seed); i++)
		seed[i] = (uint8_t)(0x30 + i);
	if (identity_from_seed(&ident, seed) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tls_linkcert lc;
	uint8_t back[TLS_LINKCERT_LEN];
	int r;

	init_keys();
	r = tls_linkcert_parse(data, size, &lc);
	if (r != 0) {
		if (r != SM_ERR_INVAL && r != SM_ERR_UNSUPP)
			abort();
		if (lc.version != 0 || lc.not_after != 0)
			abort();
		return 0;
	}
	if (size != TLS_LINKCERT_LEN || lc.version != TLS_LINKCERT_VERSION)
		abort();
	/* re-encode from the parsed fields */
	back[0] = 0x04;
	back[1] = TLS_LINKCERT_BODY_LEN;
	back[2] = lc.version;
	memcpy(back + 3, lc.identity_pk, ID_PK_LEN);
	sm_put_be64(back + 3 + ID_PK_LEN, lc.not_after);
	memcpy(back + 3 + ID_PK_LEN + 8, lc.sig, ID_SIG_LEN);
	if (memcmp(back, data, TLS_LINKCERT_LEN) != 0)
		abort();
	/* the clock at not_after: only the signature can refuse it */
	r = tls_linkcert_verify(&lc, link_pk, lc.not_after);
	if (r != 0 && r != SM_ERR_VERIFY)
		abort();
	if (r == 0) {
		if (memcmp(lc.identity_pk, ident.pk, ID_PK_LEN) != 0)
			return 0; /* a valid signature by some other key */
		if (tls_linkcert_write(back, &ident, link_pk, lc.not_after) !=
			0 ||
		    memcmp(back, data, TLS_LINKCERT_LEN) != 0)
			abort();
	}
	/* any clock: one of the four answers, never anything else */
	r = tls_linkcert_verify(&lc, link_pk, sm_get_be64(lc.sig));
	if (r != 0 && r != SM_ERR_VERIFY && r != SM_ERR_STALE &&
	    r != SM_ERR_TOOBIG)
		abort();
	return 0;
}
