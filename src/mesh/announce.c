#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "mesh/announce.h"
#include "mesh/token.h"
#include "proto/mesh.pb-c.h"

_Static_assert(ANN_MESH_ID_LEN == TOKEN_MESH_ID_LEN, "one mesh id length");

/* Top-level fields we accept per message before decoding it at all. */
#define SIGNED_MAX_FIELDS 16
#define BODY_MAX_FIELDS                                                        \
	(2 * ANN_MAX_MODELS + ANN_MAX_ADDRS + ANN_MAX_LINKED + 64)
#define GOSSIP_MAX_FIELDS                                                      \
	(GOSSIP_MAX_ANNOUNCEMENTS + GOSSIP_MAX_REVOCATIONS + 16)

static int
read_varint(const uint8_t *p, size_t len, size_t *off, uint64_t *v)
{
	unsigned shift = 0;

	*v = 0;
	while (*off < len && shift < 64) {
		uint8_t b = p[(*off)++];
		*v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			return 0;
		shift += 7;
	}
	return SM_ERR_PROTO;
}

/*
 * Walk the top-level fields of a protobuf message without decoding it and
 * refuse more than 'max' of them, so that protobuf-c's allocations stay
 * proportional to what we accept, not to what a peer sends.
 */
static int
scan_fields_each(
    const uint8_t *p, size_t len, size_t max, size_t max1, size_t max3)
{
	size_t off = 0, n = 0, n1 = 0, n3 = 0;
	uint64_t key, v;

	while (off < len) {
		if (read_varint(p, len, &off, &key) != 0 || (key >> 3) == 0)
			return SM_ERR_PROTO;
		if (++n > max || ((key >> 3) == 1 && ++n1 > max1) ||
		    ((key >> 3) == 3 && ++n3 > max3))
			return SM_ERR_PROTO;
		switch (key & 7) {
		case 0:
			if (read_varint(p, len, &off, &v) != 0)
				return SM_ERR_PROTO;
			break;
		case 1:
			if (len - off < 8)
				return SM_ERR_PROTO;
			off += 8;
			break;
		case 2:
			if (read_varint(p, len, &off, &v) != 0 || v > len - off)
				return SM_ERR_PROTO;
			off += (size_t)v;
			break;
		case 5:
			if (len - off < 4)
				return SM_ERR_PROTO;
			off += 4;
			break;
		default: /* groups and reserved wire types */
			return SM_ERR_PROTO;
		}
	}
	return 0;
}

int
announce_scan_fields(const uint8_t *p, size_t len, size_t max)
{
	return scan_fields_each(p, len, max, SIZE_MAX, SIZE_MAX);
}

uint64_t
announce_next_seq(uint64_t prev, uint64_t wall_ms)
{
	return wall_ms > prev ? wall_ms : prev + 1;
}

/* A model name or version: 1..ANN_MAX_STR bytes, no control characters. */
static bool
str_ok(const char *s)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= ANN_MAX_STR || (unsigned char)s[i] < 0x20 ||
		    s[i] == 0x7f)
			return false;
	}
	return i > 0;
}

/* The limits, applied alike when signing and when receiving. */
static bool
fields_ok(const struct announce *a)
{
	size_t i;

	if (a->n_serving > ANN_MAX_MODELS || a->n_hosted > ANN_MAX_MODELS ||
	    a->n_addrs > ANN_MAX_ADDRS || a->n_linked > ANN_MAX_LINKED)
		return false;
	if ((a->n_serving > 0 && a->serving == NULL) ||
	    (a->n_hosted > 0 && a->hosted == NULL) ||
	    (a->n_addrs > 0 && a->addrs == NULL) ||
	    (a->n_linked > 0 && a->linked == NULL))
		return false;
	if (a->version != NULL && !str_ok(a->version))
		return false;
	for (i = 0; i < a->n_serving; i++)
		if (!str_ok(a->serving[i]))
			return false;
	for (i = 0; i < a->n_hosted; i++)
		if (!str_ok(a->hosted[i]))
			return false;
	for (i = 0; i < a->n_addrs; i++)
		if (a->addrs[i] == NULL ||
		    token_addr_check(a->addrs[i],
			strnlen(a->addrs[i], ANN_MAX_STR + 1)) != 0)
			return false;
	if ((a->posture != NULL && a->posture_len > ANN_MAX_POSTURE) ||
	    (a->attestation != NULL &&
		a->attestation_len > ANN_MAX_ATTESTATION) ||
	    (a->credential != NULL && a->credential_len > ANN_MAX_CREDENTIAL))
		return false;
	if (a->http_port > 65535 || a->console_port > 65535)
		return false;
	return true;
}

