//! The process layer against its baselines, measured in one run.
//!
//! - local: `node.send_from` to a local actor vs raw actix `Addr::do_send` of the same message.
//! - remote: small messages (about 64 bytes of payload) between two nodes over loopback vs a raw
//!   tokio TCP loop that writes the same length-prefixed bincode frames with the same batching
//!   (senders append to a shared buffer, one writer task swaps it out and writes it at once).
//! - rtt: ping-pong round trips between two nodes, and (printed on a line of its own) the same
//!   over a raw TCP connection, as its baseline.
//!
//! Ends by printing `summary local_vs_actix=R1 remote_vs_tcp=R2 remote_msgs_per_s=N rtt_us=T`.

use actix::{Actor, Arbiter, Context, Handler};
use criterion::{Criterion, Throughput};
use meso::codec;
use meso::process::{Incoming, Node, NodeConfig, Process, Upid, WireMessage};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{oneshot, Notify};

#[path = "support/arbiter.rs"]
mod arbiter;
use arbiter::on_arbiter;

const BODY_BYTES: usize = 55;
const CHUNK: u64 = 1000;

#[derive(Clone, Serialize, Deserialize)]
struct Small {
    seq: u64,
    body: Vec<u8>,
}

impl WireMessage for Small {
    const NAME: &'static str = "bench.Small";
}

impl actix::Message for Small {
    type Result = ();
}

fn small(seq: u64) -> Small {
    Small {
        seq,
        body: vec![7u8; BODY_BYTES],
    }
}

/// Counts messages; says when `target` have arrived.
struct Counter {
    target: u64,
    seen: u64,
    done: Option<oneshot::Sender<()>>,
}

impl Counter {
    fn new(target: u64) -> (Counter, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (
            Counter {
                target,
                seen: 0,
                done: Some(tx),
            },
            rx,
        )
    }

    fn count(&mut self) {
        self.seen += 1;
        if self.seen == self.target {
            if let Some(done) = self.done.take() {
                let _ = done.send(());
            }
        }
    }
}

impl Actor for Counter {
    type Context = Context<Self>;
}

impl Handler<Small> for Counter {
    type Result = ();
    fn handle(&mut self, m: Small, _: &mut Context<Self>) {
        std::hint::black_box(m.seq);
        self.count();
    }
}

impl Handler<Incoming<Small>> for Counter {
    type Result = ();
    fn handle(&mut self, m: Incoming<Small>, _: &mut Context<Self>) {
        std::hint::black_box(m.msg.seq);
        self.count();
    }
}

fn bench_config() -> NodeConfig {
    // The sender outruns loopback on purpose; nothing may be dropped while it does.
    NodeConfig {
        max_queued_bytes: 1 << 30,
        ..NodeConfig::default()
    }
}

fn local_node(n: u64) -> Duration {
    actix_rt::System::new().block_on(async move {
        let node = Node::start(bench_config()).await.unwrap();
        let (counter, done) = Counter::new(n);
        let (to, _addr) = node
            .actor::<Counter>("counter")
            .handle::<Small>()
            .start(counter)
            .unwrap();
        let from = node.upid("bench").unwrap();
        let start = Instant::now();
        let mut seq = 0;
        while seq < n {
            for _ in 0..CHUNK.min(n - seq) {
                node.send_from(&from, &to, small(seq));
                seq += 1;
            }
            tokio::task::yield_now().await;
        }
        done.await.unwrap();
        start.elapsed()
    })
}

fn local_actix(n: u64) -> Duration {
    actix_rt::System::new().block_on(async move {
        let (counter, done) = Counter::new(n);
        let addr = counter.start();
        let start = Instant::now();
        let mut seq = 0;
        while seq < n {
            for _ in 0..CHUNK.min(n - seq) {
                addr.do_send(small(seq));
                seq += 1;
            }
            tokio::task::yield_now().await;
        }
        done.await.unwrap();
        start.elapsed()
    })
}

fn remote_node(n: u64) -> Duration {
    actix_rt::System::new().block_on(async move {
        let a = Node::start(bench_config()).await.unwrap();
        let arbiter = Arbiter::new();
        let (b, to, done) = on_arbiter(&arbiter, move || async move {
            let b = Node::start(bench_config()).await.unwrap();
            let (counter, done) = Counter::new(n);
            let (to, _) = b
                .actor::<Counter>("counter")
                .handle::<Small>()
                .start(counter)
                .unwrap();
            (b, to, done)
        })
        .await;
        let from = a.upid("bench").unwrap();
        let start = Instant::now();
        let mut seq = 0;
        while seq < n {
            for _ in 0..CHUNK.min(n - seq) {
                a.send_from(&from, &to, small(seq));
                seq += 1;
            }
            tokio::task::yield_now().await;
        }
        done.await.unwrap();
        let elapsed = start.elapsed();
        assert_eq!(a.stats().dropped() + b.stats().dropped(), 0);
        arbiter.stop();
        elapsed
    })
}

