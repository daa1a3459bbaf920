@_spi(GimletInlined) import GimletSystem
import Synchronization

/// The app's metric series in the scoreboard's shared memory: what
/// ``ScoreboardMetrics`` records, summed over every worker process and
/// shown on the Prometheus endpoint beside Gimlet's own series.
///
/// A fixed table of records, one per series (a name and its labels). A
/// process that makes a metric finds the record of its series or claims the
/// first free one (a compare-and-exchange on the record's state word: no
/// lock across processes; processes racing for the same new series meet at
/// that record, ``resolve(kind:key:)``). Should a series still have two
/// records (a claimer died while writing one), the report adds them
/// together. Recording is one
/// atomic add (counters, histograms) or store (gauges, one word per worker
/// slot) on a word found when the metric was made: no lock, no system call.
final class MetricSeries: Sendable {
    enum Kind: UInt64, Sendable {
        case counter = 1
        /// A value per worker slot (the last one set there); the report sums the slots.
        case gauge
        /// Durations in nanoseconds (swift-metrics' `Timer`), reported in seconds.
        case timer
        /// Values as given (swift-metrics' aggregating `Recorder`).
        case histogram

        var prometheusType: String {
            switch self {
            case .counter: "counter"
            case .gauge: "gauge"
            case .timer, .histogram: "histogram"
            }
        }
    }

    /// The series a table holds unless told otherwise.
    static let defaultCapacity = 256
    /// The longest name and labels, together, in bytes (`name` NUL `labels`).
    static let keyBytes = 120
    /// Upper bounds of the histograms' buckets (Prometheus's defaults; for
    /// timers, in seconds), then +Inf.
    static let bucketBounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private enum State { static let free: UInt64 = 0, claimed: UInt64 = 1, ready: UInt64 = 2 }
    // Record words: the state, the kind and the key's length, the key, the values.
    private static let keyWords = 15
    private static let valuesStart = 2 + keyWords
    private static let histogramWords = bucketBounds.count + 3  // buckets, +Inf, count, sum
    private enum HistogramWord { static let count = bucketBounds.count + 1, sum = bucketBounds.count + 2 }

    private let words: SharedWords
    private let base: Int
    let capacity: Int
    private let processes: Int
    private let recordWords: Int

    /// The words a table of `capacity` series takes for `processes` worker slots.
    static func words(capacity: Int, processes: Int) -> Int { capacity * recordWords(processes: processes) }

    private static func recordWords(processes: Int) -> Int { valuesStart + max(histogramWords, processes) }

    init(words: SharedWords, base: Int, capacity: Int, processes: Int) {
        self.words = words
        self.base = base
        self.capacity = capacity
        self.processes = processes
        recordWords = Self.recordWords(processes: processes)
    }

    /// The first word of record `index` (its state).
    func record(_ index: Int) -> Int { base + index * recordWords }

    // MARK: - Finding a series (when a metric is made)

    /// Why a series has no record.
    enum Refusal: Error, Equatable {
        /// The table is full.
        case full
        /// Name and labels are longer than ``keyBytes``.
        case tooLong
        /// The series exists as another kind.
        case otherKind(Kind)
    }

    /// The record of the series `key` (``key(name:labels:)``), found or claimed.
    ///
    /// Records are claimed in index order and never freed, so the table is
    /// a prefix of claimed records: a process walks it from the start,
    /// waits for a record another process is still writing, and claims the
    /// first free one only when no record before it holds the series. Two
    /// processes that make the same series at once (workers starting
    /// together) meet at that free record: one claims it, the other waits
    /// for it and finds the series there. Only a claimer that died while
    /// writing leaves a record that is skipped after ``claimWait``.
    func resolve(kind: Kind, key: [UInt8]) -> Result<Int, Refusal> {
        guard key.count <= Self.keyBytes else { return .failure(.tooLong) }
        let packed = Self.pack(key)
        for index in 0..<capacity {
            var state = words.acquire(record(index))
            if state == State.free {
                if words.compareExchange(record(index), expected: State.free, desired: State.claimed) {
                    let start = record(index)
                    words[start + 1] = kind.rawValue | UInt64(key.count) << 8
                    for (offset, word) in packed.enumerated() { words[start + 2 + offset] = word }
                    for offset in 0..<(recordWords - Self.valuesStart) { words[start + Self.valuesStart + offset] = 0 }
                    words.publish(start, State.ready)
                    return .success(index)
                }
                state = State.claimed  // another process got it first: it may be this series
            }
            if state == State.claimed { state = waitWhileClaimed(index) }
            guard state == State.ready, matches(index, packed, key.count) else { continue }
            let stored = storedKind(index)
            return stored == kind ? .success(index) : .failure(.otherKind(stored ?? kind))
        }
        return .failure(.full)
    }

