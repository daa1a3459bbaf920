// swift-tools-version:6.0
import Foundation
import PackageDescription

let package = Package(
    name: "Gimlet",
    products: [
        .library(name: "GimletHTTP", targets: ["GimletHTTP"]),
        .library(name: "Gimlet", targets: ["Gimlet"]),
        .library(name: "GimletTesting", targets: ["GimletTesting"]),
        .library(name: "GimletSQLite", targets: ["GimletSQLite"]),
        .library(name: "GimletRedis", targets: ["GimletRedis"]),
        .library(name: "GimletPostgreSQL", targets: ["GimletPostgreSQL"]),
        .library(name: "GimletFastCGI", targets: ["GimletFastCGI"]),
        .library(name: "GimletSCGI", targets: ["GimletSCGI"]),
        .library(name: "GimletHost", targets: ["GimletHost"]),
        .executable(name: "hello", targets: ["hello"]),
        .executable(name: "session-lab", targets: ["session-lab"]),
        .executable(name: "notes", targets: ["notes"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        // The app's and libraries' metrics, kept in the host's scoreboard (CoreMetrics: no dependencies).
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        // A span per request when the app bootstraps a tracer (Tracing: no dependencies of its own).
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // The app's long-running clients, run in each serving process (ServingApp).
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // `make docs`: DocC through `swift package generate-documentation`.
        // A plugin only: nothing of it is linked into any product.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        // The notes example's templates only: no Gimlet library links it.
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
    ],
    targets: [
        // System libraries: a module map and a shim header each, no logic.
        .systemLibrary(
            name: "CFastCGI",
            pkgConfig: "fcgi",
            providers: [.apt(["libfcgi-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // No pkgConfig: hiredis.pc adds -D_FILE_OFFSET_BITS=64, which SwiftPM
        // refuses with a warning; the headers sit on the default include path.
        .systemLibrary(
            name: "CHiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        // epoll and eventfd, which Glibc's Swift module does not export.
        .systemLibrary(name: "CLinuxEvents"),
        // A worker thread's stack, taken by a signal handler on that thread
        // (glibc's backtrace): the one piece of C of our own, since a signal
        // handler may only do async-signal-safe work.
        .target(name: "CStackCapture"),

        // The one door for Gimlet's own system calls (EINTR, errno, signals).
        .target(name: "GimletSystem"),
        // HTTP, in folders by job: Model (request, response, headers, cookies),
        // Bodies (request bodies, multipart, forms, streams, files), Routing,
        // Exchange (a CGI exchange with a transport), Execution (worker threads).
        .target(
            name: "GimletHTTP",
            dependencies: [
                "CLinuxEvents", "GimletSystem", .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // What only session stores use: the bounded pool and its process
        // totals, periodic background work, the redaction of backend URLs.
        .target(name: "GimletBackendSupport", dependencies: ["GimletHTTP"]),
        // Sessions: channels, values, cookie codec on libcrypto, middleware, memory backend.
        .target(
            name: "Gimlet",
            dependencies: [
                "GimletHTTP", "GimletBackendSupport", "GimletSystem", "COpenSSL",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // The server-side backends.
        .target(
            name: "GimletSQLite",
            dependencies: [
                "Gimlet", "GimletHTTP", "GimletBackendSupport", "GimletSystem", "CSQLite",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "GimletRedis",
            dependencies: [
                "Gimlet", "GimletHTTP", "GimletBackendSupport", "CHiredis", .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "GimletPostgreSQL",
            dependencies: [
                "Gimlet", "GimletHTTP", "GimletBackendSupport", "GimletSystem", "CLibPQ",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Test helpers users can import too: test client, recording backend, manual clock.
        .target(name: "GimletTesting", dependencies: ["Gimlet", "GimletHTTP"]),
        // What both transports share: listen addresses, sockets, the stop signal, worker wake-ups.
        .target(
            name: "GimletTransport",
            dependencies: ["CLinuxEvents", "GimletSystem", "GimletHTTP", .product(name: "Logging", package: "swift-log")]
        ),
        // FastCGI transport on libfcgi.
        .target(
            name: "GimletFastCGI",
            dependencies: [
                "GimletHTTP", "GimletSystem", "GimletTransport", "CFastCGI",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // SCGI transport: its own socket I/O and a strict netstring parser.
        .target(
            name: "GimletSCGI",
            dependencies: ["GimletHTTP", "GimletSystem", "GimletTransport", .product(name: "Logging", package: "swift-log")]
        ),
        // The process: options, worker threads, signals.
        .target(
            name: "GimletHost",
            dependencies: [
                "GimletHTTP", "GimletBackendSupport", "GimletSystem", "GimletTransport", "GimletFastCGI", "GimletSCGI",
                "CStackCapture",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        .executableTarget(
            name: "hello",
            dependencies: ["GimletHost", "GimletHTTP"],
            path: "examples/hello"
        ),

        .target(
            name: "SessionLabApp",
            dependencies: ["Gimlet", "GimletHTTP", .product(name: "Metrics", package: "swift-metrics")],
            path: "examples/session-lab/App"
        ),
        .executableTarget(
            name: "session-lab",
            dependencies: [
                "Gimlet", "GimletHost", "GimletSQLite", "GimletRedis", "GimletPostgreSQL", "SessionLabApp",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            path: "examples/session-lab/Main",
            // Function names in the slow-request and timeout logs' stacks.
            linkerSettings: [.unsafeFlags(["-Xlinker", "--export-dynamic"])]
        ),

        .executableTarget(
            name: "notes",
            dependencies: [
                "Gimlet", "GimletHost", "GimletHTTP", "GimletSQLite", "GimletRedis",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            path: "examples/notes",
            // Served by the web server from /static/ (the recipes), not built into the app.
            exclude: ["static"]
        ),

        .testTarget(name: "GimletSystemTests", dependencies: ["GimletSystem", "GimletTransport"]),
        .testTarget(name: "GimletHTTPTests", dependencies: ["GimletHTTP"]),
        .testTarget(name: "GimletBackendSupportTests", dependencies: ["GimletBackendSupport"]),
        .testTarget(
            name: "GimletTests",
            dependencies: ["Gimlet", "GimletBackendSupport", "GimletTesting", "GimletHTTP", "SessionLabApp"]
        ),
        .testTarget(name: "GimletFastCGITests", dependencies: ["GimletFastCGI", "GimletTransport", "GimletHTTP"]),
        .testTarget(name: "GimletSCGITests", dependencies: ["GimletSCGI", "GimletHTTP"]),
        .testTarget(
            name: "GimletHostTests",
            dependencies: [
                "GimletHost", "GimletHTTP", "GimletTransport", .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .testTarget(
            name: "GimletSQLiteTests",
            dependencies: ["GimletSQLite", "GimletTesting", "Gimlet", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "GimletRedisTests", dependencies: ["GimletRedis", "Gimlet"]),
        .testTarget(
            name: "GimletEndToEndTests",
            dependencies: [
                "GimletFastCGI", "GimletSCGI", "GimletTransport", "GimletHTTP", "Gimlet", "GimletTesting",
                "GimletRedis", "GimletSQLite", "GimletPostgreSQL", "GimletHost", "SessionLabApp",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)

// libFuzzer targets (Fuzz/), only when GIMLET_FUZZ=1: `make fuzz` builds each
// with -sanitize=fuzzer,address in .build-fuzz. Ordinary builds never see them.
if ProcessInfo.processInfo.environment["GIMLET_FUZZ"] == "1" {
    package.targets.append(.target(name: "FuzzDriver", path: "Fuzz/Driver"))
    let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
    let fuzzTargets: [(String, [Target.Dependency])] = [
        ("request", ["Gimlet", "GimletHTTP", "SessionLabApp", logging]),
        ("cookie", ["Gimlet"]),
        ("scgi", ["GimletSCGI", "GimletHTTP"]),
        ("urls", ["GimletSQLite", "GimletRedis", "GimletPostgreSQL", "GimletTransport", "GimletHTTP", "GimletBackendSupport",
                  "Gimlet"]),
        ("session-value", ["Gimlet"]),
        ("multipart", ["GimletHTTP"]),
    ]
    for (name, dependencies) in fuzzTargets {
        package.targets.append(.executableTarget(
            name: "fuzz-" + name, dependencies: ["FuzzDriver"] + dependencies, path: "Fuzz/" + name))
    }
}
