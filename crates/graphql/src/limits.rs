//! Bounds on what one request may cost, enforced by a schema extension
//! around every stage of a request, over HTTP and WebSocket alike:
//!
//! 1. parsed: the fields the operations select, each alias counted and each
//!    fragment counted where it is spread, at most [`Limits::fields_max`]
//!    (before async-graphql's own checks and validation, which walk every
//!    spread of a fragment again: fragments that spread the next one twice
//!    would make them walk 2^depth fields);
//! 2. validated: depth and complexity (see [`crate::cost`]) at most their
//!    maximum;
//! 3. executed: a query or mutation whose complexity is at least
//!    [`Limits::expensive_complexity_min`] runs only while fewer than
//!    [`Limits::expensive_concurrent_max`] such queries run, otherwise it is
//!    refused at once (HTTP answers 429 with `Retry-After`); its JSON data
//!    may be at most [`Limits::response_bytes_max`] bytes;
//! 4. answered: no error message quotes more than a short slice of the
//!    input ([`bound_message`]).
//!
//! Every refusal is an error with a stable `extensions.code`, and nothing
//! of the query ran.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest, NextRequest, NextSubscribe,
    NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Request, Response, ServerError, ServerResult, ValidationResult};
use futures_util::stream::{BoxStream, StreamExt as _};
use tokio::sync::Semaphore;

use crate::error::{ApiError, TOO_MANY_EXPENSIVE_QUERIES};
pub use crate::error::{BUSY_RETRY_AFTER_SECONDS, QueryLimit};

/// The longest line of an error message, in characters. The parser quotes the whole offending line of
/// a query (which may be the whole request body) and serde a whole string value: longer lines are cut.
pub const ERROR_LINE_CHARS_MAX: usize = 200;
/// The longest error message, in characters; longer ones are cut.
pub const ERROR_MESSAGE_CHARS_MAX: usize = 1_000;
/// Marks where a message was cut.
const CUT_MARK: char = '…';
/// Deepest nesting of selections and fragment spreads the field count follows (the parser allows 64
/// levels of selections; a longer chain of fragments is refused, so counting never exhausts the stack).
const SELECTION_NESTING_MAX: usize = 64;

/// Bounds on what one request may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest selection nesting.
    pub depth_max: usize,
    /// Largest complexity (see [`crate::cost`]: lists count their `first` times their items).
    pub complexity_max: usize,
    /// Most fields one request selects, each alias counted and each fragment counted where spread.
    pub fields_max: usize,
    /// Largest JSON `data` of one response, in bytes.
    pub response_bytes_max: usize,
    /// Queries of at least this complexity are expensive and bounded by `expensive_concurrent_max`.
    pub expensive_complexity_min: usize,
    /// Most expensive queries running at once in this instance (at least 1).
    pub expensive_concurrent_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            depth_max: 12,
            complexity_max: 20_000,
            fields_max: 500,
            response_bytes_max: 4 * 1024 * 1024,
            expensive_complexity_min: 5_000,
            expensive_concurrent_max: 4,
        }
    }
}

/// The bound on expensive queries running at once, shared by every request of one schema.
#[derive(Debug, Clone)]
pub struct ExpensiveQueries {
    permits: Arc<Semaphore>,
    max: usize,
}

impl ExpensiveQueries {
    fn new(max: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// Expensive queries running now.
    pub fn running(&self) -> usize {
        self.max.saturating_sub(self.permits.available_permits())
    }
}

/// The schema extension enforcing [`Limits`]; it makes one [`RequestLimits`] per request.
pub(crate) struct QueryLimits {
    limits: Limits,
    expensive: ExpensiveQueries,
}

impl QueryLimits {
    /// The extension, and the bound on expensive queries it shares between requests.
    pub(crate) fn new(limits: Limits) -> (Self, ExpensiveQueries) {
        let expensive = ExpensiveQueries::new(limits.expensive_concurrent_max);
        let extension = Self {
            limits,
            expensive: expensive.clone(),
        };
        (extension, expensive)
    }
}

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestLimits {
            limits: self.limits,
            expensive: self.expensive.clone(),
            complexity: AtomicUsize::new(0),
        })
    }
}

