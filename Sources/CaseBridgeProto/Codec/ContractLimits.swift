import CProtobufC

/// The contract's limits on repeated fields: how many elements one occurrence of a message may
/// carry. proto/ states the same numbers in its comments; a receiver refuses more before decoding.
///
/// A repeated field of proto/casebridge that is not listed here is refused by a test, so a new
/// field cannot arrive without a limit.
public enum ContractLimits {
    /// The largest batch one request may name.
    public static let maxPersons = 5_000

    /// Per repeated field, by full name ("message.field"): the most elements one message may hold.
    public static let repeated: [String: Int] = [
        "casebridge.v1.Person.other_names": 16,
        "casebridge.v1.Person.languages": 16,
        "casebridge.v1.Person.needs": 16,
        "casebridge.v1.InterventionRequest.persons": maxPersons,
        "casebridge.v1.InterventionRequest.indicators": 64,
        "casebridge.v1.PersonOutcomes.outcomes": maxPersons,
        "casebridge.v1.InformationRequest.questions": 100,
        "casebridge.v1.InformationProvided.added_persons": maxPersons,
        "casebridge.v1.Case.persons": 50_000,
        "casebridge.v1.Case.outcome_counts": 64,
        "casebridge.v1.Case.history": 100_000,
        "casebridge.v1.Case.deliveries": 100_000,
        "casebridge.v1.Case.refused_updates": 100_000,
        "casebridge.v1.CaseUpdate.skipped_sequences": 100,
        "casebridge.v1.CaseSummary.outcome_counts": 64,
        "casebridge.v1.ListCasesRequest.statuses": 64,
        "casebridge.v1.MarkReadRequest.entry_ids": 10_000,
        "casebridge.v1.NodeStatus.peers": 10_000,
        "casebridge.v1.NodeStatus.warnings": 100,
        "casebridge.v1.AuditVerification.peers": 10_000,
        "casebridge.v1.EnrolmentDone.recovery_codes": 100,
        "casebridge.v1.FindCasesRequest.statuses": 64,
        "casebridge.v1.FindCasesRequest.steps": 64,
        "casebridge.v1.FindCasesRequest.kinds": 64,
        "casebridge.v1.FindCasesRequest.urgencies": 64,
        "casebridge.v1.CasePage.cases": 500,
        "casebridge.v1.MatchPage.matches": 200,
        "casebridge.v1.ProofBundle.items": 100_000,
        "casebridge.v1.PersonMatch.agreeing_fields": 8,
        "casebridge.v1.PersonMatch.conflicting_fields": 8,
        "casebridge.v1.ReadTableRequest.taken_refs": 50_000,
        "casebridge.v1.TableReading.persons": maxPersons,
        "casebridge.v1.TableReading.outcomes": maxPersons,
        "casebridge.v1.TableReading.problems": 100_000,
        "casebridge.v1.Report.by_embassy": 10_000,
        "casebridge.v1.Report.by_kind": 64,
        "casebridge.v1.Report.by_urgency": 64,
        "casebridge.v1.Report.by_status": 64,
        "casebridge.v1.Report.person_outcomes": 64,
    ]

    /// The same limits keyed by protobuf-c field descriptor, for the validator's inner loop.
    nonisolated(unsafe) static let byField: [UnsafeRawPointer: Int] = {
        var caps: [UnsafeRawPointer: Int] = [:]
        for (name, descriptor) in DescriptorRegistry.byName {
            for i in 0..<Int(descriptor.pointee.n_fields) {
                let field = descriptor.pointee.fields + i
                guard field.pointee.label == PROTOBUF_C_LABEL_REPEATED,
                    let cap = repeated["\(name).\(String(cString: field.pointee.name))"]
                else { continue }
                caps[UnsafeRawPointer(field)] = cap
            }
        }
        return caps
    }()

    /// Full names of every repeated field the registry knows, for the completeness test.
    public static var repeatedFieldNames: [String] {
        DescriptorRegistry.byName.flatMap { name, descriptor in
            (0..<Int(descriptor.pointee.n_fields)).compactMap { i -> String? in
                let field = descriptor.pointee.fields[i]
                return field.label == PROTOBUF_C_LABEL_REPEATED ? "\(name).\(String(cString: field.name))" : nil
            }
        }.sorted()
    }
}
