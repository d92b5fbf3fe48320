//! The workload: concurrent switch clients sending to random nodes with
//! request ids, policy changes, a stream of broadcasts from every node,
//! and a status sampler per node (`/v1/cluster/status` every 200 ms) that
//! also tells the nemesis who leads. Every operation is recorded as an
//! invoke and a completion; [`classify`] decides ok / fail / unknown.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::Method;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::backend::Backend;
use crate::history::{History, OpKind, Outcome};
use crate::http::{Answer, Api, CallError};
use crate::scenario::Workload;
use crate::NodeId;

/// Targets of the switch clients.
pub const TOPOLOGIES: [&str; 4] = ["full_mesh", "hyparview", "client_server", "pub_sub"];

/// What the workload, the nemesis and the samplers share.
pub struct Shared {
    pub cluster: Arc<Backend>,
    pub history: History,
    pub api: Api,
    /// The highest term seen with a leader, and that leader.
    leader: Mutex<(u64, Option<NodeId>)>,
    /// Nodes killed and not yet restarted.
    down: Mutex<BTreeSet<NodeId>>,
}

impl Shared {
    pub fn new(cluster: Arc<Backend>, history: History) -> Shared {
        Shared {
            cluster,
            history,
            api: Api::new(),
            leader: Mutex::new((0, None)),
            down: Mutex::new(BTreeSet::new()),
        }
    }

    /// The leader of the highest term sampled.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    fn saw_leader(&self, term: u64, leader: NodeId) {
        let mut l = self.leader.lock().unwrap_or_else(|e| e.into_inner());
        if term >= l.0 {
            *l = (term, Some(leader));
        }
    }

    pub fn set_down(&self, id: NodeId, down: bool) {
        let mut d = self.down.lock().unwrap_or_else(|e| e.into_inner());
        if down {
            d.insert(id);
        } else {
            d.remove(&id);
        }
    }

    pub fn is_down(&self, id: NodeId) -> bool {
        self.down
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&id)
    }

    /// Sends one switch to `node` and records it; the answer's body.
    pub async fn switch(
        &self,
        node: NodeId,
        topology: &str,
        request_id: &str,
        timeout: Duration,
    ) -> (Outcome, Value) {
        let body = json!({"topology": topology, "request_id": request_id});
        let op = self.history.invoke(OpKind::Switch, node, body.clone());
        let res = self
            .api
            .call(
                self.cluster.api_addr(node),
                Method::POST,
                "/v1/topology/switch",
                Some(&body),
                timeout,
            )
            .await;
        let (outcome, status, value) = classify(&res, 202);
        self.history.complete(op, outcome, status, value.clone());
        (outcome, value)
    }
}

/// The outcome of a write: `ok` on `ok_status`; `fail` when the node
/// refused before proposing (4xx, `no_leader`/`not_leader`, no
/// connection); otherwise `unknown` — a 5xx timeout or forward failure,
/// or no answer, may still have been applied.
pub fn classify(res: &Result<Answer, CallError>, ok_status: u16) -> (Outcome, Option<u16>, Value) {
    match res {
        Ok(a) => {
            let outcome = if a.status == ok_status {
                Outcome::Ok
            } else if (400..500).contains(&a.status)
                || (a.status == 503 && matches!(a.code(), "no_leader" | "not_leader"))
            {
                Outcome::Fail
            } else {
                Outcome::Unknown
            };
            (outcome, Some(a.status), a.body.clone())
        }
        Err(e) if e.surely_not_sent() => (Outcome::Fail, None, json!({"error": e.to_string()})),
        Err(e) => (Outcome::Unknown, None, json!({"error": e.to_string()})),
    }
}

fn pause(rng: &mut ChaCha8Rng, (lo, hi): (u64, u64)) -> Duration {
    Duration::from_millis(rng.gen_range(lo..=hi))
}

/// Sleeps `d` unless `stop` turns true first; false when stopped.
async fn nap(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    let stopped = tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    !stopped && !*stop.borrow()
}

