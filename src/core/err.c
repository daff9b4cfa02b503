#include "core/err.h"

const char *
sm_strerror(int r)
{
	switch (r) {
	case SM_OK:
		return "success";
	case SM_ERR_NOMEM:
		return "out of memory";
	case SM_ERR_INVAL:
		return "invalid input";
	case SM_ERR_TOOBIG:
		return "too large";
	case SM_ERR_IO:
		return "I/O error";
	case SM_ERR_DECRYPT:
		return "decryption failed";
	case SM_ERR_VERIFY:
		return "verification failed";
	case SM_ERR_NOTFOUND:
		return "not found";
	case SM_ERR_PERM:
		return "permission denied";
	case SM_ERR_PROTO:
		return "protocol error";
	case SM_ERR_AGAIN:
		return "incomplete input";
	case SM_ERR_TIMEOUT:
		return "timed out";
	case SM_ERR_CLOSED:
		return "closed";
	case SM_ERR_REPLAY:
		return "replayed message";
	case SM_ERR_UNSUPP:
		return "unsupported";
	case SM_ERR_STALE:
		return "stale";
	case SM_ERR_UNAVAIL:
		return "unavailable";
	case SM_ERR_BUSY:
		return "busy";
	case SM_ERR_INTERNAL:
		return "internal error";
	}
	return "unknown error";
}
