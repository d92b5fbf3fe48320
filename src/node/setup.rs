//! One-time cluster setup by the first leader among the initial voters:
//! the initial admin token (`security.initial_admin_token_file`, stored as
//! a hash under [`INITIAL_TOKEN_NAME`], once: the state remembers that it
//! was, so a revoked initial token stays revoked), the configured policy,
//! and the configured initial topology when it is not the bootstrap
//! `full_mesh`. All are idempotent (the token and the policy are written
//! only while never written; the switch carries a fixed request id).
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

/// Name of the initial admin token.
pub const INITIAL_TOKEN_NAME: &str = "initial-admin";

/// The command storing the initial admin token `secret` (its hash).
pub fn initial_token_command(secret: &str) -> Command {
    Command::CreateToken {
        token: crate::model::NewToken {
            name: INITIAL_TOKEN_NAME.into(),
            role: crate::model::Role::Admin,
            hash: crate::model::token::hash_secret(secret),
            expires_ms: None,
        },
        initial: true,
    }
}

/// What the one-time setup writes besides the policy and topology.
pub struct Extras {
    /// The initial admin token read from
    /// `security.initial_admin_token_file`.
    pub initial_token: Option<String>,
    /// Token commands need every member to read envelope `V5`.
    pub log_versions: crate::control::log_versions::LogVersions,
    pub me: NodeId,
}

/// Writes the initial admin token if it is still to be written; returns
/// whether nothing is left to do.
async fn store_initial_token(proposer: &Proposer, applied: &AppliedRx, extras: &Extras) -> bool {
    let Some(secret) = &extras.initial_token else {
        return true;
    };
    let command = initial_token_command(secret);
    let members = applied.borrow().members().into_iter().collect();
    if !extras
        .log_versions
        .all_read(&members, extras.me, command.log_version())
    {
        tracing::debug!("initial admin token waits until every member reads log envelope V5");
        return false;
    }
    match proposer.write(command).await {
        Ok(crate::model::CommandResponse::Rejected(r)) => {
            tracing::warn!(rejection = %r, "initial admin token not stored");
            true
        }
        Ok(_) => {
            tracing::info!(
                name = INITIAL_TOKEN_NAME,
                "initial admin token stored (hash only)"
            );
            true
        }
        Err(e) => {
            tracing::debug!(error = %e, "initial admin token not written yet");
            false
        }
    }
}

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
    extras: Extras,
    cancel: CancellationToken,
) {
    let mut topology_asked = switch.initial_topology == InitialTopology::Fixed(Topology::FullMesh);
    let mut token_done = extras.initial_token.is_none();
    loop {
        let (policy_set, fresh, members, token_stored) = {
            let a = applied.borrow_and_update();
            (
                a.state.policy_set,
                a.state.history.is_empty() && a.state.epoch == 0,
                a.members().len(),
                a.state.tokens.initial_stored,
            )
        };
        if !fresh {
            topology_asked = true;
        }
        token_done |= token_stored;
        if policy_set && topology_asked && token_done {
            return;
        }
        if proposer.is_leader() {
            if !token_done {
                token_done = store_initial_token(&proposer, &applied, &extras).await;
            }
            if policy_set && topology_asked {
                // Only the token is left (it waits for the members' log
                // versions).
            } else if !policy_set {
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
