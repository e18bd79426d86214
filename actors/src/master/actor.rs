//! The master actor: the table of messages it handles (in [`start_master`]), each handler a line
//! that hands the message to [`MasterState`] and sends what comes back.
//!
//! Time: `now_ms` is the time since the actor started on the tokio clock, so tests that pause
//! and advance the clock control offers, filters and timeouts.

use super::registry::{MemoryRegistry, RedbRegistry, Registry, RegistryError};
use super::state::{MasterState, MasterTimeouts, Outgoing, Sends};
use actix::{Actor, AsyncContext, Context, Handler};
use meso::allocator::AllocatorConfig;
use meso::process::{Exited, Incoming, Node, Process, ProcessError, Upid, UpidError};
use meso::protocol::*;
use std::path::PathBuf;
use std::time::Duration;

/// How long after an event that frees or adds resources the allocation pass runs, so that a burst
/// of events (many tasks finishing) makes one pass.
pub const ALLOCATION_BATCH_MS: u64 = 10;

/// How the master runs.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterConfig {
    /// Period of the allocation pass that runs even without events (Mesos `--allocation_interval`).
    pub allocation_interval_ms: u64,
    /// Offers outstanding this long are rescinded (Mesos `--offer_timeout`); never when `None`.
    pub offer_timeout_ms: Option<u64>,
    /// Where the master keeps its registry (a redb database); in memory when `None`.
    pub work_dir: Option<PathBuf>,
    /// How often each agent is pinged, and how long a ping may go unanswered (Mesos
    /// `--agent_ping_timeout`).
    pub agent_ping_timeout_ms: u64,
    /// Unanswered pings in a row after which an agent is unreachable (Mesos
    /// `--max_agent_ping_timeouts`).
    pub max_agent_ping_timeouts: u32,
    /// After a restart, how long agents of the registry have to reregister (Mesos
    /// `--agent_reregister_timeout`).
    pub agent_reregister_timeout_ms: u64,
}

