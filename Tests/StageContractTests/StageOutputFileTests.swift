import Foundation
import StageContract
import Testing
import TestSupport

/// What stages write to `PIPELINE_OUTPUTS` is what the runner reads back, values over several lines included, and
/// typed outputs go through it as one key per property.
@Suite struct StageOutputFileTests {
    @Test func valuesAddedOneByOneAndOverSeveralLinesReadBackWhole() throws {
        let folder = TemporaryDirectory()
        let path = folder.url.appending(path: "outputs.env").path
        let outputs = StageOutputFile(path: path)
        try outputs.set(["previousTaskDefinition": "arn:1", "taskDefinitionArn": "arn:2"])
        try outputs.set(["rolledBack": "false", "rollbackError": "ecs UpdateService: failed\nsecond line"])
        try outputs.set(["taskDefinitionArn": "arn:3"])
        let read = StageOutputs.parse(try String(contentsOfFile: path, encoding: .utf8))
        #expect(read == [
            "previousTaskDefinition": "arn:1", "taskDefinitionArn": "arn:3", "rolledBack": "false",
            "rollbackError": "ecs UpdateService: failed\nsecond line",
        ])
    }

    @Test func typedOutputsAreWrittenAsKeysAndReadBackAsTheSameValue() throws {
        let folder = TemporaryDirectory()
        let path = folder.url.appending(path: "outputs.env").path
        let outputs = StageOutputFile(path: path)
        let deployed = DeployOutput(previousTaskDefinition: "arn:1", taskDefinitionArn: "arn:2", deploymentId: nil, stable: true)
        try outputs.set(deployed)
        try outputs.set(RollbackReport(rolledBack: false, rollbackError: "denied\nsecond line"))
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.hasPrefix("previousTaskDefinition=arn:1\ntaskDefinitionArn=arn:2\nstable=true\nrolledBack=false\n"))
        #expect(!text.contains("deploymentId"))  // nil is no key
        let read = StageOutputs.parse(text)
        #expect(try FlatValues.decode(DeployOutput.self, from: read) == deployed)
        #expect(try FlatValues.decode(RollbackReport.self, from: read) == RollbackReport(rolledBack: false, rollbackError: "denied\nsecond line"))
        let register = RegisterOutput(taskDefinitionArn: "arn:3", image: "repo@sha256:ab", reused: true)
        #expect(try FlatValues.decode(RegisterOutput.self, from: Dictionary(uniqueKeysWithValues: FlatValues.encode(register))) == register)
    }

    @Test func aMissingOrMalformedOutputIsNamed() throws {
        #expect(throws: (any Error).self) { try FlatValues.decode(PushOutput.self, from: ["image": "x"]) }
        do {
            _ = try FlatValues.decode(PushOutput.self, from: ["image": "x"])
        } catch {
            #expect(FlatValues.describe(error) == "no 'digest' output")
        }
        do {
            _ = try FlatValues.decode(RegisterOutput.self, from: ["taskDefinitionArn": "a", "image": "i", "reused": "yes"])
            Issue.record("'yes' read as a Bool")
        } catch {
            #expect(FlatValues.describe(error) == "the output 'reused' is 'yes', not true or false")
        }
    }
}
