import Foundation
import Logging
import PipelineDSL
import Runner
import TestSupport
import Testing

private let environments = """
    import PipelineDSL

    let staging = Environment("staging", branch: "staging", region: "us-east-1", cluster: "staging-cluster")
    """

private func loader(_ folder: TemporaryDirectory) throws -> PipelineLoader {
    PipelineLoader(
        pipelinesDirectory: folder.url.appending(path: "pipelines"),
        cacheDirectory: folder.url.appending(path: ".pipeline/cache/pipelines"), library: Project.dslLibrary,
        swiftc: try #require(PipelineLoader.locateCompiler(environment: ProcessInfo.processInfo.environment)),
        logger: Logger(label: "test"))
}

private func cachedPrograms(_ folder: TemporaryDirectory) -> [String] {
    let cache = folder.url.appending(path: ".pipeline/cache/pipelines")
    return ((try? FileManager.default.contentsOfDirectory(atPath: cache.path)) ?? [])
        .filter { $0.count == 64 }.sorted()
}

/// These compile real pipelines with swiftc, so they run one at a time to spare the machine's two cores.
@Suite(.serialized) struct PipelineLoaderTests {
    @Test func severalFilesMakeOnePipelineAndTheProgramIsCached() throws {
        let folder = TemporaryDirectory()
        folder.write("pipelines/Environments.swift", environments)
        folder.write(
            "pipelines/Pipeline.swift",
            """
            import PipelineDSL

            print("the user's own output goes to stderr, not into the plan")
            Pipeline("multi") {
                staging
                Shell("hello", "echo hello")
            }
            """)
        let first = try loader(folder).load()
        #expect(first.name == "multi")
        #expect(first.plan(for: "staging")?.stages.map(\.id) == ["hello"])
        let programs = cachedPrograms(folder)
        #expect(programs.count == 1)

        let program = folder.url.appending(path: ".pipeline/cache/pipelines/\(programs[0])/pipeline-program")
        let built = try FileManager.default.attributesOfItem(atPath: program.path)[.modificationDate] as? Date
        #expect(try loader(folder).load() == first)
        let reused = try FileManager.default.attributesOfItem(atPath: program.path)[.modificationDate] as? Date
        #expect(built == reused)
        #expect(cachedPrograms(folder) == programs)

        folder.write("pipelines/Environments.swift", environments + "\n// changed\n")
        _ = try loader(folder).load()
        #expect(cachedPrograms(folder).count == 2)
    }

    @Test func aTypeErrorIsReportedAtItsPlaceInTheUsersFile() throws {
        let folder = TemporaryDirectory()
        folder.write("pipelines/Environments.swift", environments)
        folder.write(
            "pipelines/Pipeline.swift",
            """
            import PipelineDSL

            Pipeline("broken") {
                staging
                Shell("hello", 42)
            }
            """)
        let error = try #require(throws: LoadError.self) { try loader(folder).load() }
        #expect(error.kind == .definition)
        let text = error.description
        #expect(text.contains("Pipeline.swift:5:"), "got: \(text)")
        #expect(text.contains("error:"))
        #expect(!text.contains("main.swift"))
        #expect(cachedPrograms(folder).isEmpty, "a failed compile is not cached")
    }

    @Test func anErrorInAHelperFileNamesThatFile() throws {
        let folder = TemporaryDirectory()
        folder.write("pipelines/Environments.swift", environments + "\nlet oops: Int = \"text\"\n")
        folder.write("pipelines/Pipeline.swift", "import PipelineDSL\nPipeline(\"p\") { staging }\n")
        let error = try #require(throws: LoadError.self) { try loader(folder).load() }
        #expect(error.description.contains("Environments.swift:4:17: error:"), "got: \(error.description)")
    }

    @Test func dslProblemsComeBackAllAtOnce() throws {
        let folder = TemporaryDirectory()
        folder.write(
            "pipelines/Pipeline.swift",
            """
            import PipelineDSL

            Pipeline("p") {
                Service("api", repository: "r", port: 1, protocol: .http)
                BuildImage()
                PushImage()
            }
            """)
        let error = try #require(throws: LoadError.self) { try loader(folder).load() }
        #expect(error.kind == .definition)
        #expect(error.messages.count == 3, "got: \(error.messages)")
        #expect(error.messages.contains { $0.contains("declares no environment") })
    }

    @Test func aFolderWithoutAnEntryFileSaysWhatIsMissing() throws {
        let folder = TemporaryDirectory()
        folder.write("pipelines/Environments.swift", environments)
        let error = try #require(throws: LoadError.self) { try loader(folder).load() }
        #expect(error.description.contains("has no Pipeline.swift"))
    }

    @Test func aProgramThatDeclaresNothingIsRefused() throws {
        let folder = TemporaryDirectory()
        folder.write("pipelines/Pipeline.swift", "import PipelineDSL\nlet x = 1\n")
        let error = try #require(throws: LoadError.self) { try loader(folder).load() }
        #expect(error.description.contains("declared no Pipeline"), "got: \(error.description)")
    }

    @Test func aProgramThatCrashesIsRefused() throws {
        let folder = TemporaryDirectory()
        folder.write(
            "pipelines/Pipeline.swift",
            "import PipelineDSL\nlet services: [String] = []\nPipeline(services[1]) { }\n")
        let error = try #require(throws: LoadError.self) { try loader(folder).load() }
        #expect(error.description.contains("stopped with status"), "got: \(error.description)")
    }

    @Test func theDSLLibraryIsFoundInBothLayouts() throws {
        let build = Project.buildDirectory
        #expect(DSLLibrary.find(in: build)?.moduleDirectory.lastPathComponent == "Modules")

        let prefix = TemporaryDirectory()
        let lib = prefix.url.appending(path: "lib/pipeline")
        try FileManager.default.createDirectory(at: lib, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: build.appending(path: "libPipelineDSL.so"), to: lib.appending(path: "libPipelineDSL.so"))
        try FileManager.default.copyItem(
            at: Project.dslLibrary.moduleDirectory.appending(path: "PipelineDSL.swiftmodule"),
            to: lib.appending(path: "PipelineDSL.swiftmodule"))
        let found = try DSLLibrary.locate(environment: [:], executable: prefix.url.appending(path: "bin/pipeline"))
        #expect(found.libraryDirectory.standardizedFileURL == lib.standardizedFileURL)
        #expect(found.moduleDirectory.standardizedFileURL == lib.standardizedFileURL)

        let error = try #require(throws: LoadError.self) {
            try DSLLibrary.locate(environment: ["PIPELINE_DSL_PATH": "/nonexistent"], executable: nil)
        }
        #expect(error.description.contains("PIPELINE_DSL_PATH=/nonexistent"))
    }
}
