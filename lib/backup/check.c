/* SPDX-License-Identifier: MIT */
/*
 * What a restore may write back, decided from the archive's bytes alone: a record's subject must belong to its
 * stream and be one plain NATS subject (a crafted `$JS.API.…` subject would be a JetStream API request, a space or
 * CR/LF would inject protocol), and its header lines must be ones that are written back whole. Pure functions, no
 * NATS; server/backupcmd.c calls them on every record before anything is written. Any thread.
 */
#include "backup/backup.h"

#include <string.h>

bool
bk_subject_ok(const char *subject, size_t len, const char *prefix)
{
    size_t pl = strlen(prefix);

    if (len > BK_SUBJECT_MAX || len <= pl || memcmp(subject, prefix, pl) != 0)
        return false;
    /* tokens of printable ASCII without space; no wildcard and no empty token (the prefix ends with its dot) */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)subject[i];
        if (c <= 0x20 || c >= 0x7f || c == '*' || c == '>')
            return false;
        if (c == '.' && (i == 0 || i + 1 == len || subject[i - 1] == '.'))
            return false;
    }
    return true;
}

bool
bk_headers_ok(const char *hdr, size_t len)
{
    for (size_t i = 0; i < len;) {
        const char *eol = memchr(hdr + i, '\n', len - i);
        if (!eol || eol == hdr + i || eol[-1] != '\r')
            return false; /* every line ends with CRLF */
        size_t ll = (size_t)(eol - (hdr + i)) - 1;
        const char *line = hdr + i, *colon = memchr(line, ':', ll);
        if (!ll || ll > BK_HDR_LINE_MAX || !colon || colon == line)
            return false;
        for (const char *p = line; p < colon; p++)
            if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
                return false;
        for (const char *p = colon + 1; p < line + ll; p++)
            if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
                return false;
        i += ll + 2;
    }
    return true;
}
