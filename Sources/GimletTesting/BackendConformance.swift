import Gimlet

/// The behaviour every `SessionBackend` must have, as named checks that a
/// test suite runs against a fresh backend each.
///
/// ```swift
/// @Test(arguments: BackendConformance.checks.map(\.name))
/// func conformance(_ name: String) throws {
///     let clock = ManualClock()
///     let harness = BackendConformance.Harness(backend: try MyBackend(clock: clock)) { clock.advance(by: $0) }
///     try BackendConformance.run(name, on: harness)
/// }
/// ```
public enum BackendConformance {
    /// A backend under test and a way to let time pass for it.
    public struct Harness {
        /// The backend the checks run on.
        public let backend: any SessionBackend
        /// Lets `seconds` pass (a manual clock, or real sleeping for a server that keeps its own time).
        public let advance: (Int64) -> Void

        /// A harness for `backend`, whose time `advance` moves on.
        public init(backend: any SessionBackend, advance: @escaping (Int64) -> Void) {
            self.backend = backend
            self.advance = advance
        }
    }

    /// A check that failed, with what was expected and what came.
    public struct Failure: Error, CustomStringConvertible {
        /// The check, what was expected and what came.
        public let description: String
    }

    /// One named check.
    public struct Check: Sendable {
        /// The check's name, for a parameterised test.
        public let name: String
        let body: @Sendable (Harness) throws -> Void
    }

    /// Runs the check called `name`.
    ///
    /// - Throws: ``Failure`` when the backend misbehaves, or the backend's own error.
    public static func run(_ name: String, on harness: Harness) throws {
        guard let check = checks.first(where: { $0.name == name }) else {
            throw Failure(description: "no conformance check named \(name)")
        }
        try check.body(harness)
    }

    static func expect<T: Equatable>(_ actual: T, _ expected: T, _ what: String) throws {
        guard actual == expected else { throw Failure(description: "\(what): expected \(expected), got \(actual)") }
    }

    static let day: Int64 = 86_400

