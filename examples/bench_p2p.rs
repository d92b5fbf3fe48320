//! Point-to-point throughput and latency between two nodes through the
//! embedding API (`send` → `subscribe`), side by side with a plain tokio
//! `TcpStream` pair on loopback using the same framing (u32 big-endian
//! length + payload, same frame sizes). Issue 4, "Figures to measure".
//!
//! ```sh
//! cargo run --release --example bench_p2p -- --secs 5
//! cargo run --release --example bench_p2p -- --size 100 --secs 5 --only node
//! cargo run --release --example bench_p2p -- --size 100 --secs 5 --only node --batch
//! ```
//!
//! `--batch` adds a row per size with `ExecutorHandle::send_many` (64
//! messages per call) instead of one `send` per message.
//!
//! Both nodes run in this process (one tokio runtime, `--threads` worker
//! threads) with the real TCP data plane on 127.0.0.1, as a 2-node cluster
//! on full_mesh. Throughput: one pipelined sender (`ExecutorHandle::send`
//! in a loop) for `--secs`, with at most `--window` messages in flight
//! (the receiver returns credits every 64 messages), one subscriber
//! counting what arrives; the rate is messages received over the time from
//! the first send to the last receipt. Latency: ping-pong, node 1 sends,
//! node 2's subscriber echoes with `send`, node 1 measures the round trip.
//! The plain-TCP rows do the same over one socket pair: the writer puts
//! small frames through a 256 KiB `BufWriter` and writes a large frame's
//! length and payload with one vectored write (no copy, as topod does); the
//! reader splits frames out of one buffer grown in 512 KiB steps, as
//! topod's does.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "../tests/dataplane_common/mod.rs"]
mod dataplane_common;

use std::io::IoSlice;
use std::time::Duration;

use anyhow::{bail, Result};
use bytes::{Buf, Bytes, BytesMut};
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use topod::executor::{Event, ExecutorHandle};

#[derive(Parser, Debug)]
#[command(about = "Point-to-point throughput and latency: topod send/subscribe vs plain TCP")]
struct Args {
    /// Message sizes in bytes (repeatable). Default: 100 and 65536.
    #[arg(long = "size")]
    sizes: Vec<usize>,
    /// Seconds of each throughput run.
    #[arg(long, default_value_t = 5)]
    secs: u64,
    /// Round trips of each latency run (after 200 warm-up ones).
    #[arg(long, default_value_t = 5000)]
    pings: usize,
    /// Worker threads of the tokio runtime.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Messages in flight at most (sent, not yet received) in the topod
    /// throughput run; 0 for none. A subscription drops what it cannot
    /// keep up with (`Lagged`), where TCP's own flow control holds the
    /// plain-TCP sender back: the window is the equivalent. Default: half
    /// the default subscriber queue (4096).
    #[arg(long, default_value_t = 2048)]
    window: usize,
    /// Also measure the topod throughput with `send_many` (batches of 64,
    /// one per credit grant) besides plain `send`.
    #[arg(long)]
    batch: bool,
    /// Run only `node` or only `tcp`.
    #[arg(long)]
    only: Option<String>,
}

#[derive(Debug, Default, Clone)]
struct Row {
    path: &'static str,
    size: usize,
    sent: u64,
    received: u64,
    lagged: u64,
    secs: f64,
    p50_us: f64,
    p99_us: f64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    cluster::init_tracing();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let sizes = if args.sizes.is_empty() {
        vec![100, 64 * 1024]
    } else {
        args.sizes.clone()
    };
    let secs = Duration::from_secs(args.secs);
    let mut rows = Vec::new();
    let want = |what: &str| args.only.as_deref().is_none_or(|o| o == what);
    if want("tcp") {
        for &size in &sizes {
            let mut r = tcp_throughput(size, secs).await?;
            let (p50, p99) = tcp_latency(size, args.pings).await?;
            (r.p50_us, r.p99_us) = (p50, p99);
            rows.push(r);
        }
    }
    if want("node") {
        let c = cluster::start(2).await;
        for &size in &sizes {
            let mut r =
                node_throughput(c.exec(1), c.exec(2), size, secs, args.window, false).await?;
            let (p50, p99) = node_latency(c.exec(1), c.exec(2), size, args.pings).await?;
            (r.p50_us, r.p99_us) = (p50, p99);
            rows.push(r);
            if args.batch {
                rows.push(
                    node_throughput(c.exec(1), c.exec(2), size, secs, args.window, true).await?,
                );
            }
        }
        c.shutdown().await;
    }
    print_table(&rows);
    Ok(())
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| path | size B | msgs/s | MB/s | sent | received | lagged | RTT p50 µs | RTT p99 µs | vs TCP (msgs/s) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let rate = r.received as f64 / r.secs;
        let tcp = rows
            .iter()
            .find(|t| t.path == "plain TCP" && t.size == r.size)
            .map(|t| t.received as f64 / t.secs);
        let vs = match tcp {
            Some(t) if r.path != "plain TCP" => format!("{:.0} %", 100.0 * rate / t),
            _ => "-".into(),
        };
        println!(
            "| {} | {} | {:.0} | {:.1} | {} | {} | {} | {:.0} | {:.0} | {} |",
            r.path,
            r.size,
            rate,
            rate * r.size as f64 / 1e6,
            r.sent,
            r.received,
            r.lagged,
            r.p50_us,
            r.p99_us,
            vs
        );
    }
}

fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_secs_f64() * 1e6;
    (at(0.50), at(0.99))
}

// ---- through the embedding API ----

async fn node_throughput(
    a: &ExecutorHandle,
    b: &ExecutorHandle,
    size: usize,
    secs: Duration,
    window: usize,
    batch: bool,
) -> Result<Row> {
    let channel = format!("tp-{size}-{batch}");
    // Credits for the sender, returned by the receiver in batches.
    let credits = std::sync::Arc::new(tokio::sync::Semaphore::new(if window == 0 {
        tokio::sync::Semaphore::MAX_PERMITS
    } else {
        window
    }));
    let returned = credits.clone();
    let mut sub = b.subscribe(&channel).await?;
    let payload = Bytes::from(vec![7u8; size]);
    let start = Instant::now();
    let counter = tokio::spawn(async move {
        let (mut got, mut lagged, mut last) = (0u64, 0u64, Instant::now());
        // Ends at the sender's empty end marker (the newest message, so a
        // lagging subscriber still gets it), or after a generous deadline.
        let deadline = tokio::time::sleep(secs + Duration::from_secs(30));
        tokio::pin!(deadline);
        loop {
            let ev = tokio::select! {
                ev = sub.recv() => ev,
                _ = &mut deadline => break,
            };
            match ev {
                Some(Event::Message(m)) if m.payload.is_empty() => {
                    last = Instant::now();
                    break;
                }
                Some(Event::Message(_)) => {
                    got += 1;
                    if got % 64 == 0 {
                        returned.add_permits(64);
                    }
                }
                Some(Event::Lagged(n)) => lagged += n,
                None => break,
            }
            // A clock read per message would cost the receiver ~5 %.
            if got % 64 == 0 {
                last = Instant::now();
            }
        }
        (got, lagged, last)
    });
    let mut sent = 0u64;
    while start.elapsed() < secs {
        if window > 0 {
            credits.acquire_many(64).await?.forget();
        }
        if batch {
            let many = std::iter::repeat_n(payload.clone(), 64);
            a.send_many(b.node_id(), &channel, many).await?;
        } else {
            for _ in 0..64 {
                a.send(b.node_id(), &channel, payload.clone()).await?;
            }
        }
        sent += 64;
    }
    a.send(b.node_id(), &channel, Bytes::new()).await?;
    let (received, lagged, last) = counter.await?;
    Ok(Row {
        path: if batch {
            "topod send_many/subscribe"
        } else {
            "topod send/subscribe"
        },
        size,
        sent,
        received,
        lagged,
        secs: (last - start).as_secs_f64(),
        ..Row::default()
    })
}

async fn node_latency(
    a: &ExecutorHandle,
    b: &ExecutorHandle,
    size: usize,
    pings: usize,
) -> Result<(f64, f64)> {
    let (ping, pong) = (format!("ping-{size}"), format!("pong-{size}"));
    let mut on_b = b.subscribe(&ping).await?;
    let mut on_a = a.subscribe(&pong).await?;
    let (b2, a_id, pong2) = (b.clone(), a.node_id(), pong.clone());
    let echo = tokio::spawn(async move {
        while let Some(Event::Message(d)) = on_b.recv().await {
            if b2.send(a_id, &pong2, d.payload).await.is_err() {
                break;
            }
        }
    });
    let payload = Bytes::from(vec![1u8; size]);
    let mut rtts = Vec::with_capacity(pings);
    for i in 0..pings + 200 {
        let t0 = Instant::now();
        a.send(b.node_id(), &ping, payload.clone()).await?;
        match tokio::time::timeout(Duration::from_secs(5), on_a.recv()).await {
            Ok(Some(Event::Message(_))) => {}
            other => bail!("ping {i}: no pong ({other:?})"),
        }
        if i >= 200 {
            rtts.push(t0.elapsed());
        }
    }
    echo.abort();
    Ok(percentiles(rtts))
}

