/*
 * Worker side of the signer protocol: blocking calls over two sockets.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "core/log.h"
#include "core/util.h"
#include "signer/client.h"
#include "signer/chan.h"
#include "signer/proto.h"

struct chan {
	int fd;
	bool dead;
	pthread_mutex_t mu;
};

struct signer_client {
	struct chan ch[2]; /* [0] fast, [1] slow */
};

int
signer_client_new(struct signer_client **out, int fast_fd, int slow_fd)
{
	struct signer_client *c;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return SM_ERR_NOMEM;
	c->ch[0].fd = fast_fd;
	c->ch[1].fd = slow_fd;
	pthread_mutex_init(&c->ch[0].mu, NULL);
	pthread_mutex_init(&c->ch[1].mu, NULL);
	*out = c;
	return 0;
}

void
signer_client_free(struct signer_client *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < 2; i++) {
		if (c->ch[i].fd >= 0)
			close(c->ch[i].fd);
		pthread_mutex_destroy(&c->ch[i].mu);
	}
	free(c);
}

int
signer_client_call(struct signer_client *c, bool slow, uint8_t op,
    const uint8_t *body, size_t len, struct buf *resp)
{
	struct chan *ch = &c->ch[slow ? 1 : 0];
	uint8_t hdr[SIGNER_HDR_LEN];
	struct signer_frame f;
	int r;

	if ((r = signer_hdr_write(hdr, op, 0, len, SIGNER_REQ_MAX)) != 0)
		return r;
	pthread_mutex_lock(&ch->mu);
	r = SM_ERR_CLOSED;
	if (ch->dead)
		goto out;
	if ((r = chan_write(ch->fd, hdr, sizeof(hdr))) != 0 ||
	    (r = chan_write(ch->fd, body, len)) != 0 ||
	    (r = chan_read(ch->fd, hdr, sizeof(hdr))) != 0)
		goto dead;
	if ((r = signer_hdr_parse(hdr, SIGNER_RESP_MAX, false, &f)) != 0 ||
	    f.op != op) {
		r = SM_ERR_PROTO;
		goto dead;
	}
	if ((r = buf_reserve(resp, f.body_len)) != 0) {
		/* The answer must still be drained to keep the stream whole. */
		uint8_t sink[4096];

		for (size_t n = f.body_len; n > 0;) {
			size_t k = n < sizeof(sink) ? n : sizeof(sink);

			if (chan_read(ch->fd, sink, k) != 0)
				goto dead;
			n -= k;
		}
		goto out;
	}
	if ((r = chan_read(ch->fd, buf_tail(resp), f.body_len)) != 0)
		goto dead;
	buf_advance(resp, f.body_len);
	r = f.status != 0 ? -(int)f.status : 0;
	goto out;
dead:
	ch->dead = true;
	log_error("privsep: the signer is gone (%s on %s)", sm_strerror(r),
	    signer_op_str(op));
out:
	pthread_mutex_unlock(&ch->mu);
	return r;
}

/* A call whose answer has exactly 'n' bytes, into 'out'. */
static int
call_fixed(struct signer_client *c, bool slow, uint8_t op, const uint8_t *body,
    size_t len, uint8_t *out, size_t n)
{
	struct buf b;
	int r;

	buf_init(&b, n);
	if ((r = signer_client_call(c, slow, op, body, len, &b)) == 0 &&
	    b.len != n)
		r = SM_ERR_PROTO;
	if (r == 0)
		memcpy(out, buf_data(&b), n);
	buf_clear(&b);
	return r;
}

int
signer_client_hello(struct signer_client *c, struct signer_hello *out)
{
	struct buf b;
	const uint8_t *p;
	size_t plen;
	int r;

	memset(out, 0, sizeof(*out));
	buf_init(&b, SIGNER_HELLO_FIXED + 1024);
	if ((r = signer_client_call(c, false, SIGNER_OP_HELLO, NULL, 0, &b)) !=
	    0)
		goto out;
	r = SM_ERR_PROTO;
	if (b.len < SIGNER_HELLO_FIXED || (p = buf_data(&b)) == NULL)
		goto out;
	memcpy(out->node_pk, p, ID_PK_LEN);
	memcpy(out->owner_pk, p + 32, ID_PK_LEN);
	out->owner = (p[64] & SIGNER_HELLO_OWNER) != 0;
	out->can_measure = (p[64] & SIGNER_HELLO_MEASURE) != 0;
	out->kind = p[65];
	out->level = p[66];
	out->tpm_manufacturer = sm_get_be32(p + 67);
	plen = (size_t)p[71] << 8 | p[72];
	if (b.len != SIGNER_HELLO_FIXED + plen ||
	    posture_parse(p + SIGNER_HELLO_FIXED, plen, &out->posture) != 0)
		goto out;
	r = 0;
out:
	buf_clear(&b);
	return r;
}

