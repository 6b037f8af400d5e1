/*
 * lp: a long-polling chat transport, in plain C, on the header alone.
 *
 *   GET /lp/chat/{thread_id}?after=N&wait=S
 *
 * answers a JSON array of the thread's events after seq N (StreamEvent v1,
 * as the host encoded them), at most 100 at a time. When there are none yet
 * it waits up to S seconds (default 25, at most 60) for the next one, and
 * answers `[]` if none came. The client polls again with the last seq it
 * got. Errors are the host's JSON errors: 401 without a valid token, 404
 * for a thread that is not the caller's (isolation is the host's), 400 for
 * a bad `after` or `wait`.
 *
 * What the host does for it (ABI 1.4): reads the query and the credential
 * (`request_query`, `request_credential`), keeps the poll's state on its
 * exchange (`exchange_set_context`), says when the catch-up is done
 * (`on_live`), times the wait (`timer_once`) and writes errors
 * (`response_error`).
 *
 * A poll is touched by several host threads (the subscription's callbacks,
 * the timer, the client leaving): `lock` guards it, `refs` counts who may
 * still use it, and `answer` ends it exactly once.
 *
 * Build:  make        (see the Makefile next to this file)
 */
#include <northstar_plugin.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The plugin's name: its config entry's "name", and its routes' first segment. */
#define PLUGIN_NAME "lp"
#define DESCRIPTION "long-polling chat: GET /" PLUGIN_NAME "/chat/{thread_id}?after=N&wait=S"

enum { MAX_EVENTS = 100, MAX_BODY = 1 << 20 };

static const ns_host_api *api;
static ns_host *host;

typedef struct lp_poll {
    pthread_mutex_t lock;
    int refs;                     /* the exchange's, plus one per host call in flight */
    int answered;                 /* the exchange is ended: write nothing more */
    int caught_up;                /* on_live came: the next event is the answer */
    ns_exchange *exchange;
    ns_principal *principal;
    ns_subscription *subscription;
    ns_timer *timer;
    char stream[160];
    uint64_t after;
    uint32_t wait_ms;
    char *body;                   /* "[event,event" so far */
    size_t length;
    int events;
    char refusal[48];             /* a refused subscribe's code (on_refused) */
} lp_poll;

static ns_str str(const char *text) { ns_str s = {text, strlen(text)}; return s; }

static void unref(lp_poll *p) {
    pthread_mutex_lock(&p->lock);
    int last = --p->refs == 0;
    pthread_mutex_unlock(&p->lock);
    if (!last) return;
    pthread_mutex_destroy(&p->lock);
    free(p->body);
    free(p);
}

/*
 * Ends the poll once: with the events gathered (status 200), or with an
 * error. Stops what feeds it first: after `subscription_cancel` and
 * `timer_cancel` return, neither calls back (also when called from inside
 * their own callbacks).
 */
static void answer(lp_poll *p, int32_t status, const char *code, ns_str message) {
    pthread_mutex_lock(&p->lock);
    if (p->answered) { pthread_mutex_unlock(&p->lock); return; }
    p->answered = 1;
    ns_subscription *subscription = p->subscription;
    ns_timer *timer = p->timer;
    ns_principal *principal = p->principal;
    p->subscription = NULL; p->timer = NULL; p->principal = NULL;
    pthread_mutex_unlock(&p->lock);

    if (timer) api->timer_cancel(timer);
    if (subscription) api->subscription_cancel(subscription);
    if (principal) api->principal_release(principal);
    if (status == 200) {
        ns_header type = {str("content-type"), str("application/json")};
        api->response_start(p->exchange, 200, &type, 1);
        ns_bytes open = {(const uint8_t *)"[", 1}, close = {(const uint8_t *)"]", 1};
        ns_bytes events = {(const uint8_t *)p->body, p->length};
        api->response_write(p->exchange, p->length ? events : open);
        api->response_write(p->exchange, close);
        api->response_end(p->exchange);
    } else {
        api->response_error(p->exchange, status, str(code), message); /* ends the exchange too */
    }
    unref(p); /* the exchange's reference */
}

/* ---- the subscription: catch-up, then live ------------------------------ */

