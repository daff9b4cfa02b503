/*
 * Local OpenAI-compatible backends (llama-server, vLLM, Ollama...): a model
 * name and a base URL. Only plain http:// on a reachable address.
 */
#ifndef SM_BACKEND_BACKEND_H
#define SM_BACKEND_BACKEND_H

#include <stdbool.h>
#include <sys/socket.h>

#include "core/err.h"

#define BACKEND_HOST_MAX 255
#define BACKEND_PATH_MAX 512

struct backend {
	char name[257]; /* model name served under */
	char host[BACKEND_HOST_MAX + 1]; /* as given, for Host: */
	int port;
	char base_path[BACKEND_PATH_MAX]; /* without trailing '/', may be "" */
	bool base_has_v1; /* base path ends in /v1 */
	struct sockaddr_storage addr; /* resolved once */
	bool up; /* false while a child restarts */
	void *idle; /* http/upstream.c's connection pool (struct pool) */
	unsigned nidle;
};

/*
 * Parse "NAME=http://host[:port][/base]" (or name and url separately with
 * backend_init) and resolve host. Returns 0, SM_ERR_INVAL with a message in
 * 'err' (at least 128 bytes).
 */
int backend_parse(struct backend *b, const char *spec, char *err,
    size_t errlen) SM_MUST_CHECK;
int backend_init(struct backend *b, const char *name, const char *url,
    char *err, size_t errlen) SM_MUST_CHECK;

/* Upstream path for a client path like "/v1/chat/completions". */
int backend_path(const struct backend *b, const char *client_path, char *out,
    size_t len) SM_MUST_CHECK;

#endif
