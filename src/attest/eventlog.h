/*
 * TCG PC Client event log (measured boot), crypto-agile format, as the
 * kernel exposes it in /sys/kernel/security/tpm0/binary_bios_measurements.
 * No I/O: the caller hands in the bytes. Attacker-facing (a host sends its
 * log to verifiers): every length is checked against what remains and
 * against the caps below.
 *
 * Layout (TCG PC Client Platform Firmware Profile, section 10; all integers
 * little-endian):
 *   first event, TCG_PCClientPCREvent (SHA-1 layout):
 *     u32 pcr (0) | u32 type (EV_NO_ACTION) | u8 digest[20] (zero) |
 *     u32 size | TCG_EfiSpecIDEvent:
 *       "Spec ID Event03\0" | u32 platformClass | u8 minor | u8 major (2) |
 *       u8 errata | u8 uintnSize | u32 nalgs | {u16 alg, u16 size}[nalgs] |
 *       u8 vendorInfoSize | vendorInfo
 *   then TCG_PCR_EVENT2, repeated:
 *     u32 pcr | u32 type | u32 count | {u16 alg, digest[size of alg]}[count] |
 *     u32 size | event data
 *
 * Replay extends the SHA-256 bank: PCR[i] = SHA-256(PCR[i] || digest) for
 * every event but EV_NO_ACTION. A "StartupLocality" EV_NO_ACTION event in
 * PCR 0 sets PCR 0's starting value to its locality (last byte).
 *
 * Secure boot is derived, not reported: the last EV_EFI_VARIABLE_DRIVER_CONFIG
 * event in PCR 7 naming the EFI global variable "SecureBoot" gives it (data
 * byte 1: TRI_TRUE, 0: TRI_FALSE); none: TRI_UNKNOWN. For that event type the
 * digest is the hash of the event data (UEFI_VARIABLE_DATA), so the data is
 * checked against its SHA-256 digest: a log that claims SecureBoot=1 while
 * its digest says otherwise is refused. The result means something only once
 * the replayed PCR 7 equals a quoted PCR 7 (attest/measure.c).
 */
#ifndef SM_ATTEST_EVENTLOG_H
#define SM_ATTEST_EVENTLOG_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "harden/harden.h"

#define EVLOG_MAX (192 * 1024) /* whole log */
#define EVLOG_EVENT_MAX (64 * 1024) /* one event's data */
#define EVLOG_EVENTS_MAX 2048
#define EVLOG_ALGS_MAX 8
#define EVLOG_PCRS 24
#define EVLOG_DIGEST_LEN 32 /* SHA-256 */

#define EV_NO_ACTION 0x00000003u
#define EV_SEPARATOR 0x00000004u
#define EV_EFI_VARIABLE_DRIVER_CONFIG 0x80000001u

#define TPM_ALG_SHA1 0x0004
#define TPM_ALG_SHA256 0x000b

struct evlog_info {
	uint8_t pcr[EVLOG_PCRS][EVLOG_DIGEST_LEN]; /* replayed SHA-256 bank */
	uint32_t touched; /* bit i: some event extended PCR i */
	size_t nevents; /* events after the Spec ID header */
	unsigned startup_locality;
	enum tri secure_boot;
};

/*
 * Parse and replay 'len' bytes of event log into '*out' (zeroed first).
 * 0; SM_ERR_TOOBIG past a cap; SM_ERR_UNSUPP for a log that is not
 * crypto-agile or has no SHA-256 bank; SM_ERR_VERIFY when a SecureBoot
 * variable event's data does not hash to its digest; SM_ERR_INVAL otherwise
 * (truncation, unknown algorithm, PCR out of range, trailing bytes).
 */
int evlog_replay(
    const uint8_t *in, size_t len, struct evlog_info *out) SM_MUST_CHECK;

#endif
