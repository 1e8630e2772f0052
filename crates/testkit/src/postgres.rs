//! Scratch PostgreSQL databases: each test creates a database of its own on the server `DATABASE_URL` names
//! and drops it when it is done, so tests run in parallel and leave nothing behind.

use std::str::FromStr;

/// The server the tests use when `DATABASE_URL` is not set (trust auth, as the README sets it up).
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// `DATABASE_URL`, or [`DEFAULT_DATABASE_URL`].
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}

/// The rows of one statement's result, every value as text (`None` for NULL), as `psql -At` prints them.
pub type TextRows = Vec<Vec<Option<String>>>;

/// Runs `sql` (one or more statements, simple query protocol, as `psql -c` sends them) on the database at
/// `url` and returns the rows of all results. It runs on a thread of its own with its own runtime, so
/// synchronous tests, code inside a runtime and `Drop` can all call it.
pub fn simple_query(url: &str, sql: &str) -> Result<TextRows, String> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|error| format!("a runtime for PostgreSQL: {error}"))?;
                runtime.block_on(simple_query_async(url, sql))
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

async fn simple_query_async(url: &str, sql: &str) -> Result<TextRows, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|error| format!("connecting to {url}: {error}"))?;
    let connection = tokio::spawn(connection);
    let messages = client.simple_query(sql).await;
    drop(client);
    // The connection ends once the client is gone; its own error, if any, is the one worth reporting.
    let closed = connection
        .await
        .map_err(|error| format!("the connection task: {error}"))?;
    let messages = messages.map_err(|error| format!("{sql}: {error}"))?;
    closed.map_err(|error| format!("the connection to {url}: {error}"))?;
    Ok(messages
        .iter()
        .filter_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => {
                Some((0..row.len()).map(|index| row.get(index).map(str::to_owned)).collect())
            }
            _ => None,
        })
        .collect())
}

/// A fresh database `{prefix}_{uuid}` on the test server, dropped (`WITH (FORCE)`, which ends the pooled
/// connections that outlive a test body) when this value is.
#[derive(Debug)]
pub struct ScratchDatabase {
    admin_url: String,
    /// The database's name.
    pub name: String,
    /// Its URL, as the binary and the stores take it.
    pub url: String,
}

impl ScratchDatabase {
    /// Creates an empty database; panics with how to point the tests at a server when none answers.
    pub fn create(prefix: &str) -> ScratchDatabase {
        Self::try_create(prefix, None).unwrap_or_else(|error| panic!("{error}"))
    }

    /// Creates a copy of the database `template` (no one may be connected to it).
    pub fn copy_of(prefix: &str, template: &str) -> ScratchDatabase {
        Self::try_create(prefix, Some(template)).unwrap_or_else(|error| panic!("{error}"))
    }

    /// Like [`ScratchDatabase::create`], with the reason as an error (for a bench that skips without a
    /// server).
    pub fn try_create(prefix: &str, template: Option<&str>) -> Result<ScratchDatabase, String> {
        let admin_url = database_url();
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let statement = match template {
            Some(template) => format!("CREATE DATABASE {name} TEMPLATE {template}"),
            None => format!("CREATE DATABASE {name}"),
        };
        simple_query(&admin_url, &statement).map_err(|error| {
            format!(
                "cannot create a database ({error}); set DATABASE_URL to a PostgreSQL server where this user may \
                 CREATE DATABASE, e.g. DATABASE_URL={DEFAULT_DATABASE_URL}"
            )
        })?;
        let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Ok(ScratchDatabase { admin_url, name, url })
    }

    /// The driver's configuration of this database.
    pub fn config(&self) -> tokio_postgres::Config {
        tokio_postgres::Config::from_str(&self.url)
            .unwrap_or_else(|error| panic!("DATABASE_URL {:?} does not parse: {error}", self.admin_url))
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(error) = simple_query(&self.admin_url, &statement) {
            // A leftover scratch database wastes space but fails nothing; say so and go on.
            eprintln!("could not drop {}: {error}", self.name);
        }
    }
}
