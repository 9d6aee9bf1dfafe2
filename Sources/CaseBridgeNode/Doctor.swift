import CaseBridgeStore
import Foundation
import Logging

/// `casebridge doctor`: everything a node needs, checked in one go with the node stopped — the
/// configuration's files, the certificate against the directory, expiry ahead, the database page
/// by page, the data key against the case keys, and the audit chain.
public enum Doctor {
    struct Problem: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    public struct Finding: Sendable {
        public let ok: Bool
        public let check: String
        public let detail: String
    }

    public static func examine(_ configuration: NodeConfiguration, logger: Logger) async -> [Finding] {
        var findings: [Finding] = []
        func note(_ check: String, _ body: () throws -> String) {
            do { findings.append(Finding(ok: true, check: check, detail: try body())) } catch {
                findings.append(Finding(ok: false, check: check, detail: "\(error)"))
            }
        }
        var directory: Directory?
        note("directory") {
            let loaded = try Directory.load(configuration.directoryPath, caPath: configuration.ca)
            guard loaded.node(configuration.nodeID) != nil else {
                throw ConfigurationError(
                    file: configuration.directoryPath,
                    field: "nodes",
                    problem: "no entry for \(configuration.nodeID)"
                )
            }
            directory = loaded
            return "\(loaded.nodes.count) nodes in \(loaded.trustDomain)"
        }
        if let directory, let me = directory.node(configuration.nodeID) {
            note("certificate, key, CA and CRL") {
                _ = try Node.trustMaterial(configuration, directory: directory, me: me)
                return configuration.crl == nil ? "usable; revocation off" : "usable"
            }
        }
        let warnings = ExpiryWatch(configuration: configuration).warnings()
        findings.append(
            Finding(
                ok: warnings.isEmpty,
                check: "expiry",
                detail: warnings.isEmpty ? "nothing ends soon" : warnings.joined(separator: "; ")
            )
        )
        do {
            let store = try CaseStore(
                folder: configuration.dataFolder,
                // Only read: a doctor must not make a new key where the node's own is missing.
                dataKey: try DataKeyFile.load(configuration.dataKeyFile),
                logger: logger
            )
            defer { store.close() }
            note("database pages") {
                let problems = try store.read { try $0.integrityCheck() }
                guard problems == ["ok"] else {
                    throw Problem("damaged: \(problems.joined(separator: "; ")); restore it (casebridge restore)")
                }
                return "intact"
            }
            note("data key") {
                guard try store.read({ try $0.dataKeysOpen() }) else {
                    throw Problem("\(configuration.dataKeyFile) does not open the case keys")
                }
                return "opens the case keys"
            }
            note("audit chain") {
                let verification = try store.read { try $0.verifyAudit() }
                guard verification.intact else {
                    throw Problem("broken at entry \(verification.firstBadSeq): \(verification.detail)")
                }
                let own = try AuditCheckpoints.checkOwn(
                    store,
                    node: configuration.nodeID,
                    caPEM: try String(contentsOfFile: configuration.ca, encoding: .utf8)
                )
                if let problem = own.problem { throw Problem(problem) }
                return "intact, \(verification.entries) entries, \(own.checked) signed checkpoints match"
            }
        } catch {
            findings.append(Finding(ok: false, check: "database", detail: "\(error)"))
        }
        return findings
    }
}
