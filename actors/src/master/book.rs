//! The master's book of outstanding offers: which framework holds which resources of which agent,
//! since when. Pure: no I/O, no clock (times are passed in).

use meso::protocol::{AgentId, FrameworkId, OfferId};
use meso::resources::Resources;
use std::collections::BTreeMap;

/// One offer made and not yet accepted, declined, rescinded or expired.
#[derive(Debug, Clone, PartialEq)]
pub struct OutstandingOffer {
    pub id: OfferId,
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub resources: Resources,
    pub created_ms: u64,
}

/// Outstanding offers by id, and the generator of offer ids.
///
/// Ids are `<prefix>-O<n>` with `n` counting from 1; with a prefix unique to each master run they
/// are never reused, so a stale id can never name a newer offer.
#[derive(Debug, Clone)]
pub struct OfferBook {
    prefix: String,
    next: u64,
    offers: BTreeMap<OfferId, OutstandingOffer>,
}

impl OfferBook {
    pub fn new(prefix: impl Into<String>) -> OfferBook {
        OfferBook {
            prefix: prefix.into(),
            next: 1,
            offers: BTreeMap::new(),
        }
    }

    fn next_id(&mut self) -> OfferId {
        let id = OfferId::new(format!("{}-O{}", self.prefix, self.next));
        self.next += 1;
        id
    }

    /// Records a new offer and returns its fresh id.
    pub fn add_offer(
        &mut self,
        framework_id: FrameworkId,
        agent_id: AgentId,
        resources: Resources,
        now_ms: u64,
    ) -> OfferId {
        let id = self.next_id();
        self.offers.insert(
            id.clone(),
            OutstandingOffer {
                id: id.clone(),
                framework_id,
                agent_id,
                resources,
                created_ms: now_ms,
            },
        );
        id
    }

    pub fn get(&self, id: &OfferId) -> Option<&OutstandingOffer> {
        self.offers.get(id)
    }

    pub fn contains(&self, id: &OfferId) -> bool {
        self.offers.contains_key(id)
    }

    /// Removes an offer; `None` if it was not outstanding.
    pub fn remove_offer(&mut self, id: &OfferId) -> Option<OutstandingOffer> {
        self.offers.remove(id)
    }

    /// The offers of an agent, in id order (to rescind them when the agent goes away).
    pub fn offers_for_agent(&self, agent_id: &AgentId) -> Vec<OfferId> {
        self.offers
            .values()
            .filter(|o| &o.agent_id == agent_id)
            .map(|o| o.id.clone())
            .collect()
    }

    /// The offers held by a framework, in id order.
    pub fn offers_for_framework(&self, framework_id: &FrameworkId) -> Vec<OfferId> {
        self.offers
            .values()
            .filter(|o| &o.framework_id == framework_id)
            .map(|o| o.id.clone())
            .collect()
    }

    /// The offers made at least `timeout_ms` before `now_ms`.
    pub fn expired(&self, now_ms: u64, timeout_ms: u64) -> Vec<OfferId> {
        self.offers
            .values()
            .filter(|o| now_ms.saturating_sub(o.created_ms) >= timeout_ms)
            .map(|o| o.id.clone())
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &OutstandingOffer> {
        self.offers.values()
    }

    pub fn len(&self) -> usize {
        self.offers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book_with_three() -> (OfferBook, [OfferId; 3]) {
        let mut book = OfferBook::new("M1");
        let a = book.add_offer(
            FrameworkId::new("f1"),
            AgentId::new("a1"),
            Resources::default(),
            100,
        );
        let b = book.add_offer(
            FrameworkId::new("f2"),
            AgentId::new("a1"),
            Resources::default(),
            200,
        );
        let c = book.add_offer(
            FrameworkId::new("f1"),
            AgentId::new("a2"),
            Resources::default(),
            300,
        );
        (book, [a, b, c])
    }

    #[test]
    fn ids_are_prefixed_and_never_reused() {
        let (mut book, [a, b, c]) = book_with_three();
        assert_eq!(a.as_str(), "M1-O1");
        assert_eq!(b.as_str(), "M1-O2");
        assert_eq!(c.as_str(), "M1-O3");
        assert!(book.remove_offer(&c).is_some());
        let d = book.add_offer(
            FrameworkId::new("f1"),
            AgentId::new("a1"),
            Resources::default(),
            400,
        );
        assert_eq!(d.as_str(), "M1-O4");
    }

    #[test]
    fn lookups_by_agent_and_framework() {
        let (book, [a, b, c]) = book_with_three();
        assert_eq!(
            book.offers_for_agent(&AgentId::new("a1")),
            vec![a.clone(), b]
        );
        assert_eq!(
            book.offers_for_framework(&FrameworkId::new("f1")),
            vec![a.clone(), c]
        );
        assert!(book.offers_for_agent(&AgentId::new("nope")).is_empty());
        assert_eq!(book.get(&a).map(|o| o.created_ms), Some(100));
        assert_eq!(book.len(), 3);
    }

    #[test]
    fn removing_twice_yields_nothing_the_second_time() {
        let (mut book, [a, ..]) = book_with_three();
        assert!(book.remove_offer(&a).is_some());
        assert!(book.remove_offer(&a).is_none());
        assert!(!book.contains(&a));
        assert_eq!(book.len(), 2);
    }

    #[test]
    fn expiry_is_by_age() {
        let (book, [a, b, _]) = book_with_three();
        assert_eq!(book.expired(300, 100), vec![a, b]);
        assert!(book.expired(50, 100).is_empty());
    }
}
