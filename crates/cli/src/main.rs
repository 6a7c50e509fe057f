//! `closeout`: the command line for people. Each subcommand lives in its
//! own module under `commands/`; this file only parses arguments, runs the
//! command and turns any error into one line on stderr and a non-zero exit.

mod commands;
mod error;
mod output;
mod parse;

use clap::{Parser, Subcommand};
use error::CliError;

/// Follow inspection findings to closure.
#[derive(Parser)]
#[command(name = "closeout", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with inspection report files.
    Report(commands::report::ReportArgs),
    /// Import reports (files, or folders of .txt, .html and .pdf files)
    /// into the findings service.
    Import(commands::import::ImportArgs),
    /// Organisations that merged or were renamed: record and list.
    Successions(commands::successions::SuccessionsArgs),
    /// List stored inspections.
    Inspections(commands::findings::InspectionsArgs),
    /// List stored findings.
    Findings(commands::findings::FindingsArgs),
    /// Check a service's gRPC health (exit 0 only when SERVING).
    Health(commands::health::HealthArgs),
    /// Print an organisation's scorecard (metrics service).
    Scorecard(commands::metrics::OrganisationArgs),
    /// Compare an organisation with its most similar group and everyone.
    Peers(commands::metrics::OrganisationArgs),
    #[command(flatten)]
    Items(commands::items::ItemCommand),
    #[command(flatten)]
    Lifecycle(commands::lifecycle::LifecycleCommand),
    /// Follow item changes as they happen (Ctrl-C to stop).
    Watch(commands::watch::WatchArgs),
    #[command(flatten)]
    Proposals(commands::proposals::ProposalCommand),
    /// Run the whole system locally: databases, the services, the web
    /// console, the sample report and its scorecard, until Ctrl-C. Listens
    /// on 127.0.0.1 only, plain by default; --tls for TLS.
    Dev(commands::dev::DevArgs),
    /// Signed webhooks and e-mail about item changes (notify service).
    Subscriptions(commands::subscriptions::SubscriptionsArgs),
    /// Bearer tokens: mint one with a signing key.
    Token(commands::token::TokenArgs),
    /// Write DEVELOPMENT-ONLY TLS material (a CA, a server certificate for
    /// the compose service names and localhost, a client certificate).
    DevCerts(commands::certs::DevCertsArgs),
    /// Print the version of this client.
    Version,
}

fn main() -> std::process::ExitCode {
    end_quietly_on_a_closed_pipe();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("closeout: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Lets a closed pipe end the command quietly, as it ends `cat` or `ls`.
/// Rust starts programs with SIGPIPE ignored, so a write to a reader that
/// has gone away (`closeout items | head`) fails and `println!` panics
/// with a backtrace. SIGPIPE is not simply reset to its default action,
/// because the connections raise it too: a vectored write (`writev`, as
/// hyper and rustls write) to a server that refused the TLS handshake would
/// kill the command without a word. The handler ends the process the
/// default way only when standard output is the broken pipe; otherwise the
/// write fails with EPIPE and the command reports the connection error.
fn end_quietly_on_a_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: runs first in `main`, before any other thread exists, and
    // only installs a handler for SIGPIPE.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_broken_pipe as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGPIPE, &action, std::ptr::null_mut());
    }
}

/// SIGPIPE: dies of it (quietly, as `cat` does) when standard output's
/// reader is gone; returns otherwise, leaving EPIPE to the writer.
#[cfg(unix)]
extern "C" fn on_broken_pipe(_: libc::c_int) {
    // SAFETY: poll, signal and raise are async-signal-safe; a successful
    // poll leaves errno as the interrupted code had it.
    unsafe {
        let mut stdout = libc::pollfd {
            fd: libc::STDOUT_FILENO,
            events: 0,
            revents: 0,
        };
        if libc::poll(&mut stdout, 1, 0) > 0
            && stdout.revents & (libc::POLLERR | libc::POLLHUP) != 0
        {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::raise(libc::SIGPIPE);
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Report(args) => commands::report::run(args),
        Command::Token(args) => commands::token::run(args),
        Command::DevCerts(args) => commands::certs::run(args),
        Command::Version => {
            println!("closeout {}", closeout_service::server::VERSION);
            Ok(())
        }
        other => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| CliError::Other(format!("starting the runtime: {e}")))?;
            runtime.block_on(async move {
                match other {
                    Command::Import(args) => commands::import::run(args).await,
                    Command::Successions(args) => commands::successions::run(args).await,
                    Command::Inspections(args) => commands::findings::inspections(args).await,
                    Command::Findings(args) => commands::findings::findings(args).await,
                    Command::Health(args) => commands::health::run(args).await,
                    Command::Dev(args) => commands::dev::run(args).await,
                    Command::Subscriptions(args) => commands::subscriptions::run(args).await,
                    Command::Scorecard(args) => commands::metrics::scorecard(args).await,
                    Command::Peers(args) => commands::metrics::peers(args).await,
                    Command::Items(command) => commands::items::run(command).await,
                    Command::Lifecycle(command) => commands::lifecycle::run(command).await,
                    Command::Watch(args) => commands::watch::run(args).await,
                    Command::Proposals(command) => commands::proposals::run(command).await,
                    Command::Report(_)
                    | Command::Token(_)
                    | Command::DevCerts(_)
                    | Command::Version => Ok(()),
                }
            })
        }
    }
}
