//! One-time cluster setup by the first leader among the initial voters:
//! the configured policy, and the configured initial topology when it is
//! not the bootstrap `full_mesh`. Both are idempotent (the policy is set
//! only while never set; the switch carries a fixed request id).
//!
//! `initial_topology = "auto"` is resolved when the switch would be
//! proposed, from the membership applied at that moment: on a new cluster
//! that is the initial voters (learners join later and are not counted).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::{InitialTopology, OverlayDefaults, RulesConfig, SwitchConfig};
use crate::control::applied::AppliedRx;
use crate::control::proposer::Proposer;
use crate::model::{Command, NodeId, OverlayConfig, ProposeSwitch, SwitchReason, Topology};

/// Request id of the initial-topology switch.
pub const INITIAL_TOPOLOGY_REQUEST: &str = "bootstrap-initial-topology";

/// The initial-topology switch, with the effective overlay config: an empty
/// `client_server.servers` becomes `voters` (those of the committed
/// membership), as the API does, so that every node applies the same
/// servers rather than its own view of the voters.
pub fn initial_proposal(
    target: Topology,
    overlay: &OverlayDefaults,
    voters: Vec<NodeId>,
) -> ProposeSwitch {
    let mut config = overlay.default_for(target);
    if let OverlayConfig::ClientServer(cs) = &mut config {
        if cs.servers.is_empty() {
            cs.servers = voters;
        }
    }
    ProposeSwitch::new(
        target,
        config,
        SwitchReason::Manual,
        Some(INITIAL_TOPOLOGY_REQUEST.into()),
        "bootstrap",
    )
}

/// Runs until setup is done (or `cancel` fires).
pub async fn run(
    proposer: std::sync::Arc<Proposer>,
    mut applied: AppliedRx,
    switch: SwitchConfig,
    rules: RulesConfig,
    overlay: OverlayDefaults,
    cancel: CancellationToken,
) {
    let mut topology_asked = switch.initial_topology == InitialTopology::Fixed(Topology::FullMesh);
    loop {
        let (policy_set, fresh, members) = {
            let a = applied.borrow_and_update();
            (
                a.state.policy_set,
                a.state.history.is_empty() && a.state.epoch == 0,
                a.members().len(),
            )
        };
        if !fresh {
            topology_asked = true;
        }
        if policy_set && topology_asked {
            return;
        }
        if proposer.is_leader() {
            if !policy_set {
                let update = crate::model::PolicyUpdate::whole(&switch.initial_policy(&rules));
                if let Err(e) = proposer.write(Command::SetPolicy(update)).await {
                    tracing::debug!(error = %e, "initial policy not written yet");
                }
            } else if !topology_asked {
                let target = switch.initial_topology.resolve(members);
                if target == Topology::FullMesh {
                    tracing::info!(members, "initial topology: full_mesh (bootstrap state)");
                    topology_asked = true;
                    continue;
                }
                let voters: Vec<NodeId> = applied
                    .borrow()
                    .membership
                    .membership()
                    .voter_ids()
                    .collect();
                let proposal = initial_proposal(target, &overlay, voters);
                match proposer.write(Command::ProposeSwitch(proposal)).await {
                    Ok(answer) => {
                        tracing::info!(?answer, "initial topology proposed");
                        topology_asked = true;
                    }
                    Err(e) => tracing::debug!(error = %e, "initial topology not proposed yet"),
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            r = applied.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initial_client_server_switch_names_the_voters_as_servers() {
        let p = initial_proposal(
            Topology::ClientServer,
            &OverlayDefaults::default(),
            vec![1, 2, 3],
        );
        match &p.config {
            OverlayConfig::ClientServer(cs) => assert_eq!(cs.servers, vec![1, 2, 3]),
            other => panic!("not client_server: {other:?}"),
        }
        assert_eq!(p.request_id.as_deref(), Some(INITIAL_TOPOLOGY_REQUEST));
        assert!(p.config.validate().is_ok());
    }

    #[test]
    fn configured_servers_are_kept() {
        let mut overlay = OverlayDefaults::default();
        overlay.client_server.servers = vec![7];
        let expected = vec![7];
        let p = initial_proposal(Topology::ClientServer, &overlay, vec![1, 2]);
        match &p.config {
            OverlayConfig::ClientServer(cs) => assert_eq!(cs.servers, expected),
            other => panic!("not client_server: {other:?}"),
        }
    }
}
