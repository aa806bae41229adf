import Foundation
import Synchronization
import Testing
@testable import TallyServer

/// How completed commands reach a connection's event loop: one scheduled task per burst of answers, none
/// lost or reordered, whichever thread posts and whenever the task runs.
@Suite struct AnswerMailboxTests {
    @Test func onlyTheFirstAnswerOfABurstSchedulesATask() {
        let mailbox = AnswerMailbox<Int>()
        #expect(mailbox.post(1))
        #expect(!mailbox.post(2))
        #expect(!mailbox.post(3))
        #expect(mailbox.takeAll() == [1, 2, 3])
        #expect(mailbox.takeAll().isEmpty)
        #expect(mailbox.post(4), "an answer after the task took the others schedules a new one")
        #expect(mailbox.takeAll() == [4])
    }

    /// Four threads post 5,000 answers each while a consumer thread, standing in for the event loop, runs one
    /// "task" (`takeAll`) for every `post` that asked for one, concurrently with the posting: every answer
    /// arrives exactly once, each thread's in the order it posted them, and none is left without a task.
    @Test func concurrentPostersLoseNothingAndKeepTheirOrder() {
        let mailbox = AnswerMailbox<Int>()
        let tasks = DispatchSemaphore(value: 0)
        let posters = 4, perPoster = 5_000, total = posters * perPoster
        let received = Mutex<[Int]>([])
        let consumerDone = DispatchSemaphore(value: 0)
        Thread {
            var taken: [Int] = []
            // At most one task per answer; a lost task shows as a wait that times out.
            while taken.count < total, tasks.wait(timeout: .now() + 10) == .success {
                taken += mailbox.takeAll()
            }
            received.withLock { $0 = taken }
            consumerDone.signal()
        }.start()
        DispatchQueue.concurrentPerform(iterations: posters) { poster in
            for sequence in 0..<perPoster where mailbox.post(poster * perPoster + sequence) {
                tasks.signal()
            }
        }
        #expect(consumerDone.wait(timeout: .now() + 30) == .success)
        let all = received.withLock { $0 }
        #expect(all.count == total)
        #expect(Set(all).count == all.count)
        for poster in 0..<posters {
            let mine = all.filter { $0 / perPoster == poster }
            #expect(mine == mine.sorted(), "poster \(poster)'s answers in the order posted")
        }
        #expect(mailbox.takeAll().isEmpty)
    }
}
