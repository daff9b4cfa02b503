/*
 * Secure Enclave provider (macOS): interface only, not built on Linux.
 *
 * Would implement struct att_provider_ops with a *permanent* SE key
 * (kSecAttrIsPermanent = true, kSecAttrTokenIDSecureEnclave, P-256), so the
 * key survives restarts and can be pinned per node id. Evidence layout:
 * as the software provider (65-byte point, raw r||s over the blob), with
 * provider byte ATT_PROV_SECURE_ENCLAVE. Until an Apple attestation chain
 * (App Attest / DeviceCheck) is verified, the verifier must treat it as
 * ATT_LEVEL_SELF_SIGNED: an SE signature alone does not prove the key is in
 * an enclave (doc/THREAT-MODEL.md, "Attestation").
 */
#ifndef SM_ATTEST_SECURE_ENCLAVE_H
#define SM_ATTEST_SECURE_ENCLAVE_H

#ifdef __APPLE__
#include "attest/provider.h"

/*
 * Load (or create, when 'create') the permanent SE key labelled 'label'.
 * SM_ERR_UNSUPP without a Secure Enclave.
 */
int att_se_open(
    const char *label, int create, struct att_provider **out) SM_MUST_CHECK;
#endif

#endif
