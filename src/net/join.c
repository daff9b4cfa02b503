/* Join proof over a TLS exporter value: see join.h. */
#include <sodium.h>

#include "net/join.h"

int
join_proof(uint8_t out[JOIN_PROOF_LEN], const uint8_t *secret,
    size_t secret_len, const uint8_t exporter[JOIN_EXPORTER_LEN],
    const uint8_t prover[JOIN_ID_LEN], const uint8_t verifier[JOIN_ID_LEN],
    void *arg)
{
	crypto_auth_hmacsha256_state st;
	const unsigned char elen = JOIN_EXPORTER_LEN;
	int r = SM_ERR_INVAL;

	(void)arg;
	if (secret == NULL || secret_len == 0)
		goto out;
	if (crypto_auth_hmacsha256_init(&st, secret, secret_len) != 0 ||
	    crypto_auth_hmacsha256_update(&st,
		(const unsigned char *)JOIN_LABEL, sizeof(JOIN_LABEL)) != 0 ||
	    crypto_auth_hmacsha256_update(&st, &elen, 1) != 0 ||
	    crypto_auth_hmacsha256_update(&st, exporter, JOIN_EXPORTER_LEN) !=
		0 ||
	    crypto_auth_hmacsha256_update(&st, prover, JOIN_ID_LEN) != 0 ||
	    crypto_auth_hmacsha256_update(&st, verifier, JOIN_ID_LEN) != 0 ||
	    crypto_auth_hmacsha256_final(&st, out) != 0) {
		r = SM_ERR_INTERNAL;
		goto out;
	}
	r = 0;
out:
	sodium_memzero(&st, sizeof(st));
	return r;
}
