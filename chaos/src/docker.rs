//! The Docker backend's cluster: the Compose file's services (by default
//! deploy/compose: 3 voters, 2 learners) under a project name, subnet and
//! host ports of the run's own, so it never collides with another run or
//! a user's cluster. Faults are Docker's: `docker kill` and `docker start`
//! (same container, same volume), `docker pause`/`unpause`, and `docker
//! network disconnect`/`connect` (same address) for isolations. Each
//! container is watched by `docker wait`, which records its exit in the
//! history (an exit the harness did not cause is a crash, property 7).
//! Logs come from `docker logs` into `node{N}.log` before the project is
//! removed (`docker-compose down -v`), on every exit path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::docker_plan::{self, Shape, PROJECT_PREFIX};
use crate::history::History;
use crate::NodeId;

/// Subnets tried when Docker says one overlaps a network it has.
const SUBNET_ATTEMPTS: u32 = 5;
/// Deadline of a short docker command (kill, start, pause, connect).
const SHORT: Duration = Duration::from_secs(30);
/// Deadline of `up` and `stop` (image start, graceful stops).
const LONG: Duration = Duration::from_secs(180);

/// A docker or docker-compose command failed, or Docker cannot do what
/// was asked.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The command ran and failed; what it changed is Docker's to say.
    #[error("`{cmd}` failed: {stderr}")]
    Failed { cmd: String, stderr: String },
    /// The command did not start: nothing changed.
    #[error("`{cmd}` could not start: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    /// The command was killed at its deadline; it may have done part.
    #[error("`{cmd}` did not finish within {secs} s")]
    Timeout { cmd: String, secs: u64 },
    /// Checked before `up`: nothing started.
    #[error("image `{0}` not found: build it with scripts/image.sh (or pass --image)")]
    NoImage(String),
    /// The Compose file or its directory's topod.toml is not usable;
    /// nothing started.
    #[error("compose file {file}: {problem}")]
    ComposeFile { file: String, problem: String },
    /// A partition that disconnecting whole containers cannot give;
    /// nothing changed.
    #[error("{0}")]
    Inexpressible(String),
    /// Docker's answer was not what the Compose file implies (no
    /// container for a service, one on no network).
    #[error("docker: {0}")]
    Unexpected(String),
    #[error("node {0} has no container (the project is not up)")]
    NoContainer(NodeId),
    #[error("choosing a free host port: {0}")]
    Port(std::io::Error),
}