/// The limits of one request; remembers the complexity validation computed for execution.
struct RequestLimits {
    limits: Limits,
    expensive: ExpensiveQueries,
    complexity: AtomicUsize,
}

#[async_graphql::async_trait::async_trait]
impl Extension for RequestLimits {
    async fn request(&self, context: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        bound_errors(next.run(context).await)
    }

    fn subscribe<'s>(
        &self,
        context: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(context, stream).map(bound_errors).boxed()
    }

    /// Parses the query here (async-graphql keeps the document) to count its fields before anything
    /// walks it: async-graphql's own recursion check expands every fragment spread.
    async fn prepare_request(
        &self,
        context: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        match selected_fields(request.parsed_query()?) {
            Selected::Fields(fields) if fields > self.limits.fields_max => {
                return Err(too_complex(QueryLimit::Fields, fields, self.limits.fields_max));
            }
            Selected::Fields(_) => {}
            Selected::TooDeep => {
                return Err(too_complex(
                    QueryLimit::Depth,
                    SELECTION_NESTING_MAX + 1,
                    self.limits.depth_max,
                ));
            }
        }
        next.run(context, request).await
    }

    async fn validation(
        &self,
        context: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(context).await?;
        if result.depth > self.limits.depth_max {
            return Err(vec![too_complex(
                QueryLimit::Depth,
                result.depth,
                self.limits.depth_max,
            )]);
        }
        if result.complexity > self.limits.complexity_max {
            return Err(vec![too_complex(
                QueryLimit::Complexity,
                result.complexity,
                self.limits.complexity_max,
            )]);
        }
        self.complexity.store(result.complexity, Ordering::Relaxed);
        Ok(result)
    }

    async fn execute(
        &self,
        context: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let complexity = self.complexity.load(Ordering::Relaxed);
        // Held until the response is complete, so it bounds the memory of responses being built too.
        let _permit = if complexity >= self.limits.expensive_complexity_min {
            match self.expensive.permits.try_acquire() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    tracing::info!(complexity, "refused an expensive query: the most allowed are running");
                    return Response::from_errors(vec![server_error(ApiError::TooManyExpensiveQueries)]);
                }
            }
        } else {
            None
        };
        let response = next.run(context, operation_name).await;
        bound_size(response, self.limits.response_bytes_max)
    }
}

/// Seconds to wait before retrying, when `response` refused an expensive query because too many run.
pub fn retry_after_seconds(response: &Response) -> Option<u64> {
    response
        .errors
        .iter()
        .any(|error| {
            error
                .extensions
                .as_ref()
                .and_then(|extensions| extensions.get("code"))
                .is_some_and(|code| *code == async_graphql::Value::from(TOO_MANY_EXPENSIVE_QUERIES))
        })
        .then_some(BUSY_RETRY_AFTER_SECONDS)
}

/// `message` with every line cut to [`ERROR_LINE_CHARS_MAX`] characters and the whole to
/// [`ERROR_MESSAGE_CHARS_MAX`], each cut marked with `…`. Errors quote their input; this keeps what
/// they send back to a short slice of it, however large the input.
pub fn bound_message(message: &str) -> String {
    if message.len() <= ERROR_LINE_CHARS_MAX {
        return message.to_owned();
    }
    let mut bounded = String::new();
    // Characters still allowed; a cut mark counts as one.
    let mut budget = ERROR_MESSAGE_CHARS_MAX;
    for (index, line) in message.split('\n').enumerate() {
        if index > 0 {
            if budget == 0 {
                bounded.push(CUT_MARK);
                break;
            }
            bounded.push('\n');
            budget -= 1;
        }
        let keep = ERROR_LINE_CHARS_MAX.min(budget);
        match line.char_indices().nth(keep) {
            None => {
                bounded.push_str(line);
                budget -= line.chars().count();
            }
            Some((end, _)) => {
                bounded.push_str(&line[..end]);
                bounded.push(CUT_MARK);
                if budget <= keep + 1 {
                    // The whole message is cut here too: the mark just pushed says so.
                    break;
                }
                budget -= keep + 1;
            }
        }
    }
    bounded
}

