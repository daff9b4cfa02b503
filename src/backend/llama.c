#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "backend/llama.h"
#include "core/log.h"
#include "core/util.h"
#include "harden/harden.h"

#define HEALTH_POLL_MS 250
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000

static void spawn_child(struct llama_child *lc);

int
llama_stem(const char *path, char *out, size_t len)
{
	const char *base = strrchr(path, '/');
	size_t n;

	base = base ? base + 1 : path;
	n = strlen(base);
	if (n > 5 && strcmp(base + n - 5, ".gguf") == 0)
		n -= 5;
	if (n == 0 || n >= len)
		return SM_ERR_INVAL;
	memcpy(out, base, n);
	out[n] = '\0';
	return 0;
}

/* Ask the kernel for a free loopback port. The child binds it moments later. */
static int
free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd, port = -1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static void
probe_head(void *user, int status, const struct hdr *h, size_t n, int64_t cl)
{
	struct llama_child *lc = user;

	if (status == 200 && !lc->backend->up) {
		lc->backend->up = true;
		lc->backoff_ms = BACKOFF_MIN_MS;
		log_info("llama-server for %s is ready on port %d (%.1fs)",
		    lc->backend->name, lc->backend->port,
		    (double)(sm_now_ms() - lc->started_ms) / 1000.0);
	}
}

static void
probe_body(void *user, const uint8_t *data, size_t len)
{
}

static void
probe_end(void *user, int err)
{
	struct llama_child *lc = user;

	lc->probe = NULL;
}

static const struct upstream_cbs probe_cbs = {
    probe_head, probe_body, probe_end};

static void
health_tick(uv_timer_t *t)
{
	struct llama_child *lc = t->data;
	struct upstream_opts uo = {
	    .connect_timeout_ms = 1000, .header_timeout_ms = 2000};
	struct buf rq;

	if (!lc->running) {
		spawn_child(lc); /* backoff elapsed */
		return;
	}
	if (lc->backend->up || lc->probe != NULL)
		return;
	buf_init(&rq, 512);
	if (buf_appendf(&rq,
		"GET /health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
		"Connection: close\r\n\r\n",
		lc->backend->port) == 0 &&
	    upstream_tcp_start(&lc->probe, lc->loop, lc->backend, &rq, &uo,
		&probe_cbs, lc) != 0)
		lc->probe = NULL;
	buf_clear(&rq);
}

static void
exit_cb(uv_process_t *p, int64_t status, int sig)
{
	struct llama_child *lc = p->data;

	lc->running = false;
	lc->backend->up = false;
	uv_close((uv_handle_t *)p, NULL);
	if (lc->stopping) {
		uv_close((uv_handle_t *)&lc->timer, NULL);
		return;
	}
	log_warn("llama-server for %s exited (status %lld, signal %d); "
		 "restarting in %llums",
	    lc->backend->name, (long long)status, sig,
	    (unsigned long long)lc->backoff_ms);
	uv_timer_stop(&lc->timer);
	uv_timer_start(&lc->timer, health_tick, lc->backoff_ms, HEALTH_POLL_MS);
	lc->backoff_ms *= 2;
	if (lc->backoff_ms > BACKOFF_MAX_MS)
		lc->backoff_ms = BACKOFF_MAX_MS;
}

static void
spawn_child(struct llama_child *lc)
{
	char *args[] = {lc->bin, "-m", lc->gguf, "--host", "127.0.0.1",
	    "--port", lc->port_str, "-c", "2048", "-np", "4", "--no-webui",
	    "--alias", lc->backend->name, NULL};
	uv_process_options_t o = {0};
	char **env = NULL;
	char err[160];
	int port, r;

	if ((port = free_port()) < 0) {
		log_error("no free port for llama-server");
		return;
	}
	snprintf(lc->port_str, sizeof(lc->port_str), "%d", port);
	/* A minimal environment: nothing of ours (LD_*, secrets) leaks in.
	 * RLIMIT_CORE 0 and no_new_privs are inherited (see harden_early). */
	if (harden_child_env_new(NULL, &env) != 0) {
		log_error("cannot build llama-server's environment");
		return;
	}
	o.file = lc->bin;
	o.args = args;
	o.env = env;
	o.exit_cb = exit_cb;
	o.flags = UV_PROCESS_WINDOWS_HIDE;
	lc->proc.data = lc;
	r = uv_spawn(lc->loop, &lc->proc, &o);
	harden_child_env_free(env);
	if (r != 0) {
		log_error("cannot start %s: %s", lc->bin, uv_strerror(r));
		uv_close((uv_handle_t *)&lc->proc, NULL);
		uv_timer_stop(&lc->timer);
		uv_timer_start(
		    &lc->timer, health_tick, lc->backoff_ms, HEALTH_POLL_MS);
		return;
	}
	lc->running = true;
	lc->started_ms = sm_now_ms();
	{
		char url[64];
		char name[sizeof(lc->backend->name)];

		memcpy(name, lc->backend->name, sizeof(name));
		snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
		if (backend_init(lc->backend, name, url, err, sizeof(err)) != 0)
			log_error("llama backend: %s", err);
		lc->backend->up = false;
	}
	log_info("started llama-server (pid %d) for %s on port %d",
	    lc->proc.pid, lc->backend->name, port);
	uv_timer_stop(&lc->timer);
	uv_timer_start(&lc->timer, health_tick, HEALTH_POLL_MS, HEALTH_POLL_MS);
}

int
llama_start(struct llama_child *lc, uv_loop_t *loop, const char *bin,
    const char *gguf, struct backend *b)
{
	memset(lc, 0, sizeof(*lc));
	if (strlen(bin) >= sizeof(lc->bin) || strlen(gguf) >= sizeof(lc->gguf))
		return SM_ERR_TOOBIG;
	if (access(gguf, R_OK) != 0) {
		log_error(
		    "cannot read model file %s: %s", gguf, strerror(errno));
		return SM_ERR_NOTFOUND;
	}
	strcpy(lc->bin, bin);
	strcpy(lc->gguf, gguf);
	lc->loop = loop;
	lc->backend = b;
	lc->backoff_ms = BACKOFF_MIN_MS;
	b->up = false;
	uv_timer_init(loop, &lc->timer);
	lc->timer.data = lc;
	spawn_child(lc);
	return 0;
}

void
llama_stop(struct llama_child *lc)
{
	lc->stopping = true;
	if (lc->probe != NULL)
		upstream_cancel(lc->probe);
	lc->probe = NULL;
	if (lc->running)
		uv_process_kill(&lc->proc, SIGTERM);
	else if (!uv_is_closing((uv_handle_t *)&lc->timer))
		uv_close((uv_handle_t *)&lc->timer, NULL);
}
