/*
 * libFuzzer target for the response-stream decoder (crypto/rstream.c).
 * First byte picks the mode, second the feed slice size:
 *   bit 0 clear: the rest is a response stream, fed to a reader with a
 *                fixed key in slices, as a client would.
 *   bit 0 set:   the rest is a list of chunks (tag byte, length byte,
 *                plaintext) written with the fixed key and read back, so
 *                the checks after decryption are reached.
 *   bit 1 set:   response stream v2 (padded frames): the reader accepts v2;
 *                in write mode chunks are v2 frames (low bits of the tag
 *                byte: 0 DATA, 1 END, 2 ERROR, 3 a raw 256-byte plaintext
 *                to reach the v2 layout checks; bits 2-4 pick the bucket).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/buf.h"
#include "crypto/rstream.h"

static uint8_t key[RS_KEY_LEN];
static uint8_t sshdr[RS_SSHDR_LEN];

static int v2;

static void
read_back(const uint8_t *in, size_t len, size_t step)
{
	struct rs_reader rd;
	struct rs_event ev;
	size_t off, n, used, got = 0;
	int r = 0, terminal = 0;

	if (v2)
		rs_reader_init_v2(&rd, key);
	else
		rs_reader_init(&rd, key);
	for (off = 0; off < len && r >= 0; off += n) {
		const uint8_t *p = in + off;
		size_t left;

		n = len - off < step ? len - off : step;
		for (left = n; left > 0;) {
			r = rs_reader_feed(&rd, &ev, &used, p, left);
			if (used > left)
				abort();
			p += used;
			left -= used;
			if (r == SM_ERR_AGAIN) {
				if (left != 0)
					abort();
				r = 0;
				break;
			}
			if (r < 0)
				break;
			if (terminal)
				abort(); /* an event after END/ERROR/REFUSED */
			if (ev.type == RS_EV_DATA) {
				if (ev.len == 0 || ev.len > RS_DATA_MAX)
					abort();
				got += ev.len;
			} else {
				if (ev.type == RS_EV_END &&
				    ev.len > (v2 ? RS2_CAP(RS2_BUCKET_MAX) : 0))
					abort();
				terminal = 1;
			}
		}
	}
	if (rs_reader_finish(&rd) == 0 && !terminal)
		abort();
	(void)got;
	rs_reader_clear(&rd);
}

static void
write_v2(const uint8_t *data, size_t size, size_t step)
{
	static const size_t buckets[] = {256, 1024, 4096, 16384, 65536, 300};
	uint8_t raw[256];
	struct rs_writer wr;
	struct buf w;
	size_t pos, n, b;
	int r;

	buf_init(&w, 8 * RS_FRAME_MAX);
	if (rs_writer_init_v2_det(&wr, &w, key, sshdr) != 0)
		abort();
	for (pos = 2; pos + 2 <= size; pos += 2 + n) {
		n = data[pos + 1];
		if (n > size - pos - 2)
			n = size - pos - 2;
		b = buckets[(data[pos] >> 2) % 6];
		switch (data[pos] & 3) {
		case 0:
		case 1:
			r = rs_write_padded(&wr, &w,
			    (data[pos] & 3) ? RS_T_END : RS_T_DATA, b,
			    data + pos + 2, n);
			break;
		case 2:
			r = rs_write_padded_error(&wr, &w, b, 500, "x");
			break;
		default:
			memset(raw, 0, sizeof(raw));
			memcpy(raw, data + pos + 2, n);
			r = rs_write_raw(
			    &wr, &w, raw, sizeof(raw), (data[pos] >> 5) & 3);
			break;
		}
		if (r == SM_ERR_INVAL)
			continue; /* refused by the writer: nothing written */
		if (r != 0)
			break;
	}
	read_back(buf_data(&w), w.len, step);
	rs_writer_clear(&wr);
	buf_clear(&w);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct rs_writer wr;
	struct buf w;
	size_t step, pos, n;

	if (!ready) {
		if (sodium_init() < 0)
			abort();
		for (n = 0; n < RS_KEY_LEN; n++)
			key[n] = (uint8_t)(0xa0 + n);
		for (n = 0; n < RS_SSHDR_LEN; n++)
			sshdr[n] = (uint8_t)(0xe0 + n);
		ready = 1;
	}
	if (size < 2 || size > 4 * RS_FRAME_MAX)
		return 0;
	step = (size_t)data[1] + 1;
	v2 = (data[0] & 2) != 0;
	if ((data[0] & 1) == 0) {
		read_back(data + 2, size - 2, step);
		return 0;
	}
	if (v2) {
		write_v2(data, size, step);
		return 0;
	}
	buf_init(&w, 8 * RS_FRAME_MAX);
	if (rs_writer_init_det(&wr, &w, key, sshdr) != 0)
		abort();
	for (pos = 2; pos + 2 <= size; pos += 2 + n) {
		n = data[pos + 1];
		if (n > size - pos - 2)
			n = size - pos - 2;
		if (rs_write_raw(&wr, &w, data + pos + 2, n, data[pos] & 3) !=
		    0)
			break;
	}
	read_back(buf_data(&w), w.len, step);
	rs_writer_clear(&wr);
	buf_clear(&w);
	return 0;
}
