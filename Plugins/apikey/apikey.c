/*
 * apikey: an auth provider in plain C, written from northstar_plugin.h alone.
 *
 * It accepts `Authorization: ApiKey <key>` and maps each key to a tenant, a
 * user, an env and scopes. Keys are stored in config only as SHA-256 hashes:
 *
 *   { "keys": [ { "sha256": "<64 hex digits>", "tenant_id": "t_acme",
 *                 "user_id": "ingest-bot", "env": "dev",
 *                 "scopes": ["chat:read", "chat:write"] } ] }
 *
 * `printf %s "$KEY" | sha256sum` gives the hash of a key. Any other scheme is
 * passed to the next provider in the chain; an ApiKey that matches no hash is
 * rejected.
 */
#include "northstar_plugin.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The plugin's name: its config entry's "name", and what auth.chain lists. */
#define PLUGIN_NAME "apikey"

#define MAX_FIELD 256
/* A view of a string literal, for static info. */
#define LITERAL(text) {text, sizeof(text) - 1}

/* One configured key. The strings are copies: config views die after init. */
typedef struct api_key {
    unsigned char hash[SHA256_DIGEST_LENGTH];
    char tenant_id[MAX_FIELD];
    char user_id[MAX_FIELD];
    char env[MAX_FIELD];
    char scopes[MAX_FIELD * 4]; /* space-separated, as the "scopes" claim wants */
} api_key;

/* The instance: immutable after init, so `verify` may run on many threads. */
typedef struct apikey_plugin {
    const ns_host_api *api;
    ns_host *host;
    api_key *keys;
    uint64_t key_count;
} apikey_plugin;

static ns_str str(const char *text) {
    ns_str s = {text, strlen(text)};
    return s;
}

/* Fail init with a message naming the config key, as the ABI asks. */
static ns_status config_error(apikey_plugin *p, ns_error *error, const char *message) {
    p->api->error_set(error, str(message));
    return NS_ERR_CONFIG;
}

/* Copy the string at a JSON Pointer into `out`; NS_ERR_CONFIG if absent or too long. */
static ns_status read_string(apikey_plugin *p, const char *pointer, char *out, size_t cap) {
    int32_t type = 0;
    ns_str value = {0};
    if (p->api->config_get(p->host, str(pointer), &type, &value) != NS_OK) return NS_ERR_CONFIG;
    if (type != NS_JSON_STRING || value.len == 0 || value.len >= cap) return NS_ERR_CONFIG;
    memcpy(out, value.ptr, value.len);
    out[value.len] = '\0';
    return NS_OK;
}

/* Read a count (object members or array elements) at a JSON Pointer. */
static int read_count(apikey_plugin *p, const char *pointer, int32_t want_type, uint64_t *out) {
    int32_t type = 0;
    ns_str value = {0};
    if (p->api->config_get(p->host, str(pointer), &type, &value) != NS_OK || type != want_type) return 0;
    char digits[32] = {0};
    memcpy(digits, value.ptr, value.len < 31 ? value.len : 31);
    *out = strtoull(digits, NULL, 10);
    return 1;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Parse one entry of "keys"; refuses unknown fields so a typo is not ignored. */
static ns_status read_key(apikey_plugin *p, uint64_t index, api_key *key, ns_error *error) {
    static const char *known[] = {"sha256", "tenant_id", "user_id", "env", "scopes"};
    char pointer[64], field[MAX_FIELD];
    ns_str name;
    snprintf(pointer, sizeof pointer, "/keys/%llu", (unsigned long long)index);
    for (uint64_t i = 0; p->api->config_key(p->host, str(pointer), i, &name) == NS_OK; i++) {
        int ok = 0;
        for (size_t k = 0; k < sizeof known / sizeof *known; k++)
            ok |= strlen(known[k]) == name.len && memcmp(known[k], name.ptr, name.len) == 0;
        if (!ok) return config_error(p, error, "keys[]: unknown field (known: sha256, tenant_id, user_id, env, scopes)");
    }

    snprintf(field, sizeof field, "%s/sha256", pointer);
    if (read_string(p, field, field, sizeof field) != NS_OK || strlen(field) != 64)
        return config_error(p, error, "keys[].sha256: required, 64 hex digits (printf %s \"$KEY\" | sha256sum)");
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        int hi = hex_value(field[2 * i]), lo = hex_value(field[2 * i + 1]);
        if (hi < 0 || lo < 0) return config_error(p, error, "keys[].sha256: not hexadecimal");
        key->hash[i] = (unsigned char)(hi << 4 | lo);
    }

    snprintf(field, sizeof field, "%s/tenant_id", pointer);
    if (read_string(p, field, key->tenant_id, sizeof key->tenant_id) != NS_OK)
        return config_error(p, error, "keys[].tenant_id: required string");
    snprintf(field, sizeof field, "%s/user_id", pointer);
    if (read_string(p, field, key->user_id, sizeof key->user_id) != NS_OK)
        return config_error(p, error, "keys[].user_id: required string");
    snprintf(field, sizeof field, "%s/env", pointer);
    if (read_string(p, field, key->env, sizeof key->env) != NS_OK)
        return config_error(p, error, "keys[].env: required string (the env this key is for)");

    uint64_t scope_count = 0;
    snprintf(field, sizeof field, "%s/scopes", pointer);
    if (!read_count(p, field, NS_JSON_ARRAY, &scope_count))
        return config_error(p, error, "keys[].scopes: required array of strings");
    for (uint64_t s = 0; s < scope_count; s++) {
        char scope_pointer[96], scope[MAX_FIELD];
        snprintf(scope_pointer, sizeof scope_pointer, "%s/scopes/%llu", pointer, (unsigned long long)s);
        if (read_string(p, scope_pointer, scope, sizeof scope) != NS_OK || strchr(scope, ' '))
            return config_error(p, error, "keys[].scopes[]: each scope is a non-empty string without spaces");
        if (strlen(key->scopes) + strlen(scope) + 2 > sizeof key->scopes)
            return config_error(p, error, "keys[].scopes: too many scopes");
        if (s > 0) strcat(key->scopes, " ");
        strcat(key->scopes, scope);
    }
    return NS_OK;
}

