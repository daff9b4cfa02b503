#include <stdio.h>
#include <string.h>

#include "http/metrics.h"

static const double ttft_le[METRICS_TTFT_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};

void
metrics_init(struct metrics *m)
{
	memset(m, 0, sizeof(*m));
}

void
metrics_request(struct metrics *m, const char *model, int status,
    uint64_t bytes_in, uint64_t bytes_out)
{
	char name[64];
	unsigned i;

	m->bytes_in += bytes_in;
	m->bytes_out += bytes_out;
	/* Model names are client-chosen: keep only known-safe characters. */
	snprintf(name, sizeof(name), "%s", model ? model : "");
	for (char *p = name; *p; p++)
		if (*p == '"' || *p == '\\' || *p == '\n' ||
		    (unsigned char)*p < 0x20)
			*p = '_';
	for (i = 0; i < m->nseries; i++)
		if (m->series[i].status == status &&
		    strcmp(m->series[i].model, name) == 0)
			break;
	if (i == m->nseries) {
		if (m->nseries == METRICS_MAX_SERIES) /* fold into "other" */
			i = METRICS_MAX_SERIES - 1;
		else
			m->nseries++;
		if (i == METRICS_MAX_SERIES - 1 && m->series[i].count > 0)
			snprintf(m->series[i].model, sizeof(m->series[i].model),
			    "other");
		else
			memcpy(m->series[i].model, name, sizeof(name));
		m->series[i].status = status;
	}
	m->series[i].count++;
}

void
metrics_ttft(struct metrics *m, double seconds)
{
	for (int i = 0; i < METRICS_TTFT_BUCKETS; i++)
		if (seconds <= ttft_le[i]) {
			m->ttft_bucket[i]++;
			break;
		}
	m->ttft_count++;
	m->ttft_sum += seconds;
}

int
metrics_render(const struct metrics *m, struct buf *out)
{
	uint64_t cum = 0;
	int r;

	r = buf_appendf(out,
	    "# HELP sealmesh_requests_total Requests by model and status.\n"
	    "# TYPE sealmesh_requests_total counter\n");
	for (unsigned i = 0; r == 0 && i < m->nseries; i++)
		r = buf_appendf(out,
		    "sealmesh_requests_total{model=\"%s\",status=\"%d\"} "
		    "%llu\n",
		    m->series[i].model, m->series[i].status,
		    (unsigned long long)m->series[i].count);
	if (r == 0)
		r = buf_appendf(out,
		    "# HELP sealmesh_request_bytes_total Request body bytes "
		    "received.\n"
		    "# TYPE sealmesh_request_bytes_total counter\n"
		    "sealmesh_request_bytes_total %llu\n"
		    "# HELP sealmesh_response_bytes_total Response bytes "
		    "sent.\n"
		    "# TYPE sealmesh_response_bytes_total counter\n"
		    "sealmesh_response_bytes_total %llu\n"
		    "# HELP sealmesh_active_streams Streaming responses in "
		    "progress.\n"
		    "# TYPE sealmesh_active_streams gauge\n"
		    "sealmesh_active_streams %lld\n"
		    "# HELP sealmesh_inflight_requests Requests in progress.\n"
		    "# TYPE sealmesh_inflight_requests gauge\n"
		    "sealmesh_inflight_requests %lld\n"
		    "# HELP sealmesh_upstream_failures_total Attempts that "
		    "failed "
		    "before a response.\n"
		    "# TYPE sealmesh_upstream_failures_total counter\n"
		    "sealmesh_upstream_failures_total %llu\n"
		    "# HELP sealmesh_ttft_seconds Time to first response "
		    "byte.\n"
		    "# TYPE sealmesh_ttft_seconds histogram\n",
		    (unsigned long long)m->bytes_in,
		    (unsigned long long)m->bytes_out,
		    (long long)m->active_streams, (long long)m->inflight,
		    (unsigned long long)m->upstream_failures);
	for (int i = 0; r == 0 && i < METRICS_TTFT_BUCKETS; i++) {
		cum += m->ttft_bucket[i];
		r = buf_appendf(out,
		    "sealmesh_ttft_seconds_bucket{le=\"%g\"} %llu\n",
		    ttft_le[i], (unsigned long long)cum);
	}
	if (r == 0)
		r = buf_appendf(out,
		    "sealmesh_ttft_seconds_bucket{le=\"+Inf\"} %llu\n"
		    "sealmesh_ttft_seconds_sum %.6f\n"
		    "sealmesh_ttft_seconds_count %llu\n",
		    (unsigned long long)m->ttft_count, m->ttft_sum,
		    (unsigned long long)m->ttft_count);
	return r;
}
