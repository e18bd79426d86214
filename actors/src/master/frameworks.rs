//! The lifecycle of frameworks in [`MasterState`]: registration, reregistration (a retry, a new
//! scheduler taking over, or a framework this master has not seen since it restarted),
//! disconnection with its failover timer, deactivation and removal.

use super::state::{FrameworkEntry, MasterState, Outgoing, Sends};
use meso::process::Upid;
use meso::protocol::*;
use std::collections::BTreeSet;

/// A framework's failover timeout in milliseconds (`failover_timeout_s` may be anything).
pub fn failover_ms(info: &FrameworkInfo) -> u64 {
    // Float to integer casts saturate (NaN gives 0).
    (info.failover_timeout_s * 1000.0) as u64
}

impl MasterState {
    /// The error a scheduler gets when it names a framework that was removed.
    fn removed_error(&self, from: &Upid, id: &FrameworkId, what: &str) -> Sends {
        tracing::warn!("refusing {what} from {from}: framework {id} was removed");
        let error = FrameworkError {
            message: format!("framework {id} was removed"),
        };
        vec![(from.clone(), Outgoing::FrameworkError(error))]
    }

    /// `RegisterFramework`: a new id, or the same one again for a retry from the same scheduler.
    /// A registration that carries an id is a reregistration.
    pub fn register_framework(&mut self, from: &Upid, msg: RegisterFramework) -> Sends {
        if msg.framework.id.is_some() {
            let again = ReregisterFramework {
                framework: msg.framework,
                failover: true,
            };
            return self.reregister_framework(from, again);
        }
        if let Some(id) = self.framework_by_upid.get(from).cloned() {
            tracing::info!("framework {id} at {from} registered again: answering with its id");
            let mut out = Vec::new();
            // A scheduler whose link broke and that retries is connected again.
            if let Some(entry) = self.frameworks.get_mut(&id).filter(|f| !f.connected) {
                entry.connected = true;
                entry.failover_deadline_ms = None;
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
        let id = FrameworkId::new(format!("{}-F{}", self.id_prefix(), self.next_framework));
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
                failover_deadline_ms: None,
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

    /// `ReregisterFramework`: a framework that has an id, maybe from a new scheduler address
    /// (failover: its agents hear of the new address), or one this master has not seen (it
    /// restarted: the framework is taken in under its id). A removed framework is refused.
    pub fn reregister_framework(&mut self, from: &Upid, msg: ReregisterFramework) -> Sends {
        let Some(id) = msg.framework.id.clone() else {
            tracing::warn!("ignoring ReregisterFramework from {from}: no framework id");
            return Vec::new();
        };
        if self.removed_frameworks.contains(&id) {
            return self.removed_error(from, &id, "ReregisterFramework");
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
        // As in Mesos: a scheduler that was replaced by a failover and retries its own
        // reregistration is told it failed over, rather than taking the framework back.
        let current = self.frameworks.get(&id).and_then(|f| f.upid.clone());
        if let Some(current) = current.filter(|c| c != from) {
            if !msg.failover {
                tracing::warn!(
                    "refusing ReregisterFramework from {from}: framework {id} failed over to {current}"
                );
                let error = FrameworkError {
                    message: "framework failed over".to_string(),
                };
                return vec![(from.clone(), Outgoing::FrameworkError(error))];
            }
            // The scheduler it replaces, if it still runs, must stop acting for the framework.
            let error = FrameworkError {
                message: "framework failed over".to_string(),
            };
            out.push((current, Outgoing::FrameworkError(error)));
        }
        match self.frameworks.get_mut(&id) {
            Some(entry) => {
                let old = entry.upid.replace(from.clone());
                entry.connected = true;
                entry.failover_deadline_ms = None;
                // Keep what the scheduler says about itself now (timeouts may change).
                let mut info = msg.framework.clone();
                info.id = Some(id.clone());
                entry.info = info;
                if old.as_ref() != Some(from) {
                    if let Some(old) = &old {
                        self.framework_by_upid.remove(old);
                    }
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
                        failover_deadline_ms: None,
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
    pub(super) fn rescind_framework_offers(&mut self, id: &FrameworkId, tell: bool) -> Sends {
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
    /// new ones, its tasks keep running, and its failover timer starts.
    pub fn framework_disconnected(&mut self, upid: &Upid, now_ms: u64) -> Sends {
        let Some(id) = self.framework_by_upid.get(upid).cloned() else {
            return Vec::new();
        };
        if !self.frameworks.get(&id).is_some_and(|f| f.connected) {
            return Vec::new();
        }
        let out = self.rescind_framework_offers(&id, true);
        if let Some(entry) = self.frameworks.get_mut(&id) {
            let timeout = failover_ms(&entry.info);
            tracing::info!(
                "framework {id} at {upid} disconnected; removed in {timeout} ms unless it reregisters"
            );
            entry.connected = false;
            entry.failover_deadline_ms = Some(now_ms.saturating_add(timeout));
        }
        if let Err(e) = self.allocator.deactivate_framework(id.as_str()) {
            tracing::warn!("framework {id} is not in the allocator: {e}");
        }
        out
    }

    /// Removes the disconnected frameworks whose failover timeout has passed.
    pub fn expire_frameworks(&mut self, now_ms: u64) -> Sends {
        let expired: Vec<FrameworkId> = self
            .frameworks
            .iter()
            .filter(|(_, f)| !f.connected && f.failover_deadline_ms.is_some_and(|d| d <= now_ms))
            .map(|(id, _)| id.clone())
            .collect();
        let mut out = Vec::new();
        for id in expired {
            tracing::info!("framework {id} did not fail over in time: removing it");
            out.extend(self.remove_framework(&id));
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
        self.remove_framework(&id)
    }

    /// Removes a framework for good: its offers go back, every agent running something of it
    /// is told to shut it down, its tasks and executors are forgotten, and a later registration
    /// under its id is refused.
    pub(super) fn remove_framework(&mut self, id: &FrameworkId) -> Sends {
        let mut out = self.rescind_framework_offers(id, false);
        let mut agents: BTreeSet<AgentId> = self
            .tasks
            .for_framework(id)
            .filter(|t| !t.state.is_terminal())
            .map(|t| t.agent_id.clone())
            .collect();
        agents.extend(
            self.executors
                .iter()
                .filter(|(_, e)| &e.framework_id == id)
                .map(|((a, _), _)| a.clone()),
        );
        for agent in agents.iter().filter_map(|a| self.agents.get(a)) {
            let shutdown = ShutdownFramework {
                framework_id: id.clone(),
            };
            out.push((agent.upid.clone(), Outgoing::ShutdownFramework(shutdown)));
        }
        self.tasks.remove_framework(id);
        self.executors.retain(|_, e| &e.framework_id != id);
        // Everything allocated to it (offers and running tasks) goes back to the agents.
        if let Err(e) = self.allocator.remove_framework(id.as_str()) {
            tracing::warn!("framework {id} is not in the allocator: {e}");
        }
        if let Some(entry) = self.frameworks.remove(id) {
            if let Some(upid) = entry.upid {
                if self.framework_by_upid.get(&upid) == Some(id) {
                    self.framework_by_upid.remove(&upid);
                }
            }
        }
        self.removed_frameworks.insert(id.clone());
        self.want_allocation();
        out
    }
}
