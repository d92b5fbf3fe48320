//! JSON bodies of the HTTP admin API (`/v1/...`).
//!
//! Requests use `#[serde(deny_unknown_fields)]`, so a misspelt field is a 400
//! naming the field instead of a silently ignored one. Responses are built
//! from the model by constructors here, so the server and `topoctl` agree on
//! one shape.
//!
//! | route | request | response |
//! |---|---|---|
//! | `GET /v1/topology` | | [`TopologyInfo`] |
//! | `POST /v1/topology/switch` | [`SwitchRequest`] | 202 [`SwitchAccepted`]; with `wait`, 200 [`TransitionView`] |
//! | `GET /v1/topology/history?limit=&before=` | [`HistoryQuery`] | [`HistoryPage`] |
//! | `GET /v1/transitions/{id}` | | [`TransitionView`] |
//! | `GET /v1/cluster/status` | | [`ClusterStatus`] |
//! | `GET /v1/cluster/members` | | [`MembersView`] |
//! | `GET /v1/cluster/links` (every member's `/v1/node/stats`, gathered here) | | [`ClusterLinks`] |
//! | `POST /v1/cluster/members` | [`JoinRequest`] | [`MembersView`] |
//! | `POST /v1/cluster/members/{id}/promote` | | [`MembersView`] |
//! | `DELETE /v1/cluster/members/{id}` | | [`MembersView`] |
//! | `GET /v1/transitions?request_id=X` | | [`TransitionView`] (404 if none) |
//! | `POST /v1/topology/optimize` | [`OptimizeRequest`] | 202 [`OptimizeAnswer`]; 200 when waiting or `already_current` |
//! | `GET /v1/monitor` (forwarded to the leader) | | [`MonitorView`] |
//! | `GET /v1/events` (Server-Sent Events) | | `announced`, `prepared`, `committed`, `aborted`, `rolled_back`, `monitor_round`, `lagged` |
//! | `GET /v1/policy`, `PUT /v1/policy` | [`PolicyRequest`] | [`PolicyView`] |
//! | `GET /v1/node/stats` (this node, never forwarded) | | [`NodeStats`] |
//! | `GET /v1/node/summary?window_ms=` (this node, never forwarded) | [`summary_window`] | [`crate::model::NodeSummary`] |
//! | `GET`, `PUT`, `DELETE /v1/node/faults` (this node, never forwarded) | `PUT`: [`FaultsRequest`] | [`FaultsView`] |
//! | `POST /v1/node/broadcast` (chaos mode, this node) | [`BroadcastRequest`] | 202 [`BroadcastAccepted`] |
//! | `GET /v1/node/deliveries?after=&limit=` (chaos mode, this node) | [`DeliveriesQuery`] | [`DeliveriesPage`] |
//! | `GET /v1/tokens` | | [`TokensView`] (never a secret or hash) |
//! | `POST /v1/tokens` | [`CreateTokenRequest`] | 201 [`CreatedToken`] (the secret, shown once) |
//! | `DELETE /v1/tokens/{name}` | | [`RevokedToken`] |
//!
//! Every route but `/livez`, `/readyz`, `/ui/...` (and `/metrics` unless
//! `security.metrics = "read"`) needs a bearer token of the route's role
//! when tokens are enforced (`api::auth`); 401 `unauthenticated` and 403
//! `forbidden` otherwise.
//!
//! The `/v1/node/...` data-plane routes answer 409 `no_data_plane` on a
//! node started without the overlay executor (control-plane tests); the
//! fault writes answer 409 `chaos_disabled` unless `transport.chaos` is on.
//!
//! Every error is an [`ErrorBody`] with a snake_case code from [`codes`].
//! Every response carries [`SERVED_BY_HEADER`]; a write forwarded by a
//! follower carries [`FORWARDED_HEADER`] on the forwarded request.

mod chaos;
mod cluster;
mod error;
mod events;
mod faults;
mod links;
mod monitor;
mod node;
mod optimize;
mod policy;
mod summary;
mod switch;
mod token;
mod topology;
mod transition;

pub use chaos::{
    BroadcastAccepted, BroadcastRequest, DeliveriesPage, DeliveriesQuery, DeliveryView,
    HarnessMessage, HARNESS_CHANNEL, MAX_BROADCAST_ID_LEN, MAX_BROADCAST_PAYLOAD_LEN,
    MAX_DELIVERIES_LIMIT,
};
pub use cluster::{ClusterStatus, JoinRequest, MemberView, MembersView, Role};
pub use error::{codes, BadRequest, ErrorBody, ErrorDetail, LeaderHint};
pub use events::{LaggedEvent, MonitorRoundEvent, TopologyEventView};
pub use faults::{
    DirectionView, FaultRuleView, FaultsRequest, FaultsView, MAX_FAULT_DELAY_MS, MAX_FAULT_RULES,
};
pub use links::{ClusterLinks, MemberLinks, CLUSTER_LINKS_CONCURRENCY, CLUSTER_LINKS_TIMEOUT_MS};
pub use monitor::MonitorView;
pub use node::{CountersView, ExecStateView, NodeStats, OverlayView, PeerView, TotalsView};
pub use optimize::{
    plan as plan_optimize, OptimizeAnswer, OptimizePlan, OptimizeRequest, OptimizeStatus,
    UNKNOWN_WORKLOAD,
};
pub use policy::{
    PolicyRequest, PolicyView, ProfileRangeRequest, ProfileRangeView, ProfileRequest, ProfileView,
    ThresholdsRequest, ThresholdsView, POLICY_KEYS, THRESHOLD_KEYS,
};
pub use summary::{summary_window, DEFAULT_SUMMARY_WINDOW_MS, MAX_SUMMARY_WINDOW_MS};
pub use switch::{SwitchAccepted, SwitchRequest, DEFAULT_WAIT_TIMEOUT_MS, MAX_WAIT_TIMEOUT_MS};
pub use token::{
    CreateTokenRequest, CreatedToken, RevokedToken, TokenView, TokensView, MAX_EXPIRES_IN_MS,
};
pub use topology::TopologyInfo;
pub use transition::{
    HistoryPage, HistoryQuery, PhaseView, ReasonView, RequestQuery, TransitionStatus,
    TransitionView, TriggerView, DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT,
};

/// Response header naming the node id that served the request (after any
/// forwarding: the leader's id for a forwarded write).
pub const SERVED_BY_HEADER: &str = "x-topod-served-by";

/// Request header a follower adds when it forwards a write to the leader;
/// its value is the forwarding node's id (so the history records the node
/// that was asked), or `-` from a sender that is not a member yet.
/// A request arriving with it is never forwarded again (at most one hop);
/// a node that is not the leader answers 503 `not_leader` with a hint.
pub const FORWARDED_HEADER: &str = "x-topod-forwarded";

/// Request header giving how long the sender waits for the answer, in
/// milliseconds (a decimal integer, 1..). A client may send it; a follower
/// that forwards a write sends what remains of its own deadline. The node
/// that runs the write stops waiting when it passes (504 `timeout`; the
/// write may still take effect), so a forwarded write never waits on the
/// leader after its sender gave up. Bad values are refused with 400.
pub const DEADLINE_HEADER: &str = "x-topod-deadline-ms";

#[cfg(test)]
mod tests;
