import PipelineDSL

/// The five services of the comyno platform. Each builds from services/NAME/Dockerfile in the application
/// repository, registers pipelines/taskdefs/NAME.json, and answers at its hostname under the environment's domain
/// (`user.staging.comyno.net`, `api.comyno.net`), as the platform's endpoints are named.
let platformServices: [Service] = [
    Service("user-service", repository: "sv-user", port: 5000, protocol: .grpc)
        .hostname("user")
        .healthCheck(.grpc("/user.UserService/Check")),
    Service("expense-service", repository: "sv-expense", port: 5001, protocol: .grpc)
        .hostname("expense")
        .healthCheck(.grpc("/expense.ExpenseService/Check")),
    Service("notification-service", repository: "sv-notify", port: 5002, protocol: .grpc)
        .hostname("notify")
        .healthCheck(.grpc("/notify.NotifyService/Check")),
    Service("api-service", repository: "sv-core-api", port: 5003, protocol: .http)
        .hostname("api")
        .healthCheck(.http("/health")),
    Service("frontend-service", repository: "frontend-svc", port: 4201, protocol: .http)
        .hostname("front")
        .healthCheck(.http("/health")),
]

/// The people who may let a change through to production.
let releaseApprovers = ["alice", "bob", "carol"]
