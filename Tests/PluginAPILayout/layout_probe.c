/*
 * The layout probe: sizeof and offsetof of every field the ABI has, as this
 * compiler sees them. The test compares them with abi-layout.json; a field
 * added to the header without an entry here still changes its struct's size.
 *
 * Fields of later minors are guarded by NS_ABI_MINOR, so the same probe,
 * compiled against a saved older header, reports that header's layout.
 */
#include "layout_probe.h"
#include "northstar_plugin.h"

#define STRUCT(type) {#type, "", 0, sizeof(type)}
#define FIELD(type, field) {#type, #field, offsetof(type, field), sizeof(((type *)0)->field)}

static const ns_layout_entry entries[] = {
    STRUCT(ns_str),
    FIELD(ns_str, ptr),
    FIELD(ns_str, len),
    STRUCT(ns_bytes),
    FIELD(ns_bytes, ptr),
    FIELD(ns_bytes, len),
    STRUCT(ns_header),
    FIELD(ns_header, name),
    FIELD(ns_header, value),
    STRUCT(ns_claim),
    FIELD(ns_claim, name),
    FIELD(ns_claim, value),
    STRUCT(ns_credential),
    FIELD(ns_credential, struct_size),
    FIELD(ns_credential, source),
    FIELD(ns_credential, scheme),
    FIELD(ns_credential, value),
    STRUCT(ns_auth_vtable),
    FIELD(ns_auth_vtable, struct_size),
    FIELD(ns_auth_vtable, minor),
    FIELD(ns_auth_vtable, verify),
    FIELD(ns_auth_vtable, mint),
    STRUCT(ns_object_info),
    FIELD(ns_object_info, struct_size),
    FIELD(ns_object_info, size),
    FIELD(ns_object_info, modified_unix_ms),
    FIELD(ns_object_info, content_type),
    FIELD(ns_object_info, etag),
    FIELD(ns_object_info, sha256_hex),
    STRUCT(ns_storage_vtable),
    FIELD(ns_storage_vtable, struct_size),
    FIELD(ns_storage_vtable, minor),
    FIELD(ns_storage_vtable, put_open),
    FIELD(ns_storage_vtable, put_write),
    FIELD(ns_storage_vtable, put_finish),
    FIELD(ns_storage_vtable, put_abort),
    FIELD(ns_storage_vtable, get_open),
    FIELD(ns_storage_vtable, get_read),
    FIELD(ns_storage_vtable, get_close),
    FIELD(ns_storage_vtable, head),
    FIELD(ns_storage_vtable, list),
    FIELD(ns_storage_vtable, remove),
    FIELD(ns_storage_vtable, cancel),
#if NS_ABI_MINOR >= 4
    FIELD(ns_storage_vtable, put_finish_checked),
#endif
    STRUCT(ns_http_request),
    FIELD(ns_http_request, struct_size),
    FIELD(ns_http_request, route_id),
    FIELD(ns_http_request, method),
    FIELD(ns_http_request, path),
    FIELD(ns_http_request, query),
    FIELD(ns_http_request, headers),
    FIELD(ns_http_request, header_count),
    FIELD(ns_http_request, params),
    FIELD(ns_http_request, param_count),
    FIELD(ns_http_request, request_id),
    STRUCT(ns_subscriber),
    FIELD(ns_subscriber, struct_size),
    FIELD(ns_subscriber, context),
    FIELD(ns_subscriber, on_event),
    FIELD(ns_subscriber, on_gap),
    FIELD(ns_subscriber, on_end),
#if NS_ABI_MINOR >= 2
    FIELD(ns_subscriber, on_refused),
#endif
#if NS_ABI_MINOR >= 3
    FIELD(ns_subscriber, exchange),
    FIELD(ns_subscriber, websocket),
#endif
#if NS_ABI_MINOR >= 4
    FIELD(ns_subscriber, on_live),
#endif
    STRUCT(ns_transport_vtable),
    FIELD(ns_transport_vtable, struct_size),
    FIELD(ns_transport_vtable, minor),
    FIELD(ns_transport_vtable, on_request),
    FIELD(ns_transport_vtable, on_exchange_closed),
    FIELD(ns_transport_vtable, on_ws_message),
    FIELD(ns_transport_vtable, on_ws_closed),
#if NS_ABI_MINOR >= 3
    FIELD(ns_transport_vtable, frame_event),
#endif
    STRUCT(ns_host_api),
    FIELD(ns_host_api, struct_size),
    FIELD(ns_host_api, abi_minor),
    FIELD(ns_host_api, log),
    FIELD(ns_host_api, error_set),
    FIELD(ns_host_api, alloc),
    FIELD(ns_host_api, free),
    FIELD(ns_host_api, buffer_append),
    FIELD(ns_host_api, config_get),
    FIELD(ns_host_api, config_key),
    FIELD(ns_host_api, claim_set),
    FIELD(ns_host_api, storage_set_handle),
    FIELD(ns_host_api, storage_deliver),
    FIELD(ns_host_api, storage_list_entry),
    FIELD(ns_host_api, storage_list_next),
    FIELD(ns_host_api, storage_complete),
    FIELD(ns_host_api, route_add),
    FIELD(ns_host_api, response_start),
    FIELD(ns_host_api, response_write),
    FIELD(ns_host_api, response_end),
    FIELD(ns_host_api, websocket_accept),
    FIELD(ns_host_api, websocket_send),
    FIELD(ns_host_api, websocket_close),
    FIELD(ns_host_api, authenticate),
    FIELD(ns_host_api, principal_release),
    FIELD(ns_host_api, subscribe),
    FIELD(ns_host_api, subscription_cancel),
    FIELD(ns_host_api, kernel_call),
#if NS_ABI_MINOR >= 1
    FIELD(ns_host_api, http_fetch),
    FIELD(ns_host_api, timer_start),
    FIELD(ns_host_api, timer_cancel),
#endif
#if NS_ABI_MINOR >= 2
    FIELD(ns_host_api, principal_renew),
#endif
#if NS_ABI_MINOR >= 3
    FIELD(ns_host_api, subscription_position),
#endif
#if NS_ABI_MINOR >= 4
    FIELD(ns_host_api, exchange_set_context),
    FIELD(ns_host_api, exchange_context),
    FIELD(ns_host_api, timer_once),
    FIELD(ns_host_api, request_header),
    FIELD(ns_host_api, request_query),
    FIELD(ns_host_api, request_credential),
    FIELD(ns_host_api, response_error),
#endif
#if NS_ABI_MINOR >= 1
    STRUCT(ns_http_fetch),
    FIELD(ns_http_fetch, struct_size),
    FIELD(ns_http_fetch, method),
    FIELD(ns_http_fetch, url),
    FIELD(ns_http_fetch, headers),
    FIELD(ns_http_fetch, header_count),
    FIELD(ns_http_fetch, body),
    FIELD(ns_http_fetch, timeout_ms),
    FIELD(ns_http_fetch, max_response_bytes),
#endif
    STRUCT(ns_host_offer),
    FIELD(ns_host_offer, struct_size),
    FIELD(ns_host_offer, abi_major),
    FIELD(ns_host_offer, abi_minor_min),
    FIELD(ns_host_offer, abi_minor_max),
    FIELD(ns_host_offer, api),
    STRUCT(ns_plugin_info),
    FIELD(ns_plugin_info, struct_size),
    FIELD(ns_plugin_info, abi_major),
    FIELD(ns_plugin_info, abi_minor),
    FIELD(ns_plugin_info, kind),
    FIELD(ns_plugin_info, name),
    FIELD(ns_plugin_info, version),
    FIELD(ns_plugin_info, description),
    FIELD(ns_plugin_info, init),
    FIELD(ns_plugin_info, start),
    FIELD(ns_plugin_info, stop),
    FIELD(ns_plugin_info, destroy),
    FIELD(ns_plugin_info, vtable),
};

size_t ns_layout_count(void) { return sizeof entries / sizeof *entries; }

ns_layout_entry ns_layout_at(size_t index) { return entries[index]; }
