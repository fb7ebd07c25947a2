import Foundation
import TestSupport

/// One pipeline with an environment per behaviour the run tests look at, compiled once into a shared cache.
enum RunFixture {
    static let folder: TemporaryDirectory = {
        let folder = TemporaryDirectory("pipeline-run-fixture")
        folder.write("pipelines/Pipeline.swift", source)
        return folder
    }()

    static let cache = TemporaryDirectory("pipeline-run-cache")

    static let environments = ["basic", "chains", "retry", "timeout", "flood", "slow", "secrets", "race", "tick", "mark", "pair", "fill", "hopeless"]

    static let source = """
        import PipelineDSL

        Pipeline("runner-fixture", parallelism: 4) {
            for name in \(environments) {
                Environment(name, branch: "main", region: "us-east-1", cluster: "c")
            }
            Service("alpha", repository: "a", port: 1, protocol: .http)
            Service("beta", repository: "b", port: 2, protocol: .http)

            Shell("hello", "echo hello from $PIPELINE_STAGE of run $PIPELINE_RUN_ID; echo to-stderr >&2; echo answer=42 >> $PIPELINE_OUTPUTS")
                .when(.environment("basic"))
            Parallel {
                Shell("reader", "echo saw $PIPELINE_OUTPUT_HELLO_ANSWER").when(.environment("basic"))
                Shell("broken", "echo about to break; echo 'it broke' >&2; exit 3").when(.environment("basic"))
            }
            Shell("after", "echo never").when(.environment("basic"))

            EachService {
                Shell("one", "echo one of $PIPELINE_SERVICE; [ $PIPELINE_SERVICE != alpha ]").when(.environment("chains"))
                Shell("two", "echo two of $PIPELINE_SERVICE").when(.environment("chains"))
            }

            Shell("flaky", "n=$(cat $TEST_DIR/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > $TEST_DIR/count; echo attempt $n; [ $n -ge 2 ]")
                .retries(2, backoff: .milliseconds(100))
                .when(.environment("retry"))

            Shell("hopeless", "echo attempt >> $TEST_DIR/attempts; exit 65")
                .retries(2, backoff: .milliseconds(100))
                .when(.environment("hopeless"))

            Shell("stubborn", "trap '' TERM; echo ignoring TERM; sleep 30 & wait; echo survived > $TEST_DIR/survived").timeout(.seconds(1))
                .when(.environment("timeout"))

            Shell("flood", "head -c $FLOOD_BYTES /dev/zero | tr '\\\\0' 'x' | fold -w 99")
                .when(.environment("flood"))

            Shell("first", "echo ran >> $TEST_DIR/first").when(.environment("slow"))
            Shell("slow", "sleep 600 & setsid sleep 600 & echo started; touch $TEST_DIR/started; if [ -f $TEST_DIR/go ]; then exit 0; fi; sleep 600")
                .when(.environment("slow"))
            Shell("last", "echo last >> $TEST_DIR/last").when(.environment("slow"))

            Shell("leak", "python3 $TEST_DIR/leak.py")
                .secret("TOKEN", .environment("TEST_SECRET"))
                .secret("KEY", .environment("TEST_KEY"))
                .when(.environment("secrets"))

            Shell("mark", "echo $PIPELINE_ATTEMPT >> $TEST_DIR/marks; sleep 4; echo done >> $TEST_DIR/done").when(.environment("mark"))

            Shell("one", "for i in $(seq 1 8); do echo one $i; sleep 0.5; done").when(.environment("pair"))
            Shell("two", "echo two >> $TEST_DIR/two").when(.environment("pair"))

            Shell("fill", "for i in $(seq 1 40); do head -c 200000 /dev/zero | tr '\\\\0' x | fold -w 99; sleep 0.1; done; echo finished >> $OUT_DIR/finished")
                .when(.environment("fill"))

            Shell("tick", "for i in $(seq 1 40); do echo tick $i; sleep 0.5; done").when(.environment("tick"))

            // Run 1 holds the environment until the test creates `release` (at most 2 minutes): the test lets it go
            // once run 2 says it waits, however slowly a loaded machine starts run 2.
            Shell("work", "echo start $PIPELINE_RUN_ID >> $TEST_DIR/order; if [ $PIPELINE_RUN_ID = 1 ]; then i=0; while [ ! -e $TEST_DIR/release ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done; fi; echo end $PIPELINE_RUN_ID >> $TEST_DIR/order")
                .when(.environment("race"))
        }
        """

    /// Runs `pipeline ARGS` on the fixture with its own state folder `home`.
    static func pipeline(_ arguments: [String], home: TemporaryDirectory, environment: [String: String] = [:]) throws -> ProcessOutput {
        try runProcess(
            Project.executable, arguments, in: folder.url,
            environment: environment.merging(
                ["PIPELINE_HOME": home.url.path, "PIPELINE_CACHE_DIR": cache.url.path, "TEST_DIR": home.url.path]
            ) { mine, _ in mine })
    }

    /// Starts `pipeline ARGS` without waiting for it.
    static func start(
        _ arguments: [String], home: TemporaryDirectory, environment: [String: String] = [:],
        executable: URL = Project.executable, capture: Bool = false
    ) throws -> Process {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = folder.url
        process.environment = ProcessInfo.processInfo.environment.merging(
            environment.merging(["PIPELINE_HOME": home.url.path, "PIPELINE_CACHE_DIR": cache.url.path, "TEST_DIR": home.url.path]) { a, _ in a }
        ) { _, new in new }
        process.standardOutput = capture ? Pipe() : FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Waits until `file` exists, up to `seconds`.
    static func waitFor(_ file: URL, seconds: Double = 180) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: file.path) { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    /// The processes that carry `marker` in their environment.
    static func processes(withMarker marker: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> Int32? in
            guard let pid = Int32(entry), let data = FileManager.default.contents(atPath: "/proc/\(entry)/environ") else { return nil }
            return String(decoding: data, as: UTF8.self).contains("PIPELINE_RUN_MARKER=\(marker)") ? pid : nil
        }
    }
}
