/* SPDX-License-Identifier: MIT */
/*
 * Test images for the resize tests and benchmark, made and measured with libvips (not with Chatto's code):
 *   imgtool make <W>x<H> jpeg|png|png-alpha|webp-alpha|gif-anim OUT   a noisy picture (gif-anim: 4 frames)
 *   imgtool info FILE                                                 "<loader> <W> <H> <pages> <alpha 0|1>"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vips/vips.h>

static int
fail(const char *what)
{
    fprintf(stderr, "imgtool: %s: %s\n", what, vips_error_buffer());
    return 1;
}

static int
make(const char *size, const char *kind, const char *out)
{
    int w = 0, h = 0, pages = !strcmp(kind, "gif-anim") ? 4 : 1;
    VipsImage *noise = NULL, *rgb = NULL, *img = NULL, *alpha = NULL;
    VipsImage *bands[3];

    if (sscanf(size, "%dx%d", &w, &h) != 2 || w < 1 || h < 1)
        return fprintf(stderr, "imgtool: size must be <W>x<H>\n"), 2;
    for (int i = 0; i < 3; i++) {
        VipsImage *g = NULL;
        if (vips_gaussnoise(&g, w, h * pages, "mean", 128.0, "sigma", 12.0, NULL))
            return fail("noise");
        if (vips_cast_uchar(g, &bands[i], NULL))
            return fail("cast");
        g_object_unref(g);
    }
    if (vips_bandjoin(bands, &rgb, 3, NULL))
        return fail("join");
    for (int i = 0; i < 3; i++)
        g_object_unref(bands[i]);
    vips_copy(rgb, &noise, "interpretation", VIPS_INTERPRETATION_sRGB, NULL);
    g_object_unref(rgb);
    if (!strcmp(kind, "png-alpha") || !strcmp(kind, "webp-alpha")) {
        if (vips_bandjoin_const1(noise, &alpha, 128.0, NULL))
            return fail("alpha");
        img = alpha;
        g_object_unref(noise);
    } else {
        img = noise;
    }
    if (pages > 1) {
        vips_image_set_int(img, "page-height", h);
        int delays[4] = { 100, 100, 100, 100 };
        vips_image_set_array_int(img, "delay", delays, 4);
        vips_image_set_int(img, "loop", 0);
    }
    int rc;
    if (!strcmp(kind, "jpeg"))
        rc = vips_jpegsave(img, out, "Q", 90, NULL);
    else if (!strcmp(kind, "png") || !strcmp(kind, "png-alpha"))
        rc = vips_pngsave(img, out, "compression", 1, NULL);
    else if (!strcmp(kind, "webp-alpha"))
        rc = vips_webpsave(img, out, "Q", 80, NULL);
    else if (!strcmp(kind, "gif-anim"))
        rc = vips_gifsave(img, out, NULL);
    else
        return fprintf(stderr, "imgtool: unknown kind %s\n", kind), 2;
    g_object_unref(img);
    return rc ? fail("save") : 0;
}

static int
info(const char *path)
{
    const char *loader = vips_foreign_find_load(path);
    VipsImage *im;

    if (!loader)
        return fail("find loader");
    /* every frame where the format has frames */
    if (!(im = vips_image_new_from_file(path, "n", -1, NULL))) {
        vips_error_clear();
        if (!(im = vips_image_new_from_file(path, NULL)))
            return fail("load");
    }
    printf("%s %d %d %d %d\n", loader, vips_image_get_width(im), vips_image_get_page_height(im),
           vips_image_get_n_pages(im), vips_image_hasalpha(im) ? 1 : 0);
    g_object_unref(im);
    return 0;
}

int
main(int argc, char **argv)
{
    if (VIPS_INIT(argv[0]))
        return fail("init");
    if (argc == 5 && !strcmp(argv[1], "make"))
        return make(argv[2], argv[3], argv[4]);
    if (argc == 3 && !strcmp(argv[1], "info"))
        return info(argv[2]);
    fprintf(stderr, "usage: imgtool make <W>x<H> jpeg|png|png-alpha|webp-alpha|gif-anim OUT | imgtool info FILE\n");
    return 2;
}
