//! The process layer between nodes in one OS process, over real loopback TCP.

mod support {
    pub mod collector;
    pub mod echo;
}

use meso::codec;
use meso::process::handshake::{Hello, VERSION};
use meso::process::{FaultConfig, Node, NodeConfig, Upid};
use std::net::SocketAddr;
use std::time::Duration;
use support::collector::{Event, Probe, StopCollector};
use support::echo::Ping;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn node() -> Node {
    Node::start(NodeConfig::default()).await.unwrap()
}

async fn pongs(probe: &mut Probe, n: u64) -> Vec<u64> {
    let mut seqs = Vec::new();
    while (seqs.len() as u64) < n {
        if let Event::Pong { seq, .. } = probe.next("pongs").await {
            seqs.push(seq);
        }
    }
    seqs
}

/// Port 0 picks a free port, and the Upid shows the real one.
#[actix_rt::test]
async fn upid_shows_the_bound_port() {
    let a = node().await;
    assert_ne!(a.addr().port(), 0);
    assert_eq!(a.upid("x").unwrap().to_string(), format!("x@{}", a.addr()));
}

/// A message goes from a to b and the answer comes back over the connection a dialed: b never
/// dials a, so a node behind NAT is answered.
#[actix_rt::test]
async fn both_directions_over_one_connection() {
    let (a, b) = (node().await, node().await);
    let mut pa = Probe::start(&a, "pa");
    let mut pb = Probe::start(&b, "pb");
    pa.ping(&pb.upid, 1);
    assert_eq!(
        pb.next("ping").await,
        Event::Ping {
            from: pa.upid.clone(),
            seq: 1
        }
    );
    assert_eq!(
        pa.next("pong").await,
        Event::Pong {
            from: pb.upid.clone(),
            seq: 1
        }
    );
    // b starts a conversation of its own: still the same connection.
    pb.ping(&pa.upid, 2);
    assert_eq!(
        pa.next("ping from b").await,
        Event::Ping {
            from: pb.upid.clone(),
            seq: 2
        }
    );
    assert_eq!(
        pb.next("pong from a").await,
        Event::Pong {
            from: pa.upid.clone(),
            seq: 2
        }
    );
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!((sa.connections_dialed, sa.connections_accepted), (1, 0));
    assert_eq!((sb.connections_dialed, sb.connections_accepted), (0, 1));
}

/// A node that stops listening after it dialed out can still be answered (a framework behind NAT).
#[actix_rt::test]
async fn a_node_that_cannot_be_dialed_is_answered() {
    let (a, b) = (node().await, node().await);
    let mut pa = Probe::start(&a, "pa");
    let pb = Probe::start(&b, "pb");
    pa.ping(&pb.upid, 1);
    assert!(matches!(pa.next("pong").await, Event::Pong { seq: 1, .. }));
    a.stop_listening();
    assert!(
        TcpStream::connect(a.addr()).await.is_err(),
        "a still listens"
    );
    pa.ping(&pb.upid, 2);
    assert!(matches!(pa.next("pong").await, Event::Pong { seq: 2, .. }));
}

/// FIFO per (sender, receiver) pair: 10,000 messages arrive in the order sent.
#[actix_rt::test]
async fn fifo_per_sender_receiver_pair() {
    let (a, b) = (node().await, node().await);
    let mut pa = Probe::start(&a, "pa");
    let pb = Probe::start(&b, "pb");
    for seq in 0..10_000 {
        pa.ping(&pb.upid, seq);
    }
    assert_eq!(
        pongs(&mut pa, 10_000).await,
        (0..10_000).collect::<Vec<_>>()
    );
    assert_eq!(b.stats().dropped(), 0);
}

fn unused_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Linking to an address where nobody listens gives `Exited` promptly, once.
#[actix_rt::test]
async fn link_to_an_unreachable_node_exits() {
    let a = node().await;
    let mut pa = Probe::start(&a, "pa");
    let ghost: Upid = format!("ghost@{}", unused_addr()).parse().unwrap();
    pa.process.link(&ghost);
    assert_eq!(pa.next("exited").await, Event::Exited(ghost));
    assert_eq!(pa.drain(Duration::from_millis(300)).await, vec![]);
}

