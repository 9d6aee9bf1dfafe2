/// The schema, one step per version. Append only: a released step is never edited, so every
/// node, whatever version it last ran, reaches the same schema.
enum Migrations {
    static let steps: [String] = [
        // 1: cases, persons, history, inbox, outbox, idempotency keys, events, audit.
        """
        CREATE TABLE cases (
            case_id TEXT PRIMARY KEY,
            requesting_node TEXT NOT NULL,
            request BLOB NOT NULL,
            kind INTEGER NOT NULL,
            urgency INTEGER NOT NULL,
            origin_reference TEXT NOT NULL,
            status INTEGER NOT NULL,
            step INTEGER NOT NULL,
            person_count INTEGER NOT NULL,
            created_at_ms INTEGER NOT NULL,
            updated_at_ms INTEGER NOT NULL
        );
        CREATE INDEX cases_by_update ON cases(updated_at_ms);
        CREATE TABLE persons (
            case_id TEXT NOT NULL REFERENCES cases(case_id),
            person_ref TEXT NOT NULL,
            position INTEGER NOT NULL,
            status INTEGER NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            updated_at_ms INTEGER NOT NULL,
            PRIMARY KEY (case_id, person_ref)
        ) WITHOUT ROWID;
        CREATE TABLE case_history (
            position INTEGER PRIMARY KEY AUTOINCREMENT,
            case_id TEXT NOT NULL REFERENCES cases(case_id),
            actor_node TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            update_id TEXT NOT NULL UNIQUE,
            body BLOB NOT NULL,
            applied_at_ms INTEGER NOT NULL,
            UNIQUE (case_id, actor_node, sequence)
        );
        CREATE TABLE inbox (
            entry_id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind INTEGER NOT NULL,
            message_id TEXT NOT NULL UNIQUE,
            case_id TEXT NOT NULL,
            from_node TEXT NOT NULL,
            received_at_ms INTEGER NOT NULL,
            read_at_ms INTEGER,
            read_by TEXT
        );
        CREATE TABLE outbox (
            position INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id TEXT NOT NULL,
            peer_node TEXT NOT NULL,
            kind INTEGER NOT NULL,
            case_id TEXT NOT NULL,
            body BLOB NOT NULL,
            state INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '',
            queued_at_ms INTEGER NOT NULL,
            next_attempt_at_ms INTEGER NOT NULL,
            delivered_at_ms INTEGER NOT NULL DEFAULT 0,
            UNIQUE (message_id, peer_node)
        );
        CREATE INDEX outbox_by_peer ON outbox(peer_node, state, position);
        CREATE TABLE processed (
            message_id TEXT PRIMARY KEY,
            from_node TEXT NOT NULL,
            receipt BLOB NOT NULL,
            processed_at_ms INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE events (
            event_id INTEGER PRIMARY KEY AUTOINCREMENT,
            case_id TEXT NOT NULL,
            kind INTEGER NOT NULL,
            message_id TEXT NOT NULL DEFAULT '',
            peer_node TEXT NOT NULL DEFAULT '',
            at_ms INTEGER NOT NULL
        );
        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY,
            at_ms INTEGER NOT NULL,
            event TEXT NOT NULL,
            actor TEXT NOT NULL,
            subject TEXT NOT NULL,
            outcome TEXT NOT NULL,
            detail TEXT NOT NULL,
            prev_hash BLOB NOT NULL,
            hash BLOB NOT NULL
        );
        CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        """,
        // 2: the case row (requests) and the history row (updates) are the idempotency keys;
        // a separate table of receipts only cost a random-key insert per message.
        """
        DROP TABLE processed;
        """,
        // 3: inbox entries are written only after the idempotency checks in the same transaction,
        // so a UNIQUE index on message_id (a random-key insert per message) guarded nothing.
        """
        CREATE TABLE inbox_v3 (
            entry_id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            case_id TEXT NOT NULL,
            from_node TEXT NOT NULL,
            received_at_ms INTEGER NOT NULL,
            read_at_ms INTEGER,
            read_by TEXT
        );
        INSERT INTO inbox_v3 SELECT * FROM inbox;
        DROP TABLE inbox;
        ALTER TABLE inbox_v3 RENAME TO inbox;
        """,
        // 4: an update the receiver refused still takes its place in the actor's sequence (no dead
        // ends): the row keeps the refusal; a sequence the sender gave up on is kept as skipped.
        // Delivery goes in order per case, so it finds each case's oldest pending message. Conformance
        // test cases are marked, to keep them out of staff views.
        """
        ALTER TABLE case_history ADD COLUMN refusal_code INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE case_history ADD COLUMN refusal TEXT NOT NULL DEFAULT '';
        CREATE INDEX outbox_pending_by_case ON outbox(peer_node, case_id, position) WHERE state IN (1, 2, 4);
        ALTER TABLE cases ADD COLUMN test INTEGER NOT NULL DEFAULT 0;
        """,
        // 5: personal data sealed at rest under a data key per case (RecordSealer), kept wrapped in the
        // case's row (no second random-key insert per case). Deleting it makes the case's personal data
        // unreadable (crypto-shredding). Retention: when a case closed, when its personal data was
        // purged, and the holds that keep it. Search: per person, one appended row of keyed term hashes.
        // Persons per status are kept with the case ("1:4998;3:2"), so a list does not count them.
        """
        ALTER TABLE cases ADD COLUMN data_key BLOB;
        ALTER TABLE cases ADD COLUMN person_counts TEXT;
        UPDATE cases SET person_counts = (SELECT group_concat(status || ':' || n, ';') FROM
            (SELECT status, COUNT(*) AS n FROM persons p WHERE p.case_id = cases.case_id GROUP BY status ORDER BY status));
        CREATE TABLE store_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        ALTER TABLE cases ADD COLUMN closed_at_ms INTEGER;
        ALTER TABLE cases ADD COLUMN purged_at_ms INTEGER;
        UPDATE cases SET closed_at_ms = updated_at_ms WHERE status IN (7, 8, 9, 10, 11);
        CREATE INDEX cases_by_closing ON cases(closed_at_ms) WHERE closed_at_ms IS NOT NULL AND purged_at_ms IS NULL;
        CREATE TABLE retention_holds (case_id TEXT PRIMARY KEY, reason TEXT NOT NULL, held_by TEXT NOT NULL,
                                      held_at_ms INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE search_terms (id INTEGER PRIMARY KEY, case_id TEXT NOT NULL, person_ref TEXT NOT NULL,
                                   terms BLOB NOT NULL);
        """,
        // 6: named staff accounts (Argon2id password hash, TOTP secret sealed under the node's key,
        // lockout), one-time recovery codes and sessions (only hashes of either), the access log of
        // who read which case's personal data, and inbox read state per account.
        """
        CREATE TABLE staff (
            staff_id INTEGER PRIMARY KEY,
            login TEXT NOT NULL UNIQUE,
            display_name TEXT NOT NULL,
            role INTEGER NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0,
            password_hash TEXT,
            totp_secret BLOB,
            totp_last_step INTEGER NOT NULL DEFAULT 0,
            enrolment_hash BLOB,
            enrolment_expires_at_ms INTEGER NOT NULL DEFAULT 0,
            failed_logins INTEGER NOT NULL DEFAULT 0,
            locked_until_ms INTEGER NOT NULL DEFAULT 0,
            created_at_ms INTEGER NOT NULL,
            last_login_at_ms INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE staff_recovery_codes (
            staff_id INTEGER NOT NULL,
            code_hash BLOB NOT NULL,
            used_at_ms INTEGER,
            PRIMARY KEY (staff_id, code_hash)
        ) WITHOUT ROWID;
        CREATE TABLE staff_sessions (
            token_hash BLOB PRIMARY KEY,
            staff_id INTEGER NOT NULL,
            client TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL,
            last_seen_at_ms INTEGER NOT NULL,
            ended_at_ms INTEGER
        ) WITHOUT ROWID;
        CREATE TABLE access_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at_ms INTEGER NOT NULL,
            staff_id INTEGER NOT NULL,
            case_id TEXT NOT NULL,
            what TEXT NOT NULL,
            via TEXT NOT NULL
        );
        CREATE INDEX access_by_case ON access_log(case_id, id);
        CREATE INDEX access_by_staff ON access_log(staff_id, id);
        CREATE TABLE inbox_reads (
            staff_id INTEGER NOT NULL,
            entry_id INTEGER NOT NULL,
            read_at_ms INTEGER NOT NULL,
            PRIMARY KEY (staff_id, entry_id)
        ) WITHOUT ROWID;
        CREATE INDEX inbox_reads_by_entry ON inbox_reads(entry_id, read_at_ms);
        """,
        // 7: costs that do not grow with history. One case's deliveries by an index (case show and
        // GetCase scanned the outbox); cases by status (the work queue's lists), and how many in
        // each status, kept by triggers rather than counted; per account, the
        // entry up to which the whole inbox is read, so its unread entries and their count are found
        // without walking everything read before.
        """
        CREATE INDEX outbox_by_case ON outbox(case_id, position);
        CREATE INDEX cases_by_status ON cases(status, updated_at_ms);
        CREATE INDEX cases_by_status_urgency ON cases(status, urgency, updated_at_ms);
        CREATE TABLE inbox_read_through (staff_id INTEGER PRIMARY KEY, entry_id INTEGER NOT NULL);
        CREATE TABLE case_counts (status INTEGER NOT NULL, test INTEGER NOT NULL, n INTEGER NOT NULL,
                                  PRIMARY KEY (status, test)) WITHOUT ROWID;
        INSERT INTO case_counts SELECT status, test, COUNT(*) FROM cases GROUP BY status, test;
        CREATE TRIGGER case_counts_insert AFTER INSERT ON cases BEGIN
            INSERT INTO case_counts VALUES (NEW.status, NEW.test, 1)
                ON CONFLICT (status, test) DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER case_counts_update AFTER UPDATE OF status, test ON cases
            WHEN OLD.status != NEW.status OR OLD.test != NEW.test BEGIN
            UPDATE case_counts SET n = n - 1 WHERE status = OLD.status AND test = OLD.test;
            INSERT INTO case_counts VALUES (NEW.status, NEW.test, 1)
                ON CONFLICT (status, test) DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER case_counts_delete AFTER DELETE ON cases BEGIN
            UPDATE case_counts SET n = n - 1 WHERE status = OLD.status AND test = OLD.test;
        END;
        """,
        // 8: deadlines. When each case's current clock started (filing while it waits for NCCT, its
        // latest update once acknowledged; cases from before take their creation or latest change),
        // indexed so the cases near or past a deadline are found without reading the others; and a
        // supervisor's reason for a missed deadline, for one run of one clock of a case (sealed under the
        // case's key, like every free text about a case).
        """
        ALTER TABLE cases ADD COLUMN clock_started_at_ms INTEGER NOT NULL DEFAULT 0;
        UPDATE cases SET clock_started_at_ms = CASE WHEN status IN (1, 2) THEN created_at_ms ELSE updated_at_ms END;
        CREATE INDEX cases_by_clock ON cases(status, clock_started_at_ms);
        CREATE TABLE deadline_breaches (case_id TEXT NOT NULL, clock INTEGER NOT NULL, started_at_ms INTEGER NOT NULL,
                                        reason BLOB NOT NULL, by TEXT NOT NULL, at_ms INTEGER NOT NULL,
                                        PRIMARY KEY (case_id, clock, started_at_ms)) WITHOUT ROWID;
        """,
        // 9: when NCCT took each case up (acknowledged it, or went straight to work or a question),
        // for reports; unknown (NULL) for cases from before.
        """
        ALTER TABLE cases ADD COLUMN acknowledged_at_ms INTEGER;
        CREATE INDEX cases_by_creation ON cases(created_at_ms);
        """,
        // 10: duplicate detection at NCCT. A person of a newly received case who resembles a person of
        // another open case: which fields agree (names of fields, not their values), a score (in
        // thousandths), and what NCCT staff decided; the scan's progress through the events is kept
        // with its findings. And the highest level (half, three quarters, overdue) each run of a case's
        // deadline clock has raised an event for, so that each is raised once. And each case's
        // attachments (their type and size; the files themselves stay sealed in the history). And the
        // peers' signed receipts for what this node delivered (ids, a hash, a status: no personal data).
        """
        CREATE TABLE person_matches (
            match_id INTEGER PRIMARY KEY,
            case_id TEXT NOT NULL, person_ref TEXT NOT NULL,
            other_case_id TEXT NOT NULL, other_person_ref TEXT NOT NULL,
            score INTEGER NOT NULL, agreeing TEXT NOT NULL, conflicting TEXT NOT NULL,
            state INTEGER NOT NULL DEFAULT 0, found_at_ms INTEGER NOT NULL,
            decided_by TEXT NOT NULL DEFAULT '', decided_at_ms INTEGER NOT NULL DEFAULT 0,
            UNIQUE (case_id, person_ref, other_case_id, other_person_ref));
        CREATE INDEX person_matches_by_state ON person_matches(state, match_id);
        CREATE INDEX person_matches_by_other_case ON person_matches(other_case_id);
        CREATE TABLE deadline_levels (case_id TEXT NOT NULL, clock INTEGER NOT NULL, started_at_ms INTEGER NOT NULL,
                                      level INTEGER NOT NULL,
                                      PRIMARY KEY (case_id, clock, started_at_ms)) WITHOUT ROWID;
        CREATE TABLE attachments (case_id TEXT NOT NULL, update_id TEXT NOT NULL, content_type TEXT NOT NULL,
                                  size INTEGER NOT NULL, PRIMARY KEY (case_id, update_id)) WITHOUT ROWID;
        CREATE TABLE receipts (message_id TEXT NOT NULL, peer TEXT NOT NULL, case_id TEXT NOT NULL,
                               statement BLOB NOT NULL, signature BLOB NOT NULL,
                               PRIMARY KEY (message_id, peer)) WITHOUT ROWID;
        CREATE INDEX receipts_by_case ON receipts(case_id);
        """,
        // 11: signed checkpoints of the audit chain: this node's own (its length, the hash of its last
        // entry, the signature over them), and those its peers lodged with it, kept to catch a peer's
        // log cut short or rewritten. And the terms duplicate detection looks persons up by, one
        // row per term (keyed hashes, as in search_terms), so that a lookup does not read every person
        // (the index is rebuilt at start: search index version 3).
        """
        CREATE TABLE audit_checkpoints (entries INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL,
                                        checkpoint BLOB NOT NULL, signature BLOB NOT NULL);
        CREATE TABLE peer_checkpoints (node TEXT NOT NULL, entries INTEGER NOT NULL, head TEXT NOT NULL,
                                       at_ms INTEGER NOT NULL, received_at_ms INTEGER NOT NULL,
                                       checkpoint BLOB NOT NULL, signature BLOB NOT NULL,
                                       PRIMARY KEY (node, entries)) WITHOUT ROWID;
        CREATE TABLE match_terms (term BLOB NOT NULL, case_id TEXT NOT NULL, person_ref TEXT NOT NULL,
                                  PRIMARY KEY (term, case_id, person_ref)) WITHOUT ROWID;
        """,
        // 12: each case's persons as duplicate detection compares them (names, date of birth, document,
        // phone; sealed like the request), so that a candidate costs one small value to open rather than
        // its whole request and updates. Written with the match terms, at NCCT only (the index is
        // rebuilt at start: search index version 4).
        "ALTER TABLE cases ADD COLUMN match_traits BLOB;",
        // 13: the duplicate index leaves the database for sorted runs in files of their own (`MatchIndex`):
        // the writer appends each person's terms to a log, in order, instead of a row a term at random
        // places (80 % of the pages a node wrote). The database lists the runs in use and how far into
        // the log each reaches (the index is rebuilt at start: search index version 5).
        """
        DROP TABLE match_terms;
        CREATE TABLE match_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, case_id TEXT NOT NULL,
                                person_ref TEXT NOT NULL, terms BLOB NOT NULL, removed INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE match_runs (file TEXT PRIMARY KEY, tier INTEGER NOT NULL, rows INTEGER NOT NULL,
                                 through INTEGER NOT NULL) WITHOUT ROWID;
        """,
        // 14: persons filed in the order of their cases (`filed_at_ms`, the case's `created_at_ms`, leads
        // the key), so that a new case's persons are appended instead of inserted at random pages of a
        // table keyed by the case's id: after the duplicate index, the most pages a new case wrote.
        """
        CREATE TABLE persons_by_filing (
            filed_at_ms INTEGER NOT NULL,
            case_id TEXT NOT NULL REFERENCES cases(case_id),
            person_ref TEXT NOT NULL,
            position INTEGER NOT NULL,
            status INTEGER NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            updated_at_ms INTEGER NOT NULL,
            PRIMARY KEY (filed_at_ms, case_id, person_ref)
        ) WITHOUT ROWID;
        INSERT INTO persons_by_filing
            SELECT c.created_at_ms, p.case_id, p.person_ref, p.position, p.status, p.note, p.updated_at_ms
            FROM persons p JOIN cases c USING (case_id) ORDER BY 1, 2, 3;
        DROP TABLE persons;
        ALTER TABLE persons_by_filing RENAME TO persons;
        """,
        // 15: the SHA-256 of a request as received, kept with its case, so that a sender's retry is
        // recognized without opening the sealed request. The same digest is in the receipt the sender
        // holds; a purge clears it with the request. NULL for cases kept before.
        "ALTER TABLE cases ADD COLUMN request_sha256 BLOB;",
    ]

    static func apply(to database: Database) throws(StoreError) {
        let current = Int(try database.first("PRAGMA user_version")?.int(0) ?? 0)
        guard current <= steps.count else {
            throw StoreError(
                "database schema version \(current) is newer than this software (\(steps.count)); upgrade CaseBridge"
            )
        }
        for (index, step) in steps.enumerated().dropFirst(current) {
            try database.execute("BEGIN IMMEDIATE")
            do {
                try database.execute(step)
                try database.execute("PRAGMA user_version = \(index + 1)")
                try database.execute("COMMIT")
            } catch {
                try? database.execute("ROLLBACK")
                throw error
            }
        }
    }
}
