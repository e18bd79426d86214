//! The master's state machine: frameworks, agents, offers and tasks. Pure: no actors, no I/O, no
//! clock. Each event goes in as a method call (with the sender's Upid and the time in
//! milliseconds) and comes out as the messages to send, `Vec<(Upid, Outgoing)>`, which the actor
//! in [`super::actor`] delivers.
//!
//! This file holds registration, the lifecycle of frameworks and agents, and allocation; the
//! task-related flows (accept, decline, kill, status updates, reconciliation) are in
//! [`super::operations`].

use super::book::OfferBook;
use super::tasks::TaskTracker;
use meso::allocator::{Allocator, AllocatorConfig};
use meso::process::Upid;
use meso::protocol::*;
use meso::resources::Resources;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A message the master sends, or a link it makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// Not a message: link to the Upid it goes with, to hear `Exited` when it goes away.
    Link,
    FrameworkRegistered(FrameworkRegistered),
    FrameworkReregistered(FrameworkReregistered),
    AgentRegistered(AgentRegistered),
    AgentReregistered(AgentReregistered),
    ResourceOffers(ResourceOffers),
    RescindOffer(RescindOffer),
    StatusUpdate(StatusUpdate),
    /// Boxed: by far the largest message.
    RunTask(Box<RunTask>),
    KillTaskOnAgent(KillTaskOnAgent),
    StatusUpdateAcknowledgement(StatusUpdateAcknowledgement),
    ExecutorExited(ExecutorExited),
    AgentLost(AgentLost),
    UpdateFramework(UpdateFramework),
    ExecutorToFramework(ExecutorToFramework),
    FrameworkToExecutor(FrameworkToExecutor),
}

/// What the master sends: to whom, what.
pub type Sends = Vec<(Upid, Outgoing)>;

/// A registered framework.
#[derive(Debug, Clone)]
pub struct FrameworkEntry {
    pub info: FrameworkInfo,
    /// The scheduler; `None` for a framework known only from an agent's reregistration.
    pub upid: Option<Upid>,
    pub connected: bool,
}

/// A registered agent.
#[derive(Debug, Clone)]
pub struct AgentEntry {
    pub info: AgentInfo,
    pub upid: Upid,
}

/// A custom executor the master knows to be running, with the resources it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorEntry {
    pub framework_id: FrameworkId,
    pub resources: Resources,
}

/// Everything the master knows. Fields are visible to the master's modules (and their tests).
pub struct MasterState {
    pub(super) master_info: MasterInfo,
    pub(super) allocator: Allocator,
    pub(super) book: OfferBook,
    pub(super) tasks: TaskTracker,
    pub(super) frameworks: BTreeMap<FrameworkId, FrameworkEntry>,
    pub(super) framework_by_upid: HashMap<Upid, FrameworkId>,
    /// Frameworks that unregistered: late status updates of theirs are acknowledged by the master
    /// so that agents stop resending them.
    pub(super) removed_frameworks: BTreeSet<FrameworkId>,
    pub(super) agents: BTreeMap<AgentId, AgentEntry>,
    pub(super) agent_by_upid: HashMap<Upid, AgentId>,
    pub(super) executors: BTreeMap<(AgentId, ExecutorId), ExecutorEntry>,
    next_framework: u64,
    next_agent: u64,
    allocation_wanted: bool,
}

impl MasterState {
    /// A master with id `master_id` (unique for each run) at `upid`.
    pub fn new(master_id: &str, upid: Upid, allocator: AllocatorConfig) -> MasterState {
        MasterState {
            master_info: MasterInfo {
                id: master_id.to_string(),
                upid,
            },
            allocator: Allocator::new(allocator),
            book: OfferBook::new(master_id),
            tasks: TaskTracker::new(),
            frameworks: BTreeMap::new(),
            framework_by_upid: HashMap::new(),
            removed_frameworks: BTreeSet::new(),
            agents: BTreeMap::new(),
            agent_by_upid: HashMap::new(),
            executors: BTreeMap::new(),
            next_framework: 1,
            next_agent: 1,
            allocation_wanted: false,
        }
    }

    pub fn master_info(&self) -> &MasterInfo {
        &self.master_info
    }

    pub fn allocator(&self) -> &Allocator {
        &self.allocator
    }

    pub fn book(&self) -> &OfferBook {
        &self.book
    }

    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    pub fn framework(&self, id: &FrameworkId) -> Option<&FrameworkEntry> {
        self.frameworks.get(id)
    }

