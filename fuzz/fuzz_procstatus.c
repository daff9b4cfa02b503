/* Fuzz the /proc/PID/status and /proc/PID/limits parsers
 * (src/harden/inspect.c): no crash, no read past 'size' (the input is copied
 * to an exact-size heap block so ASan sees any overrun), and a parse that
 * succeeds leaves only values the kernel could print. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harden/harden.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proc_facts f;
	char *text = malloc(size ? size : 1);

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	proc_facts_init(&f);
	if (procstatus_parse(text, size, &f) == 0) {
		if (f.seccomp_mode < -1 || f.seccomp_mode > 2 ||
		    f.no_new_privs > TRI_TRUE || f.tracer_pid < -1 ||
		    f.seccomp_filters < -1)
			__builtin_trap();
	}
	proc_facts_init(&f);
	if (proclimits_parse(text, size, &f) == 0) {
		if (f.core_soft < -1 || f.core_hard < -1 ||
		    (f.core_soft == -1) != (f.core_hard == -1))
			__builtin_trap();
	}
	if (size > PROCSTATUS_MAX &&
	    (procstatus_parse(text, size, &f) != SM_ERR_TOOBIG))
		__builtin_trap();
	free(text);
	return 0;
}
