//! `topoctl`, the admin CLI, as a library: the binary parses [`Cli`] and
//! calls [`run`]; tests call the same pieces.
//!
//! - [`args`]: the clap command line.
//! - [`client`]: [`ApiClient`], HTTP/1.1 JSON client with endpoint failover.
//! - [`commands`]: one function per command, printing tables or raw JSON.
//! - [`render`]: pure functions from API views to table rows.
//! - [`watch`]: `switch --wait`, polling a transition and showing phases.
//! - [`monitor`]: rows and lines of `monitor`, `info`'s metrics and `watch`.
//! - [`sse`]: the Server-Sent Events parser behind `watch`.
//! - [`rules`]: `rules check|set` file parsing and checks, `rules list` rows.
//! - [`faults`]: `faults set` flags to the `PUT /v1/node/faults` body.
//! - [`snapshot`]: `snapshot save|show`, backup files of the replicated state.
//! - [`token`]: `token list|create|revoke`, and where the token sent with
//!   every request comes from (`--token`, `TOPOCTL_TOKEN`, `--data-dir`).
//! - [`endpoint`], [`error`]: `--endpoints` parsing and [`CliError`].
//!
//! Exit codes: 0 success; 1 any error (printed `error: <code>: <message>`
//! on stderr, including an aborted transition under `switch --wait`); 2
//! usage errors (clap).

pub mod args;
pub mod client;
pub mod commands;
pub mod endpoint;
pub mod error;
pub mod faults;
pub mod monitor;
pub mod render;
pub mod rules;
pub mod snapshot;
pub mod sse;
pub mod token;
pub mod watch;

#[cfg(test)]
mod node_tests;
#[cfg(test)]
mod operator_tests;
#[cfg(test)]
mod rules_tests;
#[cfg(test)]
mod tests;

pub use args::{Cli, Command};
pub use client::{Answer, ApiClient};
pub use commands::run;
pub use endpoint::{parse_endpoints, Endpoint, EndpointError, MAX_ENDPOINTS};
pub use error::CliError;
