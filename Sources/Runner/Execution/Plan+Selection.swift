import PipelineDSL

extension Plan {
    /// The plan cut down to the stages of `services` and the run-level stages; dependencies on stages left out
    /// are dropped. Refused when a name is not a service of the plan.
    public func selecting(services: [String]) throws(LoadError) -> Plan {
        guard !services.isEmpty else { return self }
        let known = self.services.map(\.name)
        let unknown = services.filter { !known.contains($0) }
        guard unknown.isEmpty else {
            throw LoadError(
                .definition,
                "--only names unknown service \(unknown.joined(separator: ", ")); the pipeline has: \(known.joined(separator: ", "))")
        }
        var plan = self
        plan.stages = stages.filter { $0.service.map(services.contains) ?? true }
        let kept = Set(plan.stages.map(\.id))
        for index in plan.stages.indices { plan.stages[index].dependsOn.removeAll { !kept.contains($0) } }
        return plan
    }

    /// The stages in the waves they would start in if every stage succeeded and nothing limited parallelism.
    public func waves() -> [[String]] {
        var scheduler = Scheduler(stages: stages)
        var waves: [[String]] = []
        while !scheduler.isDone {
            let started = scheduler.next(limit: Int.max).compactMap { decision -> String? in
                if case .start(let id) = decision { return id }
                return nil
            }
            guard !started.isEmpty else { break }
            waves.append(started)
            for id in started { scheduler.finished(id, .succeeded) }
        }
        return waves
    }
}
