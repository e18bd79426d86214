//! `Node`: one per OS process. Local actors by name, typed sends, links.

use super::faults::{Faults, Verdict};
use super::routes;
use super::routes::RemoteRoutes;
use super::spawn::{Process, Spawn};
use super::stats::{Counters, Stats};
use super::transport::{self, Peer};
use super::upid::{Upid, UpidError};
use super::{Exited, FaultConfig, Incoming, WireMessage};
use crate::codec::{self, CodecError};
use actix::{Actor, Context, Recipient};
use dashmap::DashMap;
use parking_lot::Mutex;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How a node listens and how it treats its peers. Every bound has a default.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Address to bind; port 0 picks a free port (the node's Upids show the real one).
    pub listen: SocketAddr,
    /// The IP that peers reach this node at, when `listen` is unspecified (`0.0.0.0`).
    pub advertise_ip: Option<IpAddr>,
    /// Largest frame accepted or sent: a power of two from 1 MiB to [`codec::MAX_FRAME_BYTES`]
    /// (16 MiB, the default); other values are brought into that range ([`codec::frame_limit`]).
    pub frame_limit_bytes: usize,
    /// Bytes queued to one peer (while it is slow or reconnecting) before new frames are dropped.
    pub max_queued_bytes: usize,
    /// How long a dial plus handshake may take.
    pub connect_timeout_ms: u64,
    /// First reconnect delay; doubles per failed attempt up to `backoff_max_ms`, with jitter.
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
    /// Failed dials in a row after which the frames queued to that peer are dropped.
    pub max_reconnect_attempts: u32,
    /// Faults to inject on outgoing frames (tests only).
    pub faults: Option<FaultConfig>,
}

impl Default for NodeConfig {
    fn default() -> NodeConfig {
        NodeConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            advertise_ip: None,
            frame_limit_bytes: codec::MAX_FRAME_BYTES,
            max_queued_bytes: 64 * 1024 * 1024,
            connect_timeout_ms: 2_000,
            backoff_min_ms: 20,
            backoff_max_ms: 2_000,
            max_reconnect_attempts: 8,
            faults: None,
        }
    }
}

impl NodeConfig {
    pub fn listen(addr: SocketAddr) -> NodeConfig {
        NodeConfig {
            listen: addr,
            ..NodeConfig::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("an actor named `{0}` is already registered on this node")]
    NameTaken(String),
    #[error(transparent)]
    Upid(#[from] UpidError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("no actix system is running on this thread: start the node inside one")]
    NoSystem,
}

/// FNV-1a: actor names are short, and the registry is on the hot path of every local send.
#[derive(Default)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h = (h ^ *b as u64).wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Decodes a payload (within the node's frame limit, the last argument) and hands it to an actor;
/// `Ok(false)` if the actor has stopped.
pub(crate) type Deliver = Arc<dyn Fn(Upid, &[u8], usize) -> Result<bool, CodecError> + Send + Sync>;

/// What the registry knows of one local actor: how to hand it each message type it declared.
#[derive(Default)]
pub(crate) struct Entry {
    /// By message type, a `Recipient<Incoming<M>>`: local sends, no bytes.
    pub(crate) local: Vec<(TypeId, Box<dyn Any + Send + Sync>)>,
    /// By wire name: decode the payload and deliver.
    pub(crate) remote: HashMap<&'static str, Deliver>,
    pub(crate) exited: Option<Recipient<Exited>>,
}

pub(crate) struct Inner {
    pub(crate) addr: SocketAddr,
    pub(crate) incarnation: u64,
    pub(crate) config: NodeConfig,
    pub(crate) actors: DashMap<Arc<str>, Entry, BuildHasherDefault<Fnv>>,
    /// Changes whenever an actor is registered or removed (see `routes`).
    pub(crate) generation: AtomicU64,
    pub(crate) peers: DashMap<SocketAddr, Arc<Peer>, BuildHasherDefault<Fnv>>,
    /// Links by the node address of their target.
    links: Mutex<HashMap<SocketAddr, Vec<Link>>>,
    pub(crate) faults: Mutex<Faults>,
    faults_active: AtomicBool,
    pub(crate) counters: Counters,
    pub(crate) arbiter: actix_rt::ArbiterHandle,
    pub(crate) next_conn: AtomicU64,
    pub(crate) accept_task: Mutex<Option<tokio::task::AbortHandle>>,
    anonymous: Upid,
}

/// One node per OS process: binds `ip:port`, registers local actors by name, sends typed messages to
/// local actors (straight into their mailbox) and remote ones (as frames over TCP), and links actors
/// to remote ones. Cheap to clone; usable from any thread once started.
#[derive(Clone)]
pub struct Node {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Node({} incarnation {:016x})",
            self.inner.addr, self.inner.incarnation
        )
    }
}

