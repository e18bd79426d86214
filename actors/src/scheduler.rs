//! The scheduler driver: what a framework links against to talk to the master.
//!
//! A framework either receives [`SchedulerEvent`]s in an actix actor of its own
//! ([`start_scheduler`]) or implements the [`Scheduler`] trait ([`run_scheduler`]). Either way it
//! acts through a [`SchedulerDriver`]: `launch`, `decline`, `kill`, `acknowledge`, `reconcile`,
//! `revive`, `suppress`, `stop`.
//!
//! # Layout
//! - this file: the events, the trait, the driver handle and the constructors.
//! - [`driver`]: the driver actor: registration with backoff, the link to the master, dispatch of
//!   the master's messages, implicit acknowledgements.
//! - [`dedup`]: pure bookkeeping: seen and acknowledged uuids, the backoff sequence.

pub mod dedup;
mod driver;

use actix::{Actor, AsyncContext, Context, Handler, Recipient};
use dedup::SeenUuids;
use meso::process::{Node, Process, ProcessError, Upid, UpidError};
use meso::protocol::{
    AcceptOffers, AgentId, DeclineOffers, ExecutorId, Filters, FrameworkId, FrameworkInfo,
    KillTask, MasterInfo, Offer, OfferId, Operation, ReconcileTasks, ReviveOffers,
    StatusUpdateAcknowledgement, SuppressOffers, TaskId, TaskInfo, TaskState, TaskStatus,
    TaskStatusReason, UnregisterFramework,
};
use parking_lot::Mutex;
use std::sync::Arc;

/// How many status update uuids the driver remembers to recognise resends.
const SEEN_UUIDS: usize = 100_000;

/// What the driver tells the framework.
#[derive(Debug, Clone, PartialEq)]
pub enum SchedulerEvent {
    Registered {
        framework_id: FrameworkId,
        master_info: MasterInfo,
    },
    Reregistered {
        framework_id: FrameworkId,
        master_info: MasterInfo,
    },
    ResourceOffers(Vec<Offer>),
    OfferRescinded(OfferId),
    StatusUpdate(TaskStatus),
    AgentLost(AgentId),
    ExecutorLost {
        executor_id: ExecutorId,
        agent_id: AgentId,
        status: i32,
    },
    FrameworkMessage {
        executor_id: ExecutorId,
        agent_id: AgentId,
        data: Vec<u8>,
    },
    /// The connection to the master broke, or the master cannot be reached; the driver is
    /// registering again. Told once per disconnection (not once per attempt).
    Disconnected,
    /// The master refused or removed the framework; the driver has stopped.
    Error(String),
}

impl actix::Message for SchedulerEvent {
    type Result = ();
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Upid(#[from] UpidError),
}

/// How the driver behaves.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    /// Acknowledge each status update once the framework handled it (the default). When false, the
    /// framework calls [`SchedulerDriver::acknowledge`] itself.
    pub implicit_acknowledgements: bool,
}

impl Default for DriverOptions {
    fn default() -> DriverOptions {
        DriverOptions {
            implicit_acknowledgements: true,
        }
    }
}

/// What the driver handle and the driver actor share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) framework_id: Option<FrameworkId>,
    pub(crate) seen: SeenUuids,
    pub(crate) stopped: bool,
}

/// Tells the driver actor to stop (local only).
#[derive(Debug)]
pub(crate) struct StopDriver;

impl actix::Message for StopDriver {
    type Result = ();
}

/// The framework's handle on its driver. Cheap to clone, usable from any thread of the actix
/// system. Every call is fire-and-forget: answers come back as events.
#[derive(Clone)]
pub struct SchedulerDriver {
    process: Process,
    master: Upid,
    shared: Arc<Mutex<Shared>>,
    events: Recipient<SchedulerEvent>,
    stop: Recipient<StopDriver>,
}

impl std::fmt::Debug for SchedulerDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SchedulerDriver({} -> {})",
            self.process.me(),
            self.master
        )
    }
}

impl SchedulerDriver {
    /// The driver actor's address, which the master sees as the scheduler.
    pub fn upid(&self) -> &Upid {
        self.process.me()
    }

    pub fn master(&self) -> &Upid {
        &self.master
    }

    /// The id the master gave the framework, once registered.
    pub fn framework_id(&self) -> Option<FrameworkId> {
        self.shared.lock().framework_id.clone()
    }

    /// The id to put in a call, or `None` when the driver cannot act (not registered, stopped).
    fn active_id(&self, what: &str) -> Option<FrameworkId> {
        let shared = self.shared.lock();
        if shared.stopped {
            tracing::warn!("ignoring {what}: the driver is stopped");
            return None;
        }
        if shared.framework_id.is_none() {
            tracing::warn!("ignoring {what}: the framework is not registered yet");
        }
        shared.framework_id.clone()
    }

