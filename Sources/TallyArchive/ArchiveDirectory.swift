import Foundation
import Glibc

/// The files of one archive directory and how they are named, listed, written and read.
///
/// Names carry the sequences zero-padded to 20 digits so that they sort in log order:
/// `segment-<first>-<last>.tseg` and `checkpoint-<sequence>.tckp`. A file is written under a name
/// starting with `.tmp-`, fsynced, renamed into place and the directory fsynced, so a name without that
/// prefix always holds a complete file; leftovers of an interrupted write are ignored and removed.
public struct ArchiveDirectory: Sendable {
    public let path: String

    /// A segment file as its name describes it (the header is checked when the file is read).
    public struct SegmentEntry: Sendable, Hashable {
        public var name: String
        public var firstSequence: UInt64
        public var lastSequence: UInt64

        public init(first: UInt64, last: UInt64) {
            name = ArchiveDirectory.segmentName(first: first, last: last)
            firstSequence = first
            lastSequence = last
        }

        init(name: String, firstSequence: UInt64, lastSequence: UInt64) {
            self.name = name
            self.firstSequence = firstSequence
            self.lastSequence = lastSequence
        }
    }

    public struct CheckpointEntry: Sendable, Hashable {
        public var name: String
        public var sequence: UInt64

        public init(sequence: UInt64) {
            name = ArchiveDirectory.checkpointName(sequence: sequence)
            self.sequence = sequence
        }

        init(name: String, sequence: UInt64) {
            self.name = name
            self.sequence = sequence
        }
    }

    public init(path: String) {
        self.path = path
    }

    /// The default place: `<data-directory>/archive`.
    public static func defaultPath(dataDirectory: String) -> String { dataDirectory + "/archive" }

    public func create() throws(ArchiveError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw ArchiveError(.io, file: path, "cannot create the archive directory: \(error)")
        }
    }

    public static func segmentName(first: UInt64, last: UInt64) -> String {
        "segment-\(padded(first))-\(padded(last)).tseg"
    }

    public static func checkpointName(sequence: UInt64) -> String { "checkpoint-\(padded(sequence)).tckp" }

    /// Segments in sequence order and checkpoints in sequence order. A missing directory is empty.
    public func list() throws(ArchiveError) -> (segments: [SegmentEntry], checkpoints: [CheckpointEntry]) {
        guard FileManager.default.fileExists(atPath: path) else { return ([], []) }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw ArchiveError(.io, file: path, "cannot list the archive directory: \(error)")
        }
        var segments: [SegmentEntry] = []
        var checkpoints: [CheckpointEntry] = []
        for name in names {
            let parts = name.split(separator: ".").first?.split(separator: "-") ?? []
            if name.hasSuffix(".tseg"), parts.count == 3, parts[0] == "segment", let first = UInt64(parts[1]), let last = UInt64(parts[2]) {
                segments.append(SegmentEntry(name: name, firstSequence: first, lastSequence: last))
            } else if name.hasSuffix(".tckp"), parts.count == 2, parts[0] == "checkpoint", let sequence = UInt64(parts[1]) {
                checkpoints.append(CheckpointEntry(name: name, sequence: sequence))
            }
        }
        segments.sort { ($0.firstSequence, $0.lastSequence) < ($1.firstSequence, $1.lastSequence) }
        checkpoints.sort { $0.sequence < $1.sequence }
        return (segments, checkpoints)
    }

    public func filePath(_ name: String) -> String { path + "/" + name }

    /// The whole file, read straight into the array (no `Data` and second copy in between).
    public func read(_ name: String) throws(ArchiveError) -> [UInt8] {
        let path = filePath(name)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Self.posixError(path, "cannot open") }
        defer { _ = close(fd) }  // read-only: a failed close loses nothing
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw Self.posixError(path, "cannot stat") }
        let size = Int(status.st_size)
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = 0
            while count < size && failure == 0 {
                let result = Glibc.read(fd, buffer.baseAddress! + count, size - count)
                if result > 0 {
                    count += result
                } else if result == 0 {
                    failure = -1  // the file shrank while it was read
                } else if errno != EINTR {
                    failure = errno
                }
            }
        }
        guard failure == 0 else {
            throw ArchiveError(.io, file: path, failure > 0 ? "cannot read the file: \(String(cString: strerror(failure)))" : "the file shrank while it was read")
        }
        return bytes
    }

    /// Writes `bytes` under `name` so that the name never holds a partial file: temp file, fsync, rename,
    /// fsync of the directory.
    public func writeAtomically(_ name: String, _ bytes: [UInt8]) throws(ArchiveError) {
        let temporary = filePath(".tmp-" + name)
        let target = filePath(name)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw Self.posixError(temporary, "cannot create") }
        var written = 0
        var failed = false
        while written < bytes.count && !failed {
            let result = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            if result > 0 {
                written += result
            } else if !(result < 0 && errno == EINTR) {
                failed = true
            }
        }
        if failed || fsync(fd) != 0 {
            let error = Self.posixError(temporary, "cannot write and sync")
            close(fd)
            unlink(temporary)
            throw error
        }
        guard close(fd) == 0 else { throw Self.posixError(temporary, "cannot close") }
        guard rename(temporary, target) == 0 else { throw Self.posixError(target, "cannot rename into") }
        try syncDirectory()
    }

    /// Removes files left by writes that did not finish (named `.tmp-*`).
    public func removeLeftovers() throws(ArchiveError) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return }
        for name in names where name.hasPrefix(".tmp-") {
            guard unlink(filePath(name)) == 0 else { throw Self.posixError(filePath(name), "cannot remove the leftover") }
        }
    }

    public func remove(_ name: String) throws(ArchiveError) {
        guard unlink(filePath(name)) == 0 else { throw Self.posixError(filePath(name), "cannot remove") }
        try syncDirectory()
    }

    private func syncDirectory() throws(ArchiveError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Self.posixError(path, "cannot open the directory") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw Self.posixError(path, "cannot sync the directory") }
    }

    private static func padded(_ value: UInt64) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }

    static func posixError(_ file: String, _ what: String) -> ArchiveError {
        ArchiveError(.io, file: file, "\(what): \(String(cString: strerror(errno)))")
    }
}
