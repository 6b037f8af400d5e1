/*
 * northstar_plugin.h: the Northstar plugin ABI, version 1.
 *
 * This header is the whole contract between the Northstar host and its
 * plugins (transports, storage backends, auth providers). It is pure C99 and
 * includes nothing beyond the C standard library, so a plugin can be written
 * in C, Swift, Rust or anything else that can export a C function.
 *
 * THE RULES (docs/plugins.md explains each with examples)
 *
 *  1. A plugin exports exactly one symbol, `northstar_plugin_v1` (the ABI
 *     major is in the name). Everything else is reached through tables. The
 *     host exports nothing for plugins to link against: it passes a const
 *     table of host services (`ns_host_api`).
 *  2. Versions are negotiated by range: the host offers its major and the
 *     minors it supports (`ns_host_offer`); the plugin answers the version it
 *     was built for (`ns_plugin_info`), or refuses.
 *  3. Every struct that crosses starts with `uint32_t struct_size`; fields are
 *     only ever appended, each new field names the minor that added it, and a
 *     reader checks `struct_size` before touching a field added after 1.0.
 *     The small value types `ns_str`, `ns_bytes`, `ns_header` and `ns_claim`
 *     are frozen: they never change.
 *  4. One vtable per plugin kind, each with its own minor. Entries marked
 *     MANDATORY are checked non-NULL at load; NULL in an OPTIONAL entry means
 *     the feature is absent.
 *  5. OWNERSHIP is written on every type and call. Borrowed data is a
 *     `{ptr, len}` view valid for the duration of the call only and never
 *     NUL-terminated. Memory that outlives a call is allocated with the host's
 *     `alloc` and released with its `free`, or carries its own release call.
 *     Nobody frees the other side's memory with free().
 *  6. THREAD lines say where each entry is called and whether it may block.
 *     Host services are callable from any thread. Slow work completes through
 *     a completion handle that is completed exactly once, from any thread.
 *  7. Errors are the stable `ns_status` codes below (0 is OK, new codes are
 *     only appended). The message goes through `error_set` (or a completion),
 *     never through a global. Nothing unwinds across the boundary: no C++
 *     exceptions, no longjmp, no Swift or Rust panics.
 *  8. Logging goes through `ns_host_api.log` with a fixed level; no varargs.
 *  9. The host loads with RTLD_NOW | RTLD_LOCAL, refuses the same real path
 *     twice, and never unloads a library.
 */
#ifndef NORTHSTAR_PLUGIN_H
#define NORTHSTAR_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Versions                                                                  */
/* ------------------------------------------------------------------------ */

/** The ABI major this header describes. A change here renames the entry. */
#define NS_ABI_MAJOR 1
/** The newest ABI minor this header describes. Minors only append.
 *  1.0: the first ABI. 1.1: `ns_host_api.http_fetch` (outbound HTTP),
 *  `timer_start` and `timer_cancel`. 1.2: `ns_subscriber.on_refused` (a
 *  refused subscribe's stable error code, as a field of its own),
 *  `ns_host_api.principal_renew`, and NS_ERR_EXPIRED (principals expire).
 *  1.3: live events framed once per transport (`ns_transport_vtable.
 *  frame_event`) and written by the host to every connection named in
 *  `ns_subscriber.exchange` / `.websocket`; `ns_host_api.subscription_position`.
 *  1.4: what every transport used to write itself: a per-exchange context
 *  (`exchange_set_context` / `exchange_context`), a "caught up, now live"
 *  notice (`ns_subscriber.on_live`), one-shot timers (`timer_once`), request
 *  helpers (`request_header`, `request_query`, `request_credential`) and the
 *  house JSON error (`response_error`); and the storage SHA-256 contract
 *  (`ns_storage_vtable.put_finish_checked`, storage vtable minor 1).
 *
 *  Which minor a plugin declares: set `ns_plugin_info.abi_minor` to
 *  NS_ABI_MINOR of the header it is built with. A host loads plugins of its
 *  own minor and every older one, and reads each struct a plugin hands it
 *  at that struct's own `struct_size` (fields appended later are absent).
 *  To also run on hosts older than the header, declare the oldest minor
 *  whose entries the plugin calls, and check `ns_host_api.struct_size`
 *  before calling any entry of a later minor. */
#define NS_ABI_MINOR 4
/** The one symbol a plugin exports. */
#define NS_ENTRY_SYMBOL "northstar_plugin_v1"

/** Minor of each vtable described by this header (each evolves alone). */
#define NS_TRANSPORT_VTABLE_MINOR 1
#define NS_STORAGE_VTABLE_MINOR 1
#define NS_AUTH_VTABLE_MINOR 0

/* ------------------------------------------------------------------------ */
/* Status codes: stable, 0 is success, new codes are only appended           */
/* ------------------------------------------------------------------------ */

typedef int32_t ns_status;
enum {
    NS_OK = 0,
    NS_ERR_INVALID_ARGUMENT = 1,    /* a caller's argument is malformed */
    NS_ERR_CONFIG = 2,              /* the plugin's config section is rejected */
    NS_ERR_UNSUPPORTED = 3,         /* the operation or version is not supported */
    NS_ERR_NOT_FOUND = 4,           /* no such object, stream or resource */
    NS_ERR_ALREADY_EXISTS = 5,      /* a create found the name taken */
    NS_ERR_DENIED = 6,              /* the credential or scope does not allow it */
    NS_ERR_TOO_LARGE = 7,           /* over a configured limit, or a full queue */
    NS_ERR_RANGE_NOT_SATISFIABLE = 8,
    NS_ERR_IO = 9,                  /* local I/O failed */
    NS_ERR_UNAVAILABLE = 10,        /* a backend is down or unreachable */
    NS_ERR_TIMEOUT = 11,            /* a backend did not answer in time */
    NS_ERR_CANCELLED = 12,          /* the call was cancelled */
    NS_ERR_CHECKSUM_MISMATCH = 13,  /* stored bytes do not match their checksum */
    NS_ERR_INTERNAL = 14,           /* a bug: say what in the message */
    NS_ERR_CONFLICT = 15,           /* a stale revision or a reused id */
    NS_ERR_EXPIRED = 16             /* 1.2: the principal's credential ran out */
};

