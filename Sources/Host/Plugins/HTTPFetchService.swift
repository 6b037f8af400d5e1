import AsyncHTTPClient
import Foundation
import NIOCore
import NorthstarPluginKit
import PluginAPI
import Tracing

/// `ns_host_api.http_fetch` (ABI 1.1): the host's HTTP(S) client, lent to
/// plugins so that none of them needs a network stack of its own.
enum HTTPFetchService {
    static let defaultTimeout: TimeAmount = .seconds(10)
    static let defaultMaxResponse = 16 << 20

    /// A plugin's completion and context, carried to the task that answers.
    private struct Completion: @unchecked Sendable {
        let done: ns_http_done
        let context: UnsafeMutableRawPointer?

        func callAsFunction(_ status: ns_status, _ httpStatus: Int32, _ headers: [(String, String)], _ body: [UInt8], _ message: String) {
            let arena = StringArena()
            let views = headers.map { ns_header(name: arena.view($0.0), value: arena.view($0.1)) }
            withNSBytes(body) { bodyView in
                withNSStr(message) { messageView in
                    views.withUnsafeBufferPointer { headerViews in
                        withExtendedLifetime(arena) {
                            done(context, status, httpStatus, headerViews.baseAddress, UInt32(headerViews.count), bodyView, messageView)
                        }
                    }
                }
            }
        }
    }

    static func install(into table: inout ns_host_api) {
        table.http_fetch = { _, request, done, context in startFetch(request, done, context) }
    }

    /// Copies the request, starts it, and answers through `done` later.
    fileprivate static func start(_ request: UnsafePointer<ns_http_fetch>?, _ done: ns_http_done?,
                                  _ context: UnsafeMutableRawPointer?) -> ns_status {
        // Read at the plugin's own size: fields appended later are absent (zero) for an older plugin.
        guard let request, let done, let fields = PluginStruct.copy(request, minimumSize: Int(NS_HTTP_FETCH_MIN_SIZE)) else {
            return ns_status(NS_ERR_INVALID_ARGUMENT)
        }
        let url = fields.url.string
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else { return ns_status(NS_ERR_INVALID_ARGUMENT) }
        var outbound = HTTPClientRequest(url: url)
        outbound.method = .init(rawValue: fields.method.len == 0 ? "GET" : fields.method.string)
        for index in 0..<Int(fields.header_count) {
            guard let header = fields.headers?[index] else { continue }
            outbound.headers.add(name: header.name.string, value: header.value.string)
        }
        if fields.body.len > 0 { outbound.body = .bytes(ByteBuffer(bytes: fields.body.array)) }
        // Inside a traced request: a client span, whose trace goes out unless the plugin set its own.
        let span = Traced.outboundSpan(method: outbound.method.rawValue, host: URL(string: url)?.host ?? "")
        if let span, !outbound.headers.contains(name: "traceparent") {
            outbound.headers.add(name: "traceparent", value: span.identity.traceparent)
        }
        let timeout = fields.timeout_ms == 0 ? defaultTimeout : .milliseconds(Int64(fields.timeout_ms))
        let limit = fields.max_response_bytes == 0 ? defaultMaxResponse : Int(min(fields.max_response_bytes, UInt64(Int.max)))
        let completion = Completion(done: done, context: context)
        let send = outbound
        Task {
            defer { span?.end() }
            do {
                let response = try await HTTPClient.shared.execute(send, timeout: timeout)
                span?.attributes["http.response.status_code"] = Int64(response.status.code)
                let body = try await response.body.collect(upTo: limit)
                completion(ns_status(NS_OK), Int32(response.status.code), response.headers.map { ($0.name, $0.value) },
                           Array(buffer: body), "")
            } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
                span?.setStatus(SpanStatus(code: .error, message: "timeout"))
                completion(ns_status(NS_ERR_TIMEOUT), 0, [], [], "timed out after \(timeout.nanoseconds / 1_000_000) ms")
            } catch is NIOTooManyBytesError {
                span?.setStatus(SpanStatus(code: .error, message: "too_large"))
                completion(ns_status(NS_ERR_TOO_LARGE), 0, [], [], "the answer is over \(limit) bytes")
            } catch {
                span?.setStatus(SpanStatus(code: .error, message: "unavailable"))
                completion(ns_status(NS_ERR_UNAVAILABLE), 0, [], [], "\(error)")
            }
        }
        return ns_status(NS_OK)
    }
}

/// A C function pointer cannot capture context: the table entry calls this.
private func startFetch(_ request: UnsafePointer<ns_http_fetch>?, _ done: ns_http_done?,
                        _ context: UnsafeMutableRawPointer?) -> ns_status {
    HTTPFetchService.start(request, done, context)
}
