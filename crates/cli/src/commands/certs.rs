//! `closeout dev-certs --out DIR`: DEVELOPMENT-ONLY TLS material for the
//! compose stack and local runs — a CA, one server certificate for every
//! service name the compose file uses (and localhost), and one client
//! certificate. The CA's private key is not kept: nothing more can be
//! signed with it, so the material is only as trusted as the directory.
//! An existing set is kept unless `--force`, so restarting the stack does
//! not swap certificates under running services.

use crate::commands::token::write_private;
use crate::error::CliError;
use clap::Args;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// Names every server certificate carries: the compose service names
/// (NATS and PostgreSQL included) and the loopback names.
pub const SERVER_NAMES: &[&str] = &[
    "localhost",
    "127.0.0.1",
    "::1",
    "findings",
    "tracker",
    "metrics",
    "notify",
    "web",
    "nats",
    "nats-1",
    "nats-2",
    "nats-3",
    "postgres",
];

/// The files written, by name inside `--out`.
pub const FILES: [&str; 5] = [
    "ca.pem",
    "server.pem",
    "server.key",
    "client.pem",
    "client.key",
];

#[derive(Args)]
pub struct DevCertsArgs {
    /// Directory to write ca.pem, server.pem/.key and client.pem/.key to.
    #[arg(long)]
    out: PathBuf,
    /// Another name (or IP address) for the server certificate; repeatable.
    #[arg(long = "name")]
    names: Vec<String>,
    /// Replace an existing set.
    #[arg(long)]
    force: bool,
}

fn failure(what: &str, e: impl std::fmt::Display) -> CliError {
    CliError::Other(format!("generating the {what}: {e}"))
}

fn named(common_name: &str, names: Vec<String>) -> Result<CertificateParams, CliError> {
    let mut params = CertificateParams::new(names).map_err(|e| failure(common_name, e))?;
    let mut subject = DistinguishedName::new();
    subject.push(DnType::OrganizationName, "Closeout development");
    subject.push(DnType::CommonName, common_name);
    params.distinguished_name = subject;
    Ok(params)
}

/// The PEM texts, by file name, in [`FILES`] order.
fn generate(extra_names: &[String]) -> Result<Vec<(&'static str, String)>, CliError> {
    let ca_key = KeyPair::generate().map_err(|e| failure("CA key", e))?;
    let mut ca_params = named("Closeout development CA", Vec::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params
        .self_signed(&ca_key)
        .map_err(|e| failure("CA certificate", e))?;

    let leaf = |common_name: &str, names: Vec<String>, purpose: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().map_err(|e| failure(common_name, e))?;
        let mut params = named(common_name, names)?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![purpose];
        let cert = params
            .signed_by(&key, &ca, &ca_key)
            .map_err(|e| failure(common_name, e))?;
        Ok::<_, CliError>((cert.pem(), key.serialize_pem()))
    };
    let mut server_names: Vec<String> = SERVER_NAMES.iter().map(|n| n.to_string()).collect();
    server_names.extend(extra_names.iter().map(|n| n.trim().to_string()));
    let (server_cert, server_key) = leaf(
        "closeout-dev-server",
        server_names,
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let (client_cert, client_key) = leaf(
        "closeout-dev-client",
        vec!["closeout-dev-client".to_string()],
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    Ok(vec![
        ("ca.pem", ca.pem()),
        ("server.pem", server_cert),
        ("server.key", server_key),
        ("client.pem", client_cert),
        ("client.key", client_key),
    ])
}

fn write(dir: &Path, name: &str, text: &str) -> Result<(), CliError> {
    let path = dir.join(name);
    let result = if name.ends_with(".key") {
        write_private(&path, text.as_bytes())
    } else {
        std::fs::write(&path, text)
    };
    result.map_err(|e| CliError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

pub fn run(args: DevCertsArgs) -> Result<(), CliError> {
    if let Some(bad) = args.names.iter().find(|n| n.trim().is_empty()) {
        return Err(CliError::Usage(format!("--name {bad:?}: empty")));
    }
    let all_there = FILES.iter().all(|f| args.out.join(f).is_file());
    if all_there && !args.force {
        println!(
            "{}: development TLS material already there (kept; --force replaces it)",
            args.out.display()
        );
        return Ok(());
    }
    std::fs::create_dir_all(&args.out).map_err(|e| CliError::File {
        path: args.out.display().to_string(),
        reason: e.to_string(),
    })?;
    // Keys first and the CA last: a run stopped half-way leaves no ca.pem,
    // so the next run writes the whole set again.
    let _ = std::fs::remove_file(args.out.join("ca.pem"));
    let mut files = generate(&args.names)?;
    files.rotate_left(1);
    for (name, text) in &files {
        write(&args.out, name, text)?;
    }
    println!(
        "DEVELOPMENT-ONLY TLS material in {dir}: ca.pem, server.pem/.key, client.pem/.key.\n\
         Serve with --grpc-tls-cert {dir}/server.pem --grpc-tls-key {dir}/server.key;\n\
         call with CLOSEOUT_TLS_CA={dir}/ca.pem and https:// addresses.",
        dir = args.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_set_once_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("certs");
        let args = |force| DevCertsArgs {
            out: out.clone(),
            names: vec!["closeout.test".into()],
            force,
        };
        run(args(false)).unwrap();
        let first = std::fs::read_to_string(out.join("ca.pem")).unwrap();
        assert!(first.starts_with("-----BEGIN CERTIFICATE-----"));
        for file in FILES {
            assert!(out.join(file).is_file(), "{file}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(out.join("server.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "keys are private");
        }
        run(args(false)).unwrap();
        assert_eq!(std::fs::read_to_string(out.join("ca.pem")).unwrap(), first);
        run(args(true)).unwrap();
        assert_ne!(std::fs::read_to_string(out.join("ca.pem")).unwrap(), first);
        let bad = DevCertsArgs {
            out: out.clone(),
            names: vec![" ".into()],
            force: true,
        };
        assert!(matches!(run(bad), Err(CliError::Usage(_))));
    }
}
