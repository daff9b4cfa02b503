/*
 * E2E response stream: secretstream writer, incremental frame parser and
 * decrypting reader. Wire format in rstream.h and doc/PROTOCOL.md.
 */
#include <string.h>

#include <sodium.h>

#include "core/util.h"
#include "crypto/rstream.h"

#define TAG_MESSAGE crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
#define TAG_FINAL crypto_secretstream_xchacha20poly1305_TAG_FINAL

_Static_assert(
    RS_KEY_LEN == crypto_secretstream_xchacha20poly1305_KEYBYTES, "key size");
_Static_assert(
    RS_SSHDR_LEN == crypto_secretstream_xchacha20poly1305_HEADERBYTES,
    "header size");
_Static_assert(
    RS_ABYTES == crypto_secretstream_xchacha20poly1305_ABYTES, "abytes");

enum { P_PREFIX, P_SSHDR, P_CODE, P_LEN, P_BODY, P_DONE };

static const size_t rs2_buckets[RS2_NBUCKETS] = {256, 1024, 4096, 16384, 65536};

_Static_assert(RS2_BUCKET_MAX <= RS_PT_MAX, "v2 bucket fits a chunk");
_Static_assert(sizeof(RS2_AD) - 1 == RS2_AD_LEN, "v2 AD length");

static bool
rs2_is_bucket(size_t b)
{
	for (size_t i = 0; i < RS2_NBUCKETS; i++)
		if (rs2_buckets[i] == b)
			return true;
	return false;
}

size_t
rs2_bucket_for(size_t len)
{
	for (size_t i = 0; i < RS2_NBUCKETS; i++)
		if (RS2_CAP(rs2_buckets[i]) >= len)
			return rs2_buckets[i];
	return RS2_BUCKET_MAX;
}

size_t
rs2_bucket_round(size_t b)
{
	for (size_t i = 0; i < RS2_NBUCKETS; i++)
		if (rs2_buckets[i] >= b)
			return rs2_buckets[i];
	return RS2_BUCKET_MAX;
}
enum { R_HEADER, R_CHUNKS, R_DONE };

/* --- writer --- */

static int
writer_start(struct rs_writer *w, struct buf *out, const uint8_t *key,
    const uint8_t *sshdr, uint8_t version)
{
	uint8_t *p;
	int r;

	memset(w, 0, sizeof(*w));
	buf_init(&w->pt, RS_PT_MAX);
	w->version = version;
	if ((r = buf_reserve(out, RS_PREAMBLE_LEN)) != 0)
		goto out;
	p = buf_tail(out);
	p[0] = RS_MAGIC;
	p[1] = version;
	p[2] = RS_KIND_STREAM;
	if (sshdr == NULL) {
		crypto_secretstream_xchacha20poly1305_init_push(
		    &w->st, p + RS_PREFIX_LEN, key);
	} else {
		/*
		 * init_pull derives exactly the state init_push derives for
		 * the same header (HChaCha20 subkey, counter 1, header nonce);
		 * libsodium has no init_push with a caller's header.
		 */
		memcpy(p + RS_PREFIX_LEN, sshdr, RS_SSHDR_LEN);
		if (crypto_secretstream_xchacha20poly1305_init_pull(
			&w->st, sshdr, key) != 0) {
			r = SM_ERR_INTERNAL;
			goto out;
		}
	}
	buf_advance(out, RS_PREAMBLE_LEN);
	r = 0;
out:
	return r;
}

int
rs_writer_init(
    struct rs_writer *w, struct buf *out, const uint8_t key[RS_KEY_LEN])
{
	return writer_start(w, out, key, NULL, RS_VERSION);
}

int
rs_writer_init_v2(
    struct rs_writer *w, struct buf *out, const uint8_t key[RS_KEY_LEN])
{
	return writer_start(w, out, key, NULL, RS_VERSION2);
}

int
rs_writer_init_v2_det(struct rs_writer *w, struct buf *out,
    const uint8_t key[RS_KEY_LEN], const uint8_t sshdr[RS_SSHDR_LEN])
{
	return writer_start(w, out, key, sshdr, RS_VERSION2);
}

