/* SPDX-License-Identifier: MIT */
/*
 * s3sign: lib/s3's Signature Version 4 signer as a command, so test/integration/66_s3_test.py can compare it with
 * the AWS SDK for JavaScript's signer on the same requests. Reads a JSON array of requests on stdin and writes a
 * JSON array of answers, in order:
 *   in:  {"method","host","path" (not encoded),"query":[[name, value|null],...],"headers":[[name, value],...],
 *         "payload" (hex SHA-256 or UNSIGNED-PAYLOAD),"region","accessKeyId","secretAccessKey","time" (Unix s)}
 *   out: {"target" (encoded path and query),"authorization","amzDate"} or {"error": "..."}
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "s3/s3.h"

static const char *
str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* [[name, value], ...] into params (value null -> NULL). */
static size_t
pairs(const cJSON *arr, struct s3_param *out, size_t max)
{
    size_t n = 0;
    const cJSON *p;

    cJSON_ArrayForEach(p, arr) {
        if (n == max || cJSON_GetArraySize(p) != 2)
            break;
        const cJSON *k = cJSON_GetArrayItem(p, 0), *v = cJSON_GetArrayItem(p, 1);
        out[n].name = cJSON_IsString(k) ? k->valuestring : "";
        out[n].value = cJSON_IsString(v) ? v->valuestring : NULL;
        n++;
    }
    return n;
}

int
main(void)
{
    size_t cap = 1 << 16, len = 0, r;
    char *text = malloc(cap);
    cJSON *in, *out, *req;

    if (crypto_init() != CH_OK || !text)
        return 1;
    while ((r = fread(text + len, 1, cap - len - 1, stdin)) > 0) {
        len += r;
        if (len + 1 == cap && !(text = realloc(text, cap *= 2)))
            return 1;
    }
    text[len] = '\0';
    if (!(in = cJSON_Parse(text)) || !cJSON_IsArray(in)) {
        fprintf(stderr, "s3sign: stdin must be a JSON array of requests\n");
        return 2;
    }
    out = cJSON_CreateArray();
    cJSON_ArrayForEach(req, in) {
        struct s3_param q[32], h[32];
        char target[8192], auth[2048], date[S3_AMZ_DATE_LEN];
        struct ch_err err = { 0 };
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(req, "time");
        struct s3_sig_in si = {
            .method = str(req, "method"), .host = str(req, "host"), .path = str(req, "path"),
            .query = q, .nquery = pairs(cJSON_GetObjectItemCaseSensitive(req, "query"), q, 32),
            .headers = h, .nheaders = pairs(cJSON_GetObjectItemCaseSensitive(req, "headers"), h, 32),
            .payload_sha256 = str(req, "payload"), .region = str(req, "region"),
            .access_key_id = str(req, "accessKeyId"), .secret_access_key = str(req, "secretAccessKey"),
            .unix_s = cJSON_IsNumber(t) ? (int64_t)t->valuedouble : 0,
        };
        cJSON *o = cJSON_CreateObject();
        if (s3_sign(&si, target, sizeof target, auth, sizeof auth, date, &err) == CH_OK) {
            cJSON_AddStringToObject(o, "target", target);
            cJSON_AddStringToObject(o, "authorization", auth);
            cJSON_AddStringToObject(o, "amzDate", date);
        } else {
            cJSON_AddStringToObject(o, "error", err.msg);
        }
        cJSON_AddItemToArray(out, o);
    }
    char *s = cJSON_PrintUnformatted(out);
    puts(s);
    free(s);
    free(text);
    cJSON_Delete(in);
    cJSON_Delete(out);
    return 0;
}