/** Log levels for `ns_host_api.log`. */
typedef int32_t ns_log_level;
enum {
    NS_LOG_TRACE = 0,
    NS_LOG_DEBUG = 1,
    NS_LOG_INFO = 2,
    NS_LOG_NOTICE = 3,
    NS_LOG_WARNING = 4,
    NS_LOG_ERROR = 5,
    NS_LOG_CRITICAL = 6
};

/** The type of a config value, as `ns_host_api.config_get` reports it. */
typedef int32_t ns_json_type;
enum {
    NS_JSON_NULL = 0,
    NS_JSON_BOOL = 1,
    NS_JSON_NUMBER = 2,
    NS_JSON_STRING = 3,
    NS_JSON_ARRAY = 4,
    NS_JSON_OBJECT = 5
};

/** What a plugin is. Decides which vtable `ns_plugin_info.vtable` points to. */
typedef int32_t ns_plugin_kind;
enum {
    NS_KIND_TRANSPORT = 1, /* -> ns_transport_vtable */
    NS_KIND_STORAGE = 2,   /* -> ns_storage_vtable */
    NS_KIND_AUTH = 3       /* -> ns_auth_vtable */
};

/* ------------------------------------------------------------------------ */
/* Frozen value types                                                        */
/* ------------------------------------------------------------------------ */

/**
 * A borrowed run of UTF-8 text. Not NUL-terminated.
 * OWNERSHIP: borrowed; valid only during the call that passes it.
 * `ptr` may be NULL when `len` is 0.
 */
typedef struct ns_str {
    const char *ptr;
    uint64_t len;
} ns_str;

/** A borrowed run of bytes. OWNERSHIP: as `ns_str`. */
typedef struct ns_bytes {
    const uint8_t *ptr;
    uint64_t len;
} ns_bytes;

/** One HTTP header. OWNERSHIP: as `ns_str`. */
typedef struct ns_header {
    ns_str name;
    ns_str value;
} ns_header;

/**
 * One claim: a name and its value as text.
 * The host understands these names: "tenant_id", "user_id", "env",
 * "scopes" (space-separated), "expires_at" (Unix seconds, decimal).
 * Other names are carried along but not interpreted.
 * OWNERSHIP: as `ns_str`.
 */
typedef struct ns_claim {
    ns_str name;
    ns_str value;
} ns_claim;

/* ------------------------------------------------------------------------ */
/* Opaque host handles. Only the host knows what is inside.                  */
/* ------------------------------------------------------------------------ */

/** The host's handle for one loaded plugin; logs are tagged with its name.
 *  OWNERSHIP: host-owned, valid from init until the process exits. */
typedef struct ns_host ns_host;
/** A slot for one call's error message. OWNERSHIP: host-owned, call-scoped. */
typedef struct ns_error ns_error;
/** Where an auth provider writes verified claims. Host-owned, call-scoped. */
typedef struct ns_claims ns_claims;
/** A growable byte buffer the host owns; fill it with `buffer_append`. */
typedef struct ns_buffer ns_buffer;
/** A pending storage call; complete it exactly once. Host-owned until then. */
typedef struct ns_storage_call ns_storage_call;
/** One HTTP exchange routed to a transport. Host-owned; valid until the
 *  transport calls `response_end`, which it always does, exactly once, unless
 *  a `websocket_accept` on it succeeded (that consumes the exchange). */
typedef struct ns_exchange ns_exchange;
/** One upgraded WebSocket connection. Host-owned until `on_ws_closed` returns. */
typedef struct ns_websocket ns_websocket;
/**
 * An authenticated identity; release it with `principal_release`. A handle
 * the host looks up on every use, never a pointer it trusts: a released or
 * made-up one is refused with NS_ERR_INVALID_ARGUMENT. It carries its
 * credential's expiry (see `principal_renew`).
 */
typedef struct ns_principal ns_principal;
/** A live stream subscription; end it with `subscription_cancel`. */
typedef struct ns_subscription ns_subscription;

/* ------------------------------------------------------------------------ */
/* Auth plugins                                                              */
/* ------------------------------------------------------------------------ */

/** Where a credential was found. */
typedef int32_t ns_credential_source;
enum {
    NS_CREDENTIAL_HEADER = 1,      /* Authorization: <scheme> <value> */
    NS_CREDENTIAL_QUERY = 2,       /* a query parameter a transport allows */
    NS_CREDENTIAL_WS_PROTOCOL = 3  /* the Sec-WebSocket-Protocol header */
};

/**
 * One credential to verify.
 * OWNERSHIP: borrowed, valid during `verify` only. `value` is a secret: a
 * plugin never logs it.
 */
typedef struct ns_credential {
    uint32_t struct_size;
    ns_credential_source source;
    ns_str scheme; /* "Bearer", "ApiKey", ... as sent; compare case-insensitively */
    ns_str value;  /* the credential itself */
} ns_credential;

/** An auth provider's verdict on one credential. */
typedef int32_t ns_auth_decision;
enum {
    NS_AUTH_ACCEPT = 1, /* verified: claims were written */
    NS_AUTH_PASS = 2,   /* not mine (other scheme, other issuer): ask the next */
    NS_AUTH_REJECT = 3  /* mine, and invalid: stop the chain, answer 401 */
};

/** The vtable of an auth provider (`NS_KIND_AUTH`). */
typedef struct ns_auth_vtable {
    uint32_t struct_size;
    uint32_t minor; /* NS_AUTH_VTABLE_MINOR the plugin was built with */

    /**
     * MANDATORY (1.0). Verify one credential. On ACCEPT, write the claims with
     * `ns_host_api.claim_set` (at least "tenant_id" and "user_id"); the host
     * then checks them (tenant pattern, env, expiry). Return NS_OK with a
     * decision; a non-OK status (say, a key server that is down) is reported
     * as 503 and the chain stops.
     * THREAD: a host worker thread, never an event loop; called concurrently;
     * may block briefly (a bounded key refresh).
     * OWNERSHIP: `credential` and `claims` are borrowed for the call.
     */
    ns_status (*verify)(void *instance, const ns_credential *credential,
                        ns_claims *claims, ns_auth_decision *out_decision,
                        ns_error *error);

    /**
     * OPTIONAL (1.0). Mint a credential that `verify` accepts, for development
     * tooling (`northstar token`). Append the credential's text to `out`.
     * THREAD: a host thread that may block (never an event loop).
     * OWNERSHIP: `claims` is borrowed; `out` is host-owned.
     */
    ns_status (*mint)(void *instance, const ns_claim *claims, uint32_t claim_count,
                      int64_t ttl_seconds, ns_buffer *out, ns_error *error);
} ns_auth_vtable;

