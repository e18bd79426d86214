//! Route caches, so that neither a local send nor a received frame pays for a registry look-up.
//!
//! Local: a per-thread cache from (node, actor name, message type) to the actor's recipient.
//! A local send would otherwise look the actor up in the node's shared registry each time (a hash of
//! the name and a shard lock). The cache keys on the address of the Upid's shared name, which the
//! entry keeps alive so that the address cannot be reused, and is checked against the registry's
//! generation, which changes whenever an actor is registered or removed.

use super::node::{Deliver, Fnv};
use super::stats::Counters;
use super::upid::Upid;
use crate::codec;
use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Entries per thread before the cache starts over.
const MAX_ROUTES: usize = 1024;

/// Mixes whole words; the keys are addresses and type ids, already well spread.
#[derive(Default)]
struct WordMix(u64);

impl Hasher for WordMix {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(*b as u64);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64)
    }
}

type Key = (usize, usize, TypeId);

struct Route {
    _name: Arc<str>,
    generation: u64,
    recipient: Box<dyn Any>,
}

thread_local! {
    static ROUTES: RefCell<HashMap<Key, Route, BuildHasherDefault<WordMix>>> = RefCell::default();
}

/// Calls `deliver` with the cached recipient of type `R` for (node, name), looking it up with
/// `lookup` when the cache has no current entry. Returns false if there is no such route.
pub(crate) fn with_route<R: Clone + 'static>(
    node: usize,
    name: &Arc<str>,
    generation: u64,
    lookup: impl FnOnce() -> Option<R>,
    deliver: impl FnOnce(&R),
) -> bool {
    let key = (
        node,
        Arc::as_ptr(name) as *const u8 as usize,
        TypeId::of::<R>(),
    );
    ROUTES.with(|routes| {
        let mut routes = routes.borrow_mut();
        if let Some(route) = routes.get(&key) {
            if route.generation == generation {
                if let Some(r) = route.recipient.downcast_ref::<R>() {
                    deliver(r);
                    return true;
                }
            }
        }
        let Some(r) = lookup() else {
            routes.remove(&key);
            return false;
        };
        deliver(&r);
        if routes.len() >= MAX_ROUTES {
            routes.clear();
        }
        routes.insert(
            key,
            Route {
                _name: name.clone(),
                generation,
                recipient: Box::new(r),
            },
        );
        true
    })
}

/// The routes of one connection: (sender, receiver, message name) to the sender's Upid and the
/// receiver's decode-and-deliver, so that a frame costs no registry look-up and no allocation.
/// Checked against the registry's generation; bounded (cleared when full).
#[derive(Default)]
pub(crate) struct RemoteRoutes {
    routes: HashMap<u64, RemoteRoute, BuildHasherDefault<Fnv>>,
    /// The route of the last frame: consecutive frames mostly share one, and it needs no hash.
    last: Option<RemoteRoute>,
    /// Frames dropped on this connection, to keep a flood of bad frames from flooding the log.
    dropped: u64,
}

#[derive(Clone)]
struct RemoteRoute {
    key: Arc<(Box<str>, Box<str>, Box<str>)>,
    generation: u64,
    from: Upid,
    deliver: Deliver,
}

impl RemoteRoute {
    fn matches(&self, env: &codec::Envelope<'_>, generation: u64) -> bool {
        self.generation == generation
            && *self.key.0 == *env.from
            && *self.key.1 == *env.to
            && *self.key.2 == *env.name
    }
}

impl RemoteRoutes {
    const MAX_ROUTES: usize = 4096;
    /// Drops on one connection that are each logged; after them, one in `LOG_EVERY`.
    const LOG_FIRST: u64 = 10;
    const LOG_EVERY: u64 = 1000;

    /// Counts a dropped frame, and logs why for the first few and then now and then.
    pub(crate) fn dropped(
        &mut self,
        peer: SocketAddr,
        counter: &AtomicU64,
        why: impl FnOnce() -> String,
    ) {
        Counters::bump(counter);
        self.dropped += 1;
        let n = self.dropped;
        if n <= RemoteRoutes::LOG_FIRST || n.is_multiple_of(RemoteRoutes::LOG_EVERY) {
            tracing::warn!(
                "dropping a frame from {peer}: {} ({n} dropped on this connection)",
                why()
            );
        }
    }

    fn hash(env: &codec::Envelope<'_>) -> u64 {
        let mut h = Fnv::default();
        for part in [env.from, env.to, env.name] {
            h.write(part.as_bytes());
            h.write(&[0xff]);
        }
        h.finish()
    }

    pub(crate) fn get(
        &mut self,
        env: &codec::Envelope<'_>,
        generation: u64,
    ) -> Option<(Upid, Deliver)> {
        if let Some(r) = self.last.as_ref().filter(|r| r.matches(env, generation)) {
            return Some((r.from.clone(), r.deliver.clone()));
        }
        let r = self.routes.get(&RemoteRoutes::hash(env))?;
        if !r.matches(env, generation) {
            return None;
        }
        let hit = (r.from.clone(), r.deliver.clone());
        self.last = Some(r.clone());
        Some(hit)
    }

    pub(crate) fn insert(
        &mut self,
        env: &codec::Envelope<'_>,
        generation: u64,
        (from, deliver): (Upid, Deliver),
    ) -> (Upid, Deliver) {
        if self.routes.len() >= RemoteRoutes::MAX_ROUTES {
            self.routes.clear();
        }
        let route = RemoteRoute {
            key: Arc::new((env.from.into(), env.to.into(), env.name.into())),
            generation,
            from: from.clone(),
            deliver: deliver.clone(),
        };
        self.last = Some(route.clone());
        self.routes.insert(RemoteRoutes::hash(env), route);
        (from, deliver)
    }
}
