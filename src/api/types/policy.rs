//! `GET` / `PUT /v1/policy`: the replicated switching policy.

use serde::{Deserialize, Serialize};

use super::BadRequest;
use crate::model::{Policy, PolicyUpdate};

/// The current policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyView {
    /// Minimum time between a committed switch and the next automatic one,
    /// ms.
    pub cooldown_ms: u64,
    /// Whether the monitor may propose switches on its own.
    pub auto_switch: bool,
    /// Transitions kept in the history.
    pub history_retention: u32,
}

impl From<&Policy> for PolicyView {
    fn from(p: &Policy) -> Self {
        PolicyView {
            cooldown_ms: p.cooldown_ms,
            auto_switch: p.auto_switch,
            history_retention: p.history_retention,
        }
    }
}

/// Body of `PUT /v1/policy`: the fields to change (absent ones keep their
/// value). Limits are checked before proposing and again by the state
/// machine (`invalid_policy`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_switch: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_retention: Option<u32>,
}

impl PolicyRequest {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self.cooldown_ms.is_none() && self.auto_switch.is_none() && self.history_retention.is_none()
    }

    /// The update to propose; an empty request, or a value outside its
    /// limits (`invalid_policy`, the state machine's own check), is refused
    /// before anything is written.
    pub fn to_update(&self) -> Result<PolicyUpdate, BadRequest> {
        if self.is_empty() {
            return Err(BadRequest::new(
                "set at least one of cooldown_ms, auto_switch, history_retention",
            ));
        }
        let update = PolicyUpdate::from(self);
        update.check().map_err(|e| {
            let r = crate::model::Rejection::from(e);
            BadRequest {
                code: r.code(),
                message: r.to_string(),
            }
        })?;
        Ok(update)
    }
}

impl From<&PolicyRequest> for PolicyUpdate {
    fn from(r: &PolicyRequest) -> Self {
        PolicyUpdate {
            cooldown_ms: r.cooldown_ms,
            auto_switch: r.auto_switch,
            history_retention: r.history_retention,
            ..PolicyUpdate::default()
        }
    }
}
