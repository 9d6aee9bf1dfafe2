import CaseBridgePasswords
import CaseBridgeProto
import CaseBridgeQR
import CaseBridgeRPC
import CaseBridgeStore
import CaseBridgeTLS
import Foundation

/// Staff accounts of this node: enrolment, sign-in with password and TOTP, sessions, lockout.
/// Every sign-in, failure and change to an account goes into the audit log.
public final class StaffAccounts: Sendable {
    let tracker: CaseTracker
    let settings: StaffSettings
    private var store: CaseStore { tracker.store }

    init(tracker: CaseTracker, settings: StaffSettings) {
        self.tracker = tracker
        self.settings = settings
    }

    static let wrongCredentials = "wrong login, password or code"

    // MARK: Sessions

    /// The account behind a session token, if the session is live; refreshes its idle clock.
    func member(token: String, via: String) async throws -> StaffMember {
        let hash = Digest.sha256(Array(token.utf8))
        let now = Clock.nowMs()
        guard let session = try store.read({ try $0.session(tokenHash: hash) }) else {
            throw RPCError(.unauthenticated, "not signed in (or signed out): sign in again (casebridge login)")
        }
        let idleMs = settings.sessionIdle.milliseconds, lifetimeMs = settings.sessionLifetime.milliseconds
        let expired =
            now - session.lastSeenAtMs > idleMs
            ? "idle for more than \(settings.sessionIdle.minutesText)"
            : now - session.createdAtMs > lifetimeMs ? "older than \(settings.sessionLifetime.minutesText)" : nil
        if let expired {
            try await store.write { db in try db.endSession(tokenHash: hash, atMs: now) }
            throw RPCError(.unauthenticated, "your session ended (\(expired)): sign in again (casebridge login)")
        }
        guard !session.staff.disabled else {
            throw RPCError(.unauthenticated, "account \(session.staff.login) is disabled")
        }
        // One write a minute at most per session, not one per call.
        if now - session.lastSeenAtMs > 60_000 {
            try await store.write { db in try db.touchSession(tokenHash: hash, atMs: now) }
        }
        return Self.member(session.staff, via: "\(via) (\(session.client))")
    }

    static func member(_ row: StaffRow, via: String) -> StaffMember {
        StaffMember(
            staffID: row.staffID,
            login: row.login,
            displayName: row.displayName,
            role: StaffRole(rawValue: row.role),
            via: via
        )
    }

    /// Whether the node has no account yet (the local socket may then add the first operator).
    func isEmpty() throws -> Bool { try store.read { try $0.staffCount() } == 0 }

    // MARK: Signing in

    public func login(_ request: LoginRequest, via: String) async throws -> LoginReply {
        let now = Clock.nowMs()
        let client = try Self.clientName(request.client)
        guard let account = try store.read({ try $0.staff(login: request.login) }) else {
            // As slow as a real check, so that timing does not tell which logins exist.
            _ = PasswordHash.verify(request.password, against: Self.decoyHash)
            await audit("staff.login", actor: "unknown", subject: "", outcome: "refused", "no such account")
            throw RPCError(.unauthenticated, Self.wrongCredentials)
        }
        try await refuseIfLocked(account, now: now)
        guard account.enrolled else {
            throw RPCError(
                .failedPrecondition,
                "\(account.login) has not finished enrolment: run casebridge enrol with the enrolment code"
            )
        }
        var totpStep: Int64? = nil
        var recoveryHash: [UInt8]? = nil
        var passwordOK = PasswordHash.verify(request.password, against: account.passwordHash ?? Self.decoyHash)
        if passwordOK {
            if TypedCode.looksLikeTypedCode(request.code) {
                recoveryHash = TypedCode.hash(request.code)
            } else if let secret = try store.read({ try $0.totpSecret(account.staffID) }) {
                totpStep = TOTP.matchingStep(request.code, secret: secret, atMs: now, lastUsed: account.totpLastStep)
                passwordOK = totpStep != nil
            } else {
                passwordOK = false
            }
        }
        if passwordOK, !account.disabled {
            let token = Self.newToken()
            let (reply, usedRecovery): (LoginReply?, Bool) = try await store.write { [totpStep, recoveryHash] db in
                if let recoveryHash, !(try db.useRecoveryCode(account.staffID, hash: recoveryHash, atMs: now)) {
                    return (nil, false)
                }
                try db.recordLogin(account.staffID, totpStep: totpStep, atMs: now)
                try db.startSession(
                    tokenHash: Digest.sha256(Array(token.utf8)),
                    staffID: account.staffID,
                    client: client,
                    atMs: now
                )
                try db.appendAudit(
                    event: "staff.login",
                    actor: "staff:\(account.login)",
                    subject: account.login,
                    outcome: "ok",
                    detail: "via=\(via) client=\(client)\(recoveryHash != nil ? " recovery-code" : "")",
                    atMs: now
                )
                var reply = LoginReply()
                reply.token = token
                reply.account = Self.view(try db.staff(login: account.login) ?? account)
                reply.idleTimeoutMs = self.settings.sessionIdle.milliseconds
                reply.expiresAtMs = now + self.settings.sessionLifetime.milliseconds
                reply.recoveryCodesLeft = UInt32(try db.recoveryCodesLeft(account.staffID))
                return (reply, recoveryHash != nil)
            }
            if let reply {
                if usedRecovery {
                    tracker.logger.notice(
                        "staff signed in with a recovery code",
                        metadata: ["login": "\(account.login)"]
                    )
                }
                return reply
            }
        }
        if passwordOK && account.disabled {
            await audit(
                "staff.login",
                actor: "staff:\(account.login)",
                subject: account.login,
                outcome: "refused",
                "account disabled"
            )
            throw RPCError(.permissionDenied, "account \(account.login) is disabled: ask an operator or a supervisor")
        }
        try await countFailure(account, now: now, reason: "wrong password or code")
        throw RPCError(.unauthenticated, Self.wrongCredentials)
    }

