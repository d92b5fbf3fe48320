//! Workload profiles (`optimize_for_workload`): the built-in ones and the
//! policy's user profiles, each mapping cluster size ranges to a preferred
//! topology and overlay parameters.

use crate::model::{Policy, WorkloadProfile};

/// A profile name that is neither built in nor in the policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown workload `{name}`; known: {}", known.join(", "))]
pub struct UnknownWorkload {
    pub name: String,
    /// Every known profile name, built-in first.
    pub known: Vec<String>,
}

/// The built-in profiles, by name.
pub fn builtin() -> Vec<(&'static str, WorkloadProfile)> {
    Vec::new()
}

/// The profile called `name`: a user profile of `policy` or a built-in one.
pub fn lookup(name: &str, policy: &Policy) -> Result<WorkloadProfile, UnknownWorkload> {
    let mut known: Vec<String> = builtin().iter().map(|(n, _)| n.to_string()).collect();
    known.extend(policy.profiles.keys().cloned());
    policy.profiles.get(name).cloned().ok_or(UnknownWorkload {
        name: name.to_string(),
        known,
    })
}