static void on_event(void *context, uint64_t seq, ns_str type, ns_bytes json) {
    lp_poll *p = context;
    (void)seq; (void)type;
    pthread_mutex_lock(&p->lock);
    int full = 0;
    if (!p->answered && p->length + json.len + 2 < MAX_BODY) {
        char *grown = realloc(p->body, p->length + json.len + 2);
        if (grown) {
            p->body = grown;
            p->body[p->length++] = p->events ? ',' : '[';
            memcpy(p->body + p->length, json.ptr, (size_t)json.len);
            p->length += json.len;
            p->events++;
        }
    }
    full = p->events >= MAX_EVENTS || p->length + 2 >= MAX_BODY / 2;
    int live = p->caught_up;
    pthread_mutex_unlock(&p->lock);
    if (full || live) answer(p, 200, NULL, str(""));
}

static void on_gap(void *context, uint64_t requested_after, uint64_t first_seq) {
    /* Events after `after` were pruned: say so; the client re-reads the thread. */
    char message[96];
    snprintf(message, sizeof message, "events after %llu are gone; the log starts at %llu",
             (unsigned long long)requested_after, (unsigned long long)first_seq);
    answer(context, 410, "events_expired", str(message));
}

static void on_end(void *context, ns_status status, ns_str message) {
    answer(context, status == NS_ERR_EXPIRED ? 401 : 503, status == NS_ERR_EXPIRED ? "token_expired" : "unavailable",
           message);
}

static void waited_long_enough(void *context) { answer(context, 200, NULL, str("")); }

/* Caught up: answer what the log held, or wait for the next event. */
static void on_live(void *context) {
    lp_poll *p = context;
    pthread_mutex_lock(&p->lock);
    p->caught_up = 1;
    int have = p->events > 0 || p->wait_ms == 0;
    pthread_mutex_unlock(&p->lock);
    if (have) { answer(p, 200, NULL, str("")); return; }
    ns_timer *timer = api->timer_once(host, p->wait_ms, waited_long_enough, p);
    pthread_mutex_lock(&p->lock);
    int late = p->answered;
    if (!late) p->timer = timer;
    pthread_mutex_unlock(&p->lock);
    if (late && timer) api->timer_cancel(timer);
}

static void on_refused(void *context, ns_str code) {
    lp_poll *p = context;
    size_t n = code.len < sizeof p->refusal - 1 ? (size_t)code.len : sizeof p->refusal - 1;
    memcpy(p->refusal, code.ptr, n);
    p->refusal[n] = '\0';
}

static void on_subscribed(void *context, ns_status status, ns_subscription *subscription, ns_str message) {
    lp_poll *p = context;
    pthread_mutex_lock(&p->lock);
    int answered = p->answered;
    if (!answered) p->subscription = subscription;
    pthread_mutex_unlock(&p->lock);
    if (answered && subscription) api->subscription_cancel(subscription);
    else if (status == NS_ERR_NOT_FOUND) answer(p, 404, "not_found", message);
    else if (status == NS_ERR_DENIED) answer(p, 403, "forbidden", message);
    else if (status == NS_ERR_EXPIRED) answer(p, 401, "token_expired", message);
    else if (status == NS_ERR_INVALID_ARGUMENT) answer(p, 400, p->refusal[0] ? p->refusal : "invalid_request", message);
    else if (status != NS_OK) answer(p, 503, "unavailable", message);
    unref(p); /* the handshake's reference */
}

static void on_authenticated(void *context, ns_status status, ns_principal *principal, ns_str message) {
    lp_poll *p = context;
    pthread_mutex_lock(&p->lock);
    int answered = p->answered;
    if (!answered) p->principal = principal;
    pthread_mutex_unlock(&p->lock);
    if (answered) {
        if (principal) api->principal_release(principal);
        unref(p);
        return;
    }
    if (status != NS_OK) {
        /* The user, or (1.5) the user's tenant, holds the node's limit of connections. */
        if (status == NS_ERR_TOO_LARGE) answer(p, 429, "too_many_user_connections", message);
        else if (status == NS_ERR_TENANT_LIMIT) answer(p, 429, "too_many_tenant_connections", message);
        else if (status == NS_ERR_UNAVAILABLE) answer(p, 503, "auth_unavailable", message);
        else answer(p, 401, "unauthorized", message);
        unref(p);
        return;
    }
    ns_subscriber subscriber = {
        .struct_size = sizeof(ns_subscriber), .context = p, .on_event = on_event, .on_gap = on_gap,
        .on_end = on_end, .on_refused = on_refused, .on_live = on_live,
        /* no .exchange: every event comes through on_event, for the array */
    };
    api->subscribe(host, principal, str(p->stream), p->after, &subscriber, on_subscribed);
}

