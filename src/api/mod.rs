//! HTTP admin API.
//!
//! [`types`] holds the JSON request and response bodies. They are separate
//! from the log and wire types of [`crate::model`] (those are postcard, which
//! cannot carry tagged enums or `serde_json::Value`), and are converted from
//! the model with `From` impls and constructors. [`routes`] serves them,
//! [`context`] is what the handlers share, [`forward`] relays writes from a
//! follower to the leader. [`dataplane`] serves this node's data-plane
//! stats and fault filter, and [`exposition`] renders the per-peer
//! data-plane metrics when `/metrics` is scraped. [`chaos`] serves the chaos
//! harness's broadcasts and the deliveries [`deliveries`] records.

pub mod chaos;
pub mod context;
pub mod dataplane;
pub mod deliveries;
pub mod exposition;
pub mod forward;
pub mod routes;
pub mod types;
