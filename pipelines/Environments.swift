import PipelineDSL

/// Every commit to the staging branch goes here.
let staging = Environment("staging", branch: "staging", region: "us-east-1", cluster: "staging-cluster")
    .dns(zone: "staging.comyno.net")
    .serviceName("{service}-staging")
    .variables([
        "LOAD_BALANCER": "staging-alb.us-east-1.elb.amazonaws.com",
        "LOG_LEVEL": "debug",
        "EXECUTION_ROLE": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
    ])

/// Production: the main branch, behind a manual approval, and only images staging verified (built once there,
/// promoted here by digest).
let prod = Environment("prod", branch: "main", region: "us-east-1", cluster: "production-cluster")
    .requiresVerified(in: "staging")
    .dns(zone: "comyno.net")
    .serviceName("{service}")
    .variables([
        "LOAD_BALANCER": "production-alb.us-east-1.elb.amazonaws.com",
        "LOG_LEVEL": "info",
        "EXECUTION_ROLE": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
    ])
