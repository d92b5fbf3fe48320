//! HTTP admin API.
//!
//! [`types`] holds the JSON request and response bodies. They are separate
//! from the log and wire types of [`crate::model`] (those are postcard, which
//! cannot carry tagged enums or `serde_json::Value`), and are converted from
//! the model with `From` impls and constructors. The server modules (routes,
//! forwarding to the leader) live next to it.

pub mod types;
