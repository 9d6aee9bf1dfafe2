import CaseBridgeNode
import CaseBridgeProto
import Foundation
import Testing
import TestSupport

/// The console as Connect JSON over HTTPS, tried with Python's requests and with curl: the same
/// accounts, roles and refusals as the socket, plus what browsers need (cookies, CSRF, headers).
@Suite("The HTTPS console", .serialized)
struct ConsoleHTTPSTests {
    @Test("requests and curl sign in, file, read and stream; without a session, CSRF token or origin: refused")
    func connectJSON() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"], console: true)
        for node in federation.nodes { try await federation.start(node) }
        let port = try #require(federation.consolePorts["embassy-id"])
        let base = "https://127.0.0.1:\(port)"
        let ca = TestFederation.certs.appendingPathComponent("ca.pem").path
        let supervisor = try #require(federation.supervisors["embassy-id"])
        let result = try run(
            "python3",
            [repositoryRoot.appendingPathComponent("Tests/Peers/console_client.py").path, base, ca],
            environment: [
                "LOGIN": supervisor.login, "PASSWORD": supervisor.password,
                "TOTP_SECRET": Base32.encode(supervisor.secret),
            ]
        )
        #expect(result.status == 0, "\(result.stderr)")
        let seen = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        func pair(_ key: String) -> String { "\(seen[key] ?? "missing")" }
        #expect(pair("no_session").contains("401") && pair("no_session").contains("unauthenticated"))
        #expect(pair("wrong_password").contains("401"))
        #expect(seen["login"] as? Int == 200)
        #expect(seen["login_role"] as? String == "STAFF_ROLE_SUPERVISOR")
        let cookies = pair("set_cookie")
        #expect(cookies.contains("cb_session=") && cookies.contains("HttpOnly") && cookies.contains("Secure"))
        #expect(cookies.contains("SameSite=Strict") && cookies.contains("cb_csrf="), "\(cookies)")
        let headers = try #require(seen["security_headers"] as? [String: String])
        #expect(headers["Content-Security-Policy"]?.contains("default-src 'none'") == true)
        #expect(headers["X-Content-Type-Options"] == "nosniff" && headers["Cache-Control"] == "no-store")
        #expect(pair("cookie_without_csrf").contains("403"))
        #expect(pair("cookie_with_csrf").contains("200") && pair("cookie_with_csrf").contains("Supervisor embassy-id"))
        #expect(pair("cross_origin").contains("403"))
        #expect(pair("submit").contains("200") && pair("submit").contains("CASE_STATUS_SUBMITTED"), "\(pair("submit"))")
        let caseID = try #require(seen["case_id"] as? String)
        #expect(pair("get_case").contains("200") && pair("get_case").contains("Supervisor embassy-id"))
        #expect(pair("sse").contains("text/event-stream") && pair("sse").contains(caseID), "\(pair("sse"))")
        // One message frame (flags 0) for the one case, then the end-of-stream frame (flags 2).
        let stream = try #require(seen["connect_stream"] as? [Any])
        #expect(stream.first as? Int == 200)
        #expect(stream.dropFirst().first as? [Int] == [0, 2], "\(stream)")
        #expect(stream.last as? String == caseID)
        #expect(pair("bad_json").contains("400") && pair("bad_json").contains("invalid_argument"))
        #expect(pair("unknown_field").contains("caseIdd"), "\(pair("unknown_field"))")
        #expect(seen["no_method"] as? Int == 404)
        #expect(seen["logout"] as? Int == 200)
        #expect(pair("after_logout").contains("401"))

        // curl, as the README shows it, with the operator's token: status yes, persons' names no.
        let operatorToken = federation.operators["embassy-id"]!.token
        func curl(_ method: String, _ body: String, _ version: String) throws -> ProcessResult {
            try run(
                "curl",
                [
                    "-sS", version, "--cacert", ca, "\(base)/casebridge.v1.Console/\(method)",
                    "-H", "Content-Type: application/json", "-H", "Authorization: Bearer \(operatorToken)",
                    "-d", body, "-w", "HTTP/%{http_version}",
                ]
            )
        }
        // curl speaks HTTP/2 when offered (what browsers do too); HTTP/1.1 on request.
        for version in ["--http2", "--http1.1"] {
            let status = try curl("GetStatus", "{}", version)
            #expect(
                status.stdout.contains("\"nodeId\":\"embassy-id\""),
                "\(version): \(status.stdout) \(status.stderr)"
            )
            #expect(status.stdout.hasSuffix(version == "--http2" ? "HTTP/2" : "HTTP/1.1"), "\(status.stdout)")
            let viewed = try curl("GetCase", "{\"caseId\":\"\(caseID)\"}", version)
            #expect(viewed.stdout.contains(caseID) && !viewed.stdout.contains("Person 0 Https"), "\(viewed.stdout)")
            let listed = try curl("ListCases", "{}", version)
            #expect(listed.stdout.contains("data: {") && listed.stdout.contains("event: end"), "\(listed.stdout)")
            let bad = try curl("GetCase", "{\"caseId\": 5}", version)
            #expect(bad.stdout.contains("invalid_argument"), "\(bad.stdout)")
        }

        // The socket's audit log names the HTTPS sign-in and the account's actions.
        let audit = try federation.cli(["audit", "list", "--json"], node: "embassy-id", as: "op")
        #expect(audit.stdout.contains("via=https client=python-requests"), "\(audit.stdout.prefix(2000))")
        federation.stopAll()
    }
}
