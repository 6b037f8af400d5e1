/*
 * A 1.3 transport whose frame_event refuses every event, to prove the
 * host's side of that contract: GET /framer/chat/{thread_id}?after=N
 * subscribes naming its exchange (so the host writes live events itself,
 * framed by frame_event); when the first live event cannot be framed, the
 * subscription ends with NS_ERR_INTERNAL, and the plugin answers
 * "status=<on_end status> position=<subscription_position> <message>".
 */
#include <northstar_plugin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ns_host_api *api;
static ns_host *host;

typedef struct request_state {
    ns_exchange *exchange;
    ns_subscription *subscription;
    char stream[128];
    uint64_t after;
} request_state;

static ns_str str(const char *text) { ns_str s = {text, strlen(text)}; return s; }

static void answer(request_state *state, int32_t status, const char *body) {
    ns_header type = {str("content-type"), str("text/plain")};
    api->response_start(state->exchange, status, &type, 1);
    ns_bytes bytes = {(const uint8_t *)body, strlen(body)};
    api->response_write(state->exchange, bytes);
    api->response_end(state->exchange);
}

static ns_status refuse_frame(void *instance, ns_str stream, uint64_t seq, ns_str type, ns_bytes event_json,
                              uint8_t *out, uint64_t capacity, uint64_t *length) {
    (void)instance; (void)stream; (void)seq; (void)type; (void)event_json; (void)out; (void)capacity;
    *length = 0;
    return NS_ERR_INVALID_ARGUMENT;
}

static void on_event(void *context, uint64_t seq, ns_str type, ns_bytes json) {
    (void)context; (void)seq; (void)type; (void)json;  /* no catch-up: it subscribes at the head */
}

static void on_gap(void *context, uint64_t requested_after, uint64_t first_seq) {
    (void)context; (void)requested_after; (void)first_seq;
}

static void on_end(void *context, ns_status status, ns_str message) {
    request_state *state = context;
    char body[600];
    snprintf(body, sizeof body, "status=%d position=%llu %.*s", (int)status,
             (unsigned long long)api->subscription_position(state->subscription), (int)message.len, message.ptr);
    api->subscription_cancel(state->subscription);
    answer(state, 200, body);
}

static void on_subscribed(void *context, ns_status status, ns_subscription *subscription, ns_str message) {
    request_state *state = context;
    if (status == NS_OK) {
        state->subscription = subscription;
        return;
    }
    char body[600];  /* why, so a failing test says it */
    snprintf(body, sizeof body, "subscribe refused: status=%d %.*s", (int)status, (int)message.len, message.ptr);
    answer(state, 503, body);
}

static void on_authenticated(void *context, ns_status status, ns_principal *principal, ns_str message) {
    request_state *state = context;
    (void)message;
    if (status != NS_OK) { answer(state, 401, "unauthorized"); return; }
    ns_subscriber subscriber = {sizeof(ns_subscriber), state, on_event, on_gap, on_end, NULL, state->exchange, NULL};
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
    ns_str token = {0, 0};
    for (uint32_t i = 0; i < request->header_count; i++) {
        ns_header h = request->headers[i];
        if (h.name.len == 13 && strncasecmp(h.name.ptr, "authorization", 13) == 0 && h.value.len > 7) {
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
    return api->route_add(host, str("GET"), str("/framer/chat/{thread_id}"), 1, error);
}

static const ns_transport_vtable vtable = {
    .struct_size = sizeof(ns_transport_vtable),
    .minor = NS_TRANSPORT_VTABLE_MINOR,
    .on_request = on_request,
    .on_exchange_closed = on_exchange_closed,
    .frame_event = refuse_frame,
};

static const ns_plugin_info info = {
    .struct_size = sizeof(ns_plugin_info),
    .abi_major = NS_ABI_MAJOR,
    .abi_minor = NS_ABI_MINOR,
    .name = {"framer", 6},
    .version = {"1.0.0", 5},
    .kind = NS_KIND_TRANSPORT,
    .vtable = &vtable,
    .init = plugin_init,
    .start = plugin_start,
};

ns_status northstar_plugin_v1(const ns_host_offer *offer, const ns_plugin_info **out_info, ns_error *error) {
    (void)offer; (void)error;
    *out_info = &info;
    return NS_OK;
}
