/*
 * AK pins: node id -> SHA-256 of the node's attestation key (its TPM name
 * digest). Trust on first use, but the first use is rooted: a pin is added
 * only after the EK chain verified and credential activation proved the AK
 * lives in that EK's TPM (att_activation_finish). A different AK for a
 * pinned node id is refused and reported (ATT_R_AK_CHANGED) until an
 * operator removes the pin.
 *
 * One AK, one EK, one node id: an AK or EK already pinned for one node id
 * is refused for any other (ATT_R_AK_PINNED_ELSEWHERE, ATT_R_EK_PINNED_
 * ELSEWHERE) until an operator runs `sealmesh attest --forget NODE_ID`.
 *
 * In memory, with optional file persistence: one line per pin,
 * "<node id hex> <ak hash hex> [<ek spki hash hex>]\n" (two-column lines
 * from older versions load; they learn their EK at the next activation),
 * written to a temporary file (0600) and renamed. Not thread-safe: one owner
 * (the verifier worker) uses it.
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
/*
 * The same with the EK (SHA-256 of its SubjectPublicKeyInfo DER; NULL: not
 * known). One AK, one EK, one node id: SM_ERR_PERM also when this AK or this
 * EK is already pinned for another node id.
 */
int att_pins_add_ek(struct att_pins *p, const uint8_t node_id[ATT_NODE_ID_LEN],
    const uint8_t ak[ATT_HASH_LEN],
    const uint8_t ek[ATT_HASH_LEN]) SM_MUST_CHECK;

#define ATT_PIN_AK 1
#define ATT_PIN_EK 2
/*
 * Who holds this AK or EK (either may be NULL): ATT_PIN_AK or ATT_PIN_EK
 * with '*node_id' set to the owner, or 0 when neither is pinned.
 */
int att_pins_owner(const struct att_pins *p, const uint8_t ak[ATT_HASH_LEN],
    const uint8_t ek[ATT_HASH_LEN], uint8_t node_id[ATT_NODE_ID_LEN]);
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

/*
 * Serialise edits of the pins file between the node and `sealmesh attest
 * --forget`: an exclusive flock on "<path>.lock" (created 0600). A file
 * descriptor (>= 0) for att_pins_unlock, or a negative SM_ERR_*.
 */
int att_pins_lock(const char *path) SM_MUST_CHECK;
void att_pins_unlock(int fd);

#endif