    public func logout(token: String, member: StaffMember) async throws {
        let now = Clock.nowMs()
        try await store.write { db in
            try db.endSession(tokenHash: Digest.sha256(Array(token.utf8)), atMs: now)
            try db.appendAudit(
                event: "staff.logout",
                actor: member.auditActor,
                subject: member.login,
                outcome: "ok",
                detail: "via=\(member.via)",
                atMs: now
            )
        }
    }

    private func refuseIfLocked(_ account: StaffRow, now: Int64) async throws {
        guard account.lockedUntilMs > now else { return }
        await audit(
            "staff.login",
            actor: "staff:\(account.login)",
            subject: account.login,
            outcome: "refused",
            "locked"
        )
        throw RPCError(
            .unauthenticated,
            "account \(account.login) is locked after repeated failed sign-ins until "
                + "\(Clock.utc(ms: account.lockedUntilMs, minutes: true)) UTC; "
                + "try again then, or ask an operator to reset it"
        )
    }

    private func countFailure(_ account: StaffRow, now: Int64, reason: String) async throws {
        let limit = settings.lockoutFailures
        let until = now + settings.lockout.milliseconds
        try await store.write { db in
            let locked = try db.recordFailedLogin(account.staffID, limit: limit, lockUntilMs: until)
            try db.appendAudit(
                event: "staff.login",
                actor: "staff:\(account.login)",
                subject: account.login,
                outcome: locked ? "locked" : "refused",
                detail: locked ? "\(reason); locked after \(limit) failures" : reason,
                atMs: now
            )
        }
    }

    // MARK: Accounts

    public func add(_ request: AddStaffRequest, by member: StaffMember) async throws -> StaffEnrolment {
        let login = try Self.checkedLogin(request.login)
        let name = try Self.checkedDisplayName(request.displayName)
        guard StaffRole.all.contains(request.role) else {
            throw RPCError(.invalidArgument, "role: one of officer, supervisor, auditor, operator")
        }
        try Self.mayManage(request.role, by: member)
        let code = TypedCode.make(groups: 4)
        let now = Clock.nowMs()
        let expires = now + settings.enrolmentValidity.milliseconds
        let row: StaffRow = try await store.write { db in
            if member == .bootstrap, try db.staffCount() > 0 {
                throw RPCError(.unauthenticated, "this node already has accounts: sign in first (casebridge login)")
            }
            guard try db.staff(login: login) == nil else { throw RPCError(.alreadyExists, "account \(login) exists") }
            let row = try db.addStaff(
                login: login,
                displayName: name,
                role: request.role.rawValue,
                enrolmentHash: TypedCode.hash(code),
                enrolmentExpiresAtMs: expires,
                atMs: now
            )
            try db.appendAudit(
                event: "staff.added",
                actor: member.auditActor,
                subject: login,
                outcome: "ok",
                detail: "role=\(request.role) name=\(name)",
                atMs: now
            )
            return row
        }
        var enrolment = StaffEnrolment()
        enrolment.account = Self.view(row)
        enrolment.enrolmentCode = code
        enrolment.expiresAtMs = expires
        return enrolment
    }

    public func list() throws -> [StaffAccount] { try store.read { try $0.allStaff() }.map(Self.view) }

    func account(_ login: String) throws -> StaffAccount? {
        try store.read { try $0.staff(login: login) }.map(Self.view)
    }

