//! `POST /v1/topology/switch`: ask for a switch.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{BadRequest, TransitionStatus};
use crate::model::state::MAX_REQUEST_ID_LEN;
use crate::model::{OverlayConfig, ProposeSwitch, SwitchReason, Topology, TransitionId};

/// `wait_timeout_ms` when absent.
pub const DEFAULT_WAIT_TIMEOUT_MS: u64 = 30_000;
/// Largest `wait_timeout_ms` accepted (a request holds a connection).
pub const MAX_WAIT_TIMEOUT_MS: u64 = 300_000;

/// Body of `POST /v1/topology/switch`, e.g. `{"topology":"hyparview"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchRequest {
    /// Target topology atom (`full_mesh`, `hyparview`, `client_server`,
    /// `pub_sub`). A string here so an unknown name is answered with
    /// `unknown_topology` rather than a generic decode error.
    pub topology: String,
    /// Keys of the target's overlay config to override (a JSON object,
    /// merged over the node's configured defaults of that topology).
    #[serde(default)]
    pub overlay_config: Option<serde_json::Value>,
    /// Answer only once the transition is committed or aborted (200 with
    /// the final [`super::TransitionView`]) instead of 202 at acceptance.
    #[serde(default)]
    pub wait: Option<bool>,
    /// Idempotency key, at most 128 bytes: a repeated id gets the first
    /// answer instead of a second transition.
    #[serde(default)]
    pub request_id: Option<String>,
    /// How long `wait` waits, ms, 1..=[`MAX_WAIT_TIMEOUT_MS`]; default
    /// [`DEFAULT_WAIT_TIMEOUT_MS`]. 504 `timeout` when it passes (the
    /// transition goes on).
    #[serde(default)]
    pub wait_timeout_ms: Option<u64>,
}

impl SwitchRequest {
    /// A plain request for `topology`.
    pub fn new(topology: Topology) -> Self {
        SwitchRequest {
            topology: topology.as_str().to_string(),
            overlay_config: None,
            wait: None,
            request_id: None,
            wait_timeout_ms: None,
        }
    }

    /// The target topology (`unknown_topology` when the name is unknown).
    pub fn target(&self) -> Result<Topology, BadRequest> {
        self.topology
            .parse()
            .map_err(|e: crate::model::UnknownTopology| BadRequest {
                code: "unknown_topology",
                message: e.to_string(),
            })
    }

    /// Whether the client waits for the decision.
    pub fn waits(&self) -> bool {
        self.wait.unwrap_or(false)
    }

    /// The wait deadline, checked against its limits.
    pub fn wait_timeout(&self) -> Result<Duration, BadRequest> {
        let ms = self.wait_timeout_ms.unwrap_or(DEFAULT_WAIT_TIMEOUT_MS);
        if ms == 0 || ms > MAX_WAIT_TIMEOUT_MS {
            return Err(BadRequest::new(format!(
                "wait_timeout_ms {ms} is outside 1..={MAX_WAIT_TIMEOUT_MS}"
            )));
        }
        Ok(Duration::from_millis(ms))
    }

    /// Checks the request and builds the manual proposal. `defaults` gives
    /// the configured overlay defaults of a topology (the node config's
    /// `overlay_default`); `overlay_config` is merged over them. An empty
    /// `client_server.servers` is left for the proposer to resolve to the
    /// voters. Nothing is proposed on error.
    pub fn to_proposal(
        &self,
        defaults: impl FnOnce(Topology) -> OverlayConfig,
        requested_by: impl Into<String>,
    ) -> Result<ProposeSwitch, BadRequest> {
        let target = self.target()?;
        self.wait_timeout()?;
        if let Some(id) = &self.request_id {
            if id.is_empty() || id.len() > MAX_REQUEST_ID_LEN {
                return Err(BadRequest::new(format!(
                    "request_id must be 1..={MAX_REQUEST_ID_LEN} bytes, got {}",
                    id.len()
                )));
            }
            let reserved = crate::control::coordinator::ROLLBACK_REQUEST_PREFIX;
            if id.starts_with(reserved) {
                return Err(BadRequest::new(format!(
                    "request_id `{id}`: the prefix `{reserved}` is reserved for the coordinator's rollbacks"
                )));
            }
        }
        let base = defaults(target);
        let config = match &self.overlay_config {
            None => base,
            Some(patch) => OverlayConfig::patched(&base, patch).map_err(|e| BadRequest {
                code: "invalid_config",
                message: e.to_string(),
            })?,
        };
        Ok(ProposeSwitch::new(
            target,
            config,
            SwitchReason::Manual,
            self.request_id.clone(),
            requested_by,
        ))
    }
}

/// 202 answer to a switch request: the transition was accepted (or, for a
/// repeated `request_id`, had been).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchAccepted {
    pub transition_id: TransitionId,
    /// `in_progress` at acceptance; the current status for a repeated id.
    pub status: TransitionStatus,
}
