/*
 * memory: a storage backend that keeps objects in memory, in plain C, on
 * the header alone. A complete example of the storage contract: streamed
 * uploads that become visible only once finished, ranged reads, listing in
 * key order with page tokens, deletes, and the SHA-256 contract of ABI 1.4
 * (`put_finish_checked`: the host tells the backend the digest of what it
 * sent; the backend keeps it and reports it on every read).
 *
 * Objects are lost when the process stops: for tests and demos only.
 * Config: {"max_objects": 10000} (optional).
 *
 * Build:  make        (see the Makefile next to this file)
 * Use:    {"name": "memory", "path": "/path/to/libmemory_storage.so"} under
 *         "plugins", and "storage": {"backend": "memory"}.
 */
#include <northstar_plugin.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The plugin's name: its config entry's "name", and `storage.backend`. */
#define PLUGIN_NAME "memory"

/* One stored object. Readers share it by reference: a delete or an
 * overwrite while a read is under way does not pull the bytes away. */
typedef struct object {
    int refs;                 /* the store's, plus one per open reader */
    char *key;
    uint8_t *bytes;
    uint64_t size;
    char content_type[128];
    char sha256[65];          /* lowercase hex, as the host computed it; "" if never told */
    int64_t modified_ms;
} object;

typedef struct store {
    const ns_host_api *api;
    ns_host *host;
    pthread_mutex_t lock;     /* guards `objects` and every object's `refs` */
    object **objects;         /* sorted by key, for `list` */
    size_t count, capacity, max_objects;
} store;

typedef struct upload {
    char *key;
    uint8_t *bytes;
    uint64_t size, capacity;
    char content_type[128];
} upload;

typedef struct reader {
    object *object;
    uint64_t next, end;       /* the bytes still to deliver: [next, end) */
} reader;

static ns_str str(const char *text) { ns_str s = {text, text ? strlen(text) : 0}; return s; }

static void copy_str(char *out, size_t capacity, ns_str text) {
    size_t n = text.len < capacity - 1 ? (size_t)text.len : capacity - 1;
    memcpy(out, text.ptr, n);
    out[n] = '\0';
}

static int64_t now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* The info the host reads; its views point into `o`, valid for the call. */
static ns_object_info info_of(const object *o) {
    ns_object_info info = {sizeof(ns_object_info), o->size, o->modified_ms, str(o->content_type),
                           str(o->sha256), str(o->sha256)}; /* the digest doubles as the ETag */
    return info;
}

static void release(store *s, object *o) {
    pthread_mutex_lock(&s->lock);
    int last = --o->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (!last) return;
    free(o->key);
    free(o->bytes);
    free(o);
}

/* Where `key` is, or would be inserted, in the sorted array. Under the lock. */
static size_t position(const store *s, ns_str key, int *found) {
    size_t low = 0, high = s->count;
    *found = 0;
    while (low < high) {
        size_t middle = (low + high) / 2;
        const char *candidate = s->objects[middle]->key;
        size_t length = strlen(candidate);
        int order = memcmp(candidate, key.ptr, length < key.len ? length : (size_t)key.len);
        if (order == 0) order = length < key.len ? -1 : length > key.len ? 1 : 0;
        if (order == 0) { *found = 1; return middle; }
        if (order < 0) low = middle + 1; else high = middle;
    }
    return low;
}

/* The object under `key`, with a reference the caller releases; NULL if none. */
static object *find(store *s, ns_str key) {
    pthread_mutex_lock(&s->lock);
    int found;
    size_t at = position(s, key, &found);
    object *o = found ? s->objects[at] : NULL;
    if (o) o->refs++;
    pthread_mutex_unlock(&s->lock);
    return o;
}

/* ---- uploads ----------------------------------------------------------- */

static void put_open(void *instance, ns_str key, const ns_object_info *info, ns_storage_call *call) {
    store *s = instance;
    upload *u = calloc(1, sizeof *u);
    if (u) u->key = malloc((size_t)key.len + 1);
    if (!u || !u->key) {
        free(u);
        s->api->storage_complete(call, NS_ERR_INTERNAL, str("out of memory"), NULL);
        return;
    }
    memcpy(u->key, key.ptr, (size_t)key.len);
    u->key[key.len] = '\0';
    copy_str(u->content_type, sizeof u->content_type, info->content_type);
    s->api->storage_set_handle(call, u);
    s->api->storage_complete(call, NS_OK, str(""), NULL);
}

static void put_write(void *instance, void *handle, ns_bytes chunk, ns_storage_call *call) {
    store *s = instance;
    upload *u = handle;
    if (u->size + chunk.len > u->capacity) {
        uint64_t capacity = u->capacity ? u->capacity : 65536;
        while (capacity < u->size + chunk.len) capacity *= 2;
        uint8_t *grown = realloc(u->bytes, (size_t)capacity);
        if (!grown) { s->api->storage_complete(call, NS_ERR_TOO_LARGE, str("out of memory"), NULL); return; }
        u->bytes = grown;
        u->capacity = capacity;
    }
    if (chunk.len) memcpy(u->bytes + u->size, chunk.ptr, (size_t)chunk.len);
    u->size += chunk.len;
    s->api->storage_complete(call, NS_OK, str(""), NULL);
}