    /// Launches `tasks` on the given offers (all of one agent). Resources left unused are filtered
    /// from this framework as `filters` says. When the driver cannot reach the master the tasks are
    /// reported TASK_LOST at once, as the Mesos driver does.
    pub fn launch(&self, offer_ids: &[OfferId], tasks: Vec<TaskInfo>, filters: Filters) {
        let Some(framework_id) = self.active_id("launch") else {
            for task in tasks {
                let status = TaskStatus::new(task.task_id, TaskState::Lost, now_ms())
                    .with_reason(TaskStatusReason::MasterDisconnected)
                    .with_message("the scheduler driver is not registered with a master");
                self.events.do_send(SchedulerEvent::StatusUpdate(status));
            }
            return;
        };
        self.process.send(
            &self.master,
            AcceptOffers {
                framework_id,
                offer_ids: offer_ids.to_vec(),
                operations: vec![Operation::Launch { tasks }],
                filters,
            },
        );
    }

    /// Gives an offer back; its resources stay away from this framework as `filters` says.
    pub fn decline(&self, offer_id: OfferId, filters: Filters) {
        if let Some(framework_id) = self.active_id("decline") {
            self.process.send(
                &self.master,
                DeclineOffers {
                    framework_id,
                    offer_ids: vec![offer_id],
                    filters,
                },
            );
        }
    }

    pub fn kill(&self, task_id: TaskId, agent_id: Option<AgentId>) {
        if let Some(framework_id) = self.active_id("kill") {
            self.process.send(
                &self.master,
                KillTask {
                    framework_id,
                    task_id,
                    agent_id,
                },
            );
        }
    }

    /// Acknowledges a status update (explicit acknowledgements). Updates without a uuid or an
    /// agent need none and are skipped.
    pub fn acknowledge(&self, status: &TaskStatus) {
        let (Some(uuid), Some(agent_id)) = (status.uuid, status.agent_id.clone()) else {
            return;
        };
        let Some(framework_id) = self.active_id("acknowledge") else {
            return;
        };
        self.shared.lock().seen.acknowledged(uuid);
        self.process.send(
            &self.master,
            StatusUpdateAcknowledgement {
                agent_id,
                framework_id,
                task_id: status.task_id.clone(),
                uuid,
            },
        );
    }

    /// Asks for the latest state of these tasks; an empty list asks for all of the framework's.
    pub fn reconcile(&self, statuses: Vec<(TaskId, Option<AgentId>)>) {
        if let Some(framework_id) = self.active_id("reconcile") {
            self.process.send(
                &self.master,
                ReconcileTasks {
                    framework_id,
                    statuses,
                },
            );
        }
    }

    /// Clears this framework's filters and resumes offers.
    pub fn revive(&self) {
        if let Some(framework_id) = self.active_id("revive") {
            self.process
                .send(&self.master, ReviveOffers { framework_id });
        }
    }

    /// Asks the master for no more offers until [`SchedulerDriver::revive`].
    pub fn suppress(&self) {
        if let Some(framework_id) = self.active_id("suppress") {
            self.process
                .send(&self.master, SuppressOffers { framework_id });
        }
    }

    /// Unregisters the framework (the master kills its tasks) and stops the driver. Idempotent.
    pub fn stop(&self) {
        let framework_id = {
            let mut shared = self.shared.lock();
            if shared.stopped {
                return;
            }
            shared.stopped = true;
            shared.framework_id.clone()
        };
        if let Some(framework_id) = framework_id {
            self.process
                .send(&self.master, UnregisterFramework { framework_id });
        }
        self.stop.do_send(StopDriver);
    }

    /// Stops the driver without unregistering: the framework's tasks keep running, and another
    /// scheduler may take the framework over within its failover timeout (as a scheduler that
    /// crashed). Idempotent.
    pub fn abort(&self) {
        {
            let mut shared = self.shared.lock();
            if shared.stopped {
                return;
            }
            shared.stopped = true;
        }
        self.stop.do_send(StopDriver);
    }

