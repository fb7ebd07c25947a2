import Foundation
import Runner
@testable import Stages
import Testing
import TestSupport

/// What stages write to `PIPELINE_OUTPUTS` is what the runner reads back, values over several lines included.
@Suite struct StageOutputFileTests {
    @Test func valuesAddedOneByOneAndOverSeveralLinesReadBackWhole() throws {
        let folder = TemporaryDirectory()
        let path = folder.url.appending(path: "outputs.env").path
        let outputs = StageOutputFile(environment: ["PIPELINE_OUTPUTS": path])
        try outputs.set(["previousTaskDefinition": "arn:1", "taskDefinitionArn": "arn:2"])
        try outputs.set(["rolledBack": "false", "rollbackError": "ecs UpdateService: failed\nsecond line"])
        try outputs.set(["taskDefinitionArn": "arn:3"])
        let read = StageOutputs.parse(try String(contentsOfFile: path, encoding: .utf8))
        #expect(read == [
            "previousTaskDefinition": "arn:1", "taskDefinitionArn": "arn:3", "rolledBack": "false",
            "rollbackError": "ecs UpdateService: failed\nsecond line",
        ])
    }
}
