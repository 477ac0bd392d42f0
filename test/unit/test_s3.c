/* SPDX-License-Identifier: MIT */
/*
 * lib/s3: the Signature Version 4 signer against the four worked examples of the S3 documentation ("Signature
 * Calculations for the Authorization Header: Transferring Payload in a Single Chunk"), SigV4 URI encoding, and the
 * option checks of s3_new (which sends nothing). The signer is also compared with the AWS SDK for JavaScript's
 * over varied requests in test/integration/66_s3_test.py, and the client talks to s3rver there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "crypto/crypto.h"
#include "s3/s3.h"

#define AKID "AKIAIOSFODNN7EXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define HOST "examplebucket.s3.amazonaws.com"
#define EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define T_20130524 1369353600 /* 2013-05-24T00:00:00Z */

static void
sign(const char *method, const char *path, const struct s3_param *q, size_t nq, const struct s3_param *h, size_t nh,
     const char *payload, char *target, char *auth)
{
    struct s3_sig_in in = { .method = method, .host = HOST, .path = path, .query = q, .nquery = nq, .headers = h,
                            .nheaders = nh, .payload_sha256 = payload, .region = "us-east-1",
                            .access_key_id = AKID, .secret_access_key = SECRET, .unix_s = T_20130524 };
    char date[S3_AMZ_DATE_LEN];
    struct ch_err err = { 0 };

    assert_int_equal(s3_sign(&in, target, 512, auth, 512, date, &err), CH_OK);
    assert_string_equal(date, "20130524T000000Z");
}

