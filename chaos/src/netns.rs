//! The harness's network: one namespace per node, each with a veth pair
//! whose other end is on one bridge, addresses of a private /24 (node i
//! has `.i`, the bridge `.254`, so the harness in the root namespace
//! reaches every node's API through the bridge), and a `TCHAOS` iptables
//! chain in every namespace that partitions drop peers' addresses in.
//!
//! Dropping by peer address inside the namespaces cuts Raft RPC, API
//! forwarding and overlay links alike, and leaves the harness (the bridge
//! address) able to talk to every node. Everything made here is named
//! with [`PREFIX`] and removed by [`Net::teardown`] (also on drop) or, for
//! a run that died without it, by [`cleanup_leftovers`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use tokio::io::AsyncWriteExt;

use crate::NodeId;

/// Prefix of every namespace, link and chain name the harness creates.
pub const PREFIX: &str = "tch";
/// The bridge's name.
pub const BRIDGE: &str = "tch-br";
/// The partition chain inside each namespace.
const CHAIN: &str = "TCHAOS";
/// The bridge's host byte in the /24.
const BRIDGE_HOST: u8 = 254;

/// A command of the network setup failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("`{cmd}` failed: {stderr}")]
    Failed { cmd: String, stderr: String },
    #[error("`{cmd}` could not start: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("leftovers of an earlier run exist ({0}); run `topod-chaos cleanup`")]
    Leftovers(String),
    #[error("at most 253 nodes fit the /24 (asked for {0})")]
    TooManyNodes(usize),
}

fn run(args: &[&str]) -> Result<String, NetError> {
    let cmd = args.join(" ");
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| NetError::Spawn {
            cmd: cmd.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(NetError::Failed {
            cmd,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What was created, in order, so teardown removes exactly that.
#[derive(Debug, Default)]
struct Created {
    bridge: bool,
    forward_rule: bool,
    namespaces: Vec<String>,
    /// Host ends of the veth pairs. Deleted explicitly: a namespace that
    /// something still references (a closing socket) outlives `ip netns
    /// del`, and its veth pair with it, which made the next run's `ip link
    /// add` fail with "File exists".
    veths: Vec<String>,
}

/// The namespaces and the bridge of one run.
#[derive(Debug)]
pub struct Net {
    subnet: [u8; 3],
    nodes: Vec<NodeId>,
    created: std::sync::Mutex<Created>,
}

/// The namespace name of node `id`.
pub fn ns_name(id: NodeId) -> String {
    format!("{PREFIX}-n{id}")
}

impl Net {
    /// Creates the bridge, the FORWARD accept rule and one namespace per
    /// node. On an error, whatever was made is removed again.
    pub fn create(subnet: [u8; 3], nodes: usize) -> Result<Net, NetError> {
        if nodes > 253 {
            return Err(NetError::TooManyNodes(nodes));
        }
        let left = leftovers()?;
        if !left.is_empty() {
            return Err(NetError::Leftovers(left.join(", ")));
        }
        let net = Net {
            subnet,
            nodes: (1..=nodes as NodeId).collect(),
            created: std::sync::Mutex::default(),
        };
        net.build()?;
        Ok(net)
    }

    fn build(&self) -> Result<(), NetError> {
        let bridge_cidr = format!("{}/24", self.bridge_addr());
        run(&["ip", "link", "add", BRIDGE, "type", "bridge"])?;
        self.created().bridge = true;
        run(&["ip", "addr", "add", &bridge_cidr, "dev", BRIDGE])?;
        run(&["ip", "link", "set", BRIDGE, "up"])?;
        // Docker sets FORWARD's policy to DROP, and bridged frames pass
        // through it here (PITFALLS.md).
        run(&[
            "iptables", "-I", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT",
        ])?;
        self.created().forward_rule = true;
        for &id in &self.nodes {
            self.add_node(id)?;
        }
        Ok(())
    }

    fn add_node(&self, id: NodeId) -> Result<(), NetError> {
        let ns = ns_name(id);
        let host = format!("{PREFIX}-v{id}");
        let inner = format!("{PREFIX}-p{id}");
        let cidr = format!("{}/24", self.addr(id));
        run(&["ip", "netns", "add", &ns])?;
        self.created().namespaces.push(ns.clone());
        run(&[
            "ip", "link", "add", &host, "type", "veth", "peer", "name", &inner,
        ])?;
        self.created().veths.push(host.clone());
        run(&["ip", "link", "set", &inner, "netns", &ns])?;
        run(&["ip", "link", "set", &host, "master", BRIDGE, "up"])?;
        run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
        run(&["ip", "-n", &ns, "addr", "add", &cidr, "dev", &inner])?;
        run(&["ip", "-n", &ns, "link", "set", &inner, "up"])?;
        for args in [
            vec!["-N", CHAIN],
            vec!["-I", "INPUT", "-j", CHAIN],
            vec!["-I", "OUTPUT", "-j", CHAIN],
        ] {
            let mut full = vec!["ip", "netns", "exec", &ns, "iptables"];
            full.extend(args);
            run(&full)?;
        }
        Ok(())
    }

    fn created(&self) -> std::sync::MutexGuard<'_, Created> {
        self.created.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Node `id`'s address.
    pub fn addr(&self, id: NodeId) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, id as u8)
    }

    /// The bridge's address (the harness's side).
    pub fn bridge_addr(&self) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, BRIDGE_HOST)
    }

    /// The nodes of this network.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    /// Makes every node drop traffic to and from the peers `blocked` names
    /// for it (a node not named drops nothing): the partition replaces
    /// the previous one atomically per namespace.
    pub async fn partition(
        &self,
        blocked: &BTreeMap<NodeId, BTreeSet<NodeId>>,
    ) -> Result<(), NetError> {
        for &id in &self.nodes {
            let mut rules = format!("*filter\n-F {CHAIN}\n");
            for peer in blocked.get(&id).into_iter().flatten() {
                let a = self.addr(*peer);
                rules.push_str(&format!("-A {CHAIN} -s {a}/32 -j DROP\n"));
                rules.push_str(&format!("-A {CHAIN} -d {a}/32 -j DROP\n"));
            }
            rules.push_str("COMMIT\n");
            restore(&ns_name(id), &rules).await?;
        }
        Ok(())
    }

    /// Removes every partition rule.
    pub async fn heal(&self) -> Result<(), NetError> {
        self.partition(&BTreeMap::new()).await
    }

    /// Removes what was created, in reverse order; keeps going past errors
    /// and returns them.
    pub fn teardown(&self) -> Vec<NetError> {
        let mut errors = Vec::new();
        let mut created = self.created();
        let namespaces = std::mem::take(&mut created.namespaces);
        for ns in namespaces.iter().rev() {
            kill_ns_pids(ns);
        }
        for veth in std::mem::take(&mut created.veths).iter().rev() {
            // Gone already if its namespace went with the processes.
            if link_exists(veth) {
                if let Err(e) = run(&["ip", "link", "del", veth]) {
                    errors.push(e);
                }
            }
        }
        for ns in namespaces.iter().rev() {
            if let Err(e) = run(&["ip", "netns", "del", ns]) {
                errors.push(e);
            }
        }
        if std::mem::take(&mut created.forward_rule) {
            if let Err(e) = run(&[
                "iptables", "-D", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT",
            ]) {
                errors.push(e);
            }
        }
        if std::mem::take(&mut created.bridge) {
            if let Err(e) = run(&["ip", "link", "del", BRIDGE]) {
                errors.push(e);
            }
        }
        errors
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for e in self.teardown() {
            eprintln!("topod-chaos: cleanup: {e}");
        }
    }
}

