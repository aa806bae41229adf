import Foundation
import Synchronization
import Testing
@testable import TallyStore

/// Reads wait for the projections of every batch answered before them, and fail rather than hang when the
/// projections cannot be brought up to the answers.
@Suite struct ProjectionsBarrierTests {
    /// Runs `awaitWritten` on another thread; the result arrives in the returned box.
    private final class Reader: Sendable {
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<Result<Void, StoreError>?>(nil)

        init(_ barrier: ProjectionsBarrier) {
            Thread.detachNewThread { [self] in
                let result: Result<Void, StoreError>
                do throws(StoreError) { try barrier.awaitWritten(); result = .success(()) } catch { result = .failure(error) }
                outcome.withLock { $0 = result }
                done.signal()
            }
        }

        /// Whether the read ended within `seconds`, and how.
        func ended(within seconds: Double) -> Result<Void, StoreError>? {
            guard done.wait(timeout: .now() + seconds) == .success else { return nil }
            return outcome.withLock { $0 }
        }
    }

    @Test func aReadWaitsForTheProjectionsOfEveryAnsweredBatch() throws {
        let barrier = ProjectionsBarrier()
        try barrier.awaitWritten()  // nothing answered ahead: at once
        let first = barrier.answering()
        let second = barrier.answering()
        let reader = Reader(barrier)
        #expect(reader.ended(within: 0.1) == nil, "the projections of both batches are still to be written")
        barrier.written(first)
        #expect(reader.ended(within: 0.1) == nil, "the second batch's are not written yet")
        barrier.written(second)
        let outcome = try #require(reader.ended(within: 5))
        #expect((try? outcome.get()) != nil)
        // A batch answered after a read began does not hold it back.
        _ = barrier.answering()
        let late = Reader(barrier)
        #expect(late.ended(within: 0.1) == nil)
        barrier.caughtUp()
        #expect(late.ended(within: 5).map { (try? $0.get()) != nil } == true)
        try barrier.awaitWritten()
    }

    @Test func readsFailAtOnceWhileTheProjectionsCannotCatchUpAndPassOnceTheyHave() throws {
        let barrier = ProjectionsBarrier(waitMax: 30)
        _ = barrier.answering()
        let reader = Reader(barrier)
        #expect(reader.ended(within: 0.1) == nil)
        barrier.failed(StoreError(.storageFull, "the projections' map is full"))
        let outcome = try #require(reader.ended(within: 5), "a failed replay ends the wait, long before waitMax")
        #expect(throws: StoreError.self) { try outcome.get() }
        #expect(throws: StoreError.self) { try barrier.awaitWritten() }
        barrier.caughtUp()
        try barrier.awaitWritten()
    }

    @Test func aReadGivesUpAfterWaitMax() {
        let barrier = ProjectionsBarrier(waitMax: 0.05)
        _ = barrier.answering()
        #expect(throws: StoreError.self) { try barrier.awaitWritten() }
    }
}