    pub fn agent(&self, id: &AgentId) -> Option<&AgentEntry> {
        self.agents.get(id)
    }

    /// Whether an event since the last call asks for an allocation pass soon (resources came
    /// back, an agent or framework arrived). Reading clears it: the actor coalesces passes.
    pub fn take_allocation_wanted(&mut self) -> bool {
        std::mem::take(&mut self.allocation_wanted)
    }

    pub(super) fn want_allocation(&mut self) {
        self.allocation_wanted = true;
    }

    /// The framework that `from` is the scheduler of, if `from` is one and names `claimed`.
    pub(super) fn sender_framework(
        &self,
        message: &str,
        from: &Upid,
        claimed: &FrameworkId,
    ) -> Option<FrameworkId> {
        match self.framework_by_upid.get(from) {
            Some(id) if id == claimed => Some(id.clone()),
            Some(id) => {
                tracing::warn!(
                    "ignoring {message} from {from}: it names framework {claimed} but is the scheduler of {id}"
                );
                None
            }
            None => {
                tracing::warn!("ignoring {message} from {from}: not a registered scheduler");
                None
            }
        }
    }

    /// The scheduler of a connected framework.
    pub(super) fn scheduler_of(&self, id: &FrameworkId) -> Option<&Upid> {
        self.frameworks
            .get(id)
            .filter(|f| f.connected)
            .and_then(|f| f.upid.as_ref())
    }

    // ---- frameworks ----

    /// `RegisterFramework`: a new id, or the same one again for a retry from the same scheduler.
    pub fn register_framework(&mut self, from: &Upid, msg: RegisterFramework) -> Sends {
        if let Some(id) = self.framework_by_upid.get(from).cloned() {
            tracing::info!("framework {id} at {from} registered again: answering with its id");
            let mut out = Vec::new();
            // A scheduler whose link broke and that retries is connected again.
            if let Some(entry) = self.frameworks.get_mut(&id).filter(|f| !f.connected) {
                entry.connected = true;
                if let Err(e) = self.allocator.activate_framework(id.as_str()) {
                    tracing::warn!("framework {id} is not in the allocator: {e}");
                }
                self.want_allocation();
                out.push((from.clone(), Outgoing::Link));
            }
            let reply = FrameworkRegistered {
                framework_id: id,
                master_info: self.master_info.clone(),
            };
            out.push((from.clone(), Outgoing::FrameworkRegistered(reply)));
            return out;
        }
        let id = FrameworkId::new(format!("{}-F{}", self.master_info.id, self.next_framework));
        self.next_framework += 1;
        let mut info = msg.framework;
        info.id = Some(id.clone());
        if let Err(e) = self.allocator.add_framework(id.as_str(), &info.role) {
            tracing::warn!("ignoring RegisterFramework from {from}: {e}");
            return Vec::new();
        }
        tracing::info!("registered framework {id} ({}) at {from}", info.name);
        self.frameworks.insert(
            id.clone(),
            FrameworkEntry {
                info,
                upid: Some(from.clone()),
                connected: true,
            },
        );
        self.framework_by_upid.insert(from.clone(), id.clone());
        self.want_allocation();
        let reply = FrameworkRegistered {
            framework_id: id,
            master_info: self.master_info.clone(),
        };
        vec![
            (from.clone(), Outgoing::Link),
            (from.clone(), Outgoing::FrameworkRegistered(reply)),
        ]
    }

