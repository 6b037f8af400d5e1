/// One check of a plugin's contract (`northstar plugins test`): its name,
/// whether it held, and why not.
public struct ConformanceCheck: Sendable, Codable, Equatable {
    public let name: String
    public let passed: Bool
    /// Why it failed (empty when it passed).
    public let reason: String

    public static func pass(_ name: String) -> ConformanceCheck {
        ConformanceCheck(name: name, passed: true, reason: "")
    }

    public static func fail(_ name: String, _ reason: String) -> ConformanceCheck {
        ConformanceCheck(name: name, passed: false, reason: reason)
    }
}

/// A failed expectation inside a check: its message is the check's reason.
struct ContractBroken: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs each named check, turning a thrown error into its failure.
struct ConformanceRun {
    private(set) var checks: [ConformanceCheck] = []

    mutating func check(_ name: String, _ body: () async throws -> Void) async {
        do {
            try await body()
            checks.append(.pass(name))
        } catch let error as ContractBroken {
            checks.append(.fail(name, error.description))
        } catch let error as KernelError {
            checks.append(.fail(name, "\(error.code): \(error.message)\(error.logDetail.map { " (\($0))" } ?? "")"))
        } catch {
            checks.append(.fail(name, "\(error)"))
        }
    }
}

/// Fails the running check with `message` unless `condition` holds.
func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw ContractBroken(message()) }
}