    pub fn is_stopped(&self) -> bool {
        self.shared.lock().stopped
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Starts a driver actor named `scheduler-<random hex>` on `node` that registers `framework` with
/// `master` and sends every event to `events`. Must run inside an actix system.
pub fn start_scheduler(
    node: &Node,
    master: Upid,
    framework: FrameworkInfo,
    events: Recipient<SchedulerEvent>,
) -> Result<SchedulerDriver, SchedulerError> {
    start_scheduler_with(node, master, framework, events, DriverOptions::default())
}

/// [`start_scheduler`] with options (explicit acknowledgements).
pub fn start_scheduler_with(
    node: &Node,
    master: Upid,
    framework: FrameworkInfo,
    events: Recipient<SchedulerEvent>,
    options: DriverOptions,
) -> Result<SchedulerDriver, SchedulerError> {
    let name = format!("scheduler-{:016x}", rand::random::<u64>());
    let process = node.process(&name)?;
    let shared = Arc::new(Mutex::new(Shared {
        framework_id: framework.id.clone(),
        seen: SeenUuids::new(SEEN_UUIDS),
        stopped: false,
    }));
    let actor = driver::DriverActor::new(
        process.clone(),
        master.clone(),
        framework,
        events.clone(),
        shared.clone(),
        options,
    );
    let (_, addr) = driver::spawn(node, &name, actor)?;
    Ok(SchedulerDriver {
        process,
        master,
        shared,
        events,
        stop: addr.recipient(),
    })
}

/// A framework's callbacks. Each gets the driver to act with. Only `resource_offers` and
/// `status_update` must be written; the others do nothing by default.
pub trait Scheduler {
    fn registered(
        &mut self,
        _driver: &SchedulerDriver,
        _framework_id: &FrameworkId,
        _master: &MasterInfo,
    ) {
    }
    fn reregistered(&mut self, _driver: &SchedulerDriver, _master: &MasterInfo) {}
    fn resource_offers(&mut self, driver: &SchedulerDriver, offers: Vec<Offer>);
    fn offer_rescinded(&mut self, _driver: &SchedulerDriver, _offer_id: &OfferId) {}
    fn status_update(&mut self, driver: &SchedulerDriver, status: TaskStatus);
    fn framework_message(
        &mut self,
        _driver: &SchedulerDriver,
        _executor_id: &ExecutorId,
        _agent_id: &AgentId,
        _data: &[u8],
    ) {
    }
    fn agent_lost(&mut self, _driver: &SchedulerDriver, _agent_id: &AgentId) {}
    fn executor_lost(
        &mut self,
        _driver: &SchedulerDriver,
        _executor_id: &ExecutorId,
        _agent_id: &AgentId,
        _status: i32,
    ) {
    }
    fn disconnected(&mut self, _driver: &SchedulerDriver) {}
    fn error(&mut self, _driver: &SchedulerDriver, _message: &str) {}
}

/// The actor that turns events into [`Scheduler`] calls.
struct Adapter<S: Scheduler + 'static> {
    scheduler: Box<S>,
    driver: SchedulerDriver,
}

impl<S: Scheduler + 'static> Actor for Adapter<S> {
    type Context = Context<Self>;
}

impl<S: Scheduler + 'static> Handler<SchedulerEvent> for Adapter<S> {
    type Result = ();

    fn handle(&mut self, event: SchedulerEvent, _: &mut Context<Self>) {
        let (s, d) = (&mut self.scheduler, &self.driver);
        match event {
            SchedulerEvent::Registered {
                framework_id,
                master_info,
            } => s.registered(d, &framework_id, &master_info),
            SchedulerEvent::Reregistered { master_info, .. } => s.reregistered(d, &master_info),
            SchedulerEvent::ResourceOffers(offers) => s.resource_offers(d, offers),
            SchedulerEvent::OfferRescinded(id) => s.offer_rescinded(d, &id),
            SchedulerEvent::StatusUpdate(status) => s.status_update(d, status),
            SchedulerEvent::AgentLost(id) => s.agent_lost(d, &id),
            SchedulerEvent::ExecutorLost {
                executor_id,
                agent_id,
                status,
            } => s.executor_lost(d, &executor_id, &agent_id, status),
            SchedulerEvent::FrameworkMessage {
                executor_id,
                agent_id,
                data,
            } => s.framework_message(d, &executor_id, &agent_id, &data),
            SchedulerEvent::Disconnected => s.disconnected(d),
            SchedulerEvent::Error(message) => s.error(d, &message),
        }
    }
}

/// Starts a driver for `scheduler`: the scheduler lives in an actor of its own and is called for
/// each event. Must run inside an actix system.
pub fn run_scheduler<S: Scheduler + 'static>(
    node: &Node,
    master: Upid,
    framework: FrameworkInfo,
    scheduler: S,
) -> Result<SchedulerDriver, SchedulerError> {
    run_scheduler_with(node, master, framework, scheduler, DriverOptions::default())
}

/// [`run_scheduler`] with options (explicit acknowledgements).
pub fn run_scheduler_with<S: Scheduler + 'static>(
    node: &Node,
    master: Upid,
    framework: FrameworkInfo,
    scheduler: S,
    options: DriverOptions,
) -> Result<SchedulerDriver, SchedulerError> {
    let ctx: Context<Adapter<S>> = Context::new();
    let events = ctx.address().recipient();
    let driver = start_scheduler_with(node, master, framework, events, options)?;
    ctx.run(Adapter {
        scheduler: Box::new(scheduler),
        driver: driver.clone(),
    });
    Ok(driver)
}