static int
sign_with(void *c, uint8_t key, const uint8_t *msg, size_t len,
    uint8_t sig[ID_SIG_LEN])
{
	uint8_t *body;
	int r;

	if (len == 0 || len + 1 > SIGNER_REQ_MAX)
		return SM_ERR_TOOBIG;
	if ((body = malloc(len + 1)) == NULL)
		return SM_ERR_NOMEM;
	body[0] = key;
	memcpy(body + 1, msg, len);
	r = call_fixed(
	    c, false, SIGNER_OP_SIGN, body, len + 1, sig, ID_SIG_LEN);
	free(body);
	return r;
}

int
signer_sign_identity(
    void *c, const uint8_t *msg, size_t len, uint8_t sig[ID_SIG_LEN])
{
	return sign_with(c, SIGNER_KEY_IDENTITY, msg, len, sig);
}

int
signer_sign_owner(
    void *c, const uint8_t *msg, size_t len, uint8_t sig[ID_SIG_LEN])
{
	return sign_with(c, SIGNER_KEY_OWNER, msg, len, sig);
}

/* --- the inference keyring ---------------------------------------------- */

static int
inf_shared(void *ctx, uint32_t epoch, const uint8_t peer_pk[INFKEY_PK_LEN],
    uint8_t shared[INFKEY_SHARED_LEN], uint8_t self_pk[INFKEY_PK_LEN])
{
	uint8_t req[4 + INFKEY_PK_LEN], ans[INFKEY_SHARED_LEN + INFKEY_PK_LEN];
	int r;

	sodium_memzero(shared, INFKEY_SHARED_LEN);
	memset(self_pk, 0, INFKEY_PK_LEN);
	sm_put_be32(req, epoch);
	memcpy(req + 4, peer_pk, INFKEY_PK_LEN);
	r = call_fixed(
	    ctx, false, SIGNER_OP_INF_DH, req, sizeof(req), ans, sizeof(ans));
	if (r == 0) {
		memcpy(shared, ans, INFKEY_SHARED_LEN);
		memcpy(self_pk, ans + INFKEY_SHARED_LEN, INFKEY_PK_LEN);
	}
	sodium_memzero(ans, sizeof(ans));
	return r;
}

static int
inf_state(void *ctx, struct infkey_pub pubs[2], size_t *n, uint64_t *next_in)
{
	struct buf b;
	const uint8_t *p;
	int r;

	*n = 0;
	*next_in = 0;
	buf_init(&b, 1 + 2 * 36 + 4);
	if ((r = signer_client_call(
		 ctx, false, SIGNER_OP_INF_STATE, NULL, 0, &b)) != 0)
		goto out;
	r = SM_ERR_PROTO;
	if ((p = buf_data(&b)) == NULL || (p[0] != 1 && p[0] != 2) ||
	    b.len != 1 + (size_t)p[0] * 36 + 4)
		goto out;
	for (size_t i = 0; i < p[0]; i++) {
		pubs[i].epoch = sm_get_be32(p + 1 + 36 * i);
		memcpy(pubs[i].pk, p + 5 + 36 * i, INFKEY_PK_LEN);
	}
	*n = p[0];
	*next_in = sm_get_be32(p + 1 + 36 * (size_t)p[0]);
	r = 0;
out:
	buf_clear(&b);
	return r;
}

int
signer_infkey_new(struct signer_client *c, struct infkey **out)
{
	struct infkey_remote rem = {
	    .shared = inf_shared,
	    .state = inf_state,
	    .ctx = c,
	};

	return infkey_new_remote(out, &rem, sm_now_ms() / 1000);
}

/* --- the attestation provider ------------------------------------------- */

struct remote_prov {
	struct att_provider base;
	struct signer_client *c;
	uint32_t manufacturer;
};