    public func change(_ request: ChangeStaffRequest, by member: StaffMember) async throws -> StaffAccount {
        let now = Clock.nowMs()
        return try await store.write { db in
            let account = try Self.existing(request.login, db)
            try Self.mayManage(StaffRole(rawValue: account.role), by: member)
            let detail: String
            switch request.change {
            case .disable, .enable:
                let disable = request.change == .disable
                guard !(disable && account.login == member.login) else {
                    throw RPCError(.failedPrecondition, "you cannot disable your own account")
                }
                try db.setStaffDisabled(account.staffID, disable, atMs: now)
                detail = disable ? "disabled" : "enabled"
            case .role:
                guard StaffRole.all.contains(request.role) else {
                    throw RPCError(.invalidArgument, "role: one of officer, supervisor, auditor, operator")
                }
                try Self.mayManage(request.role, by: member)
                guard account.login != member.login else {
                    throw RPCError(.failedPrecondition, "you cannot change your own role")
                }
                try db.setStaffRole(account.staffID, request.role.rawValue, atMs: now)
                detail = "role \(StaffRole(rawValue: account.role)) -> \(request.role)"
            case .signOut:
                try db.endSessions(of: account.staffID, atMs: now)
                detail = "signed out everywhere"
            default:
                throw RPCError(.invalidArgument, "change: one of disable, enable, role, sign_out")
            }
            try db.appendAudit(
                event: "staff.changed",
                actor: member.auditActor,
                subject: account.login,
                outcome: "ok",
                detail: detail,
                atMs: now
            )
            return Self.view(try Self.existing(account.login, db))
        }
    }

    public func reset(_ request: ResetStaffRequest, by member: StaffMember) async throws -> StaffEnrolment {
        let code = TypedCode.make(groups: 4)
        let now = Clock.nowMs()
        let expires = now + settings.enrolmentValidity.milliseconds
        let row: StaffRow = try await store.write { db in
            let account = try Self.existing(request.login, db)
            try Self.mayManage(StaffRole(rawValue: account.role), by: member)
            try db.resetStaff(account.staffID, enrolmentHash: TypedCode.hash(code), expiresAtMs: expires, atMs: now)
            try db.appendAudit(
                event: "staff.reset",
                actor: member.auditActor,
                subject: account.login,
                outcome: "ok",
                detail: "password and second factor cleared; sessions ended",
                atMs: now
            )
            return try Self.existing(account.login, db)
        }
        var enrolment = StaffEnrolment()
        enrolment.account = Self.view(row)
        enrolment.enrolmentCode = code
        enrolment.expiresAtMs = expires
        return enrolment
    }

    // MARK: Enrolment

    public func beginEnrolment(_ request: BeginEnrolmentRequest) async throws -> TOTPSecret {
        let account = try await enrolling(request.login, code: request.enrolmentCode)
        let secret: [UInt8] = try await store.write { db in
            if let existing = try db.totpSecret(account.staffID) { return existing }
            let secret = TOTP.newSecret()
            try db.setTOTPSecret(account.staffID, secret)
            return secret
        }
        var reply = TOTPSecret()
        reply.secret = Base32.encode(secret)
        reply.uri = TOTP.uri(secret: secret, issuer: "CaseBridge \(tracker.me.id)", account: account.login)
        reply.qrText = QRCode(reply.uri)?.text ?? ""
        return reply
    }

    public func completeEnrolment(_ request: CompleteEnrolmentRequest, via: String) async throws -> EnrolmentDone {
        let account = try await enrolling(request.login, code: request.enrolmentCode)
        try Self.checkPassword(request.newPassword, login: account.login)
        let now = Clock.nowMs()
        guard let secret = try store.read({ try $0.totpSecret(account.staffID) }) else {
            throw RPCError(.failedPrecondition, "begin enrolment first: the authenticator app needs its secret")
        }
        guard let step = TOTP.matchingStep(request.code, secret: secret, atMs: now, lastUsed: 0) else {
            try await countFailure(account, now: now, reason: "wrong code at enrolment")
            throw RPCError(
                .invalidArgument,
                "code: not the current code of the authenticator app (check that the phone's clock is right)"
            )
        }
        let hash = try PasswordHash.make(request.newPassword, salt: Sealing.randomBytes(16))
        let codes = (0..<10).map { _ in TypedCode.make(groups: 2) }
        try await store.write { db in
            try db.completeEnrolment(
                account.staffID,
                passwordHash: hash,
                totpStep: step - 1,
                recoveryCodeHashes: codes.map(TypedCode.hash)
            )
            try db.appendAudit(
                event: "staff.enrolled",
                actor: "staff:\(account.login)",
                subject: account.login,
                outcome: "ok",
                detail: "password and TOTP set; 10 recovery codes",
                atMs: now
            )
        }
        var login = LoginRequest()
        login.login = account.login
        login.password = request.newPassword
        login.code = request.code
        login.client = request.client
        var done = EnrolmentDone()
        done.recoveryCodes = codes
        done.session = try await self.login(login, via: via)
        return done
    }