/* ------------------------------------------------------------------------ */
/* Storage plugins                                                           */
/* ------------------------------------------------------------------------ */

/** The size value meaning "not known" or "to the end". */
#define NS_SIZE_UNKNOWN UINT64_MAX

/**
 * What is known of one stored object.
 * OWNERSHIP: borrowed for the call that passes it; the host copies what it keeps.
 */
typedef struct ns_object_info {
    uint32_t struct_size;
    uint64_t size;             /* bytes, or NS_SIZE_UNKNOWN before a put ends */
    int64_t modified_unix_ms;  /* 0 when unknown */
    ns_str content_type;
    ns_str etag;               /* backend's entity tag, without quotes (the host adds
                                  them on the wire); may be empty */
    ns_str sha256_hex;         /* lowercase hex, as recorded at put; empty when not
                                  recorded (see `put_finish`) */
} ns_object_info;

/**
 * The vtable of a storage backend (`NS_KIND_STORAGE`).
 *
 * Keys are built by the host (`tenants/{tenant}/{env}/raw/...`); a backend
 * stores them as given and never builds or rewrites one.
 *
 * Every call completes its `ns_storage_call` exactly once, with
 * `ns_host_api.storage_complete`, from any thread, possibly before the entry
 * returns. THREAD for every entry: a host thread (a thread of the host's
 * shared task pool, never an event loop's); entries must not block: do slow
 * work elsewhere (the host's HTTP client is asynchronous).
 */
typedef struct ns_storage_vtable {
    uint32_t struct_size;
    uint32_t minor; /* NS_STORAGE_VTABLE_MINOR the plugin was built with */

    /**
     * MANDATORY (1.0). Begin a streamed upload of `key`. `info` gives the
     * content type and the size the client declared (NS_SIZE_UNKNOWN when it
     * declared none). Its `sha256_hex` is empty: the body is still streaming,
     * so its digest is not known yet.
     * Complete `call` once the upload is ready, with `storage_set_handle` first
     * to hand back the plugin's upload state. Nothing is visible under `key`
     * until `put_finish` completes with NS_OK.
     */
    void (*put_open)(void *instance, ns_str key, const ns_object_info *info,
                     ns_storage_call *call);
    /**
     * MANDATORY (1.0). Append `chunk` to an open upload. Complete `call` when
     * the chunk is accepted; the host sends the next one only then.
     * OWNERSHIP: `chunk` is borrowed until `call` completes.
     */
    void (*put_write)(void *instance, void *upload, ns_bytes chunk, ns_storage_call *call);
    /**
     * MANDATORY (1.0). Make the upload visible atomically. Complete `call`
     * with the stored object's info. The upload state is released either way.
     * The host compares the reported `size`, and `sha256_hex` when it is not
     * empty, with the bytes it sent, and removes the object on a mismatch
     * (the client gets 502 checksum_mismatch). A backend that reports no
     * SHA-256 is trusted for the bytes; to keep `ETag`s stable between the
     * upload's answer and later reads, compute the digest of what you store,
     * report it here, and report it again from `head` and `get_open`.
     */
    void (*put_finish)(void *instance, void *upload, ns_storage_call *call);
    /**
     * MANDATORY (1.0). Abandon an upload: nothing becomes visible, the state
     * is released. No completion. The host calls it at most once per upload,
     * and never after `put_finish`.
     */
    void (*put_abort)(void *instance, void *upload);

    /**
     * MANDATORY (1.0). Open `key` for reading `length` bytes from `offset`
     * (NS_SIZE_UNKNOWN: to the end). Complete `call` with the object's info
     * and, through `storage_set_handle`, the reader state; NS_ERR_NOT_FOUND
     * when there is no such object, NS_ERR_RANGE_NOT_SATISFIABLE when
     * `offset` is past its end.
     */
    void (*get_open)(void *instance, ns_str key, uint64_t offset, uint64_t length,
                     ns_storage_call *call);
    /**
     * MANDATORY (1.0). Read up to `max_bytes` from an open reader: hand the
     * bytes to `storage_deliver`, then complete `call`; zero bytes delivered
     * with NS_OK means the end.
     */
    void (*get_read)(void *instance, void *reader, uint64_t max_bytes, ns_storage_call *call);
    /** MANDATORY (1.0). Release a reader. No completion. The host calls it
     *  exactly once per reader that `get_open` handed back. */
    void (*get_close)(void *instance, void *reader);

    /** MANDATORY (1.0). Complete `call` with the info of `key`, or NOT_FOUND. */
    void (*head)(void *instance, ns_str key, ns_storage_call *call);
    /**
     * MANDATORY (1.0). List up to `limit` objects whose keys start with
     * `prefix`, in key order, after `page_token` (empty: from the start).
     * Report each with `storage_list_entry`, the next page's token (if any)
     * with `storage_list_next`, then complete `call`. `limit` is 1 to 1000
     * (never 0); reporting fewer is allowed, more is not.
     */
    void (*list)(void *instance, ns_str prefix, ns_str page_token, uint32_t limit,
                 ns_storage_call *call);
    /** MANDATORY (1.0). Delete `key`; NOT_FOUND when it was not there. */
    void (*remove)(void *instance, ns_str key, ns_storage_call *call);

    /**
     * OPTIONAL (1.0). Ask a pending call to stop early. Idempotent; the call is
     * still completed exactly once (with NS_ERR_CANCELLED or its result).
     * THREAD: any thread.
     */
    void (*cancel)(void *instance, ns_storage_call *call);

    /* --- vtable minor 1 (ABI 1.4): read only when struct_size covers it --- */

    /**
     * OPTIONAL (1.4). `put_finish`, told what the host sent: `sent->size` and
     * `sent->sha256_hex` (the SHA-256 of every byte, lowercase hex, computed
     * by the host while the body streamed). Store the digest with the object
     * and report it, in the completion's info and later from `head`,
     * `get_open` and `list`: the object's `ETag` and integrity check then hold
     * for every backend. The host calls this instead of `put_finish` when it
     * is set, and refuses (and removes) an object whose reported size or
     * SHA-256 differs from what it sent: 502 checksum_mismatch. A backend
     * without it is called through `put_finish`; if that reports no SHA-256,
     * the host logs once that the backend's uploads are not verified.
     */
    void (*put_finish_checked)(void *instance, void *upload, const ns_object_info *sent,
                               ns_storage_call *call);
} ns_storage_vtable;

