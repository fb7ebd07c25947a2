import AWS
import Foundation
import PipelineDSL
import StageContract

/// The DNS stage: UPSERTs the service's Route 53 record, sends nothing when it already says the same, and waits
/// until Route 53 reports the change INSYNC (in the change's answer, or asked with GetChange every 2 s).
enum DNSStage {
    static func run(_ spec: DNSRecordSpec, _ context: StageContext) async -> Int32 {
        do {
            let client = try context.awsClient()
            let zone = try await zoneID(spec.zone, client: client, folder: context.folder)
            let wanted = spec.record
            let current = try await client.recordSet(zone: zone, name: spec.name, type: wanted.type)
            let summary = wanted.alias.map { "alias \($0.dnsName)" } ?? wanted.values.joined(separator: ", ")
            if let current, matches(current, wanted) {
                print("\(spec.name) \(wanted.type) already points at \(summary): no change sent")
                try context.outputs.set(DNSOutput(changed: false, changeId: nil))
                return 0
            }
            let change = Route53.Change(
                action: "UPSERT", name: spec.name, type: wanted.type, ttl: wanted.alias == nil ? wanted.ttl : nil,
                values: wanted.values,
                alias: wanted.alias.map { ($0.dnsName, $0.hostedZoneId, $0.evaluateTargetHealth) })
            let comment = "pipeline run \(context.run.runID) of \(context.run.environment)"
            let (id, answered) = try await client.changeRecordSets(zone: zone, changes: [change], comment: comment)
            print("UPSERT \(spec.name) \(wanted.type) → \(summary) (change \(id))")
            if spec.waitForSync {
                // Asked at once, unless the change's own answer says it is in effect already.
                var status = answered == "INSYNC" ? answered : try await client.changeStatus(id)
                while status != "INSYNC" {
                    print("change \(id) is \(status); waiting")
                    try await Task.sleep(nanoseconds: 2_000_000_000)
                    status = try await client.changeStatus(id)
                }
                print("change \(id) is INSYNC")
            }
            try context.outputs.set(DNSOutput(changed: true, changeId: id))
            return 0
        } catch {
            var note = ""
            if let failure = error as? AWSError, failure.code == "NoSuchHostedZone" {
                forgetZone(spec.zone, folder: context.folder)
                note = " (the zone's id is looked up again on the next attempt)"
            }
            StageContext.fail("changing \(spec.name) in \(spec.zone): \(error)\(note)")
            return 1
        }
    }

    /// The ids of the zones the run's records are in, looked up once per run.
    static let zones = RunLookup(kind: "zones", isValid: isZoneID)

    /// A zone id as given (`Z...`), else the id of the zone of that name, looked up once per run (`zones`).
    static func zoneID(_ zone: String, client: AWSClient, folder: RunFolder) async throws -> String {
        if zone.hasPrefix("Z") && !zone.contains(".") { return zone }
        return try await zones.value(zone, folder: folder) {
            guard let found = try await client.hostedZone(named: zone) else {
                throw StageError("no hosted zone named \(zone); create it or fix .dns(zone:)")
            }
            return found.id
        }
    }

    /// A Route 53 hosted zone id as Route 53 answers it: upper-case letters and digits (`Z0123456ABCDEFGHIJ`).
    @Sendable static func isZoneID(_ text: String) -> Bool {
        (1...32).contains(text.utf8.count) && text.utf8.allSatisfy { (48...57).contains($0) || (65...90).contains($0) }
    }

    /// Forgets the zone id a run kept for `zone` (it was stale: the zone was made again), so the next attempt asks.
    static func forgetZone(_ zone: String, folder: RunFolder) {
        zones.forget(zone, folder: folder)
    }

    static func matches(_ current: Route53.RecordSet, _ wanted: DNSRecordValue) -> Bool {
        let bare = { (name: String) in name.lowercased().hasSuffix(".") ? String(name.lowercased().dropLast()) : name.lowercased() }
        if let alias = wanted.alias {
            return current.aliasDNSName.map { bare($0) == bare(alias.dnsName) } ?? false
        }
        return current.aliasDNSName == nil && current.ttl == wanted.ttl
            && Set(current.values.map(bare)) == Set(wanted.values.map(bare))
    }
}
