//! A pure DRF allocator in the style of the Mesos hierarchical allocator: no actors, no I/O, no
//! clock. The caller passes the time (`now_ms`, milliseconds since an epoch of its choosing) to
//! every operation that depends on it.
//!
//! # Model
//! - Each agent has a `total`, an `available` pool and per-framework `allocated` resources, with
//!   `available + sum(allocated) == total` at all times.
//! - [`Allocator::allocate`] visits agents in id order and, for each, frameworks in Dominant
//!   Resource Fairness order (Ghodsi et al., NSDI 2011): lowest dominant share first, ties broken
//!   by framework id. The first framework that is active, not suppressed and not filtered gets all
//!   of the agent's available resources that its role may use (unreserved plus those reserved for
//!   its role), as Mesos offers whole agents. The allocation counts at once, so shares move within
//!   a pass.
//! - Offered but unused resources, finished tasks and declined offers come back through
//!   [`Allocator::recover`] (or [`Allocator::decline`], which also installs a filter).
//! - Every operation that returns an error changes nothing.
//!
//! Roles: each framework carries a role (`*` by default) which decides which reserved resources it
//! may be offered. Fair sharing is between frameworks only; weights, quota and the role level of
//! Mesos' two-level sorter are not implemented yet.

mod filters;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use filters::{refuse_ms, Filter, MAX_REFUSE_MS};

