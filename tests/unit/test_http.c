/* Unit tests: HTTP parsing, the model peek, backend URLs, metrics. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "backend/backend.h"
#include "backend/llama.h"
#include "http/metrics.h"
#include "http/oai.h"
#include "http/parse.h"

struct got {
	int heads, dones;
	char path[64], query[64], method[16], host[64];
	struct buf body;
	int64_t clen;
	int status;
};

static int
t_head(struct hparse *hp, void *user)
{
	struct got *g = user;
	const char *h = hparse_header(hp, "host");

	g->heads++;
	g->status = hp->status;
	g->clen = hp->content_length;
	if (hp->path) {
		strcpy(g->path, hp->path);
		strcpy(g->query, hp->query);
		strcpy(g->method, hp->method);
	}
	strcpy(g->host, h ? h : "");
	return 0;
}

static int
t_body(struct hparse *hp, void *user, const char *at, size_t len)
{
	struct got *g = user;

	return buf_append(&g->body, at, len) == 0 ? 0 : -1;
}

static int
t_done(struct hparse *hp, void *user)
{
	((struct got *)user)->dones++;
	return HPE_PAUSED;
}

static const struct hparse_cbs cbs = {t_head, t_body, t_done};

static void
test_request_byte_by_byte(void **state)
{
	const char req[] = "POST /v1/chat/completions?x=1 HTTP/1.1\r\n"
			   "HOST: example\r\nTransfer-Encoding: chunked\r\n\r\n"
			   "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET /next";
	struct hparse hp;
	struct got g = {0};
	size_t used, i;
	enum llhttp_errno e = HPE_OK;

	buf_init(&g.body, 1024);
	hparse_init(&hp, HTTP_REQUEST, 4096, &cbs, &g);
	for (i = 0; i < sizeof(req) - 1; i++) {
		e = hparse_feed(&hp, req + i, 1, &used);
		if (e != HPE_OK)
			break;
	}
	assert_int_equal(e, HPE_PAUSED);
	assert_int_equal(used, 1);
	/* Paused right after the first message: "GET /next" is left over. */
	assert_string_equal(req + i + 1, "GET /next");
	assert_int_equal(g.heads, 1);
	assert_int_equal(g.dones, 1);
	assert_string_equal(g.method, "POST");
	assert_string_equal(g.path, "/v1/chat/completions");
	assert_string_equal(g.query, "x=1");
	assert_string_equal(g.host, "example"); /* names are lowercased */
	assert_int_equal(g.clen, -1);
	assert_int_equal(g.body.len, 11);
	assert_memory_equal(buf_data(&g.body), "hello world", 11);
	assert_true(hp.keep_alive);
	hparse_clear(&hp);
	buf_clear(&g.body);
}

static void
test_header_cap_and_garbage(void **state)
{
	char big[2048];
	struct hparse hp;
	struct got g = {0};
	size_t used;

	buf_init(&g.body, 16);
	memset(big, 'a', sizeof(big));
	hparse_init(&hp, HTTP_REQUEST, 1024, &cbs, &g);
	assert_int_equal(
	    hparse_feed(&hp, "GET / HTTP/1.1\r\nX: ", 19, &used), HPE_OK);
	assert_int_not_equal(hparse_feed(&hp, big, sizeof(big), &used), HPE_OK);
	assert_int_equal(hp.reject, 431);
	hparse_clear(&hp);

	hparse_init(&hp, HTTP_REQUEST, 1024, &cbs, &g);
	assert_int_not_equal(
	    hparse_feed(&hp, "NOPE\r\n\r\n", 8, &used), HPE_OK);
	assert_int_equal(hp.reject, 400);
	assert_int_equal(g.heads, 0);
	hparse_clear(&hp);
	buf_clear(&g.body);
}

static void
test_response_skips_1xx(void **state)
{
	const char resp[] = "HTTP/1.1 100 Continue\r\n\r\n"
			    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
	struct hparse hp;
	struct got g = {0};
	size_t used;

	buf_init(&g.body, 16);
	hparse_init(&hp, HTTP_RESPONSE, 4096, &cbs, &g);
	assert_int_equal(
	    hparse_feed(&hp, resp, sizeof(resp) - 1, &used), HPE_PAUSED);
	assert_int_equal(g.heads, 1);
	assert_int_equal(g.status, 200);
	assert_int_equal(g.clen, 3);
	assert_memory_equal(buf_data(&g.body), "abc", 3);
	hparse_clear(&hp);
	buf_clear(&g.body);
}

static void
test_peek(void **state)
{
	struct oai_peek pk;
	char big[600];
	const char *ok =
	    "{\"messages\":[],\"model\":\"llama\",\"stream\":true}";

	assert_int_equal(oai_peek((const uint8_t *)ok, strlen(ok), &pk), 0);
	assert_string_equal(pk.model, "llama");
	assert_true(pk.stream);
	assert_int_equal(
	    oai_peek((const uint8_t *)"{\"model\":\"m\"}", 13, &pk), 0);
	assert_false(pk.stream);
	assert_int_equal(
	    oai_peek((const uint8_t *)"{\"model\":", 9, &pk), SM_ERR_INVAL);
	assert_int_equal(
	    oai_peek((const uint8_t *)"[1]", 3, &pk), SM_ERR_INVAL);
	assert_int_equal(
	    oai_peek((const uint8_t *)"{}", 2, &pk), SM_ERR_NOTFOUND);
	assert_int_equal(oai_peek((const uint8_t *)"{\"model\":7}", 11, &pk),
	    SM_ERR_NOTFOUND);
	assert_int_equal(oai_peek((const uint8_t *)"{\"model\":\"\"}", 12, &pk),
	    SM_ERR_NOTFOUND);
	/* Not NUL-terminated: the length is honoured. */
	assert_int_equal(
	    oai_peek((const uint8_t *)"{\"model\":\"m\"}XXXX", 13, &pk), 0);
	snprintf(big, sizeof(big), "{\"model\":\"%0*d\"}", 300, 0);
	assert_int_equal(
	    oai_peek((const uint8_t *)big, strlen(big), &pk), SM_ERR_NOTFOUND);
}

