import CoreMetrics
import Logging
import Synchronization

/// A swift-metrics factory whose counters, gauges, recorders and timers land
/// in the host's shared scoreboard, summed over every worker process, and
/// come out on the Prometheus endpoint (`--metrics-path`, or
/// `--status-path` with `?format=prometheus`) beside Gimlet's own series.
///
/// Bootstrap it once, as swift-log, before `Host.main`; metrics made
/// by the app or by its libraries then count in every serving process:
///
/// ```swift
/// MetricsSystem.bootstrap(ScoreboardMetrics.shared)
/// let signIns = Counter(label: "app_sign_ins_total", dimensions: [("method", "password")])
/// // in a handler: signIns.increment()
/// ```
///
/// - **Cost**: recording is one atomic add or store on shared memory,
///   found when the metric was made: no lock, no system call.
/// - **Kinds**: a `Counter` is a Prometheus counter; a `Gauge` or `Meter`
///   a gauge, the sum of each worker's last value; a `Timer` a histogram in
///   seconds, and an aggregating `Recorder` a histogram of its values, both
///   over Prometheus's default buckets (0.005 … 10).
/// - **Bounded**: at most 256 series (a name with its labels); one more is
///   refused with a log line and records nothing, as does a name or labels
///   over 120 bytes, a name that starts with `gimlet_` (the host's), or a
///   series made again as another kind. Names and label names become
///   valid Prometheus names (`http.requests` → `http_requests`).
/// - **Where**: a process that serves with none of the operator's tools on
///   (no scoreboard) records nothing. Metrics made before the host starts
///   serving (in `makeResponder`) are attached when it does.
public final class ScoreboardMetrics: MetricsFactory, Sendable {
    /// The factory to bootstrap: each serving process attaches its scoreboard to it.
    public static let shared = ScoreboardMetrics()

    /// The scoreboard's table, the process's slot in it and the host's logger, once attached.
    private struct Attachment {
        let series: MetricSeries
        let slot: Int
        let logger: Logger
    }

    private struct State {
        var attachment: Attachment?
        /// Made before the host attached a scoreboard.
        var pending: [MetricHandle] = []
        /// Refusals logged so far (at most ``loggedRefusals``).
        var refusalsLogged = 0
    }

    // protected by: the mutex; taken when a metric is made and when the host
    // attaches, never when one records.
    private let state = Mutex(State())
    private static let loggedRefusals = 20

    init() {}

    /// Records into `series` from now on, as worker `slot`; metrics made
    /// before are attached now. Once per process: a later call is ignored.
    func attach(_ series: MetricSeries, slot: Int, logger: Logger) {
        state.withLock { state in
            guard state.attachment == nil else { return }
            let attachment = Attachment(series: series, slot: slot, logger: logger)
            state.attachment = attachment
            for handle in state.pending { Self.resolve(handle, in: attachment, state: &state) }
            state.pending = []
        }
    }

    private func handle(_ kind: MetricSeries.Kind, label: String, dimensions: [(String, String)]) -> MetricHandle {
        let handle = MetricHandle(kind: kind, label: label, dimensions: dimensions)
        state.withLock { state in
            if let attachment = state.attachment {
                Self.resolve(handle, in: attachment, state: &state)
            } else {
                state.pending.append(handle)
            }
        }
        return handle
    }

