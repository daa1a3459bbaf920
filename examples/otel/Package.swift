// swift-tools-version:6.1
// An app that sends its traces to an OpenTelemetry collector (OTLP/HTTP),
// with swift-otel: a package of its own, so that swift-otel's long build
// (SwiftNIO, AsyncHTTPClient, SwiftProtobuf) stays out of Gimlet's.
//
//   swift build --package-path examples/otel
//   OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 examples/otel/.build/debug/traced --fastcgi unix:/tmp/traced.sock
import Foundation
import PackageDescription

// This checkout, by path. SwiftPM names a path dependency after its
// directory (`gimlet` in the README's layout, whatever a clone is called
// here); an app of its own depends on Gimlet's git URL `from:` a release.
let gimletDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
let gimlet = gimletDirectory.lastPathComponent

let package = Package(
    name: "gimlet-otel-example",
    dependencies: [
        .package(path: "../.."),
        // OTLP over HTTP only: the gRPC trait would add grpc-swift's build for nothing here.
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
    ],
    targets: [
        .executableTarget(
            name: "traced",
            dependencies: [
                .product(name: "Gimlet", package: gimlet),
                .product(name: "GimletHTTP", package: gimlet),
                .product(name: "GimletHost", package: gimlet),
                .product(name: "GimletSQLite", package: gimlet),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
