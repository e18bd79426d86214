//! The master's books, opened: per agent, resources used by tasks and executors, offered, and
//! free, and whether they add up to the agent's total. Tests (the seeded fault test above all)
//! check the master through this, and it is the seed of a `/state` endpoint.

use super::state::MasterState;
use meso::protocol::{AgentAccount, AgentId, MasterInspection};
use meso::resources::Resources;
use std::collections::{BTreeMap, BTreeSet};

impl MasterState {
    /// The accounts of at most `max` agents from the `first`-th on, in agent id order. A
    /// disconnected agent is out of the allocator (nothing of it is offered): its free part is
    /// what its tasks leave of its total. One pass
    /// over the offers and executors, not one per agent: a page of a 10,000-agent cluster costs
    /// what the cluster holds, once.
    pub fn accounts_page(&self, first: u64, max: u64) -> Vec<AgentAccount> {
        let skip = usize::try_from(first).unwrap_or(usize::MAX);
        let take = usize::try_from(max).unwrap_or(usize::MAX);
        let page: Vec<_> = self.agents.iter().skip(skip).take(take).collect();
        let wanted: BTreeSet<&AgentId> = page.iter().map(|(id, _)| *id).collect();
        let mut offered: BTreeMap<&AgentId, Resources> = BTreeMap::new();
        for offer in self.book.iter().filter(|o| wanted.contains(&o.agent_id)) {
            *offered.entry(&offer.agent_id).or_default() += offer.resources.clone();
        }
        let mut executors: BTreeMap<&AgentId, Resources> = BTreeMap::new();
        for ((agent, _), executor) in self
            .executors
            .iter()
            .filter(|((a, _), _)| wanted.contains(a))
        {
            *executors.entry(agent).or_default() += executor.resources.clone();
        }
        page.into_iter()
            .map(|(agent_id, entry)| {
                let mut used = self.tasks.used_on_agent(agent_id);
                if let Some(r) = executors.remove(agent_id) {
                    used += r;
                }
                let (total, free) = if entry.connected {
                    let id = agent_id.as_str();
                    (self.allocator.total(id), self.allocator.available(id))
                } else {
                    let total = entry.info.resources.clone();
                    let free = total.checked_sub(&used).unwrap_or_default();
                    (total, free)
                };
                AgentAccount {
                    agent_id: agent_id.clone(),
                    total,
                    used,
                    offered: offered.remove(agent_id).unwrap_or_default(),
                    free,
                }
            })
            .collect()
    }

    /// The accounts, and every way they fail to balance.
    pub fn inspect(&self) -> MasterInspection {
        self.inspect_page(0, u64::MAX)
    }

    /// [`MasterState::inspect`] for a page of agents (see `InspectMaster`).
    pub fn inspect_page(&self, first: u64, max: u64) -> MasterInspection {
        let agents = self.accounts_page(first, max);
        let mut problems = Vec::new();
        if let Err(agent) = self.allocator.check_accounting() {
            problems.push(format!(
                "the allocator's books do not balance on agent {agent}"
            ));
        }
        for a in &agents {
            let sum = a.used.clone() + a.offered.clone() + a.free.clone();
            if sum != a.total {
                problems.push(format!(
                    "agent {}: used {} + offered {} + free {} = {} is not its total {}",
                    a.agent_id, a.used, a.offered, a.free, sum, a.total
                ));
            }
        }
        MasterInspection {
            agents,
            agents_total: self.agents.len() as u64,
            problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meso::process::Upid;
    use meso::protocol::*;

    fn upid(name: &str) -> Upid {
        format!("{name}@127.0.0.1:9").parse().unwrap()
    }

    /// An agent, a framework, an offer, then a launch of part of it: the books balance at each
    /// step, with what moved from free to offered to used.
    #[test]
    fn the_books_balance_through_an_offer_and_a_launch() {
        let mut s = MasterState::new("m", upid("master"), Default::default());
        let agent = AgentInfo {
            id: None,
            hostname: "h".into(),
            resources: Resources::parse("cpus:1;mem:256").unwrap(),
            attributes: Vec::new(),
            port: 1,
        };
        s.register_agent(
            &upid("agent"),
            RegisterAgent {
                agent,
                version: "t".into(),
            },
            1_000,
        );
        s.register_framework(
            &upid("fw"),
            RegisterFramework {
                framework: FrameworkInfo::new("f", "u"),
            },
        );
        let out = s.allocate(1_000);
        let offer = out
            .iter()
            .find_map(|(_, o)| match o {
                super::super::state::Outgoing::ResourceOffers(m) => m.offers.first().cloned(),
                _ => None,
            })
            .expect("an offer");
        let inspection = s.inspect();
        assert_eq!(inspection.problems, Vec::<String>::new());
        assert_eq!(inspection.agents[0].offered, offer.resources);
        let task = TaskInfo::command(
            TaskId::new("t1"),
            offer.agent_id.clone(),
            Resources::parse("cpus:0.3;mem:32").unwrap(),
            CommandInfo::shell("true"),
        );
        let accept = AcceptOffers {
            framework_id: offer.framework_id.clone(),
            offer_ids: vec![offer.id.clone()],
            operations: vec![Operation::Launch { tasks: vec![task] }],
            filters: Filters {
                refuse_seconds: 0.0,
            },
        };
        s.accept_offers(&upid("fw"), accept, 1_001);
        let inspection = s.inspect();
        assert_eq!(inspection.problems, Vec::<String>::new());
        let a = &inspection.agents[0];
        assert_eq!(a.used, Resources::parse("cpus:0.3;mem:32").unwrap());
        assert!(a.offered.is_empty());
        assert_eq!(a.free, Resources::parse("cpus:0.7;mem:224").unwrap());
    }

    /// Pages: three agents read one at a time give each agent once, in id order, with the total;
    /// a page past the end is empty.
    #[test]
    fn the_books_come_in_pages() {
        let mut s = MasterState::new("m", upid("master"), Default::default());
        for i in 0..3 {
            let agent = AgentInfo {
                id: None,
                hostname: format!("h{i}"),
                resources: Resources::parse("cpus:1;mem:256").unwrap(),
                attributes: Vec::new(),
                port: 1,
            };
            let register = RegisterAgent {
                agent,
                version: "t".into(),
            };
            s.register_agent(&upid(&format!("agent{i}")), register, 1_000);
        }
        let all: Vec<AgentId> = s.inspect().agents.into_iter().map(|a| a.agent_id).collect();
        assert_eq!(all.len(), 3);
        let mut paged = Vec::new();
        for first in 0..3 {
            let page = s.inspect_page(first, 1);
            assert_eq!((page.agents.len(), page.agents_total), (1, 3));
            paged.push(page.agents[0].agent_id.clone());
        }
        assert_eq!(paged, all);
        assert!(s.inspect_page(3, 10).agents.is_empty());
        assert_eq!(s.inspect_page(1, u64::MAX).agents.len(), 2);
    }
}