/// The baseline: the same frames, the same shared buffer and one writer task, no process layer.
fn remote_tcp(n: u64) -> Duration {
    actix_rt::System::new().block_on(async move {
        let arbiter = Arbiter::new();
        let (addr, done) = on_arbiter(&arbiter, move || async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (tx, done) = oneshot::channel::<()>();
            actix_rt::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
                let mut seen = 0u64;
                loop {
                    let mut pos = 0;
                    while let Some(len) = codec::frame_len(&buf[pos..]) {
                        let end = pos + 4 + len;
                        if end > buf.len() {
                            break;
                        }
                        let env = codec::decode_envelope(&buf[pos + 4..end]).unwrap();
                        let m: Small = codec::decode(env.payload).unwrap();
                        std::hint::black_box(m.seq);
                        seen += 1;
                        pos = end;
                    }
                    buf.drain(..pos);
                    if seen == n {
                        let _ = tx.send(());
                        return;
                    }
                    if buf.capacity() - buf.len() < 16 * 1024 {
                        buf.reserve(64 * 1024);
                    }
                    if s.read_buf(&mut buf).await.unwrap() == 0 {
                        return;
                    }
                }
            });
            (addr, done)
        })
        .await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let shared = Arc::new((Mutex::new(Vec::<u8>::new()), Notify::new()));
        let writer = shared.clone();
        actix_rt::spawn(async move {
            let mut spare = Vec::new();
            loop {
                std::mem::swap(&mut *writer.0.lock(), &mut spare);
                if spare.is_empty() {
                    writer.1.notified().await;
                    continue;
                }
                stream.write_all(&spare).await.unwrap();
                spare.clear();
            }
        });
        let start = Instant::now();
        let mut seq = 0;
        while seq < n {
            for _ in 0..CHUNK.min(n - seq) {
                let mut buf = shared.0.lock();
                let was_empty = buf.is_empty();
                codec::encode_frame(&mut buf, "bench", "counter", Small::NAME, &small(seq))
                    .unwrap();
                drop(buf);
                if was_empty {
                    shared.1.notify_one();
                }
                seq += 1;
            }
            tokio::task::yield_now().await;
        }
        done.await.unwrap();
        let elapsed = start.elapsed();
        arbiter.stop();
        elapsed
    })
}

struct Pinger {
    process: Process,
    target: Upid,
    left: u64,
    sent_at: Instant,
    rtts: Vec<Duration>,
    done: Option<oneshot::Sender<Vec<Duration>>>,
}

impl Actor for Pinger {
    type Context = Context<Self>;
}

impl Handler<Incoming<Small>> for Pinger {
    type Result = ();
    fn handle(&mut self, _: Incoming<Small>, _: &mut Context<Self>) {
        self.rtts.push(self.sent_at.elapsed());
        self.left -= 1;
        if self.left == 0 {
            if let Some(done) = self.done.take() {
                let _ = done.send(std::mem::take(&mut self.rtts));
            }
            return;
        }
        self.sent_at = Instant::now();
        self.process.send(&self.target, small(self.left));
    }
}

struct Echo {
    process: Process,
}

impl Actor for Echo {
    type Context = Context<Self>;
}

impl Handler<Incoming<Small>> for Echo {
    type Result = ();
    fn handle(&mut self, m: Incoming<Small>, _: &mut Context<Self>) {
        self.process.send(&m.from, m.msg);
    }
}

/// Median round trip of `n` sequential pings, in microseconds.
fn rtt_us(n: u64) -> f64 {
    actix_rt::System::new().block_on(async move {
        let a = Node::start(bench_config()).await.unwrap();
        let arbiter = Arbiter::new();
        let (_b, echo) = on_arbiter(&arbiter, move || async move {
            let b = Node::start(bench_config()).await.unwrap();
            let process = b.process("echo").unwrap();
            let (echo, _) = b
                .actor::<Echo>("echo")
                .handle::<Small>()
                .start(Echo { process })
                .unwrap();
            (b, echo)
        })
        .await;
        let (tx, rx) = oneshot::channel();
        let process = a.process("pinger").unwrap();
        let pinger = Pinger {
            process: process.clone(),
            target: echo.clone(),
            left: n + 100, // the first 100 warm the connection up and are not counted
            sent_at: Instant::now(),
            rtts: Vec::new(),
            done: Some(tx),
        };
        a.actor::<Pinger>("pinger")
            .handle::<Small>()
            .start(pinger)
            .unwrap();
        process.send(&echo, small(0));
        let mut rtts = rx.await.unwrap();
        rtts.drain(..100);
        rtts.sort();
        arbiter.stop();
        rtts[rtts.len() / 2].as_secs_f64() * 1e6
    })
}

