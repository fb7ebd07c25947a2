/// Checks the commit being deployed out into the run's workspace.
public struct Checkout: StageComponent {
    /// See ``StageComponent/options``.
    public var options = StageOptions()
    /// See ``StageComponent/defaultName``.
    public var defaultName: String { "checkout" }
    private let submodules: Bool

    /// Checks out the commit, with its submodules unless `submodules` is false.
    public init(submodules: Bool = true) {
        self.submodules = submodules
    }

    /// See ``StageComponent/makeSpec(in:)``.
    public func makeSpec(in context: StageContext) -> StageSpec? {
        .checkout(CheckoutSpec(submodules: submodules))
    }
}

/// Stops the run until enough of the allowed people approve it.
public struct Approval: StageComponent {
    /// See ``StageComponent/options``.
    public var options = StageOptions()
    /// See ``StageComponent/defaultName``.
    public let defaultName: String
    private let spec: ApprovalSpec
    private let timeoutDuration: Duration?

    /// A gate named `name`: `required` distinct people of `approvers` must approve within `timeout` (if set);
    /// the person who started the run may approve only with `allowSelfApproval`. People are known by their
    /// operating-system user name, or by the value of the environment variable `identityVariable` when the team's
    /// sign-in wrapper sets one.
    public init(
        _ name: String = "approval", approvers: [String], required: Int = 1, timeout: Duration? = nil,
        allowSelfApproval: Bool = false, message: String? = nil, identityVariable: String? = nil
    ) {
        defaultName = name
        timeoutDuration = timeout
        spec = ApprovalSpec(
            approvers: approvers, required: required, timeoutSeconds: timeout?.inSeconds,
            allowSelfApproval: allowSelfApproval, message: message, identityVariable: identityVariable)
    }

    /// See ``StageComponent/makeSpec(in:)``.
    public func makeSpec(in context: StageContext) -> StageSpec? {
        var spec = spec
        spec.message = spec.message.map { context.expand($0, field: "message") }
        return .approval(spec)
    }
}

/// Runs a command with `/bin/sh -c` in the checkout.
///
/// The command gets `PIPELINE_SHA`, `PIPELINE_ENV`, `PIPELINE_RUN_ID` and, inside `EachService`,
/// `PIPELINE_SERVICE` in its environment; it is passed to the shell as written.
public struct Shell: StageComponent {
    /// See ``StageComponent/options``.
    public var options = StageOptions()
    /// See ``StageComponent/defaultName``.
    public let defaultName: String
    private let command: String
    private let shell: String

    /// A stage named `name` that runs `command` through `shell`.
    public init(_ name: String, _ command: String, shell: String = "/bin/sh") {
        defaultName = name
        self.command = command
        self.shell = shell
    }

    /// See ``StageComponent/makeSpec(in:)``.
    public func makeSpec(in context: StageContext) -> StageSpec? {
        .shell(ShellSpec(command: command, shell: shell))
    }
}

/// Posts a message to a Slack-compatible or generic JSON webhook. A failed post never fails the run.
public struct Notify: StageComponent {
    /// See ``StageComponent/options``.
    public var options = StageOptions()
    /// See ``StageComponent/defaultName``.
    public let defaultName: String
    private let spec: NotifySpec

    /// A stage named `name` that posts `message` to the webhook whose URL is the secret `webhook`.
    public init(_ name: String = "notify", webhook: SecretReference, format: NotificationFormat = .slack, message: String) {
        defaultName = name
        spec = NotifySpec(webhook: webhook, format: format, message: message)
        // The URL reaches the stage as a secret (masked everywhere), never in the plan.
        options.secrets.append(SecretBinding(name: "PIPELINE_WEBHOOK_URL", reference: webhook))
    }

    /// See ``StageComponent/makeSpec(in:)``.
    public func makeSpec(in context: StageContext) -> StageSpec? {
        var spec = spec
        spec.message = context.expand(spec.message, field: "message")
        return .notify(spec)
    }
}
