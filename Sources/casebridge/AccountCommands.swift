import ArgumentParser
import CaseBridgeNode
import CaseBridgeProto
import Foundation

/// Where the terminal user's sessions live: one owner-only file per node, under
/// `$CASEBRIDGE_SESSIONS` or `~/.casebridge/sessions`.
enum SessionFile {
    static var folder: URL {
        let environment = ProcessInfo.processInfo.environment
        if let custom = environment["CASEBRIDGE_SESSIONS"], !custom.isEmpty { return URL(fileURLWithPath: custom) }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".casebridge/sessions")
    }

    static func path(_ node: String) -> URL { folder.appendingPathComponent("\(node).session") }

    static func token(for node: String) -> String? {
        guard let text = try? String(contentsOf: path(node), encoding: .utf8) else { return nil }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return token.isEmpty ? nil : token
    }

    static func save(_ token: String, node: String) throws {
        let folder = self.folder
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        chmod(folder.path, 0o700)
        let file = path(node)
        try? FileManager.default.removeItem(at: file)
        // Created owner-only: the token is as good as the password and code together.
        guard
            FileManager.default.createFile(
                atPath: file.path,
                contents: Data(token.utf8),
                attributes: [.posixPermissions: 0o600]
            )
        else { throw fail("cannot write the session file \(file.path)") }
    }

    static func remove(_ node: String) { try? FileManager.default.removeItem(at: path(node)) }
}

/// Secrets typed by a person: read from the terminal without echo, or one line each from piped input.
enum SecretPrompt {
    static func ask(_ question: String) -> String {
        guard isatty(STDIN_FILENO) != 0 else { return readLine(strippingNewline: true) ?? "" }
        FileHandle.standardError.write(Data("\(question): ".utf8))
        var saved = termios()
        tcgetattr(STDIN_FILENO, &saved)
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet)
        defer {
            tcsetattr(STDIN_FILENO, TCSANOW, &saved)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        return readLine(strippingNewline: true) ?? ""
    }

    /// A visible answer (a login, a code): not secret, but still not an argument.
    static func askVisible(_ question: String) -> String {
        if isatty(STDIN_FILENO) != 0 { FileHandle.standardError.write(Data("\(question): ".utf8)) }
        return (readLine(strippingNewline: true) ?? "").trimmingCharacters(in: .whitespaces)
    }
}

struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Sign in to your node with your password and a code from your authenticator app.",
        discussion: """
            The password and the code are asked on the terminal (or read from standard input, one \
            line each). The session is kept for you in ~/.casebridge/sessions (owner-only); it ends \
            after 30 minutes without use or 12 hours in all, or with `casebridge logout`. Lost your \
            phone? Type one of your recovery codes instead of the code.

            Example: casebridge login dara.sok --config nodes/ncct.json
            """
    )

    @Argument(help: "Your login.") var login: String
    @OptionGroup var node: NodeOptions

    func run() async throws {
        let console = try node.console()
        defer { console.channel.close() }
        var request = LoginRequest()
        request.login = login
        request.password = SecretPrompt.ask("Password for \(login)")
        request.code = SecretPrompt.askVisible("Code from your authenticator app (or a recovery code)")
        request.client = "casebridge"
        let reply = try await console.call(Console.login, request)
        try SessionFile.save(reply.token, node: console.configuration.nodeID)
        let account = reply.account ?? StaffAccount()
        let left = reply.recoveryCodesLeft < 4 ? "; \(reply.recoveryCodesLeft) recovery codes left" : ""
        node.say(
            "Signed in to \(console.configuration.nodeID) as \(account.displayName) (\(account.role))\(left).",
            [
                "node": console.configuration.nodeID, "login": account.login, "role": "\(account.role)",
                "expires_at_ms": reply.expiresAtMs,
            ]
        )
    }
}

struct LogoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logout",
        abstract: "End your session at your node."
    )
    @OptionGroup var node: NodeOptions

    func run() async throws {
        let console = try node.console()
        defer { console.channel.close() }
        if console.session != nil { _ = try? await console.call(Console.logout, LogoutRequest()) }
        SessionFile.remove(console.configuration.nodeID)
        print("Signed out of \(console.configuration.nodeID).")
    }
}

struct WhoAmICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "whoami",
        abstract: "Show the account you are signed in with."
    )
    @OptionGroup var node: NodeOptions

    func run() async throws {
        let console = try node.console()
        defer { console.channel.close() }
        let account = try await console.call(Console.whoAmI, WhoAmIRequest())
        if node.json {
            Output.json(ProtoJSON.object(account))
        } else {
            print("\(account.displayName) (\(account.login)), \(account.role) at \(console.configuration.nodeID)")
        }
    }
}

