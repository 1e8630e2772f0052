//! The store URL: KurrentDB's own connection string, plus the ledger's two parameters.
//!
//! `kurrentdb://[user:password@]host:2113[,host2:2113..][?tls=false&..&namespace=ledger&sealIntervalMs=1000]`,
//! or the same with `esdb`, `kurrent`, `kdb` or a `+discover` scheme: every scheme and parameter the official
//! client knows passes to it untouched. The ledger's parameters are taken out first (case-insensitively, like
//! the client's): `namespace` names the ledger's streams on a server shared with other systems, and
//! `sealIntervalMs` paces the sealer. The URL may hold a password, so errors never repeat it.

use crate::error::StoreError;

/// The URL schemes that select the KurrentDB store (the official client's).
pub const KURRENTDB_SCHEMES: &[&str] = &[
    "kurrentdb",
    "kurrentdb+discover",
    "kurrent",
    "kurrent+discover",
    "kdb",
    "kdb+discover",
    "esdb",
    "esdb+discover",
];

/// The namespace when the URL names none.
pub const NAMESPACE_DEFAULT: &str = "ledger";

/// Longest namespace, in bytes.
pub const NAMESPACE_BYTES_MAX: usize = 64;

/// How often the sealer looks for events to seal when the URL does not say, in milliseconds.
pub const SEAL_INTERVAL_MS_DEFAULT: u64 = 1_000;

/// Shortest sealer interval a URL may ask for, in milliseconds.
pub const SEAL_INTERVAL_MS_MIN: u64 = 10;

/// Longest sealer interval a URL may ask for, in milliseconds (10 minutes).
pub const SEAL_INTERVAL_MS_MAX: u64 = 600_000;

/// A parsed store URL.
#[derive(Clone, PartialEq, Eq)]
pub struct KurrentDbUrl {
    /// The connection string for the official client: the URL without the ledger's parameters.
    pub(crate) client: String,
    /// The ledger's streams are `{namespace}.{stream}` on the server.
    pub(crate) namespace: String,
    /// The sealer's pace.
    pub(crate) seal_interval_ms: u64,
}

impl std::fmt::Debug for KurrentDbUrl {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection string may hold a password.
        formatter
            .debug_struct("KurrentDbUrl")
            .field("namespace", &self.namespace)
            .field("seal_interval_ms", &self.seal_interval_ms)
            .finish_non_exhaustive()
    }
}

impl KurrentDbUrl {
    /// The namespace of the ledger's streams.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The sealer's interval in milliseconds.
    pub fn seal_interval_ms(&self) -> u64 {
        self.seal_interval_ms
    }
}

/// Whether `url` names a KurrentDB store (by its scheme).
pub fn is_kurrentdb_url(url: &str) -> bool {
    url.split_once("://")
        .is_some_and(|(scheme, _)| KURRENTDB_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()))
}

/// Parses a store URL, refusing an unknown scheme, an empty host, a bad namespace or interval with
/// [`StoreError::InvalidUrl`] (whose reason never repeats the URL).
pub fn parse(url: &str) -> Result<KurrentDbUrl, StoreError> {
    let invalid = |reason: String| StoreError::InvalidUrl { reason };
    if !is_kurrentdb_url(url) {
        return Err(invalid(format!(
            "expected a scheme among {}",
            KURRENTDB_SCHEMES.join(", ")
        )));
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let authority = base.split_once("://").map_or("", |(_, rest)| rest);
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, hosts)| hosts);
    if hosts.trim_end_matches('/').is_empty() {
        return Err(invalid("no host".to_owned()));
    }
    let mut namespace = None;
    let mut seal_interval_ms = None;
    let mut passed = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key.to_ascii_lowercase().as_str() {
            "namespace" => namespace = Some(parse_namespace(value)?),
            "sealintervalms" => seal_interval_ms = Some(parse_seal_interval(value)?),
            _ => passed.push(pair),
        }
    }
    let client = if passed.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", passed.join("&"))
    };
    Ok(KurrentDbUrl {
        client,
        namespace: namespace.unwrap_or_else(|| NAMESPACE_DEFAULT.to_owned()),
        seal_interval_ms: seal_interval_ms.unwrap_or(SEAL_INTERVAL_MS_DEFAULT),
    })
}

/// 1..=[`NAMESPACE_BYTES_MAX`] of `a-z`, `0-9`, `-`, `_`: no `.` or `$`, so one namespace's `{namespace}.`
/// prefix never matches another's streams or the store's own `{namespace}$..` streams.
fn parse_namespace(value: &str) -> Result<String, StoreError> {
    let valid = !value.is_empty()
        && value.len() <= NAMESPACE_BYTES_MAX
        && value
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_');
    if valid {
        Ok(value.to_owned())
    } else {
        Err(StoreError::InvalidUrl {
            reason: format!("namespace must be 1 to {NAMESPACE_BYTES_MAX} characters of a-z, 0-9, - and _"),
        })
    }
}