impl Node {
    /// Binds the listener and starts accepting peers. Must run inside an actix `System`: the
    /// node's network tasks run on the current arbiter.
    pub async fn start(config: NodeConfig) -> Result<Node, ProcessError> {
        let arbiter = actix_rt::Arbiter::try_current().ok_or(ProcessError::NoSystem)?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ProcessError::Listen {
                addr: config.listen,
                source,
            })?;
        let bound = listener
            .local_addr()
            .map_err(|source| ProcessError::Listen {
                addr: config.listen,
                source,
            })?;
        // What peers are told: the advertised IP when there is one (a node behind NAT or a
        // container bridge listens on one address and is reached at another), else the bound one.
        let ip = match (config.advertise_ip, bound.ip().is_unspecified()) {
            (Some(ip), _) => ip,
            (None, true) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            (None, false) => bound.ip(),
        };
        let addr = SocketAddr::new(ip, bound.port());
        let mut config = config;
        config.frame_limit_bytes = codec::frame_limit(config.frame_limit_bytes);
        let faults = Faults::new(config.faults);
        let incarnation = loop {
            let n: u64 = rand::random();
            if n != 0 {
                break n;
            }
        };
        let inner = Arc::new(Inner {
            addr,
            incarnation,
            faults_active: AtomicBool::new(faults.active()),
            faults: Mutex::new(faults),
            config,
            actors: DashMap::default(),
            generation: AtomicU64::new(0),
            peers: DashMap::default(),
            links: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            arbiter,
            next_conn: AtomicU64::new(1),
            accept_task: Mutex::new(None),
            anonymous: Upid::new("anonymous", addr).expect("a valid fixed name"),
        });
        let node = Node { inner };
        actix_rt::spawn(transport::sweep_peers(Arc::downgrade(&node.inner)));
        let task = actix_rt::spawn(transport::accept_loop(
            Arc::downgrade(&node.inner),
            listener,
        ));
        *node.inner.accept_task.lock() = Some(task.abort_handle());
        tracing::info!(%addr, incarnation = format_args!("{incarnation:016x}"), "node started");
        Ok(node)
    }

    /// The address peers reach this node at.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Chosen at random when the node started; peers see a new one after a restart.
    pub fn incarnation(&self) -> u64 {
        self.inner.incarnation
    }

    /// Peer nodes this node knows: connected, connecting, or holding frames.
    pub fn peer_count(&self) -> usize {
        self.inner.peers.len()
    }

    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot()
    }

    /// The Upid an actor named `name` has on this node.
    pub fn upid(&self, name: &str) -> Result<Upid, UpidError> {
        Upid::new(name, self.inner.addr)
    }

    /// A send handle for an actor named `name` on this node (spawned or to be spawned).
    pub fn process(&self, name: &str) -> Result<Process, UpidError> {
        Ok(Process::new(self.clone(), self.upid(name)?))
    }

    /// Starts declaring an actor: `node.actor::<A>("master").handle::<M>()...start(actor)`.
    pub fn actor<A>(&self, name: &str) -> Spawn<A>
    where
        A: Actor<Context = Context<A>>,
    {
        Spawn::new(self.clone(), name)
    }

    /// Whether a local actor of that name is registered.
    pub fn is_registered(&self, name: &str) -> bool {
        self.inner.actors.contains_key(name)
    }

    /// Removes a local actor from the registry (it no longer receives anything) and fires the
    /// links to it. The actor itself is stopped by its owner.
    pub fn unregister(&self, name: &str) {
        if self.inner.actors.remove(name).is_some() {
            self.inner.generation.fetch_add(1, Ordering::Release);
            let mut links = self.inner.links.lock();
            let Some(list) = links.get_mut(&self.inner.addr) else {
                return;
            };
            let (fire, keep): (Vec<_>, Vec<_>) =
                list.drain(..).partition(|l| l.target.name() == name);
            *list = keep;
            drop(links);
            self.deliver_exited(fire);
        }
    }

    /// Sends from no actor in particular (replies go to `anonymous@<this node>`, which drops them).
    pub fn send<M: WireMessage>(&self, to: &Upid, msg: M) {
        let from = self.inner.anonymous.clone();
        self.send_from(&from, to, msg)
    }

    /// Sends `msg` from the local actor `from` to `to`, wherever it is. At most once; FIFO per
    /// (sender, receiver) pair. Never blocks, never fails loudly: an undeliverable message is dropped
    /// and counted (see [`Stats`]).
    pub fn send_from<M: WireMessage>(&self, from: &Upid, to: &Upid, msg: M) {
        if to.addr() == self.inner.addr {
            self.send_local(from, to, msg);
        } else {
            self.send_remote(from, to, &msg);
        }
    }

    fn send_local<M: WireMessage>(&self, from: &Upid, to: &Upid, msg: M) {
        let inner = &self.inner;
        let lookup = || {
            let entry = inner.actors.get(to.name())?;
            let tid = TypeId::of::<M>();
            let (_, r) = entry.local.iter().find(|(t, _)| *t == tid)?;
            r.downcast_ref::<Recipient<Incoming<M>>>().cloned()
        };
        let generation = inner.generation.load(Ordering::Acquire);
        let node = Arc::as_ptr(inner) as usize;
        let mut msg = Some(msg);
        let mut stopped = false;
        let deliver = |r: &Recipient<Incoming<M>>| {
            // An actor that stopped (its mailbox closed) takes nothing: count it as dropped.
            if !r.connected() {
                stopped = true;
                return;
            }
            if let Some(msg) = msg.take() {
                r.do_send(Incoming {
                    from: from.clone(),
                    msg,
                });
            }
        };
        let routed = routes::with_route(node, to.name_arc(), generation, lookup, deliver);
        if !routed || stopped {
            tracing::debug!(
                "dropping {} from {from} to {to}: no running local actor handles it",
                M::NAME
            );
            Counters::bump(&inner.counters.dropped_no_local_actor);
        }
    }

    fn send_remote<M: WireMessage>(&self, from: &Upid, to: &Upid, msg: &M) {
        let inner = &self.inner;
        if !inner.faults_active.load(Ordering::Relaxed) {
            let peer = transport::peer(inner, to.addr());
            peer.push_with(inner, |buf| {
                codec::encode_frame(buf, from.name(), to.name(), M::NAME, msg)
            });
            return;
        }
        let mut frame = Vec::new();
        if let Err(e) = codec::encode_frame(&mut frame, from.name(), to.name(), M::NAME, msg) {
            tracing::warn!("dropping {} from {from} to {to}: {e}", M::NAME);
            Counters::bump(&inner.counters.dropped_encode);
            return;
        }
        let addr = to.addr();
        let incarnation = transport::connected_incarnation(inner, addr);
        let mut faults = inner.faults.lock();
        let verdict = faults.verdict(addr);
        let copies = match verdict {
            Verdict::Drop => return Counters::bump(&inner.counters.dropped_fault),
            Verdict::Duplicate => {
                Counters::bump(&inner.counters.duplicated_fault);
                2
            }
            Verdict::Send | Verdict::Delay(_) => 1,
        };
        let until = match verdict {
            Verdict::Delay(d) => {
                Counters::bump(&inner.counters.delayed_fault);
                Some(tokio::time::Instant::now() + d)
            }
            _ => None,
        };
        // A delay holds back the frame and every later one to that peer: latency, not reordering.
        if faults.hold(addr, incarnation, &frame, copies, until) {
            if until.is_some() && faults.needs_flusher(addr) {
                let inner2 = inner.clone();
                inner.arbiter.spawn(flush_held(inner2, addr));
            }
            return;
        }
        drop(faults);
        let peer = transport::peer(inner, addr);
        for _ in 0..copies {
            peer.push_with(inner, |buf| push_bytes(buf, &frame));
        }
    }

    /// Sends after `delay` on the runtime's clock (which a test can pause and advance).
    pub fn delay<M: WireMessage>(&self, delay: Duration, from: &Upid, to: &Upid, msg: M) {
        let node = self.clone();
        let (from, to) = (from.clone(), to.clone());
        // The deadline is fixed now, not when the task first runs.
        let deadline = tokio::time::Instant::now() + delay;
        self.inner.arbiter.spawn(async move {
            tokio::time::sleep_until(deadline).await;
            node.send_from(&from, &to, msg);
        });
    }

    /// Links the local actor `linker` to `target`: when the node of `target` disconnects, crashes,
    /// restarts or cannot be reached, `linker` receives `Exited(target)`, once. `linker` must have been
    /// started with `.exited()`. A link to a local actor fires when that actor is unregistered.
    pub fn link(&self, linker: &Upid, target: &Upid) {
        let addr = target.addr();
        let link = |incarnation| Link {
            linker: linker.clone(),
            target: target.clone(),
            incarnation,
        };
        if addr == self.inner.addr {
            if self.is_registered(target.name()) {
                self.inner
                    .links
                    .lock()
                    .entry(addr)
                    .or_default()
                    .push(link(Some(self.inner.incarnation)));
            } else {
                self.deliver_exited(vec![link(None)]);
            }
            return;
        }
        let incarnation = transport::connected_incarnation(&self.inner, addr);
        self.inner
            .links
            .lock()
            .entry(addr)
            .or_default()
            .push(link(incarnation));
        transport::ensure_connected(&self.inner, addr);
    }

    /// Removes every link of `linker` to `target`.
    pub fn unlink(&self, linker: &Upid, target: &Upid) {
        if let Some(list) = self.inner.links.lock().get_mut(&target.addr()) {
            list.retain(|l| !(&l.linker == linker && &l.target == target));
        }
    }

    /// Replaces the fault injection settings (a new seed restarts the random sequence).
    pub fn set_faults(&self, config: Option<FaultConfig>) {
        let mut f = self.inner.faults.lock();
        f.set(config);
        self.inner
            .faults_active
            .store(f.active(), Ordering::Relaxed);
    }

    /// Cuts the link to the node at `peer`: closes the connection (links fire), drops frames to it
    /// and refuses connections from and to it until [`Node::heal`].
    pub fn cut(&self, peer: SocketAddr) {
        {
            let mut f = self.inner.faults.lock();
            f.cut(peer);
            self.inner.faults_active.store(true, Ordering::Relaxed);
        }
        transport::close_peer(&self.inner, peer);
    }

    pub fn heal(&self, peer: SocketAddr) {
        let mut f = self.inner.faults.lock();
        f.heal(peer);
        self.inner
            .faults_active
            .store(f.active(), Ordering::Relaxed);
    }

    /// Stops accepting connections; those already made go on, both ways.
    pub fn stop_listening(&self) {
        if let Some(task) = self.inner.accept_task.lock().take() {
            task.abort();
        }
    }

    /// Stops listening and closes every connection. Local actors keep running.
    pub fn shutdown(&self) {
        if let Some(task) = self.inner.accept_task.lock().take() {
            task.abort();
        }
        let peers: Vec<SocketAddr> = self.inner.peers.iter().map(|p| *p.key()).collect();
        for peer in peers {
            transport::close_peer(&self.inner, peer);
        }
    }
}

