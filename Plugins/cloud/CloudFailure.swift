import NorthstarPluginKit
import PluginAPI

/// What a cloud answer means for the host: the status it maps to a stable
/// HTTP error (404, 416, 409, 503, 502), with the service's own words.
public enum CloudFailure {
    /// - Parameter aboutObject: whether a 404 means "no such object" (a read,
    ///   head or delete); for an upload or a list it means the bucket is
    ///   missing, which is the backend's failure, not the client's.
    public static func from(httpStatus: Int, service: String, what: String, detail: String, aboutObject: Bool = true) -> PluginFailure {
        let status: Int32 = switch httpStatus {
        case 404 where !aboutObject: Int32(NS_ERR_IO)
        case 404: Int32(NS_ERR_NOT_FOUND)
        case 412: Int32(NS_ERR_CONFLICT)
        case 416: Int32(NS_ERR_RANGE_NOT_SATISFIABLE)
        case 401, 403: Int32(NS_ERR_DENIED)
        case 408, 429, 500...599: Int32(NS_ERR_UNAVAILABLE)
        default: Int32(NS_ERR_IO)
        }
        return PluginFailure(status: status, message: "\(service) answered \(httpStatus) to \(what): \(detail.prefix(300))")
    }

    /// A config section the plugin refuses.
    public static func config(_ message: String) -> PluginFailure {
        PluginFailure(status: Int32(NS_ERR_CONFIG), message: message)
    }
}
