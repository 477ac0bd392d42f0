/* SPDX-License-Identifier: MIT */
/* Id generation and validation; see ids.h. */
#include "base/ids.h"

#include <sodium.h>
#include <string.h>

#include "base/clock.h"

static const char ALPHA[] = "0123456789abcdefghjkmnpqrstvwxyz";

void
id_new_at(int64_t ms, char out[ID_LEN + 1])
{
    unsigned char rnd[11];

    for (int i = 8; i >= 0; i--) {
        out[i] = ALPHA[ms & 31];
        ms >>= 5;
    }
    randombytes_buf(rnd, sizeof rnd);
    for (int i = 0; i < 11; i++)
        out[9 + i] = ALPHA[rnd[i] & 31];
    out[ID_LEN] = '\0';
}

void
id_new(char out[ID_LEN + 1])
{
    id_new_at(clock_wall_ms(), out);
}

bool
id_valid(const char *s)
{
    size_t n = 0;

    if (!s)
        return false;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
        if (n >= ID_MAX)
            return false;
    }
    return n > 0;
}

enum ch_status
id_check(const char *field, const char *s, struct ch_err *err)
{
    if (!s || !*s)
        return ch_err_set(err, CH_EINVAL, field, "required");
    if (!id_valid(s))
        return ch_err_set(err, CH_EINVAL, field, "not a valid id (1-64 characters of A-Z a-z 0-9 _ -)");
    return CH_OK;
}
