/* Fuzz the TCG event log parser and replay: no crash, no read past the
 * input, and a parse is deterministic (same bytes, same PCRs). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "attest/eventlog.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evlog_info a, b;
	int ra, rb;

	ra = evlog_replay(data, size, &a);
	rb = evlog_replay(data, size, &b);
	if (ra != rb || memcmp(&a, &b, sizeof(a)) != 0)
		__builtin_trap();
	if (ra != 0 && (a.nevents != 0 || a.secure_boot != TRI_UNKNOWN))
		__builtin_trap(); /* nothing on failure */
	if (ra == 0 && a.nevents > EVLOG_EVENTS_MAX)
		__builtin_trap();
	return 0;
}
