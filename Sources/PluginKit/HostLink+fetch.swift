import Dispatch
import PluginAPI

/// An HTTP answer from the host's client.
public struct FetchedResponse: Sendable {
    public let status: Int
    public let body: [UInt8]
}

/// Where the completion leaves the answer for the waiting thread.
private final class FetchWait: @unchecked Sendable {
    let done = DispatchSemaphore(value: 0)
    var result: Result<FetchedResponse, PluginFailure>?
}

extension HostLink {
    /// Whether the host lends `http_fetch` (ABI 1.1 and later).
    public var canFetch: Bool {
        api.pointee.struct_size >= UInt32(NS_HOST_API_SIZE_1_1) && api.pointee.http_fetch != nil
    }

    /// GETs `url` through the host's HTTP client and waits for the answer.
    /// Call it only where the ABI allows blocking (`init`, auth `verify`).
    /// - Throws: `PluginFailure` with the host's status and message.
    public func fetch(_ url: String, timeoutMilliseconds: UInt32, maxBytes: UInt64) throws -> FetchedResponse {
        guard canFetch, let fetch = api.pointee.http_fetch else {
            throw PluginFailure(status: Int32(NS_ERR_UNSUPPORTED), message: "this host has no http_fetch (it needs ABI 1.1)")
        }
        let wait = FetchWait()
        let context = Unmanaged.passRetained(wait).toOpaque()
        let accepted = withNSStr("GET") { method in
            withNSStr(url) { target in
                var request = ns_http_fetch(struct_size: UInt32(MemoryLayout<ns_http_fetch>.size), method: method, url: target,
                                            headers: nil, header_count: 0, body: ns_bytes(ptr: nil, len: 0),
                                            timeout_ms: timeoutMilliseconds, max_response_bytes: maxBytes)
                return fetch(host, &request, { context, status, httpStatus, _, _, body, message in
                    let wait = Unmanaged<FetchWait>.fromOpaque(context!).takeRetainedValue()
                    wait.result = status == NS_OK ? .success(FetchedResponse(status: Int(httpStatus), body: body.array))
                        : .failure(PluginFailure(status: status, message: message.string))
                    wait.done.signal()
                }, context)
            }
        }
        guard accepted == NS_OK else {
            Unmanaged<FetchWait>.fromOpaque(context).release()
            throw PluginFailure(status: accepted, message: "the host refused the request to \(url)")
        }
        wait.done.wait()
        return try wait.result!.get()
    }
}
