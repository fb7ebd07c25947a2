/// The pipeline's repository on GitHub (or GitHub Enterprise Server): pushes to an environment's branch start its
/// run through `pipeline serve`'s `POST /hooks/github`, and every run reports back to the commit (a status per
/// environment, `pipeline/ENV`) and to the repository's Deployments.
///
/// ```swift
/// GitHub("acme/platform",
///        webhookSecret: .secretsManager("ci/github", key: "webhook"),
///        token: .secretsManager("ci/github", key: "token"))
/// ```
public struct GitHub: Sendable {
    let spec: ForgeSpec

    /// `repository` is `OWNER/NAME`; `webhookSecret` the secret the webhook is configured with (deliveries signed
    /// otherwise are refused); `token` a token allowed to write commit statuses and deployments (none: nothing is
    /// reported); `api` the REST API's base (GitHub Enterprise Server: `https://HOST/api/v3`).
    public init(_ repository: String, webhookSecret: SecretReference? = nil, token: SecretReference? = nil, api: String = "https://api.github.com") {
        spec = ForgeSpec(kind: .github, repository: repository, webhookSecret: webhookSecret, token: token, api: api)
    }
}

/// The pipeline's repository on GitLab: push events to `POST /hooks/gitlab` start runs; the webhook's secret token
/// (`X-Gitlab-Token`) must be `webhookToken`.
public struct GitLab: Sendable {
    let spec: ForgeSpec

    /// `repository` is the project's path with its namespace (`group/project`).
    public init(_ repository: String, webhookToken: SecretReference) {
        spec = ForgeSpec(kind: .gitlab, repository: repository, webhookSecret: webhookToken, token: nil, api: nil)
    }
}

/// The pipeline's repository on Gitea or Forgejo: push events to `POST /hooks/gitea` start runs; deliveries must be
/// signed with `webhookSecret` (`X-Gitea-Signature`).
public struct Gitea: Sendable {
    let spec: ForgeSpec

    /// `repository` is `OWNER/NAME`.
    public init(_ repository: String, webhookSecret: SecretReference) {
        spec = ForgeSpec(kind: .gitea, repository: repository, webhookSecret: webhookSecret, token: nil, api: nil)
    }
}

extension PipelineBuilder {
    /// The repository on GitHub.
    public static func buildExpression(_ forge: GitHub) -> [PipelineItem] { [PipelineItem(content: .forge(forge.spec))] }
    /// The repository on GitLab.
    public static func buildExpression(_ forge: GitLab) -> [PipelineItem] { [PipelineItem(content: .forge(forge.spec))] }
    /// The repository on Gitea or Forgejo.
    public static func buildExpression(_ forge: Gitea) -> [PipelineItem] { [PipelineItem(content: .forge(forge.spec))] }
}