    /// `ReregisterFramework`: a framework that has an id, maybe from a new scheduler address, or
    /// one this master has not seen (it restarted).
    pub fn reregister_framework(&mut self, from: &Upid, msg: ReregisterFramework) -> Sends {
        let Some(id) = msg.framework.id.clone() else {
            tracing::warn!("ignoring ReregisterFramework from {from}: no framework id");
            return Vec::new();
        };
        if self.removed_frameworks.contains(&id) {
            tracing::warn!("ignoring ReregisterFramework from {from}: framework {id} was removed");
            return Vec::new();
        }
        if let Some(other) = self.framework_by_upid.get(from) {
            if other != &id {
                tracing::warn!(
                    "ignoring ReregisterFramework from {from}: it is the scheduler of {other}, not {id}"
                );
                return Vec::new();
            }
        }
        let mut out = Vec::new();
        match self.frameworks.get_mut(&id) {
            Some(entry) => {
                let old = entry.upid.replace(from.clone());
                entry.connected = true;
                if let Some(old) = old.filter(|old| old != from) {
                    self.framework_by_upid.remove(&old);
                    // Agents running its tasks must send their updates' answers to the new one.
                    let agents: BTreeSet<AgentId> = self
                        .tasks
                        .for_framework(&id)
                        .map(|t| t.agent_id.clone())
                        .collect();
                    for agent in agents.iter().filter_map(|a| self.agents.get(a)) {
                        let update = UpdateFramework {
                            framework_id: id.clone(),
                            scheduler: from.clone(),
                        };
                        out.push((agent.upid.clone(), Outgoing::UpdateFramework(update)));
                    }
                }
                if let Err(e) = self.allocator.activate_framework(id.as_str()) {
                    tracing::warn!("framework {id} is not in the allocator: {e}");
                }
            }
            None => {
                if let Err(e) = self
                    .allocator
                    .add_framework(id.as_str(), &msg.framework.role)
                {
                    tracing::warn!("ignoring ReregisterFramework from {from}: {e}");
                    return Vec::new();
                }
                self.frameworks.insert(
                    id.clone(),
                    FrameworkEntry {
                        info: msg.framework,
                        upid: Some(from.clone()),
                        connected: true,
                    },
                );
            }
        }
        tracing::info!("reregistered framework {id} at {from}");
        self.framework_by_upid.insert(from.clone(), id.clone());
        self.want_allocation();
        let reply = FrameworkReregistered {
            framework_id: id,
            master_info: self.master_info.clone(),
        };
        out.push((from.clone(), Outgoing::Link));
        out.push((from.clone(), Outgoing::FrameworkReregistered(reply)));
        out
    }

    /// Takes back every outstanding offer of a framework: each is rescinded (told to the
    /// scheduler when `tell`) and its resources recovered.
    fn rescind_framework_offers(&mut self, id: &FrameworkId, tell: bool) -> Sends {
        let mut out = Vec::new();
        let scheduler = self.scheduler_of(id).cloned();
        for offer_id in self.book.offers_for_framework(id) {
            let Some(offer) = self.book.remove_offer(&offer_id) else {
                continue;
            };
            self.recover(&offer.agent_id, id, &offer.resources);
            if let (true, Some(to)) = (tell, &scheduler) {
                out.push((
                    to.clone(),
                    Outgoing::RescindOffer(RescindOffer { offer_id }),
                ));
            }
        }
        out
    }

    /// The scheduler of a framework went away: its offers are rescinded and recovered, it gets no
    /// new ones, and its tasks keep running (failover timeouts come later).
    pub fn framework_disconnected(&mut self, upid: &Upid) -> Sends {
        let Some(id) = self.framework_by_upid.get(upid).cloned() else {
            return Vec::new();
        };
        tracing::info!("framework {id} at {upid} disconnected");
        let out = self.rescind_framework_offers(&id, true);
        if let Some(entry) = self.frameworks.get_mut(&id) {
            entry.connected = false;
        }
        if let Err(e) = self.allocator.deactivate_framework(id.as_str()) {
            tracing::warn!("framework {id} is not in the allocator: {e}");
        }
        out
    }

    /// `DeactivateFramework`: no more offers; outstanding ones are rescinded.
    pub fn deactivate_framework(&mut self, from: &Upid, msg: DeactivateFramework) -> Sends {
        let Some(id) = self.sender_framework("DeactivateFramework", from, &msg.framework_id) else {
            return Vec::new();
        };
        let out = self.rescind_framework_offers(&id, true);
        if let Err(e) = self.allocator.deactivate_framework(id.as_str()) {
            tracing::warn!("framework {id} is not in the allocator: {e}");
        }
        out
    }

