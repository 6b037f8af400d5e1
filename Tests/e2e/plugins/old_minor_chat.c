/*
 * A transport plugin built against an older header (the test passes
 * -I Tests/PluginAPITests/headers/1.1), to prove the host still serves it:
 * GET /old/chat/{thread_id}?after=N authenticates the bearer through the
 * host, subscribes with the older, shorter ns_subscriber, and answers the
 * first event after N as its JSON (200), or the host's refusal (its status,
 * and its message as the body: "<code>: <why>" for a 400, as 1.1 promised).
 * With ?principal=released or ?principal=forged it subscribes with a handle
 * it has already released, or one it made up, and answers the host's status
 * as "status=N": the host must refuse both, never crash.
 */
#include <northstar_plugin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ns_host_api *api;
static ns_host *host;

typedef struct request_state {
    int misuse;                 /* 0, 1: a released principal, 2: a forged one */
    ns_exchange *exchange;
    ns_principal *principal;
    ns_subscription *subscription;
    char stream[128];
    uint64_t after;
    int answered;
} request_state;

static ns_str str(const char *text) { ns_str s = {text, strlen(text)}; return s; }

static void answer(request_state *state, int32_t status, ns_str body) {
    if (state->answered) return;
    state->answered = 1;
    ns_header type = {str("content-type"), str(status == 200 ? "application/json" : "text/plain")};
    api->response_start(state->exchange, status, &type, 1);
    ns_bytes bytes = {(const uint8_t *)body.ptr, body.len};
    api->response_write(state->exchange, bytes);
    api->response_end(state->exchange);
}

static void on_event(void *context, uint64_t seq, ns_str type, ns_bytes json) {
    request_state *state = context;
    (void)seq; (void)type;
    ns_str body = {(const char *)json.ptr, json.len};
    answer(state, 200, body);
    api->subscription_cancel(state->subscription);
}

static void on_gap(void *context, uint64_t requested_after, uint64_t first_seq) {
    (void)context; (void)requested_after; (void)first_seq;
}

static void on_end(void *context, ns_status status, ns_str message) {
    (void)status;
    answer(context, 503, message);
}

static void on_subscribed(void *context, ns_status status, ns_subscription *subscription, ns_str message) {
    request_state *state = context;
    if (state->misuse) {
        char text[32];
        snprintf(text, sizeof text, "status=%d", (int)status);
        answer(state, 200, str(text));
        if (subscription) api->subscription_cancel(subscription);
        return;
    }
    if (status == NS_OK) { state->subscription = subscription; return; }
    answer(state, status == NS_ERR_NOT_FOUND ? 404 : status == NS_ERR_DENIED ? 403
                  : status == NS_ERR_INVALID_ARGUMENT ? 400 : 503, message);
}

static void on_authenticated(void *context, ns_status status, ns_principal *principal, ns_str message) {
    request_state *state = context;
    if (status != NS_OK) {
        /* The status too, so a test sees which one a plugin of this minor is given. */
        char text[512];
        int length = snprintf(text, sizeof text, "status=%d %.*s", (int)status, (int)message.len, message.ptr);
        answer(state, 401, (ns_str){text, length < (int)sizeof text ? (uint64_t)length : sizeof text - 1});
        return;
    }
    state->principal = principal;
    if (state->misuse == 1) api->principal_release(principal);                   /* stale from here on */
    if (state->misuse == 2) principal = (ns_principal *)(uintptr_t)0x5eed5eed;  /* never given */
    /* The 1.1 layout: five fields, no on_refused. */
    ns_subscriber subscriber = {sizeof(ns_subscriber), state, on_event, on_gap, on_end};
    api->subscribe(host, principal, str(state->stream), state->after, &subscriber, on_subscribed);
}

/* The digits of `after=N` at the start of the query. A borrowed ns_str is
 * not NUL-terminated, so the number is read within its length, never past. */
static uint64_t query_after(ns_str query) {
    uint64_t after = 0;
    if (query.len <= 6 || memcmp(query.ptr, "after=", 6) != 0) return 0;
    for (uint64_t i = 6; i < query.len && query.ptr[i] >= '0' && query.ptr[i] <= '9'; i++) {
        after = after * 10 + (uint64_t)(query.ptr[i] - '0');
    }
    return after;
}

static void on_request(void *instance, const ns_http_request *request, ns_exchange *exchange) {
    (void)instance;
    request_state *state = calloc(1, sizeof *state);  /* a test fixture: freed with the process */
    state->exchange = exchange;
    snprintf(state->stream, sizeof state->stream, "chat:%.*s", (int)request->params[0].len, request->params[0].ptr);
    state->after = query_after(request->query);
    if (request->query.len == 18 && memcmp(request->query.ptr, "principal=released", 18) == 0) state->misuse = 1;
    if (request->query.len == 16 && memcmp(request->query.ptr, "principal=forged", 16) == 0) state->misuse = 2;
    ns_str token = {0, 0};
    for (uint32_t i = 0; i < request->header_count; i++) {
        ns_header h = request->headers[i];
        int match = h.name.len == 13;
        for (size_t c = 0; match && c < 13; c++) match = (h.name.ptr[c] | 0x20) == "authorization"[c];
        if (match && h.value.len > 7) {
            token.ptr = h.value.ptr + 7;
            token.len = h.value.len - 7;
        }
    }
    ns_credential credential = {sizeof(ns_credential), NS_CREDENTIAL_HEADER, str("Bearer"), token};
    api->authenticate(host, &credential, on_authenticated, state);
}

static void on_exchange_closed(void *instance, ns_exchange *exchange) { (void)instance; (void)exchange; }

static ns_status plugin_init(const ns_host_api *given, ns_host *given_host, ns_str config, void **instance, ns_error *error) {
    (void)config; (void)error;
    api = given;
    host = given_host;
    *instance = NULL;
    return NS_OK;
}

static ns_status plugin_start(void *instance, ns_error *error) {
    (void)instance;
    return api->route_add(host, str("GET"), str("/old/chat/{thread_id}"), 1, error);
}

static const ns_transport_vtable vtable = {
    .struct_size = sizeof(ns_transport_vtable),
    .minor = NS_TRANSPORT_VTABLE_MINOR,
    .on_request = on_request,
    .on_exchange_closed = on_exchange_closed,
};

static const ns_plugin_info info = {
    .struct_size = sizeof(ns_plugin_info),
    .abi_major = NS_ABI_MAJOR,
    .abi_minor = NS_ABI_MINOR,
    .name = {"oldchat", 7},
    .version = {"1.0.0", 5},
    .kind = NS_KIND_TRANSPORT,
    .vtable = &vtable,
    .init = plugin_init,
    .start = plugin_start,
};

ns_status northstar_plugin_v1(const ns_host_offer *offer, const ns_plugin_info **out, ns_error *error) {
    (void)offer; (void)error;
    *out = &info;
    return NS_OK;
}
