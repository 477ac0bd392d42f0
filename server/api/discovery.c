/* SPDX-License-Identifier: MIT */
/* chatto.discovery.v1.ServerDiscoveryService: what a client needs before logging in (public), and
 * chatto.api.v1.ServerService/GetRuntimeConfig: what a signed-in client needs (Web Push key, limits). */
#include "api/api.h"
#include "chat/chat.h"
#include "config/config.h"
#include "json/json.h"
#include "store/store.h"

static enum ch_status
get_server(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const struct cfg *cfg = c->env->cfg;
    cJSON *o = cJSON_CreateObject(), *login;
    char id[40];
    int64_t created = 0;

    (void)in;
    if (store_server_identity(c->env->store, id, sizeof id, &created) != CH_OK) {
        cJSON_Delete(o);
        return ch_err_set(err, CH_EUNAVAIL, NULL, "server is starting; storage not ready yet");
    }
    cJSON_AddStringToObject(o, "name", cfg_str(cfg, CFG_CORE_SERVER_NAME));
    cJSON_AddStringToObject(o, "version", c->env->version);
    cJSON_AddStringToObject(o, "serverId", id);
    json_add_time(o, "createdAt", created);
    cJSON_AddStringToObject(o, "url", c->env->public_url);
    login = cJSON_AddObjectToObject(o, "loginOptions");
    cJSON_AddBoolToObject(login, "directRegistration", cfg_bool(cfg, CFG_AUTH_DIRECT_REGISTRATION));
    cJSON_AddBoolToObject(login, "directLogin", cfg_bool(cfg, CFG_AUTH_DIRECT_LOGIN));
    *out = o;
    return CH_OK;
}

static enum ch_status
get_runtime_config(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const struct cfg *cfg = c->env->cfg;
    const char *vapid = chat_push_public_key(c->env->chat);
    cJSON *o = cJSON_CreateObject(), *rt = cJSON_AddObjectToObject(o, "runtime");

    (void)in;
    (void)err;
    cJSON_AddBoolToObject(rt, "pushNotificationsEnabled", vapid != NULL);
    if (vapid)
        cJSON_AddStringToObject(rt, "vapidPublicKey", vapid);
    if (cfg_bool(cfg, CFG_LIVEKIT_ENABLED)) /* calls are on: where clients reach LiveKit */
        cJSON_AddStringToObject(rt, "livekitUrl", cfg_str(cfg, CFG_LIVEKIT_URL));
    cJSON_AddBoolToObject(rt, "videoProcessingEnabled", false);
    json_add_int64_str(rt, "maxUploadSize", cfg_int(cfg, CFG_CORE_ASSETS_MAX_UPLOAD_SIZE));
    json_add_int64_str(rt, "maxVideoUploadSize", cfg_int(cfg, CFG_CORE_ASSETS_MAX_UPLOAD_SIZE));
    cJSON_AddNumberToObject(rt, "messageEditWindowSeconds", (double)(cfg_int(cfg, CFG_CHAT_EDIT_WINDOW) / 1000));
    *out = o;
    return CH_OK;
}

const struct api_method discovery_methods[] = {
    { "chatto.discovery.v1.ServerDiscoveryService", "GetServer", API_AUTH_NONE, 4096, get_server },
    { "chatto.api.v1.ServerService", "GetRuntimeConfig", API_AUTH_USER, 4096, get_runtime_config },
    { 0 },
};
