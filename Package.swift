// swift-tools-version:6.1
import PackageDescription

/// Linker flags every plugin gets: export only the entry symbol, and never let
/// the library be unmapped (a `dlclose` of Swift code is unsafe).
func pluginLinkerFlags(_ name: String) -> [LinkerSetting] {
    [.unsafeFlags([
        "-Xlinker", "--version-script=\(Context.packageDirectory)/Plugins/exports.map",
        "-Xlinker", "-z", "-Xlinker", "nodelete",
    ])]
}

let package = Package(
    name: "northstar",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "northstar", targets: ["northstar"]),
        .library(name: "NorthstarAPIKey", type: .dynamic, targets: ["NorthstarAPIKey"]),
        .library(name: "NorthstarJWT", type: .dynamic, targets: ["NorthstarJWT"]),
        .library(name: "NorthstarSSE", type: .dynamic, targets: ["NorthstarSSE"]),
        .library(name: "NorthstarWS", type: .dynamic, targets: ["NorthstarWS"]),
        .library(name: "NorthstarFS", type: .dynamic, targets: ["NorthstarFS"]),
        .library(name: "NorthstarS3", type: .dynamic, targets: ["NorthstarS3"]),
        .library(name: "NorthstarGCS", type: .dynamic, targets: ["NorthstarGCS"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket.git", from: "1.6.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // The C ABI: one header, the whole contract between host and plugins.
        .target(name: "PluginAPI", path: "Sources/PluginAPI"),
        // SQLite from the system (Debian's libsqlite3-dev).
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite"),
        // The kernel: a library so the tests can import it.
        .target(
            name: "NorthstarHost",
            dependencies: [
                "PluginAPI", "CSQLite",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "WSCore", package: "swift-websocket"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                "NorthstarPluginKit",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Sources/Host"
        ),
        .executableTarget(
            name: "northstar",
            dependencies: [
                "NorthstarHost",
                "PluginAPI",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Sources/northstar"
        ),
        // The Swift plugin kit: a Swift plugin implements a protocol, the kit speaks C.
        .target(name: "NorthstarPluginKit", dependencies: ["PluginAPI"], path: "Sources/PluginKit"),

        // Plugins: each a dynamic library exporting only `northstar_plugin_v1`.
        .target(
            name: "NorthstarAPIKey",
            dependencies: ["PluginAPI"],
            path: "Plugins/apikey",
            publicHeadersPath: ".",
            linkerSettings: [.linkedLibrary("crypto")] + pluginLinkerFlags("apikey")
        ),
        .target(
            name: "NorthstarSSE",
            dependencies: ["PluginAPI"],
            path: "Plugins/sse",
            publicHeadersPath: ".",
            linkerSettings: [.linkedLibrary("pthread")] + pluginLinkerFlags("sse")
        ),
        .target(
            name: "NorthstarJWT",
            dependencies: [
                "NorthstarPluginKit",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            path: "Plugins/jwt",
            linkerSettings: pluginLinkerFlags("jwt")
        ),
        .target(
            name: "NorthstarWS",
            dependencies: ["NorthstarPluginKit", "PluginAPI"],
            path: "Plugins/ws",
            linkerSettings: pluginLinkerFlags("ws")
        ),
        .target(
            name: "NorthstarFS",
            dependencies: ["NorthstarPluginKit", "PluginAPI", .product(name: "Crypto", package: "swift-crypto")],
            path: "Plugins/fs",
            linkerSettings: pluginLinkerFlags("fs")
        ),
        // What the cloud storage plugins share: Signature V4, XML, dates, error mapping.
        .target(
            name: "NorthstarCloud",
            dependencies: ["NorthstarPluginKit", "PluginAPI", .product(name: "Crypto", package: "swift-crypto")],
            path: "Plugins/cloud"
        ),
        .target(
            name: "NorthstarS3",
            dependencies: ["NorthstarCloud", "NorthstarPluginKit", "PluginAPI"],
            path: "Plugins/s3",
            linkerSettings: pluginLinkerFlags("s3")
        ),
        .target(
            name: "NorthstarGCS",
            dependencies: ["NorthstarCloud", "NorthstarPluginKit", "PluginAPI",
                           .product(name: "_CryptoExtras", package: "swift-crypto")],
            path: "Plugins/gcs",
            linkerSettings: pluginLinkerFlags("gcs")
        ),

        // Reports sizeof/offsetof of every ABI struct for the layout test.
        .target(name: "PluginAPILayout", dependencies: ["PluginAPI"], path: "Tests/PluginAPILayout"),
        // Micro and store benchmarks (Benchmarks/README.md has the method).
        .executableTarget(name: "northstar-bench", dependencies: ["NorthstarHost"], path: "Benchmarks/NorthstarBench"),
        // The fan-out load tool: N SSE subscribers against any server.
        .executableTarget(
            name: "northstar-load",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Benchmarks/LoadTool"
        ),

        .testTarget(name: "PluginAPITests", dependencies: ["PluginAPI", "PluginAPILayout", "NorthstarHost"],
                    exclude: ["abi-layout.json", "headers"]),
        .testTarget(name: "HostTests", dependencies: ["NorthstarHost", "NorthstarPluginKit", "PluginAPI", "NorthstarCloud",
                                                      .product(name: "Crypto", package: "swift-crypto"),
                                                      .product(name: "NIOEmbedded", package: "swift-nio")],
                    exclude: ["Fixtures"]),
    ]
)
