//! Backup and restore of the SQLite store (README "Backup and restore"): an online backup of both files (the
//! log and the read models) taken with SQLite's backup API while the service writes, restored into a fresh
//! folder, verifies, extends the digest kept before the backup, matches its own read models on replay, and
//! does not extend a digest taken after the backup.

use std::path::Path;

use crate::audit_support::{AuditServer, Log, payment_with_refunds, run, stdout};

/// Copies the SQLite database at `from` into a new file at `to` with SQLite's online backup API, page by page,
/// while other connections keep reading and writing it.
fn online_backup(from: &Path, to: &Path) {
    let source = rusqlite::Connection::open(from).unwrap();
    let mut target = rusqlite::Connection::open(to).unwrap();
    let backup = rusqlite::backup::Backup::new(&source, &mut target).unwrap();
    backup
        .run_to_completion(64, std::time::Duration::from_millis(5), None)
        .unwrap();
}

/// The digest `verify` prints last.
fn digest(log: &Log) -> String {
    let output = run(log, &["verify"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    stdout(&output).trim().rsplit(' ').next().unwrap().to_owned()
}

#[test]
fn a_restored_sqlite_backup_extends_the_digest_kept_before() {
    let live = Log::sqlite();
    let server = AuditServer::start(&live.url(), &live.folder());
    payment_with_refunds(&server, "BAK-1", "USD", &["100", "200"]);
    server.wait_projected();
    let kept = digest(&live);

    payment_with_refunds(&server, "BAK-2", "EUR", &["300"]);
    server.wait_projected();
    let restored = Log::sqlite();
    // The read models first, then the log: the restored checkpoint is then never past the restored log.
    for file in ["ledger.read.db", "ledger.db"] {
        online_backup(&live.folder().join(file), &restored.folder().join(file));
    }
    payment_with_refunds(&server, "BAK-3", "USD", &["50"]);
    server.wait_projected();
    server.stop();
    let after_backup = digest(&live);

    let verified = run(&restored, &["verify", "--digest", &kept]);
    assert_eq!(verified.status.code(), Some(0), "{verified:?}");
    assert!(
        stdout(&verified).contains(&format!("verify: the log extends digest {kept}")),
        "{verified:?}"
    );
    let replayed = run(&restored, &["replay"]);
    assert_eq!(replayed.status.code(), Some(0), "{replayed:?}");
    assert!(
        stdout(&replayed).contains("replay: OK, the read models match the log"),
        "{replayed:?}"
    );
    let newer = run(&restored, &["verify", "--digest", &after_backup]);
    assert_eq!(
        newer.status.code(),
        Some(1),
        "the backup lacks what came after it: {newer:?}"
    );
}