/* ---- requests ------------------------------------------------------------ */

/* A decimal number in [0, max]; -1 when it is not one. */
static int parse_number(ns_str text, uint64_t max, uint64_t *out) {
    if (text.len == 0 || text.len > 19) return -1;
    uint64_t value = 0;
    for (uint64_t i = 0; i < text.len; i++) {
        if (text.ptr[i] < '0' || text.ptr[i] > '9') return -1;
        value = value * 10 + (uint64_t)(text.ptr[i] - '0');
    }
    if (value > max) return -1;
    *out = value;
    return 0;
}

static void on_request(void *instance, const ns_http_request *request, ns_exchange *exchange) {
    (void)instance;
    uint64_t after = 0, wait = 25;
    ns_str value;
    ns_status found = api->request_query(request, str("after"), &value);
    if (found == NS_OK ? parse_number(value, UINT64_MAX / 2, &after) != 0 : found != NS_ERR_NOT_FOUND) {
        api->response_error(exchange, 400, str("invalid_after"), str("after must be the decimal seq of the last event seen"));
        return;
    }
    found = api->request_query(request, str("wait"), &value);
    if (found == NS_OK ? parse_number(value, 60, &wait) != 0 : found != NS_ERR_NOT_FOUND) {
        api->response_error(exchange, 400, str("invalid_wait"), str("wait is a number of seconds from 0 to 60"));
        return;
    }
    ns_credential credential = {.struct_size = sizeof(ns_credential)};
    if (api->request_credential(request, 0, &credential) != NS_OK) {
        api->response_error(exchange, 401, str("unauthorized"), str("a credential is required (Authorization: Bearer <token>)"));
        return;
    }
    ns_str thread = request->params[0];
    if (thread.len > 100) {
        api->response_error(exchange, 404, str("not_found"), str("no such thread"));
        return;
    }
    lp_poll *p = calloc(1, sizeof *p);
    if (!p) {
        api->response_error(exchange, 503, str("unavailable"), str("out of memory"));
        return;
    }
    pthread_mutex_init(&p->lock, NULL);
    p->refs = 2; /* the exchange's, and the handshake's (authenticate, then subscribe) */
    p->exchange = exchange;
    p->after = after;
    p->wait_ms = (uint32_t)wait * 1000;
    snprintf(p->stream, sizeof p->stream, "chat:%.*s", (int)thread.len, thread.ptr);
    api->exchange_set_context(exchange, p);
    api->authenticate(host, &credential, on_authenticated, p);
}

/* The client left: stop waiting. The host holds `response_end` back while
 * this runs, so the poll (whose exchange reference only `answer` drops) is
 * alive here. */
static void on_exchange_closed(void *instance, ns_exchange *exchange) {
    (void)instance;
    lp_poll *p = api->exchange_context(exchange);
    if (p) answer(p, 200, NULL, str(""));
}

/* ---- lifecycle ----------------------------------------------------------- */

static ns_status init(const ns_host_api *given, ns_host *given_host, ns_str config, void **out, ns_error *error) {
    (void)config; (void)error;
    api = given;
    host = given_host;
    *out = NULL;
    return NS_OK;
}

static ns_status start(void *instance, ns_error *error) {
    (void)instance;
    return api->route_add(host, str("GET"), str("/" PLUGIN_NAME "/chat/{thread_id}"), 1, error);
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
    .kind = NS_KIND_TRANSPORT,
    .name = {PLUGIN_NAME, sizeof PLUGIN_NAME - 1},
    .version = {"1.0.0", 5},
    .description = {DESCRIPTION, sizeof DESCRIPTION - 1},
    .init = init,
    .start = start,
    .vtable = &vtable,
};

ns_status northstar_plugin_v1(const ns_host_offer *offer, const ns_plugin_info **out_info, ns_error *error) {
    if (offer->abi_minor_max < NS_ABI_MINOR) {
        offer->api->error_set(error, str(PLUGIN_NAME " needs a host with ABI 1.4"));
        return NS_ERR_UNSUPPORTED;
    }
    *out_info = &info;
    return NS_OK;
}
