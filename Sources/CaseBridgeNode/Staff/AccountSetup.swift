import CaseBridgeProto
import CaseBridgeRPC
import Foundation

/// Adding and enrolling an account in one go, computing the authenticator's codes itself: what the
/// demo does for its made-up staff, and what tests do for theirs. People use `casebridge enrol`.
public struct AccountSetup: Sendable {
    public let login: String
    public let password: String
    /// The TOTP secret, to compute codes for later sign-ins.
    public let secret: [UInt8]
    public let recoveryCodes: [String]
    /// The session enrolment opened.
    public let token: String

    /// Adds the account (as `by`, a session token; nil for the first operator over the local
    /// socket) and completes its enrolment.
    public static func add(
        _ login: String,
        name: String,
        role: StaffRole,
        password: String,
        through channel: RPCChannel,
        by token: String?
    ) async throws -> AccountSetup {
        var add = AddStaffRequest()
        add.login = login
        add.displayName = name
        add.role = role
        let enrolment = try await channel.unary(Console.addStaff, add, metadata: bearer(token), timeout: .seconds(30))
        var begin = BeginEnrolmentRequest()
        begin.login = login
        begin.enrolmentCode = enrolment.enrolmentCode
        let totp = try await channel.unary(Console.beginEnrolment, begin, timeout: .seconds(30))
        let secret = Base32.decode(totp.secret) ?? []
        var complete = CompleteEnrolmentRequest()
        complete.login = login
        complete.enrolmentCode = enrolment.enrolmentCode
        complete.newPassword = password
        complete.code = TOTP.code(secret: secret, step: TOTP.step(atMs: Clock.nowMs()))
        complete.client = "setup"
        let done = try await channel.unary(Console.completeEnrolment, complete, timeout: .seconds(30))
        return AccountSetup(
            login: login,
            password: password,
            secret: secret,
            recoveryCodes: done.recoveryCodes,
            token: done.session?.token ?? ""
        )
    }

    /// Signs in again with a code of `stepsAhead` steps from now (a code works once: a second
    /// sign-in within the same 30 seconds takes the next step's code).
    public func login(
        through channel: RPCChannel,
        stepsAhead: Int64 = 1,
        client: String = "setup"
    ) async throws
        -> LoginReply
    {
        var request = LoginRequest()
        request.login = login
        request.password = password
        request.code = TOTP.code(secret: secret, step: TOTP.step(atMs: Clock.nowMs()) + stepsAhead)
        request.client = client
        return try await channel.unary(Console.login, request, timeout: .seconds(30))
    }

    /// "authorization: Bearer <token>", or nothing.
    public static func bearer(_ token: String?) -> Metadata {
        var metadata = Metadata()
        if let token, !token.isEmpty { metadata.add("authorization", "Bearer \(token)") }
        return metadata
    }
}