static void
test_sign_get_object_with_range_matches_the_aws_example(void **state)
{
    struct s3_param h[] = { { "Range", "bytes=0-9" } };
    char target[512], auth[512];
    (void)state;
    sign("GET", "/test.txt", NULL, 0, h, 1, EMPTY, target, auth);
    assert_string_equal(target, "/test.txt");
    assert_string_equal(auth, "AWS4-HMAC-SHA256 Credential=" AKID "/20130524/us-east-1/s3/aws4_request, "
                        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

static void
test_sign_put_object_encodes_the_key_and_signs_extra_headers(void **state)
{
    struct s3_param h[] = { { "x-amz-storage-class", "REDUCED_REDUNDANCY" },
                            { "Date", "Fri, 24 May 2013 00:00:00 GMT" } };
    char target[512], auth[512];
    (void)state;
    sign("PUT", "/test$file.text", NULL, 0, h, 2, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
         target, auth);
    assert_string_equal(target, "/test%24file.text");
    assert_non_null(strstr(auth, "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "));
    assert_non_null(strstr(auth, "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"));
}

static void
test_sign_bare_query_name_is_signed_as_name_equals(void **state)
{
    struct s3_param q[] = { { "lifecycle", NULL } };
    char target[512], auth[512];
    (void)state;
    sign("GET", "/", q, 1, NULL, 0, EMPTY, target, auth);
    assert_string_equal(target, "/?lifecycle=");
    assert_non_null(strstr(auth, "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"));
}

static void
test_sign_query_parameters_are_sorted_and_encoded(void **state)
{
    struct s3_param q[] = { { "prefix", "J" }, { "max-keys", "2" } }; /* given out of order on purpose */
    char target[512], auth[512];
    (void)state;
    sign("GET", "/", q, 2, NULL, 0, EMPTY, target, auth);
    assert_string_equal(target, "/?max-keys=2&prefix=J");
    assert_non_null(strstr(auth, "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"));
}

static void
test_sign_header_values_are_trimmed_and_whitespace_collapsed(void **state)
{
    struct s3_param a[] = { { "Range", "bytes=0-9" } }, b[] = { { "RANGE", "  bytes=0-9 \t " } };
    char t1[512], a1[512], t2[512], a2[512];
    (void)state;
    sign("GET", "/test.txt", NULL, 0, a, 1, EMPTY, t1, a1);
    sign("GET", "/test.txt", NULL, 0, b, 1, EMPTY, t2, a2);
    assert_string_equal(a1, a2);
}

static void
test_sign_refuses_malformed_input(void **state)
{
    struct s3_sig_in in = { .method = "GET", .host = HOST, .path = "no-slash", .payload_sha256 = EMPTY,
                            .region = "us-east-1", .access_key_id = AKID, .secret_access_key = SECRET };
    char target[512], auth[512], date[S3_AMZ_DATE_LEN], small[8];
    (void)state;
    assert_int_equal(s3_sign(&in, target, sizeof target, auth, sizeof auth, date, NULL), CH_EINVAL);
    in.path = "/x";
    in.payload_sha256 = "not-a-digest";
    assert_int_equal(s3_sign(&in, target, sizeof target, auth, sizeof auth, date, NULL), CH_EINVAL);
    in.payload_sha256 = "UNSIGNED-PAYLOAD";
    assert_int_equal(s3_sign(&in, target, sizeof target, auth, sizeof auth, date, NULL), CH_OK);
    in.path = "/a-rather-long-key-name";
    assert_int_equal(s3_sign(&in, small, sizeof small, auth, sizeof auth, date, NULL), CH_EINVAL);
    assert_int_equal(s3_sign(&in, target, sizeof target, small, sizeof small, date, NULL), CH_EINVAL);
}

static void
test_uri_encode_keeps_unreserved_only(void **state)
{
    static const struct {
        const char *in;
        bool slash;
        const char *out;
    } cases[] = {
        { "a-b_c.d~e", true, "a-b_c.d~e" },
        { "dir/file name+1", true, "dir/file%20name%2B1" },
        { "dir/file", false, "dir%2Ffile" },
        { "caf\xc3\xa9", true, "caf%C3%A9" },
        { "!*'()$&=?#%", true, "%21%2A%27%28%29%24%26%3D%3F%23%25" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[128] = "";
        assert_true(s3_uri_encode(cases[i].in, strlen(cases[i].in), cases[i].slash, out, sizeof out));
        assert_string_equal(out, cases[i].out);
    }
    char fits[4] = "", tiny[3] = "";
    assert_true(s3_uri_encode(" ", 1, true, fits, sizeof fits)); /* "%20" and the NUL: 4 bytes */
    assert_false(s3_uri_encode(" ", 1, true, tiny, sizeof tiny));
}

static struct s3 *
client(const char *endpoint, const char *bucket, bool ssl, enum s3_path_style ps, const char *prefix)
{
    struct s3_opts o = { .endpoint = endpoint, .bucket = bucket, .region = "", .access_key_id = "k",
                         .secret_access_key = "s", .path_prefix = prefix, .use_ssl = ssl, .path_style = ps };
    struct s3 *s = NULL;
    struct ch_err err = { 0 };

    if (s3_new(&o, &s, &err) != CH_OK)
        fail_msg("s3_new(%s, %s): %s", endpoint, bucket, err.msg);
    return s;
}

static void
test_path_style_auto_is_virtual_host_on_aws_only(void **state)
{
    static const struct {
        const char *endpoint, *bucket;
        bool ssl;
        enum s3_path_style ps;
        const char *want;
    } cases[] = {
        { "s3.eu-west-1.amazonaws.com", "media", true, S3_PATH_AUTO, "https://media.s3.eu-west-1.amazonaws.com (" },
        { "s3.amazonaws.com", "my.dotted.bucket", true, S3_PATH_AUTO, "https://s3.amazonaws.com/my.dotted.bucket (" },
        { "127.0.0.1:9000", "media", false, S3_PATH_AUTO, "http://127.0.0.1:9000/media (path style" },
        { "minio.internal:9000", "media", true, S3_PATH_AUTO, "https://minio.internal:9000/media (" },
        { "http://localhost:9000", "media", true, S3_PATH_OFF, "http://media.localhost:9000 (virtual-host" },
        { "https://s3.amazonaws.com/", "media", false, S3_PATH_ON, "https://s3.amazonaws.com/media (" },
        { "[::1]:9000", "media", false, S3_PATH_AUTO, "http://[::1]:9000/media (" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct s3 *s = client(cases[i].endpoint, cases[i].bucket, cases[i].ssl, cases[i].ps, "");
        if (strncmp(s3_describe(s), cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("%s: got %s, want %s...", cases[i].endpoint, s3_describe(s), cases[i].want);
        s3_free(s);
    }
    struct s3 *s = client("127.0.0.1:9000", "b-1", false, S3_PATH_AUTO, "//chat/files//");
    assert_non_null(strstr(s3_describe(s), "keys under chat/files)"));
    s3_free(s);
}

static void
test_new_names_the_bad_key(void **state)
{
    static const struct {
        const char *endpoint, *bucket, *region, *akid, *secret;
        enum s3_path_style ps;
        const char *field;
    } cases[] = {
        { "", "b", "", "k", "s", S3_PATH_AUTO, "endpoint" },
        { "host/path", "b", "", "k", "s", S3_PATH_AUTO, "endpoint" },
        { "host:0", "b", "", "k", "s", S3_PATH_AUTO, "endpoint" },
        { "host:99999", "b", "", "k", "s", S3_PATH_AUTO, "endpoint" },
        { "ftp://host", "b", "", "k", "s", S3_PATH_AUTO, "endpoint" },
        { "host", "", "", "k", "s", S3_PATH_AUTO, "bucket" },
        { "host", "a/b", "", "k", "s", S3_PATH_AUTO, "bucket" },
        { "host", "b", "EU West", "k", "s", S3_PATH_AUTO, "region" },
        { "host", "b", "", "", "s", S3_PATH_AUTO, "access_key_id" },
        { "host", "b", "", "k", "", S3_PATH_AUTO, "secret_access_key" },
        { "host", "Upper_Case", "", "k", "s", S3_PATH_OFF, "path_style" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct s3_opts o = { .endpoint = cases[i].endpoint, .bucket = cases[i].bucket, .region = cases[i].region,
                             .access_key_id = cases[i].akid, .secret_access_key = cases[i].secret,
                             .path_style = cases[i].ps };
        struct s3 *s = NULL;
        struct ch_err err = { 0 };
        assert_int_equal(s3_new(&o, &s, &err), CH_EINVAL);
        assert_null(s);
        if (strcmp(err.field, cases[i].field) != 0 || !strstr(err.msg, "core.assets.s3."))
            fail_msg("case %zu: field %s, msg %s", i, err.field, err.msg);
    }
    assert_int_equal(s3_path_style_parse("auto"), S3_PATH_AUTO);
    assert_int_equal(s3_path_style_parse("true"), S3_PATH_ON);
    assert_int_equal(s3_path_style_parse("false"), S3_PATH_OFF);
    assert_int_equal(s3_path_style_parse("maybe"), -1);
}

static void
test_unreachable_endpoint_is_unavailable_quickly(void **state)
{
    /* port 1 on loopback: nothing listens, the connection is refused at once */
    struct s3 *s = client("127.0.0.1:1", "bucket", false, S3_PATH_AUTO, "");
    struct ch_err err = { 0 };
    char buf[16];
    size_t got = 99;
    (void)state;
    assert_int_equal(s3_bucket_ensure(s, &err), CH_EUNAVAIL);
    assert_non_null(strstr(err.msg, "cannot reach S3 at http://127.0.0.1:1"));
    assert_int_equal(s3_get_range(s, "attachments/x", 0, sizeof buf, buf, &got, &err), CH_EUNAVAIL);
    assert_int_equal(got, 0);
    assert_int_equal(s3_delete(s, "attachments/x", &err), CH_EUNAVAIL);
    assert_int_equal(s3_head(s, "attachments/x", NULL, &err), CH_EUNAVAIL);
    s3_free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_get_object_with_range_matches_the_aws_example),
        cmocka_unit_test(test_sign_put_object_encodes_the_key_and_signs_extra_headers),
        cmocka_unit_test(test_sign_bare_query_name_is_signed_as_name_equals),
        cmocka_unit_test(test_sign_query_parameters_are_sorted_and_encoded),
        cmocka_unit_test(test_sign_header_values_are_trimmed_and_whitespace_collapsed),
        cmocka_unit_test(test_sign_refuses_malformed_input),
        cmocka_unit_test(test_uri_encode_keeps_unreserved_only),
        cmocka_unit_test(test_path_style_auto_is_virtual_host_on_aws_only),
        cmocka_unit_test(test_new_names_the_bad_key),
        cmocka_unit_test(test_unreachable_endpoint_is_unavailable_quickly),
    };
    if (crypto_init() != CH_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