int
announce_pb_append(
    struct buf *out, const struct ProtobufCMessage *m, size_t max)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	int r;

	if (len > max)
		return SM_ERR_TOOBIG;
	if ((r = buf_reserve(out, len)) != 0)
		return r;
	protobuf_c_message_pack(m, buf_tail(out));
	buf_advance(out, len);
	return 0;
}

int
announce_sign(
    const struct announce *a, const struct identity *id, struct buf *out)
{
	Sealmesh__PeerAnnouncement pa = SEALMESH__PEER_ANNOUNCEMENT__INIT;
	Sealmesh__SignedAnnouncement sa = SEALMESH__SIGNED_ANNOUNCEMENT__INIT;
	ProtobufCBinaryData *linked = NULL;
	uint8_t sig[ID_SIG_LEN], *msg = NULL;
	size_t blen, i;
	int r = SM_ERR_INVAL;

	if (!fields_ok(a))
		goto out;
	pa.has_endpoint_id = 1;
	pa.endpoint_id.data = (uint8_t *)id->pk;
	pa.endpoint_id.len = ID_PK_LEN;
	pa.has_role = 1;
	pa.role = a->role;
	pa.has_http_port = a->http_port != 0;
	pa.http_port = a->http_port;
	pa.version = (char *)a->version;
	pa.n_serving_models = a->n_serving;
	pa.serving_models = (char **)a->serving;
	pa.has_vram_bytes = a->vram_bytes != 0;
	pa.vram_bytes = a->vram_bytes;
	pa.has_mesh_id = 1;
	pa.mesh_id.data = (uint8_t *)a->mesh_id;
	pa.mesh_id.len = ANN_MESH_ID_LEN;
	pa.n_addresses = a->n_addrs;
	pa.addresses = (char **)a->addrs;
	pa.n_hosted_models = a->n_hosted;
	pa.hosted_models = (char **)a->hosted;
	pa.has_hosted_models_known = a->hosted_known;
	pa.hosted_models_known = a->hosted_known;
	pa.has_inference_public_key = a->has_inference_key;
	pa.inference_public_key.data = (uint8_t *)a->inference_key;
	pa.inference_public_key.len = ANN_INFERENCE_KEY_LEN;
	pa.has_inference_key_epoch = a->has_inference_key;
	pa.inference_key_epoch = a->inference_key_epoch;
	pa.has_envelope_version =
	    a->has_inference_key && a->envelope_version > 1;
	pa.envelope_version = a->envelope_version;
	pa.has_security_posture = a->posture != NULL;
	pa.security_posture.data = (uint8_t *)a->posture;
	pa.security_posture.len = a->posture_len;
	pa.has_hardware_attestation_blob = a->attestation != NULL;
	pa.hardware_attestation_blob.data = (uint8_t *)a->attestation;
	pa.hardware_attestation_blob.len = a->attestation_len;
	pa.has_membership_credential = a->credential != NULL;
	pa.membership_credential.data = (uint8_t *)a->credential;
	pa.membership_credential.len = a->credential_len;
	pa.has_seq = 1;
	pa.seq = a->seq;
	if (a->n_linked > 0) {
		r = SM_ERR_NOMEM;
		if ((linked = calloc(a->n_linked, sizeof(*linked))) == NULL)
			goto out;
		for (i = 0; i < a->n_linked; i++) {
			linked[i].data = (uint8_t *)a->linked[i];
			linked[i].len = ID_PK_LEN;
		}
	}
	pa.n_linked_peers = a->n_linked;
	pa.linked_peers = linked;
	pa.has_leaving = a->leaving;
	pa.leaving = a->leaving;
	pa.has_relay_allowed = a->relay_allowed;
	pa.relay_allowed = a->relay_allowed;
	pa.has_console_port = a->console_port != 0;
	pa.console_port = a->console_port;
	pa.has_gossip_version = a->gossip_version != 0;
	pa.gossip_version = a->gossip_version;
	pa.has_response_stream_version = a->rs_version != 0;
	pa.response_stream_version = a->rs_version;

	r = SM_ERR_TOOBIG;
	if ((blen = protobuf_c_message_get_packed_size(&pa.base)) > ANN_MAX_LEN)
		goto out;
	r = SM_ERR_NOMEM;
	if ((msg = malloc(ANN_DOMAIN_LEN + blen)) == NULL)
		goto out;
	memcpy(msg, ANN_DOMAIN, ANN_DOMAIN_LEN);
	protobuf_c_message_pack(&pa.base, msg + ANN_DOMAIN_LEN);
	if ((r = identity_sign(id, msg, ANN_DOMAIN_LEN + blen, sig)) != 0)
		goto out;
	sa.has_body = 1;
	sa.body.data = msg + ANN_DOMAIN_LEN;
	sa.body.len = blen;
	sa.has_signature = 1;
	sa.signature.data = sig;
	sa.signature.len = ID_SIG_LEN;
	r = announce_pb_append(out, &sa.base, ANN_MAX_LEN);
out:
	free(linked);
	free(msg);
	return r;
}

