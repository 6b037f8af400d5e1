import Hummingbird
import NIOCore

/// The request context of every route: Hummingbird's basic one, plus the
/// connection the request came on, to which a streaming transport's
/// answer is written directly.
public struct NorthstarRequestContext: Hummingbird.RequestContext {
    public typealias Source = ApplicationRequestContextSource

    public var coreContext: CoreRequestContextStorage
    /// The connection: a streaming answer's bytes go to it past the HTTP encoder.
    public let channel: any Channel

    public init(source: Source) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
