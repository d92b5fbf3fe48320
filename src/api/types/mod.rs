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
//! | `POST /v1/cluster/members` | [`JoinRequest`] | [`MembersView`] |
//! | `POST /v1/cluster/members/{id}/promote` | | [`MembersView`] |
//! | `DELETE /v1/cluster/members/{id}` | | [`MembersView`] |
//! | `GET /v1/policy`, `PUT /v1/policy` | [`PolicyRequest`] | [`PolicyView`] |
//! | `GET /v1/node/stats` (this node, never forwarded) | | [`NodeStats`] |
//! | `GET`, `PUT`, `DELETE /v1/node/faults` (this node, never forwarded) | `PUT`: [`FaultsRequest`] | [`FaultsView`] |
//!
//! The `/v1/node/...` data-plane routes answer 409 `no_data_plane` on a
//! node started without the overlay executor (control-plane tests); the
//! fault writes answer 409 `chaos_disabled` unless `transport.chaos` is on.
//!
//! Every error is an [`ErrorBody`] with a snake_case code from [`codes`].
//! Every response carries [`SERVED_BY_HEADER`]; a write forwarded by a
//! follower carries [`FORWARDED_HEADER`] on the forwarded request.

mod cluster;
mod error;
mod faults;
mod node;
mod policy;
mod switch;
mod topology;
mod transition;

pub use cluster::{ClusterStatus, JoinRequest, MemberView, MembersView, Role};
pub use error::{codes, BadRequest, ErrorBody, ErrorDetail, LeaderHint};
pub use faults::{
    DirectionView, FaultRuleView, FaultsRequest, FaultsView, MAX_FAULT_DELAY_MS, MAX_FAULT_RULES,
};
pub use node::{CountersView, ExecStateView, NodeStats, OverlayView, PeerView, TotalsView};
pub use policy::{PolicyRequest, PolicyView};
pub use switch::{SwitchAccepted, SwitchRequest, DEFAULT_WAIT_TIMEOUT_MS, MAX_WAIT_TIMEOUT_MS};
pub use topology::TopologyInfo;
pub use transition::{
    HistoryPage, HistoryQuery, PhaseView, ReasonView, TransitionStatus, TransitionView,
    DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT,
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
