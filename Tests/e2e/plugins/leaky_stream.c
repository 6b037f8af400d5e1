/*
 * A transport that breaks the principal contract, for the kit's checks:
 * GET /leaky/chat/{thread_id} authenticates the bearer and, once accepted,
 * holds the response open (a stream that never writes an event) until the
 * client leaves; it never releases the principal, and it answers every
 * refusal 401, NS_ERR_TOO_LARGE (the user's limit of connections) included.
 */
#include <northstar_plugin.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const ns_host_api *api;
static ns_host *host;

static ns_str str(const char *text) { ns_str s = {text, strlen(text)}; return s; }

static void on_authenticated(void *context, ns_status status, ns_principal *principal, ns_str message) {
    ns_exchange *exchange = context;
    (void)message;
    (void)principal;  /* the misuse: never released */
    ns_header type = {str("content-type"), str(status == NS_OK ? "text/event-stream" : "text/plain")};
    api->response_start(exchange, status == NS_OK ? 200 : 401, &type, 1);
    ns_bytes bytes = {(const uint8_t *)": open\n\n", 8};
    api->response_write(exchange, bytes);
    if (status != NS_OK) api->response_end(exchange);
}

static void on_request(void *instance, const ns_http_request *request, ns_exchange *exchange) {
    (void)instance;
    ns_str token = {0, 0};
    for (uint32_t i = 0; i < request->header_count; i++) {
        ns_header h = request->headers[i];
        if (h.name.len == 13 && strncasecmp(h.name.ptr, "authorization", 13) == 0 && h.value.len > 7) {
            token.ptr = h.value.ptr + 7;
            token.len = h.value.len - 7;
        }
    }
    ns_credential credential = {sizeof(ns_credential), NS_CREDENTIAL_HEADER, str("Bearer"), token};
    api->authenticate(host, &credential, on_authenticated, exchange);
}

/* The client left: the stream ends (the principal stays lent, the misuse). */
static void on_exchange_closed(void *instance, ns_exchange *exchange) {
    (void)instance;
    api->response_end(exchange);
}

static ns_status plugin_init(const ns_host_api *given, ns_host *given_host, ns_str config, void **instance, ns_error *error) {
    (void)config; (void)error;
    api = given;
    host = given_host;
    *instance = NULL;
    return NS_OK;
}

static ns_status plugin_start(void *instance, ns_error *error) {
    (void)instance;
    return api->route_add(host, str("GET"), str("/leaky/chat/{thread_id}"), 1, error);
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
    .name = {"leaky", 5},
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
