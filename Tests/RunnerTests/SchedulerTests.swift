import PipelineDSL
import Runner
import Testing

private func stage(_ id: String, after: [String] = []) -> Stage {
    Stage(id: id, dependsOn: after, spec: .shell(ShellSpec(command: "true")))
}

private func starts(_ decisions: [Scheduler.Decision]) -> [String] {
    decisions.compactMap { if case .start(let id) = $0 { id } else { nil } }
}

private func skips(_ decisions: [Scheduler.Decision]) -> [String] {
    decisions.compactMap { if case .skip(let id, _) = $0 { id } else { nil } }
}

@Suite struct SchedulerTests {
    @Test func aChainRunsOneStageAtATime() {
        var scheduler = Scheduler(stages: [stage("a"), stage("b", after: ["a"]), stage("c", after: ["b"])])
        #expect(starts(scheduler.next(limit: 8)) == ["a"])
        #expect(scheduler.next(limit: 8) == [])
        scheduler.finished("a", .succeeded)
        #expect(starts(scheduler.next(limit: 8)) == ["b"])
        scheduler.finished("b", .succeeded)
        #expect(starts(scheduler.next(limit: 8)) == ["c"])
        scheduler.finished("c", .succeeded)
        #expect(scheduler.isDone)
        #expect(scheduler.outcome == .succeeded)
    }

    @Test func fanOutStopsAtTheParallelismLimit() {
        let fan = (1...5).map { stage("s\($0)", after: ["root"]) }
        var scheduler = Scheduler(stages: [stage("root")] + fan)
        _ = scheduler.next(limit: 2)
        scheduler.finished("root", .succeeded)
        #expect(starts(scheduler.next(limit: 2)) == ["s1", "s2"])
        #expect(scheduler.next(limit: 2) == [])
        scheduler.finished("s2", .succeeded)
        #expect(starts(scheduler.next(limit: 2)) == ["s3"])
    }

    @Test func aFailureSkipsWhatDependsOnItAndIndependentChainsFinish() {
        var scheduler = Scheduler(stages: [
            stage("a1"), stage("a2", after: ["a1"]), stage("a3", after: ["a2"]),
            stage("b1"), stage("b2", after: ["b1"]),
        ])
        #expect(starts(scheduler.next(limit: 8)) == ["a1", "b1"])
        scheduler.finished("a1", .failed)
        let next = scheduler.next(limit: 8)
        #expect(skips(next) == ["a2", "a3"])
        #expect(starts(next) == [])
        scheduler.finished("b1", .succeeded)
        #expect(starts(scheduler.next(limit: 8)) == ["b2"])
        scheduler.finished("b2", .succeeded)
        #expect(scheduler.isDone)
        #expect(scheduler.outcome == .failed)
        #expect(scheduler.status["a3"] == .skipped)
    }

    @Test func failFastSkipsEverythingNotStarted() {
        var scheduler = Scheduler(stages: [stage("a"), stage("b"), stage("c", after: ["b"]), stage("d")], failFast: true)
        #expect(starts(scheduler.next(limit: 2)) == ["a", "b"])
        scheduler.finished("a", .timedOut)
        #expect(Set(skips(scheduler.next(limit: 2))) == ["c", "d"])
        scheduler.finished("b", .succeeded)
        _ = scheduler.next(limit: 2)
        #expect(scheduler.isDone)
    }

    @Test func aFalseConditionCountsAsDone() {
        var scheduler = Scheduler(stages: [stage("gate"), stage("deploy", after: ["gate"])], initial: ["gate": .conditionFalse])
        #expect(starts(scheduler.next(limit: 4)) == ["deploy"])
        scheduler.finished("deploy", .succeeded)
        #expect(scheduler.outcome == .succeeded)
    }

    @Test func aResumedRunStartsAfterWhatSucceeded() {
        var scheduler = Scheduler(
            stages: [stage("a"), stage("b", after: ["a"]), stage("c", after: ["b"])], initial: ["a": .succeeded])
        #expect(starts(scheduler.next(limit: 4)) == ["b"])
    }

    @Test func stoppingCancelsWhatHasNotStarted() {
        var scheduler = Scheduler(stages: [stage("a"), stage("b", after: ["a"])])
        _ = scheduler.next(limit: 4)
        scheduler.stop("cancelled (Ctrl-C)")
        #expect(skips(scheduler.next(limit: 4)) == ["b"])
        scheduler.finished("a", .cancelled)
        #expect(scheduler.isDone)
        #expect(scheduler.outcome == .cancelled)
    }

    @Test func planWavesAndServiceSelection() throws {
        let api = ServiceSpec(
            name: "api", repository: "r", port: 1, protocol: .http, hostname: "api", build: BuildSpec(context: "."),
            taskDefinition: "t", healthCheck: .tcp)
        var web = api
        web.name = "web"
        let plan = Plan(
            pipeline: "p", source: Source(), parallelism: 2,
            environment: EnvironmentSpec(name: "e", branch: "b", region: "r", cluster: "c"), services: [api, web],
            notifications: [],
            stages: [
                stage("checkout"),
                Stage(id: "api.build", service: "api", dependsOn: ["checkout"], spec: .shell(ShellSpec(command: "true"))),
                Stage(id: "web.build", service: "web", dependsOn: ["checkout"], spec: .shell(ShellSpec(command: "true"))),
                stage("gate", after: ["api.build", "web.build"]),
            ])
        #expect(plan.waves() == [["checkout"], ["api.build", "web.build"], ["gate"]])
        let only = try plan.selecting(services: ["web"])
        #expect(only.stages.map(\.id) == ["checkout", "web.build", "gate"])
        #expect(only.stages.last?.dependsOn == ["web.build"])
        #expect(throws: LoadError.self) { try plan.selecting(services: ["nope"]) }
    }
}
