//! Who is calling, proved. Every Closeout RPC carries a bearer token: a JWT
//! signed with EdDSA (Ed25519) or ES256, verified here against public keys
//! from configuration (PEM files, a JWKS file, several keys at once so a
//! key can be rotated). Tokens from an organisation's own OIDC identity
//! provider go through the same [`Verifier`]: issuer, audience and which
//! claims hold the role and organisation come from [`VerifierConfig`].
//!
//! Closeout's own claims: `sub`, `role` (`inspectorate`, `inspected-body`,
//! `viewer`, `service`), `org` (required for an inspected body), `orgs`
//! (optional list scoping a viewer), `exp`, `iat`, `iss`, `aud`.
//!
//! Only EdDSA and ES256 are accepted: `alg: none`, HMAC and RSA tokens are
//! refused before any key is tried. [`mint`] signs tokens for operators,
//! `closeout dev` and tests; [`generate_ed25519`] makes a key pair.
//!
//! The result of verification is a [`closeout_domain::authorisation::Identity`];
//! what that identity may do is the domain's rules table.

pub mod cache;
mod keys;
mod verify;

pub use closeout_domain::Role;
pub use closeout_domain::authorisation::Identity;
pub use keys::{KeyPair, KeySet, SigningKey, generate_ed25519};
pub use verify::{ClaimMapping, Claims, Verifier, VerifierConfig, mint};

/// The issuer Closeout's own tokens name unless configured otherwise.
pub const DEFAULT_ISSUER: &str = "closeout";
/// The audience Closeout's own tokens name unless configured otherwise.
pub const DEFAULT_AUDIENCE: &str = "closeout";
/// Clock skew tolerated on `exp` (seconds).
pub const LEEWAY_SECONDS: u64 = 30;
/// Longest token accepted (bytes); anything longer is refused unread.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a key could not be loaded or a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A key file or JWKS could not be read or understood.
    #[error("key {source_name}: {reason}")]
    Key { source_name: String, reason: String },
    /// The token is missing, malformed, unsigned, badly signed, expired,
    /// or for someone else (UNAUTHENTICATED).
    #[error("invalid token: {0}")]
    Token(String),
    /// The token is genuine but its claims do not make an identity.
    #[error("token claims: {0}")]
    Claims(String),
}

/// The role's spelling in tokens (`service` for [`Role::System`]).
pub fn role_claim(role: Role) -> &'static str {
    match role {
        Role::Inspectorate => "inspectorate",
        Role::InspectedBody => "inspected-body",
        Role::Viewer => "viewer",
        Role::System => "service",
    }
}

/// A role as written in a token or on a command line.
pub fn parse_role(text: &str) -> Option<Role> {
    match text
        .trim()
        .to_ascii_lowercase()
        .replace(['_', ' '], "-")
        .as_str()
    {
        "inspectorate" => Some(Role::Inspectorate),
        "inspected-body" => Some(Role::InspectedBody),
        "viewer" => Some(Role::Viewer),
        "service" | "system" => Some(Role::System),
        _ => None,
    }
}