void
announce_free(struct announce *a)
{
	if (a == NULL)
		return;
	if (a->priv_ != NULL)
		sealmesh__peer_announcement__free_unpacked(a->priv_, NULL);
	free((void *)a->linked);
	free(a->wire);
	memset(a, 0, sizeof(*a));
}

/* Fill 'a' from a decoded body; pointers refer into 'pa'. */
static int
from_pb(const Sealmesh__PeerAnnouncement *pa, struct announce *a)
{
	size_t i;

	if (!pa->has_endpoint_id || pa->endpoint_id.len != ID_PK_LEN ||
	    !pa->has_mesh_id || pa->mesh_id.len != ANN_MESH_ID_LEN ||
	    !pa->has_seq)
		return SM_ERR_PROTO;
	if (pa->n_linked_peers > ANN_MAX_LINKED)
		return SM_ERR_PROTO;
	memcpy(a->id, pa->endpoint_id.data, ID_PK_LEN);
	memcpy(a->mesh_id, pa->mesh_id.data, ANN_MESH_ID_LEN);
	a->seq = pa->seq;
	a->role = pa->has_role ? pa->role : 0;
	a->http_port = pa->has_http_port ? pa->http_port : 0;
	a->console_port = pa->has_console_port ? pa->console_port : 0;
	a->vram_bytes = pa->has_vram_bytes ? pa->vram_bytes : 0;
	a->version = pa->version;
	a->serving = (const char *const *)pa->serving_models;
	a->n_serving = pa->n_serving_models;
	a->hosted = (const char *const *)pa->hosted_models;
	a->n_hosted = pa->n_hosted_models;
	a->hosted_known =
	    pa->has_hosted_models_known && pa->hosted_models_known;
	a->addrs = (const char *const *)pa->addresses;
	a->n_addrs = pa->n_addresses;
	a->relay_allowed = pa->has_relay_allowed && pa->relay_allowed;
	a->leaving = pa->has_leaving && pa->leaving;
	a->gossip_version = pa->has_gossip_version ? pa->gossip_version : 0;
	a->rs_version =
	    pa->has_response_stream_version ? pa->response_stream_version : 0;
	if (pa->has_inference_public_key) {
		if (pa->inference_public_key.len != ANN_INFERENCE_KEY_LEN ||
		    !pa->has_inference_key_epoch ||
		    pa->inference_key_epoch == 0)
			return SM_ERR_PROTO;
		a->inference_key_epoch = pa->inference_key_epoch;
		a->has_inference_key = true;
		a->envelope_version =
		    pa->has_envelope_version ? pa->envelope_version : 1;
		memcpy(a->inference_key, pa->inference_public_key.data,
		    ANN_INFERENCE_KEY_LEN);
	}
	if (pa->has_security_posture && pa->security_posture.len > 0) {
		a->posture = pa->security_posture.data;
		a->posture_len = pa->security_posture.len;
	}
	if (pa->has_hardware_attestation_blob &&
	    pa->hardware_attestation_blob.len > 0) {
		a->attestation = pa->hardware_attestation_blob.data;
		a->attestation_len = pa->hardware_attestation_blob.len;
	}
	if (pa->has_membership_credential &&
	    pa->membership_credential.len > 0) {
		a->credential = pa->membership_credential.data;
		a->credential_len = pa->membership_credential.len;
	}
	if (pa->n_linked_peers > 0) {
		uint8_t(*linked)[ID_PK_LEN];

		if ((linked = calloc(pa->n_linked_peers, ID_PK_LEN)) == NULL)
			return SM_ERR_NOMEM;
		a->linked = (const uint8_t(*)[ID_PK_LEN])linked;
		for (i = 0; i < pa->n_linked_peers; i++) {
			if (pa->linked_peers[i].len != ID_PK_LEN)
				return SM_ERR_PROTO;
			memcpy(linked[i], pa->linked_peers[i].data, ID_PK_LEN);
		}
		a->n_linked = pa->n_linked_peers;
	}
	return fields_ok(a) ? 0 : SM_ERR_PROTO;
}

