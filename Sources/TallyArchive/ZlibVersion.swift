import CZlib

/// The version of the zlib library this process runs with, recorded in every segment header.
public var zlibRuntimeVersion: String { String(cString: zlibVersion()) }
