/* SPDX-License-Identifier: MIT */
#pragma once
/* `chatto user create|set-password|set-role|disable|enable|list`. Main thread only. */
#include "cli.h"

/* Run the user command in a (positional words in a->pos). Returns the exit code. */
int usercmd_run(const struct cli_args *a, struct cfg *cfg);
