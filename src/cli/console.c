#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "cli/console.h"
#include "core/buf.h"
#include "core/util.h"
#include "http/parse.h"

static int
c_body(struct hparse *hp, void *user, const char *at, size_t len)
{
	return buf_append(user, at, len) == 0 ? 0 : -1;
}

static int
c_done(struct hparse *hp, void *user)
{
	return HPE_PAUSED;
}

static const struct hparse_cbs c_cbs = {NULL, c_body, c_done};

int
console_status(int port, cJSON **out)
{
	int status;

	return console_call(port, "GET", "/api/status", &status, out);
}

int
console_call(
    int port, const char *method, const char *path, int *status, cJSON **out)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct timeval tv = {.tv_sec = 5};
	const char *key = getenv("SEALMESH_API_KEY");
	char req[1400], rbuf[16384];
	struct hparse hp;
	struct buf body;
	enum llhttp_errno e = HPE_OK;
	size_t used;
	ssize_t n;
	int fd, r = SM_ERR_IO;

	*out = NULL;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return SM_ERR_IO;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr,
		    "sealmesh: no node console on 127.0.0.1:%d "
		    "(%s); is `sealmesh serve` running? (--console N)\n",
		    port, strerror(errno));
		close(fd);
		return SM_ERR_IO;
	}
	/* A node with --api-key-file wants a key on the console too. */
	if (key != NULL &&
	    (*key == '\0' || strlen(key) > 512 || strpbrk(key, "\r\n") != NULL))
		key = NULL;
	snprintf(req, sizeof(req),
	    "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
	    "%s%s%sConnection: close\r\n\r\n",
	    method, path, key ? "Authorization: Bearer " : "", key ? key : "",
	    key ? "\r\n" : "");
	n = write(fd, req, strlen(req));
	if (n != (ssize_t)strlen(req)) {
		explicit_bzero(req, sizeof(req));
		close(fd);
		return SM_ERR_IO;
	}
	explicit_bzero(req, sizeof(req)); /* it may hold the API key */
	buf_init(&body, 16 * 1024 * 1024);
	hparse_init(&hp, HTTP_RESPONSE, 16384, &c_cbs, &body);
	while ((n = read(fd, rbuf, sizeof(rbuf))) > 0) {
		e = hparse_feed(&hp, rbuf, (size_t)n, &used);
		if (e != HPE_OK)
			break;
	}
	*status = hp.status;
	if (e == HPE_PAUSED && buf_append(&body, "", 1) == 0 &&
	    (*out = cJSON_Parse((const char *)buf_data(&body))) != NULL &&
	    hp.status / 100 == 2)
		r = 0;
	else if (*out == NULL)
		fprintf(stderr, "sealmesh: bad answer from the console\n");
	if (hp.status == 401)
		fprintf(stderr,
		    "sealmesh: the console wants an API key (the node runs "
		    "--api-key-file): set SEALMESH_API_KEY\n");
	hparse_clear(&hp);
	buf_clear(&body);
	close(fd);
	return r;
}

int
console_port_arg(int argc, char **argv, const char *cmd, int *port, bool *json)
{
	static const struct option opts[] = {
	    {"console", required_argument, NULL, 'c'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;

	*port = 3131;
	if (json != NULL)
		*json = false;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (sm_parse_u64(optarg, 1, 65535, &v) != 0) {
				fprintf(stderr, "sealmesh %s: bad --console\n",
				    cmd);
				return 2;
			}
			*port = (int)v;
			break;
		case 'j':
			if (json != NULL)
				*json = true;
			break;
		case 'h':
			printf("usage: sealmesh %s [--console PORT]%s\n", cmd,
			    json ? " [--json]" : "");
			return 0;
		default:
			return 2;
		}
	}
	return -1; /* go on */
}
