/*
 * A transport that misuses the exchange API on purpose, one way per route,
 * so the tests can check what the host does about it:
 *
 *   GET /mis/silent       never answers; when told the client left
 *                         (on_exchange_closed) it counts that and ends.
 *   GET /mis/closed       answers {"closed":N}: how many it was told of.
 *   GET /mis/deaf         starts a 200, writes a line, and never ends, not
 *                         even when told the client left.
 *   GET /mis/bad-status   response_start with status 42.
 *   GET /mis/write-first  response_write before response_start.
 *   GET /mis/end-first    response_end without response_start.
 *   GET /mis/helpers      the 1.4 request helpers, used rightly, then one
 *                         used late (a timer after on_request returned): it
 *                         answers what each gave, as JSON.
 *   GET /mis/error-200    response_error with a status that is no error.
 *
 * Built with -DEXPORT_EXTRA (and no version script) it also exports a
 * function besides the entry; with -DWRONG_KIND it declares itself a
 * transport but hands over a storage vtable; with -DFEW_ROUTES it mounts
 * only /mis/deaf and /mis/bad-status.
 */
#include <northstar_plugin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ns_host_api *api;
static ns_host *host;
static atomic_int closed_count;
/* The silent route's open exchanges: on_exchange_closed carries no context. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static ns_exchange *silent[64];

enum { SILENT = 1, CLOSED, DEAF, BAD_STATUS, WRITE_FIRST, END_FIRST, HELPERS, ERROR_200 };

/* What /mis/helpers saw inside on_request, answered once the late call ran. */
typedef struct helpers_seen {
    ns_exchange *exchange;
    const ns_http_request *stale; /* kept past on_request on purpose */
    ns_timer *timer;
    char body[1024];
} helpers_seen;

static void answer_helpers(void *context) {
    helpers_seen *seen = context;
    ns_str late = {NULL, 0};
    ns_status status = api->request_header(seen->stale, (ns_str){"host", 4}, &late);
    size_t used = strlen(seen->body);
    snprintf(seen->body + used, sizeof seen->body - used, ",\"late\":%d}", (int)status);
    ns_header type = {{"content-type", 12}, {"application/json", 16}};
    api->response_start(seen->exchange, 200, &type, 1);
    ns_bytes bytes = {(const uint8_t *)seen->body, strlen(seen->body)};
    api->response_write(seen->exchange, bytes);
    api->response_end(seen->exchange);
    api->timer_cancel(seen->timer); /* from inside fire: releases the one-shot timer */
    free(seen);
}

static void helpers(const ns_http_request *request, ns_exchange *exchange) {
    helpers_seen *seen = calloc(1, sizeof *seen);
    if (!seen) { api->response_end(exchange); return; }
    ns_str q = {"", 0}, h = {"", 0};
    ns_status q_status = api->request_query(request, (ns_str){"q", 1}, &q);
    ns_status h_status = api->request_header(request, (ns_str){"X-TEST", 6}, &h);
    ns_str missing;
    ns_status missing_status = api->request_query(request, (ns_str){"absent", 6}, &missing);
    ns_credential credential = {.struct_size = sizeof(ns_credential)};
    ns_status cred_status = api->request_credential(request, NS_REQUEST_CREDENTIAL_QUERY, &credential);
    snprintf(seen->body, sizeof seen->body,
             "{\"q_status\":%d,\"q\":\"%.*s\",\"h_status\":%d,\"h\":\"%.*s\",\"missing\":%d,"
             "\"cred\":%d,\"source\":%d,\"scheme\":\"%.*s\",\"value\":\"%.*s\"",
             (int)q_status, (int)q.len, q.ptr, (int)h_status, (int)h.len, h.ptr, (int)missing_status, (int)cred_status,
             (int)credential.source, (int)credential.scheme.len, credential.scheme.ptr ? credential.scheme.ptr : "",
             (int)credential.value.len, credential.value.ptr ? credential.value.ptr : "");
    seen->exchange = exchange;
    seen->stale = request;
    seen->timer = api->timer_once(host, 20, answer_helpers, seen);
}

static ns_str str(const char *text) { ns_str s = {text, strlen(text)}; return s; }
static ns_bytes bytes(const char *text) { ns_bytes b = {(const uint8_t *)text, strlen(text)}; return b; }

