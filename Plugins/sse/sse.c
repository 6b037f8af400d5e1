/*
 * sse: the Server-Sent Events transport, in C, on the host's services only.
 *
 *   GET /sse/chat/{thread_id}     GET /sse/canvas/{canvas_id}
 *   GET /sse/gestures/{gesture_id}?speed=1.0&from_ms=0   (a paced replay)
 *
 * Each event is one frame: `id:` its seq, `event:` its type, `data:` the
 * StreamEvent v1 JSON, byte for byte as the host encoded it. A client
 * resumes with `Last-Event-ID` (or `?last_event_id=`, or `?after=` as the
 * REST API and WebSocket take it; the header wins, since a browser sends
 * it on every reconnect with the newest seq). A gap the log can no
 * longer fill is an explicit `stream.gap` event; a client too slow to keep
 * up gets a `stream.end` event naming where to resume, then the end of the
 * response. A comment line every `heartbeat_seconds` keeps proxies open.
 *
 * Config: {"heartbeat_seconds": 30, "retry_ms": 3000, "allow_query_token": false,
 *          "allowed_origins": ["https://app.example.com"]}.
 * With allow_query_token, browsers' EventSource (which cannot set headers)
 * may send `?access_token=<jwt>`. A request from a page of a listed origin
 * gets CORS headers; one from the server's own origin is served; one from
 * any other origin is refused (403), whether or not a list is configured.
 *
 * Live events are framed once, by the host through `frame_event` (ABI
 * 1.3), and the host writes the same bytes to every subscriber's response
 * itself: the subscriber names its exchange. Only events read back from the
 * log when a client resumes come through `on_event`, framed per call.
 *
 * Every connection moves through: authenticate -> subscribe -> stream. The
 * host answers each step on its own thread, so a connection is shared by
 * several threads: `lock` guards it, `refs` counts who may still touch it,
 * and `finish` tears it down exactly once. The connection rides on its
 * exchange (`exchange_set_context`, ABI 1.4), so `on_exchange_closed` finds
 * it without a table; headers, the query and the credential are read with
 * the host's request helpers.
 */
#include "northstar_plugin.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LITERAL(text) {text, sizeof(text) - 1}
enum { ROUTE_CHAT = 1, ROUTE_CANVAS = 2, ROUTE_GESTURE = 3, MAX_ORIGINS = 16, MAX_ORIGIN = 200, MAX_STREAM = 320 };

typedef struct sse_plugin {
    const ns_host_api *api;
    ns_host *host;
    uint32_t heartbeat_ms;
    uint32_t retry_ms;
    int allow_query_token;
    char origins[MAX_ORIGINS][MAX_ORIGIN + 1];
    int origin_count;
} sse_plugin;

/* What only the handshake needs: freed once the subscribe is answered, so an
 * open stream keeps none of it. */
typedef struct sse_handshake {
    char stream[MAX_STREAM];
    char refusal[48];           /* a refused subscribe's code, from on_refused (ABI 1.2) */
} sse_handshake;

/* One open stream. Kept small: a server holds tens of thousands of them. */
typedef struct sse_conn {
    sse_plugin *plugin;
    pthread_mutex_t lock;
    int refs;                   /* the exchange's, plus one per host call in flight */
    int finished;               /* finish() ran: write nothing more */
    int ending;                 /* end_stream() ran: the last word is written once */
    ns_exchange *exchange;
    ns_principal *principal;
    ns_subscription *subscription;
    ns_timer *timer;
    uint64_t after;
    const char *origin;         /* an entry of plugin->origins to answer with CORS, or "" */
    sse_handshake *handshake;   /* until on_subscribed */
} sse_conn;

static ns_str str(const char *text) {
    ns_str s = {text, strlen(text)};
    return s;
}

/* ---- small helpers: origins, seqs, JSON strings -------------------------- */