/* ------------------------------------------------------------------------ */
/* Transport plugins                                                         */
/* ------------------------------------------------------------------------ */

/** WebSocket message kinds. */
typedef int32_t ns_ws_opcode;
enum {
    NS_WS_TEXT = 1,
    NS_WS_BINARY = 2
};

/**
 * One HTTP request routed to a transport.
 * OWNERSHIP: borrowed, valid during `on_request` only; copy what you keep.
 */
typedef struct ns_http_request {
    uint32_t struct_size;
    uint32_t route_id;       /* the id the plugin gave `route_add` */
    ns_str method;           /* "GET", "POST", ... */
    ns_str path;             /* the path as sent (not decoded), without the query */
    ns_str query;            /* raw query string, without '?' */
    const ns_header *headers;
    uint32_t header_count;
    const ns_str *params;    /* values of the route's {placeholders}, in order */
    uint32_t param_count;
    ns_str request_id;       /* the host's id for this request, for logs */
} ns_http_request;

/**
 * What the host tells a subscriber. All callbacks are called in stream order,
 * one at a time per subscription, on a host thread; they must not block.
 * None runs after `subscription_cancel` returns. OWNERSHIP: data passed to a
 * callback is borrowed for that call. The same `event_json` bytes are handed
 * to every subscriber of an event.
 */
typedef struct ns_subscriber {
    uint32_t struct_size;
    void *context; /* the transport's own state, passed back as is */
    /** An event: its `seq`, its `type`, and its StreamEvent v1 JSON. */
    void (*on_event)(void *context, uint64_t seq, ns_str type, ns_bytes event_json);
    /** The log no longer holds what was asked for: resume from `first_seq`. */
    void (*on_gap)(void *context, uint64_t requested_after, uint64_t first_seq);
    /**
     * The subscription ended by itself. Last call. NS_ERR_TOO_LARGE: the
     * subscriber fell too far behind (a slow consumer) and should resume
     * after the last `seq` it processed; NS_ERR_UNAVAILABLE: the log could
     * not be read; NS_ERR_CANCELLED: the host is shutting down; NS_OK: a
     * replay (`replay:<gesture_id>`) delivered its last sample;
     * NS_ERR_EXPIRED (1.2; an older plugin sees an unknown code and should
     * treat it as an end): the principal's credential ran out, and the
     * client should resume after its last `seq` with a fresh one.
     */
    void (*on_end)(void *context, ns_status status, ns_str message);

    /* --- 1.2: the host reads these only when struct_size covers them --- */

    /**
     * Optional (NULL: absent). When the host refuses the subscribe, it calls
     * this once, just before `done`, with the kernel's stable error code
     * ("not_found", "forbidden", "invalid_after", "invalid_stream", ...), so a
     * transport answers its client with that code; `done`'s message is then
     * the reason alone. Without it, a 400's message reads "<code>: <reason>"
     * as in 1.0 and 1.1. OWNERSHIP: `code` is borrowed for the call.
     * THREAD: the thread `done` then runs on.
     */
    void (*on_refused)(void *context, ns_str code);

    /* --- 1.3: the host reads these only when struct_size covers them --- */

    /**
     * Optional (both NULL: absent). The connection this subscription's events
     * go to: the exchange whose response streams them, or the WebSocket (for
     * a subscription made before `websocket_accept`, the handshake's exchange
     * names the socket it becomes). When one is set and the transport has
     * `frame_event`, the host writes each live event to that connection
     * itself, as `frame_event` made it once for every subscriber, in order
     * with the transport's own writes; `on_event` is then called only for
     * events read back from the log (a resume's catch-up), which the transport
     * writes as before. A connection that falls its queue limit behind is cut
     * off: `on_end` with NS_ERR_TOO_LARGE, and the transport's last write (a
     * `stream.end`, a close) still goes out, past the limit. Replays
     * (`replay:`) always come through `on_event`. OWNERSHIP: borrowed; the
     * connection must outlive the subscription (cancel it before
     * `response_end`, as before).
     */
    ns_exchange *exchange;
    ns_websocket *websocket;

    /* --- ABI 1.4: read only when struct_size covers it --- */

    /**
     * OPTIONAL (1.4). Caught up: every event the log held after `after_seq`
     * has been delivered (through `on_event`), and from now on events arrive
     * as they are committed. Called once, in order with the other
     * callbacks, before the first live event; not for a replay (`replay:`),
     * which ends with `on_end`. A long-poll answers here when it has events.
     */
    void (*on_live)(void *context);
} ns_subscriber;

/**
 * Completion of `ns_host_api.subscribe`, called once with the subscriber's
 * `context`: NS_OK and the subscription (its callbacks start only after this
 * returns), or NS_ERR_NOT_FOUND (missing or another tenant's: answer 404),
 * NS_ERR_DENIED (no read scope: 403), NS_ERR_INVALID_ARGUMENT (400: a
 * malformed stream name, `after_seq` past the head, bad replay options) or
 * NS_ERR_UNAVAILABLE, with a message. The stable error code of a refusal
 * ("invalid_speed", ...) reaches a 1.2 subscriber through `on_refused`, just
 * before this; for an older subscriber (no `on_refused`), a 400's message is
 * "<code>: <why>", e.g. "invalid_speed: speed: a number from 0.1 to 16".
 * On `on_end`, NS_OK means a replay played to its end. THREAD: any.
 */
typedef void (*ns_subscribe_done)(void *context, ns_status status, ns_subscription *subscription, ns_str message);

/** A repeating timer's callback (`ns_host_api.timer_start`, 1.1). */
typedef void (*ns_timer_fn)(void *context);
/** A repeating timer. OWNERSHIP: host-owned until `timer_cancel`. */
typedef struct ns_timer ns_timer;

/**
 * One outbound HTTP request, for `ns_host_api.http_fetch` (added in 1.1).
 * OWNERSHIP: borrowed for the `http_fetch` call only; the host copies it.
 */
typedef struct ns_http_fetch {
    uint32_t struct_size;
    ns_str method;            /* "GET", "POST", ... */
    ns_str url;               /* http:// or https:// */
    const ns_header *headers;
    uint32_t header_count;
    ns_bytes body;            /* may be empty */
    uint32_t timeout_ms;      /* the whole exchange; 0: the host's default (10 s) */
    uint64_t max_response_bytes; /* a larger answer fails with NS_ERR_TOO_LARGE; 0: 16 MiB */
} ns_http_fetch;

