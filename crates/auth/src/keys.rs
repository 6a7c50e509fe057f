//! Keys: the public keys tokens are verified against (PEM, JWKS; each
//! EdDSA or ES256, optionally named by a key id for rotation), the private
//! key tokens are minted with, and generating an Ed25519 pair.

use crate::AuthError;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use std::path::Path;

/// One verification key.
#[derive(Clone)]
pub(crate) struct PublicKey {
    pub(crate) kid: Option<String>,
    pub(crate) algorithm: Algorithm,
    pub(crate) key: DecodingKey,
}

/// The public keys a [`crate::Verifier`] accepts. A token naming a key id
/// (`kid`) is tried against keys with that id (and keys without one); a
/// token without one against every key of its algorithm.
#[derive(Clone, Default)]
pub struct KeySet {
    pub(crate) keys: Vec<PublicKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|k| format!("{:?}:{}", k.algorithm, k.kid.as_deref().unwrap_or("-")))
            .collect();
        f.debug_struct("KeySet").field("keys", &keys).finish()
    }
}

fn key_error(source_name: &str, reason: impl ToString) -> AuthError {
    AuthError::Key {
        source_name: source_name.to_string(),
        reason: reason.to_string(),
    }
}

impl KeySet {
    /// No keys: every token is refused.
    pub fn new() -> KeySet {
        KeySet::default()
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Adds a PEM public key (SubjectPublicKeyInfo, Ed25519 or P-256),
    /// named `kid` if given. `source_name` names it in errors.
    pub fn add_pem(
        &mut self,
        source_name: &str,
        pem: &[u8],
        kid: Option<String>,
    ) -> Result<(), AuthError> {
        let (algorithm, key) = if let Ok(key) = DecodingKey::from_ed_pem(pem) {
            (Algorithm::EdDSA, key)
        } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
            (Algorithm::ES256, key)
        } else {
            return Err(key_error(
                source_name,
                "is not a PEM Ed25519 or P-256 public key",
            ));
        };
        self.keys.push(PublicKey {
            kid,
            algorithm,
            key,
        });
        Ok(())
    }

    /// Adds every key of a JWKS document (OKP Ed25519 and EC P-256 keys;
    /// any other key type is an error, so a misconfigured set is noticed).
    pub fn add_jwks(&mut self, source_name: &str, json: &str) -> Result<(), AuthError> {
        let set: JwkSet = serde_json::from_str(json).map_err(|e| key_error(source_name, e))?;
        if set.keys.is_empty() {
            return Err(key_error(source_name, "holds no keys"));
        }
        for (i, jwk) in set.keys.iter().enumerate() {
            let name = format!("{source_name} key {i}");
            let algorithm = match &jwk.algorithm {
                AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                    Algorithm::EdDSA
                }
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                _ => {
                    return Err(key_error(
                        &name,
                        "is neither an Ed25519 (OKP) nor a P-256 (EC) key",
                    ));
                }
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| key_error(&name, e))?;
            self.keys.push(PublicKey {
                kid: jwk.common.key_id.clone(),
                algorithm,
                key,
            });
        }
        Ok(())
    }

    /// Adds the keys of `path`: a JWKS document if it ends in `.json`,
    /// else a PEM public key named by its file stem.
    pub fn add_file(&mut self, path: &Path) -> Result<(), AuthError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| key_error(&name, e))?;
        if path.extension().is_some_and(|e| e == "json") {
            self.add_jwks(&name, &text)
        } else {
            let kid = path
                .file_stem()
                .map(|s| s.to_string_lossy().trim_end_matches(".pub").to_string());
            self.add_pem(&name, text.as_bytes(), kid)
        }
    }

    pub(crate) fn candidates<'a>(
        &'a self,
        algorithm: Algorithm,
        kid: Option<&'a str>,
    ) -> impl Iterator<Item = &'a PublicKey> + 'a {
        self.keys.iter().filter(move |k| {
            k.algorithm == algorithm
                && match (kid, &k.kid) {
                    (Some(wanted), Some(have)) => wanted == have,
                    _ => true,
                }
        })
    }
}

/// A private key tokens are signed with (PKCS#8 PEM, Ed25519 or P-256).
#[derive(Clone)]
pub struct SigningKey {
    pub(crate) algorithm: Algorithm,
    pub(crate) key: EncodingKey,
    pub(crate) kid: Option<String>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A signing key from PKCS#8 PEM; tokens it signs name `kid`.
    pub fn from_pem(pem: &[u8], kid: Option<String>) -> Result<SigningKey, AuthError> {
        let (algorithm, key) = if let Ok(key) = EncodingKey::from_ed_pem(pem) {
            (Algorithm::EdDSA, key)
        } else if let Ok(key) = EncodingKey::from_ec_pem(pem) {
            (Algorithm::ES256, key)
        } else {
            return Err(key_error(
                "signing key",
                "is not a PKCS#8 PEM Ed25519 or P-256 private key",
            ));
        };
        Ok(SigningKey {
            algorithm,
            key,
            kid,
        })
    }

    /// The signing key in `path`, named by its file stem.
    pub fn from_file(path: &Path) -> Result<SigningKey, AuthError> {
        let text = std::fs::read(path).map_err(|e| key_error(&path.display().to_string(), e))?;
        let kid = path.file_stem().map(|s| s.to_string_lossy().to_string());
        SigningKey::from_pem(&text, kid).map_err(|e| match e {
            AuthError::Key { reason, .. } => key_error(&path.display().to_string(), reason),
            other => other,
        })
    }
}

/// A freshly generated key pair, as text to write to files.
#[derive(Clone)]
pub struct KeyPair {
    /// PKCS#8 PEM private key (keep secret).
    pub private_pem: String,
    /// SubjectPublicKeyInfo PEM public key (give to the services).
    pub public_pem: String,
    /// A JWKS document holding the public key under `kid`.
    pub jwks: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public_pem", &self.public_pem)
            .finish_non_exhaustive()
    }
}

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410) before the
/// 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A new Ed25519 key pair; its JWKS names it `kid`.
pub fn generate_ed25519(kid: &str) -> Result<KeyPair, AuthError> {
    use ring::signature::KeyPair as _;
    let random = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&random)
        .map_err(|_| key_error("new key", "the system random source failed"))?;
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| key_error("new key", "generated key does not load"))?;
    let public = pair.public_key().as_ref();
    let mut spki = ED25519_SPKI_PREFIX.to_vec();
    spki.extend_from_slice(public);
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public);
    let jwks = serde_json::json!({
        "keys": [{ "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": x }]
    })
    .to_string();
    Ok(KeyPair {
        private_pem: pem("PRIVATE KEY", pkcs8.as_ref()),
        public_pem: pem("PUBLIC KEY", &spki),
        jwks,
    })
}
