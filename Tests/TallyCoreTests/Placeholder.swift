import Testing
@testable import TallyCore
