import CaseBridgeProto
import Foundation
import Testing
import TestSupport

/// Search over sealed data, at real nodes and with the casebridge command.
@Suite("Search", .serialized)
struct SearchTests {
    @Test(
        "found by name in any order without diacritics, by passport and by phone, only where they may be seen"
    )
    func findsWhereAllowed() async throws {
        let federation = try TestFederation()
        for node in federation.nodes { try await federation.start(node) }
        let embassy = federation.console("embassy-id")
        defer { embassy.close() }
        var request = Make.request(persons: 2)
        request.persons[0].fullName = "Nguyễn Thị Đào"
        request.persons[0].dateOfBirth = "1998-04-17"
        request.persons[0].phone = "+84901234567"
        var passport = TravelDocument()
        passport.number = "C1234567"
        request.persons[0].travelDocument = passport
        request.originReference = "VN-SEARCH-1"
        let caseID = try await embassy.unary(Console.submit, request).caseID
        var provided = InformationProvided()
        provided.text = "her cousin"
        var cousin = Person()
        cousin.personRef = "P7"
        cousin.fullName = "Wiremu Tawhiri"
        provided.addedPersons = [cousin]
        _ = try await embassy.unary(Console.applyChange, Make.update(caseID, .informationProvided(provided)))
        #expect(
            try await federation.eventually {
                try federation.sql("ncct", "SELECT COUNT(*) FROM persons WHERE case_id = '\(caseID)'") == ["3"]
            }
        )

        func search(_ node: String, _ query: String) async throws -> [SearchHit] {
            let console = federation.console(node)
            defer { console.close() }
            var search = SearchRequest()
            search.query = query
            var hits: [SearchHit] = []
            for try await hit in console.streaming(Console.search, [search]) { hits.append(hit) }
            return hits
        }
        for node in ["embassy-id", "ncct"] {
            for query in [
                "dao thi nguyen", "NGUYEN Dao", "Nguyễn Thị Đào", "C1234567",
                "c 123 4567".replacingOccurrences(of: " ", with: ""),
                "+84 90 123 4567", "1998-04-17",
            ] {
                let hits = try await search(node, query)
                #expect(
                    hits.map { "\($0.summary?.caseID ?? "")/\($0.personRef)" } == ["\(caseID)/P0"],
                    "\(node): \(query)"
                )
                #expect(hits.first?.fullName == "Nguyễn Thị Đào")
            }
            #expect(try await search(node, "tawhiri wiremu").map(\.personRef) == ["P7"], "\(node)")
            // The embassy's own reference finds everyone the request named.
            #expect(try await search(node, "vn-search-1").map(\.personRef) == ["P0", "P1"], "\(node)")
            #expect(try await search(node, "dao nguyen smith").isEmpty)
        }
        // Another embassy holds nothing of this case: nothing is found there.
        #expect(try await search("embassy-cn", "dao thi nguyen").isEmpty)
        #expect(try await search("embassy-cn", "C1234567").isEmpty)

        // At the command line the query is asked for, never taken from arguments, and never logged.
        let typed = try run(
            casebridgeBinary,
            ["search", "--config", federation.configPath("ncct").path],
            environment: federation.cliEnvironment(),
            input: "dao nguyen\n"
        )
        #expect(typed.status == 0, "\(typed.stderr)")
        #expect(
            typed.stdout.contains("Nguyễn Thị Đào") && typed.stdout.contains(String(caseID.prefix(8))),
            "\(typed.stdout)"
        )
        let inArguments = try run(
            casebridgeBinary,
            ["search", "dao", "nguyen", "--config", federation.configPath("ncct").path]
        )
        expectOneLine(inArguments, exit: 2, containing: "a search names a person")
        #expect(!inArguments.stderr.lowercased().contains("nguyen"))
        federation.stopAll()
        let hits = plainTextHits(
            in: federation.folder,
            ["dao nguyen", "dao thi nguyen", "Wiremu", "C1234567", "84901234567"]
        )
        #expect(hits.isEmpty, "\(hits)")
    }
}
