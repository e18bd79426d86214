//! The TCP side of a node: one connection per peer node, carrying frames both ways.
//!
//! Each peer (keyed by the address it advertises) has an outbox: senders encode their frame straight
//! into its buffer, on their own thread; the connection's writer task swaps the whole buffer out and
//! writes it at once, so everything queued goes in one write. The reader task splits frames and hands
//! each to [`Inner::dispatch`]. A connection that was dialed out also carries the peer's frames back,
//! so a peer behind NAT is answered over the connection it opened.

use super::handshake::{self, Hello, FIXED_HELLO_BYTES};
use super::node::Inner;
use super::outbox::{PushError, Queue};
use super::routes::RemoteRoutes;
use super::stats::Counters;
use crate::codec::{self, CodecError, LEN_PREFIX_BYTES};
use parking_lot::Mutex;
use rand::Rng;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

/// How often peers with nothing left to do are forgotten.
const PEER_SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// Read buffer growth step, and the spare room kept before each read.
const READ_CHUNK_BYTES: usize = 64 * 1024;

pub(crate) struct Peer {
    addr: SocketAddr,
    out: Mutex<Outbox>,
    /// Wakes the writer when its buffer goes from empty to not, or its connection changes.
    wake: Notify,
}

#[derive(Default)]
struct Outbox {
    queue: Queue,
    /// The connection whose writer drains `buf`.
    conn: Option<u64>,
    dialing: bool,
    /// The incarnation last seen in the peer's hello.
    incarnation: Option<u64>,
    /// Reader tasks of every connection to this peer.
    readers: Vec<(u64, AbortHandle)>,
}

/// The peer at `addr`, made on first use.
pub(crate) fn peer(inner: &Inner, addr: SocketAddr) -> Arc<Peer> {
    if let Some(p) = inner.peers.get(&addr) {
        return p.clone();
    }
    inner
        .peers
        .entry(addr)
        .or_insert_with(|| {
            Arc::new(Peer {
                addr,
                out: Mutex::default(),
                wake: Notify::new(),
            })
        })
        .clone()
}

impl Peer {
    /// Appends one frame, written by `encode` into the outbox, and wakes or dials as needed.
    pub(crate) fn push_with<R>(
        self: &Arc<Self>,
        inner: &Arc<Inner>,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<R, CodecError>,
    ) {
        let c = &inner.counters;
        let cfg = &inner.config;
        let mut out = self.out.lock();
        let pushed = out
            .queue
            .push_with(cfg.max_queued_bytes, cfg.frame_limit_bytes, encode);
        let was_empty = match pushed {
            Ok(was_empty) => was_empty,
            Err(e) => {
                drop(out);
                let counter = match e {
                    PushError::Full => &c.dropped_queue_full,
                    PushError::TooLarge(_) | PushError::Encode(_) => &c.dropped_encode,
                };
                tracing::warn!("dropping a frame to {}: {e:?}", self.addr);
                return Counters::bump(counter);
            }
        };
        let wake = was_empty && out.conn.is_some();
        let dial = out.conn.is_none() && !out.dialing;
        out.dialing |= dial;
        drop(out);
        Counters::bump(&c.remote_sent);
        if wake {
            self.wake.notify_one();
        }
        if dial {
            spawn_dial(inner, self.clone());
        }
    }
}

/// The incarnation of the peer at `addr` if a connection to it is up.
pub(crate) fn connected_incarnation(inner: &Inner, addr: SocketAddr) -> Option<u64> {
    let p = inner.peers.get(&addr)?;
    let out = p.out.lock();
    out.conn.and(out.incarnation)
}

/// The incarnation last seen of a peer, connected now or not.
pub(crate) fn known_incarnation(peer: &Peer) -> Option<u64> {
    peer.out.lock().incarnation
}

/// Forgets, now and then, the peers that have no connection, nothing queued and no dial under way,
/// and that nobody holds: otherwise every executor or client that ever connected stays in the map.
pub(crate) async fn sweep_peers(node: Weak<Inner>) {
    // The first sweep is one interval after the start (an interval's first tick is immediate, and
    // would sweep whenever the task first ran).
    let first = tokio::time::Instant::now() + PEER_SWEEP_INTERVAL;
    let mut tick = tokio::time::interval_at(first, PEER_SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        let Some(inner) = node.upgrade() else { return };
        inner.peers.retain(|_, p| {
            let out = p.out.lock();
            let idle = out.conn.is_none()
                && !out.dialing
                && out.readers.is_empty()
                && out.queue.frames() == 0;
            // Only the map holds it (checked under the map's lock): no sender is using it.
            !(idle && Arc::strong_count(p) == 1)
        });
    }
}

