/* SPDX-License-Identifier: MIT */
/*
 * The pixel size of common images from their first bytes, so clients can lay out a preview before it loads.
 * Formats: PNG (IHDR), GIF (logical screen), WebP (VP8, VP8L, VP8X) and JPEG (the first SOFn marker). Reads only
 * within len; anything it does not recognise is 0 x 0. Pure; any thread.
 */
#include <string.h>

#include "assets/assets_int.h"

static unsigned
be16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static unsigned
le16(const unsigned char *p)
{
    return (unsigned)p[1] << 8 | p[0];
}

static unsigned long
be32(const unsigned char *p)
{
    return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
}

static void
set(struct image_size *out, unsigned long w, unsigned long h)
{
    if (w > 0 && h > 0 && w <= 1000000 && h <= 1000000) {
        out->width = (int)w;
        out->height = (int)h;
    }
}

void
image_sniff(const char *data, size_t len, struct image_size *out)
{
    const unsigned char *p = (const unsigned char *)data;

    out->width = out->height = 0;
    if (len >= 24 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8) && !memcmp(p + 12, "IHDR", 4)) {
        set(out, be32(p + 16), be32(p + 20));
    } else if (len >= 10 && (!memcmp(p, "GIF87a", 6) || !memcmp(p, "GIF89a", 6))) {
        set(out, le16(p + 6), le16(p + 8));
    } else if (len >= 30 && !memcmp(p, "RIFF", 4) && !memcmp(p + 8, "WEBP", 4)) {
        if (!memcmp(p + 12, "VP8 ", 4) && p[23] == 0x9d && p[24] == 0x01 && p[25] == 0x2a)
            set(out, le16(p + 26) & 0x3fff, le16(p + 28) & 0x3fff);
        else if (!memcmp(p + 12, "VP8L", 4) && p[20] == 0x2f)
            set(out, 1 + (((unsigned long)(p[22] & 0x3f) << 8) | p[21]),
                1 + (((unsigned long)(p[24] & 0x0f) << 10) | ((unsigned long)p[23] << 2) | (p[22] >> 6)));
        else if (!memcmp(p + 12, "VP8X", 4))
            set(out, 1 + ((unsigned long)p[24] | (unsigned long)p[25] << 8 | (unsigned long)p[26] << 16),
                1 + ((unsigned long)p[27] | (unsigned long)p[28] << 8 | (unsigned long)p[29] << 16));
    } else if (len >= 4 && p[0] == 0xff && p[1] == 0xd8) {
        size_t i = 2;
        while (i + 9 < len) {
            if (p[i] != 0xff) {
                i++;
                continue;
            }
            unsigned m = p[i + 1];
            if (m == 0xff) {
                i++;
                continue;
            }
            if (m == 0xd8 || m == 0x01 || (m >= 0xd0 && m <= 0xd7)) {
                i += 2;
                continue;
            }
            if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
                set(out, be16(p + i + 7), be16(p + i + 5));
                return;
            }
            i += 2 + be16(p + i + 2);
        }
    }
}