    /// How long a process waits for another to finish writing a record it
    /// claimed (some twenty stores: far less, unless that process was
    /// descheduled or died meanwhile).
    static let claimWait = Duration.milliseconds(100)

    /// The state of record `index` once its claimer has published it, or
    /// `claimed` still after ``claimWait``.
    private func waitWhileClaimed(_ index: Int) -> UInt64 {
        let deadline = ContinuousClock.now + Self.claimWait
        while true {
            let state = words.acquire(record(index))
            if state != State.claimed || ContinuousClock.now > deadline { return state }
            SystemCall.sleep(microseconds: 50)
        }
    }

    private func storedKind(_ index: Int) -> Kind? { Kind(rawValue: words[record(index) + 1] & 0xFF) }

    private func matches(_ index: Int, _ packed: [UInt64], _ length: Int) -> Bool {
        let start = record(index)
        guard Int(words[start + 1] >> 8) == length else { return false }
        for (offset, word) in packed.enumerated() where words[start + 2 + offset] != word { return false }
        return true
    }

    private static func pack(_ bytes: [UInt8]) -> [UInt64] {
        var packed = [UInt64](repeating: 0, count: keyWords)
        for (offset, byte) in bytes.enumerated() { packed[offset / 8] |= UInt64(byte) << (8 * UInt64(offset % 8)) }
        return packed
    }

    private func key(of index: Int) -> [UInt8] {
        let start = record(index)
        let length = min(Int(words[start + 1] >> 8), Self.keyBytes)
        return (0..<length).map { UInt8(truncatingIfNeeded: words[start + 2 + $0 / 8] >> (8 * UInt64($0 % 8))) }
    }

    /// The key of a series: its Prometheus name, NUL, its labels as
    /// Prometheus writes them (`a="1",b="2"`). Names and label names are
    /// made valid (other characters become `_`); values are escaped.
    static func key(name: String, labels: [(String, String)]) -> [UInt8] {
        var key = Array(prometheusName(name, colons: true).utf8)
        key.append(0)
        for (offset, (label, value)) in labels.enumerated() {
            if offset > 0 { key.append(UInt8(ascii: ",")) }
            key += Array(prometheusName(label, colons: false).utf8)
            key += Array("=\"".utf8)
            for byte in value.utf8 {
                switch byte {
                case UInt8(ascii: "\\"): key += Array("\\\\".utf8)
                case UInt8(ascii: "\""): key += Array("\\\"".utf8)
                case UInt8(ascii: "\n"): key += Array("\\n".utf8)
                default: key.append(byte)
                }
            }
            key.append(UInt8(ascii: "\""))
        }
        return key
    }