    private static func resolve(_ handle: MetricHandle, in attachment: Attachment, state: inout State) {
        let refusal: String
        if MetricSeries.prometheusName(handle.label, colons: true).hasPrefix("gimlet_") {
            refusal = "its name starts with gimlet_, which the host's own series use"
        } else {
            switch attachment.series.resolve(kind: handle.kind, key: MetricSeries.key(name: handle.label, labels: handle.dimensions)) {
            case .success(let index):
                handle.resolve(MetricTarget(series: attachment.series, index: index, slot: attachment.slot))
                return
            case .failure(.full):
                refusal = "the scoreboard holds at most \(attachment.series.capacity) series"
            case .failure(.tooLong):
                refusal = "its name and labels are longer than \(MetricSeries.keyBytes) bytes"
            case .failure(.otherKind(let kind)):
                refusal = "the series exists as a \(kind)"
            }
        }
        guard state.refusalsLogged < loggedRefusals else { return }
        state.refusalsLogged += 1
        attachment.logger.warning("metric refused: it records nothing", metadata: [
            "metric": "\(handle.label)", "labels": "\(handle.dimensions)", "reason": "\(refusal)",
        ])
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> CounterHandler {
        ScoreboardCounter(handle(.counter, label: label, dimensions: dimensions))
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> MeterHandler {
        ScoreboardRecorder(handle(.gauge, label: label, dimensions: dimensions))
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> RecorderHandler {
        ScoreboardRecorder(handle(aggregate ? .histogram : .gauge, label: label, dimensions: dimensions))
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> TimerHandler {
        ScoreboardRecorder(handle(.timer, label: label, dimensions: dimensions))
    }

    // A series outlives its metric: the scoreboard keeps every series it was given.
    public func destroyCounter(_ handler: CounterHandler) {}
    public func destroyMeter(_ handler: MeterHandler) {}
    public func destroyRecorder(_ handler: RecorderHandler) {}
    public func destroyTimer(_ handler: TimerHandler) {}
}

/// Where a metric records: its record in the table and the process's slot.
final class MetricTarget: Sendable {
    let series: MetricSeries
    let index: Int
    let slot: Int

    init(series: MetricSeries, index: Int, slot: Int) {
        self.series = series
        self.index = index
        self.slot = slot
    }
}

/// A metric as made, and its target once the host has attached a scoreboard
/// (none if the series was refused: it records nothing).
///
/// Not `AtomicLazyReference`: its loading is not specialized outside the
/// standard library and cost some 640 instructions per recording
/// (`bench/instructions`), against a few for a flag and a field.
final class MetricHandle: @unchecked Sendable {
    // @unchecked: `resolvedTarget` is written once, under the factory's
    // lock, before `isResolved` is stored (releasing); it is read only
    // after `isResolved` was loaded (acquiring) and found set.
    let kind: MetricSeries.Kind
    let label: String
    let dimensions: [(String, String)]
    private var resolvedTarget: MetricTarget?
    private let isResolved = Atomic<Bool>(false)

    init(kind: MetricSeries.Kind, label: String, dimensions: [(String, String)]) {
        self.kind = kind
        self.label = label
        self.dimensions = dimensions
    }

    /// Where the metric records from now on; once (under the factory's lock).
    func resolve(_ target: MetricTarget) {
        guard !isResolved.load(ordering: .relaxed) else { return }
        resolvedTarget = target
        isResolved.store(true, ordering: .releasing)
    }

    /// Where the metric records, if anywhere yet: one acquiring load.
    var target: MetricTarget? { isResolved.load(ordering: .acquiring) ? resolvedTarget : nil }
}

final class ScoreboardCounter: CounterHandler, Sendable {
    private let handle: MetricHandle
    init(_ handle: MetricHandle) { self.handle = handle }

    func increment(by amount: Int64) {
        guard amount > 0, let target = handle.target else { return }
        target.series.add(target.index, UInt64(amount))
    }

    func reset() {
        guard let target = handle.target else { return }
        target.series.resetCounter(target.index)
    }
}

/// A gauge (the worker's last value, or what it added) or a histogram (each
/// value observed), as its series' kind says.
final class ScoreboardRecorder: MeterHandler, RecorderHandler, TimerHandler, Sendable {
    private let handle: MetricHandle
    init(_ handle: MetricHandle) { self.handle = handle }

    func set(_ value: Int64) { record(Double(value)) }
    func set(_ value: Double) { record(value) }
    func record(_ value: Int64) { record(Double(value)) }
    func recordNanoseconds(_ duration: Int64) { record(Double(duration)) }

    func record(_ value: Double) {
        guard let target = handle.target else { return }
        if handle.kind == .gauge {
            target.series.setGauge(target.index, slot: target.slot, value)
        } else {
            target.series.observe(target.index, kind: handle.kind, value)
        }
    }

    func increment(by amount: Double) {
        guard let target = handle.target, handle.kind == .gauge else { return }
        target.series.addGauge(target.index, slot: target.slot, amount)
    }

    func decrement(by amount: Double) { increment(by: -amount) }
}
