import Testing

@testable import PipelineDSL

@Suite struct ConditionTests {
    @Test(arguments: [
        (Condition.environment("prod"), "prod", Condition.Settled.constant(true)),
        (.environment("prod"), "staging", .constant(false)),
        (.not(.environment("prod")), "staging", .constant(true)),
        (.branch("main"), "prod", .runtime(.branch(["main"]))),
        (.all([.environment("prod"), .branch("main")]), "prod", .runtime(.branch(["main"]))),
        (.all([.environment("prod"), .branch("main")]), "staging", .constant(false)),
        (.any([.environment("prod"), .branch("main")]), "prod", .constant(true)),
        (.any([.environment("prod"), .branch("main")]), "staging", .runtime(.branch(["main"]))),
        (.not(.all([.environment("prod"), .branch("hotfix")])), "prod", .runtime(.not(.branch(["hotfix"])))),
    ])
    func environmentClausesAreSettledWhenThePlanIsMade(condition: Condition, env: String, expected: Condition.Settled) {
        #expect(condition.settled(environment: env) == expected)
    }

    @Test func branchClausesAreDecidedAtRunTime() {
        #expect(Condition.branch("main").holds(branch: "main"))
        #expect(!Condition.branch("main").holds(branch: "staging"))
        #expect(!Condition.branch("main").holds(branch: nil))
        #expect(Condition.not(.branch(["main"])).holds(branch: "staging"))
        #expect(Condition.any([.branch(["a"]), .branch(["b"])]).holds(branch: "b"))
    }
}

@Suite struct PlaceholderTests {
    @Test func knownNamesAreFilledAndRunTimeNamesKept() {
        var unknown: [String] = []
        let text = Placeholders.expand(
            "{service}.{domain}:{sha}/{nope}", values: ["service": "api", "domain": "example.net"],
            keep: Placeholders.runTime
        ) { unknown.append($0) }
        #expect(text == "api.example.net:{sha}/{nope}")
        #expect(unknown == ["nope"])
    }

    @Test func unbalancedBracesAreLeftAlone() {
        let text = Placeholders.expand("a { b", values: [:], keep: []) { _ in Issue.record("no placeholder here") }
        #expect(text == "a { b")
    }
}
