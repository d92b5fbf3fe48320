//! The pre-vote loop of one node: reads Raft's metrics and this node's
//! leader contact, feeds [`Campaign`], sends [`PreVoteRequest`]s to the
//! other voters and triggers openraft's election when a majority of every
//! voter configuration says yes. Also builds the [`VoterView`] the RPC
//! server answers from.

use std::collections::BTreeSet;

use futures::stream::{FuturesUnordered, StreamExt};
use openraft::{RaftNetworkFactory, ServerState};
use rand::{Rng, SeedableRng};
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use super::decide::{
    grants_still_hold, tally, Campaign, CandidateView, PreVoteRequest, PreVoteResponse, Step,
    Timing, VoterView,
};
use crate::control::network::CallError;
use crate::control::network::Network;
use crate::control::readiness::LeaderContact;
use crate::control::types::Raft;
use crate::model::NodeId;

/// What this node would answer a pre-vote with, from Raft's metrics now.
pub fn voter_view(raft: &Raft, me: NodeId, contact: &LeaderContact) -> VoterView {
    let m = raft.metrics().borrow().clone();
    VoterView {
        me,
        term: m.current_term,
        is_leader: m.state == ServerState::Leader,
        millis_since_quorum_ack: m.millis_since_quorum_ack,
        since_leader_contact: contact.since_any(),
        last_log_id: raft.data_metrics().borrow().last_log,
    }
}

/// Settings of the loop.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub timing: Timing,
    /// Deadline of one pre-vote request.
    pub rpc_timeout: Duration,
}

/// Runs until `cancel`. Only meaningful with openraft's own election
/// timer off (`enable_elect = false`).
pub async fn run(
    raft: Raft,
    me: NodeId,
    contact: LeaderContact,
    network: Network,
    settings: Settings,
    cancel: CancellationToken,
) {
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut campaign = Campaign::new(settings.timing, Instant::now(), rng.gen());
    loop {
        let metrics = raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let view = CandidateView {
            is_voter: voters.contains(&me),
            is_leader: metrics.state == ServerState::Leader,
            only_voter: voters.len() == 1 && voters.contains(&me),
            since_leader_contact: contact.since_any(),
        };
        let step = campaign.poll(Instant::now(), &view, rng.gen());
        let elect = match step {
            Step::Wait(d) => {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(d) => {}
                }
                continue;
            }
            Step::Elect => true,
            Step::PreVote => {
                let req = PreVoteRequest {
                    candidate: me,
                    term: metrics.current_term + 1,
                    last_log_id: raft.data_metrics().borrow().last_log,
                };
                let asked_at = Instant::now();
                let joint = membership.get_joint_config().clone();
                let asks = voters.iter().filter(|v| **v != me).filter_map(|v| {
                    membership.get_node(v).map(|node| {
                        let (v, node) = (*v, node.clone());
                        let mut network = network.clone();
                        let req = req.clone();
                        async move {
                            let client = network.new_client(v, &node).await;
                            (v, client.prevote(&req, settings.rpc_timeout).await)
                        }
                    })
                });
                let granted = tokio::select! {
                    _ = cancel.cancelled() => return,
                    g = collect(asks.collect(), me, &joint) => g,
                };
                let won = tally(&joint, &granted);
                let now = CandidateView {
                    since_leader_contact: contact.since_any(),
                    ..view
                };
                let term_now = raft.metrics().borrow().current_term;
                let fresh =
                    grants_still_hold(metrics.current_term, asked_at.elapsed(), &now, term_now);
                if won && fresh {
                    tracing::info!(term = req.term, granted = ?granted, "pre-vote granted by a majority; campaigning");
                } else if won {
                    metrics::counter!("topod_raft_prevote_stale_total").increment(1);
                    tracing::debug!(
                        term = req.term,
                        "pre-vote granted, but a leader was heard meanwhile; not campaigning"
                    );
                }
                won && fresh
            }
        };
        if elect {
            metrics::counter!("topod_raft_prevote_elections_total").increment(1);
            if let Err(e) = raft.trigger().elect().await {
                tracing::warn!(error = %e, "cannot trigger an election; pre-vote loop stops");
                return;
            }
        }
    }
}

/// Gathers the answers as they come and stops as soon as the granted set
/// (this node included) is a majority of every configuration, or when all
/// have answered: a slow or cut-off voter (bounded by the RPC deadline)
/// does not hold up a decided pre-vote, which would widen the window in
/// which its grants go stale.
async fn collect<F>(
    asks: FuturesUnordered<F>,
    me: NodeId,
    joint: &[BTreeSet<NodeId>],
) -> BTreeSet<NodeId>
where
    F: std::future::Future<Output = (NodeId, Result<PreVoteResponse, CallError>)>,
{
    let mut asks = asks;
    let mut granted = BTreeSet::from([me]);
    let mut refused = Vec::new();
    while let Some((voter, answer)) = asks.next().await {
        let label = match answer {
            Ok(a) if a.granted() => {
                granted.insert(voter);
                "granted"
            }
            Ok(a) => {
                refused.push((voter, a.refusal.map(|r| r.to_string())));
                "refused"
            }
            Err(e) => {
                refused.push((voter, Some(e.to_string())));
                "failed"
            }
        };
        metrics::counter!("topod_raft_prevote_answers_total", "answer" => label).increment(1);
        if tally(joint, &granted) {
            break;
        }
    }
    if !tally(joint, &granted) {
        tracing::debug!(granted = ?granted, refused = ?refused, "pre-vote refused; not campaigning");
    }
    granted
}