// ---- plain TCP, same framing ----

async fn tcp_pair() -> Result<(TcpStream, TcpStream)> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    let (a, b) = tokio::join!(TcpStream::connect(addr), l.accept());
    let (a, (b, _)) = (a?, b?);
    a.set_nodelay(true)?;
    b.set_nodelay(true)?;
    Ok((a, b))
}

/// Reads one frame, or `None` at a clean end of stream.
async fn read_frame(
    r: &mut (impl AsyncReadExt + Unpin),
    buf: &mut BytesMut,
) -> Result<Option<Bytes>> {
    loop {
        if buf.len() >= 4 {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if buf.len() >= 4 + len {
                buf.advance(4);
                return Ok(Some(buf.split_to(len).freeze()));
            }
            buf.reserve(4 + len - buf.len());
        }
        if buf.capacity() - buf.len() < 64 * 1024 {
            buf.reserve(512 * 1024);
        }
        if r.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    }
}

async fn write_frame(w: &mut (impl AsyncWriteExt + Unpin), payload: &[u8]) -> Result<()> {
    w.write_all(&(payload.len() as u32).to_be_bytes()).await?;
    w.write_all(payload).await?;
    Ok(())
}

async fn write_vectored_frame(w: &mut TcpStream, payload: &[u8]) -> Result<()> {
    let prefix = (payload.len() as u32).to_be_bytes();
    let mut done = 0;
    let total = prefix.len() + payload.len();
    while done < total {
        let n = if done < prefix.len() {
            let parts = [IoSlice::new(&prefix[done..]), IoSlice::new(payload)];
            w.write_vectored(&parts).await?
        } else {
            w.write(&payload[done - prefix.len()..]).await?
        };
        if n == 0 {
            bail!("socket closed");
        }
        done += n;
    }
    Ok(())
}

async fn tcp_throughput(size: usize, secs: Duration) -> Result<Row> {
    let (a, mut b) = tcp_pair().await?;
    let start = Instant::now();
    let counter = tokio::spawn(async move {
        let mut buf = BytesMut::with_capacity(256 * 1024);
        let (mut got, mut last) = (0u64, Instant::now());
        while let Some(f) = read_frame(&mut b, &mut buf).await? {
            std::hint::black_box(f);
            got += 1;
            if got % 64 == 0 {
                last = Instant::now();
            }
        }
        anyhow::Ok((got, last))
    });
    let payload = Bytes::from(vec![7u8; size]);
    // Every frame through one 256 KiB buffer: one copy, large writes.
    let mut w = BufWriter::with_capacity(256 * 1024, a);
    let mut sent = 0u64;
    while start.elapsed() < secs {
        for _ in 0..64 {
            if size > 8 * 1024 {
                // Large frames as topod writes them: length and payload in
                // one vectored write, the payload not copied.
                w.flush().await?;
                write_vectored_frame(w.get_mut(), &payload).await?;
            } else {
                write_frame(&mut w, &payload).await?;
            }
        }
        sent += 64;
    }
    w.shutdown().await?;
    drop(w);
    let (received, last) = counter.await??;
    Ok(Row {
        path: "plain TCP",
        size,
        sent,
        received,
        secs: (last - start).as_secs_f64(),
        ..Row::default()
    })
}

async fn tcp_latency(size: usize, pings: usize) -> Result<(f64, f64)> {
    let (a, b) = tcp_pair().await?;
    // Buffered and flushed per frame: prefix and payload in one write.
    let (mut a, mut b) = (BufWriter::new(a), BufWriter::new(b));
    let echo = tokio::spawn(async move {
        let mut buf = BytesMut::with_capacity(256 * 1024);
        while let Some(f) = read_frame(&mut b, &mut buf).await? {
            write_frame(&mut b, &f).await?;
            b.flush().await?;
        }
        anyhow::Ok(())
    });
    let payload = vec![1u8; size];
    let mut buf = BytesMut::with_capacity(256 * 1024);
    let mut rtts = Vec::with_capacity(pings);
    for i in 0..pings + 200 {
        let t0 = Instant::now();
        write_frame(&mut a, &payload).await?;
        a.flush().await?;
        if read_frame(&mut a, &mut buf).await?.is_none() {
            bail!("echo closed");
        }
        if i >= 200 {
            rtts.push(t0.elapsed());
        }
    }
    drop(a);
    echo.await??;
    Ok(percentiles(rtts))
}