int
rs_writer_init_det(struct rs_writer *w, struct buf *out,
    const uint8_t key[RS_KEY_LEN], const uint8_t sshdr[RS_SSHDR_LEN])
{
	return writer_start(w, out, key, sshdr, RS_VERSION);
}

void
rs_writer_clear(struct rs_writer *w)
{
	buf_clear(&w->pt);
	sodium_memzero(&w->st, sizeof(w->st));
	w->done = false;
}

/* Encrypt w->pt as one frame into 'out' (room already reserved). */
static void
push_frame(struct rs_writer *w, struct buf *out, uint8_t tag)
{
	size_t ptlen = w->pt.len;
	uint8_t *p = buf_tail(out);

	bool v2 = w->version == RS_VERSION2;

	sm_put_be32(p, (uint32_t)(RS_ABYTES + ptlen));
	crypto_secretstream_xchacha20poly1305_push(&w->st, p + RS_FRAME_HDR_LEN,
	    NULL, buf_data(&w->pt), ptlen, v2 ? (const uint8_t *)RS2_AD : NULL,
	    v2 ? RS2_AD_LEN : 0, tag);
	buf_advance(out, RS_FRAME_HDR_LEN + RS_ABYTES + ptlen);
	buf_reset(&w->pt);
	if (tag == TAG_FINAL)
		w->done = true;
}

static size_t
frame_len(size_t ptlen)
{
	return RS_FRAME_HDR_LEN + RS_ABYTES + ptlen;
}

int
rs_write_data(
    struct rs_writer *w, struct buf *out, const uint8_t *data, size_t len)
{
	const uint8_t type = RS_T_DATA;
	size_t off, n, total, full;
	int r;

	if (w->version != RS_VERSION)
		return SM_ERR_INVAL;
	if (w->done)
		return SM_ERR_CLOSED;
	if (len == 0)
		return 0;
	/* Reserve every frame first, so a full 'out' leaves no half write. */
	full = len / RS_DATA_MAX;
	if (full > (SIZE_MAX / 2) / frame_len(1 + RS_DATA_MAX))
		return SM_ERR_TOOBIG;
	total = full * frame_len(1 + RS_DATA_MAX);
	if (len % RS_DATA_MAX != 0)
		total += frame_len(1 + len % RS_DATA_MAX);
	if ((r = buf_reserve(out, total)) != 0)
		return r;
	for (off = 0; off < len; off += n) {
		n = len - off < RS_DATA_MAX ? len - off : RS_DATA_MAX;
		if ((r = buf_append(&w->pt, &type, 1)) != 0 ||
		    (r = buf_append(&w->pt, data + off, n)) != 0) {
			buf_reset(&w->pt);
			return r;
		}
		push_frame(w, out, TAG_MESSAGE);
	}
	return 0;
}

int
rs_write_end(struct rs_writer *w, struct buf *out)
{
	const uint8_t type = RS_T_END;
	int r;

	if (w->version != RS_VERSION)
		return SM_ERR_INVAL;
	if (w->done)
		return SM_ERR_CLOSED;
	if ((r = buf_reserve(out, frame_len(1))) != 0)
		return r;
	if ((r = buf_append(&w->pt, &type, 1)) != 0)
		return r;
	push_frame(w, out, TAG_FINAL);
	return 0;
}

int
rs_write_error(
    struct rs_writer *w, struct buf *out, uint16_t status, const char *reason)
{
	uint8_t hdr[RS_ERROR_HDR_LEN], c;
	size_t i, n = 0;
	int r;

	if (w->version != RS_VERSION)
		return SM_ERR_INVAL;
	if (w->done)
		return SM_ERR_CLOSED;
	if (reason != NULL)
		n = strnlen(reason, RS_REASON_MAX);
	if ((r = buf_reserve(out, frame_len(RS_ERROR_HDR_LEN + n))) != 0)
		return r;
	hdr[0] = RS_T_ERROR;
	hdr[1] = (uint8_t)(status >> 8);
	hdr[2] = (uint8_t)status;
	if ((r = buf_append(&w->pt, hdr, sizeof(hdr))) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		c = (uint8_t)reason[i];
		if (c < 0x20 || c > 0x7e)
			c = '?';
		if ((r = buf_append(&w->pt, &c, 1)) != 0)
			goto out;
	}
	push_frame(w, out, TAG_FINAL);
	r = 0;
out:
	buf_reset(&w->pt);
	return r;
}