impl Default for MasterConfig {
    fn default() -> MasterConfig {
        MasterConfig {
            allocation_interval_ms: 1000,
            offer_timeout_ms: None,
            work_dir: None,
            agent_ping_timeout_ms: 15_000,
            max_agent_ping_timeouts: 5,
            agent_reregister_timeout_ms: 600_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error("cannot start the master actor: {0}")]
    Process(#[from] ProcessError),
    #[error("cannot name the master actor: {0}")]
    Upid(#[from] UpidError),
    #[error("cannot open the registry: {0}")]
    Registry(#[from] RegistryError),
}

/// Starts the master as the actor `master` on `node` and returns its Upid.
pub fn start_master(node: &Node, config: MasterConfig) -> Result<Upid, MasterError> {
    let upid = node.upid("master")?;
    let fresh_id = format!("{:08x}", rand::random::<u32>());
    let allocator = AllocatorConfig {
        allocation_interval_ms: config.allocation_interval_ms.max(1),
        ..AllocatorConfig::default()
    };
    let registry: Box<dyn Registry> = match &config.work_dir {
        Some(dir) => Box::new(RedbRegistry::open(dir)?),
        None => Box::new(MemoryRegistry::default()),
    };
    let timeouts = MasterTimeouts {
        max_agent_ping_timeouts: config.max_agent_ping_timeouts,
        agent_reregister_timeout_ms: config.agent_reregister_timeout_ms,
    };
    let state =
        MasterState::from_registry(registry, &fresh_id, upid.clone(), allocator, timeouts, 0)?;
    let master_id = state.master_info().id.clone();
    let master = Master {
        state,
        process: node.process("master")?,
        started: tokio::time::Instant::now(),
        allocation_pending: false,
        config,
    };
    tracing::info!("master {master_id} starting at {upid}");
    let (upid, _) = node
        .actor::<Master>("master")
        .handle::<RegisterFramework>()
        .handle::<ReregisterFramework>()
        .handle::<UnregisterFramework>()
        .handle::<DeactivateFramework>()
        .handle::<AcceptOffers>()
        .handle::<DeclineOffers>()
        .handle::<ReviveOffers>()
        .handle::<SuppressOffers>()
        .handle::<KillTask>()
        .handle::<ReconcileTasks>()
        .handle::<StatusUpdateAcknowledgement>()
        .handle::<FrameworkToExecutor>()
        .handle::<RegisterAgent>()
        .handle::<ReregisterAgent>()
        .handle::<UnregisterAgent>()
        .handle::<StatusUpdate>()
        .handle::<ExecutorExited>()
        .handle::<ExecutorToFramework>()
        .handle::<Pong>()
        .handle::<InspectMaster>()
        .exited()
        .start(master)?;
    Ok(upid)
}

pub struct Master {
    state: MasterState,
    process: Process,
    started: tokio::time::Instant,
    /// An event-driven allocation pass is scheduled.
    allocation_pending: bool,
    config: MasterConfig,
}

impl Master {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Sends what the state decided, then schedules an allocation pass if it asked for one.
    fn dispatch(&mut self, out: Sends, ctx: &mut Context<Self>) {
        for (to, outgoing) in out {
            let p = &self.process;
            match outgoing {
                Outgoing::Link => p.link(&to),
                Outgoing::FrameworkRegistered(m) => p.send(&to, m),
                Outgoing::FrameworkReregistered(m) => p.send(&to, m),
                Outgoing::AgentRegistered(m) => p.send(&to, m),
                Outgoing::AgentReregistered(m) => p.send(&to, m),
                Outgoing::ResourceOffers(m) => p.send(&to, m),
                Outgoing::RescindOffer(m) => p.send(&to, m),
                Outgoing::StatusUpdate(m) => p.send(&to, m),
                Outgoing::RunTask(m) => p.send(&to, *m),
                Outgoing::KillTaskOnAgent(m) => p.send(&to, m),
                Outgoing::StatusUpdateAcknowledgement(m) => p.send(&to, m),
                Outgoing::ExecutorExited(m) => p.send(&to, m),
                Outgoing::AgentLost(m) => p.send(&to, m),
                Outgoing::UpdateFramework(m) => p.send(&to, m),
                Outgoing::ExecutorToFramework(m) => p.send(&to, m),
                Outgoing::FrameworkToExecutor(m) => p.send(&to, m),
                Outgoing::FrameworkError(m) => p.send(&to, m),
                Outgoing::ShutdownFramework(m) => p.send(&to, m),
                Outgoing::Ping(m) => p.send(&to, m),
                Outgoing::MasterInspection(m) => p.send(&to, m),
            }
        }
        if self.state.take_allocation_wanted() && !self.allocation_pending {
            self.allocation_pending = true;
            ctx.run_later(Duration::from_millis(ALLOCATION_BATCH_MS), |act, ctx| {
                act.allocation_pending = false;
                let now = act.now_ms();
                let out = act.state.allocate(now);
                act.dispatch(out, ctx);
            });
        }
    }
}

impl Actor for Master {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let interval = Duration::from_millis(self.config.allocation_interval_ms.max(1));
        ctx.run_interval(interval, |act, ctx| {
            let now = act.now_ms();
            if act.state.allocation_due(now) {
                let out = act.state.allocate(now);
                act.dispatch(out, ctx);
            }
        });
        let ping = Duration::from_millis(self.config.agent_ping_timeout_ms.max(1));
        ctx.run_interval(ping, |act, ctx| {
            let now = act.now_ms();
            let out = act.state.ping_agents(now);
            act.dispatch(out, ctx);
        });
        // Failover timeouts and reregistration deadlines are checked often enough for their
        // granularity (whole seconds, or the reregistration timeout).
        let check =
            Duration::from_millis((self.config.agent_reregister_timeout_ms / 10).clamp(10, 250));
        ctx.run_interval(check, |act, ctx| {
            let now = act.now_ms();
            let mut out = act.state.expire_frameworks(now);
            out.extend(act.state.expire_recovered_agents(now));
            act.dispatch(out, ctx);
        });
        if let Some(timeout_ms) = self.config.offer_timeout_ms {
            let check = Duration::from_millis(timeout_ms.clamp(10, 1000));
            ctx.run_interval(check, move |act, ctx| {
                let now = act.now_ms();
                let out = act.state.expire_offers(now, timeout_ms);
                act.dispatch(out, ctx);
            });
        }
    }
}

/// One handler per message: `handle!(Message, |state, from, msg, now_ms| call)`.
macro_rules! handle {
    ($msg:ty, |$s:ident, $from:ident, $m:ident, $now:ident| $body:expr) => {
        impl Handler<Incoming<$msg>> for Master {
            type Result = ();
            fn handle(&mut self, m: Incoming<$msg>, ctx: &mut Context<Self>) {
                #[allow(unused_variables)]
                let $now = self.now_ms();
                let Incoming {
                    from: $from,
                    msg: $m,
                } = m;
                let $s = &mut self.state;
                let out = $body;
                self.dispatch(out, ctx);
            }
        }
    };
}

handle!(InspectMaster, |s, from, m, now| vec![(
    from,
    Outgoing::MasterInspection(s.inspect_page(m.first_agent, m.max_agents))
)]);
handle!(RegisterFramework, |s, from, m, now| s
    .register_framework(&from, m));
handle!(ReregisterFramework, |s, from, m, now| s
    .reregister_framework(&from, m));
handle!(UnregisterFramework, |s, from, m, now| s
    .unregister_framework(&from, m));
handle!(DeactivateFramework, |s, from, m, now| s
    .deactivate_framework(&from, m));
handle!(AcceptOffers, |s, from, m, now| s
    .accept_offers(&from, m, now));
handle!(DeclineOffers, |s, from, m, now| s
    .decline_offers(&from, m, now));
handle!(ReviveOffers, |s, from, m, now| s.revive_offers(&from, m));
handle!(SuppressOffers, |s, from, m, now| s
    .suppress_offers(&from, m));
handle!(KillTask, |s, from, m, now| s.kill_task(&from, m, now));
handle!(ReconcileTasks, |s, from, m, now| s
    .reconcile_tasks(&from, m, now));
handle!(StatusUpdateAcknowledgement, |s, from, m, now| s
    .acknowledge(&from, m));
handle!(FrameworkToExecutor, |s, from, m, now| s
    .framework_to_executor(&from, m));
handle!(RegisterAgent, |s, from, m, now| s
    .register_agent(&from, m, now));
handle!(ReregisterAgent, |s, from, m, now| s
    .reregister_agent(&from, m, now));
handle!(Pong, |s, from, _m, now| s.pong(&from));
handle!(UnregisterAgent, |s, from, m, now| s
    .unregister_agent(&from, m, now));
handle!(StatusUpdate, |s, from, m, now| s.status_update(&from, m));
handle!(ExecutorExited, |s, from, m, now| s
    .executor_exited(&from, m));
handle!(ExecutorToFramework, |s, from, m, now| s
    .executor_to_framework(&from, m));

impl Handler<Exited> for Master {
    type Result = ();
    fn handle(&mut self, m: Exited, ctx: &mut Context<Self>) {
        let now = self.now_ms();
        let out = self.state.exited(&m.0, now);
        self.dispatch(out, ctx);
    }
}

#[cfg(test)]
#[path = "actor_tests.rs"]
mod tests;
