//! The master's state machine: frameworks, agents, offers and tasks. Pure: no actors, no I/O, no
//! clock. Each event goes in as a method call (with the sender's Upid and the time in
//! milliseconds) and comes out as the messages to send, `Vec<(Upid, Outgoing)>`, which the actor
//! in [`super::actor`] delivers.
//!
//! This file holds registration, the lifecycle of frameworks and agents, and allocation; the
//! task-related flows (accept, decline, kill, status updates, reconciliation) are in
//! [`super::operations`].

use super::book::OfferBook;
use super::registry::{MemoryRegistry, Registry, RegistryError};
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
    FrameworkError(FrameworkError),
    ShutdownFramework(ShutdownFramework),
    Ping(Ping),
    MasterInspection(MasterInspection),
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
    /// While disconnected: when the framework is removed unless a scheduler reregisters.
    pub failover_deadline_ms: Option<u64>,
}

/// A registered agent.
#[derive(Debug, Clone)]
pub struct AgentEntry {
    pub info: AgentInfo,
    pub upid: Upid,
    /// False once its link broke: it gets no offers until it reregisters.
    pub connected: bool,
    /// A ping went out and no pong came back yet.
    pub pong_pending: bool,
    /// Pings in a row that went unanswered.
    pub missed_pings: u32,
}

impl AgentEntry {
    pub fn new(info: AgentInfo, upid: Upid) -> AgentEntry {
        AgentEntry {
            info,
            upid,
            connected: true,
            pong_pending: false,
            missed_pings: 0,
        }
    }
}

/// The timeouts the pure state applies (the actor decides when to tick).
#[derive(Debug, Clone, PartialEq)]
pub struct MasterTimeouts {
    /// Pings in a row without an answer after which an agent is unreachable.
    pub max_agent_ping_timeouts: u32,
    /// After a restart: how long agents of the registry have to reregister.
    pub agent_reregister_timeout_ms: u64,
}

impl Default for MasterTimeouts {
    fn default() -> MasterTimeouts {
        MasterTimeouts {
            max_agent_ping_timeouts: 5,
            agent_reregister_timeout_ms: 600_000,
        }
    }
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
    /// Agents that missed their pings (or did not reregister after a restart): their tasks are
    /// lost or unreachable; they may still come back.
    pub(super) unreachable: BTreeMap<AgentId, AgentEntry>,
    /// After a restart: agents of the registry not reregistered yet, with their deadline.
    pub(super) recovered: BTreeMap<AgentId, (AgentEntry, u64)>,
    pub(super) registry: Box<dyn Registry>,
    pub(super) timeouts: MasterTimeouts,
    /// Prefix of the ids this run makes (master id and run number), unique across restarts.
    id_prefix: String,
    pub(super) next_framework: u64,
    pub(super) next_agent: u64,
    allocation_wanted: bool,
}

impl MasterState {
    /// A master with id `master_id` at `upid` and a registry in memory.
    pub fn new(master_id: &str, upid: Upid, allocator: AllocatorConfig) -> MasterState {
        let registry = Box::new(MemoryRegistry::default());
        let timeouts = MasterTimeouts::default();
        MasterState::from_registry(registry, master_id, upid, allocator, timeouts, 0)
            .expect("a memory registry does not fail")
    }

    /// A master that starts from `registry`: it keeps the master id found there (or records
    /// `fresh_id`), starts a new run, and expects the agents found there to reregister within
    /// the reregistration timeout.
    pub fn from_registry(
        mut registry: Box<dyn Registry>,
        fresh_id: &str,
        upid: Upid,
        allocator: AllocatorConfig,
        timeouts: MasterTimeouts,
        now_ms: u64,
    ) -> Result<MasterState, RegistryError> {
        let master_id = match registry.master_id() {
            Some(id) => id,
            None => {
                registry.set_master_id(fresh_id)?;
                fresh_id.to_string()
            }
        };
        let run = registry.next_run()?;
        let id_prefix = format!("{master_id}-{run}");
        let deadline = now_ms.saturating_add(timeouts.agent_reregister_timeout_ms);
        let recovered = registry
            .agents()
            .into_iter()
            .map(|(id, a)| (id, (AgentEntry::new(a.info, a.upid), deadline)))
            .collect::<BTreeMap<_, _>>();
        if !recovered.is_empty() {
            tracing::info!(
                "master {master_id} run {run}: {} agents to reregister",
                recovered.len()
            );
        }
        Ok(MasterState {
            master_info: MasterInfo {
                id: master_id,
                upid,
            },
            allocator: Allocator::new(allocator),
            book: OfferBook::new(&id_prefix),
            tasks: TaskTracker::new(),
            frameworks: BTreeMap::new(),
            framework_by_upid: HashMap::new(),
            removed_frameworks: BTreeSet::new(),
            agents: BTreeMap::new(),
            agent_by_upid: HashMap::new(),
            executors: BTreeMap::new(),
            unreachable: BTreeMap::new(),
            recovered,
            registry,
            timeouts,
            id_prefix,
            next_framework: 1,
            next_agent: 1,
            allocation_wanted: false,
        })
    }

    /// The prefix of ids made by this run of the master.
    pub(super) fn id_prefix(&self) -> &str {
        &self.id_prefix
    }

    pub fn unreachable_agent(&self, id: &AgentId) -> Option<&AgentEntry> {
        self.unreachable.get(id)
    }

    /// Agents of the registry that have not reregistered since the restart.
    pub fn recovered_agents(&self) -> impl Iterator<Item = &AgentId> {
        self.recovered.keys()
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
