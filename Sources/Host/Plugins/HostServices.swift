import Foundation
import Logging
import NorthstarPluginKit
import PluginAPI

/// The `ns_host_api` table the host lends every plugin, and the offer that
/// carries it. Built once and never freed: plugins may keep the pointers for
/// the life of the process.
enum HostServices {
    /// The minors of ABI 1 this host accepts.
    static let minorRange: ClosedRange<UInt32> = 0...UInt32(NS_ABI_MINOR)

    nonisolated(unsafe) static let api: UnsafePointer<ns_host_api> = {
        var table = ns_host_api()
        table.struct_size = UInt32(MemoryLayout<ns_host_api>.size)
        table.abi_minor = UInt32(NS_ABI_MINOR)
        table.log = { host, level, message in
            let logger = PluginHandle.from(host)?.logger ?? Logger(label: "northstar.plugin")
            logger.log(level: logLevel(level), "\(message.string)")
        }
        table.error_set = { error, message in
            ErrorSlot.from(error)?.message = message.string
        }
        table.alloc = { size in
            guard size > 0, size < UInt64(Int.max) else { return nil }
            return malloc(Int(size))
        }
        table.free = { pointer in Foundation.free(pointer) }
        table.buffer_append = { buffer, bytes in
            guard let buffer = HostBuffer.from(buffer) else { return ns_status(NS_ERR_INVALID_ARGUMENT) }
            guard buffer.bytes.count + Int(bytes.len) <= HostBuffer.limit else { return ns_status(NS_ERR_TOO_LARGE) }
            buffer.bytes += bytes.array
            return ns_status(NS_OK)
        }
        table.config_get = { host, pointer, outType, outValue in
            guard let handle = PluginHandle.from(host), let outType, let outValue else {
                return ns_status(NS_ERR_INVALID_ARGUMENT)
            }
            guard let value = handle.config.value(atPointer: pointer.string) else { return ns_status(NS_ERR_NOT_FOUND) }
            let (type, text) = describe(value)
            outType.pointee = type
            outValue.pointee = handle.keep(text)
            return ns_status(NS_OK)
        }
        table.config_key = { host, pointer, index, outName in
            guard let handle = PluginHandle.from(host), let outName else { return ns_status(NS_ERR_INVALID_ARGUMENT) }
            guard case .object(let members)? = handle.config.value(atPointer: pointer.string) else {
                return ns_status(NS_ERR_NOT_FOUND)
            }
            let keys = members.keys.sorted()
            guard index < UInt64(keys.count) else { return ns_status(NS_ERR_NOT_FOUND) }
            outName.pointee = handle.keep(keys[Int(index)])
            return ns_status(NS_OK)
        }
        table.claim_set = { claims, name, value in
            guard let sink = ClaimsSink.from(claims) else { return ns_status(NS_ERR_INVALID_ARGUMENT) }
            sink.claims[name.string] = value.string
            return ns_status(NS_OK)
        }
        TransportServices.install(into: &table)
        StorageServices.install(into: &table)
        HTTPFetchService.install(into: &table)
        let pointer = UnsafeMutablePointer<ns_host_api>.allocate(capacity: 1)
        pointer.initialize(to: table)
        return UnsafePointer(pointer)
    }()

    nonisolated(unsafe) static let offer: UnsafePointer<ns_host_offer> = {
        let pointer = UnsafeMutablePointer<ns_host_offer>.allocate(capacity: 1)
        pointer.initialize(to: ns_host_offer(
            struct_size: UInt32(MemoryLayout<ns_host_offer>.size),
            abi_major: UInt32(NS_ABI_MAJOR),
            abi_minor_min: minorRange.lowerBound,
            abi_minor_max: minorRange.upperBound,
            api: api))
        return UnsafePointer(pointer)
    }()

    /// What `config_get` reports for a value: its type and its text.
    static func describe(_ value: JSONValue) -> (Int32, String) {
        switch value {
        case .null: (Int32(NS_JSON_NULL), "null")
        case .bool(let flag): (Int32(NS_JSON_BOOL), flag ? "true" : "false")
        case .number: (Int32(NS_JSON_NUMBER), value.jsonText)
        case .string(let text): (Int32(NS_JSON_STRING), text)
        case .array(let elements): (Int32(NS_JSON_ARRAY), String(elements.count))
        case .object(let members): (Int32(NS_JSON_OBJECT), String(members.count))
        }
    }

    static func logLevel(_ level: ns_log_level) -> Logger.Level {
        switch Int(level) {
        case Int(NS_LOG_TRACE): .trace
        case Int(NS_LOG_DEBUG): .debug
        case Int(NS_LOG_INFO): .info
        case Int(NS_LOG_NOTICE): .notice
        case Int(NS_LOG_WARNING): .warning
        case Int(NS_LOG_ERROR): .error
        default: .critical
        }
    }
}