/* Whether `origin` ("http://host:port") names the host the request was sent to. */
static int same_origin(ns_str origin, ns_str host) {
    const char *authority = NULL;
    if (origin.len > 7 && memcmp(origin.ptr, "http://", 7) == 0) authority = origin.ptr + 7;
    else if (origin.len > 8 && memcmp(origin.ptr, "https://", 8) == 0) authority = origin.ptr + 8;
    if (!authority || !host.ptr) return 0;
    size_t n = (size_t)(origin.ptr + origin.len - authority);
    if (n != host.len) return 0;
    for (size_t i = 0; i < n; i++)
        if ((authority[i] | 0x20) != (host.ptr[i] | 0x20)) return 0;
    return 1;
}

static int starts_with(ns_str text, const char *prefix) {
    size_t n = strlen(prefix);
    return text.len >= n && memcmp(text.ptr, prefix, n) == 0;
}

/* Parses a decimal seq; -1 when it is not one (empty, a sign, too long). */
static int parse_seq(ns_str text, uint64_t *out) {
    if (text.len == 0 || text.len > 19) return -1;
    uint64_t value = 0;
    for (uint64_t i = 0; i < text.len; i++) {
        if (text.ptr[i] < '0' || text.ptr[i] > '9') return -1;
        value = value * 10 + (uint64_t)(text.ptr[i] - '0');
    }
    *out = value;
    return 0;
}

/* Appends `text` to `out` as JSON string content (escaped), bounded by `cap`. */
static void json_escape(char *out, size_t cap, ns_str text) {
    size_t o = strlen(out);
    for (uint64_t i = 0; i < text.len && o + 7 < cap; i++) {
        unsigned char c = (unsigned char)text.ptr[i];
        if (c == '"' || c == '\\') { out[o++] = '\\'; out[o++] = (char)c; }
        else if (c < 0x20) o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        else out[o++] = (char)c;
    }
    out[o] = '\0';
}

/* Appends the query's parameters but `access_token` and the resume ones
 * (`last_event_id`, `after`) to `out` (a replay's options: speed, from_ms,
 * pace), bounded by `cap`. */
static void replay_options(char *out, size_t cap, ns_str query) {
    const char *p = query.ptr, *end = query.ptr + query.len;
    int first = 1;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        ns_str pair = {p, (uint64_t)(stop - p)};
        if (pair.len > 0 && !starts_with(pair, "access_token=") && !starts_with(pair, "last_event_id=") &&
            !starts_with(pair, "after=")) {
            size_t used = strlen(out);
            snprintf(out + used, cap - used, "%s%.*s", first ? "" : "&", (int)pair.len, pair.ptr);
            first = 0;
        }
        p = amp ? amp + 1 : NULL;
    }
}

/* ---- the connection's life -------------------------------------------- */

/* Callbacks hold a reference while they run: a write that fails inside one
 * finishes the connection, which must not free it under the callback's feet.
 * (A callback in flight is alive by the host's promise: cancel waits for it.) */
static void ref(sse_conn *conn) {
    pthread_mutex_lock(&conn->lock);
    conn->refs++;
    pthread_mutex_unlock(&conn->lock);
}

static void unref(sse_conn *conn) {
    pthread_mutex_lock(&conn->lock);
    int last = --conn->refs == 0;
    pthread_mutex_unlock(&conn->lock);
    if (last) {
        pthread_mutex_destroy(&conn->lock);
        free(conn->handshake);
        free(conn);
    }
}

/*
 * Tears the connection down once: stops the heartbeat and the subscription
 * (the host guarantees neither calls back after its cancel returns), releases
 * the principal, and ends the response. Safe from any callback, since the
 * lock is not held while calling the host.
 */
static void finish(sse_conn *conn) {
    pthread_mutex_lock(&conn->lock);
    if (conn->finished) { pthread_mutex_unlock(&conn->lock); return; }
    conn->finished = 1;
    ns_timer *timer = conn->timer;
    ns_subscription *subscription = conn->subscription;
    ns_principal *principal = conn->principal;
    ns_exchange *exchange = conn->exchange;
    conn->timer = NULL; conn->subscription = NULL; conn->principal = NULL;
    pthread_mutex_unlock(&conn->lock);

    const ns_host_api *api = conn->plugin->api;
    if (timer) api->timer_cancel(timer);
    if (subscription) api->subscription_cancel(subscription);
    if (principal) api->principal_release(principal);
    api->response_end(exchange);
    unref(conn); /* the exchange's reference */
}