/// `iptables-restore --noflush` inside namespace `ns`.
async fn restore(ns: &str, rules: &str) -> Result<(), NetError> {
    let cmd = format!("ip netns exec {ns} iptables-restore --noflush");
    let mut child = tokio::process::Command::new("ip")
        .args(["netns", "exec", ns, "iptables-restore", "--noflush"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| NetError::Spawn {
            cmd: cmd.clone(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(rules.as_bytes())
            .await
            .map_err(|source| NetError::Spawn {
                cmd: cmd.clone(),
                source,
            })?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|source| NetError::Spawn {
            cmd: cmd.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(NetError::Failed {
            cmd,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// SIGKILLs every process still running in namespace `ns`.
fn kill_ns_pids(ns: &str) {
    let Ok(pids) = run(&["ip", "netns", "pids", ns]) else {
        return;
    };
    for pid in pids
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        let pid = nix::unistd::Pid::from_raw(pid);
        if let Err(e) = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL) {
            eprintln!("topod-chaos: cleanup: kill {pid} in {ns}: {e}");
        }
    }
}

/// Names of harness objects that exist now (namespaces, bridge).
fn leftovers() -> Result<Vec<String>, NetError> {
    let mut out: Vec<String> = run(&["ip", "netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("{PREFIX}-")))
        .map(str::to_string)
        .collect();
    out.extend(harness_links()?);
    Ok(out)
}

/// The harness's network links on the host: the bridge and veth host ends
/// (`tch-br`, `tch-v*`).
fn harness_links() -> Result<Vec<String>, NetError> {
    Ok(run(&["ip", "-o", "link", "show"])?
        .lines()
        .filter_map(link_name)
        .filter(|n| n == BRIDGE || n.starts_with(&format!("{PREFIX}-v")))
        .collect())
}

/// The interface name of one line of `ip -o link show`
/// (`137: tch-v1@if136: <BROADCAST,...`).
fn link_name(line: &str) -> Option<String> {
    let name = line.split(": ").nth(1)?;
    Some(name.split('@').next()?.to_string())
}

fn link_exists(name: &str) -> bool {
    run(&["ip", "link", "show", name]).is_ok()
}

/// Removes every harness object left by a run that did not clean up:
/// processes in its namespaces, the namespaces, the FORWARD rules, the
/// bridge. Returns what was removed.
pub fn cleanup_leftovers() -> Result<Vec<String>, NetError> {
    let mut removed = Vec::new();
    let links = harness_links()?;
    for name in leftovers()? {
        if links.contains(&name) {
            continue;
        }
        kill_ns_pids(&name);
        run(&["ip", "netns", "del", &name])?;
        removed.push(format!("namespace {name}"));
    }
    while run(&[
        "iptables", "-D", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT",
    ])
    .is_ok()
    {
        removed.push("FORWARD accept rule".to_string());
    }
    for link in links.iter().filter(|l| *l != BRIDGE) {
        if link_exists(link) {
            run(&["ip", "link", "del", link])?;
            removed.push(format!("veth {link}"));
        }
    }
    if link_exists(BRIDGE) {
        run(&["ip", "link", "del", BRIDGE])?;
        removed.push(format!("bridge {BRIDGE}"));
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::link_name;

    #[test]
    fn link_names_are_read_from_ip_o_link_lines() {
        let line = "137: tch-v1@if136: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue";
        assert_eq!(link_name(line).as_deref(), Some("tch-v1"));
        let line = "5: tch-br: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue";
        assert_eq!(link_name(line).as_deref(), Some("tch-br"));
        assert_eq!(link_name("garbage"), None);
    }
}
