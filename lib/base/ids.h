/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Identifiers. New ids are 20 characters of lower-case Crockford base32: 9 for the creation time in milliseconds
 * (so ids sort by age) and 11 random (55 bits). Any id that reaches a NATS subject or key must pass id_valid()
 * first: 1-64 characters of [A-Za-z0-9_-], so never '.', '*', '>' or whitespace. Pure; any thread after
 * crypto_init().
 */
#include <stdbool.h>
#include <stdint.h>

#include "base/status.h"

#define ID_LEN 20
#define ID_MAX 64

void id_new(char out[ID_LEN + 1]);
/* As id_new, with the time part taken from unix_ms (tests, imports). */
void id_new_at(int64_t unix_ms, char out[ID_LEN + 1]);
bool id_valid(const char *s);
/* CH_EINVAL naming field when s is not a valid id ("roomId: not a valid id"). */
enum ch_status id_check(const char *field, const char *s, struct ch_err *err);