/* Answers with a JSON error, before any stream started, and finishes. */
static void fail(sse_conn *conn, int32_t status, const char *code, ns_str message) {
    char body[1024];
    snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"", code);
    json_escape(body, sizeof body - 4, message);
    strcat(body, "\"}}");
    ns_header headers[] = {{LITERAL("content-type"), LITERAL("application/json")},
                           {LITERAL("access-control-allow-origin"), str(conn->origin)}};
    const ns_host_api *api = conn->plugin->api;
    if (api->response_start(conn->exchange, status, headers, conn->origin[0] ? 2 : 1) == NS_OK) {
        ns_bytes bytes = {(const uint8_t *)body, strlen(body)};
        api->response_write(conn->exchange, bytes);
    }
    finish(conn);
}

static void end_stream(sse_conn *conn, ns_status status, ns_str message);

/* Writes one frame unless finished. A gone client ends the connection; a
 * full queue (a client that does not read) has just cut the stream off, and
 * the client is told where to resume, as a live event's refusal tells it. */
static void send_frame(sse_conn *conn, const char *frame, size_t length) {
    pthread_mutex_lock(&conn->lock);
    if (conn->finished) { pthread_mutex_unlock(&conn->lock); return; }
    ns_bytes bytes = {(const uint8_t *)frame, length};
    ns_status status = conn->plugin->api->response_write(conn->exchange, bytes);
    pthread_mutex_unlock(&conn->lock);
    if (status == NS_ERR_TOO_LARGE) end_stream(conn, status, str("the client is not reading; resume after last_seq"));
    else if (status != NS_OK) finish(conn);
}

/* ---- subscriber callbacks: in order, one at a time, never blocking ------ */

/* One event as an SSE frame: `id:`, `event:`, `data:` and a blank line.
 * Writes it to `out` if it fits `capacity`; returns its length either way. */
static size_t frame_event(uint64_t seq, ns_str type, ns_bytes event_json, char *out, size_t capacity) {
    char head[96];
    int n = snprintf(head, sizeof head, "id: %llu\nevent: %.*s\ndata: ", (unsigned long long)seq,
                     (int)(type.len < 64 ? type.len : 64), type.ptr);
    size_t length = (size_t)n + (size_t)event_json.len + 2;
    if (out && length <= capacity) {
        memcpy(out, head, (size_t)n);
        memcpy(out + n, event_json.ptr, (size_t)event_json.len);
        memcpy(out + n + event_json.len, "\n\n", 2);
    }
    return length;
}

/* ABI 1.3: the host frames each live event once, here, for every subscriber. */
static ns_status sse_frame_event(void *instance, ns_str stream, uint64_t seq, ns_str type, ns_bytes event_json,
                                 uint8_t *out, uint64_t capacity, uint64_t *length) {
    (void)instance;
    (void)stream;
    *length = frame_event(seq, type, event_json, (char *)out, (size_t)capacity);
    return *length <= capacity ? NS_OK : NS_ERR_TOO_LARGE;
}

/* An event read back from the log (a resume's catch-up): framed per call. */
static void on_event(void *context, uint64_t seq, ns_str type, ns_bytes event_json) {
    sse_conn *conn = context;
    size_t length = frame_event(seq, type, event_json, NULL, 0);
    char *frame = malloc(length);
    ref(conn);
    if (frame) {
        frame_event(seq, type, event_json, frame, length);
        send_frame(conn, frame, length);
        free(frame);
    } else {
        finish(conn);
    }
    unref(conn);
}

static void on_gap(void *context, uint64_t requested_after, uint64_t first_seq) {
    char frame[256];
    int n = snprintf(frame, sizeof frame,
                     "event: stream.gap\ndata: {\"v\":1,\"type\":\"stream.gap\",\"requested_after\":%llu,\"first_seq\":%llu}\n\n",
                     (unsigned long long)requested_after, (unsigned long long)first_seq);
    ref(context);
    send_frame(context, frame, (size_t)n);
    unref(context);
}

/* The stream's last word, written once: `stream.end` with why it ended and
 * where to resume, then the end. A cut-off stream may still send this much
 * past its limit. */