fn bound_errors(mut response: Response) -> Response {
    for error in &mut response.errors {
        if error.message.len() > ERROR_LINE_CHARS_MAX {
            error.message = bound_message(&error.message);
        }
    }
    response
}

/// `response`, or a `RESPONSE_TOO_LARGE` error when its JSON data is over `bytes_max` bytes. The data is
/// serialized to a counter that stops at the limit, so the check allocates nothing.
fn bound_size(response: Response, bytes_max: usize) -> Response {
    let mut counter = ByteCounter { bytes: 0, bytes_max };
    match serde_json::to_writer(&mut counter, &response.data) {
        Ok(()) => response,
        Err(_) => {
            tracing::warn!(bytes_max, "refused a response over the size limit");
            Response::from_errors(vec![server_error(ApiError::ResponseTooLarge { bytes_max })])
        }
    }
}

/// Counts bytes written and fails past `bytes_max`.
struct ByteCounter {
    bytes: usize,
    bytes_max: usize,
}

impl io::Write for ByteCounter {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        self.bytes = self.bytes.saturating_add(buffer.len());
        if self.bytes > self.bytes_max {
            return Err(io::Error::other("response size limit reached"));
        }
        Ok(buffer.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn too_complex(limit: QueryLimit, actual: usize, max: usize) -> ServerError {
    tracing::info!(limit = limit.as_str(), actual, max, "refused a query over a limit");
    server_error(ApiError::QueryTooComplex { limit, actual, max })
}

/// A request-level error (no position, no path) with the error's code and extensions.
fn server_error(error: ApiError) -> ServerError {
    let error = async_graphql::Error::from(error);
    let mut server_error = ServerError::new(error.message, None);
    server_error.extensions = error.extensions;
    server_error
}

/// What the operations of a document select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Selected {
    /// This many fields (saturating).
    Fields(usize),
    /// Selections and fragment spreads nest deeper than [`SELECTION_NESTING_MAX`].
    TooDeep,
}

/// Fields the operations of `document` select, each alias counted and each fragment counted where it is
/// spread (`...F ...F` counts F's fields twice): what validation and execution would walk. Each fragment
/// is counted once and remembered, so a document whose spreads double at every level is counted in
/// linear time.
pub(crate) fn selected_fields(document: &ExecutableDocument) -> Selected {
    let mut counter = FieldCounter {
        document,
        fragments: HashMap::new(),
    };
    let mut total = 0_usize;
    for (_, operation) in document.operations.iter() {
        match counter.count(&operation.node.selection_set.node, 0) {
            Some(fields) => total = total.saturating_add(fields),
            None => return Selected::TooDeep,
        }
    }
    Selected::Fields(total)
}

struct FieldCounter<'a> {
    document: &'a ExecutableDocument,
    /// Fields of each fragment, expanded.
    fragments: HashMap<&'a str, usize>,
}

impl<'a> FieldCounter<'a> {
    /// The fields of `selection_set`, or `None` past [`SELECTION_NESTING_MAX`].
    fn count(&mut self, selection_set: &'a SelectionSet, nesting: usize) -> Option<usize> {
        if nesting > SELECTION_NESTING_MAX {
            return None;
        }
        let mut total = 0_usize;
        for selection in &selection_set.items {
            let fields = match &selection.node {
                Selection::Field(field) => self
                    .count(&field.node.selection_set.node, nesting + 1)?
                    .saturating_add(1),
                Selection::InlineFragment(inline) => self.count(&inline.node.selection_set.node, nesting + 1)?,
                Selection::FragmentSpread(spread) => {
                    self.fragment(spread.node.fragment_name.node.as_str(), nesting + 1)?
                }
            };
            total = total.saturating_add(fields);
        }
        Some(total)
    }