/// Linking to a local actor that goes away fires too, and so does a link to a name never registered.
#[actix_rt::test]
async fn local_links_fire_on_unregister() {
    let a = node().await;
    let mut pa = Probe::start(&a, "pa");
    let pb = Probe::start(&a, "pb");
    pa.process.link(&pb.upid);
    a.unregister("pb");
    assert_eq!(pa.next("exited").await, Event::Exited(pb.upid.clone()));
    let nobody = a.upid("nobody").unwrap();
    pa.process.link(&nobody);
    assert_eq!(pa.next("exited").await, Event::Exited(nobody));
}

/// A peer that goes away and comes back on the same address with a new incarnation: the link
/// fires exactly once; what is sent after the loss was seen goes to the new process.
#[actix_rt::test]
async fn a_restarted_peer_fires_exited_once_and_new_frames_reach_the_new_one() {
    let a = node().await;
    let mut pa = Probe::start(&a, "pa");
    let b = node().await;
    let addr = b.addr();
    let pb = Probe::start(&b, "pb");
    pa.process.link(&pb.upid);
    pa.ping(&pb.upid, 1);
    assert!(matches!(pa.next("pong").await, Event::Pong { seq: 1, .. }));
    let old_incarnation = b.incarnation();
    b.shutdown();
    assert_eq!(pa.next("exited").await, Event::Exited(pb.upid.clone()));
    // Sent while b is away: a reconnects with backoff and delivers to whoever answers.
    for seq in 100..110 {
        pa.ping(&pb.upid, seq);
    }
    let b2 = Node::start(NodeConfig::listen(addr)).await.unwrap();
    assert_ne!(b2.incarnation(), old_incarnation);
    let mut pb2 = Probe::start(&b2, "pb");
    pa.process.link(&pb2.upid);
    for seq in 100..110 {
        assert_eq!(
            pb2.next("queued ping").await,
            Event::Ping {
                from: pa.upid.clone(),
                seq
            }
        );
    }
    // The old link fired once only; the new link is live and fires when b2 goes.
    let pongs = pa.drain(Duration::from_millis(300)).await;
    assert!(
        pongs.iter().all(|e| matches!(e, Event::Pong { .. })),
        "{pongs:?}"
    );
    b2.shutdown();
    assert_eq!(
        pa.next("exited of b2").await,
        Event::Exited(pb2.upid.clone())
    );
}

/// A peer restarting and dialing in before the old connection is seen to close: the hello with a
/// new incarnation alone makes the old links fire.
#[actix_rt::test]
async fn a_new_incarnation_alone_fires_links() {
    let a = node().await;
    let mut pa = Probe::start(&a, "pa");
    let b_addr: SocketAddr = unused_addr();
    // Pretend to be a node at b_addr with incarnation 1, then with incarnation 2.
    let mut first = raw_peer(a.addr(), b_addr, 1).await;
    let b_actor: Upid = format!("pb@{b_addr}").parse().unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    pa.process.link(&b_actor);
    let _second = raw_peer(a.addr(), b_addr, 2).await;
    assert_eq!(pa.next("exited").await, Event::Exited(b_actor));
    // The old connection was closed by a.
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), first.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "old connection still open: {read:?}"
    );
}

/// A connection that answers with the dialing node's own hello is the node talking to itself (as
/// a TCP self-connect to a port nobody listens on would): it is refused, and links to that
/// address fire as for any unreachable node.
#[actix_rt::test]
async fn a_peer_that_answers_with_our_own_hello_is_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    actix_rt::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            actix_rt::spawn(async move {
                let mut buf = [0u8; 256];
                if let Ok(n) = s.read(&mut buf).await {
                    let _ = s.write_all(&buf[..n]).await;
                }
                tokio::time::sleep(Duration::from_secs(10)).await;
            });
        }
    });
    let a = node().await;
    let mut pa = Probe::start(&a, "pa");
    let mirror: Upid = format!("mirror@{addr}").parse().unwrap();
    pa.process.link(&mirror);
    assert_eq!(pa.next("exited").await, Event::Exited(mirror));
    assert_eq!(a.stats().connections_dialed, 0);
}

/// Dials `to` and handshakes as the node `me` with `incarnation`.
async fn raw_peer(to: SocketAddr, me: SocketAddr, incarnation: u64) -> TcpStream {
    let mut s = TcpStream::connect(to).await.unwrap();
    s.write_all(
        &Hello {
            version: VERSION,
            incarnation,
            addr: me,
        }
        .encode(),
    )
    .await
    .unwrap();
    let mut fixed = [0u8; meso::process::handshake::FIXED_HELLO_BYTES];
    s.read_exact(&mut fixed).await.unwrap();
    let (_, _, len) = Hello::decode_fixed(&fixed).unwrap();
    let mut rest = vec![0u8; len];
    s.read_exact(&mut rest).await.unwrap();
    s
}

