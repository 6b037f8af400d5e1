import Foundation
import NorthstarCloud
import NorthstarPluginKit

/// The `s3` plugin's config section.
///
///     {"endpoint": "https://s3.eu-west-1.amazonaws.com", "region": "eu-west-1", "bucket": "northstar",
///      "access_key_id": "${AWS_ACCESS_KEY_ID}", "secret_access_key": "${AWS_SECRET_ACCESS_KEY}",
///      "addressing": "virtual", "part_size_bytes": 8388608, "timeout_ms": 30000}
struct S3Settings {
    var endpoint: URLComponents
    var region: String
    var bucket: String
    var accessKeyID: String
    var secretAccessKey: String
    /// `path`: endpoint/bucket/key (S3-compatible servers); `virtual`: bucket.endpoint/key (AWS).
    var virtualHosted: Bool
    /// Uploads larger than this go as a multipart upload of parts this size.
    var partSize: Int
    /// Bytes fetched per ranged GET while reading.
    var readAhead: Int
    var timeoutMilliseconds: UInt32
    /// A multipart upload begun longer ago than this is taken as left behind
    /// by a crash or an outage, and aborted (it holds storage, and bills).
    var abandonedUploadSeconds: Int

    init(_ bytes: [UInt8]) throws {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(bytes.isEmpty ? Array("{}".utf8) : bytes))) as? [String: Any] else {
            throw CloudFailure.config("config: a JSON object")
        }
        let known: Set = ["endpoint", "region", "bucket", "access_key_id", "secret_access_key", "addressing",
                          "part_size_bytes", "read_ahead_bytes", "timeout_ms", "abandoned_upload_seconds"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw CloudFailure.config("unknown key \"\(unknown)\" (known: \(known.sorted().joined(separator: ", ")))")
        }
        func string(_ name: String, _ fallback: String? = nil) throws -> String {
            guard let value = object[name] as? String ?? fallback, !value.isEmpty else { throw CloudFailure.config("\(name): required, a string") }
            return value
        }
        func integer(_ name: String, _ fallback: Int, _ range: ClosedRange<Int>) throws -> Int {
            guard let raw = object[name] else { return fallback }
            guard let number = raw as? NSNumber, String(cString: number.objCType) != "c", let value = Int(exactly: number.doubleValue),
                  range.contains(value) else { throw CloudFailure.config("\(name): an integer from \(range.lowerBound) to \(range.upperBound)") }
            return value
        }
        guard let endpoint = URLComponents(string: try string("endpoint")), ["http", "https"].contains(endpoint.scheme),
              endpoint.host?.isEmpty == false, endpoint.path.isEmpty || endpoint.path == "/" else {
            throw CloudFailure.config("endpoint: an http(s)://host[:port] URL with no path")
        }
        self.endpoint = endpoint
        region = try string("region", "us-east-1")
        bucket = try string("bucket")
        guard (3...63).contains(bucket.count), bucket.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || "-.".contains($0)) }) else {
            throw CloudFailure.config("bucket: 3 to 63 of a-z 0-9 - .")
        }
        accessKeyID = try string("access_key_id")
        secretAccessKey = try string("secret_access_key")
        switch object["addressing"] as? String ?? "path" {
        case "path": virtualHosted = false
        case "virtual": virtualHosted = true
        default: throw CloudFailure.config("addressing: \"path\" or \"virtual\"")
        }
        partSize = try integer("part_size_bytes", 8 << 20, (5 << 20)...(512 << 20))
        readAhead = try integer("read_ahead_bytes", 4 << 20, (64 << 10)...(64 << 20))
        timeoutMilliseconds = UInt32(try integer("timeout_ms", 20_000, 100...600_000))
        abandonedUploadSeconds = try integer("abandoned_upload_seconds", 3600, 1...(7 * 86_400))
    }

    /// The URL, `host` header and canonical path of `key` (nil: the bucket).
    func location(_ key: String?) -> (base: String, host: String, path: String) {
        S3Address(scheme: endpoint.scheme!, host: endpoint.host!, port: endpoint.port, bucket: bucket, virtualHosted: virtualHosted)
            .location(key)
    }
}
