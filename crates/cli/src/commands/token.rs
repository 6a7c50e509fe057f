//! Bearer tokens on the command line: where the CLI finds one (`--token`,
//! `CLOSEOUT_TOKEN`, else the credentials file `closeout dev` writes, the
//! inspectorate's entry unless `--as-role` names another), and
//! `closeout token mint` for operators with a signing key. There is no
//! default identity: without a token the CLI says how to get one.

use crate::error::CliError;
use clap::{Args, Subcommand};
use closeout_auth::{Claims, SigningKey};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The credentials file: one token per role name, and optionally the CA
/// to trust for `https://` addresses when `--tls-ca` is not given.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    /// CA certificate (PEM) that signed the services' certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    /// Tokens by role name (`inspectorate`, `inspected-body`, `viewer`).
    #[serde(default)]
    pub tokens: BTreeMap<String, String>,
}

/// `$XDG_CONFIG_HOME/closeout/credentials.toml`, else
/// `~/.config/closeout/credentials.toml`.
pub fn default_credentials_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".config"))
        })?;
    Some(base.join("closeout").join("credentials.toml"))
}

impl Credentials {
    /// Reads the file at `path`.
    pub fn load(path: &Path) -> Result<Credentials, CliError> {
        let text = std::fs::read_to_string(path).map_err(|e| CliError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| CliError::File {
            path: path.display().to_string(),
            reason: format!("not a credentials file: {e}"),
        })
    }

    /// Writes the file at `path` (readable by its owner only).
    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        let error = |e: &dyn std::fmt::Display| CliError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| error(&e))?;
        }
        let text = format!(
            "# Closeout credentials: one bearer token per role (written by closeout dev).\n{}",
            toml::to_string(self).map_err(|e| error(&e))?
        );
        write_private(path, text.as_bytes()).map_err(|e| error(&e))
    }
}

/// Writes `bytes` to `path`, readable and writable by the owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)
}

