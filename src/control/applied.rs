//! The applied state as the state machine publishes it on a `watch`
//! channel after every apply. Readers take the latest value: a node that
//! catches up skips intermediate states.

use std::sync::Arc;

use tokio::sync::watch;

pub use super::store::Applied;

/// Receiver side of the applied-state channel.
pub type AppliedRx = watch::Receiver<Arc<Applied>>;
