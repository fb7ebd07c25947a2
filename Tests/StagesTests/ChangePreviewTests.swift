@testable import Stages
import StageContract
import Testing

/// The pieces of `pipeline diff` that need no AWS: the line diff and the cut of ECS's description to a template.
@Suite struct ChangePreviewTests {
    @Test func theLineDiffKeepsWhatStaysAndShowsWhatGoesBeforeWhatComes() {
        #expect(ChangePreview.diff(["a", "b"], ["a", "b"]) == [])
        #expect(ChangePreview.diff(["a", "b", "c"], ["a", "x", "c", "d"]) == ["  a", "- b", "+ x", "  c", "+ d"])
        #expect(ChangePreview.diff([], ["a"]) == ["+ a"])
        #expect(ChangePreview.diff(["a"], []) == ["- a"])
    }

    @Test func ecssDefaultsAndBookkeepingAreLeftOutOfTheComparison() throws {
        let live: JSONValue = .object([
            "family": .string("api"), "revision": .integer(7), "status": .string("ACTIVE"),
            "containerDefinitions": .array([.object(["name": .string("api"), "image": .string("r@sha256:1"), "cpu": .integer(0)])]),
        ])
        let template: JSONValue = .object([
            "family": .string("api"), "containerDefinitions": .array([.object(["name": .string("api"), "image": .string("r@sha256:2")])]),
        ])
        let cut = live.projected(onto: template)
        #expect(cut == .object([
            "family": .string("api"), "containerDefinitions": .array([.object(["name": .string("api"), "image": .string("r@sha256:1")])]),
        ]))
        let diff = ChangePreview.diff(ChangePreview.lines(cut), ChangePreview.lines(template))
        #expect(diff.filter { !$0.hasPrefix("  ") }.count == 2, "\(diff)")
        #expect(ImageReference.commit(inTag: "repo:" + String(repeating: "a", count: 40)) == String(repeating: "a", count: 40))
        #expect(ImageReference.commit(inTag: "repo@sha256:" + String(repeating: "a", count: 64)) == nil)
        #expect(ImageReference.digest(of: "repo@sha256:" + String(repeating: "a", count: 64)) == "sha256:" + String(repeating: "a", count: 64))
    }
}
