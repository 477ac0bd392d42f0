/* SPDX-License-Identifier: MIT */
/*
 * pushtool: lib/push as a command, so test/integration/69_webpush_test.py can check it against Node's crypto and a
 * loopback push service. Reads one JSON request on stdin and writes one JSON answer on stdout:
 *   {"op":"keys"}                                  -> {"private","public"}       a fresh VAPID key pair
 *   {"op":"encrypt","p256dh","auth","payload"}     -> {"body"} (base64url)       RFC 8291 aes128gcm
 *   {"op":"header","endpoint","subject","now","vapidPrivate"} -> {"authorization"}
 *   {"op":"send","endpoint","p256dh","auth","payload","subject","ttl","urgency","topic","allowLoopback",
 *    "timeoutMs","vapidPrivate"}                   -> {"result","httpStatus","error","vapidPublic"}
 * "payload" is text; "payloadB64" (base64) gives bytes instead. Without "vapidPrivate" a key pair is generated.
 * Any failure of lib/push is reported in the answer ({"result": ch_status_str, "error": text}), exit status 0;
 * exit status 2 means the request itself was malformed.
 */
#include <cjson/cJSON.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "push/push.h"

static const char *
str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double
num(const cJSON *o, const char *name, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static char *
read_stdin(void)
{
    size_t cap = 1 << 14, len = 0, r;
    char *text = malloc(cap), *p;

    while (text && (r = fread(text + len, 1, cap - len - 1, stdin)) > 0) {
        len += r;
        if (len + 1 == cap) {
            if (!(p = realloc(text, cap *= 2)))
                free(text);
            text = p;
        }
    }
    if (text)
        text[len] = '\0';
    return text;
}

static int
enum_urgency(const char *s)
{
    static const char *names[] = { "high", "normal", "low", "very-low" };

    for (int i = 0; s && i < 4; i++)
        if (!strcmp(s, names[i]))
            return i;
    return s ? 99 : PUSH_URGENCY_HIGH; /* an unknown name goes through, for push_send to refuse */
}

/* The VAPID key of the request, or a fresh one. */
static enum ch_status
vapid_of(const cJSON *req, struct push_vapid **k, struct ch_err *err)
{
    const char *priv = str(req, "vapidPrivate");
    return priv ? push_vapid_parse(priv, str(req, "vapidPublic"), k, err) : push_vapid_generate(k, err);
}

static void
fail(cJSON *out, enum ch_status s, const struct ch_err *err)
{
    cJSON_AddStringToObject(out, "result", ch_status_str(s));
    cJSON_AddStringToObject(out, "error", err->msg);
    cJSON_AddStringToObject(out, "field", err->field);
}

int
main(void)
{
    char *text = read_stdin(), *printed;
    cJSON *req, *out = cJSON_CreateObject();
    struct ch_err err = { 0 };
    struct push_vapid *k = NULL;
    unsigned char *payload = NULL;
    size_t payload_len = 0;
    enum ch_status s = CH_OK;
    const char *op;

    if (crypto_init() != CH_OK || !text || !out)
        return 1;
    if (!(req = cJSON_Parse(text)) || !(op = str(req, "op"))) {
        fprintf(stderr, "pushtool: stdin must be a JSON object with an \"op\"\n");
        return 2;
    }
    if (str(req, "payloadB64")) {
        const char *b = str(req, "payloadB64");
        payload = malloc(strlen(b) + 1);
        if (!payload || !crypto_base64_decode_any(b, strlen(b), payload, strlen(b) + 1, &payload_len)) {
            fprintf(stderr, "pushtool: payloadB64 is not base64\n");
            return 2;
        }
    } else if (str(req, "payload")) {
        payload_len = strlen(str(req, "payload"));
        payload = (unsigned char *)strdup(str(req, "payload"));
    }

    if (!strcmp(op, "keys")) {
        char priv[PUSH_PRIVATE_KEY_B64 + 1];
        if ((s = push_vapid_generate(&k, &err)) == CH_OK) {
            push_vapid_private(k, priv);
            cJSON_AddStringToObject(out, "private", priv);
            cJSON_AddStringToObject(out, "public", push_vapid_public(k));
            sodium_memzero(priv, sizeof priv);
        }
    } else if (!strcmp(op, "encrypt")) {
        unsigned char *body = NULL;
        size_t len = 0;
        if ((s = push_encrypt(str(req, "p256dh"), str(req, "auth"), payload, payload_len, NULL, &body, &len,
                              &err)) == CH_OK) {
            char *b = malloc(len * 4 / 3 + 4);
            if (!b)
                return 1;
            sodium_bin2base64(b, len * 4 / 3 + 4, body, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
            cJSON_AddStringToObject(out, "body", b);
            free(b);
            free(body);
        }
    } else if (!strcmp(op, "header")) {
        char *hdr = NULL;
        if ((s = vapid_of(req, &k, &err)) == CH_OK &&
            (s = push_vapid_header(k, str(req, "endpoint"), str(req, "subject"), (int64_t)num(req, "now", 0), &hdr,
                                   &err)) == CH_OK) {
            cJSON_AddStringToObject(out, "authorization", hdr);
            free(hdr);
        }
    } else if (!strcmp(op, "send")) {
        long status = 0;
        if ((s = vapid_of(req, &k, &err)) == CH_OK) {
            struct push_config cfg = {
                .vapid = k,
                .subject = str(req, "subject"),
                .timeout_ms = (long)num(req, "timeoutMs", 0),
                .allow_loopback = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "allowLoopback")),
            };
            struct push_msg m = {
                .endpoint = str(req, "endpoint"),
                .p256dh = str(req, "p256dh"),
                .auth = str(req, "auth"),
                .payload = payload,
                .len = payload_len,
                .ttl_s = (int)num(req, "ttl", 60),
                .urgency = (enum push_urgency)enum_urgency(str(req, "urgency")),
                .topic = str(req, "topic"),
            };
            cJSON_AddStringToObject(out, "vapidPublic", push_vapid_public(k));
            s = push_send(&cfg, &m, &status, &err);
        }
        cJSON_AddNumberToObject(out, "httpStatus", (double)status);
    } else {
        fprintf(stderr, "pushtool: unknown op %s\n", op);
        return 2;
    }
    if (s == CH_OK)
        cJSON_AddStringToObject(out, "result", "ok");
    else
        fail(out, s, &err);

    printed = cJSON_PrintUnformatted(out);
    if (!printed)
        return 1;
    puts(printed);
    free(printed);
    cJSON_Delete(out);
    cJSON_Delete(req);
    push_vapid_free(k);
    free(payload);
    free(text);
    return 0;
}
