import Green
import GreenPatch
import GreenTestSupport
import Logging
import XCTest

/// Patch mode's notices reach the runtime's logger.
final class PatchModeLoggingTests: LogRecordingTestCase {
    func testTurningPatchModeOnIsANotice() throws {
        PatchMode.enable()
        PatchMode.disable()
        let notices = entries.all.filter { $0.level == .notice }.map(\.message)
        XCTAssertEqual(notices, ["patch mode on: blocking libc calls in greenlets cooperate", "patch mode off"])
    }
}
