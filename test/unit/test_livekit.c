/* SPDX-License-Identifier: MIT */
/* lib/livekit without a LiveKit: tokens minted and verified (and every way a token can be wrong), webhook
 * signatures over the body's SHA-256, and the deterministic room names taken apart again. The interoperability
 * with LiveKit's own SDK is proved by test/integration/64_calls_test.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "livekit/livekit.h"

#define KEY "APIkey"
#define SECRET "a-secret-of-some-length-0123456789"
#define NOW 1800000000

static char *
mint(const char *room, int64_t now, int64_t ttl)
{
    cJSON *v = cJSON_CreateObject();
    cJSON_AddBoolToObject(v, "roomJoin", true);
    cJSON_AddStringToObject(v, "room", room);
    return lk_token_mint(KEY, SECRET, "u1", "User One", "{\"login\":\"one\"}", v, now, ttl);
}

static void
test_token_round_trip_and_refusals(void **state)
{
    cJSON *c = NULL;
    struct ch_err err = { 0 };
    char *t = mint("chatto.server_r@c", NOW, 300);

    (void)state;
    assert_non_null(t);
    assert_int_equal(lk_token_verify(t, KEY, SECRET, NOW + 10, &c, &err), CH_OK);
    assert_string_equal(cJSON_GetObjectItem(c, "sub")->valuestring, "u1");
    assert_string_equal(cJSON_GetObjectItem(c, "name")->valuestring, "User One");
    assert_int_equal((int64_t)cJSON_GetObjectItem(c, "exp")->valuedouble, NOW + 300);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "video"), "room")->valuestring, "chatto.server_r@c");
    cJSON_Delete(c);
    /* expired, wrong key, wrong secret */
    assert_int_equal(lk_token_verify(t, KEY, SECRET, NOW + 300, &c, &err), CH_EAUTH);
    assert_int_equal(lk_token_verify(t, "APIother", SECRET, NOW, &c, &err), CH_EAUTH);
    assert_int_equal(lk_token_verify(t, KEY, "another-secret-0123456789", NOW, &c, &err), CH_EAUTH);
    assert_null(c);
    /* any changed character of the signature or the claims */
    for (size_t i = 0; i < strlen(t); i++) {
        if (t[i] == '.')
            continue;
        char *u = strdup(t);
        u[i] = u[i] == 'A' ? 'B' : 'A';
        assert_int_equal(lk_token_verify(u, KEY, SECRET, NOW, &c, &err), CH_EAUTH);
        free(u);
    }
    free(t);
    /* malformed: no dots, too many, alg none, no exp */
    static const char *const bad[] = { "", "abc", "a.b", "a.b.c.d", "eyJhbGciOiJub25lIn0.eyJpc3MiOiJBUElrZXkifQ.",
                                       "eyJhbGciOiJIUzI1NiJ9.e30.AAAA", "!!.!!.!!" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(lk_token_verify(bad[i], KEY, SECRET, NOW, &c, &err), CH_EAUTH);
    /* validly signed, but without exp: refused as LiveKit refuses it */
    char *noexp = lk_token_mint(KEY, SECRET, "u1", NULL, NULL, NULL, NOW, 0);
    assert_int_equal(lk_token_verify(noexp, KEY, SECRET, NOW, &c, &err), CH_EAUTH);
    free(noexp);
}