fn frame(from: &str, to: &str, name: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in [from, to, name] {
        body.push(part.len() as u8);
        body.extend_from_slice(part.as_bytes());
    }
    body.extend_from_slice(payload);
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

async fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// A raw client sends garbage, unknown names, unknown actors, undecodable payloads and an
/// oversized length; a well-behaved peer on the same node keeps exchanging messages, nothing lost.
#[actix_rt::test]
async fn bad_input_closes_one_connection_and_loses_nothing_else() {
    let b = node().await;
    let mut pb = Probe::start(&b, "pb");
    let a = node().await;
    let mut pa = Probe::start(&a, "pa");
    let mut next_seq = 0u64;
    let pb_upid = pb.upid.clone();
    let mut exchange = |pa: &Probe| {
        for _ in 0..200 {
            pa.ping(&pb_upid, next_seq);
            next_seq += 1;
        }
    };

    exchange(&pa);
    // Garbage instead of a handshake: that connection is closed.
    let mut http = TcpStream::connect(b.addr()).await.unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(closed(&mut http).await, "garbage handshake left open");
    exchange(&pa);

    let raw_addr = unused_addr();
    let mut raw = raw_peer(b.addr(), raw_addr, 9).await;
    let ping = codec::encode(&Ping {
        seq: 77,
        body: "raw".into(),
    })
    .unwrap();
    raw.write_all(&frame("r", "pb", "test.Nope", &ping))
        .await
        .unwrap();
    raw.write_all(&frame("r", "nobody", "test.Ping", &ping))
        .await
        .unwrap();
    raw.write_all(&frame("r", "pb", "test.Ping", &[0xff, 0xff, 0xff]))
        .await
        .unwrap();
    raw.write_all(&frame("r", "pb", "test.Ping", &[]))
        .await
        .unwrap();
    raw.write_all(&[0, 0, 0, 2, 9, 9]).await.unwrap(); // envelope cut short
    exchange(&pa);
    // The raw connection still lives: a good frame on it is delivered, and answered over it.
    raw.write_all(&frame("r", "pb", "test.Ping", &ping))
        .await
        .unwrap();
    let from_raw: Upid = format!("r@{raw_addr}").parse().unwrap();
    let mut seen_raw = false;
    let mut pings = Vec::new();
    while !seen_raw || pings.len() < 600 {
        match pb.next("pings").await {
            Event::Ping { from, seq } if from == from_raw => {
                assert_eq!(seq, 77);
                seen_raw = true;
            }
            Event::Ping { seq, .. } => pings.push(seq),
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut answer = [0u8; 4];
    raw.read_exact(&mut answer).await.unwrap();
    assert!(
        u32::from_be_bytes(answer) > 0,
        "no pong came back over the raw connection"
    );

    // A length over the limit closes that connection only.
    raw.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    assert!(
        closed(&mut raw).await,
        "oversized frame left the connection open"
    );
    exchange(&pa);
    while pings.len() < 800 {
        if let Event::Ping { seq, .. } = pb.next("more pings").await {
            pings.push(seq);
        }
    }
    assert_eq!(
        pings,
        (0..800).collect::<Vec<_>>(),
        "the good peer lost or reordered messages"
    );
    assert_eq!(pongs(&mut pa, 800).await, (0..800).collect::<Vec<_>>());

    let s = b.stats();
    assert_eq!(s.dropped_unknown_message, 1, "{s:?}");
    assert_eq!(s.dropped_unknown_actor, 1, "{s:?}");
    assert_eq!(s.dropped_decode, 3, "{s:?}");
    assert_eq!(s.closed_bad_frame, 2, "{s:?}");
    assert_eq!(a.stats().dropped(), 0);
}

/// A frame over the receiver's limit closes that connection; the sender reconnects for the next.
#[actix_rt::test]
async fn a_frame_over_the_limit_closes_the_connection_then_traffic_resumes() {
    let b = Node::start(NodeConfig {
        frame_limit_bytes: meso::codec::MIN_FRAME_LIMIT_BYTES,
        ..NodeConfig::default()
    })
    .await
    .unwrap();
    let pb = Probe::start(&b, "pb");
    let a = node().await;
    let mut pa = Probe::start(&a, "pa");
    pa.process.link(&pb.upid);
    pa.ping(&pb.upid, 1);
    assert!(matches!(pa.next("pong").await, Event::Pong { seq: 1, .. }));
    pa.process.send(
        &pb.upid,
        Ping {
            seq: 2,
            body: "x".repeat(2 * meso::codec::MIN_FRAME_LIMIT_BYTES),
        },
    );
    assert_eq!(pa.next("exited").await, Event::Exited(pb.upid.clone()));
    pa.ping(&pb.upid, 3);
    assert!(matches!(
        pa.next("pong after reconnect").await,
        Event::Pong { seq: 3, .. }
    ));
    assert_eq!(b.stats().closed_bad_frame, 1);
}

/// Fault injection: drop everything, then duplicate everything, then cut and heal.
#[actix_rt::test]
async fn faults_drop_duplicate_cut_and_heal() {
    let (a, b) = (node().await, node().await);
    let mut pa = Probe::start(&a, "pa");
    let mut pb = Probe::start(&b, "pb");
    a.set_faults(Some(FaultConfig {
        drop: 1.0,
        ..FaultConfig::seeded(1)
    }));
    for seq in 0..50 {
        pa.ping(&pb.upid, seq);
    }
    assert_eq!(pb.drain(Duration::from_millis(200)).await, vec![]);
    assert_eq!(a.stats().dropped_fault, 50);

    a.set_faults(Some(FaultConfig {
        duplicate: 1.0,
        ..FaultConfig::seeded(1)
    }));
    pa.ping(&pb.upid, 7);
    let got = pb.drain(Duration::from_millis(300)).await;
    assert_eq!(got.len(), 2, "{got:?}");
    pa.drain(Duration::from_millis(100)).await;

    a.set_faults(None);
    pa.process.link(&pb.upid);
    a.cut(b.addr());
    assert_eq!(
        pa.next("exited on cut").await,
        Event::Exited(pb.upid.clone())
    );
    pa.ping(&pb.upid, 8);
    assert_eq!(pb.drain(Duration::from_millis(200)).await, vec![]);
    a.heal(b.addr());
    pa.ping(&pb.upid, 9);
    assert!(matches!(
        pb.next("ping after heal").await,
        Event::Ping { seq: 9, .. }
    ));
}

/// Peers that went away are forgotten after a while (a node talking to many short-lived peers,
/// like an agent to its executors, does not grow without end); a later send dials afresh.
#[actix_rt::test]
async fn peers_that_went_away_are_forgotten() {
    let a = node().await;
    let mut pa = Probe::start(&a, "pa");
    // A node started after another shut down may get the same port: peers are counted by address.
    let mut addrs = std::collections::HashSet::new();
    for round in 0..3 {
        let b = node().await;
        addrs.insert(b.addr());
        let pb = Probe::start(&b, "pb");
        pa.ping(&pb.upid, round);
        assert!(matches!(pa.next("pong").await, Event::Pong { .. }));
        b.shutdown();
    }
    assert_eq!(a.peer_count(), addrs.len());
    // The sweep runs every 10 s of the runtime's clock: move the clock instead of waiting.
    tokio::time::pause();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while a.peer_count() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} peers left",
            a.peer_count()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::resume();
}

/// Delays are latency, not reordering: with most frames delayed (and some duplicated), every
/// message still arrives in the order it was sent.
#[actix_rt::test]
async fn delays_keep_fifo_order() {
    let (a, b) = (node().await, node().await);
    let pa = Probe::start(&a, "pa");
    let mut pb = Probe::start(&b, "pb");
    a.set_faults(Some(FaultConfig {
        delay: 0.5,
        max_delay_ms: 20,
        ..FaultConfig::seeded(5)
    }));
    for seq in 0..300 {
        pa.ping(&pb.upid, seq);
    }
    let mut got = Vec::new();
    while got.len() < 300 {
        if let Event::Ping { seq, .. } = pb.next("delayed pings").await {
            got.push(seq);
        }
    }
    assert_eq!(got, (0..300).collect::<Vec<_>>());
    assert!(a.stats().delayed_fault > 100, "{:?}", a.stats());
}

/// With the same seed, the same frames are dropped.
#[actix_rt::test]
async fn faults_are_deterministic_for_a_seed() {
    async fn survivors(seed: u64) -> Vec<u64> {
        let (a, b) = (node().await, node().await);
        let pa = Probe::start(&a, "pa");
        let mut pb = Probe::start(&b, "pb");
        a.set_faults(Some(FaultConfig {
            drop: 0.5,
            ..FaultConfig::seeded(seed)
        }));
        for seq in 0..100 {
            pa.ping(&pb.upid, seq);
        }
        let events = pb.drain(Duration::from_millis(300)).await;
        events
            .into_iter()
            .filter_map(|e| {
                if let Event::Ping { seq, .. } = e {
                    Some(seq)
                } else {
                    None
                }
            })
            .collect()
    }
    let first = survivors(11).await;
    assert!(first.len() > 20 && first.len() < 80, "{}", first.len());
    assert_eq!(first, survivors(11).await);
    assert_ne!(first, survivors(12).await);
}

/// Delayed sends run on the runtime's clock: a paused clock advanced by hand, no sleeping.
#[actix_rt::test]
async fn delayed_sends_follow_the_paused_clock() {
    let a = node().await;
    let mut pa = Probe::start(&a, "pa");
    let pb = Probe::start(&a, "pb");
    tokio::time::pause();
    pb.process.delay(
        Duration::from_secs(30),
        &pa.upid,
        Ping {
            seq: 5,
            body: String::new(),
        },
    );
    tokio::time::advance(Duration::from_secs(29)).await;
    tokio::task::yield_now().await;
    assert!(pa.rx.try_recv().is_err(), "delivered before its time");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(
        pa.next("delayed ping").await,
        Event::Ping {
            from: pb.upid.clone(),
            seq: 5
        }
    );
}

/// An actor that has stopped takes nothing more, and the layer says so: a frame for it and a local
/// send to it are dropped and counted (as for an actor that is not there), never counted as
/// delivered.
#[actix_rt::test]
async fn messages_to_a_stopped_actor_are_dropped_and_counted() {
    let (a, b) = (node().await, node().await);
    let mut pa = Probe::start(&a, "pa");
    let pb = Probe::start(&b, "pb");
    pa.ping(&pb.upid, 1);
    assert!(matches!(pa.next("pong").await, Event::Pong { seq: 1, .. }));
    let delivered = b.stats().remote_received;
    pb.addr.send(StopCollector).await.unwrap();
    while pb.addr.connected() {
        tokio::task::yield_now().await;
    }
    pa.ping(&pb.upid, 2);
    let local = b.process("local").unwrap();
    local.send(
        &pb.upid,
        Ping {
            seq: 3,
            body: String::new(),
        },
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while b.stats().dropped_unknown_actor < 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = b.stats();
    assert_eq!(s.dropped_unknown_actor, 1, "{s:?}");
    assert_eq!(s.dropped_no_local_actor, 1, "{s:?}");
    assert_eq!(s.remote_received, delivered, "{s:?}");
}

/// An advertised IP is what peers are told even when the node listens on a specific address (a
/// node behind NAT or a container bridge is reached at another address than it binds).
#[actix_rt::test]
async fn an_advertised_ip_wins_over_the_bound_one() {
    let node = Node::start(NodeConfig {
        advertise_ip: Some("127.0.0.2".parse().unwrap()),
        ..NodeConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(node.addr().ip().to_string(), "127.0.0.2");
    assert_eq!(node.upid("x").unwrap().addr(), node.addr());
}

/// Frames to a node nobody answers wait while the layer redials (with backoff, on the runtime's
/// clock: paused here, so the waits pass in no real time), then are dropped and counted once the
/// attempts run out; the sender never blocks or fails.
#[actix_rt::test]
async fn frames_to_an_unreachable_node_are_dropped_and_counted_after_the_retries() {
    let a = Node::start(NodeConfig {
        max_reconnect_attempts: 3,
        ..NodeConfig::default()
    })
    .await
    .unwrap();
    let ghost: Upid = format!("ghost@{}", unused_addr()).parse().unwrap();
    tokio::time::pause();
    let started = tokio::time::Instant::now();
    let pa = Probe::start(&a, "pa");
    for seq in 0..5 {
        pa.ping(&ghost, seq);
    }
    for _ in 0..1_000 {
        if a.stats().dropped_unreachable == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = a.stats();
    assert_eq!(s.dropped_unreachable, 5, "{s:?}");
    // Two waits between three attempts: at least 10 + 20 ms of the runtime's clock.
    assert!(
        started.elapsed() >= Duration::from_millis(30),
        "{:?}",
        started.elapsed()
    );
}
