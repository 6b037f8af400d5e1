import Logging

/// How the process logs: the format and the levels, chosen once at start
/// from the command line and the config (`node.log_format`, `node.log_levels`).
public enum LogSetup {
    /// Bootstraps swift-log. `level` is the default; a label takes the level
    /// of the longest prefix of it in `levels`.
    public static func bootstrap(format: NorthstarConfig.LogFormat, level: Logger.Level, levels: [String: Logger.Level]) {
        LoggingSystem.bootstrap { label in
            let chosen = LogSetup.level(for: label, default: level, levels: levels)
            switch format {
            case .json:
                return JSONLogHandler(label: label, level: chosen)
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = chosen
                return handler
            }
        }
    }

    static func level(for label: String, default level: Logger.Level, levels: [String: Logger.Level]) -> Logger.Level {
        let matching = levels.keys.filter { label == $0 || label.hasPrefix($0 + ".") }
        return matching.max { $0.count < $1.count }.flatMap { levels[$0] } ?? level
    }
}
