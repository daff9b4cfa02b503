/*
 * AK pins: node id -> SHA-256 of the node's attestation key (its TPM name
 * digest). Trust on first use, but the first use is rooted: a pin is added
 * only after the EK chain verified and credential activation proved the AK
 * lives in that EK's TPM (att_activation_finish). A different AK for a
 * pinned node id is refused and reported (ATT_R_AK_CHANGED) until an
 * operator removes the pin.
 *
 * In memory, with optional file persistence: one line per pin,
 * "<node id hex> <ak hash hex>\n", written to a temporary file (0600) and
 * renamed. Not thread-safe: one owner (the verifier worker) uses it.
 */
#ifndef SM_ATTEST_PINS_H
#define SM_ATTEST_PINS_H

#include <stddef.h>
#include <stdint.h>

#include "attest/blob.h"
#include "core/err.h"

#define ATT_PINS_MAX 4096

struct att_pins;

int att_pins_new(struct att_pins **out) SM_MUST_CHECK;
void att_pins_free(struct att_pins *p);
/* 0 and '*ak' set, or SM_ERR_NOTFOUND. */
int att_pins_lookup(const struct att_pins *p,
    const uint8_t node_id[ATT_NODE_ID_LEN],
    uint8_t ak[ATT_HASH_LEN]) SM_MUST_CHECK;
/*
 * Pin 'ak' for 'node_id'. 0 (also when the same pin exists), SM_ERR_PERM
 * when another AK is pinned, SM_ERR_TOOBIG past ATT_PINS_MAX.
 */
int att_pins_add(struct att_pins *p, const uint8_t node_id[ATT_NODE_ID_LEN],
    const uint8_t ak[ATT_HASH_LEN]) SM_MUST_CHECK;
/* Remove a pin (operator action). 0 or SM_ERR_NOTFOUND. */
int att_pins_remove(
    struct att_pins *p, const uint8_t node_id[ATT_NODE_ID_LEN]) SM_MUST_CHECK;
size_t att_pins_count(const struct att_pins *p);
/*
 * Add the pins in 'path' (a missing file is empty). SM_ERR_INVAL on a bad
 * line, SM_ERR_PERM on conflicting pins, SM_ERR_IO.
 */
int att_pins_load(struct att_pins *p, const char *path) SM_MUST_CHECK;
/* Write all pins to 'path' atomically, mode 0600. 0 or SM_ERR_IO. */
int att_pins_save(const struct att_pins *p, const char *path) SM_MUST_CHECK;

#endif
