import CaseBridgeProto
import CaseBridgeRPC

/// A signed-in staff account, as every console call sees it: the name on each action it takes.
public struct StaffMember: Sendable, Equatable {
    public let staffID: Int64
    public let login: String
    public let displayName: String
    public let role: StaffRole
    /// How the call came: "socket" or "https", and the client named at sign-in.
    public let via: String

    /// The audit log's actor for this account's actions.
    public var auditActor: String { "staff:\(login)" }

    /// Operators run the node and never see victims' personal data.
    public var seesPersonalData: Bool { role != .operator }

    /// Who acts while a node has no account yet: the local socket, adding the first operator.
    static let bootstrap = StaffMember(
        staffID: 0,
        login: "bootstrap",
        displayName: "local socket (first account)",
        role: .operator,
        via: "socket"
    )
}

/// What a console call needs of its caller's role. The README's role table is this table.
public enum StaffPermission: Sendable {
    /// Status of the node (every role).
    case signedIn
    /// Cases, the inbox, watching (operators see them without personal data).
    case readCases
    /// Finding persons by name, document, phone: personal data by nature.
    case search
    /// Filing requests and working cases.
    case workCases
    /// Decline, close, withdraw, entered_in_error; holding retention.
    case closeCases
    /// Cancel a delivery, deliver now.
    case manageDeliveries
    /// The audit log and its verification.
    case readAudit
    /// Who read which case's personal data.
    case readAccessLog
    /// Accounts: list (operators, supervisors, auditors), add and change (operators; supervisors for officers).
    case listStaff
    case manageStaff
    /// Backups and retention lists.
    case operateNode

    public func allows(_ role: StaffRole) -> Bool {
        switch self {
        case .signedIn: [.officer, .supervisor, .auditor, .operator].contains(role)
        case .readCases: [.officer, .supervisor, .auditor, .operator].contains(role)
        case .search: [.officer, .supervisor, .auditor].contains(role)
        case .workCases: [.officer, .supervisor].contains(role)
        case .closeCases: role == .supervisor
        case .manageDeliveries: [.supervisor, .operator].contains(role)
        case .readAudit: [.supervisor, .auditor, .operator].contains(role)
        case .readAccessLog: role == .auditor
        case .listStaff: [.supervisor, .auditor, .operator].contains(role)
        case .manageStaff: [.supervisor, .operator].contains(role)
        case .operateNode: [.supervisor, .auditor, .operator].contains(role)
        }
    }

    /// For people: what this permission is about.
    var purpose: String {
        switch self {
        case .signedIn: "use this node"
        case .readCases: "read cases"
        case .search: "search for persons"
        case .workCases: "file and work cases"
        case .closeCases: "decline, close, withdraw or mark a case entered in error"
        case .manageDeliveries: "manage deliveries"
        case .readAudit: "read the audit log"
        case .readAccessLog: "read the access log"
        case .listStaff: "list staff accounts"
        case .manageStaff: "manage staff accounts"
        case .operateNode: "operate the node"
        }
    }

    func check(_ member: StaffMember) throws {
        guard allows(member.role) else {
            throw RPCError(
                .permissionDenied,
                "\(member.login) is \(member.role.article) \(member.role): only \(rolesAllowed) may \(purpose)"
            )
        }
    }

    var rolesAllowed: String {
        let names = StaffRole.all.filter(allows).map { "\($0)s" }
        return names.count <= 1 ? names.joined() : names.dropLast().joined(separator: ", ") + " and " + names.last!
    }
}

extension StaffRole {
    static let all: [StaffRole] = [.officer, .supervisor, .auditor, .operator]

    /// "an officer", "a supervisor".
    public var article: String { self == .officer || self == .auditor || self == .operator ? "an" : "a" }
}

extension CaseUpdate.Change {
    /// Changes that end or void a case: a supervisor's decision.
    var closesCase: Bool {
        switch self {
        case .statusChange(let change):
            [.declined, .completed, .failed, .withdrawn, .enteredInError].contains(change.toStatus)
        case .withdrawal: true
        default: false
        }
    }
}
