// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Gimlet",
    products: [
        .library(name: "GimletHTTP", targets: ["GimletHTTP"]),
        .library(name: "GimletFastCGI", targets: ["GimletFastCGI"]),
        .library(name: "GimletHost", targets: ["GimletHost"]),
        .executable(name: "hello", targets: ["hello"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // System libraries: a module map and a shim header each, no logic.
        .systemLibrary(
            name: "CFastCGI",
            pkgConfig: "fcgi",
            providers: [.apt(["libfcgi-dev"])]
        ),
        // epoll and eventfd, which Glibc's Swift module does not export.
        .systemLibrary(name: "CLinuxEvents"),

        // HTTP model: request from a CGI environ, response, cookies, forms, router.
        .target(
            name: "GimletHTTP",
            dependencies: [.product(name: "Logging", package: "swift-log")]
        ),
        // FastCGI transport on libfcgi.
        .target(
            name: "GimletFastCGI",
            dependencies: [
                "GimletHTTP", "CFastCGI", "CLinuxEvents",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The process: options, worker threads, signals.
        .target(
            name: "GimletHost",
            dependencies: [
                "GimletHTTP", "GimletFastCGI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        .executableTarget(
            name: "hello",
            dependencies: ["GimletHost", "GimletHTTP"],
            path: "examples/hello"
        ),

        .testTarget(name: "GimletHTTPTests", dependencies: ["GimletHTTP"]),
        .testTarget(name: "GimletFastCGITests", dependencies: ["GimletFastCGI", "GimletHTTP"]),
        .testTarget(
            name: "GimletEndToEndTests",
            dependencies: ["GimletFastCGI", "GimletHTTP"]
        ),
    ]
)
