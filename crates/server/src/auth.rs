//! API keys with roles. Only SHA-256 hashes of the secrets are kept in
//! memory; a presented key is hashed and compared in constant time.
//!
//! Keys are long random secrets, not passwords, so a fast hash is enough:
//! there is nothing to brute-force.

use std::fmt;

use anyhow::{Context, bail};
use graphql::{Principal, Role};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Parses a role name from configuration.
pub(crate) fn parse_role(text: &str) -> anyhow::Result<Role> {
    Role::parse(text).ok_or_else(|| anyhow::anyhow!("role: expected viewer, operator or admin, got {text:?}"))
}

/// A configured key: its name (the actor on events), role and secret hash.
#[derive(Clone)]
pub(crate) struct ApiKey {
    name: String,
    role: Role,
    secret_sha256: [u8; 32],
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Longest key name: it is recorded as the actor of every event.
const KEY_NAME_LEN_MAX: usize = 64;

fn check_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || name.len() > KEY_NAME_LEN_MAX
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        bail!("key name {name:?}: 1 to {KEY_NAME_LEN_MAX} characters of A-Z a-z 0-9 - _ .");
    }
    Ok(())
}

impl ApiKey {
    /// A key from its plain secret (environment); the secret is hashed at once.
    pub(crate) fn from_secret(name: &str, role: Role, secret: &SecretString) -> anyhow::Result<Self> {
        check_name(name)?;
        if secret.expose_secret().len() < 8 {
            bail!("key {name}: the secret must have at least 8 characters");
        }
        Ok(Self {
            name: name.to_owned(),
            role,
            secret_sha256: Sha256::digest(secret.expose_secret().as_bytes()).into(),
        })
    }

    /// The key's role.
    pub(crate) fn role(&self) -> Role {
        self.role
    }

    /// A key from the hex SHA-256 of its secret (config file).
    pub(crate) fn from_hash(name: &str, role: Role, secret_sha256_hex: &str) -> anyhow::Result<Self> {
        check_name(name)?;
        let bytes = hex::decode(secret_sha256_hex).with_context(|| format!("key {name}: secret_sha256 is not hex"))?;
        let secret_sha256: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("key {name}: secret_sha256 must be 32 bytes of hex"))?;
        Ok(Self {
            name: name.to_owned(),
            role,
            secret_sha256,
        })
    }
}

/// The configured keys.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyRing {
    keys: Vec<ApiKey>,
}

impl KeyRing {
    /// A ring of keys.
    pub(crate) fn new(keys: Vec<ApiKey>) -> Self {
        Self { keys }
    }

    /// The principal of a presented secret, if any key matches.
    pub(crate) fn authenticate(&self, presented: &str) -> Option<Principal> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Compare against every key without stopping early, so timing does not tell which matched.
        let mut found = None;
        for key in &self.keys {
            if constant_time_eq(&key.secret_sha256, &digest) {
                found = Some(Principal {
                    name: key.name.clone(),
                    role: key.role,
                });
            }
        }
        found
    }

    /// The principal of an `Authorization: Bearer <key>` header value.
    pub(crate) fn authenticate_header(&self, header: &str) -> Option<Principal> {
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))?;
        self.authenticate(token.trim())
    }
}

fn constant_time_eq(left: &[u8; 32], right: &[u8; 32]) -> bool {
    left.iter().zip(right).fold(0_u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_authenticate_by_hash_only() {
        let operator = ApiKey::from_secret("ops", Role::Operator, &SecretString::from("op-secret-1")).unwrap();
        let hash = hex::encode(Sha256::digest(b"viewer-secret"));
        let viewer = ApiKey::from_hash("fin", Role::Viewer, &hash).unwrap();
        let ring = KeyRing::new(vec![operator, viewer]);
        assert_eq!(
            ring.authenticate("op-secret-1"),
            Some(Principal {
                name: "ops".into(),
                role: Role::Operator
            })
        );
        assert_eq!(
            ring.authenticate_header("Bearer viewer-secret").map(|p| p.role),
            Some(Role::Viewer)
        );
        assert_eq!(ring.authenticate("nope"), None);
        assert_eq!(ring.authenticate_header("Basic op-secret-1"), None);
        assert!(!format!("{ring:?}").contains("op-secret-1"));
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(ApiKey::from_secret("", Role::Viewer, &SecretString::from("long-enough")).is_err());
        assert!(ApiKey::from_secret("a b", Role::Viewer, &SecretString::from("long-enough")).is_err());
        assert!(ApiKey::from_secret("a", Role::Viewer, &SecretString::from("short")).is_err());
        assert!(ApiKey::from_hash("a", Role::Viewer, "zz").is_err());
        assert!(parse_role("boss").is_err());
    }
}
