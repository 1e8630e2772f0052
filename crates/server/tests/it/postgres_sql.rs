//! SQL on the test PostgreSQL server through the driver (`tokio-postgres`), so the tests need no `psql`.
//! Shared with the load bench (`benches/load.rs` includes this file).

/// The rows of one statement's result, every value as text (`None` for NULL), as `psql -At` prints them.
pub(crate) type TextRows = Vec<Vec<Option<String>>>;

/// Runs `sql` (one or more statements, simple query protocol, as `psql -c` sends them) on the database at
/// `url` and returns the rows of all results. It runs on a thread of its own with its own runtime, so the
/// synchronous tests, code inside a runtime and `Drop` can all call it.
pub(crate) fn simple_query(url: &str, sql: &str) -> Result<TextRows, String> {
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