    /// `UnregisterFramework`: its live tasks are killed, and it is removed.
    pub fn unregister_framework(&mut self, from: &Upid, msg: UnregisterFramework) -> Sends {
        let Some(id) = self.sender_framework("UnregisterFramework", from, &msg.framework_id) else {
            return Vec::new();
        };
        tracing::info!("framework {id} at {from} unregistered: removing it");
        let mut out = self.rescind_framework_offers(&id, false);
        for task in self.tasks.for_framework(&id) {
            if task.state.is_terminal() {
                continue;
            }
            if let Some(agent) = self.agents.get(&task.agent_id) {
                let kill = KillTaskOnAgent {
                    framework_id: id.clone(),
                    task_id: task.info.task_id.clone(),
                    kill_grace_period_ms: task.info.kill_grace_period_ms,
                };
                out.push((agent.upid.clone(), Outgoing::KillTaskOnAgent(kill)));
            }
        }
        let task_ids = self.tasks.task_ids(&id);
        for task_id in &task_ids {
            self.tasks.remove(&id, task_id);
        }
        self.executors.retain(|_, e| e.framework_id != id);
        // Everything allocated to it (offers and running tasks) goes back to the agents.
        if let Err(e) = self.allocator.remove_framework(id.as_str()) {
            tracing::warn!("framework {id} is not in the allocator: {e}");
        }
        self.frameworks.remove(&id);
        self.framework_by_upid.remove(from);
        self.removed_frameworks.insert(id);
        self.want_allocation();
        out
    }

    // ---- agents ----

    /// `RegisterAgent`: a new id, or the same one again for a retry from the same agent.
    pub fn register_agent(&mut self, from: &Upid, msg: RegisterAgent) -> Sends {
        if let Some(id) = self.agent_by_upid.get(from) {
            tracing::info!("agent {id} at {from} registered again: answering with its id");
            let reply = AgentRegistered {
                agent_id: id.clone(),
                master_info: self.master_info.clone(),
            };
            return vec![(from.clone(), Outgoing::AgentRegistered(reply))];
        }
        let id = AgentId::new(format!("{}-A{}", self.master_info.id, self.next_agent));
        self.next_agent += 1;
        let mut info = msg.agent;
        info.id = Some(id.clone());
        if let Err(e) = self
            .allocator
            .add_agent(id.as_str(), info.resources.clone())
        {
            tracing::warn!("ignoring RegisterAgent from {from}: {e}");
            return Vec::new();
        }
        tracing::info!(
            "registered agent {id} ({}) at {from} with {}",
            info.hostname,
            info.resources
        );
        self.agents.insert(
            id.clone(),
            AgentEntry {
                info,
                upid: from.clone(),
            },
        );
        self.agent_by_upid.insert(from.clone(), id.clone());
        self.want_allocation();
        let reply = AgentRegistered {
            agent_id: id,
            master_info: self.master_info.clone(),
        };
        vec![
            (from.clone(), Outgoing::Link),
            (from.clone(), Outgoing::AgentRegistered(reply)),
        ]
    }

    /// `ReregisterAgent`: an agent that has an id. A known one is answered (its address may have
    /// changed); an unknown one (this master restarted, or removed it) is added back with the
    /// tasks it reports, whose resources count as used by their frameworks.
    pub fn reregister_agent(&mut self, from: &Upid, msg: ReregisterAgent) -> Sends {
        let Some(id) = msg.agent.id.clone() else {
            tracing::warn!("ignoring ReregisterAgent from {from}: no agent id");
            return Vec::new();
        };
        if let Some(other) = self.agent_by_upid.get(from) {
            if other != &id {
                tracing::warn!(
                    "ignoring ReregisterAgent from {from}: it is agent {other}, not {id}"
                );
                return Vec::new();
            }
        }
        if let Some(entry) = self.agents.get_mut(&id) {
            let old = std::mem::replace(&mut entry.upid, from.clone());
            if &old != from {
                self.agent_by_upid.remove(&old);
            }
        } else {
            // Frameworks of its tasks that this master does not know come in disconnected; they
            // are completed when their schedulers reregister.
            for framework in &msg.frameworks {
                let Some(fid) = framework.id.clone() else {
                    continue;
                };
                if self.frameworks.contains_key(&fid) || self.removed_frameworks.contains(&fid) {
                    continue;
                }
                if self
                    .allocator
                    .add_framework(fid.as_str(), &framework.role)
                    .is_ok()
                {
                    let _ = self.allocator.deactivate_framework(fid.as_str());
                    self.frameworks.insert(
                        fid,
                        FrameworkEntry {
                            info: framework.clone(),
                            upid: None,
                            connected: false,
                        },
                    );
                }
            }
            let mut used: BTreeMap<String, Resources> = BTreeMap::new();
            for t in &msg.tasks {
                if t.state.is_terminal() || !self.frameworks.contains_key(&t.framework_id) {
                    continue;
                }
                // A task this master marked lost when the agent went is running after all.
                let stale = self
                    .tasks
                    .get(&t.framework_id, &t.task.task_id)
                    .is_some_and(|known| known.state.is_terminal());
                if stale {
                    self.tasks.remove(&t.framework_id, &t.task.task_id);
                }
                let added = self.tasks.add_in_state(
                    t.framework_id.clone(),
                    id.clone(),
                    t.task.clone(),
                    t.state,
                    t.status.clone(),
                );
                match added {
                    Ok(()) => {
                        *used.entry(t.framework_id.to_string()).or_default() += &t.task.resources
                    }
                    Err(e) => tracing::warn!("agent {id} reports task {}: {e}", t.task.task_id),
                }
            }
            for executor in &msg.executors {
                if !self.frameworks.contains_key(&executor.framework_id) {
                    continue;
                }
                let key = (id.clone(), executor.executor_id.clone());
                let entry = ExecutorEntry {
                    framework_id: executor.framework_id.clone(),
                    resources: executor.resources.clone(),
                };
                *used.entry(executor.framework_id.to_string()).or_default() += &entry.resources;
                self.executors.insert(key, entry);
            }
            let used: Vec<(String, Resources)> = used.into_iter().collect();
            let total = msg.agent.resources.clone();
            if let Err(e) = self
                .allocator
                .add_agent_with_used(id.as_str(), total, &used)
            {
                tracing::warn!("ignoring ReregisterAgent from {from}: {e}");
                for t in &msg.tasks {
                    self.tasks.remove(&t.framework_id, &t.task.task_id);
                }
                self.executors.retain(|(a, _), _| a != &id);
                return Vec::new();
            }
            let mut info = msg.agent;
            info.id = Some(id.clone());
            self.agents.insert(
                id.clone(),
                AgentEntry {
                    info,
                    upid: from.clone(),
                },
            );
            self.want_allocation();
        }
        tracing::info!("reregistered agent {id} at {from}");
        self.agent_by_upid.insert(from.clone(), id.clone());
        let reply = AgentReregistered {
            agent_id: id,
            master_info: self.master_info.clone(),
        };
        vec![
            (from.clone(), Outgoing::Link),
            (from.clone(), Outgoing::AgentReregistered(reply)),
        ]
    }

