import Synchronization

/// Answers completed on another thread that wait for one connection's event loop.
///
/// The store completes a batch's commands one after another on its flusher thread, between the log's
/// `fdatasync` and the projections. Scheduling a task on the connection's loop for each of them cost the
/// flusher a closure, a lock and often a wake-up of the loop per answer, and the loop a task per answer.
/// Instead each answer is posted here; only the one that finds the mailbox empty schedules a task, and that
/// task takes every answer posted until it runs.
///
/// Invariant: while the mailbox holds answers, a task that will take them is scheduled and has not taken
/// them yet (`takeAll` empties the mailbox under the same lock that `post` appends under).
final class AnswerMailbox<Answer: Sendable>: Sendable {
    private let waiting = Mutex<[Answer]>([])

    init() {}

    /// Adds an answer. Returns true when the mailbox was empty: the caller must then schedule a task that
    /// calls `takeAll`.
    func post(_ answer: consuming sending Answer) -> Bool {
        // Moved into the array: appending the parameter itself copied it (a retain and a release of everything
        // in the answer), as a parameter is only lent to the closure below.
        var posted: Answer? = consume answer
        return waiting.withLock { answers in
            if let moved = posted.take() { answers.append(consume moved) }
            return answers.count == 1
        }
    }

    /// Every answer posted so far, oldest first; the mailbox is empty afterwards.
    func takeAll() -> [Answer] {
        var taken: [Answer] = []
        takeAll(into: &taken)
        return taken
    }

    /// The same into `taken` (emptied first), whose storage the mailbox keeps for the next answers: its array
    /// keeps its capacity from round to round instead of growing from empty again each time.
    func takeAll(into taken: inout [Answer]) {
        taken.removeAll(keepingCapacity: true)
        waiting.withLock { answers in swap(&taken, &answers) }
    }
}