/**
 * Completion of `http_fetch`, called exactly once, from any thread (possibly
 * before `http_fetch` returns). `status` is NS_OK when an HTTP answer came
 * back, whatever its `http_status`; otherwise NS_ERR_UNAVAILABLE (connect or
 * TLS failure), NS_ERR_TIMEOUT, NS_ERR_TOO_LARGE or NS_ERR_INVALID_ARGUMENT,
 * with `error_message` saying why.
 * OWNERSHIP: everything passed is borrowed for the duration of the call.
 */
typedef void (*ns_http_done)(void *context, ns_status status, int32_t http_status,
                             const ns_header *headers, uint32_t header_count,
                             ns_bytes body, ns_str error_message);

/** Completion of `ns_host_api.authenticate`. OWNERSHIP: `message` is
 *  borrowed for the call; `principal` (NULL unless NS_OK) is the callee's. */
typedef void (*ns_auth_done)(void *context, ns_status status, ns_principal *principal, ns_str message);

/** Completion of a kernel call: an HTTP status and the JSON answer. */
typedef void (*ns_kernel_done)(void *context, int32_t http_status, ns_bytes response_json);

/** The vtable of a transport (`NS_KIND_TRANSPORT`). */
typedef struct ns_transport_vtable {
    uint32_t struct_size;
    uint32_t minor; /* NS_TRANSPORT_VTABLE_MINOR the plugin was built with */

    /**
     * MANDATORY (1.0). A request reached one of the plugin's routes. Answer
     * with `response_start`/`response_write`/`response_end`, or upgrade it with
     * `websocket_accept`, now or later from any thread. A misuse (a status
     * outside 200-599, a write before `response_start`, an end without one)
     * is refused with NS_ERR_INVALID_ARGUMENT and logged with the route; the
     * client then gets 504 transport_no_answer, as it does when no answer
     * starts within 30 s. After SIGTERM, an exchange not ended by
     * `node.drain_deadline_seconds` is ended by the host (`on_exchange_closed` first).
     * THREAD: a host thread (a request's task); must not block.
     */
    void (*on_request)(void *instance, const ns_http_request *request, ns_exchange *exchange);
    /**
     * MANDATORY (1.0). The client of an unfinished exchange went away: writes
     * now fail with NS_ERR_CANCELLED. Stop what feeds it and call
     * `response_end`, as for every exchange. Called at most once, as soon as
     * the connection closes, also before the plugin answered; never before
     * `on_request` returned, nor after `response_end` returned (`response_end`
     * waits for a call in flight on another thread: do not hold a lock this
     * callback takes while calling it).
     * THREAD: any host thread; must not block.
     */
    void (*on_exchange_closed)(void *instance, ns_exchange *exchange);
    /**
     * OPTIONAL (1.0; mandatory for a plugin that calls `websocket_accept`).
     * A message arrived on an accepted WebSocket. `conn` is the state given
     * to `websocket_accept`. THREAD: a host thread (the socket's reading
     * task, one message at a time per socket, never an event loop's); must
     * not block.
     */
    void (*on_ws_message)(void *instance, void *conn, ns_websocket *ws,
                          ns_ws_opcode opcode, ns_bytes payload);
    /**
     * OPTIONAL (1.0; as above). The WebSocket closed. Last call for `ws`.
     * THREAD: as `on_ws_message`; must not block.
     */
    void (*on_ws_closed)(void *instance, void *conn, ns_websocket *ws,
                         uint16_t code, ns_str reason);

    /* --- vtable minor 1 (ABI 1.3): read only when struct_size covers it --- */

    /**
     * OPTIONAL. Turns one live event into the bytes this transport sends for
     * it, once for every subscriber: an SSE frame, a WebSocket message's
     * payload (the host adds the WebSocket or HTTP chunk framing). Write at
     * most `capacity` bytes to `out` and set `*length`; when they do not fit,
     * set `*length` to the size needed and return NS_ERR_TOO_LARGE, and the
     * host calls again with that much room. Any other error ends the
     * subscriptions that needed the frame (NS_ERR_INTERNAL in `on_end`).
     * `stream` is the name the subscriber subscribed with ("chat:<id>").
     * THREAD: an event loop (the first one that needs the frame); must not
     * block, must not call the host.
     */
    ns_status (*frame_event)(void *instance, ns_str stream, uint64_t seq, ns_str type, ns_bytes event_json,
                             uint8_t *out, uint64_t capacity, uint64_t *length);
} ns_transport_vtable;

/* ------------------------------------------------------------------------ */
/* Host services                                                             */
/* ------------------------------------------------------------------------ */

/**
 * The services the host lends every plugin. Callable from any thread unless
 * a line says otherwise. Check `struct_size` before calling an entry added
 * after 1.0. OWNERSHIP: the table is host-owned and lives for the process.
 */
