//! The driver actor: registers the framework, keeps the link to the master, and turns the master's
//! messages into [`SchedulerEvent`]s.

use super::dedup::{next_backoff, Verdict, REGISTER_BACKOFF_MIN};
use super::{DriverOptions, SchedulerEvent, Shared, StopDriver};
use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Recipient, SpawnHandle,
    WrapFuture,
};
use meso::process::{Exited, Incoming, Node, Process, ProcessError, Upid};
use meso::protocol::{
    AgentLost, ExecutorExited, ExecutorToFramework, FrameworkError, FrameworkInfo,
    FrameworkRegistered, FrameworkReregistered, Heartbeat, RegisterFramework, ReregisterFramework,
    RescindOffer, ResourceOffers, StatusUpdate, StatusUpdateAcknowledgement,
};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct DriverActor {
    process: Process,
    master: Upid,
    framework: FrameworkInfo,
    events: Recipient<SchedulerEvent>,
    shared: Arc<Mutex<Shared>>,
    options: DriverOptions,
    /// Whether the master confirmed the (re)registration since the last disconnection.
    connected: bool,
    /// Whether a link to the master is in place (a link fires once).
    linked: bool,
    backoff: Duration,
    retry: Option<SpawnHandle>,
    /// Whether this driver has been registered at least once: a first registration under an
    /// existing framework id takes over from an earlier scheduler (failover).
    ever_registered: bool,
    /// Whether the framework has heard `Disconnected` since the driver was last registered (it
    /// hears it once per disconnection, not once per failed dial).
    told_disconnected: bool,
}

impl DriverActor {
    pub(crate) fn new(
        process: Process,
        master: Upid,
        framework: FrameworkInfo,
        events: Recipient<SchedulerEvent>,
        shared: Arc<Mutex<Shared>>,
        options: DriverOptions,
    ) -> DriverActor {
        DriverActor {
            process,
            master,
            framework,
            events,
            shared,
            options,
            connected: false,
            linked: false,
            backoff: REGISTER_BACKOFF_MIN,
            retry: None,
            ever_registered: false,
            told_disconnected: false,
        }
    }

    /// Sends one (re)registration and schedules the next until the master answers.
    fn register(&mut self, ctx: &mut Context<Self>) {
        if self.connected || self.shared.lock().stopped {
            return;
        }
        if !self.linked {
            self.process.link(&self.master);
            self.linked = true;
        }
        let id = self.shared.lock().framework_id.clone();
        match id {
            Some(id) => {
                let mut framework = self.framework.clone();
                framework.id = Some(id);
                self.process.send(
                    &self.master,
                    ReregisterFramework {
                        framework,
                        failover: !self.ever_registered,
                    },
                );
            }
            None => self.process.send(
                &self.master,
                RegisterFramework {
                    framework: self.framework.clone(),
                },
            ),
        }
        let delay = self.backoff;
        self.backoff = next_backoff(delay);
        self.schedule_register(ctx, delay);
    }

    fn schedule_register(&mut self, ctx: &mut Context<Self>, delay: Duration) {
        if let Some(handle) = self.retry.take() {
            ctx.cancel_future(handle);
        }
        self.retry = Some(ctx.run_later(delay, |this, ctx| {
            this.retry = None;
            this.register(ctx);
        }));
    }

    /// Whether a message claiming to come from the master does; logs and drops it otherwise.
    fn is_the_master(&self, from: &Upid, what: &str) -> bool {
        if from == &self.master {
            return true;
        }
        tracing::warn!(
            "ignoring {what} from {from}: not the master {}",
            self.master
        );
        false
    }

    fn emit(&self, event: SchedulerEvent) {
        self.events.do_send(event);
    }