/// Dials `addr` unless a connection is up or being made (used by `link`).
pub(crate) fn ensure_connected(inner: &Arc<Inner>, addr: SocketAddr) {
    let p = peer(inner, addr);
    let dial = {
        let mut out = p.out.lock();
        let dial = out.conn.is_none() && !out.dialing;
        out.dialing |= dial;
        dial
    };
    if dial {
        spawn_dial(inner, p);
    }
}

fn spawn_dial(inner: &Arc<Inner>, peer: Arc<Peer>) {
    let inner2 = inner.clone();
    if !inner.arbiter.spawn(dial(inner2, peer)) {
        tracing::warn!("cannot dial: the node's arbiter has stopped");
    }
}

fn backoff(inner: &Inner, attempt: u32) -> Duration {
    let c = &inner.config;
    backoff_with(
        c.backoff_min_ms,
        c.backoff_max_ms,
        attempt,
        &mut rand::thread_rng(),
    )
}

/// The wait before dial `attempt + 1`: `min_ms` doubled per failed attempt, capped at `max_ms`,
/// then spread by half of itself either way (jitter: peers that lost a node together do not
/// all dial it back in the same instant).
fn backoff_with(min_ms: u64, max_ms: u64, attempt: u32, rng: &mut impl Rng) -> Duration {
    let base = min_ms
        .saturating_mul(1u64 << attempt.min(20))
        .min(max_ms)
        .max(1);
    let jittered = rng.gen_range(base / 2..=base + base / 2);
    Duration::from_millis(jittered.max(1))
}

async fn dial(inner: Arc<Inner>, peer: Arc<Peer>) {
    let addr = peer.addr;
    let timeout = Duration::from_millis(inner.config.connect_timeout_ms);
    let mut attempt = 0u32;
    loop {
        let cut = inner.faults.lock().is_cut(addr);
        let result = if cut {
            Err("the link is cut".to_string())
        } else {
            match tokio::time::timeout(timeout, connect(&inner, addr)).await {
                Ok(Ok(done)) => Ok(done),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(format!("no handshake within {timeout:?}")),
            }
        };
        match result {
            Ok((stream, hello)) => {
                Counters::bump(&inner.counters.connections_dialed);
                peer.out.lock().dialing = false;
                attach(&inner, &peer, stream, hello);
                return;
            }
            Err(e) => {
                attempt += 1;
                tracing::debug!("cannot reach {addr} (attempt {attempt}): {e}");
                let mut out = peer.out.lock();
                if out.conn.is_some() {
                    // The peer dialed in meanwhile: links are bound to that live connection.
                    out.dialing = false;
                    return;
                }
                // Linked actors hear of an unreachable peer at once, not after the last retry.
                // (Under the peer's lock, as `attach` takes it before the links: no connection
                // can come up between the check and the firing.)
                inner.fire_links(addr);
                if out.queue.frames() == 0 || attempt >= inner.config.max_reconnect_attempts || cut
                {
                    let dropped = out.queue.clear();
                    out.dialing = false;
                    drop(out);
                    if dropped > 0 {
                        tracing::warn!("dropping {dropped} frames to {addr}: unreachable ({e})");
                        Counters::add(&inner.counters.dropped_unreachable, dropped);
                    }
                    return;
                }
            }
        }
        tokio::time::sleep(backoff(&inner, attempt)).await;
    }
}

async fn connect(inner: &Inner, addr: SocketAddr) -> Result<(TcpStream, Hello), String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    // Dialing a port nobody listens on can connect a socket to itself (TCP simultaneous open,
    // when the kernel picks that same port as the source): that is no peer, and it would hold
    // the port that the peer needs to come back on.
    if stream.local_addr().is_ok_and(|local| local == addr) {
        return Err(format!(
            "connected to itself on {addr}: nobody listens there"
        ));
    }
    let _ = stream.set_nodelay(true);
    stream
        .write_all(&our_hello(inner).encode())
        .await
        .map_err(|e| e.to_string())?;
    let hello = read_hello(&mut stream).await?;
    if hello.incarnation == inner.incarnation {
        return Err(format!("{addr} answered with this node's own incarnation"));
    }
    Ok((stream, hello))
}

fn our_hello(inner: &Inner) -> Hello {
    Hello {
        version: handshake::VERSION,
        incarnation: inner.incarnation,
        addr: inner.addr,
    }
}

