"""Tampers with a stopped node's audit log as someone holding only the database file could.

  tamper_audit.py DB truncate KEEP   drop every entry after KEEP and every signed checkpoint
  tamper_audit.py DB rewrite SEQ     change entry SEQ's detail and recompute every hash from it on

Both leave a chain that walks clean (each hash follows from the one before), so only the signed
checkpoints, this node's and those its peers hold, can show what happened.
"""
import hashlib
import sqlite3
import struct
import sys


def chain_hash(previous, row):
    data = bytes(previous)
    for field in [str(row[0]), str(row[1])] + list(row[2:]):
        encoded = field.encode()
        data += struct.pack(">I", len(encoded)) + encoded
    return hashlib.sha256(data).digest()


def main():
    path, action, number = sys.argv[1], sys.argv[2], int(sys.argv[3])
    db = sqlite3.connect(path)
    db.executescript("DROP TRIGGER audit_is_append_only_update; DROP TRIGGER audit_is_append_only_delete;")
    if action == "truncate":
        db.execute("DELETE FROM audit WHERE seq > ?", (number,))
        db.execute("DELETE FROM audit_checkpoints")
    elif action == "rewrite":
        db.execute("UPDATE audit SET detail = 'nothing happened' WHERE seq = ?", (number,))
        previous = db.execute("SELECT hash FROM audit WHERE seq = ?", (number - 1,)).fetchone()[0]
        rows = db.execute(
            "SELECT seq, at_ms, event, actor, subject, outcome, detail FROM audit WHERE seq >= ? ORDER BY seq",
            (number,),
        ).fetchall()
        for row in rows:
            digest = chain_hash(previous, row)
            db.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (previous, digest, row[0]))
            previous = digest
    else:
        sys.exit("unknown action " + action)
    db.commit()


if __name__ == "__main__":
    main()
