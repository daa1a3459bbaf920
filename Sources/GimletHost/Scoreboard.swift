import GimletBackendSupport
import GimletHTTP
@_spi(GimletInlined) import GimletSystem
import Synchronization

/// The host's shared record of what every worker thread of every worker
/// process is doing and has done: php-fpm's scoreboard.
///
/// One block of shared memory (``SharedWords``) made by the supervisor (or
/// by a lone process for itself) and mapped by each worker. Each worker
/// process has a slot; each of its threads a record that only that thread
/// writes: its current request (method, path, start) and its counters
/// (requests by status class, duration histogram, session backend round
/// trips). Any process reads the whole block, so any worker answers the
/// status page for all of them. Counters of a slot outlive its worker: a
/// replacement adds to them, so totals only grow while the supervisor runs.
final class Scoreboard: Sendable {
    /// Upper bounds of the duration histogram's buckets, in milliseconds (then +Inf).
    static let bucketBounds: [UInt64] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]
    static let pathBytes = 64
    static let requestIDBytes = RequestID.maximumLength

    enum ProcessState: UInt64 {
        case vacant = 0, starting, serving, stopping
    }

    // Header words.
    private static let magicValue: UInt64 = 0x4749_4D4C_4554_0001
    private static let headerWords = 8
    private enum Header { static let magic = 0, processes = 1, threads = 2, startTime = 3, draining = 4, series = 5 }
    // Process record words.
    private static let processWords = 10 + SecurityEvent.allCases.count
    enum ProcessWord {
        static let pid = 0, state = 1, started = 2, heartbeat = 3, baseline = 4, recycle = 5
        static let connections = 6, connectionChurn = 7  // two 32-bit halves each
        /// Session commits and the transactions that applied them (``CommitTotals``), of every process that had the slot.
        static let commits = 8, commitTransactions = 9
        /// One word per ``GimletHTTP/SecurityEvent`` kind, in `allCases` order:
        /// what every process that had the slot counted (a replacement adds to them).
        static let securityEvents = 10
    }
    // Thread record words.
    private static let threadWords = 48
    enum ThreadWord {
        static let sequence = 0, busy = 1, start = 2, handle = 3, method = 4, path = 5  // path: 8 words
        static let requests = 13, unanswered = 14, statusClasses = 15  // 1xx…5xx: 5 words
        static let durationMicros = 20, slow = 21, roundTrips = 23, failures = 24, backendMicros = 25
        static let histogram = 26  // bucketBounds.count + 1 words
        static let serial = 38
        static let requestID = 39  // RequestID.maximumLength bytes: 8 words
    }

    let words: SharedWords
    let processCapacity: Int
    let threadCapacity: Int
    /// The app's metric series (``MetricSeries``), after the process records.
    let series: MetricSeries
    // protected by: the mutex; what this process has added to its slot's
    // security event words so far, per kind (heartbeats and status requests
    // both write, from different threads).
    private let securityEventsWritten = Mutex([Int](repeating: 0, count: SecurityEvent.allCases.count))
    // protected by: the mutex; what this process has added to its slot's
    // commit words so far (as for the security events).
    private let commitsWritten = Mutex((commits: 0, transactions: 0))

    /// A new, empty scoreboard for `processes` worker processes of `threads`
    /// threads, with room for `series` metric series of the app.
    init(processes: Int, threads: Int, series: Int = MetricSeries.defaultCapacity) throws(HostConfigurationError) {
        let records = Self.headerWords + processes * (Self.processWords + threads * Self.threadWords)
        words = try SharedWords(count: records + MetricSeries.words(capacity: series, processes: processes))
        processCapacity = processes
        threadCapacity = threads
        self.series = MetricSeries(words: words, base: records, capacity: series, processes: processes)
        words[Header.processes] = UInt64(processes)
        words[Header.threads] = UInt64(threads)
        words[Header.series] = UInt64(series)
        words[Header.startTime] = UInt64(SystemCall.wallClockSeconds())
        words.publish(Header.magic, Self.magicValue)
    }

    /// The scoreboard a supervisor made, open on `descriptor`.
    init(inherited descriptor: Int32) throws(HostConfigurationError) {
        let count = SharedWords.count(of: descriptor)
        guard count >= Self.headerWords else { throw HostConfigurationError("the inherited status scoreboard is empty") }
        words = try SharedWords(descriptor: descriptor, count: count)
        guard words.acquire(Header.magic) == Self.magicValue else {
            throw HostConfigurationError("fd \(descriptor) is not a Gimlet scoreboard")
        }
        processCapacity = Int(words[Header.processes])
        threadCapacity = Int(words[Header.threads])
        let seriesCapacity = Int(words[Header.series])
        let records = Self.headerWords + processCapacity * (Self.processWords + threadCapacity * Self.threadWords)
        guard records + MetricSeries.words(capacity: seriesCapacity, processes: processCapacity) <= count else {
            throw HostConfigurationError("the inherited status scoreboard is smaller than its header says")
        }
        series = MetricSeries(words: words, base: records, capacity: seriesCapacity, processes: processCapacity)
    }

    /// When the scoreboard was made (Unix seconds): the start of the service.
    var startTime: UInt64 { words[Header.startTime] }

    /// Set when a graceful stop begins: the ping answers 503 from then on.
    var isDraining: Bool {
        get { words[Header.draining] == 1 }
        set { words[Header.draining] = newValue ? 1 : 0 }
    }

    // MARK: - Word positions

    func processBase(_ slot: Int) -> Int {
        Self.headerWords + slot * (Self.processWords + threadCapacity * Self.threadWords)
    }

    func threadBase(_ slot: Int, _ thread: Int) -> Int {
        processBase(slot) + Self.processWords + thread * Self.threadWords
    }

    // MARK: - Processes (written by the supervisor, and by the worker for its heartbeat)

    /// Readies `slot` for a process about to start, before it can write there;
    /// ``assign(_:pid:)`` names the process once it exists.
    func claim(_ slot: Int) {
        series.clearGauges(of: slot)
        let base = processBase(slot)
        words[base + ProcessWord.recycle] = 0
        words[base + ProcessWord.connections] = 0
        words[base + ProcessWord.connectionChurn] = 0
        words[base + ProcessWord.baseline] = (0..<threadCapacity).reduce(0) { $0 + words[threadBase(slot, $1) + ThreadWord.requests] }
        words[base + ProcessWord.started] = UInt64(SystemCall.wallClockSeconds())
        words[base + ProcessWord.heartbeat] = ProcessClock.nanoseconds()
        words[base + ProcessWord.state] = ProcessState.starting.rawValue
        words[base + ProcessWord.pid] = 0
    }

    /// The process started in `slot` is `pid`.
    func assign(_ slot: Int, pid: Int32) { words[processBase(slot) + ProcessWord.pid] = UInt64(pid) }

    /// Frees `slot` after its process ended: its threads are idle (a killed
    /// worker left them busy); its counters stay.
    func release(_ slot: Int) {
        series.clearGauges(of: slot)
        let base = processBase(slot)
        words[base + ProcessWord.state] = ProcessState.vacant.rawValue
        words[base + ProcessWord.pid] = 0
        for thread in 0..<threadCapacity { words[threadBase(slot, thread) + ThreadWord.busy] = 0 }
    }

    func setState(_ slot: Int, _ state: ProcessState) { words[processBase(slot) + ProcessWord.state] = state.rawValue }

    func state(_ slot: Int) -> ProcessState {
        ProcessState(rawValue: words[processBase(slot) + ProcessWord.state]) ?? .vacant
    }

    func pid(_ slot: Int) -> Int32 { Int32(truncatingIfNeeded: words[processBase(slot) + ProcessWord.pid]) }

    /// The worker's sign of life, written every 100 ms by its watchdog thread.
    func beat(_ slot: Int) { words[processBase(slot) + ProcessWord.heartbeat] = ProcessClock.nanoseconds() }

    /// Seconds since `slot`'s last heartbeat.
    func silence(_ slot: Int) -> Double {
        let last = words[processBase(slot) + ProcessWord.heartbeat]
        let now = ProcessClock.nanoseconds()
        return now > last ? Double(now - last) / 1e9 : 0
    }

    /// The session backend connections of the process in `slot`, from its
    /// pools (`PoolTotals`).
    struct Connections: Equatable {
        var open = 0, inUse = 0, created = 0, discarded = 0
    }

    /// Writes this process's `PoolTotals` into `slot`.
    func storeConnections(_ slot: Int) {
        func pair(_ high: Int, _ low: Int) -> UInt64 {
            UInt64(UInt32(clamping: high)) << 32 | UInt64(UInt32(clamping: low))
        }
        let base = processBase(slot)
        words[base + ProcessWord.connections] = pair(PoolTotals.open.load(ordering: .relaxed),
                                                      PoolTotals.inUse.load(ordering: .relaxed))
        words[base + ProcessWord.connectionChurn] = pair(PoolTotals.created.load(ordering: .relaxed),
                                                          PoolTotals.discarded.load(ordering: .relaxed))
    }

    /// Adds to `slot`'s security event words what this process counted
    /// (``GimletHTTP/SecurityEvent/totals``) since it last did.
    func storeSecurityEvents(_ slot: Int) {
        let totals = SecurityEvent.totals
        let base = processBase(slot) + ProcessWord.securityEvents
        securityEventsWritten.withLock { written in
            for (index, kind) in SecurityEvent.allCases.enumerated() {
                let count = totals[kind, default: 0]
                guard count > written[index] else { continue }
                words[base + index] &+= UInt64(count - written[index])
                written[index] = count
            }
        }
    }

    /// Adds to `slot`'s commit words what this process counted
    /// (`CommitTotals`) since it last did.
    func storeCommits(_ slot: Int) {
        let commits = CommitTotals.commits.load(ordering: .relaxed)
        let transactions = CommitTotals.transactions.load(ordering: .relaxed)
        let base = processBase(slot)
        commitsWritten.withLock { written in
            if commits > written.commits { words[base + ProcessWord.commits] &+= UInt64(commits - written.commits) }
            if transactions > written.transactions {
                words[base + ProcessWord.commitTransactions] &+= UInt64(transactions - written.transactions)
            }
            written = (max(commits, written.commits), max(transactions, written.transactions))
        }
    }

    /// The session commits of every process that ever had a slot, and the transactions that applied them.
    func commits() -> (commits: UInt64, transactions: UInt64) {
        (0..<processCapacity).reduce((0, 0)) { total, slot in
            let base = processBase(slot)
            return (total.0 &+ words[base + ProcessWord.commits], total.1 &+ words[base + ProcessWord.commitTransactions])
        }
    }

    /// Every security event of every process that ever had a slot, per kind.
    func securityEvents() -> [SecurityEvent: UInt64] {
        var totals: [SecurityEvent: UInt64] = [:]
        for slot in 0..<processCapacity {
            let base = processBase(slot) + ProcessWord.securityEvents
            for (index, kind) in SecurityEvent.allCases.enumerated() { totals[kind, default: 0] &+= words[base + index] }
        }
        return totals
    }

    func connections(_ slot: Int) -> Connections {
        let base = processBase(slot)
        let now = words[base + ProcessWord.connections], churn = words[base + ProcessWord.connectionChurn]
        return Connections(open: Int(now >> 32), inUse: Int(now & 0xFFFF_FFFF),
                           created: Int(churn >> 32), discarded: Int(churn & 0xFFFF_FFFF))
    }

    /// A worker asks to be replaced (`--max-requests`); the supervisor starts its successor first.
    func requestRecycling(_ slot: Int) { words[processBase(slot) + ProcessWord.recycle] = 1 }

    func wantsRecycling(_ slot: Int) -> Bool { words[processBase(slot) + ProcessWord.recycle] == 1 }

    // MARK: - Threads (each record written by its own thread)

    /// Thread `thread` of `slot` starts a request.
    func begin(_ slot: Int, _ thread: Int, method: String, path: String, requestID: String, thread handle: UInt64) {
        let base = threadBase(slot, thread)
        let sequence = words[base + ThreadWord.sequence]
        words[base + ThreadWord.sequence] = sequence &+ 1  // odd: being written
        words[base + ThreadWord.handle] = handle
        words[base + ThreadWord.start] = ProcessClock.nanoseconds()
        store(method, at: base + ThreadWord.method, bytes: 8)
        store(path, at: base + ThreadWord.path, bytes: Self.pathBytes)
        store(requestID, at: base + ThreadWord.requestID, bytes: Self.requestIDBytes)
        words[base + ThreadWord.serial] = words[base + ThreadWord.serial] &+ 1
        words[base + ThreadWord.busy] = 1
        words.publish(base + ThreadWord.sequence, sequence &+ 2)
    }

    /// What ``end(_:_:status:durationMicros:roundTrips:failures:backendMicros:slow:)`` adds.
    struct Outcome {
        var status: Int
        var durationMicros: UInt64
        var roundTrips: Int
        var failures: Int
        var backendMicros: UInt64
        var slow: Bool
    }

    /// Thread `thread` of `slot` finished its request.
    func end(_ slot: Int, _ thread: Int, _ outcome: Outcome) {
        let base = threadBase(slot, thread)
        func bump(_ word: Int, _ amount: UInt64 = 1) { words[base + word] = words[base + word] &+ amount }
        bump(ThreadWord.requests)
        if (100...599).contains(outcome.status) {
            bump(ThreadWord.statusClasses + outcome.status / 100 - 1)
        } else {
            bump(ThreadWord.unanswered)
        }
        bump(ThreadWord.durationMicros, outcome.durationMicros)
        let milliseconds = outcome.durationMicros / 1000
        bump(ThreadWord.histogram + (Self.bucketBounds.firstIndex { milliseconds < $0 } ?? Self.bucketBounds.count))
        if outcome.slow { bump(ThreadWord.slow) }
        if outcome.roundTrips > 0 {
            bump(ThreadWord.roundTrips, UInt64(outcome.roundTrips))
            bump(ThreadWord.failures, UInt64(outcome.failures))
            bump(ThreadWord.backendMicros, outcome.backendMicros)
        }
        words[base + ThreadWord.busy] = 0
    }

    /// Thread `thread`'s current request, if it has one: a consistent copy.
    func current(_ slot: Int, _ thread: Int) -> CurrentRequest? {
        let base = threadBase(slot, thread)
        for _ in 0..<8 {
            let before = words.acquire(base + ThreadWord.sequence)
            guard before & 1 == 0 else { continue }
            guard words[base + ThreadWord.busy] == 1 else { return nil }
            let method = Self.unpack([words[base + ThreadWord.method]])
            let path = load(at: base + ThreadWord.path, bytes: Self.pathBytes)
            let requestID = load(at: base + ThreadWord.requestID, bytes: Self.requestIDBytes)
            let start = words[base + ThreadWord.start]
            let handle = words[base + ThreadWord.handle]
            let serial = words[base + ThreadWord.serial]
            guard words.acquire(base + ThreadWord.sequence) == before else { continue }
            let now = ProcessClock.nanoseconds()
            let seconds = now > start ? Double(now - start) / 1e9 : 0
            return CurrentRequest(method: method, path: path, requestID: requestID, seconds: seconds, handle: handle,
                                  serial: serial)
        }
        return nil
    }

    /// A request in flight, as the scoreboard shows it.
    struct CurrentRequest: Equatable {
        var method: String
        var path: String
        var requestID: String
        /// How long it has been running.
        var seconds: Double
        /// The worker thread's `pthread_t`, meaningful in its own process only (for a stack capture).
        var handle: UInt64
        /// Which request of that thread this is (to log each once).
        var serial: UInt64
    }

    /// The counter `word` of thread records, summed over `slots` (all by default).
    func sum(_ word: Int, slots: Range<Int>? = nil) -> UInt64 {
        var total: UInt64 = 0
        for slot in slots ?? 0..<processCapacity {
            for thread in 0..<threadCapacity { total = total &+ words[threadBase(slot, thread) + word] }
        }
        return total
    }

    /// Requests served by the process now in `slot`.
    func requestsOfCurrentProcess(_ slot: Int) -> UInt64 {
        let total = sum(ThreadWord.requests, slots: slot..<(slot + 1))
        let baseline = words[processBase(slot) + ProcessWord.baseline]
        return total > baseline ? total - baseline : 0
    }

    /// Writes the first `bytes` bytes of `text` (zero-padded) from word `start` on.
    private func store(_ text: String, at start: Int, bytes: Int) {
        // Straight from the UTF-8 bytes, through a span: no array per
        // request, and none of the UTF-8 view's per-byte iteration (some 800
        // instructions for a path and an id).
        let utf8 = text.utf8.span
        let count = min(utf8.count, bytes)
        var word = 0, offset = 0
        while offset < count {
            var value: UInt64 = 0, shift: UInt64 = 0
            for index in offset..<min(offset + 8, count) {
                value |= UInt64(utf8[index]) << shift
                shift += 8
            }
            words[start + word] = value
            word += 1
            offset += 8
        }
        while word < bytes / 8 {
            words[start + word] = 0
            word += 1
        }
    }

    /// The text ``store(_:at:bytes:)`` wrote.
    private func load(at start: Int, bytes: Int) -> String {
        Self.unpack((0..<(bytes / 8)).map { words[start + $0] })
    }

    private static func unpack(_ values: [UInt64]) -> String {
        var bytes: [UInt8] = []
        outer: for value in values {
            for index in 0..<8 {
                let byte = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index)))
                if byte == 0 { break outer }
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// CLOCK_MONOTONIC, which every process of the machine shares.
enum ProcessClock {
    static func nanoseconds() -> UInt64 { SystemCall.monotonicNanoseconds() }
}
