/// Who the credentials belong to.
public struct CallerIdentity: Sendable, Equatable {
    /// The account id.
    public let account: String
    /// The identity's ARN.
    public let arn: String
    /// The unique id of the user or role session.
    public let userID: String
}

extension AWSClient {
    /// STS GetCallerIdentity: who these credentials are.
    public func callerIdentity() async throws(AWSError) -> CallerIdentity {
        let xml = try await query(.sts, action: "GetCallerIdentity", version: "2011-06-15")
        guard let account = XMLText.first("Account", in: xml), let arn = XMLText.first("Arn", in: xml) else {
            throw AWSError(service: "sts", operation: "GetCallerIdentity", code: "Decoding", message: "no Account in the answer", requestID: XMLText.first("RequestId", in: xml), status: 200)
        }
        return CallerIdentity(account: account, arn: arn, userID: XMLText.first("UserId", in: xml) ?? "")
    }
}