    fn fragment(&mut self, name: &'a str, nesting: usize) -> Option<usize> {
        if let Some(fields) = self.fragments.get(name) {
            return Some(*fields);
        }
        // A fragment spread inside itself (a cycle, refused by validation) counts 0 here, so counting ends.
        self.fragments.insert(name, 0);
        let fields = match self.document.fragments.get(name) {
            Some(definition) => self.count(&definition.node.selection_set.node, nesting)?,
            None => 0,
        };
        self.fragments.insert(name, fields);
        Some(fields)
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::Value;
    use proptest::prelude::*;

    use super::*;
    use crate::cost::STORE_READ_COST;
    use crate::schema::{LedgerSchema, with_limits};

    /// The query of the issue: 100 payments with their events and refunds.
    const PAYMENTS_WITH_HISTORY: &str =
        "payments(first: 100) { nodes { events { data hash prevHash } refunds { refundAmount { value } } } }";

    /// The schema without services: a refused query never reaches a resolver, and an admitted one stops
    /// at the role guard (no key) before it needs one.
    fn schema(limits: Limits) -> LedgerSchema {
        with_limits(limits).finish()
    }

    fn codes(response: &Response) -> Vec<String> {
        response
            .errors
            .iter()
            .map(
                |error| match error.extensions.as_ref().and_then(|extensions| extensions.get("code")) {
                    Some(Value::String(code)) => code.clone(),
                    _ => String::new(),
                },
            )
            .collect()
    }

    fn extension(response: &Response, name: &str) -> Value {
        response.errors[0]
            .extensions
            .as_ref()
            .and_then(|extensions| extensions.get(name))
            .cloned()
            .unwrap_or(Value::Null)
    }

    #[tokio::test]
    async fn two_hundred_aliases_of_a_large_list_are_refused_before_validation() {
        let aliases: Vec<String> = (0..200)
            .map(|index| format!("a{index}: {PAYMENTS_WITH_HISTORY}"))
            .collect();
        let query = format!("{{ {} }}", aliases.join(" "));
        let response = schema(Limits::default()).execute(query.as_str()).await;
        assert_eq!(codes(&response), ["QUERY_TOO_COMPLEX"], "{:?}", response.errors);
        assert_eq!(extension(&response, "limit"), Value::from("fields"));
        assert_eq!(extension(&response, "actual"), Value::from(200 * 9));
        assert_eq!(response.data, Value::Null);
        let body = serde_json::to_string(&response).unwrap();
        assert!(body.len() < 1_000, "{body}");
    }

    #[tokio::test]
    async fn a_list_costs_its_first_times_its_nested_lists() {
        let response = schema(Limits::default())
            .execute(format!("{{ {PAYMENTS_WITH_HISTORY} }}").as_str())
            .await;
        assert_eq!(codes(&response), ["QUERY_TOO_COMPLEX"], "{:?}", response.errors);
        assert_eq!(extension(&response, "limit"), Value::from("complexity"));
        // nodes: 1 + events (read + 100 × 3 fields) + refunds (read + 100 × refundAmount { value })
        let node = 1 + (STORE_READ_COST + 100 * 3) + (STORE_READ_COST + 100 * 2);
        assert_eq!(
            extension(&response, "actual"),
            Value::from(STORE_READ_COST + 100 * node)
        );
        assert!(response.errors[0].message.contains("first"), "{:?}", response.errors);
    }

    #[tokio::test]
    async fn smaller_lists_of_the_same_query_are_admitted() {
        let query = "{ payments(first: 10) { nodes { events(first: 20) { data hash prevHash }
                       refunds(first: 20) { refundAmount { value } } } } }";
        let response = schema(Limits::default()).execute(query).await;
        assert_eq!(codes(&response), ["UNAUTHENTICATED"], "{:?}", response.errors);
    }

    #[tokio::test]
    async fn the_readme_queries_are_within_the_default_limits() {
        for query in [
            "{ payment(paymentId: \"P1\", atLeastPosition: 3) {
                 refundedAmount { value decimal } pendingRefundAmount { value } refundableAmount { decimal } status
                 refunds { refundRequestId status } events { position type actor hash } } }",
            "{ payments(first: 10) { edges { node { paymentId refundableAmount { currency value decimal } } } } }",
            "{ events(paymentId: \"P1\", first: 1000) { position stream streamRevision eventId type schemaVersion
                 recordedAt actor data hash prevHash } }",
        ] {
            let response = schema(Limits::default()).execute(query).await;
            assert_eq!(codes(&response), ["UNAUTHENTICATED"], "{query}: {:?}", response.errors);
        }
    }

    #[tokio::test]
    async fn fragments_that_double_at_every_level_are_counted_without_expanding_them() {
        let levels = 30;
        let mut query = String::from("{ ...F0 } ");
        for level in 0..levels {
            query.push_str(&format!(
                "fragment F{level} on Query {{ ...F{next} ...F{next} }} ",
                next = level + 1
            ));
        }
        query.push_str(&format!("fragment F{levels} on Query {{ ledgerHead {{ position }} }}"));
        let response = schema(Limits::default()).execute(query.as_str()).await;
        assert_eq!(codes(&response), ["QUERY_TOO_COMPLEX"], "{:?}", response.errors);
        assert_eq!(extension(&response, "actual"), Value::from(2_usize.pow(levels) * 2));
    }

    #[tokio::test]
    async fn a_long_chain_of_fragments_is_refused_without_following_it_to_the_end() {
        let links = 20_000;
        let mut query = String::from("{ ...F0 } ");
        for link in 0..links {
            query.push_str(&format!("fragment F{link} on Query {{ ...F{} }} ", link + 1));
        }
        query.push_str(&format!("fragment F{links} on Query {{ ledgerHead {{ position }} }}"));
        let response = schema(Limits::default()).execute(query.as_str()).await;
        assert_eq!(codes(&response), ["QUERY_TOO_COMPLEX"], "{:?}", response.errors);
        assert_eq!(extension(&response, "limit"), Value::from("depth"));
    }

    #[tokio::test]
    async fn a_query_nested_too_deep_is_refused_with_a_code() {
        let limits = Limits {
            depth_max: 2,
            ..Limits::default()
        };
        let response = schema(limits)
            .execute("{ payment(paymentId: \"P\") { refundedAmount { value } } }")
            .await;
        assert_eq!(codes(&response), ["QUERY_TOO_COMPLEX"], "{:?}", response.errors);
        assert_eq!(extension(&response, "limit"), Value::from("depth"));
        assert_eq!(extension(&response, "actual"), Value::from(3));
    }

    #[tokio::test]
    async fn an_expensive_query_is_refused_while_the_most_allowed_run() {
        let limits = Limits {
            expensive_complexity_min: 100,
            expensive_concurrent_max: 1,
            ..Limits::default()
        };
        let schema = schema(limits);
        let expensive = "{ events(first: 100) { position } }";
        let cheap = "{ ledgerHead { position } }";
        let gate = schema.data::<ExpensiveQueries>().unwrap().clone();
        let running = gate.permits.try_acquire().unwrap();
        assert_eq!(gate.running(), 1);

        let refused = schema.execute(expensive).await;
        assert_eq!(codes(&refused), [TOO_MANY_EXPENSIVE_QUERIES], "{:?}", refused.errors);
        assert_eq!(retry_after_seconds(&refused), Some(BUSY_RETRY_AFTER_SECONDS));
        let admitted = schema.execute(cheap).await;
        assert_eq!(codes(&admitted), ["UNAUTHENTICATED"], "{:?}", admitted.errors);
        assert_eq!(retry_after_seconds(&admitted), None);

        drop(running);
        let admitted = schema.execute(expensive).await;
        assert_eq!(codes(&admitted), ["UNAUTHENTICATED"], "{:?}", admitted.errors);
        assert_eq!(gate.running(), 0, "the permit is given back");
    }

    #[tokio::test]
    async fn a_response_over_the_size_limit_is_replaced_by_an_error() {
        let query = "{ __schema { types { name description fields { name description } } } }";
        let admitted = schema(Limits::default()).execute(query).await;
        assert!(admitted.errors.is_empty(), "{:?}", admitted.errors);
        let size = serde_json::to_vec(&admitted.data).unwrap().len();

        let limits = Limits {
            response_bytes_max: size - 1,
            ..Limits::default()
        };
        let refused = schema(limits).execute(query).await;
        assert_eq!(codes(&refused), ["RESPONSE_TOO_LARGE"], "{:?}", refused.errors);
        assert_eq!(refused.data, Value::Null);
        let limits = Limits {
            response_bytes_max: size,
            ..Limits::default()
        };
        assert!(schema(limits).execute(query).await.errors.is_empty());
    }

    #[tokio::test]
    async fn a_huge_malformed_query_gets_a_short_error() {
        let query = format!("{{ ledgerHead {{ position }} {}!! }}", "x".repeat(200_000));
        let response = schema(Limits::default()).execute(query.as_str()).await;
        assert_eq!(response.errors.len(), 1);
        let message = &response.errors[0].message;
        assert!(
            message.chars().count() <= ERROR_MESSAGE_CHARS_MAX + 1,
            "{} chars",
            message.len()
        );
        assert!(message.contains("1:"), "the position is kept: {message}");
        let body = serde_json::to_string(&response).unwrap();
        assert!(body.len() < 2 * ERROR_MESSAGE_CHARS_MAX, "{} bytes", body.len());
    }

    #[test]
    fn short_messages_are_kept_whole() {
        let message = "first: must be between 0 and 500";
        assert_eq!(bound_message(message), message);
        let lines = "a line\n".repeat(ERROR_MESSAGE_CHARS_MAX / 10);
        assert_eq!(bound_message(&lines), lines);
    }

    #[test]
    fn long_lines_and_long_messages_are_cut_and_marked() {
        let line = "y".repeat(ERROR_LINE_CHARS_MAX + 1);
        let bounded = bound_message(&format!("--> 1:3\n{line}\n= expected name"));
        assert_eq!(
            bounded,
            format!("--> 1:3\n{}{CUT_MARK}\n= expected name", &line[..ERROR_LINE_CHARS_MAX])
        );
        let many = "é".repeat(ERROR_LINE_CHARS_MAX);
        let bounded = bound_message(&[many.as_str(); 10].join("\n"));
        assert_eq!(bounded.chars().count(), ERROR_MESSAGE_CHARS_MAX + 1);
        assert!(bounded.ends_with(CUT_MARK));
    }

    proptest! {
        #[test]
        fn a_bounded_message_is_short_and_a_prefix_of_each_line(message in "(.{0,300}\n){0,12}.{0,300}") {
            let bounded = bound_message(&message);
            prop_assert!(bounded.chars().count() <= ERROR_MESSAGE_CHARS_MAX + 1);
            for (kept, original) in bounded.split('\n').zip(message.split('\n')) {
                prop_assert!(kept.chars().count() <= ERROR_LINE_CHARS_MAX + 1, "{kept:?}");
                prop_assert!(original.starts_with(kept.trim_end_matches(CUT_MARK)));
            }
            if message.chars().count() <= ERROR_MESSAGE_CHARS_MAX
                && message.split('\n').all(|line| line.chars().count() <= ERROR_LINE_CHARS_MAX)
            {
                prop_assert_eq!(bounded, message);
            }
        }
    }
}
