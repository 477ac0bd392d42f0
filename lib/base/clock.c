/* SPDX-License-Identifier: MIT */
/* The clocks; see clock.h. Pure reads of the system clocks, no state; any thread. */
#include "base/clock.h"

static int64_t
read_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
clock_mono_ms(void)
{
    return read_ms(CLOCK_MONOTONIC);
}

int64_t
clock_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
clock_wall_ms(void)
{
    return read_ms(CLOCK_REALTIME);
}

struct timespec
clock_deadline(int64_t ms_from_now)
{
    struct timespec ts;
    int64_t nsec;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms_from_now / 1000);
    nsec = (int64_t)ts.tv_nsec + (ms_from_now % 1000) * 1000000;
    /* ms_from_now % 1000 lies in (-1000, 1000), so one carry or borrow brings nsec back into [0, 1e9) */
    if (nsec >= 1000000000) {
        ts.tv_sec++;
        nsec -= 1000000000;
    } else if (nsec < 0) {
        ts.tv_sec--;
        nsec += 1000000000;
    }
    ts.tv_nsec = (long)nsec;
    return ts;
}