/* A webhook's Authorization header as LiveKit makes it: a token whose sha256 claim is the body's. */
static char *
webhook_auth(const char *body, const char *secret, int64_t now)
{
    unsigned char h[32];
    char b64[64];

    crypto_hash_sha256(h, (const unsigned char *)body, strlen(body));
    sodium_bin2base64(b64, sizeof b64, h, sizeof h, sodium_base64_VARIANT_ORIGINAL);
    /* lk_token_mint has no sha256 claim (Chatto never signs webhooks): the test builds the token itself */
    cJSON *claims = cJSON_CreateObject();
    cJSON_AddStringToObject(claims, "iss", KEY);
    cJSON_AddStringToObject(claims, "sha256", b64);
    cJSON_AddNumberToObject(claims, "exp", (double)(now + 300));
    char *payload = cJSON_PrintUnformatted(claims), *h64, *p64, *s64, *out;
    cJSON_Delete(claims);
    const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    size_t hl = sodium_base64_ENCODED_LEN(strlen(hdr), sodium_base64_VARIANT_URLSAFE_NO_PADDING),
           pl = sodium_base64_ENCODED_LEN(strlen(payload), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    h64 = malloc(hl);
    p64 = malloc(pl);
    sodium_bin2base64(h64, hl, (const unsigned char *)hdr, strlen(hdr), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_bin2base64(p64, pl, (const unsigned char *)payload, strlen(payload),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    size_t sl = strlen(h64) + 1 + strlen(p64);
    char *signing = malloc(sl + 1);
    snprintf(signing, sl + 1, "%s.%s", h64, p64);
    unsigned char mac[32];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)signing, sl);
    crypto_auth_hmacsha256_final(&st, mac);
    s64 = malloc(64);
    sodium_bin2base64(s64, 64, mac, sizeof mac, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    out = malloc(sl + 2 + strlen(s64));
    sprintf(out, "%s.%s", signing, s64);
    free(payload);
    free(h64);
    free(p64);
    free(s64);
    free(signing);
    return out;
}

static void
test_webhook_signature_and_parse(void **state)
{
    const char *body = "{\"event\":\"participant_left\",\"id\":\"EV_1\",\"room\":{\"name\":\"chatto.server_r1@c1\"},"
                       "\"participant\":{\"identity\":\"u1\",\"metadata\":\"{}\",\"disconnectReason\":"
                       "\"DUPLICATE_IDENTITY\"}}";
    struct lk_event ev;
    struct ch_err err = { 0 };
    char *auth = webhook_auth(body, SECRET, NOW);

    (void)state;
    assert_int_equal(lk_webhook_receive(auth, body, strlen(body), KEY, SECRET, NOW, &ev, &err), CH_OK);
    assert_string_equal(ev.event, "participant_left");
    assert_string_equal(ev.id, "EV_1");
    assert_string_equal(ev.room, "chatto.server_r1@c1");
    assert_string_equal(ev.identity, "u1");
    assert_int_equal(ev.disconnect_reason, 2);
    /* a changed body, another secret, no header */
    char *tampered = strdup(body);
    tampered[10] = 'X';
    assert_int_equal(lk_webhook_receive(auth, tampered, strlen(tampered), KEY, SECRET, NOW, &ev, &err), CH_EAUTH);
    assert_int_equal(lk_webhook_receive(auth, body, strlen(body), KEY, "other-secret-0123456789", NOW, &ev, &err),
                     CH_EAUTH);
    assert_int_equal(lk_webhook_receive(NULL, body, strlen(body), KEY, SECRET, NOW, &ev, &err), CH_EAUTH);
    free(tampered);
    free(auth);
    /* signed but not an event */
    static const char *const notev[] = { "[]", "{}", "{\"event\":1}", "{\"event\":\"x\",\"room\":[]}", "nope" };
    for (size_t i = 0; i < sizeof notev / sizeof *notev; i++) {
        auth = webhook_auth(notev[i], SECRET, NOW);
        assert_int_equal(lk_webhook_receive(auth, notev[i], strlen(notev[i]), KEY, SECRET, NOW, &ev, &err), CH_EINVAL);
        free(auth);
    }
}

static void
test_room_names(void **state)
{
    char buf[LK_ROOM_NAME_MAX + 1], room[65], call[65];
    struct ch_err err = { 0 };

    (void)state;
    assert_int_equal(lk_room_name("chatto", false, "r_1", "c1", buf, sizeof buf, &err), CH_OK);
    assert_string_equal(buf, "chatto.server_r_1@c1");
    assert_true(lk_room_parse(buf, "chatto", room, call));
    assert_string_equal(room, "r_1");
    assert_string_equal(call, "c1");
    assert_false(lk_room_parse(buf, "other", room, call));
    assert_false(lk_room_parse(buf, "", room, call));
    assert_int_equal(lk_room_name("", true, "dm1", "c2", buf, sizeof buf, &err), CH_OK);
    assert_string_equal(buf, "DM_dm1@c2");
    assert_true(lk_room_parse(buf, "", room, call));
    assert_false(lk_room_parse(buf, "chatto", room, call));
    /* an old name without a call id parses with call "" */
    assert_true(lk_room_parse("chatto.server_r9", "chatto", room, call));
    assert_string_equal(call, "");
    assert_int_equal(lk_room_name("a.b", false, "r", "c", buf, sizeof buf, &err), CH_EINVAL);
    assert_int_equal(lk_room_name("x", false, "r.1", "c", buf, sizeof buf, &err), CH_EINVAL);
    static const char *const bad[] = { "", "chatto.", "chatto.server", "chatto.space_r@c", "chatto.server_@c",
                                       "chatto.server_r@", "chatto.server_r.x@c", "chatto.server_r@c.d" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(lk_room_parse(bad[i], "chatto", room, call));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_round_trip_and_refusals),
        cmocka_unit_test(test_webhook_signature_and_parse),
        cmocka_unit_test(test_room_names),
    };
    if (crypto_init() != CH_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
