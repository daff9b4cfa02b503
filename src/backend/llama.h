/*
 * A llama-server child: spawned on an ephemeral loopback port, health-checked,
 * restarted with backoff when it dies, stopped with the node. Served under the
 * GGUF file's stem name through an ordinary struct backend.
 */
#ifndef SM_BACKEND_LLAMA_H
#define SM_BACKEND_LLAMA_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "backend/backend.h"
#include "http/upstream.h"

struct llama_child {
	uv_loop_t *loop;
	uv_process_t proc;
	uv_timer_t timer; /* health polls and restart backoff */
	struct backend *backend;
	char bin[4096];
	char gguf[4096];
	char port_str[8];
	bool running;
	bool stopping;
	uint64_t backoff_ms;
	uint64_t started_ms;
	struct upstream *probe;
};

/* Model name for a GGUF path: its file name without directory and ".gguf". */
int llama_stem(const char *path, char *out, size_t len) SM_MUST_CHECK;

/* Spawn the child for 'b' (b->name must be set; the address is filled in).
 * b->up becomes true once /health answers 200. */
int llama_start(struct llama_child *lc, uv_loop_t *loop, const char *bin,
    const char *gguf, struct backend *b) SM_MUST_CHECK;
/* SIGTERM the child and stop restarting it. */
void llama_stop(struct llama_child *lc);

#endif
