//! `closeout-bench`: how fast the Closeout services are where it counts,
//! each figure printed beside its ceiling measured in the same run — the
//! same SQL run directly, a bare gRPC health check, bare JetStream publish
//! and pull+ack — as a ratio, with p50/p99 and the settings.
//!
//! Against a running stack (`--findings-addr`, `--tracker-addr`,
//! `--metrics-addr`, `--token` / `CLOSEOUT_TOKEN`, an inspectorate's
//! token), or, by default, a private stack it starts in this process on
//! databases and a stream of its own, removed at the end. Ceilings always
//! run on scratch databases and a scratch stream (the PostgreSQL and NATS
//! of `CLOSEOUT_TEST_DATABASE_URL` and `CLOSEOUT_TEST_NATS_URL`, default
//! 127.0.0.1:5432 and 127.0.0.1:4222).
//!
//! `--quick` runs every scenario at small sizes (CI runs it to prove it
//! works; its figures mean little). `--national` first imports ten
//! inspections for each of 43 police forces and 44 fire and rescue
//! services; `--million` does that and then imports large generated
//! inspections of one organisation until it has a million items. Both go
//! through the real ImportReport path, so the tracker and metrics consume
//! the real events. `--processes` runs the private stack as the service
//! binaries beside this one, so each service's memory is its own.

mod ceilings;
mod lag;
mod load;
mod scenarios;
mod stack;

use clap::Parser;
use std::process::ExitCode;

/// Command-line options.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "closeout-bench",
    version,
    about = "Throughput and latency of the Closeout services beside their ceilings"
)]
pub struct Options {
    /// Every scenario at small sizes, in well under a minute.
    #[arg(long)]
    pub quick: bool,
    /// Runs of each figure and its ceiling, interleaved (min / median /
    /// max of the ratio).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Findings service of a running stack (with the tracker and metrics
    /// addresses and a token); without it a private stack is started.
    #[arg(long, env = "CLOSEOUT_FINDINGS_ADDR")]
    pub findings_addr: Option<String>,
    /// Tracker service of a running stack.
    #[arg(
        long,
        env = "CLOSEOUT_TRACKER_ADDR",
        default_value = "http://127.0.0.1:50052"
    )]
    pub tracker_addr: String,
    /// Metrics service of a running stack.
    #[arg(
        long,
        env = "CLOSEOUT_METRICS_ADDR",
        default_value = "http://127.0.0.1:50053"
    )]
    pub metrics_addr: String,
    /// Bearer token (the inspectorate's) for a running stack.
    #[arg(long, env = "CLOSEOUT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The tracker's database of a running stack, for the SELECT ceilings
    /// of GetItem and ListItems (read only); without it those ceilings are
    /// left out.
    #[arg(long, env = "CLOSEOUT_BENCH_TRACKER_DATABASE_URL")]
    pub tracker_database_url: Option<String>,
    /// Before measuring, import ten inspections for each of 43 police
    /// forces and 44 fire and rescue services.
    #[arg(long)]
    pub national: bool,
    /// Before measuring, import the national data and then inspections of
    /// one organisation until it has this many items (1,000,000 with a
    /// bare `--million`).
    #[arg(long, num_args = 0..=1, default_missing_value = "1000000")]
    pub million: Option<usize>,
    /// Run the private stack as the service binaries in this binary's
    /// directory (`cargo build --release -p closeout-bench -p
    /// closeout-findings -p closeout-tracker -p closeout-metrics`) rather
    /// than in this process: resident memory per service, and `perf
    /// record -p` on one service.
    #[arg(long)]
    pub processes: bool,
    /// Only the scenarios whose names contain one of these (comma
    /// separated); all by default.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Rates (commands/s, comma separated) of the `lag-500` runs, each on
    /// its share of the open items left after `lag` (e.g. `200,300,500`
    /// to find the fastest that meets the goal).
    #[arg(long, value_delimiter = ',', default_value = "500")]
    pub lag_rates: Vec<f64>,
}

impl Options {
    /// Whether scenario `name` runs.
    pub fn runs_scenario(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| name.contains(o.as_str()))
    }

    /// Whether the national data is imported (`--million` includes it).
    pub fn national_data(&self) -> bool {
        self.national || self.million.is_some()
    }
}

fn main() -> ExitCode {
    let options = Options::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("closeout-bench: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(scenarios::run_all(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("closeout-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