static void end_stream(sse_conn *conn, ns_status status, ns_str message) {
    const ns_host_api *api = conn->plugin->api;
    pthread_mutex_lock(&conn->lock);
    int already = conn->ending || conn->finished;
    conn->ending = 1;
    /* Where to resume: the host counts the live events it wrote itself (1.3).
     * Read under the lock, so finish() cannot release the subscription meanwhile. */
    uint64_t last = 0;
    if (!already && conn->subscription && api->struct_size >= NS_HOST_API_SIZE_1_3) {
        last = api->subscription_position(conn->subscription);
    }
    pthread_mutex_unlock(&conn->lock);
    if (already) return;  /* the other caller writes the last word and finishes */
    char frame[800] = "event: stream.end\ndata: {\"v\":1,\"type\":\"stream.end\",\"reason\":\"";
    strcat(frame, status == NS_OK ? "complete" : status == NS_ERR_TOO_LARGE ? "slow_consumer"
                  : status == NS_ERR_CANCELLED ? "server_closed" : status == NS_ERR_EXPIRED ? "token_expired" : "error");
    size_t used = strlen(frame);
    snprintf(frame + used, sizeof frame - used, "\",\"last_seq\":%llu,\"message\":\"", (unsigned long long)last);
    json_escape(frame, sizeof frame - 8, message);
    strcat(frame, "\"}\n\n");
    send_frame(conn, frame, strlen(frame));
    finish(conn);
}

static void on_end(void *context, ns_status status, ns_str message) {
    ref(context);
    end_stream(context, status, message);
    unref(context);
}

static void heartbeat(void *context) {
    ref(context);
    send_frame(context, ": keepalive\n\n", 13);
    unref(context);
}

/* ---- the handshake: authenticate, then subscribe ------------------------ */

/* The stable code of a refused subscribe; `on_subscribed` follows at once. */
static void on_refused(void *context, ns_str code) {
    sse_handshake *handshake = ((sse_conn *)context)->handshake;
    size_t n = code.len < sizeof handshake->refusal - 1 ? (size_t)code.len : sizeof handshake->refusal - 1;
    memcpy(handshake->refusal, code.ptr, n);
    handshake->refusal[n] = '\0';
}

static void on_subscribed(void *context, ns_status status, ns_subscription *subscription, ns_str message) {
    sse_conn *conn = context;
    sse_plugin *plugin = conn->plugin;
    pthread_mutex_lock(&conn->lock);
    int finished = conn->finished;
    if (!finished) conn->subscription = subscription;
    pthread_mutex_unlock(&conn->lock);
    if (finished) {
        if (subscription) plugin->api->subscription_cancel(subscription);
    } else if (status == NS_ERR_NOT_FOUND) {
        fail(conn, 404, "not_found", message);
    } else if (status == NS_ERR_EXPIRED) {
        fail(conn, 401, "token_expired", message);
    } else if (status == NS_ERR_DENIED) {
        fail(conn, 403, "forbidden", message);
    } else if (status == NS_ERR_INVALID_ARGUMENT) {
        fail(conn, 400, conn->handshake->refusal[0] ? conn->handshake->refusal : "invalid_request", message);
    } else if (status != NS_OK) {
        fail(conn, 503, "unavailable", message);
    } else {
        ns_header headers[] = {
            {LITERAL("content-type"), LITERAL("text/event-stream")},
            {LITERAL("cache-control"), LITERAL("no-cache")},
            {LITERAL("x-accel-buffering"), LITERAL("no")},
            {LITERAL("access-control-allow-origin"), str(conn->origin)},
        };
        plugin->api->response_start(conn->exchange, 200, headers, conn->origin[0] ? 4 : 3);
        char retry[48];
        int n = snprintf(retry, sizeof retry, "retry: %u\n\n", plugin->retry_ms);
        send_frame(conn, retry, (size_t)n);
        ns_timer *timer = plugin->api->timer_start(plugin->host, plugin->heartbeat_ms, heartbeat, conn);
        pthread_mutex_lock(&conn->lock);
        int late = conn->finished;
        if (!late) conn->timer = timer;
        pthread_mutex_unlock(&conn->lock);
        if (late && timer) plugin->api->timer_cancel(timer);
    }
    /* The handshake is over: nothing reads it any more. */
    free(conn->handshake);
    conn->handshake = NULL;
    unref(conn); /* the subscribe call's reference */
}

