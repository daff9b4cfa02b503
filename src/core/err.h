/* Error codes: every fallible function returns 0 or a negative SM_ERR_*. */
#ifndef SM_CORE_ERR_H
#define SM_CORE_ERR_H

#define SM_MUST_CHECK __attribute__((warn_unused_result))

enum {
	SM_OK = 0,
	SM_ERR_NOMEM = -1, /* allocation failed */
	SM_ERR_INVAL = -2, /* invalid argument or malformed input */
	SM_ERR_TOOBIG = -3, /* input exceeds a configured maximum */
	SM_ERR_IO = -4, /* system call failed, see errno/log */
	SM_ERR_DECRYPT = -5, /* authentication or decryption failed */
	SM_ERR_VERIFY = -6, /* signature or proof did not verify */
	SM_ERR_NOTFOUND = -7, /* no such item */
	SM_ERR_PERM = -8, /* refused: permissions or policy */
	SM_ERR_PROTO = -9, /* peer violated the protocol */
	SM_ERR_AGAIN = -10, /* need more input */
	SM_ERR_TIMEOUT = -11, /* operation timed out */
	SM_ERR_CLOSED = -12, /* connection or stream closed */
	SM_ERR_REPLAY = -13, /* replayed message */
	SM_ERR_UNSUPP = -14, /* unsupported version or feature */
	SM_ERR_STALE = -15, /* too old */
	SM_ERR_UNAVAIL = -16, /* no eligible target right now */
	SM_ERR_INTERNAL = -17, /* bug: should not happen */
	SM_ERR_BUSY = -18, /* at a limit, queued too long or queue full */
};

/* Static text for an SM_ERR_* code; never NULL. */
const char *sm_strerror(int r);

#endif