/// Finds the token for a command: `explicit` (from `--token` or
/// `CLOSEOUT_TOKEN`), else the `role` entry (default `inspectorate`) of
/// the credentials file at `credentials` (default
/// [`default_credentials_path`]).
pub fn resolve(
    explicit: Option<&str>,
    role: Option<&str>,
    credentials: Option<&Path>,
) -> Result<String, CliError> {
    if let Some(token) = explicit.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(token.to_string());
    }
    let role = role.unwrap_or("inspectorate");
    let path = match credentials {
        Some(path) => path.to_path_buf(),
        None => default_credentials_path().ok_or_else(|| {
            CliError::Usage("no token: pass --token or set CLOSEOUT_TOKEN".into())
        })?,
    };
    if !path.exists() {
        return Err(CliError::Usage(format!(
            "no token: pass --token, set CLOSEOUT_TOKEN, or run `closeout dev` (it writes {})",
            path.display()
        )));
    }
    let credentials = Credentials::load(&path)?;
    credentials.tokens.get(role).cloned().ok_or_else(|| {
        CliError::Usage(format!(
            "{} holds no token for {role:?} (it has: {})",
            path.display(),
            credentials
                .tokens
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

#[derive(Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Sign a bearer token with a private key (PKCS#8 PEM, Ed25519 or
    /// P-256) and print it.
    Mint(MintArgs),
}

#[derive(Args)]
struct MintArgs {
    /// The private key file.
    #[arg(long)]
    key: PathBuf,
    /// inspectorate, inspected-body, viewer or service.
    #[arg(long)]
    role: String,
    /// The organisation an inspected body acts for (for a viewer: the
    /// organisations it may read, comma-separated; none: all).
    #[arg(long)]
    org: Option<String>,
    /// How long the token is valid: a number with s, m, h or d.
    #[arg(long, default_value = "8h")]
    ttl: String,
    /// Who the token names in the audit trail (default: $USER).
    #[arg(long)]
    sub: Option<String>,
    /// Issuer (`iss`).
    #[arg(long, default_value = closeout_auth::DEFAULT_ISSUER)]
    issuer: String,
    /// Audience (`aud`).
    #[arg(long, default_value = closeout_auth::DEFAULT_AUDIENCE)]
    audience: String,
}

/// A duration such as `30s`, `15m`, `8h`, `7d`.
pub fn parse_ttl(text: &str) -> Result<Duration, CliError> {
    let text = text.trim();
    let split = text.len().saturating_sub(1);
    let (number, unit) = text.split_at(split);
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    match number.parse::<u64>() {
        Ok(n) if seconds > 0 && n > 0 && n <= 366 * 86_400 / seconds => {
            Ok(Duration::from_secs(n * seconds))
        }
        _ => Err(CliError::Usage(format!(
            "--ttl {text:?} is not a duration like 30m, 8h or 7d (at most a year)"
        ))),
    }
}

/// Claims for `role` (checked), `org` and `subject`, valid for `ttl`.
pub fn claims(
    role: &str,
    org: Option<&str>,
    subject: &str,
    ttl: Duration,
) -> Result<Claims, CliError> {
    let parsed = closeout_auth::parse_role(role).ok_or_else(|| {
        CliError::Usage(format!(
            "--role {role:?} is not inspectorate, inspected-body, viewer or service"
        ))
    })?;
    let org = org.map(str::trim).filter(|o| !o.is_empty());
    let mut claims = match parsed {
        closeout_auth::Role::InspectedBody => {
            let org =
                org.ok_or_else(|| CliError::Usage("an inspected-body token needs --org".into()))?;
            Claims::new(subject, parsed, Some(org), ttl)
        }
        _ => Claims::new(subject, parsed, None, ttl),
    };
    if parsed == closeout_auth::Role::Viewer
        && let Some(orgs) = org
    {
        claims.orgs = orgs.split(',').map(|o| o.trim().to_string()).collect();
    }
    Ok(claims)
}

pub fn run(args: TokenArgs) -> Result<(), CliError> {
    let TokenCommand::Mint(args) = args.command;
    let key = SigningKey::from_file(&args.key).map_err(|e| CliError::Usage(e.to_string()))?;
    let subject = args
        .sub
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| CliError::Usage("--sub is required (no $USER)".into()))?;
    let mut claims = claims(
        &args.role,
        args.org.as_deref(),
        &subject,
        parse_ttl(&args.ttl)?,
    )?;
    claims.iss = args.issuer;
    claims.aud = args.audience;
    let token = closeout_auth::mint(&key, &claims).map_err(|e| CliError::Other(e.to_string()))?;
    println!("{token}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_claims() {
        assert_eq!(parse_ttl("8h").unwrap(), Duration::from_secs(8 * 3600));
        assert_eq!(parse_ttl("30m").unwrap(), Duration::from_secs(1800));
        assert!(parse_ttl("8").is_err());
        assert!(parse_ttl("0h").is_err());
        assert!(parse_ttl("9999d").is_err());
        assert!(claims("inspected-body", None, "a", Duration::from_secs(60)).is_err());
        assert!(claims("chief", None, "a", Duration::from_secs(60)).is_err());
        let c = claims("viewer", Some("kent, essex"), "a", Duration::from_secs(60)).unwrap();
        assert_eq!(c.orgs, ["kent", "essex"]);
        let c = claims("inspected-body", Some("kent"), "a", Duration::from_secs(60)).unwrap();
        assert_eq!(c.org.as_deref(), Some("kent"));
    }

    #[test]
    fn tokens_come_from_flags_or_the_credentials_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.toml");
        assert!(matches!(
            resolve(None, None, Some(&path)),
            Err(CliError::Usage(m)) if m.contains("closeout dev")
        ));
        let mut credentials = Credentials::default();
        credentials
            .tokens
            .insert("inspectorate".into(), "tok-i".into());
        credentials.tokens.insert("viewer".into(), "tok-v".into());
        credentials.save(&path).unwrap();
        assert_eq!(resolve(None, None, Some(&path)).unwrap(), "tok-i");
        assert_eq!(resolve(None, Some("viewer"), Some(&path)).unwrap(), "tok-v");
        assert!(resolve(None, Some("inspected-body"), Some(&path)).is_err());
        assert_eq!(resolve(Some("given"), None, Some(&path)).unwrap(), "given");
    }
}
