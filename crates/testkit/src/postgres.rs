//! A PostgreSQL cluster of a test's own (`initdb` + `pg_ctl` from
//! `/usr/lib/postgresql/*/bin`), on a free port with trust authentication,
//! for tests that need a whole server to themselves — e.g. to run the
//! deployment's init script exactly as written. Stopped and deleted on drop.
//! [`PrivatePostgres::start_with`] adds server settings (TLS, a pg_hba.conf
//! of the deployment's) on top.

use crate::free_port;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A private PostgreSQL server.
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    stopped: bool,
    /// `-c name=value` options beyond the defaults, kept for restarts.
    extra: String,
}

/// Server settings for [`PrivatePostgres::start_with`].
#[derive(Clone, Debug, Default)]
pub struct ServerSettings {
    /// `name=value` settings given as `-c` options (e.g. `ssl=on`,
    /// `hba_file=…`); the values must not contain spaces. Files named by
    /// a setting ending in `_file` are copied into the server's directory.
    pub settings: Vec<(String, String)>,
    /// A TLS private key for `ssl_key_file`: PostgreSQL refuses one its
    /// own user does not own or others can read, so a copy is made for it
    /// (mode 0600) and the setting points there.
    pub ssl_key_file: Option<PathBuf>,
}

fn postgres_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("CLOSEOUT_POSTGRES_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as user `postgres` when we are root (initdb
/// refuses to run as root).
fn run(tool: &Path, args: &[&str]) {
    let status = if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(tool)
            .args(args)
            .status()
    } else {
        Command::new(tool).args(args).status()
    };
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{} {:?} failed: {s}", tool.display(), args),
        Err(e) => panic!("running {}: {e}", tool.display()),
    }
}

impl PrivatePostgres {
    /// Creates and starts a cluster; superuser `postgres`, trust auth.
    pub fn start() -> PrivatePostgres {
        PrivatePostgres::start_with(ServerSettings::default())
    }

    /// As [`PrivatePostgres::start`], with `settings` on top of the
    /// defaults (a `hba_file` there replaces the trust-everything one).
    pub fn start_with(settings: ServerSettings) -> PrivatePostgres {
        let bin = postgres_bin().expect("PostgreSQL binaries not found under /usr/lib/postgresql");
        let dir = tempfile::Builder::new()
            .prefix("closeout-pg-")
            .tempdir()
            .expect("temporary directory");
        if is_root() {
            let _ = Command::new("chown")
                .args(["postgres"])
                .arg(dir.path())
                .status();
        }
        let data = dir.path().join("data");
        let data = data.to_string_lossy().to_string();
        run(
            &bin.join("initdb"),
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-N",
                "-E",
                "UTF8",
            ],
        );
        let mut extra = String::new();
        if let Some(key) = &settings.ssl_key_file {
            let copy = dir.path().join("server.key");
            std::fs::copy(key, &copy).expect("copying the TLS key");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o600))
                    .expect("TLS key mode");
            }
            if is_root() {
                let _ = Command::new("chown").arg("postgres").arg(&copy).status();
            }
            extra.push_str(&format!(" -c ssl_key_file={}", copy.display()));
        }
        for (name, value) in &settings.settings {
            assert!(
                !value.contains(char::is_whitespace),
                "setting {name}: {value:?} has spaces"
            );
            // Files the server reads (hba_file, ssl_cert_file, …) are copied
            // into its own directory: the server runs as `postgres`, which
            // may not be allowed into the directory they come from (a
            // checkout made by `mktemp -d` is 0700).
            let value = if name.ends_with("_file") {
                let copy = dir.path().join(format!("{name}.copy"));
                std::fs::copy(value, &copy)
                    .unwrap_or_else(|e| panic!("copying {name} {value}: {e}"));
                if is_root() {
                    let _ = Command::new("chown").arg("postgres").arg(&copy).status();
                }
                copy.display().to_string()
            } else {
                value.clone()
            };
            extra.push_str(&format!(" -c {name}={value}"));
        }
        let port = free_port();
        let socket_dir = dir.path().to_string_lossy().to_string();
        let options =
            format!("-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off{extra}");
        let log = dir.path().join("log").to_string_lossy().to_string();
        run(
            &bin.join("pg_ctl"),
            &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
        );
        PrivatePostgres {
            bin,
            dir,
            port,
            stopped: false,
            extra,
        }
    }

    /// URL of `database` as the superuser over the Unix socket: the way in
    /// when a deployment's `hba_file` lets no superuser in over TCP.
    pub fn socket_url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@localhost:{}/{database}?host={}",
            self.port,
            self.dir.path().display()
        )
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL of `database` as the superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Restarts the server on the same port and data: an immediate stop
    /// (as a crash: open connections are cut, recovery replays the WAL),
    /// then a start that waits until it accepts connections.
    pub fn restart(&mut self) {
        let data = self.dir.path().join("data").to_string_lossy().to_string();
        if !self.stopped {
            run(
                &self.bin.join("pg_ctl"),
                &["-D", &data, "-m", "immediate", "-w", "stop"],
            );
        }
        let socket_dir = self.dir.path().to_string_lossy().to_string();
        let options = format!(
            "-p {} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off{}",
            self.port, self.extra
        );
        let log = self.dir.path().join("log").to_string_lossy().to_string();
        run(
            &self.bin.join("pg_ctl"),
            &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
        );
        self.stopped = false;
    }

    /// Stops the server immediately (the data is thrown away anyway).
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        let data = self.dir.path().join("data").to_string_lossy().to_string();
        run(
            &self.bin.join("pg_ctl"),
            &["-D", &data, "-m", "immediate", "-w", "stop"],
        );
        self.stopped = true;
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if !self.stopped {
            let data = self.dir.path().join("data").to_string_lossy().to_string();
            let tool = self.bin.join("pg_ctl");
            let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
            let _ = if is_root() {
                Command::new("runuser")
                    .args(["-u", "postgres", "--"])
                    .arg(&tool)
                    .args(args)
                    .status()
            } else {
                Command::new(&tool).args(args).status()
            };
        }
    }
}
