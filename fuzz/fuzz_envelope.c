/*
 * libFuzzer target for the sealed-request decoder (crypto/envelope.c).
 * First byte picks the mode:
 *   bit 0 clear: the rest is a wire envelope: env_peek() and
 *                env_open_request() on it, as a host would.
 *   bit 0 set:   the rest is a plaintext, boxed under a valid header for
 *                the fixed host, so the checks after decryption are reached;
 *                bit 1 also patches in the right node id and timestamp;
 *                bit 2 boxes it under a version 2 header (salted, K from
 *                the host's cache), else version 1.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/buf.h"
#include "crypto/envelope.h"
#include "crypto/infkey.h"

#define NOW 1700000000u

static struct infkey *keys;
static struct env_target target;
static uint8_t eph_sk[ENV_EPH_SK_LEN];

static void
setup(void)
{
	uint8_t sk[INFKEY_SK_LEN], seed[32], edsk[64];
	size_t i;

	if (sodium_init() < 0)
		abort();
	for (i = 0; i < sizeof(sk); i++) {
		sk[i] = (uint8_t)(0x40 + i);
		seed[i] = (uint8_t)i;
		eph_sk[i] = (uint8_t)(0x80 + i);
	}
	crypto_sign_seed_keypair(target.node_id, edsk, seed);
	if (infkey_new(&keys, 3600, 600, 0) != 0 ||
	    infkey_install_det(keys, 0x1234abcd, sk, 0) != 0)
		abort();
	infkey_current(keys, &target.key);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct env_replay *rc;
	struct env_session s;
	struct buf http, wire;
	uint8_t *pt = NULL;
	size_t total, i;
	int r;

	if (!ready) {
		setup();
		ready = 1;
	}
	if (size < 1 || size > ENV_WIRE_MIN * 8)
		return 0;
	if (env_replay_new(&rc, ENV_WINDOW_DEFAULT_S, 16) != 0)
		abort();
	buf_init(&wire, ENV_WIRE_MAX);
	if ((data[0] & 1) == 0) {
		(void)env_peek(&total, data + 1, size - 1);
		r = env_open_request(&http, &s, keys, target.node_id, rc,
		    data + 1, size - 1, NOW);
	} else {
		if ((pt = malloc(size)) == NULL)
			abort();
		memcpy(pt, data + 1, size - 1);
		if ((data[0] & 2) && size - 1 >= ENV_INNER_LEN) {
			memcpy(pt + 25, target.node_id, ENV_NODE_ID_LEN);
			for (i = 0; i < 8; i++)
				pt[17 + i] =
				    (uint8_t)((uint64_t)NOW >> (56 - 8 * i));
		}
		if (env_seal_raw_det(&wire, &target,
			(data[0] & 4) ? ENV_VERSION_2 : ENV_VERSION, eph_sk, pt,
			size - 1) != 0)
			abort();
		r = env_open_request(&http, &s, keys, target.node_id, rc,
		    buf_data(&wire), wire.len, NOW);
	}
	if (r == 0) {
		if (http.len == 0 || http.len > ENV_HTTP_MAX)
			abort();
		buf_clear(&http);
		/* A second open of the same bytes is a replay. */
		if ((data[0] & 1) == 1 &&
		    env_open_request(&http, &s, keys, target.node_id, rc,
			buf_data(&wire), wire.len, NOW) != SM_ERR_REPLAY)
			abort();
	} else if (http.p != NULL || http.len != 0) {
		abort(); /* failure must leave nothing behind */
	}
	buf_clear(&http);
	env_session_clear(&s);
	buf_clear(&wire);
	free(pt);
	env_replay_free(rc);
	return 0;
}
