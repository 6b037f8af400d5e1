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
        /// The operation's copy would pass the patch's copy budget.
        public var overCopyBudget = false
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
    ///
    /// - Parameter copyBudget: how many bytes of JSON text the `copy`
    ///   operations may duplicate, all together. A copy shares its value with
    ///   the original, so it costs nothing here, but a few dozen operations
    ///   that copy the document into itself stand for 2^n values: measuring,
    ///   storing or sending that document would hang or exhaust memory. Each
    ///   copied value is measured, stopping at what is left of the budget, so
    ///   the work is bounded by the budget as well. Unlimited for operations
    ///   replayed from the log, which were measured when they were committed.
    public func apply(to document: JSONValue, copyBudget: Int = .max) throws(ApplyError) -> JSONValue {
        var result = document
        var budgetLeft = copyBudget
        for (index, operation) in operations.enumerated() {
            // A source that does not exist fails below, as the copy itself.
            if copyBudget != .max, case .copy(let from, _) = operation, let value = try? Self.get(from, in: result) {
                guard let size = value.encodedSize(atMost: budgetLeft) else {
                    var error = ApplyError(index: index, message: "the copy operations of one command may duplicate at most \(copyBudget) bytes of JSON together; copying \"\(from)\" would pass that")
                    error.overCopyBudget = true
                    throw error
                }
                budgetLeft -= size
            }
            do {
                try Self.apply(operation, to: &result)
            } catch {
                throw ApplyError(index: index, message: error.message)
            }
        }
        return result
    }

    struct Failure: Error { let message: String }

    // Each operation changes `document` in place: a container on its path is
    // taken out of its parent while it changes (the parent holds `.null`
    // meanwhile), so it has one owner and Swift changes it without copying
    // it. Copying every container on the path per operation made a command
    // of 1,000 operations on a large array cost seconds of the writer's time.
    // The containers are taken with `if case` / `guard case`: a `switch` on
    // the value keeps a second reference to it while its case runs, and every
    // change would copy. An operation that fails may leave `document`
    // part-way; `apply(to:)` then throws it away, and the caller's value,
    // copied on its first write, is untouched.

    static func apply(_ operation: Operation, to document: inout JSONValue) throws(Failure) {
        switch operation {
        case .add(let path, let value): try add(value, at: path.tokens[...], in: &document, pointer: path)
        case .remove(let path): _ = try remove(at: path.tokens[...], in: &document, pointer: path)
        case .replace(let path, let value):
            _ = try get(path, in: document)
            try set(value, at: path.tokens[...], in: &document, pointer: path)
        case .move(let from, let to):
            guard from != to else { _ = try get(from, in: document); return }
            let value = try remove(at: from.tokens[...], in: &document, pointer: from)
            try add(value, at: to.tokens[...], in: &document, pointer: to)
        case .copy(let from, let to): try add(try get(from, in: document), at: to.tokens[...], in: &document, pointer: to)
        case .test(let path, let expected):
            guard try get(path, in: document) == expected else { throw Failure(message: "test failed at \"\(path)\"") }
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

    /// Adds (RFC 6902 4.1): inserts into arrays ("-" appends); an object
    /// member, or the whole document, is set as `set` sets it.
    static func add(_ value: JSONValue, at tokens: ArraySlice<String>, in document: inout JSONValue, pointer: JSONPointer) throws(Failure) {
        if tokens.count > 1, let token = tokens.first {
            return try descend(into: &document, token: token, pointer: pointer) { child throws(Failure) in
                try add(value, at: tokens.dropFirst(), in: &child, pointer: pointer)
            }
        }
        guard let token = tokens.first, case .array(var elements) = document else {
            return try set(value, at: tokens, in: &document, pointer: pointer)
        }
        let index = token == "-" ? elements.count : JSONPointer.arrayIndex(token)
        guard let index, index <= elements.count else { throw Failure(message: "\"\(pointer)\": index out of range") }
        document = .null
        elements.insert(value, at: index)
        document = .array(elements)
    }

    /// Sets an existing location (replace).
    static func set(_ value: JSONValue, at tokens: ArraySlice<String>, in document: inout JSONValue, pointer: JSONPointer) throws(Failure) {
        guard let token = tokens.first else { document = value; return }
        guard tokens.count == 1 else {
            return try descend(into: &document, token: token, pointer: pointer) { child throws(Failure) in
                try set(value, at: tokens.dropFirst(), in: &child, pointer: pointer)
            }
        }
        if case .object(var members) = document {
            document = .null
            members[token] = value
            document = .object(members)
        } else if case .array(var elements) = document {
            guard let index = JSONPointer.arrayIndex(token), index < elements.count else {
                throw Failure(message: "\"\(pointer)\" does not exist")
            }
            document = .null
            elements[index] = value
            document = .array(elements)
        } else {
            throw Failure(message: "\"\(pointer)\": a parent is not an object or array")
        }
    }

    /// Removes a location and returns what was there.
    static func remove(at tokens: ArraySlice<String>, in document: inout JSONValue, pointer: JSONPointer) throws(Failure) -> JSONValue {
        guard let token = tokens.first else { throw Failure(message: "cannot remove the whole document") }
        guard tokens.count == 1 else {
            var removed = JSONValue.null
            try descend(into: &document, token: token, pointer: pointer) { child throws(Failure) in
                removed = try remove(at: tokens.dropFirst(), in: &child, pointer: pointer)
            }
            return removed
        }
        if case .object(var members) = document, members.index(forKey: token) != nil {
            document = .null
            let removed = members.removeValue(forKey: token)!
            document = .object(members)
            return removed
        }
        if case .array(var elements) = document, let index = JSONPointer.arrayIndex(token), index < elements.count {
            document = .null
            let removed = elements.remove(at: index)
            document = .array(elements)
            return removed
        }
        throw Failure(message: "\"\(pointer)\" does not exist")
    }

    /// Changes `document`'s child `token` with `change`, in place.
    static func descend(into document: inout JSONValue, token: String, pointer: JSONPointer,
                        _ change: (inout JSONValue) throws(Failure) -> Void) throws(Failure) {
        if case .object(var members) = document {
            guard var child = members[token] else { throw Failure(message: "\"\(pointer)\": a parent does not exist") }
            document = .null
            members[token] = .null
            try change(&child)
            members[token] = child
            document = .object(members)
        } else if case .array(var elements) = document {
            guard let index = JSONPointer.arrayIndex(token), index < elements.count else {
                throw Failure(message: "\"\(pointer)\": a parent does not exist")
            }
            var child = elements[index]
            document = .null
            elements[index] = .null
            try change(&child)
            elements[index] = child
            document = .array(elements)
        } else {
            throw Failure(message: "\"\(pointer)\": a parent is not an object or array")
        }
    }
}
