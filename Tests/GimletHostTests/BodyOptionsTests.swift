import GimletHost
import GimletHTTP
import Testing

/// `--max-body`, `--body-buffer` and `--body-temp-dir`, from options and
/// from the environment, as an operator writes them.
@Suite struct BodyOptions {
    @Test func defaultsAgreeWithTheRecipes() throws {
        let configuration = try HostOptions.parse([]).configuration(environment: [:])
        #expect(configuration.bodyLimits.maxBytes == 100 << 20, "deploy/nginx: client_max_body_size 100m")
        #expect(configuration.bodyLimits.memoryBytes == 1 << 20)
        #expect(configuration.fastCGI.bodyLimits == configuration.bodyLimits)
        #expect(configuration.scgiConfiguration.bodyLimits == configuration.bodyLimits)
    }

    @Test(arguments: [("1048576", 1 << 20), ("512k", 512 << 10), ("100m", 100 << 20), ("2G", 2 << 30), ("0", 0)])
    func sizesAreWrittenAsNginxWritesThem(text: String, bytes: Int) throws {
        let fromOption = try HostOptions.parse(["--max-body", text, "--body-buffer", text]).configuration(environment: [:])
        #expect(fromOption.bodyLimits.maxBytes == bytes)
        #expect(fromOption.bodyLimits.memoryBytes == bytes)
        let fromEnvironment = try HostConfiguration(environment: ["GIMLET_MAX_BODY": text, "GIMLET_BODY_BUFFER": text])
        #expect(fromEnvironment.bodyLimits == fromOption.bodyLimits)
    }

    @Test(arguments: ["1.5m", "m", "-1", "10mb", "99999999999999999g", " 1m"])
    func aSizeThatIsNotOneIsRefusedWithItsName(text: String) throws {
        let error = #expect(throws: HostConfigurationError.self) {
            try HostOptions.parse(["--max-body=" + text]).configuration(environment: [:])
        }
        #expect(error?.message.hasPrefix("--max-body must be a number of bytes") == true, "\(String(describing: error))")
        #expect(throws: HostConfigurationError.self) { try HostConfiguration(environment: ["GIMLET_BODY_BUFFER": text]) }
    }

    @Test func theTemporaryDirectoryIsAnAbsolutePath() throws {
        let configuration = try HostOptions.parse(["--body-temp-dir", "/var/tmp"]).configuration(environment: ["GIMLET_BODY_TEMP_DIR": "/srv"])
        #expect(configuration.bodyLimits.temporaryDirectory == "/var/tmp", "the option wins over the variable")
        #expect(try HostConfiguration(environment: ["GIMLET_BODY_TEMP_DIR": "/srv"]).bodyLimits.temporaryDirectory == "/srv")
        let error = #expect(throws: HostConfigurationError.self) { try HostConfiguration(environment: ["GIMLET_BODY_TEMP_DIR": "tmp"]) }
        #expect(error?.message.contains("GIMLET_BODY_TEMP_DIR must be an absolute directory path") == true)
    }
}