    fn on_registered(
        &mut self,
        ctx: &mut Context<Self>,
        framework_id: meso::protocol::FrameworkId,
        event: SchedulerEvent,
    ) {
        if self.connected {
            tracing::debug!("ignoring a repeated registration answer for {framework_id}");
            return;
        }
        self.connected = true;
        self.ever_registered = true;
        self.told_disconnected = false;
        self.backoff = REGISTER_BACKOFF_MIN;
        // The link made with the registration may have fired already: a dial that failed fires
        // it at once, while the frame stays queued and reaches the master once it listens. The
        // answer then finds no link in place, and without one the driver would never hear that
        // this master went away. Link again now that the master is known to be there.
        if !self.linked {
            self.process.link(&self.master);
            self.linked = true;
        }
        if let Some(handle) = self.retry.take() {
            ctx.cancel_future(handle);
        }
        self.shared.lock().framework_id = Some(framework_id);
        self.emit(event);
    }

    fn acknowledge(&self, update: &StatusUpdate) {
        let (Some(uuid), Some(agent_id)) = (update.status.uuid, update.status.agent_id.clone())
        else {
            return;
        };
        self.shared.lock().seen.acknowledged(uuid);
        self.process.send(
            &self.master,
            StatusUpdateAcknowledgement {
                agent_id,
                framework_id: update.framework_id.clone(),
                task_id: update.status.task_id.clone(),
                uuid,
            },
        );
    }
}

impl Actor for DriverActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.register(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.process.unlink(&self.master);
        self.process.node().unregister(self.process.me().name());
    }
}

pub(crate) fn spawn(
    node: &Node,
    name: &str,
    actor: DriverActor,
) -> Result<(Upid, actix::Addr<DriverActor>), ProcessError> {
    node.actor::<DriverActor>(name)
        .handle::<FrameworkRegistered>()
        .handle::<FrameworkReregistered>()
        .handle::<ResourceOffers>()
        .handle::<RescindOffer>()
        .handle::<StatusUpdate>()
        .handle::<AgentLost>()
        .handle::<ExecutorExited>()
        .handle::<ExecutorToFramework>()
        .handle::<FrameworkError>()
        .handle::<Heartbeat>()
        .exited()
        .start(actor)
}

impl Handler<Incoming<FrameworkRegistered>> for DriverActor {
    type Result = ();
    fn handle(&mut self, m: Incoming<FrameworkRegistered>, ctx: &mut Context<Self>) {
        if !self.is_the_master(&m.from, "FrameworkRegistered") {
            return;
        }
        let id = m.msg.framework_id.clone();
        let event = SchedulerEvent::Registered {
            framework_id: m.msg.framework_id,
            master_info: m.msg.master_info,
        };
        self.on_registered(ctx, id, event);
    }
}

impl Handler<Incoming<FrameworkReregistered>> for DriverActor {
    type Result = ();
    fn handle(&mut self, m: Incoming<FrameworkReregistered>, ctx: &mut Context<Self>) {
        if !self.is_the_master(&m.from, "FrameworkReregistered") {
            return;
        }
        let id = m.msg.framework_id.clone();
        let event = SchedulerEvent::Reregistered {
            framework_id: m.msg.framework_id,
            master_info: m.msg.master_info,
        };
        self.on_registered(ctx, id, event);
    }
}

impl Handler<Incoming<ResourceOffers>> for DriverActor {
    type Result = ();
    fn handle(&mut self, m: Incoming<ResourceOffers>, _: &mut Context<Self>) {
        if self.is_the_master(&m.from, "ResourceOffers") {
            self.emit(SchedulerEvent::ResourceOffers(m.msg.offers));
        }
    }
}

impl Handler<Incoming<RescindOffer>> for DriverActor {
    type Result = ();
    fn handle(&mut self, m: Incoming<RescindOffer>, _: &mut Context<Self>) {
        if self.is_the_master(&m.from, "RescindOffer") {
            self.emit(SchedulerEvent::OfferRescinded(m.msg.offer_id));
        }
    }
}

