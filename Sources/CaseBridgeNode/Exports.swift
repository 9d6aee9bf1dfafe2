import CaseBridgeProto
import CaseBridgeRPC

/// A case's persons and outcomes as a spreadsheet file, for the embassy's own records.
extension CaseTracker {
    static let exportColumns = [
        "person_ref", "full_name", "native_name", "nationality", "date_of_birth", "sex", "minor",
        "document_number", "document_country", "phone", "needs", "status", "outcome_note", "status_changed_utc",
    ]

    /// Recorded in the access log (as an export) before the file is made.
    public func exportPersons(_ request: ExportPersonsRequest, by member: StaffMember) async throws -> CsvFile {
        guard member.seesPersonalData else {
            throw RPCError(.permissionDenied, "\(member.login) is an operator: operators never receive personal data")
        }
        let view = try ProtoCodec.decode(Case.self, from: try caseBytes(request.caseID, for: .staff))
        try await recordAccess([view.caseID], what: "export", by: member)
        let named =
            (view.request?.persons ?? [])
            + view.history.flatMap { update -> [Person] in
                if case .informationProvided(let provided) = update.change { return provided.addedPersons }
                return []
            }
        let people = Dictionary(named.map { ($0.personRef, $0) }, uniquingKeysWith: { a, _ in a })
        var lines = [Self.exportColumns.joined(separator: ",")]
        for state in view.persons {
            let person = people[state.personRef] ?? Person()
            let row = [
                state.personRef, person.fullName, person.nativeName, person.nationality, person.dateOfBirth,
                person.sex == .unspecified ? "" : "\(person.sex)", person.minor ? "yes" : "no",
                person.travelDocument?.number ?? "", person.travelDocument?.issuingCountry ?? "", person.phone,
                person.needs.joined(separator: ";"), "\(state.status)", state.note,
                state.updatedAtMs == 0 ? "" : Clock.utc(ms: state.updatedAtMs, minutes: true),
            ]
            lines.append(row.map(CSV.cell).joined(separator: ","))
        }
        var file = CsvFile()
        file.fileName = "case-\(view.caseID)-persons.csv"
        file.text = "\u{FEFF}" + lines.joined(separator: "\r\n") + "\r\n"
        file.rows = UInt32(clamping: view.persons.count)
        return file
    }
}
