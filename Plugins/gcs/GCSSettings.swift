import Foundation
import NorthstarCloud
import NorthstarPluginKit

/// The `gcs` plugin's config section.
///
///     {"bucket": "northstar", "credentials_file": "/etc/northstar/service-account.json",
///      "endpoint": "https://storage.googleapis.com", "chunk_size_bytes": 8388608, "timeout_ms": 30000}
///
/// `STORAGE_EMULATOR_HOST` (as Google's own clients read it) overrides the
/// endpoint and turns authentication off: emulators take none.
struct GCSSettings {
    var endpoint: String
    var bucket: String
    var emulator: Bool
    var serviceAccount: ServiceAccount?
    /// Objects larger than this go up as a resumable upload in chunks this size.
    var chunkSize: Int
    var readAhead: Int
    var timeoutMilliseconds: UInt32

    init(_ bytes: [UInt8], environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(bytes.isEmpty ? Array("{}".utf8) : bytes))) as? [String: Any] else {
            throw CloudFailure.config("config: a JSON object")
        }
        let known: Set = ["endpoint", "bucket", "credentials_file", "chunk_size_bytes", "read_ahead_bytes", "timeout_ms"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw CloudFailure.config("unknown key \"\(unknown)\" (known: \(known.sorted().joined(separator: ", ")))")
        }
        func integer(_ name: String, _ fallback: Int, _ range: ClosedRange<Int>) throws -> Int {
            guard let raw = object[name] else { return fallback }
            guard let number = raw as? NSNumber, String(cString: number.objCType) != "c", let value = Int(exactly: number.doubleValue),
                  range.contains(value) else { throw CloudFailure.config("\(name): an integer from \(range.lowerBound) to \(range.upperBound)") }
            return value
        }
        guard let bucket = object["bucket"] as? String, (3...63).contains(bucket.count),
              bucket.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || "-_.".contains($0)) }) else {
            throw CloudFailure.config("bucket: required, 3 to 63 of a-z 0-9 - _ .")
        }
        self.bucket = bucket
        if let host = environment["STORAGE_EMULATOR_HOST"], !host.isEmpty {
            endpoint = host.hasPrefix("http") ? host : "http://" + host
            emulator = true
        } else {
            endpoint = object["endpoint"] as? String ?? "https://storage.googleapis.com"
            emulator = false
        }
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        guard let parsed = URLComponents(string: endpoint), ["http", "https"].contains(parsed.scheme), parsed.host?.isEmpty == false else {
            throw CloudFailure.config("endpoint: an http(s):// URL")
        }
        if let path = object["credentials_file"] as? String {
            guard path.hasPrefix("/") else {
                throw CloudFailure.config("credentials_file: \"\(path)\" is relative; give an absolute path")
            }
            serviceAccount = try ServiceAccount(file: path)
        } else if !emulator {
            throw CloudFailure.config("credentials_file: required (a service-account key), unless STORAGE_EMULATOR_HOST names an emulator")
        }
        chunkSize = try integer("chunk_size_bytes", 8 << 20, (256 << 10)...(512 << 20))
        guard chunkSize % (256 << 10) == 0 else { throw CloudFailure.config("chunk_size_bytes: a multiple of 262144 (GCS requires it)") }
        readAhead = try integer("read_ahead_bytes", 4 << 20, (64 << 10)...(64 << 20))
        timeoutMilliseconds = UInt32(try integer("timeout_ms", 20_000, 100...600_000))
    }
}
