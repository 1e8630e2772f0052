//! Append and read throughput of both backends, on the real disk and the real server.
//!
//! Run with `cargo bench -p eventlog --bench append`. Cases, each bounded by time (`CASE_SECONDS`):
//! - durable single-event appends from 1 writer (each append waits for its own commit),
//! - durable single-event appends from 16 concurrent writers on distinct streams (group commit at work),
//! - `read_all` of the whole log in pages of `READ_PAGE_EVENTS`,
//! - a reference row per backend: the same durable single-row commit done bare (rusqlite / one tokio-postgres
//!   connection, no eventlog), i.e. the floor this disk and server set for one writer.
//!
//! SQLite writes a temporary file under `EVENTLOG_BENCH_DIR` (default: the system temp directory; it must be a
//! real disk for the fsync cost to show). PostgreSQL uses a fresh database on the server named by
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`), dropped at the end; if no server
//! answers, the PostgreSQL rows are skipped with the reason.
#![allow(clippy::print_stdout, reason = "a benchmark reports its table on stdout")]
#![allow(clippy::unwrap_used, reason = "a benchmark aborts on the first failure")]

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventlog::{EventStore, ExpectedRevision, NewEvent, PostgresOptions, PostgresStore, SqliteStore, StreamName};
use tokio_postgres::{Config, NoTls};
use uuid::Uuid;

/// How long each append case runs.
const CASE_SECONDS: u64 = 3;
/// How long the read case keeps re-reading the log.
const READ_SECONDS: u64 = 2;
/// Concurrent writers in the concurrent case.
const WRITERS_CONCURRENT: usize = 16;
/// Events per `read_all` call.
const READ_PAGE_EVENTS: usize = 10_000;
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    println!(
        "{:<10} {:<44} {:>9} {:>8} {:>12} {:>10} {:>10}",
        "backend", "case", "count", "seconds", "per second", "p50 us", "p99 us"
    );
    let directory = match std::env::var_os("EVENTLOG_BENCH_DIR") {
        Some(path) => tempfile::tempdir_in(path).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let sqlite = Arc::new(SqliteStore::open(directory.path().join("bench.sqlite")).await.unwrap());
    bench_backend("sqlite", sqlite).await;
    let reference_path = directory.path().join("reference.sqlite");
    let mut latencies = tokio::task::spawn_blocking(move || bare_sqlite_commits(&reference_path))
        .await
        .unwrap();
    report(
        "sqlite",
        "reference: bare rusqlite commit, 1 writer",
        latencies.len(),
        CASE_SECONDS,
        &mut latencies,
    );

    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    let server = Config::from_str(&url).unwrap();
    let database = format!("eventlog_bench_{}", Uuid::new_v4().simple());
    let admin = match server.connect(NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            client
        }
        Err(error) => {
            println!("postgres   skipped: cannot reach {url}: {error} (set DATABASE_URL)");
            return;
        }
    };
    admin
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .await
        .unwrap();
    let mut config = server.clone();
    config.dbname(&database);
    let options = PostgresOptions {
        pool_connections_max: 8,
        ..PostgresOptions::default()
    };
    let postgres = Arc::new(PostgresStore::connect_with(config.clone(), options).await.unwrap());
    bench_backend("postgres", postgres).await;
    let mut latencies = bare_postgres_commits(&config).await;
    report(
        "postgres",
        "reference: bare INSERT commit, 1 writer",
        latencies.len(),
        CASE_SECONDS,
        &mut latencies,
    );
    admin
        .batch_execute(&format!("DROP DATABASE {database} WITH (FORCE)"))
        .await
        .unwrap();
}

async fn bench_backend<S: EventStore>(backend: &str, store: Arc<S>) {
    let mut latencies = append_for(Arc::clone(&store), "solo-0".to_owned()).await;
    report(
        backend,
        "append, 1 writer, 1 event per commit",
        latencies.len(),
        CASE_SECONDS,
        &mut latencies,
    );

    let started = Instant::now();
    let mut writers = Vec::new();
    for writer in 0..WRITERS_CONCURRENT {
        writers.push(tokio::spawn(append_for(
            Arc::clone(&store),
            format!("concurrent-{writer}"),
        )));
    }
    let mut latencies = Vec::new();
    for writer in writers {
        latencies.extend(writer.await.unwrap());
    }
    let seconds = started.elapsed().as_secs();
    report(
        backend,
        "append, 16 writers, 1 event per commit",
        latencies.len(),
        seconds,
        &mut latencies,
    );

    let started = Instant::now();
    let mut events_read = 0;
    while started.elapsed() < Duration::from_secs(READ_SECONDS) {
        let mut next = 1;
        loop {
            let page = store.read_all(next, READ_PAGE_EVENTS).await.unwrap();
            let Some(last) = page.last() else { break };
            next = last.position + 1;
            events_read += page.len();
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{backend:<10} {:<44} {events_read:>9} {:>8.2} {:>12.0}",
        "read_all, pages of 10,000",
        elapsed.as_secs_f64(),
        events_read as f64 / elapsed.as_secs_f64()
    );
}

/// Appends single events to one stream for `CASE_SECONDS`, each waiting for its commit; returns the latencies.
async fn append_for<S: EventStore>(store: Arc<S>, name: String) -> Vec<Duration> {
    let stream = StreamName::parse(name).unwrap();
    let deadline = Instant::now() + Duration::from_secs(CASE_SECONDS);
    let mut expected = ExpectedRevision::NoStream;
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        let started = Instant::now();
        let outcome = store.append(&stream, expected, vec![event()]).await.unwrap();
        latencies.push(started.elapsed());
        expected = ExpectedRevision::Exact(outcome.last_revision);
    }
    latencies
}

/// The floor for one SQLite writer: WAL, synchronous=FULL, one row per commit into a table shaped like
/// `eventlog_events` (same columns and unique indexes), from the calling thread, with no lookups or hashing.
fn bare_sqlite_commits(path: &std::path::Path) -> Vec<Duration> {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             CREATE TABLE reference (position INTEGER PRIMARY KEY, stream TEXT NOT NULL, revision INTEGER NOT NULL,
                 event_id BLOB NOT NULL UNIQUE, event_type TEXT NOT NULL, schema_version INTEGER NOT NULL,
                 payload BLOB NOT NULL, actor TEXT NOT NULL, recorded_at_ns INTEGER NOT NULL,
                 prev_hash BLOB NOT NULL, hash BLOB NOT NULL, UNIQUE (stream, revision)) STRICT;",
        )
        .unwrap();
    let payload = event().payload;
    let deadline = Instant::now() + Duration::from_secs(CASE_SECONDS);
    let mut latencies = Vec::new();
    let hash = [7_u8; 32];
    let mut revision = 0_i64;
    while Instant::now() < deadline {
        let started = Instant::now();
        connection
            .execute(
                "INSERT INTO reference (stream, revision, event_id, event_type, schema_version, payload, actor, \
                 recorded_at_ns, prev_hash, hash) \
                 VALUES ('solo-0', ?1, ?2, 'RefundRequested', 1, ?3, 'bench', 0, ?4, ?4)",
                rusqlite::params![revision, Uuid::new_v4().as_bytes().as_slice(), payload, hash.as_slice()],
            )
            .unwrap();
        revision += 1;
        latencies.push(started.elapsed());
    }
    latencies
}

/// The floor for one PostgreSQL writer: one autocommit INSERT with a unique index per round trip.
async fn bare_postgres_commits(config: &Config) -> Vec<Duration> {
    let (client, connection) = config.connect(NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("CREATE TABLE reference (position BIGSERIAL PRIMARY KEY, event_id UUID UNIQUE, payload BYTEA)")
        .await
        .unwrap();
    let insert = client
        .prepare("INSERT INTO reference (event_id, payload) VALUES ($1, $2)")
        .await
        .unwrap();
    let payload = event().payload;
    let deadline = Instant::now() + Duration::from_secs(CASE_SECONDS);
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        let started = Instant::now();
        client.execute(&insert, &[&Uuid::new_v4(), &payload]).await.unwrap();
        latencies.push(started.elapsed());
    }
    latencies
}

fn event() -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "RefundRequested".to_owned(),
        schema_version: 1,
        payload: concat!(
            r#"{"refundRequestId":"2024010112345678","refundAmount":{"currency":"USD","value":"1000"},"#,
            r#""refundReason":"customer request","paymentId":"202401011900000000000000000001"}"#
        )
        .as_bytes()
        .to_vec(),
        actor: "bench".to_owned(),
    }
}

fn report(backend: &str, case: &str, count: usize, seconds: u64, latencies: &mut [Duration]) {
    latencies.sort_unstable();
    let percentile = |fraction: f64| {
        let index = ((latencies.len() as f64 * fraction) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(index).map_or(0, |latency| latency.as_micros())
    };
    let seconds = seconds.max(1);
    println!(
        "{backend:<10} {case:<44} {count:>9} {seconds:>8} {:>12.0} {:>10} {:>10}",
        count as f64 / seconds as f64,
        percentile(0.5),
        percentile(0.99)
    );
}
