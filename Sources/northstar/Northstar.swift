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
          northstar plugins sdk --prefix DIR   install the C header, pkg-config file and exports map
          northstar plugins new --kind transport --lang c --name mine
                                               write a plugin to start from, with a Makefile
          northstar plugins test libmine.so    check a plugin against the contract of its kind

        Docs: README.md, docs/configuration.md, docs/plugins.md.
        """,
        subcommands: [Serve.self, Token.self, Plugins.self, Config.self, Storage.self, Store.self]
    )
}