async fn read_hello(stream: &mut TcpStream) -> Result<Hello, String> {
    let mut fixed = [0u8; FIXED_HELLO_BYTES];
    stream
        .read_exact(&mut fixed)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let (version, incarnation, addr_len) =
        Hello::decode_fixed(&fixed).map_err(|e| e.to_string())?;
    let mut addr = vec![0u8; addr_len];
    stream
        .read_exact(&mut addr)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let addr = handshake::parse_addr(&addr).map_err(|e| e.to_string())?;
    Ok(Hello {
        version,
        incarnation,
        addr,
    })
}

pub(crate) async fn accept_loop(node: Weak<Inner>, listener: TcpListener) {
    loop {
        let accepted = listener.accept().await;
        let Some(inner) = node.upgrade() else { return };
        match accepted {
            Ok((stream, remote)) => {
                actix_rt::spawn(inbound(inner, stream, remote));
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn inbound(inner: Arc<Inner>, mut stream: TcpStream, remote: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let timeout = Duration::from_millis(inner.config.connect_timeout_ms);
    let hello = match tokio::time::timeout(timeout, read_hello(&mut stream)).await {
        Ok(Ok(hello)) => hello,
        Ok(Err(e)) => return refuse(&inner, remote, &e),
        Err(_) => return refuse(&inner, remote, "no handshake in time"),
    };
    if inner.faults.lock().is_cut(hello.addr) {
        return tracing::debug!("refusing {} from {remote}: the link is cut", hello.addr);
    }
    if let Err(e) = stream.write_all(&our_hello(&inner).encode()).await {
        return tracing::debug!("handshake with {remote} failed: {e}");
    }
    Counters::bump(&inner.counters.connections_accepted);
    let p = peer(&inner, hello.addr);
    attach(&inner, &p, stream, hello);
}

fn refuse(inner: &Inner, remote: SocketAddr, why: &str) {
    tracing::warn!("closing connection from {remote}: {why}");
    Counters::bump(&inner.counters.closed_bad_frame);
    Counters::bump(&inner.counters.connections_closed);
}

/// Puts a handshaken connection to use. A hello with a new incarnation means the peer restarted:
/// links to it fire and frames queued for the old incarnation are dropped.
fn attach(inner: &Arc<Inner>, peer: &Arc<Peer>, stream: TcpStream, hello: Hello) {
    let id = inner.next_conn.fetch_add(1, Ordering::Relaxed);
    let (rd, wr) = stream.into_split();
    let mut out = peer.out.lock();
    let stale = out.incarnation.is_some_and(|i| i != hello.incarnation);
    let mut old_readers = Vec::new();
    if stale && out.conn.is_some() {
        // The old connection still looked live: what waits in it was meant for the old process.
        let old = out.incarnation;
        out.queue.hold(old);
        out.conn = None;
        old_readers = std::mem::take(&mut out.readers);
    }
    let dropped = out.queue.resume(hello.incarnation);
    Counters::add(&inner.counters.dropped_stale_incarnation, dropped);
    out.incarnation = Some(hello.incarnation);
    let writes = out.conn.is_none();
    if writes {
        out.conn = Some(id);
    }
    let keep_wr = if writes {
        actix_rt::spawn(write_loop(inner.clone(), peer.clone(), id, wr));
        None
    } else {
        // A second connection from the same peer (both dialed at once): read it, write on the first.
        Some(wr)
    };
    let reader = actix_rt::spawn(read_loop(inner.clone(), peer.clone(), id, rd, keep_wr));
    out.readers.push((id, reader.abort_handle()));
    drop(out);
    if stale {
        tracing::info!(
            "{} restarted (incarnation {:016x}): its links fire",
            peer.addr,
            hello.incarnation
        );
        for (_, r) in old_readers {
            r.abort();
        }
        peer.wake.notify_waiters();
    }
    inner.rebind_links(peer.addr, hello.incarnation);
}

async fn write_loop(inner: Arc<Inner>, peer: Arc<Peer>, id: u64, mut wr: OwnedWriteHalf) {
    let mut spare = Vec::new();
    loop {
        let notified = peer.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut out = peer.out.lock();
            if out.conn != Some(id) {
                return;
            }
            out.queue.take(&mut spare);
        }
        if spare.is_empty() {
            notified.await;
            continue;
        }
        if let Err(e) = wr.write_all(&spare).await {
            tracing::debug!("write to {} failed: {e}", peer.addr);
            return connection_lost(&inner, &peer, id);
        }
        spare.clear();
        if spare.capacity() > 4 * READ_CHUNK_BYTES * 16 {
            spare = Vec::new();
        }
    }
}

async fn read_loop(
    inner: Arc<Inner>,
    peer: Arc<Peer>,
    id: u64,
    mut rd: OwnedReadHalf,
    _keep_wr: Option<OwnedWriteHalf>,
) {
    let limit = inner.config.frame_limit_bytes;
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK_BYTES);
    let mut routes = RemoteRoutes::default();
    loop {
        let mut pos = 0;
        while let Some(len) = codec::frame_len(&buf[pos..]) {
            if len > limit {
                tracing::warn!(
                    "closing connection from {}: frame of {len} bytes over the limit of {limit}",
                    peer.addr
                );
                Counters::bump(&inner.counters.closed_bad_frame);
                // Stop reading; the peer hears the close and reconnects.
                peer.out.lock().readers.retain(|(r, _)| *r != id);
                return connection_lost(&inner, &peer, id);
            }
            let end = pos + LEN_PREFIX_BYTES + len;
            if end > buf.len() {
                break;
            }
            inner.dispatch(peer.addr, &mut routes, &buf[pos + LEN_PREFIX_BYTES..end]);
            pos = end;
        }
        if pos > 0 {
            buf.drain(..pos);
        }
        if buf.is_empty() && buf.capacity() > 16 * READ_CHUNK_BYTES {
            buf = Vec::with_capacity(READ_CHUNK_BYTES);
        }
        if buf.capacity() - buf.len() < READ_CHUNK_BYTES / 4 {
            buf.reserve(READ_CHUNK_BYTES);
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!("read from {} failed: {e}", peer.addr);
                break;
            }
        }
    }
    connection_lost(&inner, &peer, id);
}

/// A connection ended. If it was the one writing to the peer, links fire and, if frames wait, the
/// peer is dialed again.
fn connection_lost(inner: &Arc<Inner>, peer: &Arc<Peer>, id: u64) {
    let (was_writer, redial) = {
        let mut out = peer.out.lock();
        let mut aborts = Vec::new();
        out.readers.retain(|(r, h)| {
            if *r == id {
                aborts.push(h.clone());
            }
            *r != id
        });
        let was_writer = out.conn == Some(id);
        if was_writer {
            out.conn = None;
            let incarnation = out.incarnation;
            out.queue.hold(incarnation);
        }
        let redial = was_writer && out.queue.frames() > 0 && !out.dialing;
        out.dialing |= redial;
        drop(out);
        for h in aborts {
            h.abort();
        }
        (was_writer, redial)
    };
    Counters::bump(&inner.counters.connections_closed);
    if was_writer {
        tracing::info!("lost connection to {}", peer.addr);
        peer.wake.notify_waiters();
        inner.fire_links(peer.addr);
    }
    if redial {
        spawn_dial(inner, peer.clone());
    }
}

/// Closes every connection to `addr` and drops what is queued to it (cut, shutdown).
pub(crate) fn close_peer(inner: &Arc<Inner>, addr: SocketAddr) {
    let Some(p) = inner.peers.get(&addr).map(|p| p.clone()) else {
        return;
    };
    let (readers, dropped) = {
        let mut out = p.out.lock();
        out.conn = None;
        (std::mem::take(&mut out.readers), out.queue.clear())
    };
    Counters::add(&inner.counters.dropped_fault, dropped);
    for (_, r) in &readers {
        r.abort();
    }
    if !readers.is_empty() {
        Counters::add(&inner.counters.connections_closed, readers.len() as u64);
    }
    p.wake.notify_waiters();
    inner.fire_links(addr);
}

#[cfg(test)]
mod tests {
    use super::backoff_with;
    use rand::SeedableRng;
    use std::time::Duration;

    /// Doubling from the minimum, capped, each wait within half of its base either way; and
    /// jittered: the waits of one attempt are not all the same.
    #[test]
    fn backoff_doubles_to_a_cap_with_jitter() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        for attempt in 0..40 {
            let base = (20u64 << attempt.min(20)).min(2_000);
            let waits: Vec<Duration> = (0..50)
                .map(|_| backoff_with(20, 2_000, attempt, &mut rng))
                .collect();
            for w in &waits {
                let ms = w.as_millis() as u64;
                assert!(
                    ms >= base / 2 && ms <= base + base / 2,
                    "attempt {attempt}: {ms}"
                );
            }
            assert!(
                waits.iter().any(|w| *w != waits[0]),
                "attempt {attempt}: no jitter"
            );
        }
        // The cap holds for any attempt, however large.
        let far = backoff_with(20, 2_000, u32::MAX, &mut rng);
        assert!(far <= Duration::from_millis(3_000));
    }
}
