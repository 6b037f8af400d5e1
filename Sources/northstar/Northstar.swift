import ArgumentParser
import NorthstarHost

/// `northstar`: the command line of a Northstar node.
@main
struct Northstar: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "northstar",
        abstract: "A plugin-hosted realtime server: chat threads and shared canvases over WebSocket and SSE.",
        discussion: """
        Start here:
          northstar serve                      run on the embedded dev default (SQLite, JWT dev auth)
          northstar token --tenant t_demo --user alice
                                               print a dev token the running config accepts
          northstar plugins inspect PATH...    say what a plugin .so is, or why it would be refused
          northstar config check --config F    validate a config and its plugins without serving

        Docs: README.md, docs/configuration.md, docs/plugins.md.
        """,
        subcommands: [Serve.self, Token.self, Plugins.self, Config.self, Storage.self]
    )
}