impl Handler<Incoming<StatusUpdate>> for DriverActor {
    type Result = ();
    fn handle(&mut self, m: Incoming<StatusUpdate>, ctx: &mut Context<Self>) {
        if !self.is_the_master(&m.from, "StatusUpdate") {
            return;
        }
        let update = m.msg;
        let ours = self.shared.lock().framework_id.clone();
        if ours.as_ref() != Some(&update.framework_id) {
            tracing::warn!(
                "ignoring StatusUpdate from {}: framework {} is not ours",
                m.from,
                update.framework_id
            );
            return;
        }
        let Some(uuid) = update.status.uuid else {
            // Made by the master (reconciliation, rejected launch): nothing to acknowledge.
            self.emit(SchedulerEvent::StatusUpdate(update.status));
            return;
        };
        let verdict = self.shared.lock().seen.observe(uuid);
        match verdict {
            Verdict::Reacknowledge => self.acknowledge(&update),
            Verdict::Ignore => {}
            Verdict::Deliver if !self.options.implicit_acknowledgements => {
                self.emit(SchedulerEvent::StatusUpdate(update.status));
            }
            Verdict::Deliver => {
                // Acknowledge only once the framework handled the update: until then a resend
                // is the agent's business.
                let event = SchedulerEvent::StatusUpdate(update.status.clone());
                let sent = self.events.send(event);
                ctx.wait(sent.into_actor(self).map(move |result, this, _| match result {
                    Ok(()) => this.acknowledge(&update),
                    Err(e) => tracing::warn!(
                        "not acknowledging the update of task {}: the framework did not take it: {e}",
                        update.status.task_id
                    ),
                }));
            }
        }
    }
}

impl Handler<Incoming<AgentLost>> for DriverActor {
    type Result = ();
    fn handle(&mut self, m: Incoming<AgentLost>, _: &mut Context<Self>) {
        if self.is_the_master(&m.from, "AgentLost") {
            self.emit(SchedulerEvent::AgentLost(m.msg.agent_id));
        }
    }
}

impl Handler<Incoming<ExecutorExited>> for DriverActor {
    type Result = ();
    fn handle(&mut self, m: Incoming<ExecutorExited>, _: &mut Context<Self>) {
        if self.is_the_master(&m.from, "ExecutorExited") {
            self.emit(SchedulerEvent::ExecutorLost {
                executor_id: m.msg.executor_id,
                agent_id: m.msg.agent_id,
                status: m.msg.status,
            });
        }
    }
}

impl Handler<Incoming<ExecutorToFramework>> for DriverActor {
    type Result = ();
    fn handle(&mut self, m: Incoming<ExecutorToFramework>, _: &mut Context<Self>) {
        if self.is_the_master(&m.from, "ExecutorToFramework") {
            self.emit(SchedulerEvent::FrameworkMessage {
                executor_id: m.msg.executor_id,
                agent_id: m.msg.agent_id,
                data: m.msg.data,
            });
        }
    }
}

impl Handler<Incoming<FrameworkError>> for DriverActor {
    type Result = ();
    fn handle(&mut self, m: Incoming<FrameworkError>, ctx: &mut Context<Self>) {
        if !self.is_the_master(&m.from, "FrameworkError") {
            return;
        }
        // As in Mesos, an error from the master aborts the driver.
        self.shared.lock().stopped = true;
        self.emit(SchedulerEvent::Error(m.msg.message));
        ctx.stop();
    }
}

impl Handler<Incoming<Heartbeat>> for DriverActor {
    type Result = ();
    fn handle(&mut self, _: Incoming<Heartbeat>, _: &mut Context<Self>) {}
}

impl Handler<Exited> for DriverActor {
    type Result = ();
    fn handle(&mut self, m: Exited, ctx: &mut Context<Self>) {
        if m.0 != self.master {
            tracing::debug!("ignoring Exited of {}: not the master", m.0);
            return;
        }
        self.linked = false;
        if self.shared.lock().stopped {
            return;
        }
        if self.connected {
            tracing::warn!("lost the master {}; registering again", self.master);
            self.connected = false;
            self.backoff = REGISTER_BACKOFF_MIN;
        }
        // Once per disconnection, whether the master went away or was never reached.
        if !self.told_disconnected {
            self.told_disconnected = true;
            self.emit(SchedulerEvent::Disconnected);
        }
        // A registration attempt is already scheduled when we were not connected.
        if self.retry.is_none() {
            self.schedule_register(ctx, self.backoff);
        }
    }
}

impl Handler<StopDriver> for DriverActor {
    type Result = ();
    fn handle(&mut self, _: StopDriver, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
