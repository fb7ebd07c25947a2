import Synchronization

/// A stage as written in a pipeline: a kind-specific part, plus the options every stage has.
///
/// The built-in stages (``Checkout``, ``BuildImage``, ``PushImage``, ``RegisterTaskDefinition``,
/// ``UpdateService``, ``DNSRecord``, ``HealthCheck``, ``Approval``, ``Shell``, ``Notify``) conform to it.
public protocol StageComponent: Sendable {
    /// The options every stage has; set through the modifiers (`.timeout`, `.retries`, `.when`, ...).
    var options: StageOptions { get set }
    /// The stage's name when `.id` does not give one; inside `EachService` it is prefixed with the service.
    var defaultName: String { get }
    /// Whether the stage needs a service, and so must stand inside `EachService`.
    var needsService: Bool { get }
    /// Makes the stage's spec for one environment (and service), reporting problems to `context`.
    func makeSpec(in context: StageContext) -> StageSpec?
}

/// The options every stage has.
public struct StageOptions: Sendable {
    /// The name given with `.id`.
    public var name: String?
    /// Stage ids this stage waits for, on top of the order of the pipeline's body.
    public var dependsOn: [String] = []
    /// How long one attempt may take.
    public var timeout: Duration?
    /// Retries after a failed attempt, and the first wait between them.
    public var retries: (count: Int, backoff: Duration)?
    /// When the stage runs.
    public var condition: Condition?
    /// Secrets handed to the stage as environment variables.
    public var secrets: [SecretBinding] = []
    /// Extra environment variables.
    public var environment: [String: String] = [:]

    /// Options with nothing set.
    public init() {}
}

extension StageComponent {
    /// Names the stage. Inside `EachService`, the id becomes `SERVICE.NAME`.
    public func id(_ name: String) -> Self { with { $0.name = name } }

    /// Makes the stage wait for other stages too (by id; `{service}` stands for the chain's service).
    public func dependsOn(_ ids: String...) -> Self { with { $0.dependsOn += ids } }

    /// Ends an attempt that runs longer than `duration`.
    public func timeout(_ duration: Duration) -> Self { with { $0.timeout = duration } }

    /// Tries a failed stage again up to `count` times, waiting `backoff`, then twice as long each time.
    public func retries(_ count: Int, backoff: Duration = .seconds(5)) -> Self {
        with { $0.retries = (count, backoff) }
    }

    /// Runs the stage only when `condition` holds; several `.when` must all hold.
    public func when(_ condition: Condition) -> Self {
        with { options in
            options.condition = options.condition.map { .all([$0, condition]) } ?? condition
        }
    }

    /// Hands a secret to the stage as the environment variable `name`; the plan keeps only the reference.
    public func secret(_ name: String, _ reference: SecretReference) -> Self {
        with { $0.secrets.append(SecretBinding(name: name, reference: reference)) }
    }

    /// Sets an environment variable for the stage's process.
    public func env(_ name: String, _ value: String) -> Self { with { $0.environment[name] = value } }

    /// By default, a stage stands alone; service stages override this.
    public var needsService: Bool { false }

    private func with(_ change: (inout StageOptions) -> Void) -> Self {
        var copy = self
        change(&copy.options)
        return copy
    }
}

/// What a stage sees while its spec is made: the environment, the service of its chain, and the stages
/// before it in that chain.
public struct StageContext: Sendable {
    /// The environment being planned.
    public let environment: EnvironmentSpec
    /// The service of the chain, inside `EachService`.
    public let service: ServiceSpec?
    /// The id each kind of stage has earlier in this service's chain.
    public let earlier: [StageKind: String]
    /// The stage's id, for messages.
    public let stageID: String
    let problems: Problems

    /// Reports a problem with this stage; the plan is refused and every problem is shown at once.
    public func report(_ message: String) {
        problems.add("stage '\(stageID)': \(message)")
    }

    /// The value of every plan-time placeholder here: `{env}`, `{region}`, `{cluster}`, `{account}`,
    /// `{zone}`, `{domain}`, `{var.NAME}`, and inside `EachService` `{service}`, `{hostname}`,
    /// `{ecsService}`, `{repository}`, `{port}`.
    public var placeholders: [String: String] {
        var values = ["env": environment.name, "region": environment.region, "cluster": environment.cluster]
        values["account"] = environment.account
        values["zone"] = environment.dns?.zone
        values["domain"] = environment.dns?.domain
        for (name, value) in environment.variables { values["var.\(name)"] = value }
        if let service {
            values["service"] = service.name
            values["hostname"] = service.hostname
            values["ecsService"] = environment.ecsServiceName(for: service.name)
            values["repository"] = service.repository
            values["port"] = String(service.port)
        }
        return values
    }

    /// `text` with its plan-time placeholders filled in. `{sha}`, `{run}` and `{user}` are left for run time;
    /// any other `{name}` is reported, naming `field`.
    public func expand(_ text: String, field: String) -> String {
        Placeholders.expand(text, values: placeholders, keep: Placeholders.runTime) { name in
            report("\(field) uses unknown placeholder {\(name)}\(Placeholders.hint(name, known: placeholders))")
        }
    }
}

/// Problems collected while the pipeline is built.
final class Problems: Sendable {
    private let list = Mutex<[String]>([])

    func add(_ message: String) {
        list.withLock { if !$0.contains(message) { $0.append(message) } }
    }

    var all: [String] { list.withLock { $0 } }
}
