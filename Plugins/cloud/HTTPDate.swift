import Foundation

/// The dates cloud APIs answer with, as Unix milliseconds (0 when unreadable).
public enum HTTPDate {
    /// `Wed, 12 Oct 2009 17:50:00 GMT` (RFC 9110 IMF-fixdate).
    public static func imfFixdate(_ text: String) -> Int64 { parse(text, "EEE, dd MMM yyyy HH:mm:ss zzz") }

    /// `2009-10-12T17:50:30.000Z` (ISO 8601, with or without fractions).
    public static func iso8601(_ text: String) -> Int64 {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return Int64(date.timeIntervalSince1970 * 1000) }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text).map { Int64($0.timeIntervalSince1970 * 1000) } ?? 0
    }

    private static func parse(_ text: String, _ format: String) -> Int64 {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = format
        return formatter.date(from: text).map { Int64($0.timeIntervalSince1970 * 1000) } ?? 0
    }
}
