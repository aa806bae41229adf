import Testing
import TallyArchive

@Suite struct ZlibLinkTests {
    @Test func linksTheSystemZlib() {
        // Debian 12 ships zlib 1.2.13; any 1.x works for the format.
        #expect(zlibRuntimeVersion.hasPrefix("1."))
    }
}