int
announce_verify_parse(const uint8_t *p, size_t len, struct announce *out)
{
	Sealmesh__SignedAnnouncement *sa = NULL;
	Sealmesh__SignedAnnouncement canon =
	    SEALMESH__SIGNED_ANNOUNCEMENT__INIT;
	Sealmesh__PeerAnnouncement *pa = NULL;
	uint8_t *msg = NULL;
	size_t wlen;
	int r = SM_ERR_TOOBIG;

	memset(out, 0, sizeof(*out));
	if (len > ANN_MAX_LEN)
		goto out;
	r = SM_ERR_PROTO;
	if (p == NULL || len == 0 ||
	    announce_scan_fields(p, len, SIGNED_MAX_FIELDS) != 0)
		goto out;
	if ((sa = sealmesh__signed_announcement__unpack(NULL, len, p)) == NULL)
		goto out;
	if (!sa->has_body || sa->body.len == 0 || !sa->has_signature ||
	    sa->signature.len != ID_SIG_LEN ||
	    announce_scan_fields(
		sa->body.data, sa->body.len, BODY_MAX_FIELDS) != 0)
		goto out;
	if ((pa = sealmesh__peer_announcement__unpack(
		 NULL, sa->body.len, sa->body.data)) == NULL)
		goto out;
	if (!pa->has_endpoint_id || pa->endpoint_id.len != ID_PK_LEN)
		goto out;
	/* Verify over the body exactly as received, never a re-encoding. */
	r = SM_ERR_NOMEM;
	if ((msg = malloc(ANN_DOMAIN_LEN + sa->body.len)) == NULL)
		goto out;
	memcpy(msg, ANN_DOMAIN, ANN_DOMAIN_LEN);
	memcpy(msg + ANN_DOMAIN_LEN, sa->body.data, sa->body.len);
	if ((r = identity_verify(pa->endpoint_id.data, msg,
		 ANN_DOMAIN_LEN + sa->body.len, sa->signature.data)) != 0) {
		r = SM_ERR_VERIFY;
		goto out;
	}
	if ((r = from_pb(pa, out)) != 0)
		goto out;
	out->priv_ = pa;
	pa = NULL;
	/*
	 * Keep a canonical wrapper {body, signature}: the signed body is kept
	 * byte for byte; whatever else a forwarder wrapped around it is not.
	 */
	canon.has_body = 1;
	canon.body = sa->body;
	canon.has_signature = 1;
	canon.signature = sa->signature;
	wlen = protobuf_c_message_get_packed_size(&canon.base);
	r = SM_ERR_NOMEM;
	if ((out->wire = malloc(wlen)) == NULL)
		goto out;
	protobuf_c_message_pack(&canon.base, out->wire);
	out->wire_len = wlen;
	r = 0;
out:
	free(msg);
	if (pa != NULL)
		sealmesh__peer_announcement__free_unpacked(pa, NULL);
	if (sa != NULL)
		sealmesh__signed_announcement__free_unpacked(sa, NULL);
	if (r != 0)
		announce_free(out);
	return r;
}

