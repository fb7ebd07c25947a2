import Foundation

/// The Route 53 calls the DNS stage makes (REST-XML, API version 2013-04-01).
public enum Route53 {
    static let version = "2013-04-01"

    /// A hosted zone.
    public struct HostedZone: Sendable, Equatable {
        /// The id without its `/hostedzone/` prefix (`Z0123...`).
        public let id: String
        /// The name, with its final dot (`comyno.net.`).
        public let name: String
    }

    /// A record set as Route 53 lists it.
    public struct RecordSet: Sendable, Equatable {
        /// The full name, with its final dot.
        public let name: String
        /// `CNAME`, `A`, ...
        public let type: String
        /// Seconds, for a plain record.
        public let ttl: Int?
        /// The values, for a plain record.
        public let values: [String]
        /// The alias target's DNS name, for an alias record.
        public let aliasDNSName: String?
    }

    /// A record set to write.
    public struct Change: Sendable, Equatable {
        /// `UPSERT`, `CREATE` or `DELETE`.
        public var action: String
        /// The full name.
        public var name: String
        /// The type.
        public var type: String
        /// Seconds, for a plain record.
        public var ttl: Int?
        /// The values, for a plain record.
        public var values: [String]
        /// The alias target (DNS name, its hosted zone id, whether to evaluate its health).
        public var alias: (dnsName: String, hostedZoneId: String, evaluateTargetHealth: Bool)?

        /// A change.
        public init(action: String, name: String, type: String, ttl: Int?, values: [String],
                    alias: (dnsName: String, hostedZoneId: String, evaluateTargetHealth: Bool)? = nil) {
            self.action = action
            self.name = name
            self.type = type
            self.ttl = ttl
            self.values = values
            self.alias = alias
        }

        public static func == (a: Change, b: Change) -> Bool {
            a.action == b.action && a.name == b.name && a.type == b.type && a.ttl == b.ttl && a.values == b.values
                && a.alias?.dnsName == b.alias?.dnsName && a.alias?.hostedZoneId == b.alias?.hostedZoneId
        }

        var xml: String {
            var record = "<Name>\(XMLText.escape(name))</Name><Type>\(type)</Type>"
            if let alias {
                record += "<AliasTarget><HostedZoneId>\(XMLText.escape(alias.hostedZoneId))</HostedZoneId><DNSName>\(XMLText.escape(alias.dnsName))</DNSName><EvaluateTargetHealth>\(alias.evaluateTargetHealth)</EvaluateTargetHealth></AliasTarget>"
            } else {
                if let ttl { record += "<TTL>\(ttl)</TTL>" }
                record += "<ResourceRecords>" + values.map { "<ResourceRecord><Value>\(XMLText.escape($0))</Value></ResourceRecord>" }.joined() + "</ResourceRecords>"
            }
            return "<Change><Action>\(action)</Action><ResourceRecordSet>\(record)</ResourceRecordSet></Change>"
        }
    }
}

extension AWSClient {
    /// Route 53 ListHostedZonesByName: the zone named `name` (a final dot is optional), if there is one.
    public func hostedZone(named name: String) async throws(AWSError) -> Route53.HostedZone? {
        let wanted = name.hasSuffix(".") ? name : name + "."
        let xml = try await route53("ListHostedZonesByName", method: "GET", path: "/hostedzonesbyname", query: [("dnsname", wanted), ("maxitems", "1")])
        return XMLText.all("HostedZone", in: xml).compactMap { zone -> Route53.HostedZone? in
            guard let id = XMLText.first("Id", in: zone), let zoneName = XMLText.first("Name", in: zone) else { return nil }
            return Route53.HostedZone(id: id.replacingOccurrences(of: "/hostedzone/", with: ""), name: zoneName)
        }.first { $0.name.lowercased() == wanted.lowercased() }
    }

    /// Route 53 ListResourceRecordSets: the record of `name` and `type`, if there is one.
    public func recordSet(zone: String, name: String, type: String) async throws(AWSError) -> Route53.RecordSet? {
        let wanted = name.hasSuffix(".") ? name : name + "."
        let xml = try await route53(
            "ListResourceRecordSets", method: "GET", path: "/hostedzone/\(zone)/rrset",
            query: [("name", wanted), ("type", type), ("maxitems", "1")])
        return XMLText.all("ResourceRecordSet", in: xml).compactMap { set -> Route53.RecordSet? in
            guard let setName = XMLText.first("Name", in: set), let setType = XMLText.first("Type", in: set) else { return nil }
            return Route53.RecordSet(
                name: setName, type: setType, ttl: XMLText.first("TTL", in: set).flatMap(Int.init),
                values: XMLText.all("Value", in: set), aliasDNSName: XMLText.first("DNSName", in: set))
        }.first { $0.name.lowercased() == wanted.lowercased() && $0.type == type }
    }

    /// Route 53 ChangeResourceRecordSets: the change's id, and its status as the answer gives it (`PENDING`, or
    /// `INSYNC` when it is in effect already).
    public func changeRecordSets(
        zone: String, changes: [Route53.Change], comment: String
    ) async throws(AWSError) -> (id: String, status: String) {
        let body = """
            <?xml version="1.0" encoding="UTF-8"?>
            <ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/\(Route53.version)/"><ChangeBatch><Comment>\(XMLText.escape(comment))</Comment><Changes>\(changes.map(\.xml).joined())</Changes></ChangeBatch></ChangeResourceRecordSetsRequest>
            """
        let xml = try await route53("ChangeResourceRecordSets", method: "POST", path: "/hostedzone/\(zone)/rrset/", body: Array(body.utf8))
        guard let id = XMLText.first("Id", in: xml) else {
            throw AWSError(service: "route53", operation: "ChangeResourceRecordSets", code: "Decoding", message: "no ChangeInfo Id in the answer", requestID: nil, status: 200)
        }
        return (id.replacingOccurrences(of: "/change/", with: ""), XMLText.first("Status", in: xml) ?? "PENDING")
    }

    /// Route 53 GetChange: `PENDING` or `INSYNC`.
    public func changeStatus(_ id: String) async throws(AWSError) -> String {
        let xml = try await route53("GetChange", method: "GET", path: "/change/\(id)")
        return XMLText.first("Status", in: xml) ?? "PENDING"
    }

    private func route53(
        _ operation: String, method: String, path: String, query: [(String, String)] = [], body: [UInt8] = []
    ) async throws(AWSError) -> String {
        var headers: [(String, String)] = []
        if !body.isEmpty { headers.append(("Content-Type", "application/xml")) }
        return try await send(
            .route53, operation: operation, method: method, path: "/\(Route53.version)\(path)", query: query, headers: headers,
            body: body
        ).text
    }
}

extension XMLText {
    /// The inner text of every `<name>` element, in order.
    static func all(_ name: String, in xml: String) -> [String] {
        var found: [String] = []
        var rest = xml[...]
        while let open = rest.range(of: "<\(name)>"), let close = rest.range(of: "</\(name)>", range: open.upperBound..<rest.endIndex) {
            found.append(String(rest[open.upperBound..<close.lowerBound]))
            rest = rest[close.upperBound...]
        }
        return found
    }

    /// `text` with XML's special characters escaped.
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
