//! Verifying a token into an identity, and minting one. The algorithm
//! allow-list (EdDSA, ES256) is checked before any key is tried; issuer,
//! audience and expiry (with [`crate::LEEWAY_SECONDS`] of clock skew) are
//! required; the claims are then mapped to a role and organisation the way
//! configuration says (Closeout's own claims by default, an OIDC
//! provider's claims and values where configured).

use crate::cache::{VerifiedTokens, digest};
use crate::keys::{KeySet, SigningKey};
use crate::{AuthError, DEFAULT_AUDIENCE, DEFAULT_ISSUER, LEEWAY_SECONDS, MAX_TOKEN_BYTES};
use closeout_domain::authorisation::Identity;
use closeout_domain::{OrganisationId, Role};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Closeout's own claims, as [`mint`] writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orgs: Vec<String>,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl Claims {
    /// Claims for `subject` in `role` (for an inspected body, of
    /// `organisation`), issued now by [`DEFAULT_ISSUER`] for
    /// [`DEFAULT_AUDIENCE`], valid for `ttl`.
    pub fn new(subject: &str, role: Role, organisation: Option<&str>, ttl: Duration) -> Claims {
        let iat = now_seconds();
        Claims {
            sub: subject.to_string(),
            role: crate::role_claim(role).to_string(),
            org: organisation.map(str::to_string),
            orgs: Vec::new(),
            iss: DEFAULT_ISSUER.to_string(),
            aud: DEFAULT_AUDIENCE.to_string(),
            iat,
            exp: iat.saturating_add(ttl.as_secs()),
        }
    }
}

/// Signs `claims` with `key` (its key id in the header).
pub fn mint(key: &SigningKey, claims: &Claims) -> Result<String, AuthError> {
    let mut header = Header::new(key.algorithm);
    header.kid.clone_from(&key.kid);
    jsonwebtoken::encode(&header, claims, &key.key).map_err(|e| AuthError::Token(e.to_string()))
}

/// Which claims hold who the caller is. The defaults read Closeout's own
/// tokens; an OIDC provider's tokens need the claim names of that
/// provider and, usually, `role_values` mapping its group or role names to
/// Closeout roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMapping {
    /// Claim naming the subject.
    pub subject: String,
    /// Claim holding the role: a string or a list of strings.
    pub role: String,
    /// Claim holding an inspected body's organisation.
    pub organisation: String,
    /// Claim holding the organisations a viewer is scoped to.
    pub organisations: String,
    /// Claim values and the roles they mean, tried in order; empty: the
    /// claim holds Closeout's role names.
    pub role_values: Vec<(String, Role)>,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        ClaimMapping {
            subject: "sub".into(),
            role: "role".into(),
            organisation: "org".into(),
            organisations: "orgs".into(),
            role_values: Vec::new(),
        }
    }
}

/// What a [`Verifier`] accepts besides the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// Accepted issuers (`iss`).
    pub issuers: Vec<String>,
    /// Accepted audiences (`aud`).
    pub audiences: Vec<String>,
    /// How claims map to an identity.
    pub mapping: ClaimMapping,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            issuers: vec![DEFAULT_ISSUER.into()],
            audiences: vec![DEFAULT_AUDIENCE.into()],
            mapping: ClaimMapping::default(),
        }
    }
}

/// Checks bearer tokens; cheap to clone (clones share the cache of
/// verified tokens, see `crate::cache`).
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: KeySet,
    config: VerifierConfig,
    verified: Arc<VerifiedTokens>,
}

fn token_error(e: &jsonwebtoken::errors::Error) -> AuthError {
    AuthError::Token(match e.kind() {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::InvalidIssuer => "the token's issuer is not trusted".into(),
        ErrorKind::InvalidAudience => "the token is not for this audience".into(),
        ErrorKind::InvalidSignature => {
            "the signature does not verify with any configured key".into()
        }
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim} claim"),
        ErrorKind::ImmatureSignature => "the token is not valid yet".into(),
        _ => format!("malformed token ({e})"),
    })
}

impl Verifier {
    /// A verifier of tokens signed by any of `keys`.
    pub fn new(keys: KeySet, config: VerifierConfig) -> Verifier {
        Verifier {
            keys,
            config,
            verified: Arc::new(VerifiedTokens::default()),
        }
    }

