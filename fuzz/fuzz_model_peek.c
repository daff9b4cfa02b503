/* Fuzz the JSON model peek that every API request goes through. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http/oai.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct oai_peek pk;

	if (oai_peek(data, size, &pk) == 0 &&
	    (pk.model[0] == '\0' || strlen(pk.model) > OAI_MODEL_MAX))
		__builtin_trap();
	return 0;
}