struct EnrolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enrol",
        abstract: "Set up your new account: choose a password and add it to your authenticator app.",
        discussion: """
            You need the enrolment code that whoever created your account gave you. The command \
            shows a QR code (and the secret and otpauth:// link) for your authenticator app, asks \
            for a password of at least 12 characters and for the app's current code, then prints \
            ten recovery codes (keep them somewhere safe, apart from the phone) and signs you in.

            Example: casebridge enrol dara.sok --config nodes/ncct.json
            """
    )

    @Argument(help: "Your login.") var login: String
    @OptionGroup var node: NodeOptions

    func run() async throws {
        let console = try node.console()
        defer { console.channel.close() }
        var begin = BeginEnrolmentRequest()
        begin.login = login
        begin.enrolmentCode = SecretPrompt.askVisible("Enrolment code")
        let secret = try await console.call(Console.beginEnrolment, begin)
        let interactive = isatty(STDIN_FILENO) != 0
        if node.json {
            Output.json(["secret": secret.secret, "uri": secret.uri])
        } else {
            if interactive { print(secret.qrText) }
            print("Add this account to your authenticator app: scan the QR code, or type the secret.")
            print("Secret: \(secret.secret)")
            print("Link:   \(secret.uri)")
        }
        var complete = CompleteEnrolmentRequest()
        complete.login = login
        complete.enrolmentCode = begin.enrolmentCode
        complete.newPassword = SecretPrompt.ask("Choose a password (at least 12 characters)")
        if interactive, SecretPrompt.ask("The same password again") != complete.newPassword {
            throw fail("the two passwords differ; run casebridge enrol again", code: Exit.badInput)
        }
        complete.code = SecretPrompt.askVisible("Code now shown by the app")
        complete.client = "casebridge"
        let done = try await console.call(Console.completeEnrolment, complete)
        if let session = done.session { try SessionFile.save(session.token, node: console.configuration.nodeID) }
        if node.json {
            Output.json(["login": login, "recovery_codes": done.recoveryCodes])
        } else {
            print("Enrolled and signed in. Your recovery codes (each works once, instead of the app's code):")
            for code in done.recoveryCodes { print("  \(code)") }
        }
    }
}

struct StaffCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "staff",
        abstract: "Staff accounts: add, list, disable, enable, change role, reset.",
        discussion: """
            Operators manage every account; supervisors manage officers. On a node without accounts, \
            the first operator is added on the node's own machine without signing in:
              casebridge staff add ops.admin --name "Operations desk" --role operator
            """,
        subcommands: [
            StaffAddCommand.self, StaffListCommand.self, StaffDisableCommand.self, StaffEnableCommand.self,
            StaffRoleCommand.self, StaffResetCommand.self, StaffSignOutCommand.self,
        ]
    )
}

/// Prints a new enrolment code, to be handed to the account's owner.
private func printEnrolment(_ enrolment: StaffEnrolment, node: NodeOptions, nodeID: String) {
    let account = enrolment.account ?? StaffAccount()
    node.say(
        """
        Account \(account.login) (\(account.displayName), \(account.role)) is ready for enrolment.
        Give its owner this one-time enrolment code by a second channel (valid until \
        \(Output.time(enrolment.expiresAtMs))):
          \(enrolment.enrolmentCode)
        They run: casebridge enrol \(account.login) --config <the node's configuration>
        """,
        [
            "login": account.login, "node": nodeID, "enrolment_code": enrolment.enrolmentCode,
            "expires_at_ms": enrolment.expiresAtMs,
        ]
    )
}

struct StaffAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Add an account.")
    @Argument(help: "Login: lower-case letters, digits, '.', '-', '_'.") var login: String
    @Option(help: "Display name, shown to the other agency on every change.") var name: String
    @Option(help: "officer, supervisor, auditor or operator.") var role: String
    @OptionGroup var node: NodeOptions

    func run() async throws {
        let console = try node.console()
        defer { console.channel.close() }
        var request = AddStaffRequest()
        request.login = login
        request.displayName = name
        request.role = try staffRole(role)
        printEnrolment(
            try await console.call(Console.addStaff, request),
            node: node,
            nodeID: console.configuration.nodeID
        )
    }
}

func staffRole(_ name: String) throws -> StaffRole {
    guard let role = StaffRole(name: name), role != .unspecified else {
        throw fail("role: one of \(StaffRole.choices.joined(separator: ", "))", code: Exit.badInput)
    }
    return role
}

struct StaffListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the node's accounts.")
    @OptionGroup var node: NodeOptions

    func run() async throws {
        let console = try node.console()
        defer { console.channel.close() }
        let accounts = try await console.stream(Console.listStaff, ListStaffRequest())
        if Output.printedAsJSONOrEmpty(accounts, json: node.json, empty: "No accounts.") { return }
        Output.table(
            ["LOGIN", "NAME", "ROLE", "STATE", "LAST SIGN-IN"],
            accounts.map { account in
                let state =
                    account.disabled
                    ? "disabled" : account.lockedUntilMs > 0 ? "locked" : account.enrolled ? "active" : "enrolling"
                return [
                    account.login, account.displayName, "\(account.role)", state, Output.time(account.lastLoginAtMs),
                ]
            },
            flexible: ["NAME"]
        )
    }
}

