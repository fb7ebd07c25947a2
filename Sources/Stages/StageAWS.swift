import AWS
import PipelineDSL

/// The AWS settings a stage of an environment works with: the credentials the runner resolves (see
/// `AWSConfiguration.resolve`), in the environment's region, acting as the environment's role when it names one.
public enum StageAWS {
    /// The configuration for `target`; `environment` is the process environment.
    public static func configuration(for target: EnvironmentSpec, environment: [String: String]) throws(AWSError) -> AWSConfiguration {
        let base = try AWSConfiguration.resolve(environment: environment.merging(["AWS_REGION": target.region]) { _, region in region })
        guard let role = target.role else { return base }
        let run = environment["PIPELINE_RUN_ID"].map { "-run\($0)" } ?? ""
        return base.assuming(
            RoleRequest(arn: role.arn, sessionName: role.sessionName ?? "pipeline-\(target.name)\(run)", externalID: role.externalId))
    }

    /// A client for `target`.
    static func client(for target: EnvironmentSpec, environment: [String: String]) throws(AWSError) -> AWSClient {
        AWSClient(configuration: try configuration(for: target, environment: environment))
    }
}
