import Dispatch
import Foundation
@testable import GimletBackendSupport
import Synchronization
import Testing

/// The one pool every backend and the cookie MACs use.
@Suite struct PoolBehaviour {
    final class Member {
        let number: Int
        init(_ number: Int) { self.number = number }
    }

    /// A pool whose members are numbered in the order they were made.
    func numbered(capacity: Int, waitLimit: Duration = .seconds(5)) -> Pool<Member> {
        let made = Mutex(0)
        return Pool(capacity: capacity, waitLimit: waitLimit) {
            Member(made.withLock { count in count += 1; return count })
        }
    }

    @Test func aMemberGivenBackIsTakenAgain() throws {
        let pool = numbered(capacity: 4)
        let first = try pool.take()
        #expect(!first.reused)
        pool.giveBack(first)
        let again = try pool.take()
        #expect(again.reused && again.member === first.member)
        #expect(pool.statistics == PoolStatistics(open: 1, idle: 0, created: 1, discarded: 0, waits: 0))
        pool.giveBack(again)
        #expect(pool.statistics.idle == 1 && pool.statistics.inUse == 0)
    }

    @Test func beyondCapacityATakeWaitsForAMemberToComeBack() throws {
        let pool = numbered(capacity: 2)
        let a = try pool.take(), b = try pool.take()
        let taken = DispatchSemaphore(value: 0)
        let third = Mutex<Int?>(nil)
        Thread {
            if let lease = try? pool.take() { third.withLock { $0 = lease.member.number } }
            taken.signal()
        }.start()
        #expect(taken.wait(timeout: .now() + 0.3) == .timedOut, "two members are out: the third take waits")
        pool.giveBack(b)
        #expect(taken.wait(timeout: .now() + 5) == .success)
        #expect(third.withLock { $0 } == b.member.number, "it got the member given back, not a new one")
        #expect(pool.statistics.created == 2 && pool.statistics.waits == 1)
        pool.giveBack(a)
    }

    @Test func aTakeGivesUpAfterItsWaitLimit() throws {
        let pool = numbered(capacity: 1, waitLimit: .milliseconds(100))
        let held = try pool.take()
        let error = #expect(throws: PoolExhausted.self) { try pool.take() }
        #expect(error?.description.contains("all 1 pooled connections") == true)
        pool.giveBack(held)
        #expect(try pool.take().reused, "after a timeout the pool still works")
    }

    @Test func aFailedMakeReturnsItsPermit() throws {
        struct Refused: Error {}
        let fail = Mutex(true)
        let pool = Pool<Member>(capacity: 1, waitLimit: .milliseconds(100)) {
            if fail.withLock({ $0 }) { throw Refused() }
            return Member(1)
        }
        #expect(throws: Refused.self) { try pool.take() }
        fail.withLock { $0 = false }
        #expect(try pool.take().member.number == 1, "the failed make did not use up the only permit")
    }

    /// What broke one connection (a restarted server) broke those made
    /// before it: the idle ones go at once, the ones out when they come back;
    /// those made after stay.
    @Test func discardingAndOlderDropsEveryMemberMadeBefore() throws {
        let pool = numbered(capacity: 8)
        let one = try pool.take(), two = try pool.take(), three = try pool.take()
        pool.giveBack(one)
        let four = try pool.take()  // `one` again
        #expect(four.member === one.member)
        let five = try pool.take()  // made now: number 4
        pool.giveBack(three)        // idle
        pool.discard(two, andOlder: true)
        var statistics = pool.statistics
        #expect(statistics.discarded == 2, "`two` and the idle `three`: \(statistics)")
        #expect(statistics.idle == 0 && statistics.open == 2)
        pool.giveBack(four)  // made before `two`: dropped on return
        pool.giveBack(five)  // made after: kept
        statistics = pool.statistics
        #expect(statistics == PoolStatistics(open: 1, idle: 1, created: 4, discarded: 3, waits: 0), "\(statistics)")
        #expect(try pool.take().member === five.member)
    }

