import Tracing

/// Spans as an OTLP/HTTP JSON `ExportTraceServiceRequest`: ids as lowercase
/// hex, 64-bit integers as decimal strings, enums as their numbers, as the
/// OTLP JSON mapping says.
enum OTLPEncoding {
    static func body(_ spans: [RecordedSpan.Finished], serviceName: String) -> [UInt8] {
        let resource = JSONValue.object(["attributes": .array([attribute("service.name", value(.string(serviceName)))])])
        let scope = JSONValue.object(["name": .string("northstar"), "version": .string(NorthstarVersion.current)])
        let scopeSpans = JSONValue.object(["scope": scope, "spans": .array(spans.map(span))])
        let request = JSONValue.object(["resourceSpans": .array([.object(["resource": resource, "scopeSpans": .array([scopeSpans])])])])
        var bytes: [UInt8] = []
        request.write(to: &bytes)
        return bytes
    }

    static func span(_ span: RecordedSpan.Finished) -> JSONValue {
        var fields: [String: JSONValue] = [
            "traceId": .string(span.identity.traceID),
            "spanId": .string(span.identity.spanID),
            "name": .string(span.name),
            "kind": .number(Double(kind(span.kind))),
            "startTimeUnixNano": .string("\(span.startNanos)"),
            "endTimeUnixNano": .string("\(span.endNanos)"),
            "attributes": attributes(span.attributes),
        ]
        if let parent = span.parentSpanID { fields["parentSpanId"] = .string(parent) }
        if !span.events.isEmpty {
            fields["events"] = .array(span.events.map { event in
                .object(["name": .string(event.name), "timeUnixNano": .string("\(event.nanosecondsSinceEpoch)"),
                         "attributes": attributes(event.attributes)])
            })
        }
        if !span.links.isEmpty {
            fields["links"] = .array(span.links.map { .object(["traceId": .string($0.traceID), "spanId": .string($0.spanID)]) })
        }
        if let status = span.status {
            var fieldsOfStatus: [String: JSONValue] = ["code": .number(status.code == .ok ? 1 : 2)]
            if let message = status.message { fieldsOfStatus["message"] = .string(message) }
            fields["status"] = .object(fieldsOfStatus)
        }
        return .object(fields)
    }

    /// OTLP's `SpanKind` numbers.
    static func kind(_ kind: SpanKind) -> Int {
        switch kind {
        case .internal: 1
        case .server: 2
        case .client: 3
        case .producer: 4
        case .consumer: 5
        }
    }

    static func attributes(_ attributes: SpanAttributes) -> JSONValue {
        var list: [JSONValue] = []
        attributes.forEach { name, value in list.append(attribute(name, Self.value(value))) }
        return .array(list)
    }

    static func attribute(_ key: String, _ value: JSONValue) -> JSONValue { .object(["key": .string(key), "value": value]) }

    /// One `AnyValue`.
    static func value(_ attribute: SpanAttribute) -> JSONValue {
        switch attribute {
        case .int32(let number): one("intValue", .string("\(number)"))
        case .int64(let number): one("intValue", .string("\(number)"))
        case .double(let number): one("doubleValue", .number(number))
        case .bool(let flag): one("boolValue", .bool(flag))
        case .string(let text): one("stringValue", .string(text))
        case .int32Array(let numbers): array(numbers.map { one("intValue", .string("\($0)")) })
        case .int64Array(let numbers): array(numbers.map { one("intValue", .string("\($0)")) })
        case .doubleArray(let numbers): array(numbers.map { one("doubleValue", .number($0)) })
        case .boolArray(let flags): array(flags.map { one("boolValue", .bool($0)) })
        case .stringArray(let texts): array(texts.map { one("stringValue", .string($0)) })
        case .stringConvertibleArray(let items): array(items.map { one("stringValue", .string($0.description)) })
        case .stringConvertible(let item): one("stringValue", .string(item.description))
        default: one("stringValue", .string("\(attribute)"))
        }
    }

    private static func array(_ values: [JSONValue]) -> JSONValue { .object(["arrayValue": .object(["values": .array(values)])]) }

    private static func one(_ type: String, _ value: JSONValue) -> JSONValue { .object([type: value]) }
}
