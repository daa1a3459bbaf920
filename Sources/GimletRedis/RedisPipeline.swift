import GimletHTTP

/// Commands for one round trip, encoded as RESP as they are added.
///
/// Building the wire bytes directly (`*3\r\n$4\r\nHSET\r\n…`) costs one
/// growing buffer per round trip, where an array of arguments per command
/// cost an allocation per argument and hiredis's formatter a few more.
///
/// ```swift
/// var pipeline = RedisPipeline()
/// pipeline.command("HGETALL", key)
/// pipeline.begin("EXPIRE", arguments: 2)
/// pipeline.argument(key)
/// pipeline.argument("3600")
/// ```
struct RedisPipeline {
    /// The RESP bytes of every command so far.
    private(set) var bytes: [UInt8] = []
    /// How many commands (so how many replies to read).
    private(set) var count = 0
    private var argumentsLeft = 0

    init() {
        bytes.reserveCapacity(128)
    }

    /// Adds a command whose arguments are all known here.
    mutating func command(_ name: String, _ arguments: [UInt8]...) {
        begin(name, arguments: arguments.count)
        for argument in arguments { self.argument(argument) }
    }

    /// Starts a command with `arguments` more arguments to follow through ``argument(_:)``.
    mutating func begin(_ name: String, arguments: Int) {
        precondition(argumentsLeft == 0, "the previous Redis command is missing arguments")
        count += 1
        bytes.append(UInt8(ascii: "*"))
        bytes.appendDecimal(arguments + 1)
        bytes.appendLineEnd()
        argumentsLeft = arguments + 1
        argument(name)
    }

    /// Adds one argument of the current command.
    mutating func argument(_ argument: [UInt8]) {
        appendBulk(argument)
    }

    /// Adds one argument of the current command, as UTF-8.
    mutating func argument(_ text: String) {
        appendBulk(text.utf8)
    }

    private mutating func appendBulk(_ argument: some Collection<UInt8>) {
        precondition(argumentsLeft > 0, "more Redis arguments than the command announced")
        argumentsLeft -= 1
        bytes.append(UInt8(ascii: "$"))
        bytes.appendDecimal(argument.count)
        bytes.appendLineEnd()
        bytes.append(contentsOf: argument)
        bytes.appendLineEnd()
    }

    /// Whether every command got the arguments it announced.
    var isComplete: Bool { argumentsLeft == 0 }

    /// Wraps the commands in `MULTI`/`EXEC` when there are several, so they apply together.
    mutating func wrapInTransaction() {
        guard count > 1, isComplete else { return }
        var wrapped = RedisPipeline()
        wrapped.command("MULTI")
        wrapped.bytes.append(contentsOf: bytes)
        wrapped.count += count
        wrapped.command("EXEC")
        self = wrapped
    }
}
