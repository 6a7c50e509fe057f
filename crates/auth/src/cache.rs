//! Tokens already verified, remembered until they expire. A client sends
//! the same bearer token on every call; checking its signature again each
//! time (an Ed25519 or P-256 verification, plus decoding the header and
//! claims) was the largest cost of a cheap read such as GetItem. The cache
//! is keyed by the SHA-256 of the whole token, so a token that differs in
//! any byte (a forged payload, another signature) is verified afresh, and
//! it holds a token's identity no longer than the token's own `exp`
//! (without the clock-skew leeway a fresh verification grants), so it never
//! accepts what a fresh verification would refuse. Refusals are never
//! remembered. The keys of a [`crate::Verifier`] do not change during its
//! life, so nothing cached can outlive the key that proved it.
//!
//! Memory is bounded: at [`CAPACITY`] entries the expired ones are dropped,
//! and if none had expired the whole cache is emptied (verification simply
//! starts again; correctness never depends on a hit).

use closeout_domain::authorisation::Identity;
use std::collections::HashMap;
use std::sync::Mutex;

/// Most tokens remembered at once.
pub const CAPACITY: usize = 16_384;

/// The SHA-256 of a token.
pub type TokenDigest = [u8; 32];

/// Digest of `token`, the cache's key.
pub fn digest(token: &str) -> TokenDigest {
    let hash = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(hash.as_ref());
    key
}

struct Entry {
    identity: Identity,
    /// Seconds since the epoch after which the entry is not used.
    expires: u64,
}

/// Verified tokens and the identities they prove.
#[derive(Default)]
pub struct VerifiedTokens {
    entries: Mutex<HashMap<TokenDigest, Entry>>,
}

impl std::fmt::Debug for VerifiedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedTokens")
            .field("len", &self.len())
            .finish()
    }
}

impl VerifiedTokens {
    /// The identity a token with `key` proved, if it was verified and its
    /// `exp` is still ahead of `now` (seconds since the epoch).
    pub fn get(&self, key: &TokenDigest, now: u64) -> Option<Identity> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|entry| now < entry.expires)
            .map(|entry| entry.identity.clone())
    }

    /// Remembers that the token with `key` proves `identity` until
    /// `expires` (its `exp`).
    pub fn insert(&self, key: TokenDigest, identity: Identity, expires: u64, now: u64) {
        if expires <= now {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY && !entries.contains_key(&key) {
            entries.retain(|_, entry| now < entry.expires);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, Entry { identity, expires });
    }

    /// Tokens remembered (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or_default()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use closeout_domain::Role;

    fn someone(subject: &str) -> Identity {
        Identity::new(subject, Role::Viewer, None, Vec::new()).unwrap()
    }

    #[test]
    fn an_entry_is_used_only_before_its_expiry() {
        let cache = VerifiedTokens::default();
        let key = digest("a.b.c");
        cache.insert(key, someone("jo"), 100, 50);
        assert_eq!(cache.get(&key, 99).map(|i| i.subject), Some("jo".into()));
        assert!(cache.get(&key, 100).is_none());
        assert!(cache.get(&digest("a.b.d"), 50).is_none());
        // Already expired: not remembered at all.
        cache.insert(digest("x"), someone("al"), 10, 10);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn memory_is_bounded() {
        let cache = VerifiedTokens::default();
        for i in 0..CAPACITY {
            cache.insert(digest(&format!("old{i}")), someone("a"), 20, 1);
        }
        assert_eq!(cache.len(), CAPACITY);
        // The old entries have expired by now: they make room.
        cache.insert(digest("new"), someone("b"), 1_000, 30);
        assert_eq!(cache.len(), 1);
        for i in 0..CAPACITY {
            cache.insert(digest(&format!("live{i}")), someone("c"), 1_000, 30);
        }
        assert!(cache.len() <= CAPACITY);
        assert!(!cache.is_empty());
    }
}