static void on_request(void *instance, const ns_http_request *request, ns_exchange *exchange) {
    (void)instance;
    ns_header type = {str("content-type"), str("application/json")};
    char body[64];
    switch (request->route_id) {
    case SILENT:
        pthread_mutex_lock(&lock);
        for (size_t i = 0; i < 64; i++) if (!silent[i]) { silent[i] = exchange; break; }
        pthread_mutex_unlock(&lock);
        return;  /* on_exchange_closed ends it */
    case CLOSED:
        snprintf(body, sizeof body, "{\"closed\":%d}", atomic_load(&closed_count));
        api->response_start(exchange, 200, &type, 1);
        api->response_write(exchange, bytes(body));
        api->response_end(exchange);
        return;
    case DEAF:
        api->response_start(exchange, 200, &type, 1);
        api->response_write(exchange, bytes("{\"started\":true}\n"));
        return;  /* never ended */
    case BAD_STATUS:
        api->response_start(exchange, 42, &type, 1);
        api->response_end(exchange);
        return;
    case WRITE_FIRST:
        api->response_write(exchange, bytes("{}"));
        api->response_end(exchange);
        return;
    case END_FIRST:
        api->response_end(exchange);
        return;
    case HELPERS:
        helpers(request, exchange);
        return;
    case ERROR_200:
        api->response_error(exchange, 200, (ns_str){"fine", 4}, (ns_str){"not an error", 12});
        return;
    }
}

static void on_exchange_closed(void *instance, ns_exchange *exchange) {
    (void)instance;
    /* The deaf route's exchanges are ignored on purpose: never ended. */
    int found = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < 64; i++) if (silent[i] == exchange) { silent[i] = NULL; found = 1; }
    pthread_mutex_unlock(&lock);
    if (!found) return;
    atomic_fetch_add(&closed_count, 1);
    api->response_end(exchange);
}

static ns_status plugin_init(const ns_host_api *given, ns_host *given_host, ns_str config, void **instance,
                             ns_error *error) {
    (void)config; (void)error;
    api = given;
    host = given_host;
    *instance = NULL;
    return NS_OK;
}

static ns_status plugin_start(void *instance, ns_error *error) {
    (void)instance;
    static const struct { const char *pattern; uint32_t id; } routes[] = {
#ifdef FEW_ROUTES /* what the conformance kit's test needs: quick to check */
        {"/mis/deaf", DEAF}, {"/mis/bad-status", BAD_STATUS},
#else
        {"/mis/silent", SILENT}, {"/mis/closed", CLOSED}, {"/mis/deaf", DEAF},
        {"/mis/bad-status", BAD_STATUS}, {"/mis/write-first", WRITE_FIRST}, {"/mis/end-first", END_FIRST},
        {"/mis/helpers", HELPERS}, {"/mis/error-200", ERROR_200},
#endif
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        ns_status status = api->route_add(host, str("GET"), str(routes[i].pattern), routes[i].id, error);
        if (status != NS_OK) return status;
    }
    return NS_OK;
}

static const ns_transport_vtable vtable = {
    .struct_size = sizeof(ns_transport_vtable),
    .minor = NS_TRANSPORT_VTABLE_MINOR,
    .on_request = on_request,
    .on_exchange_closed = on_exchange_closed,
};

#ifdef EXPORT_EXTRA
int misbehaving_helper(void) { return 42; }
#endif

#ifdef WRONG_KIND
static const ns_storage_vtable storage_vtable = {
    .struct_size = sizeof(ns_storage_vtable),
    .minor = NS_STORAGE_VTABLE_MINOR,
};
#define VTABLE (&storage_vtable)
#else
#define VTABLE (&vtable)
#endif

static const ns_plugin_info info = {
    .struct_size = sizeof(ns_plugin_info),
    .abi_major = NS_ABI_MAJOR,
    .abi_minor = NS_ABI_MINOR,
    .kind = NS_KIND_TRANSPORT,
    .name = {"mis", 3},
    .version = {"1.0.0", 5},
    .vtable = VTABLE,
    .init = plugin_init,
    .start = plugin_start,
};

ns_status northstar_plugin_v1(const ns_host_offer *offer, const ns_plugin_info **out_info, ns_error *error) {
    (void)offer; (void)error;
    *out_info = &info;
    return NS_OK;
}