    /// `name` with every character outside `[A-Za-z0-9_]` (and `:` in metric
    /// names) replaced by `_`, and a leading digit prefixed with `_`.
    static func prometheusName(_ name: String, colons: Bool) -> String {
        var result = String(name.unicodeScalars.map { scalar -> Character in
            let valid = scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "_"
                || (colons && scalar == ":"))
            return valid ? Character(scalar) : "_"
        })
        if result.isEmpty || result.first?.isNumber == true { result = "_" + result }
        return result
    }

    // MARK: - Recording (lock-free, on the record found above)

    func add(_ index: Int, _ amount: UInt64) { words.add(record(index) + Self.valuesStart, amount) }

    func resetCounter(_ index: Int) { words[record(index) + Self.valuesStart] = 0 }

    /// Sets worker `slot`'s value of a gauge.
    func setGauge(_ index: Int, slot: Int, _ value: Double) {
        guard slot >= 0, slot < processes else { return }
        words[record(index) + Self.valuesStart + slot] = value.bitPattern
    }

    /// Adds to worker `slot`'s value of a gauge (several threads of the worker may).
    func addGauge(_ index: Int, slot: Int, _ amount: Double) {
        guard slot >= 0, slot < processes else { return }
        addDouble(at: record(index) + Self.valuesStart + slot, amount)
    }

    /// Counts one observation into a histogram; for a timer, `value` is in
    /// nanoseconds and its sum is kept in whole nanoseconds.
    func observe(_ index: Int, kind: Kind, _ value: Double) {
        let start = record(index) + Self.valuesStart
        let bound = kind == .timer ? value / 1e9 : value
        words.add(start + (Self.bucketBounds.firstIndex { bound <= $0 } ?? Self.bucketBounds.count), 1)
        words.add(start + HistogramWord.count, 1)
        if kind == .timer {
            words.add(start + HistogramWord.sum, UInt64(clamping: Int64(value.isFinite ? value : 0)))
        } else {
            addDouble(at: start + HistogramWord.sum, value)
        }
    }

    private func addDouble(at word: Int, _ amount: Double) {
        while true {
            let old = words[word]
            if words.compareExchange(word, expected: old, desired: (Double(bitPattern: old) + amount).bitPattern) { return }
        }
    }

    /// Zeroes worker `slot`'s gauge values: its process ended, or a new one takes the slot.
    func clearGauges(of slot: Int) {
        guard slot >= 0, slot < processes else { return }
        for index in 0..<capacity where words.acquire(record(index)) == State.ready && storedKind(index) == .gauge {
            words[record(index) + Self.valuesStart + slot] = 0
        }
    }

    // MARK: - Reading (the Prometheus endpoint)

    /// How many series have a record.
    var used: Int { (0..<capacity).filter { words.acquire(record($0)) == State.ready }.count }

    /// Every series in the Prometheus text format, grouped by name (records
    /// of the same series added together), in the order first made.
    func prometheus() -> String {
        var families: [(name: String, kind: Kind, series: [(labels: String, values: [Double])])] = []
        var familyIndex: [String: Int] = [:]
        for index in 0..<capacity where words.acquire(record(index)) == State.ready {
            guard let kind = storedKind(index) else { continue }
            let key = key(of: index)
            let split = key.firstIndex(of: 0) ?? key.endIndex
            let name = String(decoding: key[..<split], as: UTF8.self)
            let labels = split < key.endIndex ? String(decoding: key[(split + 1)...], as: UTF8.self) : ""
            let values = self.values(index, kind: kind)
            let family = familyIndex[name] ?? {
                families.append((name, kind, []))
                familyIndex[name] = families.count - 1
                return families.count - 1
            }()
            guard families[family].kind == kind else { continue }
            if let same = families[family].series.firstIndex(where: { $0.labels == labels }) {
                families[family].series[same].values = zip(families[family].series[same].values, values).map { $0 + $1 }
            } else {
                families[family].series.append((labels, values))
            }
        }
        var text = ""
        for family in families {
            text += "# TYPE \(family.name) \(family.kind.prometheusType)\n"
            for series in family.series {
                switch family.kind {
                case .counter, .gauge:
                    text += "\(family.name)\(Self.braced(series.labels)) \(Self.number(series.values[0]))\n"
                case .timer, .histogram:
                    var cumulative = 0.0
                    for (bucket, bound) in (Self.bucketBounds.map(Self.number) + ["+Inf"]).enumerated() {
                        cumulative += series.values[bucket]
                        let labels = series.labels.isEmpty ? "le=\"\(bound)\"" : series.labels + ",le=\"\(bound)\""
                        text += "\(family.name)_bucket{\(labels)} \(Self.number(cumulative))\n"
                    }
                    text += "\(family.name)_sum\(Self.braced(series.labels)) \(Self.number(series.values[HistogramWord.sum]))\n"
                    text += "\(family.name)_count\(Self.braced(series.labels)) \(Self.number(series.values[HistogramWord.count]))\n"
                }
            }
        }
        return text
    }

    /// A counter's or gauge's value (one element), or a histogram's words as numbers.
    private func values(_ index: Int, kind: Kind) -> [Double] {
        let start = record(index) + Self.valuesStart
        switch kind {
        case .counter: return [Double(words[start])]
        case .gauge: return [(0..<processes).reduce(0.0) { $0 + Double(bitPattern: words[start + $1]) }]
        case .timer, .histogram:
            var values = (0..<Self.histogramWords).map { Double(words[start + $0]) }
            values[HistogramWord.sum] = kind == .timer
                ? Double(words[start + HistogramWord.sum]) / 1e9 : Double(bitPattern: words[start + HistogramWord.sum])
            return values
        }
    }

    private static func braced(_ labels: String) -> String { labels.isEmpty ? "" : "{\(labels)}" }

    /// A sample value as Prometheus reads it: integers without a fraction.
    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}
