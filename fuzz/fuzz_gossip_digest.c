/*
 * Gossip anti-entropy v2 decoder and answer logic: arbitrary bytes as a
 * GossipMessage (gossip_msg_parse), then gossip_answer() against a small
 * peer table, as node.c answers a peer's request or follow-up.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "core/buf.h"
#include "mesh/announce.h"
#include "mesh/gossip.h"
#include "mesh/peers.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t self[ID_PK_LEN] = {1}, mesh[ANN_MESH_ID_LEN];
	static const uint8_t self_wire[] = {0x0a, 0x01, 0x00};
	struct gossip_msg m;
	struct gossip_peers gp;
	struct gossip_store st;
	struct peers t;
	struct buf out;
	bool more;

	if (sodium_init() < 0)
		return 0;
	if (gossip_msg_parse(data, size, &m) != 0)
		return 0;
	peers_init(&t, self, mesh, 1000);
	/* what verifies joins the table, as node.c merges before answering */
	for (size_t i = 0; i < m.n_items; i++) {
		struct announce a;

		if (announce_verify_parse(m.items[i], m.lens[i], &a) != 0)
			continue;
		memcpy(t.mesh_id, a.mesh_id, ANN_MESH_ID_LEN);
		if (peers_merge(&t, &a, 0, a.seq, NULL) != 0)
			announce_free(&a);
	}
	gossip_peers_init(&gp, &t, self, 7, self_wire, sizeof(self_wire));
	gossip_peers_store(&gp, &st);
	buf_init(&out, GOSSIP_MAX_LEN);
	if (gossip_answer(&st, &m, &out, &more) == 0) {
		struct gossip_msg back;

		/* our own answer must parse */
		if (gossip_msg_parse(buf_data(&out), out.len, &back) != 0)
			__builtin_trap();
		gossip_msg_free(&back);
	}
	buf_clear(&out);
	gossip_peers_clear(&gp);
	gossip_msg_free(&m);
	peers_clear(&t);
	return 0;
}
