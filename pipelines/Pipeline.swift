import PipelineDSL

// The comyno platform: five services, staging on every commit to `staging`, prod from `main` after approval.
Pipeline("comyno", parallelism: 4) {
    staging
    prod
    platformServices

    Checkout()

    EachService {
        BuildImage()
            .timeout(.minutes(20))
        // The SHA tag never moves; the environment's tag (`sv-user:staging`) follows what the environment runs, as
        // the platform tagged its images before this pipeline.
        PushImage(movingTags: ["{env}"])
            .timeout(.minutes(10))
            .retries(2, backoff: .seconds(5))
    }

    // Nothing in production changes until a person has looked at what is about to go out.
    Approval("release", approvers: releaseApprovers, required: 1, timeout: .hours(24),
             message: "Deploy {env} from the main branch", identityVariable: "PIPELINE_APPROVER")
        .when(.environment("prod"))

    EachService {
        RegisterTaskDefinition()
        UpdateService(waitTimeout: .minutes(15), noProgressTimeout: .minutes(5))
        DNSRecord(.cname("{var.LOAD_BALANCER}"))
        HealthCheck(deadline: .minutes(3), consecutiveSuccesses: 2)
    }
}