/* v2: w->pt = type | n | body (already appended by the caller after the
 * 5-byte header) then zero padding to 'bucket'; push as one frame. */
static int
push_padded(struct rs_writer *w, struct buf *out, size_t bucket, uint8_t tag)
{
	uint8_t *h = buf_data(&w->pt);
	size_t n = w->pt.len - RS2_HDR_LEN;
	int r;

	sm_put_be32(h + 1, (uint32_t)n);
	if ((r = buf_reserve(&w->pt, bucket - w->pt.len)) != 0)
		return r;
	memset(buf_tail(&w->pt), 0, bucket - w->pt.len);
	buf_advance(&w->pt, bucket - w->pt.len);
	push_frame(w, out, tag);
	return 0;
}

int
rs_write_padded(struct rs_writer *w, struct buf *out, uint8_t type,
    size_t bucket, const uint8_t *data, size_t len)
{
	uint8_t hdr[RS2_HDR_LEN] = {type, 0, 0, 0, 0};
	int r;

	if (w->version != RS_VERSION2 || !rs2_is_bucket(bucket) ||
	    len > RS2_CAP(bucket) || (type != RS_T_DATA && type != RS_T_END))
		return SM_ERR_INVAL;
	if (w->done)
		return SM_ERR_CLOSED;
	if ((r = buf_reserve(out, frame_len(bucket))) != 0)
		return r;
	buf_reset(&w->pt);
	if ((r = buf_append(&w->pt, hdr, sizeof(hdr))) != 0 ||
	    (len > 0 && (r = buf_append(&w->pt, data, len)) != 0) ||
	    (r = push_padded(w, out, bucket,
		 type == RS_T_END ? TAG_FINAL : TAG_MESSAGE)) != 0) {
		buf_reset(&w->pt);
		return r;
	}
	return 0;
}

int
rs_write_padded_error(struct rs_writer *w, struct buf *out, size_t bucket,
    uint16_t status, const char *reason)
{
	uint8_t hdr[RS2_HDR_LEN + 2] = {
	    RS_T_ERROR, 0, 0, 0, 0, (uint8_t)(status >> 8), (uint8_t)status};
	size_t i, n = 0;
	uint8_t c;
	int r;

	if (w->version != RS_VERSION2 || !rs2_is_bucket(bucket))
		return SM_ERR_INVAL;
	if (w->done)
		return SM_ERR_CLOSED;
	if (reason != NULL)
		n = strnlen(reason, RS_REASON_MAX);
	if (2 + n > RS2_CAP(bucket))
		n = RS2_CAP(bucket) - 2;
	if ((r = buf_reserve(out, frame_len(bucket))) != 0)
		return r;
	buf_reset(&w->pt);
	if ((r = buf_append(&w->pt, hdr, sizeof(hdr))) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		c = (uint8_t)reason[i];
		if (c < 0x20 || c > 0x7e)
			c = '?';
		if ((r = buf_append(&w->pt, &c, 1)) != 0)
			goto out;
	}
	r = push_padded(w, out, bucket, TAG_FINAL);
out:
	buf_reset(&w->pt);
	return r;
}

int
rs_write_raw(struct rs_writer *w, struct buf *out, const uint8_t *pt,
    size_t len, uint8_t tag)
{
	int r;

	if (len > RS_PT_MAX)
		return SM_ERR_TOOBIG;
	if ((r = buf_reserve(out, frame_len(len))) != 0)
		return r;
	if ((r = buf_append(&w->pt, pt, len)) != 0)
		return r;
	push_frame(w, out, tag);
	w->done = false; /* raw writes may go on past FINAL (tests) */
	return 0;
}

int
rs_write_refusal(struct buf *out, uint8_t code)
{
	const uint8_t p[RS_REFUSAL_LEN] = {
	    RS_MAGIC, RS_VERSION, RS_KIND_REFUSAL, code};

	if (code == 0)
		return SM_ERR_INVAL;
	return buf_append(out, p, sizeof(p));
}

