/* SPDX-License-Identifier: MIT */
/*
 * The client side of the search protocol: a query goes to whichever provider of the queue group NATS picks (only
 * providers that caught up subscribe), the status to all of them. HTTP worker threads; no lock held.
 */
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "search/search.h"
#include "store/store.h"

enum ch_status
search_client_query(struct store *st, const cJSON *req, int64_t timeout_ms, cJSON **resp, struct ch_err *err)
{
    char *body = cJSON_PrintUnformatted(req), *reply = NULL;
    size_t rlen = 0;
    cJSON *o = NULL;
    const cJSON *e;
    enum ch_status s;

    if (!body)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    s = store_core_request(st, SEARCH_SUBJECT_QUERY, body, strlen(body), timeout_ms, &reply, &rlen, NULL);
    free(body);
    if (s != CH_OK)
        return ch_err_set(err, CH_EUNAVAIL, NULL, "search is not available right now (the index is being built or "
                                                  "no search provider runs); retry shortly");
    if (json_parse_object(reply, rlen, 16, &o, NULL) != CH_OK) {
        free(reply);
        return ch_err_set(err, CH_EINTERNAL, NULL, "the search provider sent a malformed answer");
    }
    free(reply);
    if (cJSON_IsString(e = cJSON_GetObjectItemCaseSensitive(o, "error"))) {
        bool invalid = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "invalid"));
        s = ch_err_set(err, invalid ? CH_EINVAL : CH_EUNAVAIL, NULL, "%s",
                       invalid ? e->valuestring : "the search index failed; retry shortly");
        cJSON_Delete(o);
        return s;
    }
    *resp = o;
    return CH_OK;
}

const char *
search_client_status(struct store *st, int64_t timeout_ms)
{
    static const char ping[] = "{\"ping\":true}";
    char *reply = NULL;
    size_t rlen = 0;
    cJSON *o = NULL;
    const char *state = "unavailable";

    if (store_core_request(st, SEARCH_SUBJECT_QUERY, ping, sizeof ping - 1, timeout_ms, &reply, &rlen, NULL) == CH_OK) {
        free(reply);
        return "ready";
    }
    if (store_core_request(st, SEARCH_SUBJECT_STATUS, "{}", 2, timeout_ms, &reply, &rlen, NULL) == CH_OK &&
        json_parse_object(reply, rlen, 4, &o, NULL) == CH_OK)
        state = "indexing"; /* a provider exists but has not caught up (else it would have answered the ping) */
    cJSON_Delete(o);
    free(reply);
    return state;
}
