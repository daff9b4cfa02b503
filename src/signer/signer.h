/*
 * The signer: the small privileged process of a privilege-separated node
 * (doc/PRIVSEP.md). It holds the node identity key, the mesh owner key (when
 * this node has one), the inference keys and their epochs, and the
 * attestation provider (the TPM and its AK). It parses nothing from the
 * network: its only input is the worker's requests (signer/proto.h), which it
 * judges against what it knows and measures itself.
 *
 * It measures the worker from outside (/proc/PID: the binary behind exe,
 * NoNewPrivs, Seccomp, TracerPid) and that measurement, not the worker's own
 * report, is the posture the worker may announce and have attested. It stops
 * (and takes the worker with it) when the worker exits, sends a malformed
 * request, or becomes untrusted (a tracer attached, the filter gone).
 */
#ifndef SM_SIGNER_SIGNER_H
#define SM_SIGNER_SIGNER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"

struct mesh_opts;

struct signer_cfg {
	const char *state_dir; /* identity.key, owner/, attest.ak */
	const struct mesh_opts *mo; /* e2e schedule and attestation flags */
	const char *api_key_file; /* read for the worker on its SIGHUP */
	pid_t worker;
	int fast_fd; /* signing and DH */
	int slow_fd; /* the attestation provider */
};

/*
 * Started as root: give 'user' the state directory and every file in it but
 * the keys (identity.key, attest.ak, owner/), which stay root's, 0600, so
 * the worker can keep its own state there and cannot read a key. Errors
 * name the path and the OS error.
 */
int signer_prepare_dir(const char *state_dir, const char *user) SM_MUST_CHECK;

/*
 * Load the keys, serve the worker until it exits or is distrusted, wipe
 * the keys. Returns the process exit status: 0 after a clean stop (SIGTERM
 * or SIGINT forwarded, worker exited 0), 1 otherwise (logged).
 */
int signer_run(const struct signer_cfg *cfg);

/*
 * The signer's judgement without its process, for unit tests and the
 * fuzzer (fuzz/fuzz_signer.c): fresh in-memory keys (identity, inference
 * ring), no owner key, no provider, and 'measured' standing for its
 * measurement of a worker.
 */
struct signer;
struct posture;
struct buf;
int signer_new_ephemeral(
    struct signer **out, const struct posture *measured) SM_MUST_CHECK;
void signer_free(struct signer *s);
const uint8_t *signer_node_pk(const struct signer *s);
/*
 * Answer one whole request frame 'in' as the channel 'slow' would: the
 * answer frame (header and body; an error status has no body) is appended
 * to 'out'. SM_ERR_PROTO for a frame that is malformed or on the wrong
 * channel: the signer stops then.
 */
int signer_answer(struct signer *s, const uint8_t *in, size_t len, bool slow,
    struct buf *out) SM_MUST_CHECK;

#endif