    /// `UnregisterAgent`: the agent leaves for good.
    pub fn unregister_agent(&mut self, from: &Upid, msg: UnregisterAgent, now_ms: u64) -> Sends {
        match self.agent_by_upid.get(from) {
            Some(id) if id == &msg.agent_id => {
                self.remove_agent(&msg.agent_id, TaskStatusReason::AgentRemoved, now_ms)
            }
            _ => {
                tracing::warn!(
                    "ignoring UnregisterAgent from {from}: it is not agent {}",
                    msg.agent_id
                );
                Vec::new()
            }
        }
    }

    /// The link to an agent broke.
    pub fn agent_disconnected(&mut self, upid: &Upid, now_ms: u64) -> Sends {
        let Some(id) = self.agent_by_upid.get(upid).cloned() else {
            return Vec::new();
        };
        tracing::info!("agent {id} at {upid} disconnected");
        self.remove_agent(&id, TaskStatusReason::AgentDisconnected, now_ms)
    }

    /// An `Exited` from the process layer: a scheduler, an agent, or both.
    pub fn exited(&mut self, upid: &Upid, now_ms: u64) -> Sends {
        let mut out = self.framework_disconnected(upid);
        out.extend(self.agent_disconnected(upid, now_ms));
        out
    }

    /// Removes an agent at once (health checks with a grace period come later): its offers are
    /// rescinded, its resources leave the allocator, its live tasks are lost, and every connected
    /// framework hears `AgentLost`.
    pub fn remove_agent(&mut self, id: &AgentId, reason: TaskStatusReason, now_ms: u64) -> Sends {
        let Some(agent) = self.agents.remove(id) else {
            return Vec::new();
        };
        self.agent_by_upid.remove(&agent.upid);
        let mut out = Vec::new();
        for offer_id in self.book.offers_for_agent(id) {
            let Some(offer) = self.book.remove_offer(&offer_id) else {
                continue;
            };
            if let Some(to) = self.scheduler_of(&offer.framework_id) {
                out.push((
                    to.clone(),
                    Outgoing::RescindOffer(RescindOffer { offer_id }),
                ));
            }
        }
        if let Err(e) = self.allocator.remove_agent(id.as_str()) {
            tracing::warn!("agent {id} is not in the allocator: {e}");
        }
        self.executors.retain(|(a, _), _| a != id);
        let live: Vec<(FrameworkId, TaskId)> = self
            .tasks
            .on_agent(id)
            .filter(|t| !t.state.is_terminal())
            .map(|t| (t.framework_id.clone(), t.info.task_id.clone()))
            .collect();
        for (framework_id, task_id) in live {
            let status = TaskStatus::new(task_id, TaskState::Lost, now_ms)
                .with_reason(reason)
                .with_message(format!("agent {id} is gone"))
                .with_agent(id.clone());
            if let Err(e) = self.tasks.update(&framework_id, status.clone()) {
                tracing::warn!("cannot mark task {} lost: {e}", status.task_id);
            }
            if let Some(to) = self.scheduler_of(&framework_id) {
                out.push((to.clone(), master_update(framework_id, status)));
            }
        }
        for framework in self.frameworks.values().filter(|f| f.connected) {
            if let Some(to) = &framework.upid {
                let lost = AgentLost {
                    agent_id: id.clone(),
                };
                out.push((to.clone(), Outgoing::AgentLost(lost)));
            }
        }
        out
    }