impl Inner {
    /// Delivers one received frame body to its local actor, or drops it with the reason counted.
    /// Names off the wire are logged escaped: a peer cannot write lines into this node's log.
    pub(crate) fn dispatch(&self, peer: SocketAddr, routes: &mut RemoteRoutes, body: &[u8]) {
        let c = &self.counters;
        let env = match codec::decode_envelope(body) {
            Ok(env) => env,
            Err(e) => return routes.dropped(peer, &c.dropped_decode, || e.to_string()),
        };
        let generation = self.generation.load(Ordering::Acquire);
        let (from, deliver) = match routes.get(&env, generation) {
            Some(hit) => hit,
            None => match self.route(peer, &env) {
                Ok(route) => routes.insert(&env, generation, route),
                Err((counter, why)) => return routes.dropped(peer, counter, || why),
            },
        };
        match deliver(from, env.payload, self.config.frame_limit_bytes) {
            Ok(true) => Counters::bump(&c.remote_received),
            Ok(false) => routes.dropped(peer, &c.dropped_unknown_actor, || {
                format!(
                    "{} from {}: actor `{}` has stopped",
                    env.name.escape_debug(),
                    env.from.escape_debug(),
                    env.to.escape_debug()
                )
            }),
            Err(e) => routes.dropped(peer, &c.dropped_decode, || {
                format!(
                    "{} from {} to {}: {e}",
                    env.name.escape_debug(),
                    env.from.escape_debug(),
                    env.to.escape_debug()
                )
            }),
        }
    }

