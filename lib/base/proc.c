/* SPDX-License-Identifier: MIT */
#include "base/proc.h"

#include <stdio.h>
#include <unistd.h>

long
proc_rss_kib(void)
{
    unsigned long long size, rss;
    long page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "r");
    int ok;

    if (!f || page <= 0) {
        if (f)
            fclose(f);
        return -1;
    }
    ok = fscanf(f, "%llu %llu", &size, &rss);
    fclose(f);
    return ok == 2 ? (long)(rss * (unsigned long long)page / 1024) : -1;
}