static void on_authenticated(void *context, ns_status status, ns_principal *principal, ns_str message) {
    sse_conn *conn = context;
    sse_plugin *plugin = conn->plugin;
    pthread_mutex_lock(&conn->lock);
    int finished = conn->finished;
    if (!finished) conn->principal = principal;
    pthread_mutex_unlock(&conn->lock);
    if (finished) {
        if (principal) plugin->api->principal_release(principal);
        unref(conn);
        return;
    }
    if (status != NS_OK) {
        /* The user, or (1.5) the user's tenant, holds the node's limit of connections. */
        if (status == NS_ERR_TOO_LARGE) fail(conn, 429, "too_many_user_connections", message);
        else if (status == NS_ERR_TENANT_LIMIT) fail(conn, 429, "too_many_tenant_connections", message);
        else if (status == NS_ERR_UNAVAILABLE) fail(conn, 503, "auth_unavailable", message);
        else fail(conn, 401, "unauthorized", message);
        unref(conn);
        return;
    }
    /* Naming the exchange lets the host write live events to it directly. */
    ns_subscriber subscriber = {sizeof(ns_subscriber), conn, on_event, on_gap, on_end, on_refused, conn->exchange, NULL};
    /* The authenticate call's reference now covers the subscribe call. */
    plugin->api->subscribe(plugin->host, principal, str(conn->handshake->stream), conn->after, &subscriber, on_subscribed);
}

/* A header's value, or {NULL, 0}. */
static ns_str header(const ns_host_api *api, const ns_http_request *request, const char *name) {
    ns_str value = {NULL, 0};
    if (api->request_header(request, str(name), &value) != NS_OK) value.ptr = NULL;
    return value;
}

static void sse_on_request(void *instance, const ns_http_request *request, ns_exchange *exchange) {
    sse_plugin *plugin = instance;
    const ns_host_api *api = plugin->api;
    sse_conn *conn = calloc(1, sizeof *conn);
    sse_handshake *handshake = calloc(1, sizeof *handshake);
    if (!conn || !handshake) {
        free(conn);
        free(handshake);
        api->response_error(exchange, 503, str("unavailable"), str("out of memory"));
        return;
    }
    pthread_mutex_init(&conn->lock, NULL);
    conn->plugin = plugin;
    conn->exchange = exchange;
    conn->refs = 1;
    conn->origin = "";
    conn->handshake = handshake;
    api->exchange_set_context(exchange, conn);

    ns_str id = request->param_count > 0 ? request->params[0] : str("");
    if (id.len == 0 || id.len > 100) { fail(conn, 404, "not_found", str("no such stream")); return; }
    if (request->route_id == ROUTE_GESTURE) {
        /* A replay: the host reads its options from the stream name; the
         * credential and resume parameters stay out of it (names get logged). */
        snprintf(handshake->stream, sizeof handshake->stream, "replay:%.*s?", (int)id.len, id.ptr);
        replay_options(handshake->stream, sizeof handshake->stream, request->query);
    } else {
        snprintf(handshake->stream, sizeof handshake->stream, "%s:%.*s", request->route_id == ROUTE_CHAT ? "chat" : "canvas",
                 (int)id.len, id.ptr);
    }

    /* A page may subscribe from a listed origin (it gets CORS headers) or
     * from the server's own origin; any other page is refused, as the ws
     * plugin refuses it. Requests without an Origin (curl, servers) pass. */
    ns_str origin = header(api, request, "origin");
    if (origin.ptr) {
        for (int i = 0; i < plugin->origin_count; i++) {
            if (strlen(plugin->origins[i]) == origin.len && memcmp(plugin->origins[i], origin.ptr, origin.len) == 0) {
                conn->origin = plugin->origins[i];  /* the plugin outlives its connections */
            }
        }
        if (!conn->origin[0] && !same_origin(origin, header(api, request, "host"))) {
            fail(conn, 403, "origin_not_allowed", str("this page's origin is not in allowed_origins"));
            return;
        }
    }

    /* Where to resume: each of `?after=`, `?last_event_id=` and the header
     * is checked when present, and the later one read wins (parse_seq sets
     * the seq only when it succeeds): the header last, since a browser
     * sends it on every reconnect with the newest seq it saw. */
    ns_str value;
    if (api->request_query(request, str("after"), &value) == NS_OK && parse_seq(value, &conn->after) != 0) {
        fail(conn, 400, "invalid_after", str("after must be the decimal seq of the last event seen"));
        return;
    }
    if (api->request_query(request, str("last_event_id"), &value) == NS_OK && parse_seq(value, &conn->after) != 0) {
        fail(conn, 400, "invalid_last_event_id", str("last_event_id must be the decimal seq of the last event seen"));
        return;
    }
    value = header(api, request, "last-event-id");
    if (value.ptr && parse_seq(value, &conn->after) != 0) {
        fail(conn, 400, "invalid_last_event_id", str("Last-Event-ID must be the decimal seq of the last event seen"));
        return;
    }

    ns_credential credential = {sizeof(ns_credential), NS_CREDENTIAL_HEADER, {NULL, 0}, {NULL, 0}};
    uint32_t flags = plugin->allow_query_token ? NS_REQUEST_CREDENTIAL_QUERY : 0;
    if (api->request_credential(request, flags, &credential) != NS_OK) {
        fail(conn, 401, "unauthorized", str("a credential is required (Authorization: Bearer <token>)"));
        return;
    }
    pthread_mutex_lock(&conn->lock);
    conn->refs++; /* held until the handshake's callbacks are done */
    pthread_mutex_unlock(&conn->lock);
    api->authenticate(plugin->host, &credential, on_authenticated, conn);
}