    /// Who sent a frame and how to deliver it, or the counter and reason to drop it under.
    fn route(
        &self,
        peer: SocketAddr,
        env: &codec::Envelope<'_>,
    ) -> Result<(Upid, Deliver), (&AtomicU64, String)> {
        let c = &self.counters;
        let Some(entry) = self.actors.get(env.to) else {
            let why = format!(
                "{} from {}: no actor `{}` here",
                env.name.escape_debug(),
                env.from.escape_debug(),
                env.to.escape_debug()
            );
            return Err((&c.dropped_unknown_actor, why));
        };
        let Some(deliver) = entry.remote.get(env.name) else {
            let why = format!(
                "`{}` from {}: `{}` does not handle it",
                env.name.escape_debug(),
                env.from.escape_debug(),
                env.to.escape_debug()
            );
            return Err((&c.dropped_unknown_message, why));
        };
        match Upid::new(env.from, peer) {
            Ok(from) => Ok((from, deliver.clone())),
            Err(e) => Err((
                &c.dropped_decode,
                format!(
                    "{}: {}",
                    env.name.escape_debug(),
                    e.to_string().escape_debug()
                ),
            )),
        }
    }

    /// Fires and forgets every link to the node at `addr`.
    pub(crate) fn fire_links(&self, addr: SocketAddr) {
        let fire = self.links.lock().remove(&addr).unwrap_or_default();
        self.deliver_exited(fire);
    }

