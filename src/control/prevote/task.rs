//! The pre-vote loop of one node: reads Raft's metrics and this node's
//! leader contact, feeds [`Campaign`], sends [`PreVoteRequest`]s to the
//! other voters and triggers openraft's election when a majority of every
//! voter configuration says yes. Also builds the [`VoterView`] the RPC
//! server answers from.

use std::collections::BTreeSet;

use futures::future::join_all;
use openraft::{RaftNetworkFactory, ServerState};
use rand::{Rng, SeedableRng};
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use super::decide::{tally, Campaign, CandidateView, PreVoteRequest, Step, Timing, VoterView};
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
                let mut granted = BTreeSet::from([me]);
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
                let answers = tokio::select! {
                    _ = cancel.cancelled() => return,
                    a = join_all(asks) => a,
                };
                let mut refused = Vec::new();
                for (voter, answer) in answers {
                    match answer {
                        Ok(a) if a.granted() => {
                            metrics::counter!("topod_raft_prevote_answers_total", "answer" => "granted").increment(1);
                            granted.insert(voter);
                        }
                        Ok(a) => {
                            metrics::counter!("topod_raft_prevote_answers_total", "answer" => "refused").increment(1);
                            refused.push((voter, a.refusal.map(|r| r.to_string())));
                        }
                        Err(e) => {
                            metrics::counter!("topod_raft_prevote_answers_total", "answer" => "failed").increment(1);
                            refused.push((voter, Some(e.to_string())));
                        }
                    }
                }
                let joint = membership.get_joint_config().clone();
                let won = tally(&joint, &granted);
                if won {
                    tracing::info!(
                        term = req.term,
                        granted = ?granted,
                        "pre-vote granted by a majority; campaigning"
                    );
                } else {
                    tracing::debug!(
                        term = req.term,
                        granted = ?granted,
                        refused = ?refused,
                        "pre-vote refused; not campaigning"
                    );
                }
                won
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
