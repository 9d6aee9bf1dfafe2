import CaseBridgeProto

/// The lifecycle as the contract publishes it: the transition tables plus, for each kind of
/// change, who may make it, in which case statuses it is taken and what it moves the case to.
/// `Lifecycle.apply` is tested against every cell of this table, and the README and case.proto
/// carry the text `contractText` makes of it (a test keeps them fresh).
extension Lifecycle {
    public struct ChangeRule: Sendable {
        /// The CaseUpdate field of the change.
        public let change: String
        public let by: [Actor]
        /// Case statuses in which the change is taken.
        public let takenIn: Set<CaseStatus>
        /// Status moves the change makes by itself (from → to); other statuses stay.
        public let moves: [CaseStatus: CaseStatus]
        public let note: String
    }

    /// Statuses in which work on the case goes on.
    static let open: Set<CaseStatus> = [.received, .acknowledged, .inProgress, .infoRequested, .onHold]

    public static let changeRules: [ChangeRule] = [
        ChangeRule(
            change: "status_change",
            by: [.ncct, .requestingEmbassy],
            takenIn: Set(caseTransitions.filter { !$0.value.isEmpty }.keys).subtracting([.submitted]),
            moves: [:],
            note: "to a status the case table allows from the current one (the same status: no-op); "
                + "the embassy only to entered_in_error"
        ),
        ChangeRule(
            change: "step_change",
            by: [.ncct],
            takenIn: [.acknowledged, .inProgress],
            moves: [.acknowledged: .inProgress],
            note: "sets the business step"
        ),
        ChangeRule(
            change: "person_outcomes",
            by: [.ncct],
            takenIn: takesOutcomes,
            moves: [:],
            note: "each person as the person table allows; every person named once"
        ),
        ChangeRule(
            change: "note",
            by: [.ncct, .requestingEmbassy],
            takenIn: Set(CaseStatus.allKnown),
            moves: [:],
            note: "free text; changes nothing else"
        ),
        ChangeRule(
            change: "attachment",
            by: [.ncct, .requestingEmbassy],
            takenIn: Set(CaseStatus.allKnown),
            moves: [:],
            note: "a photo or scanned document: JPEG, PNG or PDF, 2 MiB each, 20 per case"
        ),
        ChangeRule(
            change: "information_request",
            by: [.ncct],
            takenIn: open,
            moves: Dictionary(uniqueKeysWithValues: open.map { ($0, .infoRequested) }),
            note: "questions for the requesting embassy"
        ),
        ChangeRule(
            change: "information_provided",
            by: [.requestingEmbassy],
            takenIn: open.union([.submitted]),
            moves: [.infoRequested: .acknowledged],
            note: "answers and newly named persons (pending); the case goes back to NCCT's desk"
        ),
        ChangeRule(
            change: "withdrawal",
            by: [.requestingEmbassy],
            takenIn: Set(caseTransitions.filter { $0.value.contains(.withdrawn) }.keys).union([.withdrawn]),
            moves: Dictionary(
                uniqueKeysWithValues: caseTransitions.filter { $0.value.contains(.withdrawn) }.keys
                    .map { ($0, CaseStatus.withdrawn) }
            ),
            note: "the embassy no longer asks for action"
        ),
    ]

    /// The tables as text for the contract: Markdown for the README, or `//` comments for proto/.
    public static func contractText(asProtoComment: Bool) -> String {
        func name(_ status: CaseStatus) -> String { "\(status)" }
        func who(_ actors: [Actor]) -> String {
            actors.map { $0 == .ncct ? "NCCT" : "embassy" }.joined(separator: ", ")
        }
        var lines: [String] = []
        lines.append("Case statuses: from each status, the statuses a status_change (or the change named) may lead to.")
        lines.append("")
        lines.append("| from | to |")
        lines.append("|---|---|")
        for status in CaseStatus.allKnown {
            let targets = caseTransitions[status, default: []].sorted { $0.rawValue < $1.rawValue }.map(name)
            lines.append("| \(name(status)) | \(targets.isEmpty ? "—" : targets.joined(separator: ", ")) |")
        }
        lines.append("")
        lines.append("Terminal: \(terminal.sorted { $0.rawValue < $1.rawValue }.map(name).joined(separator: ", ")).")
        lines.append(
            "submitted → received happens when NCCT's receipt, or any update from NCCT, reaches the embassy."
        )
        lines.append("")
        lines.append("Changes: who may make each, in which statuses it is taken, and the moves it makes by itself.")
        lines.append("")
        lines.append("| change | by | taken in | moves | what it does |")
        lines.append("|---|---|---|---|---|")
        for rule in changeRules {
            let taken =
                rule.takenIn.count == CaseStatus.allKnown.count
                ? "any"
                : rule.takenIn.sorted { $0.rawValue < $1.rawValue }.map(name).joined(separator: ", ")
            let moves = Dictionary(grouping: rule.moves.filter { $0.key != $0.value }, by: \.value)
                .sorted { $0.key.rawValue < $1.key.rawValue }
                .map { target, from in
                    from.map(\.key).sorted { $0.rawValue < $1.rawValue }.map(name).joined(separator: ", ")
                        + " → \(name(target))"
                }
            lines.append(
                "| \(rule.change) | \(who(rule.by)) | \(taken) | "
                    + "\(moves.isEmpty ? "—" : moves.joined(separator: ", ")) "
                    + "| \(rule.note) |"
            )
        }
        lines.append("")
        lines.append("Person statuses (person_outcomes, NCCT only): from each status, the statuses it may lead to.")
        lines.append("")
        lines.append("| from | to |")
        lines.append("|---|---|")
        for status in PersonStatus.allKnown {
            let targets = personTransitions[status, default: []].sorted { $0.rawValue < $1.rawValue }.map { "\($0)" }
            lines.append("| \(status) | \(targets.isEmpty ? "—" : targets.joined(separator: ", ")) |")
        }
        guard asProtoComment else { return lines.joined(separator: "\n") + "\n" }
        return lines.map { $0.isEmpty ? "//" : "// \($0)" }.joined(separator: "\n") + "\n"
    }

    /// Where the generated text goes, between these lines.
    public static let tableStart = "<!-- lifecycle: generated by `casebridge contract --lifecycle`; do not edit -->"
    public static let tableEnd = "<!-- end of lifecycle -->"
}

extension CaseStatus {
    /// Every named status but UNSPECIFIED, in number order.
    static var allKnown: [CaseStatus] { names.keys.sorted().filter { $0 != 0 }.map { CaseStatus(rawValue: $0) } }
}

extension PersonStatus {
    static var allKnown: [PersonStatus] { names.keys.sorted().filter { $0 != 0 }.map { PersonStatus(rawValue: $0) } }
}
