import Foundation
import GimletHost
import Testing

/// The version a build says it is, the changelog and the README agree.
@Suite struct Release {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    @Test func theChangelogsFirstHeadingIsHostVersion() throws {
        let changelog = try String(contentsOf: Self.root.appendingPathComponent("CHANGELOG.md"), encoding: .utf8)
        let heading = try #require(changelog.split(separator: "\n").first { $0.hasPrefix("#") })
        #expect(heading.hasPrefix("## \(Host.version) "), "CHANGELOG.md starts with \(heading), Host.version is \(Host.version)")
        #expect(changelog.hasPrefix(String(heading)), "the version is the file's first line")
    }

    @Test func theVersionIsSemantic() {
        let parts = Host.version.split(separator: ".", omittingEmptySubsequences: false)
        #expect(parts.count == 3 && parts.allSatisfy { UInt($0) != nil }, "MAJOR.MINOR.PATCH: \(Host.version)")
    }
}
