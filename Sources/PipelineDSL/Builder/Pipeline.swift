/// A deployment pipeline: its environments, its services, and the steps every run takes.
///
/// Declare exactly one, at the top level of the entry file of `pipelines/` (`Pipeline.swift`):
///
/// ```swift
/// import PipelineDSL
///
/// Pipeline("comyno") {
///     Environment("staging", branch: "staging", region: "us-east-1", cluster: "staging-cluster")
///     Service("user-service", repository: "sv-user", port: 5000, protocol: .grpc)
///     Checkout()
///     EachService {
///         BuildImage()
///         PushImage()
///     }
/// }
/// ```
///
/// Steps run in the order written: a stage waits for everything before it, an ``EachService`` block runs one
/// chain per service, two blocks in a row join service by service, and ``Parallel`` runs stages side by side.
/// A stage whose `.when(.environment(...))` does not hold is left out of that environment's plan before the
/// order is worked out, so the other stages close ranks.
public struct Pipeline: Sendable {
    /// What the program hands the runner: the manifest, or every problem found.
    public let document: ManifestDocument

    /// Declares the pipeline `name`. `repository` is the git repository to deploy (the one holding `pipelines/`
    /// by default); `token`, where its HTTPS token lives when not in `PIPELINE_GIT_TOKEN`
    /// (`.secretsManager(...)` or `.environment(...)`); at most `parallelism` stages run at once.
    @discardableResult
    public init(
        _ name: String, repository: String? = nil, token: SecretReference? = nil, parallelism: Int = 4,
        @PipelineBuilder _ body: () -> [PipelineItem]
    ) {
        self.init(name, repository: repository, token: token, parallelism: parallelism, handOver: true, body)
    }

    /// Builds the document; hands it to the runner at exit only when `handOver` (tests build without it).
    init(
        _ name: String, repository: String? = nil, token: SecretReference? = nil, parallelism: Int = 4,
        handOver: Bool, @PipelineBuilder _ body: () -> [PipelineItem]
    ) {
        let expander = PlanExpander(
            name: name, source: Source(repository: repository, token: token), parallelism: parallelism, items: body())
        document = expander.document()
        if handOver { ManifestOutput.register(document) }
    }
}