fn parse_seal_interval(value: &str) -> Result<u64, StoreError> {
    match value.parse::<u64>() {
        Ok(interval) if (SEAL_INTERVAL_MS_MIN..=SEAL_INTERVAL_MS_MAX).contains(&interval) => Ok(interval),
        _ => Err(StoreError::InvalidUrl {
            reason: format!(
                "sealIntervalMs must be a whole number from {SEAL_INTERVAL_MS_MIN} to {SEAL_INTERVAL_MS_MAX}"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_ledger_parameters_are_taken_out_and_the_rest_passes_to_the_client() {
        let url = parse(
            "kurrentdb://admin:changeit@db:2113?tls=false&Namespace=refunds&sealIntervalMs=250&nodePreference=leader",
        )
        .unwrap();
        assert_eq!(
            url.client,
            "kurrentdb://admin:changeit@db:2113?tls=false&nodePreference=leader"
        );
        assert_eq!((url.namespace(), url.seal_interval_ms()), ("refunds", 250));
        let plain = parse("esdb://localhost:2113?tls=false").unwrap();
        assert_eq!(plain.client, "esdb://localhost:2113?tls=false");
        assert_eq!(
            (plain.namespace(), plain.seal_interval_ms()),
            (NAMESPACE_DEFAULT, SEAL_INTERVAL_MS_DEFAULT)
        );
        let bare = parse("kurrentdb+discover://a:2113,b:2113?namespace=x").unwrap();
        assert_eq!(bare.client, "kurrentdb+discover://a:2113,b:2113");
    }

    #[cfg(feature = "kurrentdb")]
    #[test]
    fn the_client_accepts_what_is_passed_to_it() {
        for url in [
            "kurrentdb://localhost:2113?tls=false&namespace=n1",
            "esdb://admin:changeit@localhost:2113?tls=true&tlsVerifyCert=false",
            "esdb+discover://a:2113,b:2113,c:2113?namespace=n2",
        ] {
            let parsed = parse(url).unwrap();
            assert!(
                parsed.client.parse::<kurrentdb::ClientSettings>().is_ok(),
                "the official client parses what is left of {url}"
            );
        }
    }

    #[test]
    fn bad_urls_are_refused_without_repeating_them() {
        for (url, expected) in [
            ("postgres://db/ledger", "expected a scheme"),
            ("sqlite://./x.db", "expected a scheme"),
            ("kurrentdb://", "no host"),
            ("kurrentdb://secret:hunter2@/", "no host"),
            ("kurrentdb://db:2113?namespace=Ledger", "namespace"),
            ("kurrentdb://db:2113?namespace=a.b", "namespace"),
            ("kurrentdb://db:2113?namespace=a$b", "namespace"),
            ("kurrentdb://db:2113?namespace=", "namespace"),
            ("kurrentdb://hunter2@db:2113?sealIntervalMs=5", "sealIntervalMs"),
            ("kurrentdb://db:2113?sealIntervalMs=soon", "sealIntervalMs"),
        ] {
            match parse(url) {
                Err(StoreError::InvalidUrl { reason }) => {
                    assert!(reason.contains(expected), "{url}: {reason}");
                    assert!(!reason.contains("hunter2"), "the reason never repeats the URL");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        let long = format!("kurrentdb://db:2113?namespace={}", "a".repeat(NAMESPACE_BYTES_MAX + 1));
        assert!(parse(&long).is_err());
        assert!(
            format!("{:?}", parse("kurrentdb://u:hunter2@db:2113").unwrap())
                .find("hunter2")
                .is_none()
        );
    }

    #[test]
    fn schemes_select_the_store() {
        assert!(is_kurrentdb_url("kurrentdb://db:2113"));
        assert!(is_kurrentdb_url("ESDB://db:2113"));
        assert!(is_kurrentdb_url("kdb+discover://db:2113"));
        assert!(!is_kurrentdb_url("postgres://db"));
        assert!(!is_kurrentdb_url("kurrentdb"));
    }

    proptest! {
        /// Whatever the parameters, the ledger's are taken out and every other one passes in order.
        #[test]
        fn other_parameters_pass_in_order(
            keys in proptest::collection::vec("[a-z]{1,8}", 0..5),
            namespace in "[a-z0-9_-]{1,64}",
        ) {
            let passed: Vec<String> = keys
                .iter()
                .filter(|key| !["namespace", "sealintervalms"].contains(&key.as_str()))
                .enumerate()
                .map(|(index, key)| format!("{key}={index}"))
                .collect();
            let mut query = passed.clone();
            query.insert(query.len() / 2, format!("namespace={namespace}"));
            let url = parse(&format!("kurrentdb://db:2113?{}", query.join("&"))).unwrap();
            prop_assert_eq!(url.namespace(), namespace.as_str());
            let expected = if passed.is_empty() {
                "kurrentdb://db:2113".to_owned()
            } else {
                format!("kurrentdb://db:2113?{}", passed.join("&"))
            };
            prop_assert_eq!(url.client, expected);
        }
    }
}
