/// One declaration in a `Pipeline { }` body: an environment, a service, a step, a run-level notification, or where
/// the repository is hosted.
public struct PipelineItem: Sendable {
    enum Content: Sendable {
        case environment(EnvironmentSpec)
        case service(ServiceSpec)
        case step(Step)
        case notification(NotificationSpec)
        case forge(ForgeSpec)
    }

    let content: Content
}

/// One top-level step: a stage, a block of stages per service, or stages side by side.
enum Step: Sendable {
    case stage(any StageComponent)
    case eachService(EachService)
    case parallel([any StageComponent])
}

/// Collects the body of a `Pipeline { }`; `if`, `if/else`, `switch` and `for` work as in any Swift builder.
@resultBuilder
public enum PipelineBuilder {
    /// An environment.
    public static func buildExpression(_ environment: Environment) -> [PipelineItem] {
        [PipelineItem(content: .environment(environment.spec))]
    }

    /// A service.
    public static func buildExpression(_ service: Service) -> [PipelineItem] {
        [PipelineItem(content: .service(service.spec))]
    }

    /// A list of services, such as one shared from another file.
    public static func buildExpression(_ services: [Service]) -> [PipelineItem] {
        services.map { PipelineItem(content: .service($0.spec)) }
    }

    /// A stage that runs once per run.
    public static func buildExpression(_ stage: some StageComponent) -> [PipelineItem] {
        [PipelineItem(content: .step(.stage(stage)))]
    }

    /// One chain of stages per service.
    public static func buildExpression(_ block: EachService) -> [PipelineItem] {
        [PipelineItem(content: .step(.eachService(block)))]
    }

    /// Stages side by side.
    public static func buildExpression(_ block: Parallel) -> [PipelineItem] {
        [PipelineItem(content: .step(.parallel(block.stages)))]
    }

    /// Run-level notifications.
    public static func buildExpression(_ notifications: Notifications) -> [PipelineItem] {
        [PipelineItem(content: .notification(notifications.spec))]
    }

    /// Items declared elsewhere and spliced in.
    public static func buildExpression(_ items: [PipelineItem]) -> [PipelineItem] { items }

    /// The items in order.
    public static func buildBlock(_ parts: [PipelineItem]...) -> [PipelineItem] { parts.flatMap { $0 } }
    /// An `if` without `else`.
    public static func buildOptional(_ part: [PipelineItem]?) -> [PipelineItem] { part ?? [] }
    /// The first branch of an `if/else` or `switch`.
    public static func buildEither(first part: [PipelineItem]) -> [PipelineItem] { part }
    /// The second branch of an `if/else` or `switch`.
    public static func buildEither(second part: [PipelineItem]) -> [PipelineItem] { part }
    /// A `for` loop.
    public static func buildArray(_ parts: [[PipelineItem]]) -> [PipelineItem] { parts.flatMap { $0 } }
}

/// Collects stages, in `EachService { }` and `Parallel { }`.
@resultBuilder
public enum StageBuilder {
    /// A stage.
    public static func buildExpression(_ stage: some StageComponent) -> [any StageComponent] { [stage] }
    /// Stages declared elsewhere and spliced in.
    public static func buildExpression(_ stages: [any StageComponent]) -> [any StageComponent] { stages }
    /// The stages in order.
    public static func buildBlock(_ parts: [any StageComponent]...) -> [any StageComponent] { parts.flatMap { $0 } }
    /// An `if` without `else`.
    public static func buildOptional(_ part: [any StageComponent]?) -> [any StageComponent] { part ?? [] }
    /// The first branch of an `if/else` or `switch`.
    public static func buildEither(first part: [any StageComponent]) -> [any StageComponent] { part }
    /// The second branch of an `if/else` or `switch`.
    public static func buildEither(second part: [any StageComponent]) -> [any StageComponent] { part }
    /// A `for` loop.
    public static func buildArray(_ parts: [[any StageComponent]]) -> [any StageComponent] { parts.flatMap { $0 } }
}

/// One chain of stages per service, the chains running side by side.
///
/// Each stage of a chain waits for the one before it. The first waits for what came before the block; when that
/// was another `EachService`, only for the same service's chain there.
public struct EachService: Sendable {
    let only: [String]?
    let body: @Sendable (ServiceSpec) -> [any StageComponent]

    /// The same stages for every service (or for the services named in `only`).
    public init(only: [String]? = nil, @StageBuilder _ body: @escaping @Sendable () -> [any StageComponent]) {
        self.only = only
        self.body = { _ in body() }
    }

    /// Stages that can depend on the service (`if service.protocol == .grpc { ... }`).
    public init(
        only: [String]? = nil, @StageBuilder _ body: @escaping @Sendable (ServiceSpec) -> [any StageComponent]
    ) {
        self.only = only
        self.body = body
    }
}

/// Stages that run side by side, each after what came before, all before what comes after.
public struct Parallel: Sendable {
    let stages: [any StageComponent]

    /// Groups the stages.
    public init(@StageBuilder _ body: () -> [any StageComponent]) {
        stages = body()
    }
}

/// Run-level notifications: a webhook posted on the named events of every run.
public struct Notifications: Sendable {
    let spec: NotificationSpec

    /// Posts to the webhook whose URL is the secret `webhook`, on each of `events`.
    public init(webhook: SecretReference, format: NotificationFormat = .slack, on events: [RunEvent] = RunEvent.allCases) {
        spec = NotificationSpec(webhook: webhook, format: format, events: events)
    }
}
