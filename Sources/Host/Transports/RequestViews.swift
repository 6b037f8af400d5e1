import Foundation
import NIOConcurrencyHelpers
import NorthstarPluginKit
import PluginAPI

/// The request helpers of ABI 1.4 (`request_header`, `request_query`,
/// `request_credential`): what every transport used to parse itself.
///
/// They answer only for a request whose `on_request` is running, and only
/// on the thread running it: the host registers the request's view for
/// that call, with the arena that holds the decoded strings the helpers
/// hand out, and forgets it after. A stale request pointer kept past
/// `on_request` (whose address a later request on another thread may
/// reuse) is refused, never read as another request.
enum RequestViews {
    private struct Open {
        let arena: StringArena
        let thread: pthread_t
    }

    private static let open = NIOLockedValueBox([UInt: Open]())

    /// Runs `body` (the plugin's `on_request`) with `request` open to the helpers.
    static func whileOpen(_ request: UnsafePointer<ns_http_request>, arena: StringArena, _ body: () -> Void) {
        let key = UInt(bitPattern: request)
        open.withLockedValue { $0[key] = Open(arena: arena, thread: pthread_self()) }
        defer { _ = open.withLockedValue { $0.removeValue(forKey: key) } }
        body()
    }

    /// The request's registration, when it is open on this thread.
    private static func current(_ state: [UInt: Open], _ request: UnsafePointer<ns_http_request>) -> Open? {
        guard let entry = state[UInt(bitPattern: request)], pthread_equal(entry.thread, pthread_self()) != 0 else { return nil }
        return entry
    }

    private static func isOpen(_ request: UnsafePointer<ns_http_request>) -> Bool {
        open.withLockedValue { current($0, request) != nil }
    }

    /// A view of a copy of `text` in the request's arena, valid until its `on_request` returns.
    private static func keep(_ text: String, for request: UnsafePointer<ns_http_request>) -> ns_str? {
        open.withLockedValue { current($0, request)?.arena.view(text) }
    }

    static func install(into table: inout ns_host_api) {
        table.request_header = { request, name, out in
            guard let request, let out, RequestViews.isOpen(request) else { return ns_status(NS_ERR_INVALID_ARGUMENT) }
            guard let value = RequestViews.header(name.string, in: request.pointee) else { return ns_status(NS_ERR_NOT_FOUND) }
            out.pointee = value
            return ns_status(NS_OK)
        }
        table.request_query = { request, name, out in
            guard let request, let out, RequestViews.isOpen(request) else { return ns_status(NS_ERR_INVALID_ARGUMENT) }
            switch RequestViews.query(name.string, in: request.pointee.query.string) {
            case .absent: return ns_status(NS_ERR_NOT_FOUND)
            case .malformed: return ns_status(NS_ERR_INVALID_ARGUMENT)
            case .value(let value):
                guard let view = RequestViews.keep(value, for: request) else { return ns_status(NS_ERR_INVALID_ARGUMENT) }
                out.pointee = view
                return ns_status(NS_OK)
            }
        }
        table.request_credential = { request, flags, out in
            guard let request, let out, RequestViews.isOpen(request),
                  out.pointee.struct_size >= UInt32(NS_CREDENTIAL_MIN_SIZE) else { return ns_status(NS_ERR_INVALID_ARGUMENT) }
            if let authorization = RequestViews.header("authorization", in: request.pointee) {
                // The same reading as the REST routes': "<scheme> <value>".
                guard let parsed = Credential(authorization: authorization.string),
                      let scheme = RequestViews.keep(parsed.scheme, for: request),
                      let value = RequestViews.keep(parsed.value, for: request) else {
                    return ns_status(NS_ERR_INVALID_ARGUMENT)
                }
                out.pointee.source = ns_credential_source(NS_CREDENTIAL_HEADER)
                out.pointee.scheme = scheme
                out.pointee.value = value
                return ns_status(NS_OK)
            }
            guard flags & UInt32(NS_REQUEST_CREDENTIAL_QUERY) != 0,
                  case .value(let token) = RequestViews.query("access_token", in: request.pointee.query.string), !token.isEmpty else {
                return ns_status(NS_ERR_NOT_FOUND)
            }
            guard let scheme = RequestViews.keep("Bearer", for: request), let value = RequestViews.keep(token, for: request) else {
                return ns_status(NS_ERR_INVALID_ARGUMENT)
            }
            out.pointee.source = ns_credential_source(NS_CREDENTIAL_QUERY)
            out.pointee.scheme = scheme
            out.pointee.value = value
            return ns_status(NS_OK)
        }
    }

    /// The first header named `name` (any case), as a view into the request.
    static func header(_ name: String, in request: ns_http_request) -> ns_str? {
        let wanted = name.lowercased()
        for index in 0..<Int(request.header_count) {
            guard let header = request.headers?[index] else { continue }
            if header.name.string.lowercased() == wanted { return header.value }
        }
        return nil
    }

    enum QueryValue: Equatable { case absent, malformed, value(String) }

    /// The first parameter `name` of a raw query string, decoded.
    static func query(_ name: String, in query: String) -> QueryValue {
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard decode(parts[0]) == name else { continue }
            guard let value = decode(parts.count > 1 ? parts[1] : "") else { return .malformed }
            return .value(value)
        }
        return .absent
    }

    /// Form decoding: `+` is a space, then percent escapes; nil when broken.
    private static func decode(_ text: Substring) -> String? {
        String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}
