//! Signing in: a bearer token (the same JWT the services take) is verified
//! once with `closeout-auth`'s [`Verifier`] and exchanged for a session —
//! a random id in an HttpOnly, SameSite=Strict cookie (Secure when served
//! over TLS). The token itself stays on the server, in memory, and is
//! forwarded to the services on every call made for the session.

use closeout_auth::{Identity, Verifier};
use closeout_domain::Role;
use rand::RngCore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Name of the session cookie.
pub const COOKIE: &str = "closeout_session";

/// How long a session lives at most (the token's own expiry still applies
/// at the services).
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// Most sessions kept at once; the oldest go first.
const MAX_SESSIONS: usize = 10_000;

/// One signed-in person.
#[derive(Debug)]
pub struct Session {
    /// The bearer token, forwarded to the services.
    pub token: String,
    /// Who the token proves.
    pub identity: Identity,
    created: Instant,
}

impl Session {
    /// The role's spelling in pages and metadata.
    pub fn role_name(&self) -> &'static str {
        closeout_auth::role_claim(self.identity.role)
    }

    /// The organisation an inspected body acts for.
    pub fn own_organisation(&self) -> Option<&str> {
        match self.identity.role {
            Role::InspectedBody => self.identity.organisation.as_ref().map(|o| o.as_str()),
            _ => None,
        }
    }
}

/// The sessions of this process.
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<String, Arc<Session>>>>,
}

/// A new random session id: 32 bytes, hex.
fn new_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Sessions {
    /// Verifies `token` and opens a session for it; the session id, or why
    /// the token was refused.
    pub fn sign_in(&self, verifier: &Verifier, token: &str) -> Result<String, String> {
        let token = token.trim();
        if token.is_empty() {
            return Err("no token given".into());
        }
        let identity = verifier.verify(token).map_err(|e| e.to_string())?;
        let id = new_id();
        let session = Arc::new(Session {
            token: token.to_string(),
            identity,
            created: Instant::now(),
        });
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| s.created.elapsed() < SESSION_TTL);
        let oldest = (map.len() >= MAX_SESSIONS)
            .then(|| {
                map.iter()
                    .min_by_key(|(_, s)| s.created)
                    .map(|(k, _)| k.clone())
            })
            .flatten();
        if let Some(oldest) = oldest {
            map.remove(&oldest);
        }
        map.insert(id.clone(), session);
        Ok(id)
    }

    /// The live session of `id`.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id)
            .filter(|s| s.created.elapsed() < SESSION_TTL)
            .cloned()
    }

    /// Ends the session `id`.
    pub fn sign_out(&self, id: &str) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(id);
    }
}

/// The session id in a `Cookie` header, if any.
pub fn cookie_value(header: &str) -> Option<&str> {
    header.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE).then_some(value)
    })
}

/// The `Set-Cookie` value that stores `id`.
pub fn set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that clears the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use closeout_auth::{Claims, KeySet, SigningKey, VerifierConfig, generate_ed25519, mint};

    fn verifier_and_key() -> (Verifier, SigningKey) {
        let pair = generate_ed25519("k1").unwrap();
        let mut keys = KeySet::new();
        keys.add_jwks("test", &pair.jwks).unwrap();
        let key = SigningKey::from_pem(pair.private_pem.as_bytes(), Some("k1".into())).unwrap();
        (Verifier::new(keys, VerifierConfig::default()), key)
    }

    #[test]
    fn a_good_token_opens_a_session_and_a_bad_one_does_not() {
        let (verifier, key) = verifier_and_key();
        let claims = Claims::new(
            "jo",
            Role::InspectedBody,
            Some("hertfordshire"),
            Duration::from_secs(600),
        );
        let token = mint(&key, &claims).unwrap();
        let sessions = Sessions::default();
        let id = sessions.sign_in(&verifier, &token).unwrap();
        assert_eq!(id.len(), 64);
        let session = sessions.get(&id).unwrap();
        assert_eq!(session.own_organisation(), Some("hertfordshire"));
        assert_eq!(session.role_name(), "inspected-body");
        sessions.sign_out(&id);
        assert!(sessions.get(&id).is_none());
        assert!(sessions.sign_in(&verifier, "not.a.token").is_err());
        assert!(sessions.sign_in(&verifier, "  ").is_err());
    }

    #[test]
    fn cookies_are_read_and_written_strictly() {
        assert_eq!(cookie_value("a=1; closeout_session=abc; b=2"), Some("abc"));
        assert_eq!(cookie_value("closeout_session_x=abc"), None);
        let cookie = set_cookie("abc", true);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(cookie.ends_with("; Secure"));
        assert!(!set_cookie("abc", false).contains("Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
