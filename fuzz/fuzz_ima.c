/* Fuzz the IMA list parser, replay and the measurement section decoder:
 * no crash, entries stay inside the input, and replay agrees with stepping
 * through the entries one by one. The first byte picks the target. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "attest/ima.h"
#include "attest/measure.h"

static void
ima(const uint8_t *data, size_t size)
{
	uint8_t pcr[IMA_DIGEST_LEN], fin[IMA_DIGEST_LEN];
	struct ima_entry e;
	size_t off = 0, n = 0, prefix, cnt;
	int r;

	ima_pcr_init(pcr);
	while (off < size) {
		size_t before = off;

		if (ima_next(data, size, &off, &e) != 0)
			break;
		if (off <= before || off > size || e.data < data ||
		    e.data + e.data_len > data + size ||
		    (const uint8_t *)e.path + e.path_len >= data + size ||
		    e.path[e.path_len] != '\0')
			__builtin_trap();
		if (e.pcr == IMA_PCR && ima_pcr_extend(pcr, &e) != 0)
			__builtin_trap();
		n++;
	}
	r = ima_replay(data, size, pcr, &prefix, &cnt, fin);
	if (off == size && n <= IMA_ENTRIES_MAX) {
		if (r != 0 || cnt != n || memcmp(fin, pcr, sizeof(pcr)) != 0 ||
		    prefix > n)
			__builtin_trap();
	} else if (r == 0)
		__builtin_trap();
}

static void
meas(const uint8_t *data, size_t size)
{
	struct att_meas m;
	struct buf b;

	if (att_meas_parse(data, size, &m) != 0)
		return;
	buf_init(&b, ATT_MEAS_MAX);
	if (att_meas_write(&m, &b) != 0 || b.len != size ||
	    memcmp(buf_data(&b), data, size) != 0)
		__builtin_trap();
	buf_clear(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		meas(data + 1, size - 1);
	else
		ima(data + 1, size - 1);
	return 0;
}