uint8_t
rs_refusal_for(int err)
{
	switch (err) {
	case SM_ERR_NOTFOUND:
		return RS_REFUSE_EPOCH;
	case SM_ERR_STALE:
		return RS_REFUSE_STALE;
	case SM_ERR_REPLAY:
		return RS_REFUSE_REPLAY;
	case SM_ERR_UNAVAIL:
	case SM_ERR_NOMEM:
		return RS_REFUSE_BUSY;
	default:
		return RS_REFUSE_BAD;
	}
}

/* --- parser --- */

void
rs_parser_init(struct rs_parser *p)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->acc, RS_CT_MAX);
	p->state = P_PREFIX;
	p->need = RS_PREFIX_LEN;
	p->max_version = RS_VERSION;
}

void
rs_parser_accept_v2(struct rs_parser *p)
{
	p->max_version = RS_VERSION2;
}

void
rs_parser_clear(struct rs_parser *p)
{
	buf_clear(&p->acc);
	memset(p, 0, sizeof(*p));
}

/*
 * Gather p->need bytes of the next element from in[*pos..len). Returns 1
 * with '*el' set when complete (a view into 'in' when it holds the whole
 * element and nothing is pending, else the accumulator), 0 when 'in' ran
 * out, or a negative error.
 */
static int
take(struct rs_parser *p, const uint8_t *in, size_t len, size_t *pos,
    const uint8_t **el)
{
	size_t n;
	int r;

	if (p->acc.len == 0 && len - *pos >= p->need) {
		*el = in + *pos;
		*pos += p->need;
		return 1;
	}
	n = p->need - p->acc.len;
	if (n > len - *pos)
		n = len - *pos;
	if ((r = buf_append(&p->acc, in + *pos, n)) != 0)
		return r;
	*pos += n;
	if (p->acc.len < p->need)
		return 0;
	*el = buf_data(&p->acc);
	p->acc_served = true;
	return 1;
}

int
rs_parser_feed(struct rs_parser *p, struct rs_frame *f, size_t *used,
    const uint8_t *in, size_t len)
{
	const uint8_t *el = NULL;
	size_t pos = 0;
	uint32_t n;
	int r;

	memset(f, 0, sizeof(*f));
	*used = 0;
	if (p->err != 0)
		return p->err;
	for (;;) {
		if (p->acc_served) {
			buf_reset(&p->acc);
			p->acc_served = false;
		}
		if (p->state == P_DONE) {
			r = pos < len ? SM_ERR_PROTO : SM_ERR_AGAIN;
			goto out;
		}
		if ((r = take(p, in, len, &pos, &el)) <= 0) {
			if (r == 0)
				r = SM_ERR_AGAIN;
			goto out;
		}
		switch (p->state) {
		case P_PREFIX:
			if (el[0] != RS_MAGIC) {
				r = SM_ERR_PROTO;
				goto out;
			}
			if (el[1] == 0 || el[1] > p->max_version) {
				r = SM_ERR_UNSUPP;
				goto out;
			}
			/* A refusal is always in the v1 layout. */
			if (el[2] == RS_KIND_STREAM) {
				p->version = el[1];
				p->state = P_SSHDR;
				p->need = RS_SSHDR_LEN;
			} else if (el[2] == RS_KIND_REFUSAL &&
			    el[1] == RS_VERSION) {
				p->state = P_CODE;
				p->need = 1;
			} else {
				r = SM_ERR_PROTO;
				goto out;
			}
			continue;
		case P_SSHDR:
			f->type = RS_FR_HEADER;
			p->state = P_LEN;
			p->need = RS_FRAME_HDR_LEN;
			break;
		case P_CODE:
			f->type = RS_FR_REFUSAL;
			p->state = P_DONE;
			p->need = 0;
			break;
		case P_LEN:
			n = sm_get_be32(el);
			if (n < RS_CT_MIN) {
				r = SM_ERR_PROTO;
				goto out;
			}
			if (n > RS_CT_MAX) {
				r = SM_ERR_TOOBIG;
				goto out;
			}
			/* v2: every frame is exactly one bucket. */
			if (p->version == RS_VERSION2 &&
			    !rs2_is_bucket(n - RS_ABYTES)) {
				r = SM_ERR_PROTO;
				goto out;
			}
			p->state = P_BODY;
			p->need = n;
			continue;
		case P_BODY:
			f->type = RS_FR_CHUNK;
			f->len = p->need;
			p->state = P_LEN;
			p->need = RS_FRAME_HDR_LEN;
			break;
		default:
			r = SM_ERR_INTERNAL;
			goto out;
		}
		f->p = el;
		if (f->type == RS_FR_HEADER)
			f->len = RS_SSHDR_LEN;
		else if (f->type == RS_FR_REFUSAL)
			f->len = 1;
		r = 0;
		goto out;
	}
out:
	*used = pos;
	if (r != 0 && r != SM_ERR_AGAIN) {
		p->err = r;
		memset(f, 0, sizeof(*f));
	}
	return r;
}