static void put_abort(void *instance, void *handle) {
    (void)instance;
    upload *u = handle;
    free(u->key);
    free(u->bytes);
    free(u);
}

/* Makes the upload visible under its key, replacing what was there. */
static void finish(store *s, upload *u, const char *sha256, ns_storage_call *call) {
    object *o = calloc(1, sizeof *o);
    if (!o) { put_abort(s, u); s->api->storage_complete(call, NS_ERR_INTERNAL, str("out of memory"), NULL); return; }
    o->refs = 1;
    o->key = u->key;
    o->bytes = u->bytes;
    o->size = u->size;
    o->modified_ms = now_ms();
    memcpy(o->content_type, u->content_type, sizeof o->content_type);
    copy_str(o->sha256, sizeof o->sha256, str(sha256));
#ifdef LIE_ABOUT_SHA256
    o->sha256[0] = o->sha256[0] == '0' ? '1' : '0'; /* for the host's integrity test only */
#endif
    free(u);

    object *replaced = NULL;
    pthread_mutex_lock(&s->lock);
    int found;
    size_t at = position(s, str(o->key), &found);
    if (!found && s->count == s->max_objects) {
        pthread_mutex_unlock(&s->lock);
        release(s, o);
        s->api->storage_complete(call, NS_ERR_TOO_LARGE, str("max_objects reached"), NULL);
        return;
    }
    if (found) {
        replaced = s->objects[at];
        s->objects[at] = o;
    } else {
        if (s->count == s->capacity) {
            size_t capacity = s->capacity ? s->capacity * 2 : 64;
            object **grown = realloc(s->objects, capacity * sizeof *grown);
            if (!grown) {
                pthread_mutex_unlock(&s->lock);
                release(s, o);
                s->api->storage_complete(call, NS_ERR_INTERNAL, str("out of memory"), NULL);
                return;
            }
            s->objects = grown;
            s->capacity = capacity;
        }
        memmove(s->objects + at + 1, s->objects + at, (s->count - at) * sizeof *s->objects);
        s->objects[at] = o;
        s->count++;
    }
    o->refs++; /* held while the completion reads it */
    pthread_mutex_unlock(&s->lock);
    if (replaced) release(s, replaced);
    ns_object_info info = info_of(o);
    s->api->storage_complete(call, NS_OK, str(""), &info);
    release(s, o);
}

/* A 1.3 host (or one that knows no better) calls this: no digest is known. */
static void put_finish(void *instance, void *handle, ns_storage_call *call) {
    finish(instance, handle, "", call);
}

/* ABI 1.4: the host says what it sent; keep its digest with the object. */
static void put_finish_checked(void *instance, void *handle, const ns_object_info *sent, ns_storage_call *call) {
    store *s = instance;
    upload *u = handle;
    char sha256[65];
    copy_str(sha256, sizeof sha256, sent->sha256_hex);
    if (sent->size != u->size) {
        put_abort(s, u);
        s->api->storage_complete(call, NS_ERR_CHECKSUM_MISMATCH, str("the upload's size differs from what the host sent"), NULL);
        return;
    }
    finish(s, u, sha256, call);
}

/* ---- reads ------------------------------------------------------------- */

static void get_open(void *instance, ns_str key, uint64_t offset, uint64_t length, ns_storage_call *call) {
    store *s = instance;
    reader *r = calloc(1, sizeof *r);
    if (!r) { s->api->storage_complete(call, NS_ERR_INTERNAL, str("out of memory"), NULL); return; }
    object *o = find(s, key);
    if (!o) { free(r); s->api->storage_complete(call, NS_ERR_NOT_FOUND, str("no such object"), NULL); return; }
    if (offset > o->size || (offset == o->size && o->size > 0)) {
        free(r);
        release(s, o);
        s->api->storage_complete(call, NS_ERR_RANGE_NOT_SATISFIABLE, str("offset past the end"), NULL);
        return;
    }
    r->object = o;
    r->next = offset;
    r->end = length == NS_SIZE_UNKNOWN || length > o->size - offset ? o->size : offset + length;
    ns_object_info info = info_of(o);
    s->api->storage_set_handle(call, r);
    s->api->storage_complete(call, NS_OK, str(""), &info);
}

static void get_read(void *instance, void *handle, uint64_t max_bytes, ns_storage_call *call) {
    store *s = instance;
    reader *r = handle;
    uint64_t n = r->end - r->next < max_bytes ? r->end - r->next : max_bytes;
    ns_bytes bytes = {r->object->bytes + r->next, n};
    if (n) s->api->storage_deliver(call, bytes);
    r->next += n;
    s->api->storage_complete(call, NS_OK, str(""), NULL);
}

