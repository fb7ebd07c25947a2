import AWS
import Foundation
import PipelineDSL
import StageContract

/// The DNS stage: UPSERTs the service's Route 53 record, sends nothing when it already says the same, and waits
/// until Route 53 reports the change INSYNC.
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
            let id = try await client.changeRecordSets(zone: zone, changes: [change], comment: comment)
            print("UPSERT \(spec.name) \(wanted.type) → \(summary) (change \(id))")
            if spec.waitForSync {
                var status = try await client.changeStatus(id)
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

    /// A zone id as given (`Z...`), else the id of the zone of that name, looked up once per run: the first DNS
    /// stage asks Route 53 and keeps the answer in the run folder (`zones/NAME`), under a lock the others wait at,
    /// so five services' records cost one ListHostedZonesByName, not five.
    static func zoneID(_ zone: String, client: AWSClient, folder: RunFolder) async throws -> String {
        if zone.hasPrefix("Z") && !zone.contains(".") { return zone }
        let kept = folder.root.appending(path: "zones/\(RunFolder.fileName(zone.lowercased()))")
        try FileManager.default.createDirectory(at: kept.deletingLastPathComponent(), withIntermediateDirectories: true)
        let lock = open(kept.path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw StageError("cannot open \(kept.path).lock: \(String(cString: strerror(errno)))") }
        defer { close(lock) }  // closing releases the lock
        try await onOwnThread { () throws(StageError) in
            guard flock(lock, LOCK_EX) == 0 else { throw StageError("cannot lock \(kept.path).lock: \(String(cString: strerror(errno)))") }
        }
        // Not kept yet (or not a zone id: the file is the run's, but a stage could have written anything there).
        if let id = try? String(contentsOf: kept, encoding: .utf8), isZoneID(id) { return id }
        guard let found = try await client.hostedZone(named: zone) else {
            throw StageError("no hosted zone named \(zone); create it or fix .dns(zone:)")
        }
        try found.id.write(to: kept, atomically: true, encoding: .utf8)
        return found.id
    }

    /// A Route 53 hosted zone id as Route 53 answers it: upper-case letters and digits (`Z0123456ABCDEFGHIJ`).
    static func isZoneID(_ text: String) -> Bool {
        (1...32).contains(text.utf8.count) && text.utf8.allSatisfy { (48...57).contains($0) || (65...90).contains($0) }
    }

    /// Forgets the zone id a run kept for `zone` (it was stale: the zone was made again), so the next attempt asks.
    static func forgetZone(_ zone: String, folder: RunFolder) {
        // Nothing kept, or already gone: nothing to forget.
        try? FileManager.default.removeItem(at: folder.root.appending(path: "zones/\(RunFolder.fileName(zone.lowercased()))"))
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
