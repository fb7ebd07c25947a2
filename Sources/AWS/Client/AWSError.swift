import Foundation

/// An error answer from an AWS API, or a failure to get one.
public struct AWSError: Error, CustomStringConvertible, Sendable {
    /// The service (`ecs`).
    public let service: String
    /// The operation (`UpdateService`).
    public let operation: String
    /// The error code (`ClientException`, `ThrottlingException`), or a transport failure's kind.
    public let code: String
    /// The service's message.
    public let message: String
    /// The request id, for AWS support.
    public let requestID: String?
    /// The HTTP status (0 when no answer came).
    public let status: Int
    /// How many attempts were made before giving up.
    public var attempts = 1

    /// One readable line: "ecs UpdateService: ClientException: ... (request id ...)".
    public var description: String {
        var line = "\(service) \(operation): \(code): \(message)"
        if let requestID { line += " (request id \(requestID))" }
        if code == "RequestTimeTooSkewed" || code == "InvalidSignatureException" && message.lowercased().contains("expired") {
            line += "; this machine's clock is off: fix it (NTP) and try again"
        }
        return line
    }

    /// Decodes an error answer, whichever shape the service (or moto) used: JSON `__type`/`message`, or XML
    /// `<Code>`/`<Message>`.
    static func decode(service: String, operation: String, status: Int, headers: [(name: String, value: String)], body: [UInt8]) -> AWSError {
        let requestID = headers.first { ["x-amzn-requestid", "x-amz-request-id"].contains($0.name.lowercased()) }?.value
        let text = String(decoding: body, as: UTF8.self)
        var code = headers.first { $0.name.lowercased() == "x-amzn-errortype" }?.value.split(separator: ":").first.map(String.init)
        var message: String?
        if let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] {
            code = code ?? (object["__type"] as? String ?? object["code"] as? String)
            message = object["message"] as? String ?? object["Message"] as? String
        } else {
            code = code ?? XMLText.first("Code", in: text)
            message = XMLText.first("Message", in: text)
        }
        let shortCode = code.map { $0.split(separator: "#").last.map(String.init) ?? $0 } ?? "HTTP \(status)"
        return AWSError(
            service: service, operation: operation, code: shortCode, message: message ?? (text.isEmpty ? "no message" : String(text.prefix(300))),
            requestID: requestID ?? XMLText.first("RequestId", in: text), status: status)
    }
}

/// Reads single elements out of small XML answers.
enum XMLText {
    /// The text of the first `<name>` element, unescaped.
    static func first(_ name: String, in xml: String) -> String? {
        guard let open = xml.range(of: "<\(name)>"), let close = xml.range(of: "</\(name)>", range: open.upperBound..<xml.endIndex) else {
            return nil
        }
        return String(xml[open.upperBound..<close.lowerBound])
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}