/// The baseline of `rtt_us`: the same frames ping-ponged over one raw tokio TCP connection, the
/// echo on another thread as the echo node is. On a virtual machine whose idle cores sleep, a
/// round trip is mostly the wake-up of the other core; this tells how much.
fn rtt_tcp_us(n: u64) -> f64 {
    actix_rt::System::new().block_on(async move {
        let arbiter = Arbiter::new();
        let addr = on_arbiter(&arbiter, || async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            actix_rt::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                s.set_nodelay(true).unwrap();
                let mut frame = Vec::new();
                while read_frame(&mut s, &mut frame).await {
                    s.write_all(&frame).await.unwrap();
                }
            });
            addr
        })
        .await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        let (mut out, mut back) = (Vec::new(), Vec::new());
        let mut rtts = Vec::with_capacity(n as usize);
        for seq in 0..n + 100 {
            out.clear();
            codec::encode_frame(&mut out, "pinger", "echo", Small::NAME, &small(seq)).unwrap();
            let sent = Instant::now();
            s.write_all(&out).await.unwrap();
            assert!(read_frame(&mut s, &mut back).await, "the echo went away");
            let env = codec::decode_envelope(&back[codec::LEN_PREFIX_BYTES..]).unwrap();
            let m: Small = codec::decode(env.payload).unwrap();
            std::hint::black_box(m.seq);
            rtts.push(sent.elapsed());
        }
        rtts.drain(..100);
        rtts.sort();
        arbiter.stop();
        rtts[rtts.len() / 2].as_secs_f64() * 1e6
    })
}

/// Reads one whole frame (length prefix included) into `frame`; false at the end of the stream.
async fn read_frame(s: &mut tokio::net::TcpStream, frame: &mut Vec<u8>) -> bool {
    let mut prefix = [0u8; codec::LEN_PREFIX_BYTES];
    if s.read_exact(&mut prefix).await.is_err() {
        return false;
    }
    let len = u32::from_be_bytes(prefix) as usize;
    frame.clear();
    frame.extend_from_slice(&prefix);
    frame.resize(codec::LEN_PREFIX_BYTES + len, 0);
    s.read_exact(&mut frame[codec::LEN_PREFIX_BYTES..])
        .await
        .is_ok()
}

fn per_second(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn criterion_groups(c: &mut Criterion) {
    let mut g = c.benchmark_group("local");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    g.bench_function("node_send", |b| b.iter_custom(|n| local_node(n.max(CHUNK))));
    g.bench_function("actix_do_send", |b| {
        b.iter_custom(|n| local_actix(n.max(CHUNK)))
    });
    g.finish();
    let mut g = c.benchmark_group("remote");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    g.bench_function("node_send", |b| {
        b.iter_custom(|n| remote_node(n.max(CHUNK)))
    });
    g.bench_function("raw_tcp_frames", |b| {
        b.iter_custom(|n| remote_tcp(n.max(CHUNK)))
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    criterion_groups(&mut c);

    // The summary: alternating runs of each pair, medians of throughput and of the ratios.
    let (local_n, remote_n, rounds) = (1_000_000, 1_000_000, 5);
    // One kind of run only, for a profiler: MAILBOX_PROFILE=local|remote.
    if let Ok(kind) = std::env::var("MAILBOX_PROFILE") {
        for _ in 0..10 {
            if kind == "local" {
                local_node(local_n);
            } else {
                remote_node(remote_n);
            }
        }
        return;
    }
    let (mut local_ratio, mut remote_ratio, mut remote_rate) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let node = per_second(local_n, local_node(local_n));
        let actix = per_second(local_n, local_actix(local_n));
        local_ratio.push(node / actix);
        let node = per_second(remote_n, remote_node(remote_n));
        let tcp = per_second(remote_n, remote_tcp(remote_n));
        remote_ratio.push(node / tcp);
        remote_rate.push(node);
    }
    let rtt = rtt_us(10_000);
    let rtt_tcp = rtt_tcp_us(10_000);
    c.final_summary();
    println!(
        "baseline rtt_tcp_us={rtt_tcp:.1} (raw TCP ping-pong of the same frames; rtt_us/rtt_tcp_us={:.2})",
        rtt / rtt_tcp
    );
    println!(
        "summary local_vs_actix={:.2} remote_vs_tcp={:.2} remote_msgs_per_s={:.0} rtt_us={:.1}",
        median(local_ratio),
        median(remote_ratio),
        median(remote_rate),
        rtt
    );
}
