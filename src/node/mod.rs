//! A running `topod` node: storage, Raft, the Raft RPC and admin API
//! servers, the coordinator, the executor driver and telemetry, wired
//! together by [`start_node`]. Binaries and tests call the same function;
//! `logging` sets up the process's log output for the binaries.

pub mod bootstrap;
pub mod events;
pub mod health;
pub mod logging;
pub mod reporter;
pub mod restore;
pub mod setup;
pub mod telemetry;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::context::ApiContext;
use crate::api::forward::Forwarder;
use crate::config::NodeConfig;
use crate::control::applied::AppliedRx;
use crate::control::coordinator::{Coordinator, CoordinatorSettings};
use crate::control::driver::Driver;
use crate::control::executor::Executor;
use crate::control::liveness::Liveness;
use crate::control::network::{Network, NetworkSettings};
use crate::control::proposer::Proposer;
use crate::control::store::{Store, StoreError};
use crate::control::types::{NodeAddr, Raft};
use crate::executor::{ChannelError, ExecutorHandle, Subscription};
use crate::model::NodeId;
use crate::transport::Transport;
use bytes::Bytes;

/// Why a node could not start or stopped. Nothing stored was changed by a
/// refusal to start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("config: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("storage: {0}")]
    Storage(#[from] StoreError),
    #[error("cannot bind the {what} listener on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("raft: {0}")]
    Raft(String),
    #[error(
        "node {node_id}'s data dir {} is empty, but voter {peer} already lists node {node_id} as a \
         member: this voter's disk was wiped. Remove node {node_id} from the cluster \
         (`topoctl remove {node_id}`) and join it anew, or restore its data dir",
        data_dir.display()
    )]
    Wiped {
        node_id: NodeId,
        data_dir: PathBuf,
        peer: NodeId,
    },
    #[error(
        "cannot check that voter {peer} does not list this node under another UUID (a wiped \
         disk): {detail}"
    )]
    WipeCheck { peer: NodeId, detail: String },
    #[error("the cluster refused this node's join through {target}: {detail}")]
    JoinRefused { target: String, detail: String },
    #[error("peer transport: {0}")]
    Transport(#[from] crate::transport::TransportError),
    #[error(transparent)]
    Security(#[from] crate::security::TlsError),
    #[error("data dir: {0}")]
    Incarnation(#[from] crate::executor::incarnation::IncarnationError),
    #[error("could not join the cluster through {targets:?}")]
    JoinFailed { targets: Vec<String> },
    #[error(transparent)]
    TokenFile(#[from] crate::security::token::TokenFileError),
}

/// A started node. Dropping it does not stop it: call [`Node::shutdown`].
pub struct Node {
    id: NodeId,
    raft: Raft,
    addr: NodeAddr,
    api_addr: SocketAddr,
    raft_addr: SocketAddr,
    applied: AppliedRx,
    cancel: CancellationToken,
    tracker: TaskTracker,
    fatal: Arc<AtomicBool>,
    dataplane: Option<ExecutorHandle>,
    events: events::EventHub,
    monitor: crate::monitor::MonitorHandle,
    app_metrics: crate::app_metrics::AppMetrics,
}

/// Which executor a node runs.
enum ExecutorChoice {
    /// The caller's (control-plane tests: `NoOverlay`, `ScriptedExecutor`).
    Given(Arc<dyn Executor>),
    /// The real data plane: a TCP transport on `peer_addr` and the overlay
    /// executor.
    Overlays,
}

impl Node {
    /// This node's application metrics: record gauges, counters and
    /// latency histograms (`app.checkout_latency_ms`) that travel in the
    /// node summary to the leader's monitor, where custom rules see them.
    pub fn metrics(&self) -> &crate::app_metrics::AppMetrics {
        &self.app_metrics
    }

    /// The data plane's executor handle (`None` for a node started with a
    /// given executor).
    pub fn executor(&self) -> Option<&ExecutorHandle> {
        self.dataplane.as_ref()
    }

    fn channels(&self) -> Result<&ExecutorHandle, ChannelError> {
        self.dataplane.as_ref().ok_or(ChannelError::NoOverlay)
    }

    /// Broadcasts `data` on `channel` to every member over the current
    /// overlay; waits for queue space.
    pub async fn broadcast(&self, channel: &str, data: Bytes) -> Result<(), ChannelError> {
        self.channels()?.broadcast(channel, data).await
    }

    /// Sends `data` on `channel` to `peer` (direct link; through a server
    /// between two client_server clients); waits for queue space.
    pub async fn send(&self, peer: NodeId, channel: &str, data: Bytes) -> Result<(), ChannelError> {
        self.channels()?.send(peer, channel, data).await
    }

    /// Sends each of `payloads` on `channel` to `peer`, in order: the same
    /// as that many `send`s, cheaper per message (see
    /// [`ExecutorHandle::send_many`](crate::executor::ExecutorHandle::send_many)).
    pub async fn send_many<I>(
        &self,
        peer: NodeId,
        channel: &str,
        payloads: I,
    ) -> Result<(), ChannelError>
    where
        I: IntoIterator<Item = Bytes>,
    {
        self.channels()?.send_many(peer, channel, payloads).await
    }

    /// The messages of `channel`, each at most once, or `Lagged(n)`.
    pub async fn subscribe(&self, channel: &str) -> Result<Subscription, ChannelError> {
        self.channels()?.subscribe(channel).await
    }

    /// The topology events this node applies from now on (`Announced`,
    /// `Prepared`, `Committed`, `Aborted`, `RolledBack`), or `Lagged(n)`
    /// for a subscriber that fell behind (see [`events`]).
    pub fn topology_events(&self) -> events::TopologyEvents {
        self.events.subscribe()
    }

    /// Where this node's monitor publishes its rounds (while it leads).
    pub fn monitor(&self) -> &crate::monitor::MonitorHandle {
        &self.monitor
    }

    /// The current topology, its config and epoch, as this node applied
    /// them.
    pub fn topology(&self) -> events::CurrentTopology {
        (&self.applied.borrow().state).into()
    }

    pub fn id(&self) -> NodeId {
        self.id
    }
    /// The bound API address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }
    /// The bound Raft RPC address.
    pub fn raft_addr(&self) -> SocketAddr {
        self.raft_addr
    }
    /// This node's addresses as stored in the membership.
    pub fn node_addr(&self) -> &NodeAddr {
        &self.addr
    }
    pub fn raft(&self) -> &Raft {
        &self.raft
    }
    /// A receiver of the applied state.
    pub fn applied(&self) -> AppliedRx {
        self.applied.clone()
    }

    /// Resolves when the node stops by itself (storage failure): the error
    /// says why. Never resolves for a healthy node until shutdown.
    pub async fn stopped(&self) -> Result<(), NodeError> {
        self.cancel.cancelled().await;
        if self.fatal.load(Ordering::SeqCst) {
            let m = self.raft.metrics().borrow().clone();
            return Err(NodeError::Raft(match m.running_state {
                Err(e) => e.to_string(),
                Ok(()) => "raft stopped".into(),
            }));
        }
        Ok(())
    }

    /// Stops serving, shuts Raft down and waits for every task.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        self.cancel.cancel();
        let result = self
            .raft
            .shutdown()
            .await
            .map_err(|e| NodeError::Raft(format!("shutdown: {e}")));
        self.tracker.close();
        self.tracker.wait().await;
        result
    }
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Bind { what, addr, source })
}

/// Starts a node from `config`, with `executor` carrying out switches
/// (control-plane tests; no overlay is built).
pub async fn start_node(
    config: NodeConfig,
    executor: Arc<dyn Executor>,
) -> Result<Node, NodeError> {
    start(config, ExecutorChoice::Given(executor)).await
}

/// Starts a node from `config` with the real data plane: a TCP transport
/// bound on `peer_addr` (the bound address goes into the membership) and
/// the overlay executor carrying out switches. What `topod` runs.
pub async fn start_node_with_overlays(config: NodeConfig) -> Result<Node, NodeError> {
    start(config, ExecutorChoice::Overlays).await
}

async fn start(config: NodeConfig, choice: ExecutorChoice) -> Result<Node, NodeError> {
    config.validate()?;
    let tls = crate::security::context_for(&config)?;
    let peer_http = crate::security::PeerHttp::of(tls.clone());
    let initial_token = match &config.security.initial_admin_token_file {
        Some(path) => Some(crate::security::token::read_token_file(
            "security.initial_admin_token_file",
            path,
        )?),
        None => None,
    };
    if config.security.require_tokens() {
        tracing::info!("admin API: bearer tokens required");
    }
    std::fs::create_dir_all(&config.data_dir).map_err(|e| StoreError::Open {
        path: config.data_dir.clone(),
        source: sled::Error::Io(e),
    })?;
    let store = Store::open(&config.data_dir, config.storage.cache_bytes)?;
    store.identity().check(&config.cluster_id)?;
    let fresh = store.identity().is_fresh();
    if fresh && config.is_initial_voter() {
        let uuid = store.identity().node_uuid().to_string();
        bootstrap::check_not_wiped(&config, &uuid, &peer_http).await?;
    }
    let api_listener = bind("API", config.api_addr).await?;
    let raft_listener = bind("Raft", config.raft_addr).await?;
    let api_addr = api_listener
        .local_addr()
        .map_err(|source| NodeError::Bind {
            what: "API",
            addr: config.api_addr,
            source,
        })?;
    let raft_addr = raft_listener
        .local_addr()
        .map_err(|source| NodeError::Bind {
            what: "Raft",
            addr: config.raft_addr,
            source,
        })?;
    let transport = match choice {
        ExecutorChoice::Overlays => {
            let incarnation = crate::executor::incarnation::bump(&config.data_dir)?;
            let (t, events) = Transport::bind_tcp_with_tls(
                config.peer_addr,
                config.transport.clone(),
                config.node_id,
                &config.cluster_id,
                tls.clone(),
            )
            .await?;
            Some((t, events, incarnation))
        }
        ExecutorChoice::Given(_) => None,
    };
    let peer_addr = transport
        .as_ref()
        .map_or(config.peer_addr, |(t, _, _)| t.bound_addr());
    // What the membership holds: `[advertise]` where set, else the bound
    // addresses (port 0 resolved).
    let adv = &config.advertise;
    let addr = NodeAddr {
        api_addr: adv.api_addr.unwrap_or(api_addr).to_string(),
        raft_addr: adv.raft_addr.unwrap_or(raft_addr).to_string(),
        peer_addr: adv.peer_addr.unwrap_or(peer_addr).to_string(),
        node_uuid: store.identity().node_uuid().to_string(),
    };
    let applied = store.subscribe();
    let (log_store, sm_store, _identity) = store.into_parts();

    let liveness = Liveness::default();
    let quorum_clock = crate::control::readiness::QuorumClock::default();
    let log_versions = crate::control::log_versions::LogVersions::default();
    let voters = crate::control::heartbeat_gate::Voters::default();
    let network = Network::new(
        NetworkSettings {
            cluster_id: config.cluster_id.clone(),
            rpc_timeout: config.raft.rpc_timeout(),
            max_body_bytes: config.raft.rpc_max_body_bytes as usize,
            learner_heartbeat: Duration::from_millis(config.raft.learner_heartbeat_ms),
            peer: peer_http.clone(),
        },
        liveness.clone(),
    )
    .with_quorum_clock(quorum_clock.clone())
    .with_log_versions(log_versions.clone())
    .with_voters(voters.clone());
    let raft_config = Arc::new(config.raft.to_openraft(&config.cluster_id)?);
    let raft = Raft::new(
        config.node_id,
        raft_config,
        network.clone(),
        log_store,
        sm_store,
    )
    .await
    .map_err(|e| NodeError::Raft(e.to_string()))?;

    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let fatal = Arc::new(AtomicBool::new(false));
    let (executor, dataplane): (Arc<dyn Executor>, _) = match (choice, transport) {
        (ExecutorChoice::Given(e), _) => (e, None),
        (ExecutorChoice::Overlays, Some((t, events, incarnation))) => {
            let h = crate::executor::start(
                config.node_id,
                incarnation,
                config.executor.clone(),
                (t, events),
                applied.clone(),
                cancel.clone(),
                &tracker,
            );
            (Arc::new(h.clone()), Some(h))
        }
        (ExecutorChoice::Overlays, None) => unreachable!("the transport is bound above"),
    };
    let proposer = Arc::new(Proposer::with_batching(
        raft.clone(),
        applied.clone(),
        config.api.request_timeout(),
        config.node_id,
        log_versions.clone(),
    ));
    let forwarder = Forwarder::new(peer_http.clone(), Some(config.node_id));
    let (reports, batching) = crate::control::report_batch::ReportBatcher::new(
        proposer.clone(),
        raft.clone(),
        config.node_id,
        log_versions.clone(),
        crate::control::report_batch::BatchSettings {
            window: std::time::Duration::from_millis(config.switch.report_batch_window_ms),
        },
        cancel.clone(),
    );
    tracker.spawn(batching);

    // Raft RPC server.
    let leader_contact = crate::control::readiness::LeaderContact::default();
    let rpc = crate::control::rpc_server::router(
        raft.clone(),
        crate::control::rpc_server::RpcIdentity {
            me: config.node_id,
            cluster_id: config.cluster_id.clone(),
            contact: leader_contact.clone(),
            lease: Duration::from_millis(config.raft.election_timeout_max_ms),
            secure: tls.is_some(),
        },
        config.raft.rpc_max_body_bytes as usize,
    );
    tracker.spawn(quorum_clock.track(raft.clone(), cancel.clone()));
    tracker.spawn(voters.track(raft.clone(), cancel.clone()));
    if config.raft.prevote {
        tracker.spawn(crate::control::prevote::task::run(
            raft.clone(),
            config.node_id,
            leader_contact.clone(),
            network.clone(),
            crate::control::prevote::task::Settings {
                timing: crate::control::prevote::Timing::from_millis(
                    config.raft.election_timeout_min_ms,
                    config.raft.election_timeout_max_ms,
                ),
                rpc_timeout: config
                    .raft
                    .rpc_timeout()
                    .min(Duration::from_millis(config.raft.election_timeout_min_ms)),
            },
            cancel.clone(),
        ));
    }

    let monitor = crate::monitor::MonitorHandle::new();
    let app_metrics = crate::app_metrics::AppMetrics::new(config.app_metrics.max_names as usize);
    let events = events::EventHub::new(cancel.clone());
    tracker.spawn(events::run(
        applied.clone(),
        events.clone(),
        config.node_id,
        cancel.clone(),
    ));

    // Admin API server.
    let defaults_cfg = config.overlay.clone();
    let ctx = Arc::new(ApiContext {
        node_id: config.node_id,
        insecure: config.security.insecure,
        tls: tls.clone(),
        expiry_warning: Duration::from_secs(config.security.expiry_warning_days * 86_400),
        require_tokens: config.security.require_tokens(),
        metrics_access: config.security.metrics,
        log_versions: log_versions.clone(),
        node_uuid: addr.node_uuid.clone(),
        cluster_id: config.cluster_id.clone(),
        raft: raft.clone(),
        applied: applied.clone(),
        proposer: proposer.clone(),
        reports: reports.clone(),
        forwarder: forwarder.clone(),
        overlay_defaults: Arc::new(move |t| defaults_cfg.default_for(t)),
        prometheus: telemetry::prometheus(),
        max_body_bytes: config.api.max_body_bytes as usize,
        forward_timeout: config.api.request_timeout()
            + Duration::from_millis(crate::api::types::MAX_WAIT_TIMEOUT_MS),
        fatal: fatal.clone(),
        membership_lock: tokio::sync::Mutex::new(()),
        deliveries: crate::api::deliveries::start_recorder(
            dataplane.as_ref(),
            cancel.clone(),
            &tracker,
        ),
        leader_contact,
        ready_window: Duration::from_millis(config.raft.election_timeout_max_ms),
        learner_ready_window: config.raft.learner_ready_window(),
        dataplane: dataplane.clone(),
        monitor: monitor.clone(),
        events: events.clone(),
        app_metrics: app_metrics.clone(),
    });
    let api = crate::api::routes::router(ctx);
    if let Some(t) = &tls {
        tracker.spawn(crate::security::reload::run(
            t.clone(),
            Duration::from_secs(config.security.expiry_warning_days * 86_400),
            cancel.clone(),
        ));
    }
    let (rpc_tls, api_tls, rpc) = listener_modes(&config, tls.as_ref(), rpc, &api);
    tracker.spawn(crate::security::listener::serve(
        raft_listener,
        rpc,
        rpc_tls,
        config.api.listener_limits("raft"),
        cancel.clone(),
    ));
    tracker.spawn(crate::security::listener::serve(
        api_listener,
        api,
        api_tls,
        config.api.listener_limits("api"),
        cancel.clone(),
    ));

    // Bootstrap or join.
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| NodeError::Raft(e.to_string()))?;
    if !initialized {
        if config.is_initial_voter() {
            let (r, c, a, p) = (
                raft.clone(),
                config.clone(),
                addr.clone(),
                peer_http.clone(),
            );
            tracker.spawn(async move {
                if let Err(e) = bootstrap::initialize_if_first(&r, &c, &a, &p).await {
                    tracing::error!(error = %e, "initialising the cluster failed");
                }
            });
        } else if !config.join.is_empty() {
            let targets = config.join.iter().map(|a| a.to_string()).collect();
            let (me, a, c, p) = (
                config.node_id,
                addr.clone(),
                cancel.clone(),
                peer_http.clone(),
            );
            tracker.spawn(async move {
                if let Err(e) = bootstrap::join(targets, me, a, c, p).await {
                    tracing::error!(error = %e, "giving up joining");
                }
            });
        } else {
            tracing::info!("not initialised and nothing to join: waiting to be added to a cluster");
        }
    }
    if config.is_initial_voter() {
        tracker.spawn(setup::run(
            proposer.clone(),
            applied.clone(),
            config.switch.clone(),
            config.rules.clone(),
            config.overlay.clone(),
            setup::Extras {
                initial_token,
                log_versions: log_versions.clone(),
                me: config.node_id,
            },
            cancel.clone(),
        ));
    }

    tracker.spawn(
        Coordinator {
            raft: raft.clone(),
            applied: applied.clone(),
            proposer: proposer.clone(),
            liveness,
            me: config.node_id,
            settings: CoordinatorSettings {
                prepare_timeout: config.switch.prepare_timeout(),
                live_window: Duration::from_millis((config.raft.heartbeat_ms * 10).max(1000)),
                tick: Duration::from_millis(100),
            },
        }
        .run(cancel.clone()),
    );
    let reporter = reporter::LeaderReporter {
        raft: raft.clone(),
        proposer: proposer.clone(),
        reports,
        forwarder,
        timeout: config.api.request_timeout(),
    };
    tracker.spawn(
        Driver {
            me: config.node_id,
            applied: applied.clone(),
            executor,
            reporter: Arc::new(reporter),
            commit_index: Arc::new(raft.clone()),
            step_timeout: config.switch.prepare_timeout(),
        }
        .run(cancel.clone()),
    );
    tracker.spawn(
        crate::monitor::Monitor {
            raft: raft.clone(),
            applied: applied.clone(),
            proposer: proposer.clone(),
            me: config.node_id,
            handle: monitor.clone(),
            overlay: config.overlay.clone(),
            settings: config.monitor.clone(),
            peer: peer_http.clone(),
        }
        .run(cancel.clone()),
    );
    tracker.spawn(telemetry::run(
        raft.clone(),
        applied.clone(),
        cancel.clone(),
    ));
    tracker.spawn(watch_fatal(raft.clone(), fatal.clone(), cancel.clone()));

    tracing::info!(node = config.node_id, %api_addr, %raft_addr, "node started");
    Ok(Node {
        id: config.node_id,
        raft,
        addr,
        api_addr,
        raft_addr,
        applied,
        cancel,
        tracker,
        fatal,
        dataplane,
        events,
        monitor,
        app_metrics,
    })
}

