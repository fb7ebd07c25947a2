import AWS
import Foundation
import PipelineDSL
import StageContract

extension BuiltinStages {
    /// Makes, once, the first uses every built-in stage's process makes (AWS signing and answers, the stages'
    /// outputs, task-definition JSON, dates), so that a process which forks the stages of a run (the runner's stage
    /// server) pays the Swift runtime's first-use costs once instead of in each of them. Nothing is sent, written or
    /// kept; call it while the process has one thread.
    public static func warmUp() {
        AWSWarmUp.warmUp()
        // Encoded and decoded only to warm the coders up: a failure would show in the stages themselves.
        _ = try? FlatValues.encode(RegisterOutput(taskDefinitionArn: "arn", image: "image", reused: false))
        _ = try? FlatValues.encode(DeployOutput(previousTaskDefinition: "a", taskDefinitionArn: "b", deploymentId: "c", stable: true))
        _ = try? FlatValues.encode(DNSOutput(changed: true, changeId: "C"))
        _ = try? FlatValues.encode(PushOutput(image: "i", digest: "d", tags: "t", registry: "r"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        if let body = try? encoder.encode(["at": Date()]) {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            _ = try? decoder.decode([String: Date].self, from: body)
        }
        _ = try? JSONDecoder().decode(JSONValue.self, from: Data(#"{"family":"f","containerDefinitions":[{"name":"n","cpu":1}]}"#.utf8))
    }
}
