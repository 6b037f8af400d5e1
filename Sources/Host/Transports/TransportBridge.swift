import Foundation
import Hummingbird
import HTTPTypes
import NIOCore
import PluginAPI

/// Serves a transport plugin's route: hands the request to the plugin,
/// waits for its answer, and streams what it writes to the client.
struct TransportBridge: Sendable {
    let plugin: PluginInstance
    let route: TransportRoute
    /// Bytes a connection may have queued before writes are refused.
    let queueLimit: Int
    /// How long a plugin may take to start its answer.
    let answerTimeout: Duration = .seconds(30)

    func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
        let exchange = Exchange(plugin: plugin, queueLimit: queueLimit)
        hand(request, parameters: route.parameterNames.map { context.parameters.get($0) ?? "" }, to: exchange)

        let head = await withTaskGroup(of: Exchange.Head?.self) { group in
            group.addTask { await exchange.waitForHead() }
            group.addTask { [answerTimeout] in
                try? await Task.sleep(for: answerTimeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard let head else {
            exchange.clientGone()
            throw APIError(.gatewayTimeout, code: "transport_no_answer", message: "the \(plugin.name) transport did not answer")
        }
        var fields = HTTPFields()
        for (name, value) in head.headers {
            if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
        }
        return Response(status: .init(code: head.status), headers: fields, body: ResponseBody { writer in
            do {
                while let chunk = await withTaskCancellationHandler(operation: { await exchange.nextChunk() },
                                                                    onCancel: { exchange.clientGone() }) {
                    try await writer.write(chunk)
                }
                try await writer.finish(nil)
            } catch {
                exchange.clientGone()
                throw error
            }
            exchange.clientGone()  // a no-op once the plugin has ended the response
        })
    }

    /// Calls the plugin's `on_request` with views of the request.
    private func hand(_ request: Request, parameters: [String], to exchange: Exchange) {
        let arena = StringArena()
        let headers = request.headers.map { ns_header(name: arena.view($0.name.rawName), value: arena.view($0.value)) }
        let params = parameters.map(arena.view)
        let path = arena.view(request.uri.path)
        let query = arena.view(request.uri.query ?? "")
        let method = arena.view(request.method.rawValue)
        let requestID = arena.view(TraceContext.requestID(from: request.headers[.init("x-request-id")!]))
        let pointer = exchange.retainForPlugin()
        headers.withUnsafeBufferPointer { headerViews in
            params.withUnsafeBufferPointer { paramViews in
                var view = ns_http_request(
                    struct_size: UInt32(MemoryLayout<ns_http_request>.size), route_id: route.routeID, method: method,
                    path: path, query: query, headers: headerViews.baseAddress, header_count: UInt32(headerViews.count),
                    params: paramViews.baseAddress, param_count: UInt32(paramViews.count), request_id: requestID)
                withExtendedLifetime(arena) { plugin.onRequest(&view, exchange: pointer) }
            }
        }
    }
}