/// How the two HTTP listeners speak, and what the Raft RPC listener
/// serves: on a secure node, mutual TLS on the Raft listener, which also
/// serves the admin API's routes to peers (forwarding, reports, summaries,
/// joins go there), and TLS with an optional client certificate on the API
/// listener (or plain, with `security.api_tls = false`).
fn listener_modes(
    config: &NodeConfig,
    tls: Option<&Arc<crate::security::TlsContext>>,
    rpc: axum::Router,
    api: &axum::Router,
) -> (
    crate::security::listener::ListenerTls,
    crate::security::listener::ListenerTls,
    axum::Router,
) {
    use crate::security::listener::ListenerTls;
    match tls {
        None => (
            ListenerTls::Plain {
                trust_forwarded: true,
            },
            ListenerTls::Plain {
                trust_forwarded: true,
            },
            rpc,
        ),
        Some(ctx) => {
            let rpc_tls = ListenerTls::Tls {
                config: ctx.peer_server_config(&[b"http/1.1"]),
                ctx: ctx.clone(),
            };
            let api_tls = if config.security.api_tls {
                ListenerTls::Tls {
                    config: ctx.api_server_config(),
                    ctx: ctx.clone(),
                }
            } else {
                ListenerTls::Plain {
                    trust_forwarded: false,
                }
            };
            (rpc_tls, api_tls, rpc.merge(api.clone()))
        }
    }
}

/// Storage errors are fatal: when Raft stops on its own, mark the node
/// failed (readyz fails, writes are refused) and stop everything.
async fn watch_fatal(raft: Raft, fatal: Arc<AtomicBool>, cancel: CancellationToken) {
    let mut rx = raft.metrics();
    loop {
        if let Err(e) = &rx.borrow_and_update().running_state {
            if cancel.is_cancelled() {
                return; // our own shutdown stopped it
            }
            tracing::error!(error = %e, "raft stopped: the node stops");
            fatal.store(true, Ordering::SeqCst);
            cancel.cancel();
            return;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            r = rx.changed() => if r.is_err() {
                if !cancel.is_cancelled() {
                    fatal.store(true, Ordering::SeqCst);
                    cancel.cancel();
                }
                return;
            },
        }
    }
}