/* --- reader --- */

void
rs_reader_init(struct rs_reader *r, const uint8_t key[RS_KEY_LEN])
{
	memset(r, 0, sizeof(*r));
	memcpy(r->key, key, RS_KEY_LEN);
	rs_parser_init(&r->parser);
	buf_init(&r->pt, RS_PT_MAX);
	r->state = R_HEADER;
}

void
rs_reader_init_v2(struct rs_reader *r, const uint8_t key[RS_KEY_LEN])
{
	rs_reader_init(r, key);
	rs_parser_accept_v2(&r->parser);
}

void
rs_reader_clear(struct rs_reader *r)
{
	rs_parser_clear(&r->parser);
	buf_clear(&r->pt);
	sodium_memzero(r->key, sizeof(r->key));
	sodium_memzero(&r->st, sizeof(r->st));
	r->state = R_HEADER;
	r->err = 0;
}

/*
 * v2 chunk plaintext 'm' (a whole bucket): type | n | body | zero padding.
 * Returns 0 with an event, SM_ERR_AGAIN for a padding frame (no event), or
 * SM_ERR_PROTO.
 */
static int
open_chunk_v2(struct rs_reader *r, struct rs_event *ev, const uint8_t *m,
    size_t n, uint8_t tag)
{
	size_t len, i;

	if (n < RS2_HDR_LEN)
		return SM_ERR_PROTO;
	len = sm_get_be32(m + 1);
	if (len > n - RS2_HDR_LEN ||
	    !sodium_is_zero(m + RS2_HDR_LEN + len, n - RS2_HDR_LEN - len))
		return SM_ERR_PROTO;
	switch (m[0]) {
	case RS_T_DATA:
		if (tag != TAG_MESSAGE)
			return SM_ERR_PROTO;
		if (len == 0)
			return SM_ERR_AGAIN; /* padding frame */
		ev->type = RS_EV_DATA;
		ev->data = m + RS2_HDR_LEN;
		ev->len = len;
		return 0;
	case RS_T_END:
		if (tag != TAG_FINAL)
			return SM_ERR_PROTO;
		ev->type = RS_EV_END;
		ev->data = m + RS2_HDR_LEN;
		ev->len = len;
		r->state = R_DONE;
		return 0;
	case RS_T_ERROR:
		if (tag != TAG_FINAL || len < 2 || len - 2 > RS_REASON_MAX)
			return SM_ERR_PROTO;
		for (i = RS2_HDR_LEN + 2; i < RS2_HDR_LEN + len; i++)
			if (m[i] < 0x20 || m[i] > 0x7e)
				return SM_ERR_PROTO;
		ev->type = RS_EV_ERROR;
		ev->status =
		    (uint16_t)(m[RS2_HDR_LEN] << 8 | m[RS2_HDR_LEN + 1]);
		memcpy(ev->reason, m + RS2_HDR_LEN + 2, len - 2);
		ev->reason[len - 2] = '\0';
		r->state = R_DONE;
		return 0;
	default:
		return SM_ERR_PROTO;
	}
}