static void
test_error_json(void **state)
{
	struct buf b;

	buf_init(&b, 1024);
	assert_int_equal(
	    oai_error_json(&b, "invalid_request_error", NULL, "bad \"quote\""),
	    0);
	assert_int_equal(b.len,
	    strlen("{\"error\":{\"message\":\"bad "
		   "\\\"quote\\\"\",\"type\":\"invalid_request_error\","
		   "\"code\":null}}"));
	assert_memory_equal(buf_data(&b),
	    "{\"error\":{\"message\":\"bad "
	    "\\\"quote\\\"\",\"type\":\"invalid_request_error\",\"code\":null}"
	    "}",
	    b.len);
	buf_clear(&b);
}

static void
test_backend_urls(void **state)
{
	struct backend b;
	char err[256], path[256];

	assert_int_equal(
	    backend_parse(&b, "m=http://127.0.0.1:8080", err, sizeof(err)), 0);
	assert_string_equal(b.name, "m");
	assert_int_equal(b.port, 8080);
	assert_int_equal(backend_path(&b, "/v1/models", path, sizeof(path)), 0);
	assert_string_equal(path, "/v1/models");
	assert_int_equal(
	    backend_parse(&b, "o=http://localhost:11434/v1/", err, sizeof(err)),
	    0);
	assert_true(b.base_has_v1);
	assert_int_equal(
	    backend_path(&b, "/v1/chat/completions", path, sizeof(path)), 0);
	assert_string_equal(path, "/v1/chat/completions");
	assert_int_equal(
	    backend_parse(&b, "p=http://[::1]:9/api", err, sizeof(err)), 0);
	assert_string_equal(b.host, "::1");
	assert_int_equal(backend_path(&b, "/v1/models", path, sizeof(path)), 0);
	assert_string_equal(path, "/api/v1/models");
	assert_int_equal(backend_parse(&b, "q=http://h", err, sizeof(err)),
	    SM_ERR_INVAL); /* unresolvable */
	assert_int_equal(
	    backend_parse(&b, "nourl", err, sizeof(err)), SM_ERR_INVAL);
	assert_int_equal(
	    backend_parse(&b, "m=https://x", err, sizeof(err)), SM_ERR_INVAL);
	assert_int_equal(
	    backend_parse(&b, "m=http://127.0.0.1:99999", err, sizeof(err)),
	    SM_ERR_INVAL);
	assert_int_equal(
	    backend_parse(&b, "m=http://127.0.0.1:/x", err, sizeof(err)),
	    SM_ERR_INVAL);
}

static void
test_llama_stem(void **state)
{
	char s[64];

	assert_int_equal(llama_stem("/a/b/tiny.gguf", s, sizeof(s)), 0);
	assert_string_equal(s, "tiny");
	assert_int_equal(llama_stem("model", s, sizeof(s)), 0);
	assert_string_equal(s, "model");
	assert_int_equal(llama_stem("/a/.gguf", s, sizeof(s)), 0);
	assert_string_equal(s, ".gguf");
}

static void
test_metrics(void **state)
{
	struct metrics m;
	struct buf b;

	metrics_init(&m);
	metrics_request(&m, "m", 200, 10, 20);
	metrics_request(&m, "m", 200, 1, 2);
	metrics_request(&m, "bad\"name", 404, 0, 0);
	metrics_ttft(&m, 0.003);
	metrics_ttft(&m, 99);
	buf_init(&b, 65536);
	assert_int_equal(metrics_render(&m, &b), 0);
	assert_int_equal(buf_append(&b, "", 1), 0);
	assert_non_null(strstr((char *)buf_data(&b),
	    "sealmesh_requests_total{model=\"m\",status=\"200\"} 2\n"));
	assert_non_null(strstr(
	    (char *)buf_data(&b), "{model=\"bad_name\",status=\"404\"} 1\n"));
	assert_non_null(strstr((char *)buf_data(&b),
	    "sealmesh_ttft_seconds_bucket{le=\"0.005\"} 1\n"));
	assert_non_null(strstr((char *)buf_data(&b),
	    "sealmesh_ttft_seconds_bucket{le=\"+Inf\"} 2\n"));
	assert_non_null(
	    strstr((char *)buf_data(&b), "sealmesh_request_bytes_total 11\n"));
	buf_clear(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_byte_by_byte),
	    cmocka_unit_test(test_header_cap_and_garbage),
	    cmocka_unit_test(test_response_skips_1xx),
	    cmocka_unit_test(test_peek),
	    cmocka_unit_test(test_error_json),
	    cmocka_unit_test(test_backend_urls),
	    cmocka_unit_test(test_llama_stem),
	    cmocka_unit_test(test_metrics),
	};
	return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
