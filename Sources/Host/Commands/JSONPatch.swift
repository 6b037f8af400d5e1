/// An RFC 6902 JSON Patch: a list of operations, validated when parsed and
/// applied all-or-nothing (the input document is a value; a failure leaves
/// it untouched).
public struct JSONPatch: Sendable {
    public enum Operation: Sendable, Equatable {
        case add(JSONPointer, JSONValue)
        case remove(JSONPointer)
        case replace(JSONPointer, JSONValue)
        case move(from: JSONPointer, to: JSONPointer)
        case copy(from: JSONPointer, to: JSONPointer)
        case test(JSONPointer, JSONValue)

        var path: JSONPointer {
            switch self {
            case .add(let p, _), .remove(let p), .replace(let p, _), .test(let p, _): p
            case .move(_, let p), .copy(_, let p): p
            }
        }
    }

    public let operations: [Operation]

    /// A patch that cannot be parsed: which operation, and why.
    public struct ParseError: Error, Sendable {
        public let index: Int
        public let message: String
    }

    /// A patch that does not apply to the document: which operation, and why.
    public struct ApplyError: Error, Sendable {
        public let index: Int
        public let message: String
    }

    /// Parses the `ops` array of a command.
    /// - Parameter maxDepth: the deepest pointer allowed (a configured limit).
    public init(_ json: [JSONValue], maxDepth: Int) throws(ParseError) {
        var operations: [Operation] = []
        for (index, element) in json.enumerated() {
            guard case .object(let members) = element else {
                throw ParseError(index: index, message: "an operation is a JSON object, got \(element.typeName)")
            }
            func pointer(_ key: String) throws(ParseError) -> JSONPointer {
                guard let value = members[key] else { throw ParseError(index: index, message: "\"\(key)\" is required") }
                guard case .string(let text) = value, let pointer = JSONPointer(text) else {
                    throw ParseError(index: index, message: "\"\(key)\" is not a JSON Pointer (\"\" or \"/a/b\", with ~0 and ~1 escapes)")
                }
                guard pointer.tokens.count <= maxDepth else {
                    throw ParseError(index: index, message: "\"\(key)\" is \(pointer.tokens.count) levels deep; the limit is \(maxDepth)")
                }
                return pointer
            }
            func value() throws(ParseError) -> JSONValue {
                guard let value = members["value"] else { throw ParseError(index: index, message: "\"value\" is required") }
                return value
            }
            guard case .string(let op)? = members["op"] else {
                throw ParseError(index: index, message: "\"op\" is required: add, remove, replace, move, copy or test")
            }
            switch op {
            case "add": operations.append(.add(try pointer("path"), try value()))
            case "remove": operations.append(.remove(try pointer("path")))
            case "replace": operations.append(.replace(try pointer("path"), try value()))
            case "move":
                let from = try pointer("from"), to = try pointer("path")
                guard from == to || !to.isWithin(from) else {
                    throw ParseError(index: index, message: "cannot move a value into one of its own children")
                }
                operations.append(.move(from: from, to: to))
            case "copy": operations.append(.copy(from: try pointer("from"), to: try pointer("path")))
            case "test": operations.append(.test(try pointer("path"), try value()))
            default: throw ParseError(index: index, message: "unknown op \"\(op)\" (add, remove, replace, move, copy, test)")
            }
        }
        self.operations = operations
    }

    /// The document with every operation applied, or the first failure.
    public func apply(to document: JSONValue) throws(ApplyError) -> JSONValue {
        var result = document
        for (index, operation) in operations.enumerated() {
            do {
                result = try Self.apply(operation, to: result)
            } catch {
                throw ApplyError(index: index, message: error.message)
            }
        }
        return result
    }

    struct Failure: Error { let message: String }

    static func apply(_ operation: Operation, to document: JSONValue) throws(Failure) -> JSONValue {
        switch operation {
        case .add(let path, let value): return try add(value, at: path.tokens[...], in: document, pointer: path)
        case .remove(let path): return try remove(at: path.tokens[...], in: document, pointer: path).document
        case .replace(let path, let value):
            _ = try get(path, in: document)
            return try set(value, at: path.tokens[...], in: document, pointer: path)
        case .move(let from, let to):
            guard from != to else { _ = try get(from, in: document); return document }
            let (removed, value) = try remove(at: from.tokens[...], in: document, pointer: from)
            return try add(value, at: to.tokens[...], in: removed, pointer: to)
        case .copy(let from, let to): return try add(try get(from, in: document), at: to.tokens[...], in: document, pointer: to)
        case .test(let path, let expected):
            guard try get(path, in: document) == expected else { throw Failure(message: "test failed at \"\(path)\"") }
            return document
        }
    }

