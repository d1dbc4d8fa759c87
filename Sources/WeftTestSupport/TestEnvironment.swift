import Foundation

/// Where the tests run. Under CI (`CI=true`, as `.ci/run` is run) every tool a test needs is
/// installed by the run itself, so a test that would skip for a missing tool fails there
/// instead: a skip is only ever a developer's machine lacking something, and says so.
public enum TestEnvironment {
    public static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// Whether a test that needs the program at `path` runs: it is there, or this is CI (where
    /// its absence is a failure of the setup, not a reason to skip).
    public static func runs(needing path: String) -> Bool {
        isCI || FileManager.default.isExecutableFile(atPath: path)
    }
}
