//! A per-thread cache of local routes: (node, actor name, message type) to the actor's recipient.
//!
//! A local send would otherwise look the actor up in the node's shared registry each time (a hash of
//! the name and a shard lock). The cache keys on the address of the Upid's shared name, which the
//! entry keeps alive so that the address cannot be reused, and is checked against the registry's
//! generation, which changes whenever an actor is registered or removed.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
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
