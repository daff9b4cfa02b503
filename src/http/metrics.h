/* Prometheus counters for the gateway: single-threaded, no locks. */
#ifndef SM_HTTP_METRICS_H
#define SM_HTTP_METRICS_H

#include <stdint.h>

#include "core/buf.h"

#define METRICS_MAX_SERIES 512
#define METRICS_TTFT_BUCKETS 12

struct metrics_series {
	char model[64];
	int status;
	uint64_t count;
};

struct metrics {
	struct metrics_series series[METRICS_MAX_SERIES];
	unsigned nseries;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t ttft_bucket[METRICS_TTFT_BUCKETS]; /* cumulative on render */
	uint64_t ttft_count;
	double ttft_sum;
	int64_t active_streams;
	int64_t inflight;
	uint64_t upstream_failures;
};

void metrics_init(struct metrics *m);
/* Count one finished request. 'model' may be NULL. */
void metrics_request(struct metrics *m, const char *model, int status,
    uint64_t bytes_in, uint64_t bytes_out);
/* Time to first byte of a response, in seconds. */
void metrics_ttft(struct metrics *m, double seconds);
/* Prometheus text exposition format. */
int metrics_render(const struct metrics *m, struct buf *out) SM_MUST_CHECK;

#endif
