/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * This process as the kernel sees it (Linux /proc). Any thread.
 */

/* Resident set size in KiB, or -1 if it cannot be read. */
long proc_rss_kib(void);
