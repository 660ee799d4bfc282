import Green
import GreenPatch
import GreenTestSupport
import Logging
import XCTest

/// Patch mode's notices reach the runtime's logger.
final class PatchModeLoggingTests: GreenTestCase {
    private var entries = LogEntries()

    override func setUp() {
        super.setUp()
        let entries = LogEntries()
        self.entries = entries
        GreenDiagnostics.logger = Logger(label: GreenDiagnostics.label) { RecordingLogHandler(label: $0, entries: entries) }
    }

    override func tearDown() {
        GreenDiagnostics.logger = nil
        super.tearDown()
    }

    func testTurningPatchModeOnIsANotice() throws {
        PatchMode.enable()
        PatchMode.disable()
        let notices = entries.all.filter { $0.level == .notice }.map(\.message)
        XCTAssertEqual(notices, ["patch mode on: blocking libc calls in greenlets cooperate", "patch mode off"])
    }
}
