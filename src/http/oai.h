/* OpenAI API shapes: peeking a request's model, error and list bodies. */
#ifndef SM_HTTP_OAI_H
#define SM_HTTP_OAI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define OAI_MODEL_MAX 256

struct oai_peek {
	char model[OAI_MODEL_MAX + 1];
	bool stream;
};

/*
 * Read "model" and "stream" from a JSON request body without keeping it.
 * Returns 0; SM_ERR_INVAL when the body is not a JSON object;
 * SM_ERR_NOTFOUND when "model" is missing, not a string, empty or too long.
 */
int
oai_peek(const uint8_t *body, size_t len, struct oai_peek *out) SM_MUST_CHECK;

/* {"error":{"message":..,"type":..,"code":..}} (code null when NULL). */
int oai_error_json(struct buf *out, const char *type, const char *code,
    const char *message) SM_MUST_CHECK;

/* Append one model object of an OpenAI list. */
int oai_model_json(struct buf *out, const char *id, const char *owned_by,
    bool first) SM_MUST_CHECK;

#endif