/* The client went away: stop feeding it and end the exchange. The host
 * holds `response_end` back while this runs, so the connection (whose
 * exchange reference only `finish` drops) is alive here. */
static void sse_on_exchange_closed(void *instance, ns_exchange *exchange) {
    sse_plugin *plugin = instance;
    sse_conn *conn = plugin->api->exchange_context(exchange);
    if (!conn) return;
    ref(conn);
    finish(conn);
    unref(conn);
}

/* ---- lifecycle ----------------------------------------------------------- */

static int read_number(const ns_host_api *api, ns_host *host, const char *pointer, uint32_t low, uint32_t high,
                       uint32_t *out) {
    int32_t type;
    ns_str value;
    if (api->config_get(host, str(pointer), &type, &value) != NS_OK) return 0;
    char digits[24] = {0};
    if (type != NS_JSON_NUMBER || value.len >= sizeof digits) return -1;
    memcpy(digits, value.ptr, (size_t)value.len);
    char *end = NULL;
    unsigned long parsed = strtoul(digits, &end, 10);
    if (*end || parsed < low || parsed > high) return -1;
    *out = (uint32_t)parsed;
    return 0;
}

static ns_status sse_init(const ns_host_api *api, ns_host *host, ns_str config, void **out, ns_error *error) {
    (void)config;
    static const char *known[] = {"heartbeat_seconds", "retry_ms", "allow_query_token", "allowed_origins"};
    ns_str name;
    for (uint64_t i = 0; api->config_key(host, str(""), i, &name) == NS_OK; i++) {
        int ok = 0;
        for (size_t k = 0; k < 4; k++) ok |= name.len == strlen(known[k]) && memcmp(name.ptr, known[k], name.len) == 0;
        if (!ok) {
            api->error_set(error, str("unknown key (known: heartbeat_seconds, retry_ms, allow_query_token, allowed_origins)"));
            return NS_ERR_CONFIG;
        }
    }
    sse_plugin *plugin = calloc(1, sizeof *plugin);
    if (!plugin) return NS_ERR_INTERNAL;
    plugin->api = api;
    plugin->host = host;
    uint32_t heartbeat_seconds = 30;
    plugin->retry_ms = 3000;
    if (read_number(api, host, "/heartbeat_seconds", 1, 3600, &heartbeat_seconds) < 0 ||
        read_number(api, host, "/retry_ms", 0, 600000, &plugin->retry_ms) < 0) {
        free(plugin);
        api->error_set(error, str("heartbeat_seconds: 1 to 3600; retry_ms: 0 to 600000"));
        return NS_ERR_CONFIG;
    }
    plugin->heartbeat_ms = heartbeat_seconds * 1000;
    int32_t type;
    ns_str value;
    if (api->config_get(host, str("/allow_query_token"), &type, &value) == NS_OK) {
        if (type != NS_JSON_BOOL) { free(plugin); api->error_set(error, str("allow_query_token: true or false")); return NS_ERR_CONFIG; }
        plugin->allow_query_token = value.len == 4;
    }
    if (api->config_get(host, str("/allowed_origins"), &type, &value) == NS_OK) {
        uint32_t count = 0;
        char digits[24] = {0};
        memcpy(digits, value.ptr, value.len < 23 ? (size_t)value.len : 23);
        count = (uint32_t)strtoul(digits, NULL, 10);
        if (type != NS_JSON_ARRAY || count > MAX_ORIGINS) {
            free(plugin);
            api->error_set(error, str("allowed_origins: an array of at most 16 origins like \"https://app.example.com\""));
            return NS_ERR_CONFIG;
        }
        for (uint32_t i = 0; i < count; i++) {
            char pointer[48];
            snprintf(pointer, sizeof pointer, "/allowed_origins/%u", i);
            ns_str entry;
            if (api->config_get(host, str(pointer), &type, &entry) != NS_OK || type != NS_JSON_STRING || entry.len == 0 ||
                entry.len > MAX_ORIGIN || (!starts_with(entry, "http://") && !starts_with(entry, "https://"))) {
                free(plugin);
                api->error_set(error, str("allowed_origins[]: each an origin like \"https://app.example.com\""));
                return NS_ERR_CONFIG;
            }
            memcpy(plugin->origins[i], entry.ptr, (size_t)entry.len);
        }
        plugin->origin_count = (int)count;
    }
    *out = plugin;
    return NS_OK;
}