    /// The identity a token proves, or why it proves none. A token verified
    /// before is answered from the cache until its `exp`.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Token(format!(
                "longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let key = digest(token);
        let now = now_seconds();
        if let Some(identity) = self.verified.get(&key, now) {
            return Ok(identity);
        }
        let (identity, expires) = self.verify_signed(token)?;
        self.verified.insert(key, identity.clone(), expires, now);
        Ok(identity)
    }

    /// Tokens remembered as verified (for figures and tests).
    pub fn cached_tokens(&self) -> usize {
        self.verified.len()
    }

    /// Verifies the signature and claims: the identity and the token's
    /// `exp` (0 when it is not a whole number: then nothing is cached).
    fn verify_signed(&self, token: &str) -> Result<(Identity, u64), AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            AuthError::Token("malformed header, or an algorithm that is not EdDSA or ES256".into())
        })?;
        if !matches!(header.alg, Algorithm::EdDSA | Algorithm::ES256) {
            return Err(AuthError::Token(format!(
                "algorithm {:?} is not accepted (EdDSA or ES256 only)",
                header.alg
            )));
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&self.config.issuers);
        validation.set_audience(&self.config.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = LEEWAY_SECONDS;
        let mut last = None;
        for key in self.keys.candidates(header.alg, header.kid.as_deref()) {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => {
                    let expires = data
                        .claims
                        .get("exp")
                        .and_then(Value::as_u64)
                        .unwrap_or_default();
                    return Ok((self.identity(&data.claims)?, expires));
                }
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => last = Some(e),
                Err(e) => return Err(token_error(&e)),
            }
        }
        Err(match last {
            Some(e) => token_error(&e),
            None => AuthError::Token(format!(
                "no configured {:?} key{}",
                header.alg,
                header
                    .kid
                    .as_deref()
                    .map(|k| format!(" with key id {k:?}"))
                    .unwrap_or_default()
            )),
        })
    }

    fn identity(&self, claims: &Map<String, Value>) -> Result<Identity, AuthError> {
        let m = &self.config.mapping;
        let bad = |reason: String| AuthError::Claims(reason);
        let subject = claims
            .get(&m.subject)
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("no {} (subject) claim", m.subject)))?;
        let role_values: Vec<&str> = match claims.get(&m.role) {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let role = if m.role_values.is_empty() {
            role_values.iter().find_map(|v| crate::parse_role(v))
        } else {
            m.role_values
                .iter()
                .find(|(value, _)| role_values.contains(&value.as_str()))
                .map(|(_, role)| *role)
        }
        .ok_or_else(|| bad(format!("the {} claim names no Closeout role", m.role)))?;
        let organisation = match claims.get(&m.organisation).and_then(Value::as_str) {
            Some(id) if role == Role::InspectedBody => Some(
                OrganisationId::parse(id)
                    .map_err(|e| bad(format!("{} claim: {e}", m.organisation)))?,
            ),
            _ => None,
        };
        let mut viewer_organisations = Vec::new();
        if role == Role::Viewer
            && let Some(Value::Array(list)) = claims.get(&m.organisations)
        {
            for value in list {
                let id = value.as_str().ok_or_else(|| {
                    bad(format!("{} claim holds a non-text value", m.organisations))
                })?;
                viewer_organisations.push(
                    OrganisationId::parse(id)
                        .map_err(|e| bad(format!("{} claim: {e}", m.organisations)))?,
                );
            }
        }
        Identity::new(subject, role, organisation, viewer_organisations)
            .map_err(|e| bad(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate_ed25519;
    use base64::Engine;

    fn setup() -> (SigningKey, Verifier) {
        let pair = generate_ed25519("k1").unwrap();
        let signing = SigningKey::from_pem(pair.private_pem.as_bytes(), Some("k1".into())).unwrap();
        let mut keys = KeySet::new();
        keys.add_pem("test", pair.public_pem.as_bytes(), Some("k1".into()))
            .unwrap();
        (signing, Verifier::new(keys, VerifierConfig::default()))
    }

    fn hour() -> Duration {
        Duration::from_secs(3600)
    }

    #[test]
    fn a_minted_token_verifies_into_its_identity() {
        let (key, verifier) = setup();
        let token = mint(
            &key,
            &Claims::new("jo@kent", Role::InspectedBody, Some("kent"), hour()),
        )
        .unwrap();
        let who = verifier.verify(&token).unwrap();
        assert_eq!(who.subject, "jo@kent");
        assert_eq!(who.role, Role::InspectedBody);
        assert_eq!(who.organisation.unwrap().as_str(), "kent");
    }

    #[test]
    fn a_verified_token_is_remembered_and_a_changed_one_is_not() {
        let (key, verifier) = setup();
        let token = mint(&key, &Claims::new("jo", Role::Viewer, None, hour())).unwrap();
        let first = verifier.verify(&token).unwrap();
        assert_eq!(verifier.cached_tokens(), 1);
        assert_eq!(verifier.verify(&token).unwrap(), first);
        assert_eq!(verifier.clone().verify(&token).unwrap(), first);
        assert_eq!(verifier.cached_tokens(), 1, "clones share the cache");
        // The same claims under a broken signature: verified afresh, refused.
        let at = token.len() - 10;
        let flipped = if &token[at..=at] == "A" { "B" } else { "A" };
        let broken = format!("{}{flipped}{}", &token[..at], &token[at + 1..]);
        assert!(verifier.verify(&broken).is_err());
        assert_eq!(verifier.cached_tokens(), 1, "refusals are not remembered");
    }

    #[test]
    fn jwks_keys_verify_and_rotate_by_kid() {
        let old = generate_ed25519("old").unwrap();
        let new = generate_ed25519("new").unwrap();
        let mut keys = KeySet::new();
        keys.add_jwks("old.json", &old.jwks).unwrap();
        keys.add_jwks("new.json", &new.jwks).unwrap();
        let verifier = Verifier::new(keys, VerifierConfig::default());
        for (pair, kid) in [(&old, "old"), (&new, "new")] {
            let key = SigningKey::from_pem(pair.private_pem.as_bytes(), Some(kid.into())).unwrap();
            let token = mint(&key, &Claims::new("a", Role::Viewer, None, hour())).unwrap();
            assert_eq!(verifier.verify(&token).unwrap().role, Role::Viewer);
        }
    }

    #[test]
    fn forged_expired_foreign_and_unsigned_tokens_are_refused() {
        let (key, verifier) = setup();
        // Expired beyond the leeway.
        let mut claims = Claims::new("a", Role::Inspectorate, None, hour());
        claims.exp = now_seconds() - 120;
        let expired = mint(&key, &claims).unwrap();
        assert!(
            matches!(verifier.verify(&expired), Err(AuthError::Token(m)) if m.contains("expired"))
        );
        // Another audience, another issuer.
        let mut claims = Claims::new("a", Role::Inspectorate, None, hour());
        claims.aud = "someone-else".into();
        assert!(verifier.verify(&mint(&key, &claims).unwrap()).is_err());
        let mut claims = Claims::new("a", Role::Inspectorate, None, hour());
        claims.iss = "evil".into();
        assert!(verifier.verify(&mint(&key, &claims).unwrap()).is_err());
        // Signed by a key nobody configured, under the same kid.
        let stranger = generate_ed25519("k1").unwrap();
        let stranger =
            SigningKey::from_pem(stranger.private_pem.as_bytes(), Some("k1".into())).unwrap();
        let claims = Claims::new("a", Role::Inspectorate, None, hour());
        assert!(verifier.verify(&mint(&stranger, &claims).unwrap()).is_err());
        // A payload changed after signing.
        let good = mint(&key, &claims).unwrap();
        let parts: Vec<&str> = good.split('.').collect();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut forged_claims = claims.clone();
        forged_claims.sub = "chief".into();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64.encode(serde_json::to_vec(&forged_claims).unwrap()),
            parts[2]
        );
        assert!(verifier.verify(&forged).is_err());
        // alg none and HS256.
        for alg in ["none", "HS256", "RS256"] {
            let header = b64.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            let token = format!("{header}.{}.", parts[1]);
            assert!(verifier.verify(&token).is_err(), "{alg}");
        }
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert!(
            matches!(verifier.verify(&hs), Err(AuthError::Token(m)) if m.contains("not accepted"))
        );
        assert!(verifier.verify("").is_err());
        assert!(verifier.verify(&"a".repeat(MAX_TOKEN_BYTES + 1)).is_err());
    }

    #[test]
    fn claims_must_make_an_identity() {
        let (key, verifier) = setup();
        let no_org = Claims::new("a", Role::InspectedBody, None, hour());
        assert!(matches!(
            verifier.verify(&mint(&key, &no_org).unwrap()),
            Err(AuthError::Claims(_))
        ));
        let mut long = Claims::new("a", Role::Viewer, None, hour());
        long.sub = "x".repeat(300);
        assert!(matches!(
            verifier.verify(&mint(&key, &long).unwrap()),
            Err(AuthError::Claims(_))
        ));
        let mut chief = Claims::new("a", Role::Viewer, None, hour());
        chief.role = "chief".into();
        assert!(verifier.verify(&mint(&key, &chief).unwrap()).is_err());
        let mut scoped = Claims::new("a", Role::Viewer, None, hour());
        scoped.orgs = vec!["kent".into(), "essex".into()];
        let who = verifier.verify(&mint(&key, &scoped).unwrap()).unwrap();
        assert_eq!(who.viewer_organisations.len(), 2);
    }

    #[test]
    fn oidc_claims_map_through_configuration() {
        let pair = generate_ed25519("idp").unwrap();
        let signing =
            SigningKey::from_pem(pair.private_pem.as_bytes(), Some("idp".into())).unwrap();
        let mut keys = KeySet::new();
        keys.add_jwks("idp.json", &pair.jwks).unwrap();
        let verifier = Verifier::new(
            keys,
            VerifierConfig {
                issuers: vec!["https://login.kent.example".into()],
                audiences: vec!["closeout-kent".into()],
                mapping: ClaimMapping {
                    subject: "email".into(),
                    role: "groups".into(),
                    organisation: "tenant".into(),
                    organisations: "orgs".into(),
                    role_values: vec![("closeout-editors".into(), Role::InspectedBody)],
                },
            },
        );
        let claims = serde_json::json!({
            "sub": "0f3a", "email": "jo@kent.example", "groups": ["staff", "closeout-editors"],
            "tenant": "kent", "iss": "https://login.kent.example", "aud": "closeout-kent",
            "iat": now_seconds(), "exp": now_seconds() + 600,
        });
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("idp".into());
        let token = jsonwebtoken::encode(&header, &claims, &signing.key).unwrap();
        let who = verifier.verify(&token).unwrap();
        assert_eq!(who.subject, "jo@kent.example");
        assert_eq!(who.role, Role::InspectedBody);
        assert_eq!(who.organisation.unwrap().as_str(), "kent");
    }
}
