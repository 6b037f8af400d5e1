import Dispatch
import PluginAPI

/// An HTTP answer from the host's client.
public struct FetchedResponse: Sendable {
    public let status: Int
    public let headers: [(name: String, value: String)]
    public let body: [UInt8]

    /// The first header of that name (case-insensitive).
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }
}

/// One outbound request, as `http_fetch` takes it.
public struct FetchRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    public var timeoutMilliseconds: UInt32
    public var maxResponseBytes: UInt64

    public init(method: String = "GET", url: String, headers: [(name: String, value: String)] = [], body: [UInt8] = [],
                timeoutMilliseconds: UInt32 = 0, maxResponseBytes: UInt64 = 0) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeoutMilliseconds = timeoutMilliseconds
        self.maxResponseBytes = maxResponseBytes
    }
}

/// The completion's context: where the answer goes.
private final class FetchCompletion: @unchecked Sendable {
    let deliver: @Sendable (Result<FetchedResponse, PluginFailure>) -> Void
    init(_ deliver: @escaping @Sendable (Result<FetchedResponse, PluginFailure>) -> Void) { self.deliver = deliver }
}

extension HostLink {
    /// Whether the host lends `http_fetch` (ABI 1.1 and later).
    public var canFetch: Bool {
        api.pointee.struct_size >= UInt32(NS_HOST_API_SIZE_1_1) && api.pointee.http_fetch != nil
    }

    /// Sends `request` through the host's HTTP client; `deliver` runs once,
    /// on any thread, with the answer (whatever its status) or the failure.
    public func send(_ request: FetchRequest, deliver: @escaping @Sendable (Result<FetchedResponse, PluginFailure>) -> Void) {
        guard canFetch, let fetch = api.pointee.http_fetch else {
            return deliver(.failure(PluginFailure(status: Int32(NS_ERR_UNSUPPORTED), message: "this host has no http_fetch (it needs ABI 1.1)")))
        }
        let context = Unmanaged.passRetained(FetchCompletion(deliver)).toOpaque()
        var pairs: [(name: [UInt8], value: [UInt8])] = request.headers.map { (Array($0.name.utf8), Array($0.value.utf8)) }
        let accepted = withNSStr(request.method) { method in
            withNSStr(request.url) { url in
                withHeaderViews(&pairs) { headers in
                    withNSBytes(request.body) { body in
                        var view = ns_http_fetch(struct_size: UInt32(MemoryLayout<ns_http_fetch>.size), method: method, url: url,
                                                 headers: headers.baseAddress, header_count: UInt32(headers.count), body: body,
                                                 timeout_ms: request.timeoutMilliseconds, max_response_bytes: request.maxResponseBytes)
                        return fetch(host, &view, { context, status, httpStatus, headers, count, body, message in
                            let completion = Unmanaged<FetchCompletion>.fromOpaque(context!).takeRetainedValue()
                            guard status == NS_OK else {
                                return completion.deliver(.failure(PluginFailure(status: status, message: message.string)))
                            }
                            let pairs = (0..<Int(count)).compactMap { index in headers.map { ($0[index].name.string, $0[index].value.string) } }
                            completion.deliver(.success(FetchedResponse(status: Int(httpStatus), headers: pairs, body: body.array)))
                        }, context)
                    }
                }
            }
        }
        if accepted != NS_OK {
            Unmanaged<FetchCompletion>.fromOpaque(context).release()
            deliver(.failure(PluginFailure(status: accepted, message: "the host refused the request")))
        }
    }

    /// `send`, awaited. Never blocks a thread.
    public func fetch(_ request: FetchRequest) async throws -> FetchedResponse {
        try await withCheckedThrowingContinuation { continuation in
            send(request) { continuation.resume(with: $0) }
        }
    }

    /// GETs `url` and waits for the answer, blocking the calling thread.
    /// Call it only where the ABI allows blocking (`init`, auth `verify`).
    public func fetch(_ url: String, timeoutMilliseconds: UInt32, maxBytes: UInt64) throws -> FetchedResponse {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var outcome: Result<FetchedResponse, PluginFailure>?
        send(FetchRequest(url: url, timeoutMilliseconds: timeoutMilliseconds, maxResponseBytes: maxBytes)) { result in
            outcome = result
            done.signal()
        }
        done.wait()
        return try outcome!.get()
    }
}

/// Lends header pairs to C as `ns_header` views for the duration of `body`:
/// every name and value is copied into one buffer the views point into.
private func withHeaderViews<Result>(_ pairs: inout [(name: [UInt8], value: [UInt8])],
                                     _ body: (UnsafeBufferPointer<ns_header>) -> Result) -> Result {
    var blob: [UInt8] = []
    var spans: [(Int, Int, Int, Int)] = []
    for pair in pairs {
        let nameStart = blob.count
        blob += pair.name
        let valueStart = blob.count
        blob += pair.value
        spans.append((nameStart, pair.name.count, valueStart, pair.value.count))
    }
    return blob.withUnsafeBufferPointer { raw in
        let base = UnsafeRawPointer(raw.baseAddress)?.assumingMemoryBound(to: CChar.self)
        let views = spans.map { span in
            ns_header(name: ns_str(ptr: base.map { $0 + span.0 }, len: UInt64(span.1)),
                      value: ns_str(ptr: base.map { $0 + span.2 }, len: UInt64(span.3)))
        }
        return views.withUnsafeBufferPointer(body)
    }
}
