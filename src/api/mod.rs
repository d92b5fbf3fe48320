//! HTTP admin API.
//!
//! [`types`] holds the JSON request and response bodies. They are separate
//! from the log and wire types of [`crate::model`] (those are postcard, which
//! cannot carry tagged enums or `serde_json::Value`), and are converted from
//! the model with `From` impls and constructors. [`routes`] serves them,
//! [`context`] is what the handlers share, [`forward`] relays writes from a
//! follower to the leader, [`membership`] serves joins, promotions and
//! removals. [`dataplane`] serves this node's data-plane stats, summary and
//! fault filter, and [`exposition`] renders the per-node data-plane metrics
//! (no per-peer labels) when `/metrics` is scraped. [`optimize`] serves
//! `POST /v1/topology/optimize`, [`monitor`] the leader's monitor rounds
//! (`GET /v1/monitor`, the metrics of `GET /v1/topology`) and [`events`]
//! the Server-Sent Events of `GET /v1/events`. [`chaos`] serves the chaos
//! harness's broadcasts and the deliveries [`deliveries`] records.
//! [`cluster_links`] gathers every member's stats for the admin UI
//! ([`crate::ui`], served at `/ui/` by the same router). [`backup`] serves
//! `GET /v1/cluster/snapshot`, a backup file of the applied state.
//! [`auth`] decides who may call which route (bearer tokens with roles,
//! cluster nodes by certificate) and [`tokens`] serves `/v1/tokens`.

pub mod app_metrics;
pub mod auth;
pub mod backup;
pub mod chaos;
pub mod cluster_links;
pub mod context;
pub mod dataplane;
pub mod deliveries;
pub mod events;
pub mod exposition;
pub mod forward;
pub mod membership;
pub mod monitor;
pub mod optimize;
pub mod routes;
pub mod tokens;
pub mod types;