static int
rp_evidence(struct att_provider *p, const uint8_t *blob, size_t blob_len,
    struct buf *out)
{
	struct remote_prov *rp = (struct remote_prov *)p;

	return signer_client_call(
	    rp->c, true, SIGNER_OP_ATT_EVIDENCE, blob, blob_len, out);
}

static int
rp_answer(struct att_provider *p, const uint8_t nonce[ATT_NONCE_LEN],
    const uint8_t blob_hash[ATT_HASH_LEN], struct buf *out)
{
	struct remote_prov *rp = (struct remote_prov *)p;
	uint8_t req[ATT_NONCE_LEN + ATT_HASH_LEN];

	memcpy(req, nonce, ATT_NONCE_LEN);
	memcpy(req + ATT_NONCE_LEN, blob_hash, ATT_HASH_LEN);
	return signer_client_call(
	    rp->c, true, SIGNER_OP_ATT_ANSWER, req, sizeof(req), out);
}

static int
rp_measure(struct att_provider *p, const uint8_t nonce[ATT_NONCE_LEN],
    const uint8_t blob_hash[ATT_HASH_LEN], uint32_t ima_from, struct buf *out)
{
	struct remote_prov *rp = (struct remote_prov *)p;
	uint8_t req[ATT_NONCE_LEN + ATT_HASH_LEN + 4];

	memcpy(req, nonce, ATT_NONCE_LEN);
	memcpy(req + ATT_NONCE_LEN, blob_hash, ATT_HASH_LEN);
	sm_put_be32(req + ATT_NONCE_LEN + ATT_HASH_LEN, ima_from);
	return signer_client_call(
	    rp->c, true, SIGNER_OP_ATT_MEASURE, req, sizeof(req), out);
}

static int
rp_activate(struct att_provider *p, const uint8_t *cred, size_t cred_len,
    const uint8_t *seed, size_t seed_len, uint8_t secret[ATT_SECRET_LEN])
{
	struct remote_prov *rp = (struct remote_prov *)p;
	uint8_t req[4 + 2 * SIGNER_CRED_MAX];

	if (cred_len == 0 || cred_len > SIGNER_CRED_MAX || seed_len == 0 ||
	    seed_len > SIGNER_CRED_MAX)
		return SM_ERR_INVAL;
	req[0] = (uint8_t)(cred_len >> 8);
	req[1] = (uint8_t)cred_len;
	memcpy(req + 2, cred, cred_len);
	req[2 + cred_len] = (uint8_t)(seed_len >> 8);
	req[3 + cred_len] = (uint8_t)seed_len;
	memcpy(req + 4 + cred_len, seed, seed_len);
	return call_fixed(rp->c, true, SIGNER_OP_ATT_ACTIVATE, req,
	    4 + cred_len + seed_len, secret, ATT_SECRET_LEN);
}

static void
rp_describe(struct att_provider *p, struct att_blob *b)
{
	struct remote_prov *rp = (struct remote_prov *)p;

	b->provider = p->kind;
	b->level = p->level;
	b->tpm_manufacturer = rp->manufacturer;
}

static void
rp_free(struct att_provider *p)
{
	free(p);
}

static const struct att_provider_ops rp_ops = {
    .evidence = rp_evidence,
    .answer = rp_answer,
    .activate = rp_activate,
    .describe = rp_describe,
    .free = rp_free,
    .measure = rp_measure,
};

static const struct att_provider_ops rp_ops_nomeasure = {
    .evidence = rp_evidence,
    .answer = rp_answer,
    .activate = rp_activate,
    .describe = rp_describe,
    .free = rp_free,
};

int
signer_provider_new(struct signer_client *c, const struct signer_hello *h,
    struct att_provider **out)
{
	struct remote_prov *rp;

	*out = NULL;
	if (h->kind == ATT_PROV_NONE)
		return SM_ERR_NOTFOUND;
	if ((rp = calloc(1, sizeof(*rp))) == NULL)
		return SM_ERR_NOMEM;
	rp->base.ops = h->can_measure ? &rp_ops : &rp_ops_nomeasure;
	rp->base.kind = h->kind;
	rp->base.level = h->level;
	rp->c = c;
	rp->manufacturer = h->tpm_manufacturer;
	*out = &rp->base;
	return 0;
}
