// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "pipeline",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "pipeline", targets: ["pipeline"]),
        // Pipelines in pipelines/ link against this library when the runner compiles them.
        .library(name: "PipelineDSL", type: .dynamic, targets: ["PipelineDSL"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // `pipeline serve` (HTTP/1.1 on SwiftNIO).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // `GET /metrics` in the Prometheus text format (swift-prometheus, over swift-metrics).
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(name: "CGit2", pkgConfig: "libgit2", providers: [.apt(["libgit2-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "CSpawn"),
        .target(name: "CGitSocket", dependencies: ["CGit2"]),

        .target(name: "PipelineDSL"),
        .target(name: "Hashing", dependencies: ["COpenSSL"]),
        // What the runner and the built-in stages agree on: the stage context, typed outputs, the run folder's layout,
        // deployment claims, names and run-time placeholders.
        .target(name: "StageContract", dependencies: ["PipelineDSL"]),
        .target(
            name: "Runner",
            dependencies: ["PipelineDSL", "StageContract", "Hashing", "CSQLite", "CSpawn", .product(name: "Logging", package: "swift-log")]
        ),
        .target(name: "Git", dependencies: ["CGit2", "CGitSocket", "Hashing", "HTTP", .product(name: "Logging", package: "swift-log")]),
        .target(name: "HTTP", dependencies: ["CCurl"]),
        .target(name: "AWS", dependencies: ["HTTP", "Hashing", .product(name: "Logging", package: "swift-log")]),
        .target(name: "OCI", dependencies: ["HTTP", "Hashing"]),
        .target(name: "Stages", dependencies: ["PipelineDSL", "StageContract", "AWS", "OCI", "Git", "HTTP"]),
        // `pipeline serve`: pages, the JSON API, live logs, sign-in, roles, CSRF and the audit.
        .target(
            name: "Server",
            dependencies: [
                "Runner", "StageContract", "PipelineDSL", "Hashing", "Git", "AWS", "Stages",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .target(
            name: "PipelineCommands",
            dependencies: [
                "Runner", "CSpawn", "Server", "Stages", "StageContract", "Git", "HTTP", "AWS", "OCI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "pipeline", dependencies: ["PipelineCommands"]),

        // The test process runs Swift concurrency's jobs on a pool that grows when tests block its threads.
        .target(name: "CTestExecutor", path: "Tests/CTestExecutor"),
        .target(name: "TestSupport", dependencies: ["Runner", "StageContract", "CSpawn", "CTestExecutor"], path: "Tests/TestSupport"),
        .testTarget(name: "PipelineDSLTests", dependencies: ["PipelineDSL"]),
        .testTarget(name: "StageContractTests", dependencies: ["StageContract", "PipelineDSL", "TestSupport"]),
        .testTarget(name: "RunnerTests", dependencies: ["Runner", "StageContract", "PipelineDSL", "TestSupport", "CTestExecutor"]),
        .testTarget(name: "GitTests", dependencies: ["Git", "TestSupport"]),
        .testTarget(name: "StagesTests", dependencies: ["Stages", "StageContract", "PipelineDSL", "AWS", "Runner", "Git", "TestSupport"]),
        .testTarget(name: "AWSTests", dependencies: ["AWS", "HTTP", "TestSupport", "pipeline"]),
        .testTarget(name: "DeployTests", dependencies: ["Stages", "StageContract", "AWS", "HTTP", "Hashing", "Runner", "PipelineDSL", "TestSupport", "pipeline"]),
        .testTarget(name: "ImageTests", dependencies: ["OCI", "Stages", "AWS", "HTTP", "Hashing", "TestSupport", "pipeline"]),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP", "Hashing", "TestSupport"]),
        .testTarget(name: "SystemLibraryTests", dependencies: ["Git", "HTTP", "Hashing", "AWS", "OCI"]),
        .testTarget(name: "ServerTests", dependencies: ["pipeline", "Server", "Runner", "HTTP", "AWS", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["pipeline", "PipelineDSL", "StageContract", "Runner", "AWS", "TestSupport"]),
    ]
)