use crate::resources::{Resources, ResourcesError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocatorConfig {
    /// How often the owner should call [`Allocator::allocate`] (Mesos `--allocation_interval`).
    pub allocation_interval_ms: u64,
    /// Filter length when a decline carries a negative `refuse_seconds` (Mesos default 5 s).
    pub default_refuse_ms: u64,
}

impl Default for AllocatorConfig {
    fn default() -> Self {
        AllocatorConfig {
            allocation_interval_ms: 1000,
            default_refuse_ms: 5000,
        }
    }
}

/// Resources of one agent handed to one framework (an offer, in master terms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub framework_id: String,
    pub agent_id: String,
    pub resources: Resources,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocatorError {
    #[error("unknown agent `{0}`")]
    UnknownAgent(String),
    #[error("agent `{0}` is already known")]
    AgentExists(String),
    #[error("unknown framework `{0}`")]
    UnknownFramework(String),
    #[error("framework `{0}` is already known")]
    FrameworkExists(String),
    #[error("`{resources}` is not allocated to framework `{framework_id}` on agent `{agent_id}`")]
    NotAllocated {
        framework_id: String,
        agent_id: String,
        resources: String,
    },
    #[error("new total `{total}` of agent `{agent_id}` does not cover its allocations")]
    TotalTooSmall { agent_id: String, total: String },
    #[error(transparent)]
    Resources(#[from] ResourcesError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Agent {
    total: Resources,
    available: Resources,
    /// Framework id to the resources of this agent allocated to it; no empty entries.
    allocated: BTreeMap<String, Resources>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Framework {
    role: String,
    active: bool,
    suppressed: bool,
    /// Agent id to the decline filters on it.
    filters: BTreeMap<String, Vec<Filter>>,
}

impl Framework {
    fn filtered(&self, agent_id: &str, offer: &Resources, now_ms: u64) -> bool {
        self.filters
            .get(agent_id)
            .is_some_and(|fs| fs.iter().any(|f| f.refuses(offer, now_ms)))
    }

    fn wants_offers(&self) -> bool {
        self.active && !self.suppressed
    }
}

/// The part of `available` a framework of `role` may be offered.
fn offerable(available: &Resources, role: &str) -> Resources {
    if role == "*" {
        available.unreserved()
    } else {
        available.unreserved() + available.reserved(role)
    }
}

/// Dominant share: the largest, over the scalar resources of the cluster, of allocated / total.
fn dominant_share_of(allocated: &Resources, cluster: &Resources) -> f64 {
    cluster
        .scalar_names()
        .iter()
        .map(|name| {
            let total = cluster.scalar(name).millis();
            if total <= 0 {
                0.0
            } else {
                allocated.scalar(name).millis() as f64 / total as f64
            }
        })
        .fold(0.0, f64::max)
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Allocator {
    config: AllocatorConfig,
    agents: BTreeMap<String, Agent>,
    frameworks: BTreeMap<String, Framework>,
    last_allocation_ms: Option<u64>,
}

impl Allocator {
    pub fn new(config: AllocatorConfig) -> Allocator {
        Allocator {
            config,
            ..Allocator::default()
        }
    }

    pub fn config(&self) -> &AllocatorConfig {
        &self.config
    }

    /// True when no pass ran yet or the allocation interval has passed since the last one.
    pub fn allocation_due(&self, now_ms: u64) -> bool {
        self.last_allocation_ms
            .is_none_or(|last| now_ms.saturating_sub(last) >= self.config.allocation_interval_ms)
    }

    // ---- agents ----

    pub fn add_agent(&mut self, agent_id: &str, total: Resources) -> Result<(), AllocatorError> {
        self.add_agent_with_used(agent_id, total, &[])
    }

    /// Adds an agent some of whose resources are already in use by known frameworks (an agent
    /// re-registering with running tasks, as Mesos' `addSlave` with `used`).
    pub fn add_agent_with_used(
        &mut self,
        agent_id: &str,
        total: Resources,
        used: &[(String, Resources)],
    ) -> Result<(), AllocatorError> {
        if self.agents.contains_key(agent_id) {
            return Err(AllocatorError::AgentExists(agent_id.to_string()));
        }
        let mut allocated: BTreeMap<String, Resources> = BTreeMap::new();
        let mut available = total.clone();
        for (framework_id, resources) in used {
            if !self.frameworks.contains_key(framework_id) {
                return Err(AllocatorError::UnknownFramework(framework_id.clone()));
            }
            available = available.checked_sub(resources)?;
            if !resources.is_empty() {
                *allocated.entry(framework_id.clone()).or_default() += resources;
            }
        }
        let agent = Agent {
            total,
            available,
            allocated,
        };
        self.agents.insert(agent_id.to_string(), agent);
        Ok(())
    }

    /// Removes an agent: its resources, the allocations on it and the filters naming it are gone.
    pub fn remove_agent(&mut self, agent_id: &str) -> Result<(), AllocatorError> {
        if self.agents.remove(agent_id).is_none() {
            return Err(AllocatorError::UnknownAgent(agent_id.to_string()));
        }
        for framework in self.frameworks.values_mut() {
            framework.filters.remove(agent_id);
        }
        Ok(())
    }

    /// Changes an agent's total (e.g. after a reconfiguration). The new total must cover the
    /// current allocations; the available pool becomes the difference.
    pub fn update_agent_total(
        &mut self,
        agent_id: &str,
        total: Resources,
    ) -> Result<(), AllocatorError> {
        let agent = self
            .agents
            .get_mut(agent_id)
            .ok_or_else(|| AllocatorError::UnknownAgent(agent_id.to_string()))?;
        let in_use = agent
            .allocated
            .values()
            .fold(Resources::new(), |acc, r| acc + r.clone());
        let available = total
            .checked_sub(&in_use)
            .map_err(|_| AllocatorError::TotalTooSmall {
                agent_id: agent_id.to_string(),
                total: total.to_string(),
            })?;
        agent.total = total;
        agent.available = available;
        Ok(())
    }

    // ---- frameworks ----

    /// Adds an active, unsuppressed framework in `role` (`*` for no role).
    pub fn add_framework(&mut self, framework_id: &str, role: &str) -> Result<(), AllocatorError> {
        if self.frameworks.contains_key(framework_id) {
            return Err(AllocatorError::FrameworkExists(framework_id.to_string()));
        }
        let role = if role.is_empty() { "*" } else { role };
        self.frameworks.insert(
            framework_id.to_string(),
            Framework {
                role: role.to_string(),
                active: true,
                suppressed: false,
                filters: BTreeMap::new(),
            },
        );
        Ok(())
    }

    /// Removes a framework and returns everything allocated to it to the agents' available
    /// pools; the caller must not `recover` those resources again. Returns what was released.
    pub fn remove_framework(
        &mut self,
        framework_id: &str,
    ) -> Result<Vec<Allocation>, AllocatorError> {
        if self.frameworks.remove(framework_id).is_none() {
            return Err(AllocatorError::UnknownFramework(framework_id.to_string()));
        }
        let mut released = Vec::new();
        for (agent_id, agent) in &mut self.agents {
            if let Some(resources) = agent.allocated.remove(framework_id) {
                agent.available += &resources;
                released.push(Allocation {
                    framework_id: framework_id.to_string(),
                    agent_id: agent_id.clone(),
                    resources,
                });
            }
        }
        Ok(released)
    }

    fn framework_mut(&mut self, framework_id: &str) -> Result<&mut Framework, AllocatorError> {
        self.frameworks
            .get_mut(framework_id)
            .ok_or_else(|| AllocatorError::UnknownFramework(framework_id.to_string()))
    }

    /// An inactive framework (e.g. disconnected) keeps its allocations but gets no offers.
    pub fn deactivate_framework(&mut self, framework_id: &str) -> Result<(), AllocatorError> {
        self.framework_mut(framework_id)?.active = false;
        Ok(())
    }

    pub fn activate_framework(&mut self, framework_id: &str) -> Result<(), AllocatorError> {
        self.framework_mut(framework_id)?.active = true;
        Ok(())
    }

    /// `SUPPRESS`: the framework gets no offers until it revives.
    pub fn suppress(&mut self, framework_id: &str) -> Result<(), AllocatorError> {
        self.framework_mut(framework_id)?.suppressed = true;
        Ok(())
    }

    /// `REVIVE`: ends suppression and clears all of the framework's decline filters.
    pub fn revive(&mut self, framework_id: &str) -> Result<(), AllocatorError> {
        let framework = self.framework_mut(framework_id)?;
        framework.suppressed = false;
        framework.filters.clear();
        Ok(())
    }

    pub fn role(&self, framework_id: &str) -> Option<&str> {
        self.frameworks.get(framework_id).map(|f| f.role.as_str())
    }

    // ---- recovery and filters ----

    /// Returns resources allocated to `framework_id` on `agent_id` to the available pool: unused
    /// parts of an offer, resources of finished tasks, declined offers. Fails, changing nothing,
    /// when they are not (all) allocated to that framework on that agent.
    pub fn recover(
        &mut self,
        agent_id: &str,
        framework_id: &str,
        resources: &Resources,
    ) -> Result<(), AllocatorError> {
        let agent = self
            .agents
            .get_mut(agent_id)
            .ok_or_else(|| AllocatorError::UnknownAgent(agent_id.to_string()))?;
        let not_allocated = || AllocatorError::NotAllocated {
            framework_id: framework_id.to_string(),
            agent_id: agent_id.to_string(),
            resources: resources.to_string(),
        };
        let held = match agent.allocated.get(framework_id) {
            Some(held) => held,
            None if resources.is_empty() => return Ok(()),
            None => return Err(not_allocated()),
        };
        let rest = held.checked_sub(resources).map_err(|_| not_allocated())?;
        agent.available += resources;
        if rest.is_empty() {
            agent.allocated.remove(framework_id);
        } else {
            agent.allocated.insert(framework_id.to_string(), rest);
        }
        Ok(())
    }

    /// Installs a filter: `framework_id` is not offered resources of `agent_id` contained in
    /// `resources` for `refuse_seconds` (see [`refuse_ms`] for 0, negative and huge values).
    pub fn add_filter(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        resources: &Resources,
        refuse_seconds: f64,
        now_ms: u64,
    ) -> Result<(), AllocatorError> {
        if !self.agents.contains_key(agent_id) {
            return Err(AllocatorError::UnknownAgent(agent_id.to_string()));
        }
        let default_ms = self.config.default_refuse_ms;
        let framework = self.framework_mut(framework_id)?;
        if let Some(ms) = refuse_ms(refuse_seconds, default_ms) {
            if !resources.is_empty() {
                framework
                    .filters
                    .entry(agent_id.to_string())
                    .or_default()
                    .push(Filter {
                        resources: resources.clone(),
                        expires_at_ms: now_ms.saturating_add(ms),
                    });
            }
        }
        Ok(())
    }

    /// A declined offer, as Mesos' `recoverResources` with filters: recovers `resources` and then
    /// installs a filter for them. Fails, changing nothing, if the recovery would fail.
    pub fn decline(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        resources: &Resources,
        refuse_seconds: f64,
        now_ms: u64,
    ) -> Result<(), AllocatorError> {
        if !self.frameworks.contains_key(framework_id) {
            return Err(AllocatorError::UnknownFramework(framework_id.to_string()));
        }
        self.recover(agent_id, framework_id, resources)?;
        self.add_filter(framework_id, agent_id, resources, refuse_seconds, now_ms)
    }

    /// Number of filters of `framework_id` still active at `now_ms`.
    pub fn active_filters(&self, framework_id: &str, now_ms: u64) -> usize {
        self.frameworks.get(framework_id).map_or(0, |f| {
            f.filters
                .values()
                .flatten()
                .filter(|x| x.is_active(now_ms))
                .count()
        })
    }

    fn expire_filters(&mut self, now_ms: u64) {
        for framework in self.frameworks.values_mut() {
            for filters in framework.filters.values_mut() {
                filters.retain(|f| f.is_active(now_ms));
            }
            framework.filters.retain(|_, fs| !fs.is_empty());
        }
    }

    // ---- allocation ----

    /// One allocation pass at `now_ms` (see the module documentation for the order).
    pub fn allocate(&mut self, now_ms: u64) -> Vec<Allocation> {
        self.last_allocation_ms = Some(now_ms);
        self.expire_filters(now_ms);
        let cluster = self.cluster_total();
        let mut held: BTreeMap<&str, Resources> = self
            .frameworks
            .iter()
            .filter(|(_, f)| f.wants_offers())
            .map(|(id, _)| (id.as_str(), Resources::new()))
            .collect();
        for agent in self.agents.values() {
            for (id, r) in &agent.allocated {
                if let Some(sum) = held.get_mut(id.as_str()) {
                    *sum += r;
                }
            }
        }
        let mut out = Vec::new();
        for (agent_id, agent) in &mut self.agents {
            if agent.available.is_empty() || held.is_empty() {
                continue;
            }
            let mut order: Vec<(f64, &str)> = held
                .iter()
                .map(|(id, r)| (dominant_share_of(r, &cluster), *id))
                .collect();
            order.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
            for (_, framework_id) in order {
                let Some(framework) = self.frameworks.get(framework_id) else {
                    continue;
                };
                let offer = offerable(&agent.available, &framework.role);
                if offer.is_empty() || framework.filtered(agent_id, &offer, now_ms) {
                    continue;
                }
                let Ok(rest) = agent.available.checked_sub(&offer) else {
                    continue;
                };
                agent.available = rest;
                *agent.allocated.entry(framework_id.to_string()).or_default() += &offer;
                if let Some(sum) = held.get_mut(framework_id) {
                    *sum += &offer;
                }
                out.push(Allocation {
                    framework_id: framework_id.to_string(),
                    agent_id: agent_id.clone(),
                    resources: offer,
                });
                if agent.available.is_empty() {
                    break;
                }
            }
        }
        out
    }

    // ---- accessors ----

    /// Sum of all agents' totals.
    pub fn cluster_total(&self) -> Resources {
        self.agents
            .values()
            .fold(Resources::new(), |acc, a| acc + a.total.clone())
    }

    /// The framework's dominant share of the cluster; 0 for unknown frameworks or an empty cluster.
    pub fn dominant_share(&self, framework_id: &str) -> f64 {
        dominant_share_of(&self.allocated(framework_id), &self.cluster_total())
    }

    /// Available resources of an agent; empty for an unknown agent.
    pub fn available(&self, agent_id: &str) -> Resources {
        self.agents
            .get(agent_id)
            .map(|a| a.available.clone())
            .unwrap_or_default()
    }

    /// Total resources of an agent; empty for an unknown agent.
    pub fn total(&self, agent_id: &str) -> Resources {
        self.agents
            .get(agent_id)
            .map(|a| a.total.clone())
            .unwrap_or_default()
    }

    /// Everything allocated to a framework, over all agents.
    pub fn allocated(&self, framework_id: &str) -> Resources {
        self.agents
            .values()
            .filter_map(|a| a.allocated.get(framework_id))
            .fold(Resources::new(), |acc, r| acc + r.clone())
    }

    /// What is allocated to a framework on one agent.
    pub fn allocated_on(&self, agent_id: &str, framework_id: &str) -> Resources {
        self.agents
            .get(agent_id)
            .and_then(|a| a.allocated.get(framework_id))
            .cloned()
            .unwrap_or_default()
    }

    pub fn has_agent(&self, agent_id: &str) -> bool {
        self.agents.contains_key(agent_id)
    }

    pub fn agent_ids(&self) -> impl Iterator<Item = &str> {
        self.agents.keys().map(String::as_str)
    }

    pub fn framework_ids(&self) -> impl Iterator<Item = &str> {
        self.frameworks.keys().map(String::as_str)
    }

    /// Checks the accounting: per agent, available plus all allocations equals the total.
    /// Returns the id of the first agent where it does not hold.
    pub fn check_accounting(&self) -> Result<(), String> {
        for (id, agent) in &self.agents {
            let mut sum = agent.available.clone();
            for r in agent.allocated.values() {
                sum = sum.checked_add(r).map_err(|_| id.clone())?;
            }
            if sum != agent.total || agent.allocated.values().any(Resources::is_empty) {
                return Err(id.clone());
            }
        }
        Ok(())
    }
}