bool
announce_routes_model(const struct announce *a, const char *model)
{
	const char *const *v = a->hosted_known ? a->hosted : a->serving;
	size_t i, n = a->hosted_known ? a->n_hosted : a->n_serving;

	for (i = 0; i < n; i++)
		if (strcmp(v[i], model) == 0)
			return true;
	return false;
}

int
announce_msg_write(const uint8_t *const *items, const size_t *lens, size_t n,
    bool request_full, struct buf *out)
{
	return announce_msg_write_revs(
	    items, lens, n, NULL, NULL, 0, request_full, out);
}

int
announce_msg_write_revs(const uint8_t *const *items, const size_t *lens,
    size_t n, const uint8_t *const *revs, const size_t *rev_lens, size_t n_revs,
    bool request_full, struct buf *out)
{
	Sealmesh__GossipMessage gm = SEALMESH__GOSSIP_MESSAGE__INIT;
	ProtobufCBinaryData *v = NULL, *rv = NULL;
	size_t i;
	int r = SM_ERR_INVAL;

	if (n > GOSSIP_MAX_ANNOUNCEMENTS || n_revs > GOSSIP_MAX_REVOCATIONS)
		goto out;
	if (n_revs > 0) {
		r = SM_ERR_NOMEM;
		if ((rv = calloc(n_revs, sizeof(*rv))) == NULL)
			goto out;
	}
	for (i = 0; i < n_revs; i++) {
		r = SM_ERR_INVAL;
		if (rev_lens[i] == 0 || rev_lens[i] > GOSSIP_REVOCATION_MAX_LEN)
			goto out;
		rv[i].data = (uint8_t *)revs[i];
		rv[i].len = rev_lens[i];
	}
	gm.n_revocations = n_revs;
	gm.revocations = rv;
	if (n > 0) {
		r = SM_ERR_NOMEM;
		if ((v = calloc(n, sizeof(*v))) == NULL)
			goto out;
	}
	for (i = 0; i < n; i++) {
		r = SM_ERR_INVAL;
		if (lens[i] == 0 || lens[i] > ANN_MAX_LEN)
			goto out;
		v[i].data = (uint8_t *)items[i];
		v[i].len = lens[i];
	}
	gm.n_announcements = n;
	gm.announcements = v;
	gm.has_request_full = request_full;
	gm.request_full = request_full;
	r = announce_pb_append(out, &gm.base, GOSSIP_MAX_LEN);
out:
	free(v);
	free(rv);
	return r;
}

void
announce_msg_free(struct announce_msg *m)
{
	if (m == NULL)
		return;
	if (m->priv_ != NULL)
		sealmesh__gossip_message__free_unpacked(m->priv_, NULL);
	free(m->items);
	free(m->lens);
	free(m->revs);
	free(m->rev_lens);
	memset(m, 0, sizeof(*m));
}

