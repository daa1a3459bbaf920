// A tracer for the lab's tests (GIMLET_LAB_TRACER=memory): W3C trace
// context in and out (traceparent), every finished span kept in memory and
// listed by GET /-/spans, one JSON object per line. What the tests check is
// that the host and the session layer start, name, nest and propagate spans;
// a real app bootstraps an OpenTelemetry tracer (swift-otel) instead.
import Foundation
import Synchronization
import Tracing

/// The ids of a lab span, kept in its context.
struct LabSpanIDs: Sendable {
    var traceID: String
    var spanID: String
    var parentSpanID: String?
}

enum LabSpanKey: InstrumentationContextKey {
    typealias Value = LabSpanIDs
}

final class LabTracer: Tracer {
    typealias Span = LabSpan

    /// Finished spans, as JSON lines, the oldest first (the last 1,000).
    let finished = Mutex<[String]>([])

    func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> InstrumentationContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> LabSpan {
        var context = context()
        let parent = context[LabSpanKey.self]
        let ids = LabSpanIDs(traceID: parent?.traceID ?? Self.hex(bytes: 16), spanID: Self.hex(bytes: 8),
                             parentSpanID: parent?.spanID)
        context[LabSpanKey.self] = ids
        return LabSpan(name: operationName, kind: kind, context: context, ids: ids, tracer: self)
    }

    func forceFlush() {}

    func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout InstrumentationContext,
                                              using extractor: Extract) where Extract.Carrier == Carrier {
        guard let value = extractor.extract(key: "traceparent", from: carrier) else { return }
        let parts = value.split(separator: "-")
        guard parts.count == 4, parts[1].count == 32, parts[2].count == 16 else { return }
        context[LabSpanKey.self] = LabSpanIDs(traceID: String(parts[1]), spanID: String(parts[2]), parentSpanID: nil)
    }

    func inject<Carrier, Inject: Injector>(_ context: InstrumentationContext, into carrier: inout Carrier,
                                           using injector: Inject) where Inject.Carrier == Carrier {
        guard let ids = context[LabSpanKey.self] else { return }
        injector.inject("00-\(ids.traceID)-\(ids.spanID)-01", forKey: "traceparent", into: &carrier)
    }

    func record(_ line: String) {
        finished.withLock { lines in
            lines.append(line)
            if lines.count > 1000 { lines.removeFirst(lines.count - 1000) }
        }
    }

    static func hex(bytes: Int) -> String {
        (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }
}

final class LabSpan: Tracing.Span {
    private struct State {
        var name: String
        var attributes = SpanAttributes()
        var error = false
        var ended = false
    }

    let context: InstrumentationContext
    private let kind: SpanKind
    private let ids: LabSpanIDs
    private let tracer: LabTracer
    private let state: Mutex<State>

    init(name: String, kind: SpanKind, context: InstrumentationContext, ids: LabSpanIDs, tracer: LabTracer) {
        self.kind = kind
        self.context = context
        self.ids = ids
        self.tracer = tracer
        state = Mutex(State(name: name))
    }

    var operationName: String {
        get { state.withLock { $0.name } }
        set { state.withLock { $0.name = newValue } }
    }

    var attributes: SpanAttributes {
        get { state.withLock { $0.attributes } }
        set { state.withLock { $0.attributes = newValue } }
    }

    var isRecording: Bool { !state.withLock { $0.ended } }

    func setStatus(_ status: SpanStatus) {
        if status.code == .error { state.withLock { $0.error = true } }
    }

    func addEvent(_ event: SpanEvent) {}
    func addLink(_ link: SpanLink) {}

    func recordError<Instant: TracerInstant>(_ error: Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {
        state.withLock { $0.error = true }
    }

    func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        let state = state.withLock { state -> State in
            state.ended = true
            return state
        }
        var attributes: [String: String] = [:]
        state.attributes.forEach { key, value in
            switch value {
            case .string(let text): attributes[key] = text
            case .int64(let number): attributes[key] = "\(number) (int)"
            default: attributes[key] = "\(value)"
            }
        }
        let object: [String: Any] = [
            "name": state.name, "kind": "\(kind)", "trace_id": ids.traceID, "span_id": ids.spanID,
            "parent_span_id": ids.parentSpanID ?? "", "error": state.error, "attributes": attributes,
        ]
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        tracer.record(String(decoding: data, as: UTF8.self))
    }
}
