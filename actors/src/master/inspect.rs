//! The master's books, opened: per agent, resources used by tasks and executors, offered, and
//! free, and whether they add up to the agent's total. Tests (the seeded fault test above all)
//! check the master through this, and it is the seed of a `/state` endpoint.

use super::state::MasterState;
use meso::protocol::{AgentAccount, MasterInspection};
use meso::resources::Resources;

impl MasterState {
    /// One account per registered agent. A disconnected agent is out of the allocator (nothing of
    /// it is offered): its free part is what its tasks leave of its total.
    pub fn accounts(&self) -> Vec<AgentAccount> {
        self.agents
            .iter()
            .map(|(agent_id, entry)| {
                let mut offered = Resources::default();
                for offer in self.book.iter().filter(|o| &o.agent_id == agent_id) {
                    offered += offer.resources.clone();
                }
                let mut used = self.tasks.used_on_agent(agent_id);
                for ((agent, _), executor) in &self.executors {
                    if agent == agent_id {
                        used += executor.resources.clone();
                    }
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
                    offered,
                    free,
                }
            })
            .collect()
    }

    /// The accounts, and every way they fail to balance.
    pub fn inspect(&self) -> MasterInspection {
        let agents = self.accounts();
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
        MasterInspection { agents, problems }
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
}