typedef struct ns_host_api {
    uint32_t struct_size;
    uint32_t abi_minor; /* the minor the host runs with */

    /* --- every plugin (1.0) --- */

    /** Log one line, tagged with the plugin's name. Never log a credential. */
    void (*log)(ns_host *host, ns_log_level level, ns_str message);
    /** Set the message of a failing call. The last call wins. */
    void (*error_set)(ns_error *error, ns_str message);
    /** Allocate `size` bytes the other side may free with `free` (NULL on failure). */
    void *(*alloc)(uint64_t size);
    /** Release memory from `alloc`. NULL is ignored. */
    void (*free)(void *ptr);
    /** Append bytes to a host-owned buffer. */
    ns_status (*buffer_append)(ns_buffer *buffer, ns_bytes bytes);
    /**
     * Read the plugin's own config by JSON Pointer (RFC 6901), e.g.
     * "/keys/0/tenant_id" ("" is the whole section), so that a plugin in C
     * needs no JSON parser. `out_type` gets an `ns_json_type`; `out_value` gets
     * a string's decoded text, a number's or boolean's JSON text, or the
     * member count of an object or array, in decimal. NS_ERR_NOT_FOUND when
     * nothing is there.
     * OWNERSHIP: `out_value` is host-owned, valid until `init` returns.
     * THREAD: inside `init` only.
     */
    ns_status (*config_get)(ns_host *host, ns_str pointer, int32_t *out_type, ns_str *out_value);
    /**
     * Name the `index`-th member of the object at `pointer`, in sorted order,
     * so a plugin can refuse keys it does not know. NS_ERR_NOT_FOUND past the
     * end. OWNERSHIP and THREAD: as `config_get`.
     */
    ns_status (*config_key)(ns_host *host, ns_str pointer, uint64_t index, ns_str *out_name);

    /* --- auth plugins (1.0) --- */

    /** Record one verified claim (see `ns_claim`). THREAD: inside `verify`. */
    ns_status (*claim_set)(ns_claims *claims, ns_str name, ns_str value);

    /* --- storage plugins (1.0) --- */

    /** Hand back upload or reader state, before completing put_open/get_open. */
    void (*storage_set_handle)(ns_storage_call *call, void *handle);
    /** Deliver bytes read by `get_read`; the host copies them. */
    void (*storage_deliver)(ns_storage_call *call, ns_bytes bytes);
    /** Report one listed object (inside `list`, before completing). */
    void (*storage_list_entry)(ns_storage_call *call, ns_str key, const ns_object_info *info);
    /** Report the token of the next page (inside `list`, before completing). */
    void (*storage_list_next)(ns_storage_call *call, ns_str page_token);
    /**
     * Complete a storage call, exactly once. `info` may be NULL where the call
     * returns none. `message` explains a non-OK status. After this returns,
     * `call` is gone.
     */
    void (*storage_complete)(ns_storage_call *call, ns_status status, ns_str message,
                             const ns_object_info *info);

    /* --- transport plugins (1.0) --- */

    /**
     * Mount a route on the host's listener. `pattern` is a path whose
     * segments may be `{name}` placeholders ("/sse/chat/{thread_id}").
     * THREAD: inside `start` only.
     */
    ns_status (*route_add)(ns_host *host, ns_str method, ns_str pattern, uint32_t route_id,
                           ns_error *error);
    /** Start the response: status (200 to 599) and headers. Call once per
     *  exchange. NS_ERR_CANCELLED when the client already left,
     *  NS_ERR_INVALID_ARGUMENT (logged) for a bad status or a second call.
     *  The host adds `x-request-id` (the request's id, replacing one the
     *  plugin set) and, to a 401 without one, `www-authenticate: Bearer`. */
    ns_status (*response_start)(ns_exchange *exchange, int32_t status,
                                const ns_header *headers, uint32_t header_count);
    /**
     * Queue body bytes (copied). NS_ERR_TOO_LARGE when the connection's
     * bounded send queue is full: the client is not reading, end the exchange.
     * NS_ERR_CANCELLED once the client left; NS_ERR_INVALID_ARGUMENT (logged)
     * before `response_start`.
     */
    ns_status (*response_write)(ns_exchange *exchange, ns_bytes bytes);
    /** Finish the response. `exchange` is gone after this returns. */
    void (*response_end)(ns_exchange *exchange);
    /**
     * Upgrade the exchange to a WebSocket, answering with `subprotocol` (may be
     * empty; else one the client offered). `conn` is passed back to
     * `on_ws_message`/`on_ws_closed`. On NS_OK the exchange is consumed (no
     * `response_end` for it) and `*out_ws` is valid until `on_ws_closed`
     * returns, which the host calls exactly once; messages may be sent at
     * once (they wait for the handshake). NS_ERR_INVALID_ARGUMENT when the
     * request is not a WebSocket handshake (answer 426 instead),
     * NS_ERR_CANCELLED when the client already left.
     */
    ns_status (*websocket_accept)(ns_exchange *exchange, ns_str subprotocol, void *conn,
                                  ns_websocket **out_ws);
    /** Queue one message (copied); NS_ERR_TOO_LARGE when the queue is full. */
    ns_status (*websocket_send)(ns_websocket *ws, ns_ws_opcode opcode, ns_bytes payload);
    /** Close with a code and a reason (sent after what is queued). Idempotent.
     *  `on_ws_closed` follows once the close handshake ends. */
    void (*websocket_close)(ns_websocket *ws, uint16_t code, ns_str reason);

    /**
     * Authenticate a credential through the host's auth chain. `done` runs
     * exactly once, from any thread (auth plugins may block, so never on the
     * caller's stack when that is an event loop): with NS_OK and a principal
     * the transport then owns (release it with `principal_release`), or with
     * NS_ERR_DENIED (answer 401; the message says why, never the credential),
     * NS_ERR_UNAVAILABLE (503), or NS_ERR_TOO_LARGE (answer 429
     * `too_many_user_connections`): the user holds the node's
     * `limits.max_connections_per_user` principals already. A principal is
     * one connection of its user's until it is released, so release it when
     * the connection ends. THREAD: any; never blocks.
     */
    void (*authenticate)(ns_host *host, const ns_credential *credential, ns_auth_done done, void *context);
    /** Release a principal. NULL is ignored. */
    void (*principal_release)(ns_principal *principal);
    /**
     * Subscribe to a stream ("chat:<id>", "canvas:<id>", "gesture:<id>") for
     * the principal, from the event after `after_seq` (0: from the start).
     * The host resolves the stream with isolation first, then answers through
     * `done` (see `ns_subscribe_done`). `subscriber` is copied; its context is
     * passed to `done`. THREAD: any; never blocks.
     */
    void (*subscribe)(ns_host *host, const ns_principal *principal, ns_str stream, uint64_t after_seq,
                      const ns_subscriber *subscriber, ns_subscribe_done done);
    /** End a subscription and release its handle: call it exactly once per
     *  subscription, also after `on_end` (the handle is gone after it
     *  returns). It may be called from inside the subscription's own
     *  callbacks; no callback runs after it returns (one running on another
     *  thread is waited for). */
    void (*subscription_cancel)(ns_subscription *subscription);
    /**
     * Ask the kernel to do what a REST call would: `operation` names it
     * ("chat.post", "canvas.command", ...; docs/protocol.md lists them),
     * `target` is the resource id, `body` the same JSON as the REST body. The
     * kernel decides; `done` is called once, from any thread, with the REST
     * status and JSON answer. A write over the node's rates for the
     * principal's user or tenant is answered 429 `rate_limited`: nothing was
     * done, and the error's `retry_after_ms` says when it may go again.
     */
    void (*kernel_call)(ns_host *host, const ns_principal *principal, ns_str operation,
                        ns_str target, ns_bytes body, ns_kernel_done done, void *context);

    /* --- every plugin (1.1): check struct_size covers it before calling --- */

    /**
     * Send one HTTP(S) request with the host's client (pooled connections,
     * one TLS stack, one event loop group), so a plugin needs no network
     * code of its own. The answer's body is buffered (up to
     * `max_response_bytes`). Returns NS_OK when the request was accepted;
     * `done` then runs exactly once. THREAD: any; never blocks.
     */
    ns_status (*http_fetch)(ns_host *host, const ns_http_fetch *request, ns_http_done done, void *context);
    /**
     * Call `fire(context)` every `interval_ms` (at least 10) until cancelled,
     * on a host thread; `fire` must not block (heartbeats, pings, timeouts).
     * Each call comes `interval_ms` after the last one, or up to 10 ms later
     * (the host keeps its many repeating timers on one coarse wheel); use
     * `timer_once` (1.4) when a delay must be kept to the millisecond.
     * Returns NULL when `interval_ms` is too small. THREAD: any. (1.1)
     */
    ns_timer *(*timer_start)(ns_host *host, uint32_t interval_ms, ns_timer_fn fire, void *context);
    /** Stop a timer and release it: call it exactly once, also from inside
     *  `fire`. After it returns `fire` does not run again. (1.1) */
    void (*timer_cancel)(ns_timer *timer);

    /* --- every plugin (1.2): check struct_size covers it before calling --- */

    /**
     * Renew a principal with a fresh credential for the same identity, on a
     * connection that stays open (a WebSocket's `auth` message): the host
     * verifies `credential` through the auth chain and, when it names the
     * same tenant, env and user, gives `principal` the new credential's
     * expiry and scopes in place, so its subscriptions go on. `done` gets
     * NS_OK and NULL, or NS_ERR_DENIED (invalid, or another identity: the
     * principal is unchanged), NS_ERR_INVALID_ARGUMENT (not a live principal)
     * or NS_ERR_UNAVAILABLE, with a message. Principals expire: when one's
     * credential runs out, its subscriptions end with NS_ERR_EXPIRED and the
     * host refuses it to `subscribe` and `kernel_call`.
     * OWNERSHIP: `credential` is borrowed for the call. THREAD: any; never blocks.
     */
    void (*principal_renew)(ns_host *host, ns_principal *principal, const ns_credential *credential,
                            ns_auth_done done, void *context);

    /* --- every plugin (1.3): check struct_size covers it before calling --- */

    /**
     * The `seq` of the last event this subscription delivered, counting the
     * live events the host wrote to the connection itself (which the
     * transport never sees): where its client resumes from. 0 before the
     * first. THREAD: any (in `on_end`, it is final).
     */
    uint64_t (*subscription_position)(const ns_subscription *subscription);

    /* --- every plugin (1.4): check struct_size covers it before calling --- */

    /**
     * Attach the transport's own state to an exchange, and read it back in
     * any later callback that names the exchange (`on_exchange_closed`), so
     * a transport keeps no table of its exchanges. NULL until set.
     * THREAD: any, until `response_end`.
     */
    void (*exchange_set_context)(ns_exchange *exchange, void *context);
    void *(*exchange_context)(ns_exchange *exchange);
    /**
     * Call `fire(context)` once, after `delay_ms` (at least 1). As with
     * `timer_start`, call `timer_cancel` exactly once per timer, before or
     * after it fired (also from inside `fire`): that releases it. NULL when
     * `delay_ms` is 0. THREAD: any.
     */
    ns_timer *(*timer_once)(ns_host *host, uint32_t delay_ms, ns_timer_fn fire, void *context);
    /**
     * The value of header `name` (case-insensitive; the first, if repeated):
     * NS_OK and a view into `request`, or NS_ERR_NOT_FOUND.
     * THREAD: inside `on_request`, for its `request`.
     */
    ns_status (*request_header)(const ns_http_request *request, ns_str name, ns_str *out_value);
    /**
     * The value of query parameter `name`, percent-decoded (`+` is a space):
     * NS_OK and a view valid until `on_request` returns, NS_ERR_NOT_FOUND, or
     * NS_ERR_INVALID_ARGUMENT when its encoding is broken.
     * THREAD: inside `on_request`, for its `request`.
     */
    ns_status (*request_query)(const ns_http_request *request, ns_str name, ns_str *out_value);
    /**
     * The request's credential, ready for `authenticate`: `Authorization:
     * <scheme> <value>`, or, with NS_REQUEST_CREDENTIAL_QUERY in `flags`, an
     * `access_token` query parameter as a Bearer token (for clients that
     * cannot set headers, like `EventSource`). NS_ERR_NOT_FOUND when there
     * is none; NS_ERR_INVALID_ARGUMENT for an Authorization header without a
     * scheme and a value. `*out` must have `struct_size` set; its views stay
     * valid until `on_request` returns.
     * THREAD: inside `on_request`, for its `request`.
     */
    ns_status (*request_credential)(const ns_http_request *request, uint32_t flags, ns_credential *out);
    /**
     * Answer with the house error, `{"error":{"code":...,"message":...}}`
     * (application/json), and end the exchange: no `response_end` follows.
     * `status` is 400 to 599, `code` a stable snake_case code. On a started
     * response it only ends the exchange (and logs the misuse).
     * THREAD: any.
     */
    void (*response_error)(ns_exchange *exchange, int32_t status, ns_str code, ns_str message);
} ns_host_api;