fn describe(cmd: &std::process::Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to its end within `within`; its stdout.
async fn output(mut cmd: std::process::Command, within: Duration) -> Result<String, DockerError> {
    let what = describe(&cmd);
    cmd.stdin(Stdio::null());
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    let out = match tokio::time::timeout(within, cmd.output()).await {
        Err(_) => {
            return Err(DockerError::Timeout {
                cmd: what,
                secs: within.as_secs(),
            })
        }
        Ok(Err(source)) => return Err(DockerError::Spawn { cmd: what, source }),
        Ok(Ok(o)) => o,
    };
    if !out.status.success() {
        return Err(DockerError::Failed {
            cmd: what,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The same, blocking (cleanup paths, which may run outside the run).
fn output_now(mut cmd: std::process::Command) -> Result<String, DockerError> {
    let what = describe(&cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| DockerError::Spawn {
            cmd: what.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(DockerError::Failed {
            cmd: what,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn docker(args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new("docker");
    c.args(args);
    c
}

/// The shape of the cluster `file` describes (`config --services`).
pub async fn shape_of(file: &Path) -> Result<Shape, DockerError> {
    let mut c = std::process::Command::new("docker-compose");
    c.arg("-f").arg(file).args(["config", "--services"]);
    let text = output(c, SHORT).await?;
    docker_plan::parse_services(&text).map_err(|problem| DockerError::ComposeFile {
        file: file.display().to_string(),
        problem,
    })
}

/// One node's container.
#[derive(Debug, Clone)]
struct Container {
    id: String,
    network: String,
    ip: String,
}

/// What changes during the run.
#[derive(Default)]
struct State {
    /// Set before the harness stops a container: its exit is no crash.
    expected: BTreeMap<NodeId, Arc<AtomicBool>>,
    exited: BTreeMap<NodeId, watch::Receiver<bool>>,
    disconnected: BTreeSet<NodeId>,
    paused: BTreeSet<NodeId>,
}

/// One run's Compose project.
pub struct Compose {
    file: PathBuf,
    override_file: PathBuf,
    /// This run's cluster CA and node certificates (`TOPOD_CERTS`).
    certs: PathBuf,
    project: String,
    image: String,
    prefix: Mutex<String>,
    ports: BTreeMap<NodeId, u16>,
    apis: BTreeMap<NodeId, String>,
    shape: Shape,
    out: PathBuf,
    history: History,
    containers: OnceLock<BTreeMap<NodeId, Container>>,
    state: Mutex<State>,
    logs_saved: AtomicBool,
    removed: AtomicBool,
}

/// The image's user: the nodes read their certificates as it.
const IMAGE_UID: u32 = 10001;

/// A cluster CA and a certificate per node in `dir`, readable by the
/// image's user, and the harness trusting that CA from now on. The CA key
/// stays root's.
fn make_certs(dir: &Path, ids: &[NodeId]) -> anyhow::Result<()> {
    use topod::security::certs::{CertAuthority, CertDir, CA_VALIDITY, NODE_VALIDITY};
    let certs = CertDir(dir.to_path_buf());
    let ca = CertAuthority::generate("compose", CA_VALIDITY)?;
    ca.write(&certs)?;
    let own = |p: &Path| std::os::unix::fs::chown(p, Some(IMAGE_UID), Some(IMAGE_UID));
    for &id in ids {
        ca.issue(id, &[], NODE_VALIDITY)?.write(&certs, id, false)?;
        own(&certs.node_cert(id))?;
        own(&certs.node_key(id))?;
    }
    own(&certs.ca_cert())?;
    // The first admin token (the Compose config points node 1 at it).
    let token_file = certs.0.join("admin.token");
    let token = topod::security::token::ensure_token_file(&token_file)?;
    own(&token_file)?;
    crate::http::use_token(token);
    crate::http::use_cluster_ca(
        topod::security::tls::roots_from_pem(ca.cert_pem.as_bytes()).map_err(anyhow::Error::msg)?,
    );
    Ok(())
}

/// `n` distinct free ports on 127.0.0.1 (held together while chosen).
fn free_ports(n: usize) -> Result<Vec<u16>, DockerError> {
    let socks = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(DockerError::Port)?;
    socks
        .iter()
        .map(|s| s.local_addr().map(|a| a.port()).map_err(DockerError::Port))
        .collect()
}

impl Compose {
    /// Writes the node config and the override under `temp` and chooses
    /// the project's name and ports; starts nothing.
    pub fn new(
        file: &Path,
        image: &str,
        shape: Shape,
        extra: &toml::Table,
        temp: &Path,
        out: &Path,
        history: History,
    ) -> Result<Compose, DockerError> {
        let bad = |problem: String| DockerError::ComposeFile {
            file: file.display().to_string(),
            problem,
        };
        let file = std::fs::canonicalize(file).map_err(|e| bad(e.to_string()))?;
        let base_path = file.with_file_name("topod.toml");
        // No topod.toml beside the Compose file: the TOPOD_* variables
        // and the defaults are the whole config.
        let base = match std::fs::read_to_string(&base_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(bad(format!("reading {}: {e}", base_path.display()))),
        };
        let config = docker_plan::node_config(&base, extra).map_err(bad)?;
        let config_path = temp.join("topod.toml");
        let override_file = temp.join("compose-override.yml");
        let write = |p: &Path, text: &str| {
            std::fs::write(p, text).map_err(|e| bad(format!("writing {}: {e}", p.display())))
        };
        write(&config_path, &config)?;
        write(
            &override_file,
            &docker_plan::override_yaml(&shape, &config_path.display().to_string()),
        )?;
        let ids: Vec<NodeId> = shape.services.keys().copied().collect();
        let certs = temp.join("certs");
        make_certs(&certs, &ids).map_err(|e| bad(format!("certificates: {e}")))?;
        let ports: BTreeMap<NodeId, u16> =
            ids.iter().copied().zip(free_ports(ids.len())?).collect();
        let apis = ports
            .iter()
            .map(|(id, p)| (*id, format!("127.0.0.1:{p}")))
            .collect();
        let pid = std::process::id();
        Ok(Compose {
            file,
            override_file,
            certs,
            project: format!("{PROJECT_PREFIX}{pid}"),
            image: image.to_string(),
            prefix: Mutex::new(docker_plan::subnet_prefix(pid, 0)),
            ports,
            apis,
            shape,
            out: out.to_path_buf(),
            history,
            containers: OnceLock::new(),
            state: Mutex::new(State::default()),
            logs_saved: AtomicBool::new(false),
            removed: AtomicBool::new(false),
        })
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.shape.services.keys().copied().collect()
    }

    pub fn voters(&self) -> usize {
        self.shape.voters
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn api_addr(&self, id: NodeId) -> &str {
        self.apis.get(&id).map_or("", String::as_str)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn container(&self, id: NodeId) -> Result<&Container, DockerError> {
        self.containers
            .get()
            .and_then(|c| c.get(&id))
            .ok_or(DockerError::NoContainer(id))
    }

    /// `docker-compose` for this project, with its variables.
    fn compose(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new("docker-compose");
        c.arg("-p")
            .arg(&self.project)
            .arg("-f")
            .arg(&self.file)
            .arg("-f")
            .arg(&self.override_file)
            .args(args)
            .env("TOPOD_IMAGE", &self.image)
            .env("TOPOD_CERTS", &self.certs)
            .env(
                "TOPOD_SUBNET_PREFIX",
                self.prefix
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_str(),
            );
        for (id, p) in &self.ports {
            c.env(format!("TOPOD_PORT_{id}"), p.to_string());
        }
        c
    }

    /// `up -d` (another subnet when Docker says this one overlaps), then
    /// finds each container and watches it.
    pub async fn up(&self) -> Result<(), DockerError> {
        match output(docker(&["image", "inspect", &self.image]), SHORT).await {
            Ok(_) => {}
            Err(DockerError::Failed { stderr, .. }) if stderr.contains("No such image") => {
                return Err(DockerError::NoImage(self.image.clone()))
            }
            Err(e) => return Err(e),
        }
        let pid = std::process::id();
        for attempt in 0..SUBNET_ATTEMPTS {
            *self.prefix.lock().unwrap_or_else(|e| e.into_inner()) =
                docker_plan::subnet_prefix(pid, attempt);
            match output(self.compose(&["up", "-d"]), LONG).await {
                Ok(_) => break,
                Err(DockerError::Failed { stderr, .. })
                    if stderr.contains("overlaps") && attempt + 1 < SUBNET_ATTEMPTS =>
                {
                    output(self.compose(&["down", "-v", "--remove-orphans"]), LONG).await?;
                }
                Err(e) => return Err(e),
            }
        }
        let mut found = BTreeMap::new();
        for (&id, service) in &self.shape.services {
            found.insert(id, self.find(service).await?);
        }
        if self.containers.set(found).is_err() {
            eprintln!("topod-chaos: project {} was brought up twice", self.project);
        }
        for id in self.ids() {
            self.watch(id)?;
        }
        Ok(())
    }

    async fn find(&self, service: &str) -> Result<Container, DockerError> {
        let p = format!("label=com.docker.compose.project={}", self.project);
        let s = format!("label=com.docker.compose.service={service}");
        let ids = output(
            docker(&["ps", "-aq", "--filter", &p, "--filter", &s]),
            SHORT,
        )
        .await?;
        let Some(id) = ids.split_whitespace().next().map(str::to_string) else {
            return Err(DockerError::Unexpected(format!(
                "service {service} of project {} has no container after up",
                self.project
            )));
        };
        let nets = output(
            docker(&[
                "inspect",
                &id,
                "--format",
                "{{json .NetworkSettings.Networks}}",
            ]),
            SHORT,
        )
        .await?;
        let v: serde_json::Value = serde_json::from_str(nets.trim()).map_err(|e| {
            DockerError::Unexpected(format!("networks of container {id}: {e}: {}", nets.trim()))
        })?;
        let Some((network, ip)) = v.as_object().and_then(|m| {
            m.iter()
                .find_map(|(n, e)| Some((n.clone(), e["IPAddress"].as_str()?.to_string())))
        }) else {
            return Err(DockerError::Unexpected(format!(
                "container {id} ({service}) is on no network: {}",
                nets.trim()
            )));
        };
        Ok(Container { id, network, ip })
    }

    /// Records `started` and watches the container with `docker wait`.
    fn watch(&self, id: NodeId) -> Result<(), DockerError> {
        let c = self.container(id)?.clone();
        let expected = Arc::new(AtomicBool::new(false));
        let (tx, rx) = watch::channel(false);
        let (h, exp) = (self.history.clone(), expected.clone());
        let mut wait = tokio::process::Command::new("docker");
        wait.args(["wait", &c.id])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        tokio::spawn(async move {
            let detail = match wait.output().await {
                Ok(o) if o.status.success() => {
                    format!("exit code {}", String::from_utf8_lossy(&o.stdout).trim())
                }
                Ok(o) => format!("docker wait failed: {}", o.status),
                Err(e) => format!("docker wait could not run: {e}"),
            };
            let expected = exp.load(Ordering::SeqCst);
            if !expected {
                eprintln!("topod-chaos: node {id} exited unexpectedly: {detail}");
            }
            h.process(id, "exited", expected, detail);
            if tx.send(true).is_err() {
                // Nobody waits for this exit.
            }
        });
        self.history
            .process(id, "started", true, format!("container {}", c.id));
        let mut st = self.state();
        st.expected.insert(id, expected);
        st.exited.insert(id, rx);
        Ok(())
    }

    fn expect_exit(&self, id: NodeId) -> Option<watch::Receiver<bool>> {
        let st = self.state();
        if let Some(e) = st.expected.get(&id) {
            e.store(true, Ordering::SeqCst);
        }
        st.exited.get(&id).cloned()
    }

    async fn await_exit(&self, id: NodeId, rx: Option<watch::Receiver<bool>>) {
        if let Some(mut rx) = rx {
            if tokio::time::timeout(SHORT, rx.wait_for(|e| *e))
                .await
                .is_err()
            {
                eprintln!("topod-chaos: node {id}: docker wait saw no exit within {SHORT:?}");
            }
        }
    }

    /// `docker kill` (SIGKILL) and waits for the exit.
    pub async fn kill(&self, id: NodeId) -> Result<(), DockerError> {
        let c = self.container(id)?.id.clone();
        let rx = self.expect_exit(id);
        output(docker(&["kill", &c]), SHORT).await?;
        self.history
            .process(id, "killed", true, "docker kill".into());
        self.await_exit(id, rx).await;
        Ok(())
    }

    /// `docker start`: the same container on the same volume.
    pub async fn start(&self, id: NodeId) -> Result<(), DockerError> {
        let c = self.container(id)?.id.clone();
        output(docker(&["start", &c]), SHORT).await?;
        self.watch(id)
    }

    pub async fn pause(&self, id: NodeId) -> Result<(), DockerError> {
        let c = self.container(id)?.id.clone();
        output(docker(&["pause", &c]), SHORT).await?;
        self.state().paused.insert(id);
        self.history
            .process(id, "paused", true, "docker pause".into());
        Ok(())
    }

    pub async fn resume(&self, id: NodeId) -> Result<(), DockerError> {
        let c = self.container(id)?.id.clone();
        output(docker(&["unpause", &c]), SHORT).await?;
        self.state().paused.remove(&id);
        self.history
            .process(id, "resumed", true, "docker unpause".into());
        Ok(())
    }

    /// Disconnects exactly the nodes the partition isolates (reconnecting
    /// any other), or refuses a partition that is more than isolations.
    pub async fn partition(
        &self,
        blocked: &BTreeMap<NodeId, BTreeSet<NodeId>>,
    ) -> Result<(), DockerError> {
        let want =
            docker_plan::isolated(blocked, &self.ids()).map_err(DockerError::Inexpressible)?;
        let now = self.state().disconnected.clone();
        for &id in now.difference(&want) {
            self.connect(id).await?;
        }
        for &id in want.difference(&now) {
            let c = self.container(id)?;
            output(docker(&["network", "disconnect", &c.network, &c.id]), SHORT).await?;
            self.state().disconnected.insert(id);
        }
        Ok(())
    }

    /// Back on its network with its address (peers know it by that).
    async fn connect(&self, id: NodeId) -> Result<(), DockerError> {
        let c = self.container(id)?;
        let service = self
            .shape
            .services
            .get(&id)
            .ok_or(DockerError::NoContainer(id))?;
        output(
            docker(&[
                "network", "connect", "--ip", &c.ip, "--alias", service, &c.network, &c.id,
            ]),
            SHORT,
        )
        .await?;
        self.state().disconnected.remove(&id);
        Ok(())
    }

    /// Reconnects every disconnected node.
    pub async fn heal(&self) -> Result<(), DockerError> {
        self.partition(&BTreeMap::new()).await
    }

    /// Stops every container (SIGTERM, SIGKILL after 10 s; a paused one is
    /// unpaused first) and saves the logs.
    pub async fn stop_all(&self) {
        let ids = self.ids();
        let paused: Vec<NodeId> = self.state().paused.iter().copied().collect();
        for id in paused {
            if let Err(e) = self.resume(id).await {
                eprintln!("topod-chaos: {e}");
            }
        }
        let waits: Vec<_> = ids.iter().map(|&id| (id, self.expect_exit(id))).collect();
        let Some(cs) = self.containers.get() else {
            return;
        };
        let mut args = vec!["stop", "-t", "10"];
        args.extend(cs.values().map(|c| c.id.as_str()));
        for &id in cs.keys() {
            self.history
                .process(id, "stopped", true, "docker stop".into());
        }
        if let Err(e) = output(docker(&args), LONG).await {
            eprintln!("topod-chaos: {e}");
        }
        for (id, rx) in waits {
            self.await_exit(id, rx).await;
        }
        self.save_logs();
    }

    /// The container of every node: known after `up`, else looked up by
    /// the project's labels (an interrupted `up` may have made some).
    fn container_ids_now(&self) -> BTreeMap<NodeId, String> {
        if let Some(cs) = self.containers.get() {
            return cs.iter().map(|(n, c)| (*n, c.id.clone())).collect();
        }
        let p = format!("label=com.docker.compose.project={}", self.project);
        let mut out = BTreeMap::new();
        for (&id, service) in &self.shape.services {
            let s = format!("label=com.docker.compose.service={service}");
            match output_now(docker(&["ps", "-aq", "--filter", &p, "--filter", &s])) {
                Ok(ids) => {
                    if let Some(c) = ids.split_whitespace().next() {
                        out.insert(id, c.to_string());
                    }
                }
                Err(e) => eprintln!("topod-chaos: cleanup: {e}"),
            }
        }
        out
    }

    /// `docker logs` of every container into `node{N}.log` (once).
    pub fn save_logs(&self) {
        if self.logs_saved.swap(true, Ordering::SeqCst) {
            return;
        }
        for (id, c) in self.container_ids_now() {
            let path = self.out.join(format!("node{id}.log"));
            let saved = std::fs::File::create(&path)
                .and_then(|f| Ok((f.try_clone()?, f)))
                .and_then(|(a, b)| {
                    std::process::Command::new("docker")
                        .args(["logs", &c])
                        .stdin(Stdio::null())
                        .stdout(a)
                        .stderr(b)
                        .status()
                });
            match saved {
                Ok(s) if s.success() => {}
                other => eprintln!("topod-chaos: docker logs of node {id}: {other:?}"),
            }
        }
    }

    /// Saves the logs and removes the project: containers, network and
    /// volumes (`down -v`). Blocking; safe to call twice.
    pub fn remove(&self) {
        for e in self.state().expected.values() {
            e.store(true, Ordering::SeqCst);
        }
        self.save_logs();
        if self.removed.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Err(e) = output_now(self.compose(&["down", "-v", "--remove-orphans", "-t", "5"])) {
            eprintln!("topod-chaos: cleanup: {e}");
        }
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Removes every project an earlier run left (containers, networks,
/// volumes labelled `com.docker.compose.project=topodchaos<pid>`) whose
/// harness is no longer running; returns what was removed.
pub fn cleanup_leftovers() -> Result<Vec<String>, DockerError> {
    let fmt = "{{.Label \"com.docker.compose.project\"}}";
    let filter = "label=com.docker.compose.project";
    let mut projects = BTreeSet::new();
    for what in [
        vec!["ps", "-a"],
        vec!["network", "ls"],
        vec!["volume", "ls"],
    ] {
        let mut args = what.clone();
        args.extend(["--filter", filter, "--format", fmt]);
        for p in output_now(docker(&args))?.lines().map(str::trim) {
            if docker_plan::project_pid(p).is_some() {
                projects.insert(p.to_string());
            }
        }
    }
    let mut removed = Vec::new();
    for p in projects {
        let pid = docker_plan::project_pid(&p).unwrap_or(0);
        if crate::run::harness_running(pid) {
            println!("kept {p}: its run (pid {pid}) is still going");
            continue;
        }
        let label = format!("label=com.docker.compose.project={p}");
        for (list, rm, kind) in [
            (vec!["ps", "-aq"], vec!["rm", "-f", "-v"], "container"),
            (
                vec!["network", "ls", "-q"],
                vec!["network", "rm"],
                "network",
            ),
            (
                vec!["volume", "ls", "-q"],
                vec!["volume", "rm", "-f"],
                "volume",
            ),
        ] {
            let mut args = list;
            args.extend(["--filter", &label]);
            for id in output_now(docker(&args))?.split_whitespace() {
                let mut r = rm.clone();
                r.push(id);
                output_now(docker(&r))?;
                removed.push(format!("{kind} {id} of {p}"));
            }
        }
    }
    Ok(removed)
}
