#include <string.h>

#include <cJSON.h>

#include "core/err.h"
#include "http/oai.h"

int
oai_peek(const uint8_t *body, size_t len, struct oai_peek *out)
{
	const cJSON *model, *stream;
	cJSON *root;
	size_t mlen;
	int r;

	memset(out, 0, sizeof(*out));
	root = cJSON_ParseWithLength((const char *)body, len);
	if (root == NULL || !cJSON_IsObject(root)) {
		r = SM_ERR_INVAL;
		goto out;
	}
	model = cJSON_GetObjectItemCaseSensitive(root, "model");
	if (!cJSON_IsString(model) || model->valuestring == NULL ||
	    (mlen = strlen(model->valuestring)) == 0 || mlen > OAI_MODEL_MAX) {
		r = SM_ERR_NOTFOUND;
		goto out;
	}
	memcpy(out->model, model->valuestring, mlen + 1);
	stream = cJSON_GetObjectItemCaseSensitive(root, "stream");
	out->stream = cJSON_IsTrue(stream);
	r = 0;
out:
	cJSON_Delete(root);
	return r;
}

int
oai_error_json(
    struct buf *out, const char *type, const char *code, const char *message)
{
	cJSON *root, *err;
	char *s = NULL;
	int r = SM_ERR_NOMEM;

	if ((root = cJSON_CreateObject()) == NULL)
		return SM_ERR_NOMEM;
	if ((err = cJSON_AddObjectToObject(root, "error")) == NULL ||
	    cJSON_AddStringToObject(err, "message", message) == NULL ||
	    cJSON_AddStringToObject(err, "type", type) == NULL ||
	    (code != NULL ? cJSON_AddStringToObject(err, "code", code)
			  : cJSON_AddNullToObject(err, "code")) == NULL)
		goto out;
	if ((s = cJSON_PrintUnformatted(root)) == NULL)
		goto out;
	r = buf_append(out, s, strlen(s));
out:
	cJSON_free(s);
	cJSON_Delete(root);
	return r;
}

int
oai_model_json(
    struct buf *out, const char *id, const char *owned_by, bool first)
{
	cJSON *m;
	char *s;
	int r = SM_ERR_NOMEM;

	if ((m = cJSON_CreateObject()) == NULL)
		return SM_ERR_NOMEM;
	if (cJSON_AddStringToObject(m, "id", id) != NULL &&
	    cJSON_AddStringToObject(m, "object", "model") != NULL &&
	    cJSON_AddNumberToObject(m, "created", 0) != NULL &&
	    cJSON_AddStringToObject(m, "owned_by", owned_by) != NULL &&
	    (s = cJSON_PrintUnformatted(m)) != NULL) {
		r = buf_appendf(out, "%s%s", first ? "" : ",", s);
		cJSON_free(s);
	}
	cJSON_Delete(m);
	return r;
}
