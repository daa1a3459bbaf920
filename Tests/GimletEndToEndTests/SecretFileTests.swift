import Foundation
import Testing

/// Secrets and encryption keys from files, rotated with `SIGHUP` and no
/// restart, through real nginx: the README's rotation steps.
@Suite(.serialized) struct SecretFileRotation {
    typealias Stack = SessionLabBehindNginx.Stack

    static let oldSecret = "old-secret-0123456789abcdef-0001", newSecret = "new-secret-0123456789abcdef-0002"
    static let oldKey = String(repeating: "1f", count: 32), newKey = String(repeating: "2e", count: 32)

    /// A client with its own copy of cookie jar `jar`.
    static func client(_ stack: Stack, copying jar: String, to name: String) throws -> HTTPClient {
        let copy = stack.directory.file(name)
        try? FileManager.default.removeItem(atPath: copy)
        try FileManager.default.copyItem(atPath: jar, toPath: copy)
        var client = HTTPClient(baseURL: stack.nginx.baseURL, scratch: stack.directory)
        client.cookieJar = copy
        return client
    }

    /// Writes the files, signals the app and waits until it has reloaded
    /// (a lone process re-reads in place; a supervisor starts fresh workers).
    static func rotate(_ stack: Stack, secrets: [String], keys: [String], files: (String, String),
                       workers: Bool) throws {
        let done = workers ? "reload done" : "SIGHUP: reloaded"
        let before = stack.app.output.components(separatedBy: done).count
        try writePrivately(secrets.joined(separator: "\n") + "\n", to: files.0)
        try writePrivately("# encryption keys, first encrypts\n" + keys.joined(separator: "\n") + "\n", to: files.1)
        stack.app.send(SIGHUP)
        #expect(waitUntil(seconds: 20) { stack.app.output.components(separatedBy: done).count > before },
                "\(stack.app.output)")
    }

    @Test(arguments: [false, true]) func aRotatedFileAndSIGHUPSignWithTheNewAndAcceptTheOld(workers: Bool) throws {
        let keys = try TemporaryDirectory("gimlet-keys")
        let files = (keys.file("secret"), keys.file("encryption-key"))
        try writePrivately(Self.oldSecret + "\n", to: files.0)
        try writePrivately(Self.oldKey + "\n", to: files.1)
        let stack = try Stack(["--secret-file", files.0, "--encryption-key-file", files.1]
                              + (workers ? ["--workers", "2", "--threads", "2"] : []))
        let app = stack.app
        // A visitor with a server-side key and an encrypted client-side one.
        #expect(try stack.client.get("/set/server/one").status == 200)
        #expect(try stack.client.get("/set/client/two?clientside=1").status == 200)
        let oldJar = stack.directory.file("old-jar")
        try FileManager.default.copyItem(atPath: try #require(stack.client.cookieJar), toPath: oldJar)
        let signedBefore = stack.jar

        // Step 1: the new secret and key first, the old ones after them.
        try Self.rotate(stack, secrets: [Self.newSecret, Self.oldSecret], keys: [Self.newKey, Self.oldKey],
                        files: files, workers: workers)
        let visitor = try Self.client(stack, copying: oldJar, to: "visitor-jar")
        #expect(try visitor.get("/get/server").text == "one", "the old secret still verifies")
        #expect(try visitor.get("/get/client?clientside=1").text == "two", "the old key still decrypts")
        let visitorJar = try #require(visitor.cookieJar)
        let reissued = try String(contentsOfFile: visitorJar, encoding: .utf8)
        for value in signedBefore.values { #expect(!reissued.contains(value), "re-issued under the new secret and key") }

        // Step 2, once old cookies have been re-issued or expired: the old ones go.
        try Self.rotate(stack, secrets: [Self.newSecret], keys: [Self.newKey], files: files, workers: workers)
        let rotated = try Self.client(stack, copying: visitorJar, to: "rotated-jar")
        #expect(try rotated.get("/get/server").text == "one", "signed with the new secret")
        #expect(try rotated.get("/get/client?clientside=1").text == "two", "encrypted with the new key")
        let stale = try Self.client(stack, copying: oldJar, to: "stale-jar")
        #expect(try stale.get("/get/client?clientside=1").status == 404, "the old key no longer decrypts")
        #expect(try stale.get("/get/server").status == 404, "the old secret no longer verifies")

        if !workers {
            // A file emptied by mistake: the reload fails, logged, and the keys in use stay.
            try writePrivately("", to: files.0)
            app.send(SIGHUP)
            #expect(waitUntil(seconds: 10) { app.output.contains("SIGHUP: reload failed") }, "\(app.output)")
            #expect(app.output.contains("is empty"))
            let again = try Self.client(stack, copying: visitorJar, to: "again-jar")
            #expect(try again.get("/get/server").text == "one")
        }
        #expect(!app.output.contains(Self.newSecret) && !app.output.contains(Self.newKey), "no secret in the log")
    }

    /// A secret or key file its group or others may read is refused at
    /// start, naming the file and its mode, as ssh refuses such a key; one
    /// readable by its owner alone is taken, with no word about secrets in
    /// the environment. (Before the fix a 0644 file was taken silently.)
    @Test(arguments: [("--secret-file", "0123456789abcdef-secret"), ("--encryption-key-file", String(repeating: "1f", count: 32))])
    func aFileOthersCanReadIsRefused(option: String, value: String) throws {
        let directory = try TemporaryDirectory("gimlet-keys")
        let file = directory.file("value")
        try writePrivately(value + "\n", to: file)
        chmod(file, 0o644)
        let secret = option == "--secret-file" ? [] : ["--secret", SessionLabBehindNginx.secret]
        let refused = try ManagedProcess(
            "session-lab", executable: try Repository.binary("session-lab"),
            arguments: ["--fastcgi", "unix:" + directory.file("lab.sock"), option, file, "--backend", "memory:"] + secret,
            outputPath: directory.file("refused.log"))
        #expect(refused.waitForExit(seconds: 20) == 1, "\(refused.output)")
        #expect(refused.output.contains(file) && refused.output.contains("mode 644") && refused.output.contains("chmod 600"),
                "\(refused.output)")

        chmod(file, 0o600)
        let stack = try Stack([option, file])
        #expect(try stack.client.get("/set/a/1?clientside=1").text == "ok")
        if option == "--secret-file" {
            #expect(!stack.app.output.contains("GIMLET_SECRET_FILE"), "a secret from a file: no warning")
        }
    }

    /// A secret given inline (the environment, `--secret`) works, with one
    /// warning naming the safer setting.
    @Test func anInlineSecretIsWarnedAboutOnce() throws {
        let stack = try Stack()
        #expect(try stack.client.get("/set/a/1").text == "ok")
        let output = stack.app.output
        #expect(output.components(separatedBy: "put it in a file readable by the app's user alone").count - 1 == 1, "\(output)")
        #expect(output.contains("GIMLET_SECRET_FILE"))
        #expect(!output.contains(SessionLabBehindNginx.secret), "the warning does not print the secret")
    }

    /// A missing or empty file stops the app before it serves, naming the file.
    @Test func aMissingSecretFileStopsTheAppWithItsName() throws {
        let directory = try TemporaryDirectory("gimlet-keys")
        let missing = directory.file("no-such-secret")
        let app = try ManagedProcess(
            "session-lab", executable: try Repository.binary("session-lab"),
            arguments: ["--fastcgi", "unix:" + directory.file("lab.sock"), "--secret-file", missing,
                        "--backend", "memory:"],
            outputPath: directory.file("lab.log"))
        #expect(app.waitForExit(seconds: 20) == 1)
        #expect(app.output.contains("cannot read the secret file (GIMLET_SECRET_FILE) \(missing): it does not exist"),
                "\(app.output)")
    }
}
