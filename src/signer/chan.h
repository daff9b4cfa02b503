/*
 * Whole reads and writes on a blocking worker ↔ signer socket
 * (signer/proto.h): both sides use them, EINTR retried, SIGPIPE never raised.
 */
#ifndef SM_SIGNER_CHAN_H
#define SM_SIGNER_CHAN_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Exactly 'n' bytes, or SM_ERR_CLOSED (peer gone or an error). */
int chan_read(int fd, uint8_t *p, size_t n) SM_MUST_CHECK;
int chan_write(int fd, const uint8_t *p, size_t n) SM_MUST_CHECK;

#endif