    static func get(_ pointer: JSONPointer, in document: JSONValue) throws(Failure) -> JSONValue {
        var current = document
        for token in pointer.tokens {
            switch current {
            case .object(let members):
                guard let next = members[token] else { throw Failure(message: "\"\(pointer)\" does not exist") }
                current = next
            case .array(let elements):
                guard let index = JSONPointer.arrayIndex(token), index < elements.count else {
                    throw Failure(message: "\"\(pointer)\" does not exist")
                }
                current = elements[index]
            default: throw Failure(message: "\"\(pointer)\" does not exist")
            }
        }
        return current
    }

    /// Adds (RFC 6902 4.1): inserts into arrays ("-" appends), sets object members.
    static func add(_ value: JSONValue, at tokens: ArraySlice<String>, in document: JSONValue, pointer: JSONPointer) throws(Failure) -> JSONValue {
        guard let token = tokens.first else { return value }
        if tokens.count == 1 {
            switch document {
            case .object(var members):
                members[token] = value
                return .object(members)
            case .array(var elements):
                if token == "-" { elements.append(value); return .array(elements) }
                guard let index = JSONPointer.arrayIndex(token), index <= elements.count else {
                    throw Failure(message: "\"\(pointer)\": index out of range")
                }
                elements.insert(value, at: index)
                return .array(elements)
            default: throw Failure(message: "\"\(pointer)\": the parent is not an object or array")
            }
        }
        return try descend(into: document, token: token, pointer: pointer) { child throws(Failure) in
            try add(value, at: tokens.dropFirst(), in: child, pointer: pointer)
        }
    }

    /// Sets an existing location (replace).
    static func set(_ value: JSONValue, at tokens: ArraySlice<String>, in document: JSONValue, pointer: JSONPointer) throws(Failure) -> JSONValue {
        guard let token = tokens.first else { return value }
        if tokens.count == 1, case .array(var elements) = document {
            guard let index = JSONPointer.arrayIndex(token), index < elements.count else {
                throw Failure(message: "\"\(pointer)\" does not exist")
            }
            elements[index] = value
            return .array(elements)
        }
        if tokens.count == 1, case .object(var members) = document {
            members[token] = value
            return .object(members)
        }
        return try descend(into: document, token: token, pointer: pointer) { child throws(Failure) in
            try set(value, at: tokens.dropFirst(), in: child, pointer: pointer)
        }
    }

    static func remove(at tokens: ArraySlice<String>, in document: JSONValue, pointer: JSONPointer) throws(Failure) -> (document: JSONValue, removed: JSONValue) {
        guard let token = tokens.first else { throw Failure(message: "cannot remove the whole document") }
        if tokens.count == 1 {
            switch document {
            case .object(var members):
                guard let removed = members.removeValue(forKey: token) else { throw Failure(message: "\"\(pointer)\" does not exist") }
                return (.object(members), removed)
            case .array(var elements):
                guard let index = JSONPointer.arrayIndex(token), index < elements.count else {
                    throw Failure(message: "\"\(pointer)\" does not exist")
                }
                let removed = elements.remove(at: index)
                return (.array(elements), removed)
            default: throw Failure(message: "\"\(pointer)\" does not exist")
            }
        }
        var removed = JSONValue.null
        let updated = try descend(into: document, token: token, pointer: pointer) { child throws(Failure) in
            let result = try remove(at: tokens.dropFirst(), in: child, pointer: pointer)
            removed = result.removed
            return result.document
        }
        return (updated, removed)
    }

    /// Rebuilds `document` with its child `token` transformed.
    static func descend(into document: JSONValue, token: String, pointer: JSONPointer,
                        _ transform: (JSONValue) throws(Failure) -> JSONValue) throws(Failure) -> JSONValue {
        switch document {
        case .object(var members):
            guard let child = members[token] else { throw Failure(message: "\"\(pointer)\": a parent does not exist") }
            members[token] = try transform(child)
            return .object(members)
        case .array(var elements):
            guard let index = JSONPointer.arrayIndex(token), index < elements.count else {
                throw Failure(message: "\"\(pointer)\": a parent does not exist")
            }
            elements[index] = try transform(elements[index])
            return .array(elements)
        default:
            throw Failure(message: "\"\(pointer)\": a parent is not an object or array")
        }
    }
}