static ns_status sse_start(void *instance, ns_error *error) {
    sse_plugin *plugin = instance;
    if (plugin->api->struct_size < NS_HOST_API_SIZE_1_4) {
        plugin->api->error_set(error, str("sse needs a host with ABI 1.4 (exchange contexts, request helpers)"));
        return NS_ERR_UNSUPPORTED;
    }
    ns_status status = plugin->api->route_add(plugin->host, str("GET"), str("/sse/chat/{thread_id}"), ROUTE_CHAT, error);
    if (status != NS_OK) return status;
    status = plugin->api->route_add(plugin->host, str("GET"), str("/sse/canvas/{canvas_id}"), ROUTE_CANVAS, error);
    if (status != NS_OK) return status;
    return plugin->api->route_add(plugin->host, str("GET"), str("/sse/gestures/{gesture_id}"), ROUTE_GESTURE, error);
}

static void sse_destroy(void *instance) {
    sse_plugin *plugin = instance;
    free(plugin);
}

static const ns_transport_vtable sse_vtable = {
    .struct_size = sizeof(ns_transport_vtable),
    .minor = NS_TRANSPORT_VTABLE_MINOR,
    .on_request = sse_on_request,
    .on_exchange_closed = sse_on_exchange_closed,
    .on_ws_message = NULL, /* no WebSockets here */
    .on_ws_closed = NULL,
    .frame_event = sse_frame_event,
};

static const ns_plugin_info sse_info = {
    .struct_size = sizeof(ns_plugin_info),
    .abi_major = NS_ABI_MAJOR,
    .abi_minor = NS_ABI_MINOR,
    .kind = NS_KIND_TRANSPORT,
    .name = LITERAL("sse"),
    .version = LITERAL("1.0.0"),
    .description = LITERAL("Server-Sent Events: /sse/chat/{thread_id} and /sse/canvas/{canvas_id}, resumable"),
    .init = sse_init,
    .start = sse_start,
    .stop = NULL,
    .destroy = sse_destroy,
    .vtable = &sse_vtable,
};

ns_status northstar_plugin_v1(const ns_host_offer *offer, const ns_plugin_info **out_info, ns_error *error) {
    (void)offer;
    (void)error;
    *out_info = &sse_info;
    return NS_OK;
}
