import Foundation

/// First uses, made once ahead of time: a process that forks many others (the runner's stage server) calls `warmUp`
/// before its first fork, so that the Swift runtime's first-use costs of what every AWS call does (type metadata,
/// protocol conformance lookups, OpenSSL's digests) are paid there once instead of in every child. Nothing is sent,
/// written or kept.
public enum AWSWarmUp {
    public static func warmUp() {
        let signer = SigV4(
            service: "ecs", region: "us-east-1", credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "warm-up"),
            date: Date())
        _ = signer.signatureHeaders(
            for: SigningRequest(
                method: "POST", path: "/", headers: [("Host", "ecs.us-east-1.amazonaws.com"), ("X-Amz-Target", "warm-up")],
                body: Array("{}".utf8)))
        let answer = Data(
            #"{"services":[{"serviceName":"s","status":"ACTIVE","taskDefinition":"t","desiredCount":1,"runningCount":1,"deployments":[{"id":"d","status":"PRIMARY","taskDefinition":"t","desiredCount":1,"runningCount":1,"rolloutState":"COMPLETED"}],"events":[{"message":"m"}]}],"failures":[]}"#
                .utf8)
        // Decoded only to warm the decoder up; a failure here would show in the first real call, not be hidden.
        _ = try? JSONDecoder().decode(ECS.DescribeServicesOutput.self, from: answer)
        _ = try? JSONSerialization.jsonObject(with: answer)
    }
}