/* init: THREAD main, before the port is bound. Copies everything it keeps. */
static ns_status apikey_init(const ns_host_api *api, ns_host *host, ns_str config_json,
                             void **out_instance, ns_error *error) {
    (void)config_json; /* read through config_get instead */
    apikey_plugin *p = api->alloc(sizeof *p);
    if (!p) return NS_ERR_INTERNAL;
    memset(p, 0, sizeof *p);
    p->api = api;
    p->host = host;

    ns_str name;
    for (uint64_t i = 0; api->config_key(host, str(""), i, &name) == NS_OK; i++) {
        if (name.len != 4 || memcmp(name.ptr, "keys", 4) != 0) {
            api->free(p);
            api->error_set(error, str("unknown key in apikey config (known: keys)"));
            return NS_ERR_CONFIG;
        }
    }
    if (!read_count(p, "/keys", NS_JSON_ARRAY, &p->key_count) || p->key_count == 0) {
        api->free(p);
        api->error_set(error, str("keys: required, a non-empty array of {sha256, tenant_id, user_id, env, scopes}"));
        return NS_ERR_CONFIG;
    }
    p->keys = api->alloc(sizeof(api_key) * p->key_count);
    if (!p->keys) { api->free(p); return NS_ERR_INTERNAL; }
    memset(p->keys, 0, sizeof(api_key) * p->key_count);
    for (uint64_t i = 0; i < p->key_count; i++) {
        ns_status status = read_key(p, i, &p->keys[i], error);
        if (status != NS_OK) { api->free(p->keys); api->free(p); return status; }
    }
    *out_instance = p;
    return NS_OK;
}

static int scheme_is_apikey(ns_str scheme) {
    static const char want[] = "apikey";
    if (scheme.len != sizeof want - 1) return 0;
    for (uint64_t i = 0; i < scheme.len; i++) {
        char c = scheme.ptr[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != want[i]) return 0;
    }
    return 1;
}

/* verify: THREAD any worker, concurrently. Reads only immutable state. */
static ns_status apikey_verify(void *instance, const ns_credential *credential, ns_claims *claims,
                               ns_auth_decision *out_decision, ns_error *error) {
    apikey_plugin *p = instance;
    (void)error;
    if (!scheme_is_apikey(credential->scheme)) {
        *out_decision = NS_AUTH_PASS;
        return NS_OK;
    }
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)credential->value.ptr, credential->value.len, digest);

    /* Compare against every key in constant time: no early exit, no timing tell. */
    const api_key *match = NULL;
    for (uint64_t i = 0; i < p->key_count; i++) {
        if (CRYPTO_memcmp(digest, p->keys[i].hash, sizeof digest) == 0) match = &p->keys[i];
    }
    if (!match) {
        *out_decision = NS_AUTH_REJECT;
        return NS_OK;
    }
    p->api->claim_set(claims, str("tenant_id"), str(match->tenant_id));
    p->api->claim_set(claims, str("user_id"), str(match->user_id));
    p->api->claim_set(claims, str("env"), str(match->env));
    p->api->claim_set(claims, str("scopes"), str(match->scopes));
    *out_decision = NS_AUTH_ACCEPT;
    return NS_OK;
}

static void apikey_destroy(void *instance) {
    apikey_plugin *p = instance;
    p->api->free(p->keys);
    p->api->free(p);
}

static const ns_auth_vtable apikey_vtable = {
    .struct_size = sizeof(ns_auth_vtable),
    .minor = NS_AUTH_VTABLE_MINOR,
    .verify = apikey_verify,
    .mint = NULL, /* keys are issued by operators, not minted */
};

static const ns_plugin_info apikey_info = {
    .struct_size = sizeof(ns_plugin_info),
    .abi_major = NS_ABI_MAJOR,
    .abi_minor = NS_ABI_MINOR,
    .kind = NS_KIND_AUTH,
    .name = LITERAL(PLUGIN_NAME),
    .version = LITERAL("1.0.0"),
    .description = LITERAL("API keys, SHA-256 hashed in config, mapped to tenant, user, env and scopes"),
    .init = apikey_init,
    .start = NULL,
    .stop = NULL,
    .destroy = apikey_destroy,
    .vtable = &apikey_vtable,
};

/* The one exported symbol. The 1.0 entries are all this plugin needs. */
ns_status northstar_plugin_v1(const ns_host_offer *offer, const ns_plugin_info **out_info,
                              ns_error *error) {
    (void)offer;
    (void)error;
    *out_info = &apikey_info;
    return NS_OK;
}