    /// Every check.
    public static let checks: [Check] = [
        Check(name: "set, get and remove per key") { h in
            let id = SessionID.random()
            try h.backend.commit([SessionChange(id: id, upserts: ["a": 1, "b": "two"], timeToLive: day)])
            try expect(try h.backend.load([id]), [id: ["a": 1, "b": "two"]], "after setting a and b")
            try h.backend.commit([SessionChange(id: id, upserts: ["a": 3], removals: ["b"], timeToLive: day)])
            try expect(try h.backend.load([id]), [id: ["a": 3]], "after changing a and removing b")
            try h.backend.commit([SessionChange(id: id, removals: ["a"], timeToLive: day)])
            try expect(try h.backend.load([id]), [:], "after removing the last key")
        },
        Check(name: "both channels in one load, missing ids left out") { h in
            let (p, n, missing) = (SessionID.random(), SessionID.random(), SessionID.random())
            try h.backend.commit([
                SessionChange(id: p, upserts: ["user": "frodo"], timeToLive: day),
                SessionChange(id: n, upserts: ["cart": ["ring"]], timeToLive: day),
            ])
            try expect(try h.backend.load([p, n]), [p: ["user": "frodo"], n: ["cart": ["ring"]]], "two ids")
            try expect(try h.backend.load([missing, p]), [p: ["user": "frodo"]], "a missing and a present id")
            try expect(try h.backend.load([missing]), [:], "a missing id")
            try expect(try h.backend.load([]), [:], "no ids")
        },
        Check(name: "concurrent changes to different keys both stay") { h in
            let id = SessionID.random()
            try h.backend.commit([SessionChange(id: id, upserts: ["a": 1], timeToLive: day)])
            try h.backend.commit([SessionChange(id: id, upserts: ["b": 2], timeToLive: day)])
            try expect(try h.backend.load([id]), [id: ["a": 1, "b": 2]], "per-key writes")
        },
        Check(name: "compare-and-set: a stale read-modify-write stores nothing") { h in
            let (id, other) = (SessionID.random(), SessionID.random())
            try h.backend.commit([SessionChange(id: id, upserts: ["n": 1, "list": ["a"], "keep": "x"], timeToLive: day)])
            // Read n == 1, wrote 2: applies.
            try h.backend.commit([SessionChange(id: id, upserts: ["n": 2], timeToLive: day, expected: ["n": .value(1)])])
            try expect(try h.backend.load([id]), [id: ["n": 2, "list": ["a"], "keep": "x"]], "a current read applies")
            // Read n == 1 too, but it is 2 now: nothing of the commit applies, in either change.
            do {
                try h.backend.commit([
                    SessionChange(id: other, upserts: ["o": 1], timeToLive: day),
                    SessionChange(id: id, upserts: ["n": 2, "fresh": true], removals: ["keep"], timeToLive: day,
                                  expected: ["n": .value(1)]),
                ])
                throw Failure(description: "a commit expecting n == 1 applied while n == 2")
            } catch let conflict as SessionConflictError {
                try expect(conflict.keys, ["n"], "the conflicting key")
            }
            try expect(try h.backend.load([id, other]), [id: ["n": 2, "list": ["a"], "keep": "x"]], "after the conflict")
            // Expected absent: applies only while absent.
            try h.backend.commit([SessionChange(id: id, upserts: ["token": "t1"], timeToLive: day, expected: ["token": .absent])])
            do {
                try h.backend.commit([SessionChange(id: id, upserts: ["token": "t2"], timeToLive: day, expected: ["token": .absent])])
                throw Failure(description: "a commit expecting token absent applied while it was present")
            } catch is SessionConflictError {}
            // A removal checked against a list value; a key expected on an id that does not exist.
            try h.backend.commit([SessionChange(id: id, removals: ["list"], timeToLive: day, expected: ["list": .value(["a"])])])
            try expect(try h.backend.load([id]), [id: ["n": 2, "keep": "x", "token": "t1"]], "after the checked removal")
            try h.backend.commit([SessionChange(id: other, upserts: ["o": 2], timeToLive: day, expected: ["o": .absent])])
            try expect(try h.backend.load([other]), [other: ["o": 2]], "absent on a new id")
            // Blind writes never conflict.
            try h.backend.commit([SessionChange(id: id, upserts: ["n": 7], timeToLive: day)])
            try expect(try h.backend.load([id])[id]?["n"], 7, "a blind write")
        },
        Check(name: "compare-and-set: an expired key counts as absent") { h in
            let id = SessionID.random()
            try h.backend.commit([SessionChange(id: id, upserts: ["n": 1], timeToLive: 1)])
            h.advance(2)
            try h.backend.commit([SessionChange(id: id, upserts: ["n": 1], timeToLive: day, expected: ["n": .absent])])
            try expect(try h.backend.load([id]), [id: ["n": 1]], "re-created after expiry")
        },
        Check(name: "remove all (invalidate)") { h in
            let id = SessionID.random()
            try h.backend.commit([SessionChange(id: id, upserts: ["a": 1, "b": 2], timeToLive: day)])
            try h.backend.commit([SessionChange(id: id, removeAll: true, timeToLive: day)])
            try expect(try h.backend.load([id]), [:], "after removing everything")
        },
        Check(name: "expiry, and renewal") { h in
            let (short, renewed) = (SessionID.random(), SessionID.random())
            try h.backend.commit([
                SessionChange(id: short, upserts: ["a": 1], timeToLive: 1),
                SessionChange(id: renewed, upserts: ["b": 2], timeToLive: 1),
            ])
            try expect(try h.backend.load([short]), [short: ["a": 1]], "before expiry")
            try h.backend.commit([SessionChange(id: renewed, timeToLive: 60)])
            h.advance(2)
            try expect(try h.backend.load([short, renewed]), [renewed: ["b": 2]], "after expiry (renewed kept)")
            // Writing to an expired channel does not bring its old keys back.
            try h.backend.commit([SessionChange(id: short, upserts: ["c": 3], timeToLive: 60)])
            try expect(try h.backend.load([short]), [short: ["c": 3]], "a new key on an expired channel")
        },
        Check(name: "large values") { h in
            let id = SessionID.random()
            let big = SessionValue.string(String(repeating: "x", count: 1 << 20))
            let list = SessionValue.array((0..<5000).map { .int($0) })
            try h.backend.commit([SessionChange(id: id, upserts: ["big": big, "list": list], timeToLive: day)])
            try expect(try h.backend.load([id]), [id: ["big": big, "list": list]], "1 MiB string and 5000-element list")
        },
        Check(name: "unicode keys and values") { h in
            let id = SessionID.random()
            let values: [String: SessionValue] = [
                "ключ": "значение", "🔑": "🍸", "tab\tnew\nline": "quote\" back\\slash", "": "empty key",
                "nul\u{0}inside": "nul\u{0}value", "日本": ["ネスト": ["深い": true]],
            ]
            try h.backend.commit([SessionChange(id: id, upserts: values, timeToLive: day)])
            try expect(try h.backend.load([id]), [id: values], "unicode")
        },
        Check(name: "many keys") { h in
            let id = SessionID.random()
            var values: [String: SessionValue] = [:]
            for index in 0..<1000 { values["key-\(index)"] = .int(index) }
            try h.backend.commit([SessionChange(id: id, upserts: values, timeToLive: day)])
            try expect(try h.backend.load([id]), [id: values], "1000 keys")
            let removals = Set((0..<500).map { "key-\($0)" })
            try h.backend.commit([SessionChange(id: id, removals: removals, timeToLive: day)])
            try expect(try h.backend.load([id])[id]?.count ?? 0, 500, "keys left after removing 500")
        },
        Check(name: "an index lists its channels' keys and forgets expired ones") { h in
            let (index, a, b, gone, other) = (SessionID.random(), SessionID.random(), SessionID.random(), SessionID.random(), SessionID.random())
            try h.backend.commit([
                SessionChange(id: a, upserts: ["_user_": "42", "cart": ["ring"]], timeToLive: day),
                SessionChange(id: b, upserts: ["_user_": "42"], timeToLive: day),
                SessionChange(id: gone, upserts: ["_user_": "42"], timeToLive: 1),
                SessionChange(id: other, upserts: ["_user_": "7"], timeToLive: day),
                SessionChange(id: index, upserts: [a.hex: "p", b.hex: "n", gone.hex: "p"], timeToLive: day),
            ])
            try expect(try h.backend.loadIndexed(index, keys: ["_user_", "absent"]),
                       [a: ["_user_": "42"], b: ["_user_": "42"], gone: ["_user_": "42"]], "the listed channels, the keys asked")
            h.advance(2)
            try expect(try h.backend.loadIndexed(index, keys: ["_user_"]), [a: ["_user_": "42"], b: ["_user_": "42"]],
                       "an expired channel is left out")
            try expect(Set(try h.backend.load([index])[index]?.keys.map { $0 } ?? []), [a.hex, b.hex],
                       "its entry is gone from the index")
            try expect(try h.backend.loadIndexed(SessionID.random(), keys: ["_user_"]), [:], "an index that does not exist")
        },
        Check(name: "deleting what an index lists, but the channels kept") { h in
            let (index, a, b, c, gone, other) = (SessionID.random(), SessionID.random(), SessionID.random(), SessionID.random(),
                                                 SessionID.random(), SessionID.random())
            try h.backend.commit([
                SessionChange(id: a, upserts: ["_user_": "42", "x": 1], timeToLive: day),
                SessionChange(id: b, upserts: ["_user_": "42"], timeToLive: day),
                SessionChange(id: c, upserts: ["_user_": "42"], timeToLive: day),
                SessionChange(id: gone, upserts: ["_user_": "42"], timeToLive: 1),
                SessionChange(id: other, upserts: ["_user_": "7"], timeToLive: day),
                SessionChange(id: index, upserts: [a.hex: "p", b.hex: "n", c.hex: "p", gone.hex: "p"], timeToLive: day),
            ])
            h.advance(2)
            try expect(try h.backend.deleteIndexed(index, keeping: [c]), [a: "p", b: "n"],
                       "the deleted entries of channels still stored")
            try expect(try h.backend.load([a, b, c, other]), [c: ["_user_": "42"], other: ["_user_": "7"]],
                       "the kept channel and another user's stay")
            try expect(try h.backend.load([index]), [index: [c.hex: "p"]], "the index lists the kept channel only")
            try expect(try h.backend.deleteIndexed(index, keeping: []), [c: "p"], "then the last one")
            try expect(try h.backend.load([index, c]), [:], "nothing left")
            try expect(try h.backend.deleteIndexed(index, keeping: []), [:], "an empty index")
        },
        Check(name: "counters count, expire with their window, and reset") { h in
            let (a, b) = (SessionID.random(), SessionID.random())
            try expect(try h.backend.increment([a, b], window: 3).map(\.count), [1, 1], "new counters start at 1")
            try expect(try h.backend.increment([a], window: 3).map(\.count), [2], "and count")
            let left = try h.backend.increment([a, b], window: 3)
            try expect(left.map(\.count), [3, 2], "each its own")
            try expect(left.allSatisfy { (1...3).contains($0.secondsLeft) }, true, "seconds left within the window: \(left)")
            h.advance(1)
            try expect(try h.backend.increment([a], window: 100).first.map { $0.secondsLeft <= 3 }, true,
                       "counting does not extend a counter")
            h.advance(3)
            try expect(try h.backend.increment([a], window: 3).map(\.count), [1], "an expired counter starts again")
            try expect(try h.backend.load([a])[a]?[SessionCounter.key], .int(1), "stored as its channel's key n")
            try h.backend.commit([SessionChange(id: a, removeAll: true, timeToLive: 3)])
            try expect(try h.backend.increment([a], window: 3).map(\.count), [1], "removing its channel resets it")
        },
    ]
}