static void get_close(void *instance, void *handle) {
    reader *r = handle;
    release(instance, r->object);
    free(r);
}

/* ---- metadata ---------------------------------------------------------- */

static void head(void *instance, ns_str key, ns_storage_call *call) {
    store *s = instance;
    object *o = find(s, key);
    if (!o) { s->api->storage_complete(call, NS_ERR_NOT_FOUND, str("no such object"), NULL); return; }
    ns_object_info info = info_of(o);
    s->api->storage_complete(call, NS_OK, str(""), &info);
    release(s, o);
}

/* Keys after `page_token` (the last key of the previous page) that start
 * with `prefix`, at most `limit` (the host passes 1 to 1000). */
static void list(void *instance, ns_str prefix, ns_str page_token, uint32_t limit, ns_storage_call *call) {
    store *s = instance;
    pthread_mutex_lock(&s->lock);
    int found;
    size_t at = position(s, page_token.len ? page_token : prefix, &found);
    if (found && page_token.len) at++;
    uint32_t listed = 0;
    const char *last = NULL;
    for (; at < s->count && listed < limit; at++) {
        object *o = s->objects[at];
        if (strncmp(o->key, prefix.ptr ? prefix.ptr : "", (size_t)prefix.len) != 0) break;
        ns_object_info info = info_of(o);
        s->api->storage_list_entry(call, str(o->key), &info);
        last = o->key;
        listed++;
    }
    int more = at < s->count && strncmp(s->objects[at]->key, prefix.ptr ? prefix.ptr : "", (size_t)prefix.len) == 0;
    if (more && last) s->api->storage_list_next(call, str(last));
    pthread_mutex_unlock(&s->lock);
    s->api->storage_complete(call, NS_OK, str(""), NULL);
}

static void remove_object(void *instance, ns_str key, ns_storage_call *call) {
    store *s = instance;
    pthread_mutex_lock(&s->lock);
    int found;
    size_t at = position(s, key, &found);
    object *o = found ? s->objects[at] : NULL;
    if (o) {
        memmove(s->objects + at, s->objects + at + 1, (s->count - at - 1) * sizeof *s->objects);
        s->count--;
    }
    pthread_mutex_unlock(&s->lock);
    if (o) release(s, o);
    s->api->storage_complete(call, o ? NS_OK : NS_ERR_NOT_FOUND, str(o ? "" : "no such object"), NULL);
}

/* ---- lifecycle --------------------------------------------------------- */

static ns_status init(const ns_host_api *api, ns_host *host, ns_str config, void **out, ns_error *error) {
    (void)config;
    ns_str name;
    for (uint64_t i = 0; api->config_key(host, str(""), i, &name) == NS_OK; i++) {
        if (name.len != 11 || memcmp(name.ptr, "max_objects", 11) != 0) {
            api->error_set(error, str("unknown key (known: max_objects)"));
            return NS_ERR_CONFIG;
        }
    }
    store *s = calloc(1, sizeof *s);
    if (!s) return NS_ERR_INTERNAL;
    s->api = api;
    s->host = host;
    s->max_objects = 10000;
    int32_t type;
    ns_str value;
    if (api->config_get(host, str("/max_objects"), &type, &value) == NS_OK) {
        char digits[16] = {0};
        if (type != NS_JSON_NUMBER || value.len >= sizeof digits) { free(s); api->error_set(error, str("max_objects: a number")); return NS_ERR_CONFIG; }
        memcpy(digits, value.ptr, (size_t)value.len);
        s->max_objects = (size_t)strtoul(digits, NULL, 10);
        if (s->max_objects == 0) { free(s); api->error_set(error, str("max_objects: at least 1")); return NS_ERR_CONFIG; }
    }
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return NS_OK;
}

static void destroy(void *instance) {
    store *s = instance;
    for (size_t i = 0; i < s->count; i++) release(s, s->objects[i]);
    free(s->objects);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static const ns_storage_vtable vtable = {
    .struct_size = sizeof(ns_storage_vtable),
    .minor = NS_STORAGE_VTABLE_MINOR,
    .put_open = put_open,
    .put_write = put_write,
    .put_finish = put_finish,
    .put_abort = put_abort,
    .get_open = get_open,
    .get_read = get_read,
    .get_close = get_close,
    .head = head,
    .list = list,
    .remove = remove_object,
#ifndef WITHOUT_CHECKED_FINISH
    .put_finish_checked = put_finish_checked, /* ABI 1.4 */
#endif
};

static const ns_plugin_info info = {
    .struct_size = sizeof(ns_plugin_info),
    .abi_major = NS_ABI_MAJOR,
    .abi_minor = NS_ABI_MINOR,
    .kind = NS_KIND_STORAGE,
    .name = {PLUGIN_NAME, sizeof PLUGIN_NAME - 1},
    .version = {"1.0.0", 5},
    .description = {"objects in memory, for tests and demos", 38},
    .init = init,
    .destroy = destroy,
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
