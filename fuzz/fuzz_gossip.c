/*
 * Gossip decoder: arbitrary bytes as a GossipMessage (announce_msg_parse),
 * each item through announce_verify_parse, the whole input as one signed
 * announcement too, and what verifies through the peer table.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "mesh/announce.h"
#include "mesh/peers.h"
#include "proto/mesh.pb-c.h"

static void
take(struct peers *t, const uint8_t *p, size_t len)
{
	struct announce a;

	if (announce_verify_parse(p, len, &a) != 0)
		return;
	(void)announce_routes_model(&a, "m");
	/* a valid signature means a seed input: exercise the merge too */
	memcpy(t->mesh_id, a.mesh_id, ANN_MESH_ID_LEN);
	if (peers_merge(t, &a, 0, a.seq, NULL) != 0)
		announce_free(&a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t self[ID_PK_LEN], mesh[ANN_MESH_ID_LEN];
	struct announce_msg m;
	struct peers t;
	struct peer *out[4];
	Sealmesh__GossipMessage *gm;
	size_t i;

	if (sodium_init() < 0)
		return 0;
	peers_init(&t, self, mesh, 1000);
	take(&t, data, size);
	if (announce_msg_parse(data, size, &m) == 0) {
		for (i = 0; i < m.n; i++)
			take(&t, m.items[i], m.lens[i]);
		announce_msg_free(&m);
	}
	/* the raw generated decoder on its own */
	if (size <= GOSSIP_MAX_LEN &&
	    (gm = sealmesh__gossip_message__unpack(NULL, size, data)) != NULL)
		sealmesh__gossip_message__free_unpacked(gm, NULL);
	(void)peers_hosts_for_model(&t, "m", out, 4);
	(void)peers_tick(&t, 1000000);
	peers_clear(&t);
	return 0;
}