    /// A failover announced: every member made so far goes, idle now and
    /// out on return; members made after stay.
    @Test func retiringDropsEveryMemberMadeSoFar() throws {
        let pool = numbered(capacity: 2, waitLimit: .seconds(10))
        let one = try pool.take(), two = try pool.take()
        pool.giveBack(one)
        pool.retireAll()
        #expect(pool.statistics == PoolStatistics(open: 1, idle: 0, created: 2, discarded: 1, waits: 0))
        pool.giveBack(two)
        #expect(pool.statistics == PoolStatistics(open: 0, idle: 0, created: 2, discarded: 2, waits: 0))
        let three = try pool.take()
        #expect(three.member.number == 3 && !three.reused)
        pool.giveBack(three)
        #expect(try pool.take().member === three.member, "made after the retiring: kept")
    }

    @Test func plainDiscardDropsOnlyThatMember() throws {
        let pool = numbered(capacity: 4)
        let one = try pool.take(), two = try pool.take()
        pool.giveBack(one)
        pool.discard(two)
        #expect(pool.statistics == PoolStatistics(open: 1, idle: 1, created: 2, discarded: 1, waits: 0))
    }

    @Test func connectionPoolsAddToTheProcessTotals() throws {
        let open = PoolTotals.open.load(ordering: .relaxed)
        let created = PoolTotals.created.load(ordering: .relaxed)
        do {
            let pool = Pool(capacity: 2, countsAsConnections: true) { Member(0) }
            let lease = try pool.take()
            #expect(PoolTotals.open.load(ordering: .relaxed) >= open + 1)
            #expect(PoolTotals.created.load(ordering: .relaxed) >= created + 1)
            pool.discard(lease)
            #expect(PoolTotals.discarded.load(ordering: .relaxed) >= 1)
        }
    }

    struct Lost: Error { let sent: Bool }
    struct Refused: Error {}

    /// The connection policy every backend shares (`Pool.exchange`).
    @Test func anExchangeKeepsDropsOrRetriesAsItsFaultSays() throws {
        let pool = numbered(capacity: 4)
        // Three idle members, 1 to 3 (3 given back last, taken first).
        let held = try (0..<3).map { _ in try pool.take() }
        for lease in held { pool.giveBack(lease) }

        // A refusal: the member is sound and goes back.
        #expect(throws: Refused.self) {
            try pool.exchange({ _ in throw Refused() }) { _, _ in .sound }
        }
        #expect(pool.statistics.idle == 3 && pool.statistics.discarded == 0)

        // Died while idle before anything was sent: dropped with every older
        // member, and the exchange runs again on a new one (4).
        var tried: [Int] = []
        let answer = try pool.exchange({ member -> Int in
            tried.append(member.number)
            if member.number != 4 { throw Lost(sent: false) }
            return member.number
        }) { error, reused in
            let sent = (error as? Lost)?.sent ?? true
            return .broken(andOlder: reused && !sent, retry: reused && !sent)
        }
        #expect(tried == [3, 4] && answer == 4, "the first try's member and every older one went: \(tried)")
        #expect(pool.statistics.idle == 1 && pool.statistics.discarded == 3)

        // Lost after sending: dropped alone, not retried, the error thrown.
        var attempts = 0
        #expect(throws: Lost.self) {
            try pool.exchange({ _ -> Int in attempts += 1; throw Lost(sent: true) }) { _, _ in .broken(andOlder: false, retry: false) }
        }
        #expect(attempts == 1 && pool.statistics.idle == 0 && pool.statistics.discarded == 4)

        // A reused member that the check finds dead is dropped before use.
        let fresh = try pool.take()
        pool.giveBack(fresh)
        var used: [Int] = []
        try pool.exchange(usable: { $0.number != fresh.member.number }, { member in used.append(member.number) }) { _, _ in .sound }
        #expect(used.count == 1 && used != [fresh.member.number], "the dead member was never handed to the exchange")
    }
}
