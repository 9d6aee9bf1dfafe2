import CaseBridgeTLS
import Foundation
import Synchronization

/// What will stop the federation working if nobody acts: this node's certificate, the CA's, and
/// the CRL reaching their end. Warned about in `status` and the log from `expiryWarning` before.
final class ExpiryWatch: Sendable {
    private struct Dates: Sendable {
        var crl: String?
        var crlNextUpdate: Int64?
        var certificateNotAfter: Int64?
        var caNotAfter: Int64?
        var warningSeconds: Int64
    }
    private let dates: Mutex<Dates>

    init(configuration: NodeConfiguration) { dates = Mutex(Self.read(configuration)) }

    /// The files again, after a reload.
    func refresh(_ configuration: NodeConfiguration) { dates.withLock { $0 = Self.read(configuration) } }

    var crl: String? { dates.withLock { $0.crl } }
    var crlNextUpdate: Int64? { dates.withLock { $0.crlNextUpdate } }
    var certificateNotAfter: Int64? { dates.withLock { $0.certificateNotAfter } }

    private static func read(_ configuration: NodeConfiguration) -> Dates {
        let crlNextUpdate = configuration.crl.flatMap { path in
            (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { try? RevocationList.nextUpdate($0) }
        }
        func notAfter(_ path: String) -> Int64? {
            (try? String(contentsOfFile: path, encoding: .utf8)).flatMap {
                try? CertificateAuthority.describe(certificatePEM: $0).notAfter
            }
        }
        return Dates(
            crl: configuration.crl,
            crlNextUpdate: crlNextUpdate,
            certificateNotAfter: notAfter(configuration.certificate),
            caNotAfter: notAfter(configuration.ca),
            warningSeconds: configuration.expiryWarning.components.seconds
        )
    }

    /// One sentence per thing to act on, soonest first; empty when all is well.
    func warnings(now: Int64 = Int64(Date().timeIntervalSince1970)) -> [String] {
        let dates = self.dates.withLock { $0 }
        let warningSeconds = dates.warningSeconds
        var found: [(at: Int64, text: String)] = []
        func check(_ at: Int64?, _ what: String, passed: String, soon: String) {
            guard let at else { return }
            let day = Clock.utc(ms: at * 1000, minutes: false)
            if at <= now {
                found.append((at, "\(what) \(passed) on \(day): \(soon)"))
            } else if at - now <= warningSeconds {
                let days = (at - now + 86_399) / 86_400
                found.append((at, "\(what) ends on \(day), in \(days) day\(days == 1 ? "" : "s"): \(soon)"))
            }
        }
        check(
            dates.crlNextUpdate,
            "the CRL",
            passed: "went stale",
            soon:
                "every peer of the CA is refused once it is stale; have the CA issue a fresh one (casebridge certs crl)"
        )
        check(
            dates.certificateNotAfter,
            "this node's certificate",
            passed: "expired",
            soon: "peers refuse this node once it has expired; request a new one (casebridge certs request)"
        )
        check(
            dates.caNotAfter,
            "the federation CA's certificate",
            passed: "expired",
            soon: "every certificate it signed stops being accepted; the federation needs a new CA"
        )
        var sentences = found.sorted { $0.at < $1.at }.map(\.text)
        if dates.crl == nil {
            sentences.append(
                "revocation is off (\"crl\": \"none\"): certificates the federation revoked are not refused"
            )
        }
        return sentences
    }
}