int
announce_msg_parse(const uint8_t *p, size_t len, struct announce_msg *out)
{
	Sealmesh__GossipMessage *gm;
	size_t i;
	int r = SM_ERR_TOOBIG;

	memset(out, 0, sizeof(*out));
	if (len > GOSSIP_MAX_LEN || (len > 0 && p == NULL))
		goto out;
	/* Fields 1 (announcements) and 3 (revocations) each within bounds. */
	if (scan_fields_each(p, len, GOSSIP_MAX_FIELDS,
		GOSSIP_MAX_ANNOUNCEMENTS, GOSSIP_MAX_REVOCATIONS) != 0) {
		r = SM_ERR_PROTO;
		goto out;
	}
	r = SM_ERR_PROTO;
	if ((gm = sealmesh__gossip_message__unpack(NULL, len, p)) == NULL)
		goto out;
	out->priv_ = gm;
	out->request_full = gm->has_request_full && gm->request_full;
	if (gm->n_announcements > GOSSIP_MAX_ANNOUNCEMENTS) {
		r = SM_ERR_TOOBIG;
		goto out;
	}
	if (gm->n_announcements > 0) {
		r = SM_ERR_NOMEM;
		out->items = calloc(gm->n_announcements, sizeof(*out->items));
		out->lens = calloc(gm->n_announcements, sizeof(*out->lens));
		if (out->items == NULL || out->lens == NULL)
			goto out;
	}
	for (i = 0; i < gm->n_announcements; i++) {
		out->items[i] = gm->announcements[i].data;
		out->lens[i] = gm->announcements[i].len;
	}
	out->n = gm->n_announcements;
	if (gm->n_revocations > GOSSIP_MAX_REVOCATIONS) {
		r = SM_ERR_TOOBIG;
		goto out;
	}
	if (gm->n_revocations > 0) {
		r = SM_ERR_NOMEM;
		out->revs = calloc(gm->n_revocations, sizeof(*out->revs));
		out->rev_lens =
		    calloc(gm->n_revocations, sizeof(*out->rev_lens));
		if (out->revs == NULL || out->rev_lens == NULL)
			goto out;
	}
	for (i = 0; i < gm->n_revocations; i++) {
		out->revs[i] = gm->revocations[i].data;
		out->rev_lens[i] = gm->revocations[i].len;
	}
	out->n_revs = gm->n_revocations;
	r = 0;
out:
	if (r != 0)
		announce_msg_free(out);
	return r;
}

int
announce_body_check(const uint8_t *body, size_t len,
    const uint8_t node_id[ID_PK_LEN], const uint8_t *posture,
    size_t posture_len, const uint8_t *keys, size_t n_keys)
{
	Sealmesh__PeerAnnouncement *pa = NULL;
	bool known = false;
	int r = SM_ERR_PROTO;

	if (len == 0 || len > ANN_MAX_LEN ||
	    announce_scan_fields(body, len, BODY_MAX_FIELDS) != 0 ||
	    (pa = sealmesh__peer_announcement__unpack(NULL, len, body)) ==
		NULL ||
	    !pa->has_endpoint_id || pa->endpoint_id.len != ID_PK_LEN)
		goto out;
	r = SM_ERR_PERM;
	if (memcmp(pa->endpoint_id.data, node_id, ID_PK_LEN) != 0)
		goto out;
	if (pa->has_security_posture &&
	    (pa->security_posture.len != posture_len ||
		memcmp(pa->security_posture.data, posture, posture_len) != 0))
		goto out;
	if (pa->has_inference_public_key) {
		for (size_t i = 0; i < n_keys; i++) {
			const uint8_t *k = keys + 36 * i;

			known |= pa->inference_public_key.len == 32 &&
			    pa->inference_key_epoch == sm_get_be32(k) &&
			    memcmp(pa->inference_public_key.data, k + 4, 32) ==
				0;
		}
		if (!known)
			goto out;
	}
	r = 0;
out:
	if (pa != NULL)
		sealmesh__peer_announcement__free_unpacked(pa, NULL);
	return r;
}