/** Flags of `ns_host_api.request_credential`. */
enum {
    NS_REQUEST_CREDENTIAL_QUERY = 1 /* also accept ?access_token= */
};

/**
 * What the host offers at load: its major, the range of minors it supports,
 * and its services. OWNERSHIP: host-owned, lives for the process.
 */
typedef struct ns_host_offer {
    uint32_t struct_size;
    uint32_t abi_major;     /* NS_ABI_MAJOR of the host */
    uint32_t abi_minor_min; /* oldest minor the host accepts */
    uint32_t abi_minor_max; /* newest minor the host knows */
    const ns_host_api *api;
} ns_host_offer;

/**
 * What a plugin is, returned by the entry.
 * OWNERSHIP: plugin-owned, static storage: it must live for the process.
 */
typedef struct ns_plugin_info {
    uint32_t struct_size;
    uint32_t abi_major;  /* NS_ABI_MAJOR the plugin was built with */
    uint32_t abi_minor;  /* NS_ABI_MINOR the plugin was built with */
    ns_plugin_kind kind;
    ns_str name;         /* [a-z][a-z0-9_-]{0,31}; the config refers to it */
    ns_str version;      /* the plugin's own version, e.g. "1.2.0" */
    ns_str description;  /* one line for `northstar plugins inspect` */

    /**
     * MANDATORY (1.0). Create an instance from the plugin's config section
     * (a JSON object, "{}" when none). Reject bad config with NS_ERR_CONFIG and
     * a message naming the key. `host` identifies the plugin in host calls.
     * THREAD: a host thread that may block (never an event loop), before the
     * port is bound; lifecycle calls are never concurrent with each other.
     */
    ns_status (*init)(const ns_host_api *api, ns_host *host, ns_str config_json,
                      void **out_instance, ns_error *error);
    /**
     * OPTIONAL (1.0). Start: transports mount routes here. Plugins start in
     * config order. THREAD: as `init`; may block.
     */
    ns_status (*start)(void *instance, ns_error *error);
    /**
     * OPTIONAL (1.0). Stop: finish or cancel pending work. Plugins stop in
     * reverse order; the host makes no further calls but `destroy`.
     * THREAD: as `init`; may block briefly.
     */
    void (*stop)(void *instance);
    /** OPTIONAL (1.0). Free the instance. The library itself stays loaded. */
    void (*destroy)(void *instance);

    /** MANDATORY (1.0). The kind's vtable: static storage, lives for the process. */
    const void *vtable;
} ns_plugin_info;

