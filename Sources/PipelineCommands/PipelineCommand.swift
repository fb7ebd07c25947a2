import ArgumentParser

/// The `pipeline` command: deploys microservices to ECS from Swift pipelines.
public struct PipelineCommand: AsyncParsableCommand {
    /// The version `pipeline --version` prints.
    public static let version = "0.1.0"

    /// The command's name, help and subcommands.
    public static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Deploy microservices to AWS ECS Fargate from pipelines written in Swift.",
        discussion: """
            Pipelines are Swift files in pipelines/ (Pipeline.swift is the entry file). The pipelines folder is \
            --pipelines, else $PIPELINE_PIPELINES, else the nearest pipelines/ at or above the working folder; \
            state lives in $PIPELINE_HOME (default: .pipeline/ beside pipelines/).

            EXIT CODES
              0    ok (also: nothing to do; a run superseded by a newer commit's)
              1    a stage failed, or the run failed and a service was rolled back
              2    bad input, a refusal or a pipeline definition error: nothing was changed; the message says what to fix
              3    busy: another run holds the environment (--no-wait) or waits at an approval gate, or another live
                   runner owns the run (resume)
              4    the run waits for approval (`pipeline approve ENV`)
              70   internal error: a bug in pipeline, please report it with the message
              74   the run's state or logs could not be recorded (a full disk, an unwritable database or cache), or
                   another runner took the run over: its stages were stopped; the message says what failed
              130  cancelled (Ctrl-C or SIGTERM)
            """,
        version: version,
        subcommands: [Plan.self, List.self, Run.self, Diff.self, Approve.self, Reject.self, Rollback.self, Deployments.self, HooksGroup.self, Watch.self, Stats.self, Checkout.self, AWSGroup.self, ImageGroup.self, Status.self, History.self, Logs.self, Resume.self, GC.self, Serve.self, Login.self, UsersGroup.self, TokensGroup.self, StageCommand.self]
    )

    /// Makes the command; argument-parser fills it in.
    public init() {}
}
