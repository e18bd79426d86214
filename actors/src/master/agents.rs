//! The lifecycle of agents in [`MasterState`]: registration (recorded in the registry before it
//! is answered), reregistration with the tasks an agent still runs, disconnection, health
//! checks, unreachable agents, and agents of the registry that do not come back after a restart.
//!
//! An agent whose link breaks is *disconnected*: its offers are rescinded at once and it leaves
//! the allocator, but its tasks are kept. Only pings missed `max_agent_ping_timeouts` times in a
//! row make it *unreachable*: its tasks become `TASK_LOST` (`TASK_UNREACHABLE` for
//! partition-aware frameworks). An agent that reregisters is rebuilt from what it reports: its
//! live tasks are known again and count as used, the rest of it is offered, once.

use super::frameworks::failover_ms;
use super::registry::RegisteredAgent;
use super::state::{master_update, AgentEntry, ExecutorEntry, FrameworkEntry, MasterState};
use super::state::{Outgoing, Sends};
use meso::process::Upid;
use meso::protocol::*;
use meso::resources::Resources;
use std::collections::{BTreeMap, BTreeSet};

impl MasterState {
    /// Records an admitted agent in the registry; false (logged) when the write failed.
    fn admit(&mut self, id: &AgentId, info: &AgentInfo, upid: &Upid) -> bool {
        let record = RegisteredAgent {
            info: info.clone(),
            upid: upid.clone(),
        };
        match self.registry.admit(id, &record) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!("cannot record agent {id} in the registry: {e}");
                false
            }
        }
    }

    /// `RegisterAgent`: a new id, or the same one again for a retry from the same agent.
    pub fn register_agent(&mut self, from: &Upid, msg: RegisterAgent, now_ms: u64) -> Sends {
        let mut out = Vec::new();
        if let Some(id) = self.agent_by_upid.get(from).cloned() {
            if self.agents.get(&id).is_some_and(|a| a.connected) {
                tracing::info!("agent {id} at {from} registered again: answering with its id");
                let reply = AgentRegistered {
                    agent_id: id,
                    master_info: self.master_info.clone(),
                };
                return vec![(from.clone(), Outgoing::AgentRegistered(reply))];
            }
            // A new agent at the address of one whose link broke: that one is gone for good.
            tracing::info!("agent {id} at {from} is replaced by a new agent");
            out.extend(self.remove_agent(&id, TaskStatusReason::AgentRestarted, now_ms));
        }
        let id = AgentId::new(format!("{}-A{}", self.id_prefix(), self.next_agent));
        self.next_agent += 1;
        let mut info = msg.agent;
        info.id = Some(id.clone());
        if !self.admit(&id, &info, from) {
            return out;
        }
        if let Err(e) = self
            .allocator
            .add_agent(id.as_str(), info.resources.clone())
        {
            tracing::warn!("ignoring RegisterAgent from {from}: {e}");
            return out;
        }
        tracing::info!(
            "registered agent {id} ({}) at {from} with {}",
            info.hostname,
            info.resources
        );
        self.agents
            .insert(id.clone(), AgentEntry::new(info, from.clone()));
        self.agent_by_upid.insert(from.clone(), id.clone());
        self.want_allocation();
        let reply = AgentRegistered {
            agent_id: id,
            master_info: self.master_info.clone(),
        };
        out.push((from.clone(), Outgoing::Link));
        out.push((from.clone(), Outgoing::AgentRegistered(reply)));
        out
    }

    /// Rescinds the outstanding offers on an agent, telling their holders; the resources are not
    /// recovered (the caller takes the agent out of the allocator).
    fn rescind_agent_offers(&mut self, id: &AgentId) -> Sends {
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
        out
    }

    /// Takes an agent out of the allocator, if it is there.
    fn leave_allocator(&mut self, id: &AgentId) {
        if self.allocator.has_agent(id.as_str()) {
            if let Err(e) = self.allocator.remove_agent(id.as_str()) {
                tracing::warn!("cannot take agent {id} out of the allocator: {e}");
            }
        }
    }

    /// Frameworks named by a reregistering agent that this master does not know (it restarted):
    /// they come in disconnected, removed unless a scheduler reregisters before
    /// `max(failover timeout, agent reregistration timeout)`.
    fn adopt_frameworks(&mut self, frameworks: &[FrameworkInfo], now_ms: u64) {
        for framework in frameworks {
            let Some(fid) = framework.id.clone() else {
                continue;
            };
            if self.frameworks.contains_key(&fid) || self.removed_frameworks.contains(&fid) {
                continue;
            }
            if let Err(e) = self.allocator.add_framework(fid.as_str(), &framework.role) {
                tracing::warn!("cannot take in framework {fid}: {e}");
                continue;
            }
            let _ = self.allocator.deactivate_framework(fid.as_str());
            let grace = failover_ms(framework).max(self.timeouts.agent_reregister_timeout_ms);
            self.frameworks.insert(
                fid,
                FrameworkEntry {
                    info: framework.clone(),
                    upid: None,
                    connected: false,
                    failover_deadline_ms: Some(now_ms.saturating_add(grace)),
                },
            );
        }
    }

    /// `ReregisterAgent`: an agent that has an id, connected, disconnected, unreachable, one of
    /// the registry after a restart, or one this master never saw. It is rebuilt from what it
    /// reports: live tasks are known again and count as used by their frameworks; tasks the
    /// master had on it that it does not report are lost (dropped for partition-aware
    /// frameworks); tasks of removed frameworks are shut down.
    pub fn reregister_agent(&mut self, from: &Upid, msg: ReregisterAgent, now_ms: u64) -> Sends {
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
        let mut info = msg.agent.clone();
        info.id = Some(id.clone());
        if !self.admit(&id, &info, from) {
            return Vec::new();
        }
        let mut out = Vec::new();
        if let Some(old) = self.agents.remove(&id) {
            out.extend(self.rescind_agent_offers(&id));
            if old.upid != *from {
                self.agent_by_upid.remove(&old.upid);
            }
        }
        self.leave_allocator(&id);
        self.unreachable.remove(&id);
        self.recovered.remove(&id);
        self.executors.retain(|(a, _), _| a != &id);
        self.adopt_frameworks(&msg.frameworks, now_ms);

        let mut used: BTreeMap<String, Resources> = BTreeMap::new();
        let mut reported: BTreeSet<(FrameworkId, TaskId)> = BTreeSet::new();
        let mut shutdown: BTreeSet<FrameworkId> = BTreeSet::new();
        for t in &msg.tasks {
            if self.removed_frameworks.contains(&t.framework_id) {
                if !t.state.is_terminal() {
                    shutdown.insert(t.framework_id.clone());
                }
                continue;
            }
            if !self.frameworks.contains_key(&t.framework_id) {
                tracing::warn!(
                    "agent {id} reports task {} of unknown framework {}",
                    t.task.task_id,
                    t.framework_id
                );
                continue;
            }
            reported.insert((t.framework_id.clone(), t.task.task_id.clone()));
            let known_terminal = self
                .tasks
                .get(&t.framework_id, &t.task.task_id)
                .is_some_and(|k| k.state.is_terminal() && k.agent_id == id);
            if t.state.is_terminal() && known_terminal {
                continue;
            }
            // A report older than what the master heard since (a repeated or delayed
            // ReregisterAgent) must not bring back a task that ended on this agent: only the
            // master's own verdicts (lost, unreachable) give way to the agent's word.
            let ended_here = self
                .tasks
                .live_or_completed(&t.framework_id, &t.task.task_id)
                .is_some_and(|k| k.agent_id == id && ended_for_good(k.state));
            if ended_here {
                tracing::info!(
                    "ignoring the report of task {} by agent {id}: it already ended",
                    t.task.task_id
                );
                continue;
            }
            self.tasks.put(
                t.framework_id.clone(),
                id.clone(),
                t.task.clone(),
                t.state,
                t.status.clone(),
            );
            if !t.state.is_terminal() {
                *used.entry(t.framework_id.to_string()).or_default() += &t.task.resources;
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
        out.extend(self.lose_unreported(&id, &reported, now_ms));

        let used: Vec<(String, Resources)> = used.into_iter().collect();
        let total = msg.agent.resources.clone();
        if let Err(e) = self
            .allocator
            .add_agent_with_used(id.as_str(), total.clone(), &used)
        {
            // Nothing of it is offered: a total of nothing cannot be counted twice.
            tracing::warn!("agent {id} reports more in use than it has ({e}); offering none of it");
            let _ = self.allocator.add_agent(id.as_str(), Resources::new());
        }
        tracing::info!("reregistered agent {id} at {from}");
        self.agents
            .insert(id.clone(), AgentEntry::new(info, from.clone()));
        self.agent_by_upid.insert(from.clone(), id.clone());
        self.want_allocation();
        for framework_id in shutdown {
            out.push((
                from.clone(),
                Outgoing::ShutdownFramework(ShutdownFramework { framework_id }),
            ));
        }
        let frameworks: BTreeSet<FrameworkId> =
            msg.frameworks.iter().filter_map(|f| f.id.clone()).collect();
        for framework_id in frameworks {
            if let Some(scheduler) = self.scheduler_of(&framework_id).cloned() {
                let update = UpdateFramework {
                    framework_id,
                    scheduler,
                };
                out.push((from.clone(), Outgoing::UpdateFramework(update)));
            }
        }
        let reply = AgentReregistered {
            agent_id: id,
            master_info: self.master_info.clone(),
        };
        out.push((from.clone(), Outgoing::Link));
        out.push((from.clone(), Outgoing::AgentReregistered(reply)));
        out
    }

    /// Live tasks the master has on a reregistering agent that the agent does not report: lost
    /// (dropped for partition-aware frameworks), told to their schedulers.
    fn lose_unreported(
        &mut self,
        id: &AgentId,
        reported: &BTreeSet<(FrameworkId, TaskId)>,
        now_ms: u64,
    ) -> Sends {
        let missing: Vec<(FrameworkId, TaskId)> = self
            .tasks
            .on_agent(id)
            .filter(|t| !t.state.is_terminal())
            .map(|t| (t.framework_id.clone(), t.info.task_id.clone()))
            .filter(|key| !reported.contains(key))
            .collect();
        let mut out = Vec::new();
        for (framework_id, task_id) in missing {
            let state = if self.partition_aware(&framework_id) {
                TaskState::Dropped
            } else {
                TaskState::Lost
            };
            let status = TaskStatus::new(task_id, state, now_ms)
                .with_reason(TaskStatusReason::Reconciliation)
                .with_message(format!("agent {id} does not know the task"))
                .with_agent(id.clone());
            out.extend(self.master_transition(&framework_id, status));
        }
        out
    }

    pub(super) fn partition_aware(&self, framework_id: &FrameworkId) -> bool {
        self.frameworks
            .get(framework_id)
            .is_some_and(|f| f.info.partition_aware)
    }

    /// Applies a status the master made to its tracker and tells the framework's scheduler.
    fn master_transition(&mut self, framework_id: &FrameworkId, status: TaskStatus) -> Sends {
        if let Err(e) = self.tasks.update(framework_id, status.clone()) {
            tracing::warn!("cannot mark task {} {}: {e}", status.task_id, status.state);
            return Vec::new();
        }
        match self.scheduler_of(framework_id) {
            Some(to) => vec![(to.clone(), master_update(framework_id.clone(), status))],
            None => Vec::new(),
        }
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

    /// The link to an agent broke: its offers are rescinded at once and it gets no new ones;
    /// its tasks stay until it reregisters or misses its pings.
    pub fn agent_disconnected(&mut self, upid: &Upid) -> Sends {
        let Some(id) = self.agent_by_upid.get(upid).cloned() else {
            return Vec::new();
        };
        if !self.agents.get(&id).is_some_and(|a| a.connected) {
            return Vec::new();
        }
        tracing::info!("agent {id} at {upid} disconnected");
        let out = self.rescind_agent_offers(&id);
        self.leave_allocator(&id);
        if let Some(agent) = self.agents.get_mut(&id) {
            agent.connected = false;
        }
        out
    }

    /// An `Exited` from the process layer: a scheduler, an agent, or both.
    pub fn exited(&mut self, upid: &Upid, now_ms: u64) -> Sends {
        let mut out = self.framework_disconnected(upid, now_ms);
        out.extend(self.agent_disconnected(upid));
        out
    }

    /// One round of health checks, run every `agent_ping_timeout`: an agent that did not answer
    /// the previous ping missed one; `max_agent_ping_timeouts` in a row make it unreachable.
    /// Every other agent (connected or not) is pinged again.
    pub fn ping_agents(&mut self, now_ms: u64) -> Sends {
        let max = self.timeouts.max_agent_ping_timeouts.max(1);
        let mut out = Vec::new();
        let mut lost = Vec::new();
        for (id, agent) in self.agents.iter_mut() {
            if agent.pong_pending {
                agent.missed_pings += 1;
            }
            if agent.missed_pings >= max {
                lost.push(id.clone());
                continue;
            }
            agent.pong_pending = true;
            let ping = Ping {
                connected: agent.connected,
            };
            out.push((agent.upid.clone(), Outgoing::Ping(ping)));
        }
        for id in lost {
            tracing::warn!("agent {id} missed {max} pings in a row: unreachable");
            out.extend(self.mark_unreachable(&id, now_ms));
        }
        out
    }

    /// `Pong` from an agent: it is alive.
    pub fn pong(&mut self, from: &Upid) -> Sends {
        let Some(agent) = self
            .agent_by_upid
            .get(from)
            .and_then(|id| self.agents.get_mut(id))
        else {
            tracing::debug!("ignoring Pong from {from}: not a registered agent");
            return Vec::new();
        };
        agent.pong_pending = false;
        agent.missed_pings = 0;
        Vec::new()
    }

    /// Agents of the registry that did not reregister within the timeout after a restart are
    /// unreachable (the master knows none of their tasks; frameworks hear `AgentLost`).
    pub fn expire_recovered_agents(&mut self, now_ms: u64) -> Sends {
        let expired: Vec<AgentId> = self
            .recovered
            .iter()
            .filter(|(_, (_, deadline))| *deadline <= now_ms)
            .map(|(id, _)| id.clone())
            .collect();
        let mut out = Vec::new();
        for id in expired {
            if let Some((entry, _)) = self.recovered.remove(&id) {
                tracing::warn!("agent {id} did not reregister in time: unreachable");
                self.unreachable.insert(id.clone(), entry);
                out.extend(self.tell_agent_lost(&id));
            }
        }
        out
    }

    fn tell_agent_lost(&self, id: &AgentId) -> Sends {
        let mut out = Vec::new();
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

    /// Marks an agent unreachable: its offers are rescinded, it leaves the allocator, its live
    /// tasks become `TASK_LOST` (`TASK_UNREACHABLE` for partition-aware frameworks), frameworks
    /// hear `AgentLost`, and the agent is told (should it hear) to reregister.
    pub fn mark_unreachable(&mut self, id: &AgentId, now_ms: u64) -> Sends {
        let Some(agent) = self.agents.remove(id) else {
            return Vec::new();
        };
        self.agent_by_upid.remove(&agent.upid);
        let mut out = self.rescind_agent_offers(id);
        self.leave_allocator(id);
        self.executors.retain(|(a, _), _| a != id);
        let live: Vec<(FrameworkId, TaskId)> = self
            .tasks
            .on_agent(id)
            .filter(|t| !t.state.is_terminal() && t.state != TaskState::Unreachable)
            .map(|t| (t.framework_id.clone(), t.info.task_id.clone()))
            .collect();
        for (framework_id, task_id) in live {
            let state = if self.partition_aware(&framework_id) {
                TaskState::Unreachable
            } else {
                TaskState::Lost
            };
            let status = TaskStatus::new(task_id, state, now_ms)
                .with_reason(TaskStatusReason::AgentRemoved)
                .with_message(format!("agent {id} is unreachable"))
                .with_agent(id.clone());
            out.extend(self.master_transition(&framework_id, status));
        }
        out.extend(self.tell_agent_lost(id));
        out.push((
            agent.upid.clone(),
            Outgoing::Ping(Ping { connected: false }),
        ));
        self.unreachable.insert(id.clone(), agent);
        out
    }

    /// Removes an agent for good (it unregistered, or a new agent took its address): its offers
    /// are rescinded, its resources leave the allocator, its live tasks are lost, the registry
    /// forgets it, and every connected framework hears `AgentLost`.
    pub fn remove_agent(&mut self, id: &AgentId, reason: TaskStatusReason, now_ms: u64) -> Sends {
        let Some(agent) = self.agents.remove(id) else {
            return Vec::new();
        };
        self.agent_by_upid.remove(&agent.upid);
        if let Err(e) = self.registry.remove(id) {
            tracing::error!("cannot remove agent {id} from the registry: {e}");
        }
        let mut out = self.rescind_agent_offers(id);
        self.leave_allocator(id);
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
            out.extend(self.master_transition(&framework_id, status));
        }
        out.extend(self.tell_agent_lost(id));
        out
    }
}

/// A terminal state that only an agent or executor sets: no later report undoes it.
fn ended_for_good(state: TaskState) -> bool {
    state.is_terminal()
        && !matches!(
            state,
            TaskState::Lost | TaskState::Unreachable | TaskState::Dropped | TaskState::Gone
        )
}