    /// The account being enrolled, if `code` is its live enrolment code.
    private func enrolling(_ login: String, code: String) async throws -> StaffRow {
        let now = Clock.nowMs()
        guard let account = try store.read({ try $0.staff(login: login) }), let expected = account.enrolmentHash
        else {
            throw RPCError(.failedPrecondition, "no enrolment waiting for \(login): ask for a new enrolment code")
        }
        try await refuseIfLocked(account, now: now)
        guard TypedCode.hash(code) == expected else {
            try await countFailure(account, now: now, reason: "wrong enrolment code")
            throw RPCError(.unauthenticated, "wrong enrolment code")
        }
        guard account.enrolmentExpiresAtMs > now else {
            throw RPCError(
                .failedPrecondition,
                "the enrolment code expired: ask for a new one (casebridge staff reset)"
            )
        }
        guard !account.disabled else { throw RPCError(.permissionDenied, "account \(login) is disabled") }
        return account
    }

    // MARK: Checks

    /// Operators manage every account; supervisors manage officers.
    static func mayManage(_ role: StaffRole, by member: StaffMember) throws {
        try StaffPermission.manageStaff.check(member)
        guard member.role == .operator || role == .officer else {
            throw RPCError(.permissionDenied, "a supervisor manages officer accounts only; ask an operator")
        }
    }

    static func existing(_ login: String, _ db: Database) throws -> StaffRow {
        guard let row = try db.staff(login: login) else { throw RPCError(.notFound, "no account \(login)") }
        return row
    }

    static func checkedLogin(_ login: String) throws -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789.-_")
        guard (2...64).contains(login.count), login.allSatisfy(allowed.contains), login != StaffMember.bootstrap.login
        else {
            throw RPCError(.invalidArgument, "login: 2 to 64 lower-case letters, digits, '.', '-' or '_'")
        }
        return login
    }

    static func checkedDisplayName(_ name: String) throws -> String {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard (1...100).contains(trimmed.count),
            !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw RPCError(.invalidArgument, "display_name: 1 to 100 characters, no control characters")
        }
        return trimmed
    }

    static func checkPassword(_ password: String, login: String) throws {
        guard password.count >= 12 else { throw RPCError(.invalidArgument, "password: at least 12 characters") }
        guard password.utf8.count <= 1024 else { throw RPCError(.invalidArgument, "password: at most 1,024 bytes") }
        guard password.lowercased() != login else { throw RPCError(.invalidArgument, "password: not the login") }
    }

    static func clientName(_ client: String) throws -> String {
        guard client.count <= 40, client.allSatisfy({ $0.isLetter || $0.isNumber || " .-_/".contains($0) }) else {
            throw RPCError(.invalidArgument, "client: at most 40 letters, digits, spaces, '.', '-', '_' or '/'")
        }
        return client.isEmpty ? "unnamed" : client
    }

    static func view(_ row: StaffRow) -> StaffAccount {
        var account = StaffAccount()
        account.login = row.login
        account.displayName = row.displayName
        account.role = StaffRole(rawValue: row.role)
        account.disabled = row.disabled
        account.enrolled = row.enrolled
        account.createdAtMs = row.createdAtMs
        account.lastLoginAtMs = row.lastLoginAtMs
        account.lockedUntilMs = row.lockedUntilMs > Clock.nowMs() ? row.lockedUntilMs : 0
        return account
    }

    /// A session token: 256 random bits, base64url. Only its SHA-256 is stored.
    static func newToken() -> String {
        Base64.encode(Sealing.randomBytes(32), urlSafe: true)
    }

    /// Verified against when there is no real hash, so that every refusal costs the same.
    static let decoyHash: String = (try? PasswordHash.make("decoy password", salt: Sealing.randomBytes(16))) ?? ""

    private func audit(_ event: String, actor: String, subject: String, outcome: String, _ detail: String) async {
        await tracker.audit(event: event, actor: actor, subject: subject, outcome: outcome, detail: detail)
    }
}

extension Duration {
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }

    /// "30 minutes", "12 hours", "5 seconds".
    var minutesText: String {
        let seconds = components.seconds
        if seconds % 3600 == 0 { return "\(seconds / 3600) hours" }
        return seconds % 60 == 0 ? "\(seconds / 60) minutes" : "\(seconds) seconds"
    }
}
