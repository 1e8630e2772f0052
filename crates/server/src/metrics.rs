//! Prometheus metrics in the text exposition format, from plain atomic
//! counters: no registry crate for a dozen numbers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The service's counters. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Metrics {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    http_requests: AtomicU64,
    http_unauthorized: AtomicU64,
    graphql_requests: AtomicU64,
    graphql_errors: AtomicU64,
    graphql_busy: AtomicU64,
    notifications_accepted: AtomicU64,
    notifications_refused: AtomicU64,
}

/// Gauges read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Gauges {
    /// Last global position of the log.
    pub(crate) log_head_position: u64,
    /// Last position the read models reflect.
    pub(crate) projection_checkpoint: u64,
    /// Expensive GraphQL queries running now.
    pub(crate) expensive_queries_running: usize,
}

impl Metrics {
    pub(crate) fn http_request(&self) {
        self.inner.http_requests.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn unauthorized(&self) {
        self.inner.http_unauthorized.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn graphql_request(&self, errors: usize) {
        self.inner.graphql_requests.fetch_add(1, Ordering::Relaxed);
        self.inner
            .graphql_errors
            .fetch_add(u64::try_from(errors).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
    pub(crate) fn expensive_query_refused(&self) {
        self.inner.graphql_busy.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn notification(&self, accepted: bool) {
        let counter = if accepted {
            &self.inner.notifications_accepted
        } else {
            &self.inner.notifications_refused
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text.
    pub(crate) fn render(&self, gauges: Gauges) -> String {
        let counters = [
            (
                "refund_ledger_http_requests_total",
                "HTTP requests served",
                &self.inner.http_requests,
            ),
            (
                "refund_ledger_http_unauthorized_total",
                "requests refused for a missing or unknown key",
                &self.inner.http_unauthorized,
            ),
            (
                "refund_ledger_graphql_requests_total",
                "GraphQL operations executed",
                &self.inner.graphql_requests,
            ),
            (
                "refund_ledger_graphql_errors_total",
                "errors in GraphQL responses",
                &self.inner.graphql_errors,
            ),
            (
                "refund_ledger_graphql_busy_total",
                "expensive GraphQL queries refused with 429 because the most allowed were running",
                &self.inner.graphql_busy,
            ),
            (
                "refund_ledger_notifications_accepted_total",
                "Antom notifications verified and applied",
                &self.inner.notifications_accepted,
            ),
            (
                "refund_ledger_notifications_refused_total",
                "Antom notifications refused",
                &self.inner.notifications_refused,
            ),
        ];
        let mut text = String::new();
        for (name, help, counter) in counters {
            let value = counter.load(Ordering::Relaxed);
            text.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
            ));
        }
        let lag = gauges.log_head_position.saturating_sub(gauges.projection_checkpoint);
        let gauges = [
            (
                "refund_ledger_log_head_position",
                "last global position of the event log",
                gauges.log_head_position,
            ),
            (
                "refund_ledger_projection_checkpoint",
                "last position the read models reflect",
                gauges.projection_checkpoint,
            ),
            (
                "refund_ledger_projection_lag_events",
                "events the read models are behind the log",
                lag,
            ),
            (
                "refund_ledger_graphql_expensive_queries_running",
                "expensive GraphQL queries running now",
                u64::try_from(gauges.expensive_queries_running).unwrap_or(u64::MAX),
            ),
        ];
        for (name, help, value) in gauges {
            text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_lag() {
        let metrics = Metrics::default();
        metrics.http_request();
        metrics.graphql_request(2);
        metrics.expensive_query_refused();
        let text = metrics.render(Gauges {
            log_head_position: 10,
            projection_checkpoint: 7,
            expensive_queries_running: 2,
        });
        assert!(text.contains("refund_ledger_http_requests_total 1\n"), "{text}");
        assert!(text.contains("refund_ledger_graphql_errors_total 2\n"), "{text}");
        assert!(text.contains("refund_ledger_projection_lag_events 3\n"), "{text}");
        assert!(text.contains("refund_ledger_graphql_busy_total 1\n"), "{text}");
        assert!(
            text.contains("refund_ledger_graphql_expensive_queries_running 2\n"),
            "{text}"
        );
    }
}
