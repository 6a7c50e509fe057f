//! Run-time pieces every Closeout service shares, so that each service
//! crate holds only its own domain: configuration from flags and
//! environment, tracing set-up, one mapping of errors to gRPC status codes,
//! the caller's verified identity (one bearer-token layer), TLS and
//! credentials for every connection, the request path's database
//! connections ([`connections`]), and the one service host
//! ([`host`]): a gRPC server with health, reflection, graceful shutdown in
//! one order, and Prometheus metrics on their own HTTP port.

pub mod auth;
pub mod backbone;
pub mod bus_metrics;
pub mod client_tls;
pub mod config;
pub mod connections;
pub mod error;
pub mod host;
pub mod limits;
pub mod paging;
pub mod prometheus;
pub mod server;
pub mod telemetry;
pub mod tls;

pub use auth::caller;
pub use config::CommonConfig;
pub use error::ApiError;
pub use host::{Host, Running, ServiceSpec, StartError, run_main};
