import Foundation
@_spi(GimletInlined) import GimletSystem

extension SessionConfiguration {
    /// Reads ``secretFile`` into ``secrets``, and ``encryptionKeyFile`` into
    /// ``encryptionKey`` (its first line) and ``retiredEncryptionKeys`` (the
    /// others), where they are set; then checks the result.
    ///
    /// The files hold one value per line; surrounding spaces, blank lines
    /// and lines starting with `#` are ignored. systemd's `LoadCredential=`
    /// puts such a file in `$CREDENTIALS_DIRECTORY`.
    ///
    /// ```swift
    /// var configuration = try SessionConfiguration(environment: environment)   // GIMLET_SECRET_FILE=…
    /// try configuration.readSecretFiles()                                       // again, after a rotation
    /// ```
    ///
    /// - Throws: ``SessionConfigurationError`` naming the file and what is
    ///   wrong with it (missing, unreadable, empty, a value too short); the
    ///   configuration is then unchanged.
    public mutating func readSecretFiles() throws(SessionConfigurationError) {
        var updated = self
        if let secretFile { updated.secrets = try Self.values(in: secretFile, kind: "secret file") }
        if let encryptionKeyFile {
            let keys = try Self.values(in: encryptionKeyFile, kind: "encryption key file")
            updated.encryptionKey = keys.first
            updated.retiredEncryptionKeys = Array(keys.dropFirst())
        }
        do {
            try updated.validate()
        } catch {
            let files = [secretFile, encryptionKeyFile].compactMap { $0 }.joined(separator: ", ")
            throw SessionConfigurationError("\(error.message) (read from \(files))")
        }
        self = updated
    }

    /// The values of the file at `path`, one per line. A file its group or
    /// others may read or write is refused, as ssh refuses such a private key.
    static func values(in path: String, kind: String) throws(SessionConfigurationError) -> [String] {
        if let mode = SystemCall.permissionBits(of: path), mode & 0o066 != 0 {
            throw SessionConfigurationError("the \(kind) \(path) has mode \(String(mode, radix: 8)): its group or others may read or change it; make it readable by the app's user alone (chmod 600 \(path), or 400)")
        }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason = FileManager.default.fileExists(atPath: path)
                ? "this user (uid \(getuid())) may not read it, or it is not UTF-8 text"
                : "it does not exist"
            throw SessionConfigurationError("cannot read the \(kind) \(path): \(reason)")
        }
        let values = text.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard !values.isEmpty else {
            throw SessionConfigurationError("the \(kind) \(path) is empty; put one value per line, e.g. `openssl rand -hex 32 > \(path)`")
        }
        return values
    }
}
