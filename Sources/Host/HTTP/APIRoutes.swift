import Foundation
import Hummingbird

/// What every REST handler needs: identity from the Authorization header,
/// a JSON body read under the size limit, and query parameters checked.
struct APIRoutes: Sendable {
    let kernel: Kernel
    let maxBodyBytes: Int
    /// What all requests' bodies may hold at once.
    let bodies: BodyBudget

    /// The caller's context, from the Authorization header only.
    func identify(_ request: Request) async throws -> RequestContext {
        var credential: Credential?
        if let header = request.headers[.authorization] {
            guard let parsed = Credential(authorization: header) else {
                await kernel.auth.failures.afterFailure()
                throw KernelError.unauthenticated("the Authorization header must be \"<scheme> <credential>\"")
            }
            credential = parsed
        }
        let facts = RequestFacts.current ?? RequestFacts(headers: request.headers)
        let context = try await kernel.auth.authenticate(credential, requestID: facts.requestID, traceparent: facts.traceparent)
        facts.tenant = context.tenant.description
        // Every request counts against its user's and tenant's rate, whatever its answer, before a body is
        // read: a refused one costs no more than its head (and, held, a client asks a few times a second).
        let rates = [.get, .head].contains(request.method) ? kernel.readRates : kernel.writeRates
        try await rates.admitHolding(context)
        try await countInProgress(context)
        return context
    }

    /// Counts the request against its user's and tenant's requests in
    /// progress (`limits.max_requests_in_progress_per_user`, `..._per_tenant`)
    /// until its answer is on the wire or its connection closes. Past either,
    /// 429 a second later, as for a stream past its connection cap: a place
    /// comes back only when one of those requests ends.
    private func countInProgress(_ context: RequestContext) async throws {
        guard let ticket = ConnectionCount.Ticket.current else { return }  // not served by the listener
        let requests = kernel.userRequests
        guard let holder = requests.claim(context) else {
            return ticket.untilQuiet { requests.release(context) }
        }
        await ConnectionCount.holding { try? await Task.sleep(for: UserConnections.refusalHold) }
        let message = switch holder {
        case .user:
            "user \(context.userID) has \(requests.limit) requests in progress on this node already "
                + "(limits.max_requests_in_progress_per_user); send the next once one is answered"
        case .tenant:
            "tenant \(context.tenant) has \(requests.tenantLimit) requests in progress on this node already, all its users together "
                + "(limits.max_requests_in_progress_per_tenant); send the next once one is answered"
        }
        throw KernelError(.tooManyRequests, code: holder == .user ? "too_many_user_requests" : "too_many_tenant_requests",
                          message: message, details: ["limit": .string(holder.rawValue)])
    }

    /// The body as JSON, refused past the size limit before it is all read.
    func json(_ request: Request) async throws -> JSONValue {
        var request = request
        // A declared length over the limit is answered before a byte is read.
        // Unsigned: the budget's arithmetic must never see a negative length (the HTTP parser refuses one too).
        let declared = request.headers[.contentLength].flatMap { UInt($0) }.map { Int(clamping: $0) }
        if let declared, declared > maxBodyBytes {
            throw KernelError(.tooLarge, code: "body_too_large", message: "the body is over the \(maxBodyBytes)-byte limit")
        }
        // Room for what the body may become, taken before it is read and given back once it is parsed.
        let reserved = declared ?? maxBodyBytes
        guard bodies.reserve(reserved) else {
            throw KernelError(.unavailable, code: "server_busy",
                              message: "the node is reading as many request bodies as limits.max_body_bytes_in_flight allows; retry shortly")
        }
        defer { bodies.release(reserved) }
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: maxBodyBytes)
        } catch {
            throw KernelError(.tooLarge, code: "body_too_large", message: "the body is over the \(maxBodyBytes)-byte limit")
        }
        guard buffer.readableBytes > 0 else { throw KernelError.invalid("invalid_json", "the body is empty; send a JSON object") }
        do {
            // Read in place: no copy of the body into a `Data` first.
            return try buffer.withUnsafeReadableBytes { try JSONParser.parse($0) }
        } catch {
            throw KernelError.invalid("invalid_json", "the body is not valid JSON: \(error)")
        }
    }

    /// Runs a kernel operation (`KernelOperations`) for the caller, with the
    /// JSON body (`{}` when `optionalBody` and the request has none), and
    /// answers 201 for what it created, 200 otherwise.
    func run(_ operation: String, target: String, canvasID: String? = nil, optionalBody: Bool = false,
             request: Request) async throws -> Response {
        let context = try await identify(request)
        let body = optionalBody && Self.hasNoBody(request) ? JSONValue.object([:]) : try await json(request)
        let answer = try await KernelOperations.run(operation, .init(target: target, canvasID: canvasID, body: body),
                                                    kernel: kernel, context: context)
        return jsonResponse(answer.created ? .created : .ok, answer.body)
    }

    /// True when the request declares no body at all.
    static func hasNoBody(_ request: Request) -> Bool {
        request.headers[.contentLength] == "0" || (request.headers[.contentLength] == nil && request.headers[.transferEncoding] == nil)
    }

    /// A non-negative integer query parameter (`after=12`), or `defaultValue`.
    func unsigned(_ request: Request, _ name: String, default defaultValue: UInt64, max: UInt64 = .max) throws -> UInt64 {
        guard let text = request.uri.queryParameters[Substring(name)] else { return defaultValue }
        guard !text.isEmpty, text.allSatisfy(\.isASCII), text.allSatisfy(\.isNumber), let value = UInt64(text), value <= max else {
            let range = max == .max ? "a non-negative integer" : "an integer from 0 to \(max)"
            throw KernelError.invalid("invalid_\(name)", "\(name) must be \(range), got \"\(text.prefix(40))\"")
        }
        return value
    }
}

/// A JSON response from already-encoded bytes.
func jsonResponse(_ status: HTTPResponse.Status, _ body: Data) -> Response {
    Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: body)))
}

/// A JSON response from a value.
func jsonResponse(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
    jsonResponse(status, value.encoded())
}

extension Resource {
    /// The REST shape of a thread or canvas.
    func json(extra: [String: JSONValue] = [:]) -> JSONValue {
        var members: [String: JSONValue] = [
            "\(kind.rawValue)_id": .string(id), "stream": .string(stream.rawValue),
            "created_by": .string(createdBy), "created_at": .string(EventDraft.format(createdAt)),
            "metadata": metadata, "title": title.map(JSONValue.string) ?? .null,
        ]
        members.merge(extra) { _, new in new }
        return .object(members)
    }
}

extension EventPage {
    /// `{"events": [...], "head_seq", "first_seq", "next_after"}`, with each
    /// event's stored bytes copied as they are (no re-encoding).
    func json() -> Data {
        var body = Data(#"{"events":["#.utf8)
        for (index, event) in events.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body.append(event.json)
        }
        let next = events.last?.seq
        body.append(Data(#"],"first_seq":\#(firstSeq),"head_seq":\#(headSeq),"next_after":\#(next.map(String.init) ?? "null")}"#.utf8))
        return body
    }
}
