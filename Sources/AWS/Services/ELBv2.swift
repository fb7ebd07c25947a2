import Foundation

/// Elastic Load Balancing v2 (Query protocol): the health of a target group's targets.
public enum ELBv2 {
    /// One target and its health.
    public struct TargetHealth: Sendable, Equatable {
        /// The target's id (an IP address for Fargate tasks).
        public let id: String
        /// Its port.
        public let port: Int?
        /// `initial`, `healthy`, `unhealthy`, `unused`, `draining`, `unavailable`.
        public let state: String
        /// Why, when not healthy (`Target.ResponseCodeMismatch`).
        public let reason: String?
        /// The load balancer's words.
        public let description: String?
    }
}

extension AWSClient {
    /// DescribeTargetHealth of the target group `arn`.
    public func targetHealth(targetGroup arn: String) async throws(AWSError) -> [ELBv2.TargetHealth] {
        let xml = try await query(
            .elasticLoadBalancingV2, action: "DescribeTargetHealth", version: "2015-12-01", parameters: [("TargetGroupArn", arn)])
        return XMLText.all("member", in: XMLText.first("TargetHealthDescriptions", in: xml) ?? "").compactMap { member in
            guard let target = XMLText.first("Target", in: member), let id = XMLText.first("Id", in: target) else { return nil }
            let health = XMLText.first("TargetHealth", in: member) ?? ""
            return ELBv2.TargetHealth(
                id: id, port: XMLText.first("Port", in: target).flatMap(Int.init), state: XMLText.first("State", in: health) ?? "unknown",
                reason: XMLText.first("Reason", in: health), description: XMLText.first("Description", in: health))
        }
    }
}