/// Starts the switch clients and the policy changer until `stop`.
pub fn spawn_writes(
    set: &mut JoinSet<()>,
    sh: &Arc<Shared>,
    w: &Workload,
    seed: u64,
    stop: &watch::Receiver<bool>,
) {
    let ids = sh.cluster.ids();
    for client in 0..w.switch_clients {
        let (sh, mut stop, ids, w) = (sh.clone(), stop.clone(), ids.clone(), w.clone());
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (0x5717c4 + u64::from(client)));
        set.spawn(async move {
            let mut k = 0u64;
            while nap(&mut stop, pause(&mut rng, w.switch_interval_ms)).await {
                let node = ids[rng.gen_range(0..ids.len())];
                let target = TOPOLOGIES[rng.gen_range(0..TOPOLOGIES.len())];
                k += 1;
                let rid = format!("sw-{client}-{k}");
                sh.switch(
                    node,
                    target,
                    &rid,
                    Duration::from_millis(w.switch_timeout_ms),
                )
                .await;
            }
        });
    }
    if w.policy_interval_ms.1 > 0 {
        let (sh, mut stop, w) = (sh.clone(), stop.clone(), w.clone());
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9011c7);
        set.spawn(async move {
            while nap(&mut stop, pause(&mut rng, w.policy_interval_ms)).await {
                let node = ids[rng.gen_range(0..ids.len())];
                let body = json!({"cooldown_ms": rng.gen_range(0..5_000u64)});
                let op = sh.history.invoke(OpKind::Policy, node, body.clone());
                let timeout = Duration::from_millis(w.switch_timeout_ms);
                let res = sh
                    .api
                    .call(
                        sh.cluster.api_addr(node),
                        Method::PUT,
                        "/v1/policy",
                        Some(&body),
                        timeout,
                    )
                    .await;
                let (outcome, status, value) = classify(&res, 200);
                sh.history.complete(op, outcome, status, value);
            }
        });
    }
}

/// Starts one broadcaster per node until `stop` (ids `b{node}-{k}`); a
/// killed node is skipped while it is down.
pub fn spawn_broadcasts(
    set: &mut JoinSet<()>,
    sh: &Arc<Shared>,
    w: &Workload,
    stop: &watch::Receiver<bool>,
) {
    for node in sh.cluster.ids() {
        let (sh, mut stop) = (sh.clone(), stop.clone());
        let every = Duration::from_millis(w.broadcast_interval_ms);
        set.spawn(async move {
            let mut k = 0u64;
            while nap(&mut stop, every).await {
                if sh.is_down(node) {
                    continue;
                }
                let id = format!("b{node}-{k}");
                k += 1;
                let body = json!({"channel": "chaos", "id": id, "payload": "x"});
                let op = sh
                    .history
                    .invoke(OpKind::Broadcast, node, json!({"id": id}));
                let res = sh
                    .api
                    .call(
                        sh.cluster.api_addr(node),
                        Method::POST,
                        "/v1/node/broadcast",
                        Some(&body),
                        Duration::from_secs(3),
                    )
                    .await;
                let (outcome, status, value) = classify(&res, 202);
                sh.history.complete(op, outcome, status, value);
            }
        });
    }
}

/// Starts one status sampler per node until `stop`.
pub fn spawn_samplers(set: &mut JoinSet<()>, sh: &Arc<Shared>, stop: &watch::Receiver<bool>) {
    for node in sh.cluster.ids() {
        let (sh, mut stop) = (sh.clone(), stop.clone());
        set.spawn(async move {
            while nap(&mut stop, Duration::from_millis(200)).await {
                if sh.is_down(node) {
                    continue;
                }
                let res = sh
                    .api
                    .get(
                        sh.cluster.api_addr(node),
                        "/v1/cluster/status",
                        Duration::from_secs(1),
                    )
                    .await;
                let Ok(a) = res else { continue };
                if a.status != 200 {
                    continue;
                }
                let b = &a.body;
                let term = b["term"].as_u64().unwrap_or(0);
                let role = b["role"].as_str().unwrap_or("").to_string();
                if role == "leader" {
                    sh.saw_leader(term, node);
                }
                sh.history.status(
                    node,
                    term,
                    role,
                    b["leader"].as_u64(),
                    b["applied_index"].as_u64(),
                );
                let ready = sh
                    .api
                    .get(sh.cluster.api_addr(node), "/readyz", Duration::from_secs(1))
                    .await;
                if let Ok(a) = ready {
                    sh.history.ready(node, a.status == 200);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, code: &str) -> Result<Answer, CallError> {
        Ok(Answer {
            status,
            body: json!({"error": {"code": code, "message": ""}}),
        })
    }

    #[test]
    fn outcomes_are_unknown_unless_the_answer_says() {
        let cases = [
            (answer(202, ""), Outcome::Ok),
            (answer(409, "transition_in_progress"), Outcome::Fail),
            (answer(400, "bad_request"), Outcome::Fail),
            (answer(503, "no_leader"), Outcome::Fail),
            (answer(503, "not_leader"), Outcome::Fail),
            (answer(503, "internal"), Outcome::Unknown),
            (answer(504, "timeout"), Outcome::Unknown),
            (answer(502, "forward_failed"), Outcome::Unknown),
            (Err(CallError::Connect("refused".into())), Outcome::Fail),
            (
                Err(CallError::Timeout(Duration::from_secs(1))),
                Outcome::Unknown,
            ),
            (Err(CallError::Transport("reset".into())), Outcome::Unknown),
        ];
        for (res, want) in cases {
            assert_eq!(classify(&res, 202).0, want, "{res:?}");
        }
    }
}