    /// A connection to `addr` showed `incarnation`: links made against another incarnation fire,
    /// links made while nothing was connected now belong to this one.
    pub(crate) fn rebind_links(&self, addr: SocketAddr, incarnation: u64) {
        let mut fire = Vec::new();
        if let Some(list) = self.links.lock().get_mut(&addr) {
            list.retain_mut(|l| match l.incarnation {
                None => {
                    l.incarnation = Some(incarnation);
                    true
                }
                Some(i) if i == incarnation => true,
                Some(_) => {
                    fire.push(l.clone());
                    false
                }
            });
        }
        self.deliver_exited(fire);
    }

    fn deliver_exited(&self, fire: Vec<Link>) {
        for Link { linker, target, .. } in fire {
            let recipient = self
                .actors
                .get(linker.name())
                .and_then(|e| e.exited.clone());
            match recipient {
                Some(r) => {
                    r.do_send(Exited(target));
                    Counters::bump(&self.counters.exited_sent);
                }
                None => tracing::warn!("{linker} linked to {target} but does not take Exited"),
            }
        }
    }
}

impl Node {
    fn deliver_exited(&self, fire: Vec<Link>) {
        self.inner.deliver_exited(fire)
    }
}

/// Releases the frames held back for `addr` once its delay has run out, in the order they were sent.
async fn flush_held(inner: Arc<Inner>, addr: SocketAddr) {
    loop {
        let Some(until) = inner.faults.lock().held_until(addr) else {
            return;
        };
        tokio::time::sleep_until(until).await;
        let mut faults = inner.faults.lock();
        match faults.held_until(addr) {
            None => return,
            Some(until) if until > tokio::time::Instant::now() => continue,
            Some(_) => {}
        }
        // Pushed under the lock, so that no frame sent meanwhile can overtake them. A frame held
        // for an incarnation the peer no longer has is dropped, as one queued for it would be:
        // a delay must not carry a message across a restart.
        let peer = transport::peer(&inner, addr);
        let known = transport::known_incarnation(&peer);
        for (sent_to, frame) in faults.release(addr) {
            if sent_to.is_some() && known.is_some() && sent_to != known {
                Counters::bump(&inner.counters.dropped_stale_incarnation);
                continue;
            }
            peer.push_with(&inner, |buf| push_bytes(buf, &frame));
        }
        inner
            .faults_active
            .store(faults.active(), Ordering::Relaxed);
        return;
    }
}

/// Appends an already encoded frame.
fn push_bytes(buf: &mut Vec<u8>, frame: &[u8]) -> Result<(), CodecError> {
    buf.extend_from_slice(frame);
    Ok(())
}

/// `linker` hears `Exited(target)` when the node of `target` goes; `incarnation` is the one the link
/// was made against, or `None` if nothing was connected then (it binds to the next one seen).
#[derive(Clone)]
pub(crate) struct Link {
    linker: Upid,
    target: Upid,
    incarnation: Option<u64>,
}
