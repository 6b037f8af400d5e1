/*
 * One auth plugin, compiled by the tests into many variants (cc -DCASE_...),
 * each breaking one load rule. The default variant is well-behaved: it
 * passes every credential, and records start and stop in the file its
 * config names ("log"), so tests can check the order.
 */
#include "northstar_plugin.h"

#include <stdio.h>
#include <string.h>

#ifndef PLUGIN_NAME
#define PLUGIN_NAME "fixture"
#endif

static const ns_host_api *api;
static ns_host *host_handle;

typedef struct fixture { char log[512]; int fail_start; } fixture;
static fixture the_instance;

static ns_str str(const char *text) { ns_str s = {text, strlen(text)}; return s; }

static void record(const char *event) {
    if (!the_instance.log[0]) return;
    FILE *f = fopen(the_instance.log, "a");
    if (f) { fprintf(f, "%s %s\n", event, PLUGIN_NAME); fclose(f); }
}

static ns_status fixture_init(const ns_host_api *a, ns_host *host, ns_str config, void **out, ns_error *error) {
    (void)config;
    api = a;
    host_handle = host;
    int32_t type;
    ns_str value;
    memset(&the_instance, 0, sizeof the_instance);
    if (a->config_get(host, str("/bad"), &type, &value) == NS_OK) {
        a->error_set(error, str("bad: this key is not allowed"));
        return NS_ERR_CONFIG;
    }
    if (a->config_get(host, str("/fail_init"), &type, &value) == NS_OK) {
        a->error_set(error, str("the widget store is unreachable"));
        return NS_ERR_UNAVAILABLE;
    }
    if (a->config_get(host, str("/log"), &type, &value) == NS_OK && type == NS_JSON_STRING && value.len < 511) {
        memcpy(the_instance.log, value.ptr, value.len);
    }
    the_instance.fail_start = a->config_get(host, str("/fail_start"), &type, &value) == NS_OK;
    *out = &the_instance;
    return NS_OK;
}

static ns_status fixture_start(void *instance, ns_error *error) {
    fixture *f = instance;
    if (f->fail_start) {
        api->error_set(error, str("cannot bind widget"));
        return NS_ERR_UNAVAILABLE;
    }
    record("start");
    return NS_OK;
}

static void fixture_stop(void *instance) { (void)instance; record("stop"); }

static ns_status fixture_verify(void *instance, const ns_credential *credential, ns_claims *claims,
                                ns_auth_decision *out, ns_error *error) {
    (void)instance; (void)credential; (void)claims; (void)error;
    *out = NS_AUTH_PASS;
    return NS_OK;
}

static const ns_auth_vtable vtable = {
#ifdef CASE_VTABLE_TOO_SMALL
    .struct_size = 8,
#else
    .struct_size = sizeof(ns_auth_vtable),
#endif
    .minor = NS_AUTH_VTABLE_MINOR,
#ifdef CASE_NULL_VERIFY
    .verify = NULL,
#else
    .verify = fixture_verify,
#endif
};

static const ns_plugin_info info = {
#ifdef CASE_INFO_TOO_SMALL
    .struct_size = 8,
#else
    .struct_size = sizeof(ns_plugin_info),
#endif
#ifdef CASE_INFO_MAJOR_2
    .abi_major = 2,
#else
    .abi_major = NS_ABI_MAJOR,
#endif
#if defined(CASE_MINOR_TOO_NEW)
    .abi_minor = 99,
#elif defined(CASE_MINOR_ZERO)
    .abi_minor = 0,
#else
    .abi_minor = NS_ABI_MINOR,
#endif
#ifdef CASE_UNKNOWN_KIND
    .kind = 7,
#else
    .kind = NS_KIND_AUTH,
#endif
    .name = {PLUGIN_NAME, sizeof(PLUGIN_NAME) - 1},
    .version = {"0.0.1", 5},
    .description = {"test fixture", 12},
#ifdef CASE_NULL_INIT
    .init = NULL,
#else
    .init = fixture_init,
#endif
    .start = fixture_start,
    .stop = fixture_stop,
    .destroy = NULL,
    .vtable = &vtable,
};

#if defined(CASE_NO_ENTRY)
int some_other_symbol(void) { return 0; }
#elif defined(CASE_MAJOR_V2)
ns_status northstar_plugin_v2(const ns_host_offer *offer, const ns_plugin_info **out, ns_error *error) {
    (void)offer; (void)error; *out = &info; return NS_OK;
}
#else
ns_status northstar_plugin_v1(const ns_host_offer *offer, const ns_plugin_info **out, ns_error *error) {
#ifdef CASE_ENTRY_REFUSES
    offer->api->error_set(error, str("needs ABI 1.7 for widgets"));
    return NS_ERR_UNSUPPORTED;
#else
    (void)offer; (void)error;
    *out = &info;
    return NS_OK;
#endif
}
#endif