/// `staff disable|enable|role`: one change to one account.
private func changeStaff(
    _ login: String,
    _ change: ChangeStaffRequest.Change,
    role: StaffRole = .unspecified,
    node: NodeOptions
) async throws {
    let console = try node.console()
    defer { console.channel.close() }
    var request = ChangeStaffRequest()
    request.login = login
    request.change = change
    request.role = role
    let account = try await console.call(Console.changeStaff, request)
    let state =
        switch change {
        case .role: "now \(account.role.article) \(account.role) (its sessions ended)"
        case .signOut: "signed out everywhere"
        default: account.disabled ? "disabled (its sessions ended)" : "enabled"
        }
    node.say("Account \(account.login) is \(state).", ProtoJSON.object(account))
}

struct StaffDisableCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "disable", abstract: "Disable an account.")
    @Argument(help: "Login.") var login: String
    @OptionGroup var node: NodeOptions
    func run() async throws { try await changeStaff(login, .disable, node: node) }
}

struct StaffEnableCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "enable", abstract: "Enable a disabled account.")
    @Argument(help: "Login.") var login: String
    @OptionGroup var node: NodeOptions
    func run() async throws { try await changeStaff(login, .enable, node: node) }
}

struct StaffRoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "role", abstract: "Change an account's role.")
    @Argument(help: "Login.") var login: String
    @Argument(help: "officer, supervisor, auditor or operator.") var role: String
    @OptionGroup var node: NodeOptions
    func run() async throws { try await changeStaff(login, .role, role: try staffRole(role), node: node) }
}

struct StaffSignOutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign-out",
        abstract: "End every session of an account (a lost or shared computer); it signs in again."
    )
    @Argument(help: "Login.") var login: String
    @OptionGroup var node: NodeOptions
    func run() async throws { try await changeStaff(login, .signOut, node: node) }
}

struct StaffResetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset",
        abstract: "A forgotten password or a lost phone: a new enrolment code (sessions end)."
    )
    @Argument(help: "Login.") var login: String
    @OptionGroup var node: NodeOptions

    func run() async throws {
        let console = try node.console()
        defer { console.channel.close() }
        var request = ResetStaffRequest()
        request.login = login
        printEnrolment(
            try await console.call(Console.resetStaff, request),
            node: node,
            nodeID: console.configuration.nodeID
        )
    }
}

struct AccessLogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "access-log",
        abstract: "Who read which case's personal data, when and through what (auditors).",
        discussion: "Example: casebridge access-log --staff dara.sok --since 2026-11-01"
    )
    @Option(help: "Only this login.") var staff: String = ""
    @Option(name: .customLong("case"), help: "Only this case (id).") var caseID: String = ""
    @Option(help: "From this day or time (YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC).") var since: String?
    @Option(help: "Before this day or time.") var until: String?
    @Option(help: "At most this many (newest first).") var limit: UInt32 = 100
    @Option(help: "Only entries before this id (to page back).") var before: UInt64 = 0
    @OptionGroup var node: NodeOptions

    func run() async throws {
        let console = try node.console()
        defer { console.channel.close() }
        var request = ListAccessRequest()
        request.login = staff
        request.caseID = caseID
        request.sinceMs = try since.map { try timeMs($0, field: "--since") } ?? 0
        request.untilMs = try until.map { try timeMs($0, field: "--until") } ?? 0
        request.limit = limit
        request.beforeID = before
        let entries = try await console.stream(Console.listAccess, request)
        if Output.printedAsJSONOrEmpty(entries, json: node.json, empty: "No reads recorded.") { return }
        Output.table(
            ["ID", "WHEN", "WHO", "CASE", "WHAT", "VIA"],
            entries.map {
                [
                    String($0.id), Output.time($0.atMs), "\($0.displayName) (\($0.login))", Output.shortID($0.caseID),
                    $0.what, $0.via,
                ]
            },
            flexible: ["WHO", "VIA"]
        )
        if entries.count == Int(limit), let last = entries.last {
            print("More: casebridge access-log --before \(last.id)")
        }
    }
}

/// A day or a minute in UTC, as people type it.
func timeMs(_ text: String, field: String) throws -> Int64 {
    let formatter = DateFormatter()
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.locale = Locale(identifier: "en_US_POSIX")
    for format in ["yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd HH:mm", "yyyy-MM-dd"] {
        formatter.dateFormat = format
        if let date = formatter.date(from: text) { return Int64(date.timeIntervalSince1970 * 1000) }
    }
    throw fail("\(field): a day (2026-11-23) or a time (2026-11-23T14:05), UTC", code: Exit.badInput)
}
