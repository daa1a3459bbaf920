// swift-tools-version:6.0
// Does Swift inline a `package` function into another target of the same
// package? ARCHITECTURE.md's `@_spi(GimletInlined)` exception rests on "no".
// `./check` builds this in release mode and reads the machine code.
import PackageDescription

let package = Package(
    name: "InliningCheck",
    targets: [
        .target(name: "Lib", path: "Sources/Lib"),
        .executableTarget(name: "App", dependencies: ["Lib"], path: "Sources/App"),
    ]
)