    // ---- allocation and offers ----

    /// Returns resources to the allocator, logging (never failing) when the accounting disagrees.
    pub(super) fn recover(&mut self, agent: &AgentId, framework: &FrameworkId, r: &Resources) {
        if let Err(e) = self
            .allocator
            .recover(agent.as_str(), framework.as_str(), r)
        {
            tracing::warn!("cannot recover {r} of framework {framework} on agent {agent}: {e}");
        } else if !r.is_empty() {
            self.want_allocation();
        }
    }

    /// One allocation pass: every allocation becomes an offer, sent to its framework in one
    /// `ResourceOffers` per framework.
    pub fn allocate(&mut self, now_ms: u64) -> Sends {
        let mut by_framework: BTreeMap<FrameworkId, Vec<Offer>> = BTreeMap::new();
        for allocation in self.allocator.allocate(now_ms) {
            let framework_id = FrameworkId::new(allocation.framework_id.as_str());
            let agent_id = AgentId::new(allocation.agent_id.as_str());
            let (Some(agent), Some(_)) =
                (self.agents.get(&agent_id), self.scheduler_of(&framework_id))
            else {
                tracing::warn!("allocation to {framework_id} on {agent_id} has no recipient");
                self.recover(&agent_id, &framework_id, &allocation.resources);
                continue;
            };
            let (hostname, attributes, agent_upid) = (
                agent.info.hostname.clone(),
                agent.info.attributes.clone(),
                agent.upid.clone(),
            );
            let id = self.book.add_offer(
                framework_id.clone(),
                agent_id.clone(),
                allocation.resources.clone(),
                now_ms,
            );
            by_framework
                .entry(framework_id.clone())
                .or_default()
                .push(Offer {
                    id,
                    framework_id,
                    agent_id,
                    hostname,
                    resources: allocation.resources,
                    attributes,
                    agent_upid,
                });
        }
        let mut out = Vec::new();
        for (framework_id, offers) in by_framework {
            if let Some(to) = self.scheduler_of(&framework_id) {
                out.push((
                    to.clone(),
                    Outgoing::ResourceOffers(ResourceOffers { offers }),
                ));
            }
        }
        out
    }

    /// Whether the allocation interval has passed since the last pass.
    pub fn allocation_due(&self, now_ms: u64) -> bool {
        self.allocator.allocation_due(now_ms)
    }

    /// Rescinds and recovers the offers outstanding for `timeout_ms` or more.
    pub fn expire_offers(&mut self, now_ms: u64, timeout_ms: u64) -> Sends {
        let mut out = Vec::new();
        for offer_id in self.book.expired(now_ms, timeout_ms) {
            let Some(offer) = self.book.remove_offer(&offer_id) else {
                continue;
            };
            tracing::info!("offer {offer_id} expired");
            self.recover(&offer.agent_id, &offer.framework_id, &offer.resources);
            if let Some(to) = self.scheduler_of(&offer.framework_id) {
                out.push((
                    to.clone(),
                    Outgoing::RescindOffer(RescindOffer { offer_id }),
                ));
            }
        }
        out
    }
}

/// A status update made by the master (no uuid: nothing to acknowledge).
pub(super) fn master_update(framework_id: FrameworkId, status: TaskStatus) -> Outgoing {
    Outgoing::StatusUpdate(StatusUpdate {
        framework_id,
        executor_id: status.executor_id.clone(),
        status,
        source: StatusSource::Master,
    })
}