/**
 * THE ENTRY. A plugin defines exactly this and exports nothing else:
 *
 *     ns_status northstar_plugin_v1(const ns_host_offer *offer,
 *                                   const ns_plugin_info **out_info,
 *                                   ns_error *error);
 *
 * Return NS_OK and the plugin's info, or refuse with NS_ERR_UNSUPPORTED and
 * a message (through `offer->api->error_set`) when the offered minors do not
 * include what the plugin needs.
 * THREAD: as `init`, once per process.
 */
typedef ns_status (*ns_plugin_entry_fn)(const ns_host_offer *offer,
                                        const ns_plugin_info **out_info,
                                        ns_error *error);

/* ------------------------------------------------------------------------ */
/* Minimum sizes: the smallest struct_size a reader accepts at 1.0           */
/* ------------------------------------------------------------------------ */

#define NS_SIZE_THROUGH(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))
/* Enum constants (not macros) so that Swift and other importers see them. */
enum {
    NS_PLUGIN_INFO_MIN_SIZE = NS_SIZE_THROUGH(ns_plugin_info, vtable),
    NS_AUTH_VTABLE_MIN_SIZE = NS_SIZE_THROUGH(ns_auth_vtable, mint),
    NS_STORAGE_VTABLE_MIN_SIZE = NS_SIZE_THROUGH(ns_storage_vtable, cancel),
    NS_TRANSPORT_VTABLE_MIN_SIZE = NS_SIZE_THROUGH(ns_transport_vtable, on_ws_closed),
    NS_HOST_API_MIN_SIZE = NS_SIZE_THROUGH(ns_host_api, kernel_call),
    NS_HOST_OFFER_MIN_SIZE = NS_SIZE_THROUGH(ns_host_offer, api),
    NS_CREDENTIAL_MIN_SIZE = NS_SIZE_THROUGH(ns_credential, value),
    NS_SUBSCRIBER_MIN_SIZE = NS_SIZE_THROUGH(ns_subscriber, on_end),
    NS_OBJECT_INFO_MIN_SIZE = NS_SIZE_THROUGH(ns_object_info, sha256_hex),
    NS_HTTP_REQUEST_MIN_SIZE = NS_SIZE_THROUGH(ns_http_request, request_id),
    NS_HTTP_FETCH_MIN_SIZE = NS_SIZE_THROUGH(ns_http_fetch, max_response_bytes),
    /* Sizes through the last field of a minor, to test `struct_size` against. */
    NS_HOST_API_SIZE_1_1 = NS_SIZE_THROUGH(ns_host_api, timer_cancel),
    NS_HOST_API_SIZE_1_2 = NS_SIZE_THROUGH(ns_host_api, principal_renew),
    NS_SUBSCRIBER_SIZE_1_2 = NS_SIZE_THROUGH(ns_subscriber, on_refused),
    NS_HOST_API_SIZE_1_3 = NS_SIZE_THROUGH(ns_host_api, subscription_position),
    NS_SUBSCRIBER_SIZE_1_3 = NS_SIZE_THROUGH(ns_subscriber, websocket),
    NS_TRANSPORT_VTABLE_SIZE_1 = NS_SIZE_THROUGH(ns_transport_vtable, frame_event),
    NS_HOST_API_SIZE_1_4 = NS_SIZE_THROUGH(ns_host_api, response_error),
    NS_SUBSCRIBER_SIZE_1_4 = NS_SIZE_THROUGH(ns_subscriber, on_live),
    NS_STORAGE_VTABLE_SIZE_1 = NS_SIZE_THROUGH(ns_storage_vtable, put_finish_checked)
};

/* ------------------------------------------------------------------------ */
/* Compile-time layout checks (C99: a negative array size fails the build)   */
/* ------------------------------------------------------------------------ */

#define NS_STATIC_ASSERT(name, cond) typedef char ns_static_assert_##name[(cond) ? 1 : -1]
NS_STATIC_ASSERT(status_is_32_bits, sizeof(ns_status) == 4);
NS_STATIC_ASSERT(str_is_two_words, sizeof(ns_str) == 16);
NS_STATIC_ASSERT(bytes_is_two_words, sizeof(ns_bytes) == 16);
NS_STATIC_ASSERT(header_is_two_strs, sizeof(ns_header) == 32);
NS_STATIC_ASSERT(claim_is_two_strs, sizeof(ns_claim) == 32);
NS_STATIC_ASSERT(struct_size_first_info, offsetof(ns_plugin_info, struct_size) == 0);
NS_STATIC_ASSERT(struct_size_first_api, offsetof(ns_host_api, struct_size) == 0);
NS_STATIC_ASSERT(plugin_info_size_lp64, sizeof(void *) != 8 || sizeof(ns_plugin_info) == 104);
NS_STATIC_ASSERT(host_offer_size_lp64, sizeof(void *) != 8 || sizeof(ns_host_offer) == 24);

#ifdef __cplusplus
}
#endif

#endif /* NORTHSTAR_PLUGIN_H */