/* Decrypt one chunk and turn it into an event. */
static int
open_chunk(struct rs_reader *r, struct rs_event *ev, const struct rs_frame *f)
{
	unsigned long long mlen = 0;
	const uint8_t *m;
	uint8_t tag = 0;
	size_t i, n;
	int ret;

	bool v2 = r->parser.version == RS_VERSION2;

	buf_reset(&r->pt);
	if ((ret = buf_reserve(&r->pt, f->len - RS_ABYTES)) != 0)
		return ret;
	if (crypto_secretstream_xchacha20poly1305_pull(&r->st, buf_tail(&r->pt),
		&mlen, &tag, f->p, f->len, v2 ? (const uint8_t *)RS2_AD : NULL,
		v2 ? RS2_AD_LEN : 0) != 0)
		return SM_ERR_DECRYPT;
	buf_advance(&r->pt, (size_t)mlen);
	m = buf_data(&r->pt);
	n = (size_t)mlen;
	if (v2)
		return open_chunk_v2(r, ev, m, n, tag);
	switch (m[0]) {
	case RS_T_DATA:
		if (tag != TAG_MESSAGE || n < 2)
			return SM_ERR_PROTO;
		ev->type = RS_EV_DATA;
		ev->data = m + 1;
		ev->len = n - 1;
		return 0;
	case RS_T_END:
		if (tag != TAG_FINAL || n != 1)
			return SM_ERR_PROTO;
		ev->type = RS_EV_END;
		r->state = R_DONE;
		return 0;
	case RS_T_ERROR:
		if (tag != TAG_FINAL || n < RS_ERROR_HDR_LEN ||
		    n - RS_ERROR_HDR_LEN > RS_REASON_MAX)
			return SM_ERR_PROTO;
		for (i = RS_ERROR_HDR_LEN; i < n; i++)
			if (m[i] < 0x20 || m[i] > 0x7e)
				return SM_ERR_PROTO;
		ev->type = RS_EV_ERROR;
		ev->status = (uint16_t)(m[1] << 8 | m[2]);
		memcpy(ev->reason, m + RS_ERROR_HDR_LEN, n - RS_ERROR_HDR_LEN);
		ev->reason[n - RS_ERROR_HDR_LEN] = '\0';
		r->state = R_DONE;
		return 0;
	default:
		return SM_ERR_PROTO;
	}
}

int
rs_reader_feed(struct rs_reader *r, struct rs_event *ev, size_t *used,
    const uint8_t *in, size_t len)
{
	struct rs_frame f;
	size_t pos = 0, n;
	int ret;

	memset(ev, 0, sizeof(*ev));
	*used = 0;
	if (r->err != 0)
		return r->err;
	for (;;) {
		if (r->state == R_DONE) {
			ret = pos < len ? SM_ERR_PROTO : SM_ERR_AGAIN;
			goto out;
		}
		ret = rs_parser_feed(&r->parser, &f, &n, in + pos, len - pos);
		pos += n;
		if (ret != 0)
			goto out;
		switch (f.type) {
		case RS_FR_HEADER:
			if (crypto_secretstream_xchacha20poly1305_init_pull(
				&r->st, f.p, r->key) != 0) {
				ret = SM_ERR_DECRYPT;
				goto out;
			}
			sodium_memzero(r->key, sizeof(r->key));
			r->state = R_CHUNKS;
			continue;
		case RS_FR_REFUSAL:
			ev->type = RS_EV_REFUSED;
			ev->status = f.p[0];
			r->state = R_DONE;
			goto out;
		case RS_FR_CHUNK:
			ret = open_chunk(r, ev, &f);
			if (ret == SM_ERR_AGAIN) {
				/* v2 padding: no event, read on. */
				memset(ev, 0, sizeof(*ev));
				continue;
			}
			goto out;
		}
		ret = SM_ERR_INTERNAL;
		goto out;
	}
out:
	*used = pos;
	if (ret != 0 && ret != SM_ERR_AGAIN) {
		r->err = ret;
		buf_reset(&r->pt);
		memset(ev, 0, sizeof(*ev));
	}
	return ret;
}

int
rs_reader_finish(const struct rs_reader *r)
{
	if (r->err != 0)
		return r->err;
	return r->state == R_DONE ? 0 : SM_ERR_CLOSED;
}
