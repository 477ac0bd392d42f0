/* SPDX-License-Identifier: MIT */
/*
 * lib/metrics: the text exposition (label escaping, cumulative histogram buckets with +Inf, _sum and _count),
 * series per label values, the bound on series per family, and gauges read at render time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"

static char *
render(void)
{
    size_t len = 0;
    char *s = metrics_render(&len);
    assert_non_null(s);
    assert_int_equal(strlen(s), len);
    return s;
}

static void
test_counters_by_label_and_escaping(void **state)
{
    (void)state;
    metrics_reset();
    metrics_inc(MET_HTTP_REQUESTS, "/a", "200");
    metrics_inc(MET_HTTP_REQUESTS, "/a", "200");
    metrics_add(MET_HTTP_REQUESTS, "/b\"\\\n", "404", 3);
    char *s = render();
    assert_non_null(strstr(s, "# TYPE chatto_http_requests_total counter\n"));
    assert_non_null(strstr(s, "chatto_http_requests_total{route=\"/a\",code=\"200\"} 2\n"));
    assert_non_null(strstr(s, "chatto_http_requests_total{route=\"/b\\\"\\\\\\n\",code=\"404\"} 3\n"));
    free(s);
}

static void
test_histogram_buckets_are_cumulative(void **state)
{
    (void)state;
    metrics_reset();
    metrics_observe(MET_HTTP_DURATION, "/x", 0.0002);
    metrics_observe(MET_HTTP_DURATION, "/x", 0.003);
    metrics_observe(MET_HTTP_DURATION, "/x", 100);
    char *s = render();
    assert_non_null(strstr(s, "chatto_http_request_duration_seconds_bucket{route=\"/x\",le=\"0.0005\"} 1\n"));
    assert_non_null(strstr(s, "chatto_http_request_duration_seconds_bucket{route=\"/x\",le=\"0.005\"} 2\n"));
    assert_non_null(strstr(s, "chatto_http_request_duration_seconds_bucket{route=\"/x\",le=\"10\"} 2\n"));
    assert_non_null(strstr(s, "chatto_http_request_duration_seconds_bucket{route=\"/x\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(s, "chatto_http_request_duration_seconds_count{route=\"/x\"} 3\n"));
    assert_non_null(strstr(s, "chatto_http_request_duration_seconds_sum{route=\"/x\"} 100.0032\n"));
    /* no labels: le alone */
    metrics_observe(MET_JS_PUBLISH_DURATION, NULL, 0.01);
    free(s);
    s = render();
    assert_non_null(strstr(s, "chatto_jetstream_publish_duration_seconds_bucket{le=\"0.01\"} 1\n"));
    assert_non_null(strstr(s, "chatto_jetstream_publish_duration_seconds_count 1\n"));
    free(s);
}

static double
seven(void *ctx)
{
    return *(double *)ctx;
}

static void
test_gauges_are_read_when_rendered_and_series_are_bounded(void **state)
{
    double v = 7;
    char label[32];

    (void)state;
    metrics_reset();
    metrics_set_gauge(MET_MODEL_ROOMS, seven, &v);
    char *s = render();
    assert_non_null(strstr(s, "chatto_model_rooms 7\n"));
    free(s);
    v = 8.5;
    s = render();
    assert_non_null(strstr(s, "chatto_model_rooms 8.5\n"));
    assert_null(strstr(s, "\nchatto_model_users ")); /* no callback: no sample, only its HELP and TYPE */
    assert_non_null(strstr(s, "chatto_build_info{version=\""));
    assert_non_null(strstr(s, "process_resident_memory_bytes "));
    free(s);
    for (int i = 0; i < 2000; i++) {
        snprintf(label, sizeof label, "r%d", i);
        metrics_inc(MET_RATE_LIMITED, label, NULL);
    }
    s = render();
    assert_non_null(strstr(s, "chatto_rate_limited_total{limit=\"other\"} 1488\n"));
    free(s);
    metrics_reset();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_by_label_and_escaping),
        cmocka_unit_test(test_histogram_buckets_are_cumulative),
        cmocka_unit_test(test_gauges_are_read_when_rendered_and_series_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
