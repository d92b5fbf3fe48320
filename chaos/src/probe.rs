//! The TCP check run before any node starts: a listener in every
//! namespace (this binary's hidden `probe-listen`, run with `ip netns
//! exec`), a connection to it from every other namespace (`probe-connect`)
//! and from the harness. Without it a broken setup would look like a
//! partition.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::netns::{ns_name, Net};

/// Port the probe listeners use (below the nodes' ports).
const PROBE_PORT: u16 = 7000;

/// `probe-listen ADDR`: accepts connections for `secs`, after printing
/// `ready` once bound.
pub async fn listen(addr: &str, secs: u64) -> anyhow::Result<()> {
    let l = TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind {addr}"))?;
    println!("ready");
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    while let Ok(accepted) = tokio::time::timeout_at(until, l.accept()).await {
        accepted.context("accept")?;
    }
    Ok(())
}

/// `probe-connect ADDR`: exits 0 once connected within 2 s.
pub async fn connect(addr: &str) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr))
        .await
        .with_context(|| format!("connect {addr}: timed out"))?
        .with_context(|| format!("connect {addr}"))?;
    Ok(())
}

/// Checks TCP from every namespace to every other one and from the harness
/// to each.
pub async fn check_mesh(net: &Net) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("this binary's path")?;
    let mut listeners = Vec::new();
    for &id in net.nodes() {
        let addr = format!("{}:{PROBE_PORT}", net.addr(id));
        let mut child = tokio::process::Command::new("ip")
            .args(["netns", "exec", &ns_name(id)])
            .arg(&exe)
            .args(["probe-listen", &addr, "30"])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting a probe listener")?;
        let out = child.stdout.take().context("listener stdout")?;
        let mut line = String::new();
        let mut reader = BufReader::new(out);
        let read = reader.read_line(&mut line);
        tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .with_context(|| format!("probe listener in {} did not start", ns_name(id)))?
            .context("reading the listener")?;
        if line.trim() != "ready" {
            bail!("probe listener in {}: {line}", ns_name(id));
        }
        listeners.push(child);
    }
    for &to in net.nodes() {
        let addr = format!("{}:{PROBE_PORT}", net.addr(to));
        connect(&addr)
            .await
            .with_context(|| format!("harness → node {to}"))?;
        for &from in net.nodes().iter().filter(|f| **f != to) {
            let st = tokio::process::Command::new("ip")
                .args(["netns", "exec", &ns_name(from)])
                .arg(&exe)
                .args(["probe-connect", &addr])
                .stdout(Stdio::null())
                .status()
                .await
                .context("starting a probe connection")?;
            if !st.success() {
                bail!("no TCP from node {from}'s namespace to node {to} ({addr})");
            }
        }
    }
    for mut l in listeners {
        l.kill().await.context("stopping a probe listener")?;
    }
    Ok(())
}
