/* SPDX-License-Identifier: MIT */
#pragma once
/* The metrics listener: GET <path> on its own address and port (metricsd.c). */
#include "base/status.h"

struct metricsd;

/* Listen on bind_address:port (0: a free port, written to *bound). CH_EINVAL naming metrics.* when it cannot. */
enum ch_status metricsd_start(const char *bind_address, int port, const char *path, struct metricsd **out,
                              int *bound, struct ch_err *err);
void metricsd_stop(struct metricsd *m);
