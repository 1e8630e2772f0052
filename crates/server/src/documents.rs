//! Parsed GraphQL documents by their text. Clients send the same few documents again and again with new
//! variables, and parsing one (async-graphql's parser) costs several times more than copying the parsed
//! document: the HTTP layer parses a request's document once here, reads the operation type from it (the
//! `operation` label) and hands it to the schema with [`async_graphql::Request::set_parsed_query`], so the
//! schema does not parse it again. Validation and the limits (`graphql::limits`) still run on every request.
//!
//! Bounded: at most [`DOCUMENTS_MAX`] documents of at most [`QUERY_BYTES_MAX`] bytes each; when full the cache
//! starts over. A document that does not parse is not kept (the schema parses it again and reports the error).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_graphql::parser::types::ExecutableDocument;

/// Most documents kept.
pub(crate) const DOCUMENTS_MAX: usize = 256;
/// Longest document text kept, in bytes; longer ones are parsed on every request.
pub(crate) const QUERY_BYTES_MAX: usize = 16 * 1024;

/// The parsed documents of one service instance.
#[derive(Debug, Default)]
pub(crate) struct ParsedDocuments {
    parsed: Mutex<HashMap<String, ExecutableDocument>>,
}

impl ParsedDocuments {
    /// `query` parsed: a copy of the kept document, or parsed now (and kept when it parses and is short enough).
    pub(crate) fn parse(&self, query: &str) -> async_graphql::parser::Result<ExecutableDocument> {
        if query.len() > QUERY_BYTES_MAX {
            return async_graphql::parser::parse_query(query);
        }
        if let Some(document) = self.lock().get(query) {
            return Ok(document.clone());
        }
        let document = async_graphql::parser::parse_query(query)?;
        let mut parsed = self.lock();
        if parsed.len() >= DOCUMENTS_MAX {
            parsed.clear();
        }
        parsed.insert(query.to_owned(), document.clone());
        Ok(document)
    }

    /// Documents kept now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ExecutableDocument>> {
        // Nothing panics while the lock is held (map operations); if something did, the map is still whole.
        self.parsed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::{DOCUMENTS_MAX, ParsedDocuments, QUERY_BYTES_MAX};

    #[test]
    fn a_kept_document_is_the_document_parsed_anew() {
        let documents = ParsedDocuments::default();
        let query = "mutation($id: ID!) { refund(input: { refundRequestId: $id }) { position } }";
        let fresh = async_graphql::parser::parse_query(query).unwrap();
        let first = documents.parse(query).unwrap();
        let kept = documents.parse(query).unwrap();
        assert_eq!(documents.len(), 1);
        assert_eq!(format!("{fresh:?}"), format!("{first:?}"));
        assert_eq!(format!("{fresh:?}"), format!("{kept:?}"));
    }

    #[test]
    fn errors_and_long_documents_are_not_kept_and_the_cache_stays_bounded() {
        let documents = ParsedDocuments::default();
        assert!(documents.parse("mutation { refund(").is_err());
        assert_eq!(documents.len(), 0, "a document that does not parse is not kept");
        let long = format!("{{ health {{ storeReachable }} }}{}", " ".repeat(QUERY_BYTES_MAX));
        assert!(documents.parse(&long).is_ok());
        assert_eq!(documents.len(), 0, "a document over the size limit is not kept");
        for index in 0..=DOCUMENTS_MAX {
            let query = format!("query Q{index} {{ health {{ storeReachable }} }}");
            assert!(documents.parse(&query).is_ok());
            assert!(documents.len() <= DOCUMENTS_MAX);
        }
        assert_eq!(documents.len(), 1, "the cache started over when it was full");
    }
}
