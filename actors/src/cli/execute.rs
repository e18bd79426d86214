//! `meso execute`: a small framework that runs one command as N tasks and reports how they ended.
//!
//! The pure parts ([`pack`], [`Tracker`], [`Summary`]) decide; [`ExecuteScheduler`] only turns
//! their decisions into driver calls and lines on stdout.

use crate::scheduler::{Scheduler, SchedulerDriver};
use meso::protocol::{
    AgentId, CommandInfo, Filters, FrameworkId, MasterInfo, Offer, TaskId, TaskInfo, TaskState,
    TaskStatus,
};
use meso::resources::Resources;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// Set once stdout is closed (`meso execute ... | head -1`): nothing more is printed there.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Prints one line to stdout. A closed pipe stops the printing quietly (the run goes on, its
/// exit code still says how the tasks ended); `println!` would panic there.
pub fn print_line(line: impl fmt::Display) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// How long offers must have been declined for not fitting before `meso execute` says so.
pub const NO_FIT_WARNING_AFTER: Duration = Duration::from_secs(3);

/// Notices when offers keep coming that cannot fit one task, to say so once.
#[derive(Debug, Default)]
pub struct FitWatch {
    /// When offers first came that fit nothing, since the last launch.
    since: Option<tokio::time::Instant>,
    /// The largest offer (by cpus, then memory) seen that fit nothing.
    largest: Option<Resources>,
    told: bool,
}

impl FitWatch {
    /// Records a batch of offers: `fitted` when one of them took a task. Returns the warning to
    /// print, once, when nothing fitted for [`NO_FIT_WARNING_AFTER`].
    pub fn offers(
        &mut self,
        now: tokio::time::Instant,
        offers: &[Resources],
        fitted: bool,
        per_task: &Resources,
    ) -> Option<String> {
        if fitted {
            self.since = None;
            self.largest = None;
            return None;
        }
        let since = *self.since.get_or_insert(now);
        for offer in offers {
            let bigger = self
                .largest
                .as_ref()
                .is_none_or(|l| (offer.cpus(), offer.mem()) > (l.cpus(), l.mem()));
            if bigger {
                self.largest = Some(offer.clone());
            }
        }
        if self.told || now.duration_since(since) < NO_FIT_WARNING_AFTER {
            return None;
        }
        self.told = true;
        let largest = self
            .largest
            .as_ref()
            .map_or_else(|| "none".to_string(), |r| r.to_string());
        Some(format!(
            "meso: no offer fits a task of {per_task} (largest offer: {largest})"
        ))
    }
}

/// For each offer (in order), the tasks of `pending` (in order) it takes: as many as fit, the
/// first offers filled first. Scalars are fixed-point, so ten 0.1-cpu tasks fit in one cpu.
pub fn pack(offers: &[Resources], per_task: &Resources, pending: &[usize]) -> Vec<Vec<usize>> {
    let mut next = pending.iter().copied().peekable();
    offers
        .iter()
        .map(|offer| {
            let mut left = offer.clone();
            let mut taken = Vec::new();
            while next.peek().is_some() && !per_task.is_empty() && left.contains(per_task) {
                let Ok(rest) = left.checked_sub(per_task) else {
                    break;
                };
                left = rest;
                taken.extend(next.next());
            }
            taken
        })
        .collect()
}

/// How the tasks ended, as `meso execute` prints it last.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub finished: usize,
    pub failed: usize,
    pub killed: usize,
    pub lost: usize,
    pub error: usize,
}

impl Summary {
    fn count(&mut self, state: TaskState) {
        match state {
            TaskState::Finished => self.finished += 1,
            TaskState::Failed => self.failed += 1,
            TaskState::Killed => self.killed += 1,
            TaskState::Error => self.error += 1,
            // Dropped and Gone are the partition-aware spellings of Lost.
            TaskState::Lost | TaskState::Dropped | TaskState::Gone => self.lost += 1,
            _ => {}
        }
    }

    pub fn ended(&self) -> usize {
        self.finished + self.failed + self.killed + self.lost + self.error
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "finished {} failed {} killed {} lost {} error {}",
            self.finished, self.failed, self.killed, self.lost, self.error
        )
    }
}

/// The tasks of one `meso execute` run: which are still to launch, the last state of each, and the
/// tally of how they ended (each task counted once, at its first terminal state).
#[derive(Debug)]
pub struct Tracker {
    name: String,
    instances: usize,
    to_launch: VecDeque<usize>,
    states: HashMap<TaskId, (TaskState, Option<AgentId>)>,
    pub summary: Summary,
}

impl Tracker {
    pub fn new(name: &str, instances: usize) -> Tracker {
        Tracker {
            name: name.to_string(),
            instances,
            to_launch: (0..instances).collect(),
            states: HashMap::new(),
            summary: Summary::default(),
        }
    }

    pub fn task_id(&self, index: usize) -> TaskId {
        TaskId::new(format!("{}-{index}", self.name))
    }

    pub fn pending(&self) -> Vec<usize> {
        self.to_launch.iter().copied().collect()
    }

    /// Records that task `index` was sent to `agent`.
    pub fn launched(&mut self, index: usize, agent: &AgentId) {
        self.to_launch.retain(|&i| i != index);
        let id = self.task_id(index);
        self.states
            .entry(id)
            .or_insert((TaskState::Staging, Some(agent.clone())));
    }

    /// Records an update; true when it is the task's first terminal state.
    pub fn update(&mut self, status: &TaskStatus) -> bool {
        let entry = self
            .states
            .entry(status.task_id.clone())
            .or_insert((TaskState::Staging, None));
        if entry.0.is_terminal() {
            return false;
        }
        entry.0 = status.state;
        if status.agent_id.is_some() {
            entry.1 = status.agent_id.clone();
        }
        if status.state.is_terminal() {
            self.summary.count(status.state);
            return true;
        }
        false
    }

    /// The run is interrupted: nothing more is launched, and the tasks not launched yet count as
    /// killed (they were, before they started), so the summary still adds up to the instances.
    /// Returns how many those are.
    pub fn interrupt(&mut self) -> usize {
        let never = std::mem::take(&mut self.to_launch);
        for &index in &never {
            let id = self.task_id(index);
            self.states.insert(id, (TaskState::Killed, None));
            self.summary.count(TaskState::Killed);
        }
        never.len()
    }

    /// The run ends without hearing how some launched tasks ended: they count as lost (the
    /// framework cannot know their state). Returns how many those are.
    pub fn give_up(&mut self) -> usize {
        let mut n = 0;
        for (state, _) in self.states.values_mut() {
            if !state.is_terminal() {
                *state = TaskState::Lost;
                self.summary.count(TaskState::Lost);
                n += 1;
            }
        }
        n
    }

    /// Every task reached a terminal state.
    pub fn done(&self) -> bool {
        self.summary.ended() >= self.instances
    }

    /// Tasks launched and not ended, with their agents.
    pub fn outstanding(&self) -> Vec<(TaskId, Option<AgentId>)> {
        self.states
            .iter()
            .filter(|(_, (s, _))| !s.is_terminal())
            .map(|(id, (_, agent))| (id.clone(), agent.clone()))
            .collect()
    }

    pub fn all_finished(&self) -> bool {
        self.summary.finished == self.instances
    }
}

/// One line per update: `task <id> <STATE> [agent <agent>] [<message>]`.
pub fn status_line(status: &TaskStatus) -> String {
    let mut line = format!("task {} {}", status.task_id, status.state);
    if let Some(agent) = &status.agent_id {
        line.push_str(&format!(" agent {agent}"));
    }
    if !status.message.is_empty() {
        line.push(' ');
        line.push_str(&status.message);
    }
    line
}

/// Why the run ended, sent to whoever waits for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    AllEnded,
    Error(String),
}

/// The framework behind `meso execute`.
pub struct ExecuteScheduler {
    pub command: String,
    pub per_task: Resources,
    pub kill_after: Option<Duration>,
    pub tracker: Arc<Mutex<Tracker>>,
    pub done: UnboundedSender<Outcome>,
    /// The master's address, for messages.
    pub master: String,
    /// Whether the master ever answered.
    pub registered: bool,
    pub fit: FitWatch,
}

impl ExecuteScheduler {
    pub fn new(
        command: String,
        per_task: Resources,
        kill_after: Option<Duration>,
        tracker: Arc<Mutex<Tracker>>,
        done: UnboundedSender<Outcome>,
        master: String,
    ) -> ExecuteScheduler {
        ExecuteScheduler {
            command,
            per_task,
            kill_after,
            tracker,
            done,
            master,
            registered: false,
            fit: FitWatch::default(),
        }
    }
}

/// How long declined offers stay away while tasks remain to launch.
const DECLINE_WHILE_PENDING: Filters = Filters {
    refuse_seconds: 1.0,
};
/// How long declined offers stay away once everything is launched.
const DECLINE_WHEN_DONE: Filters = Filters {
    refuse_seconds: 3600.0,
};

impl Scheduler for ExecuteScheduler {
    fn resource_offers(&mut self, driver: &SchedulerDriver, offers: Vec<Offer>) {
        let mut tracker = self.tracker.lock();
        let available: Vec<Resources> = offers.iter().map(|o| o.resources.clone()).collect();
        let pending = tracker.pending();
        let plan = pack(&available, &self.per_task, &pending);
        if !pending.is_empty() {
            let fitted = plan.iter().any(|p| !p.is_empty());
            let now = tokio::time::Instant::now();
            if let Some(warning) = self.fit.offers(now, &available, fitted, &self.per_task) {
                eprintln!("{warning}");
            }
        }
        for (offer, indices) in offers.iter().zip(plan) {
            if indices.is_empty() {
                let filters = if tracker.pending().is_empty() {
                    DECLINE_WHEN_DONE
                } else {
                    DECLINE_WHILE_PENDING
                };
                driver.decline(offer.id.clone(), filters);
                continue;
            }
            let tasks: Vec<TaskInfo> = indices
                .iter()
                .map(|&i| {
                    tracker.launched(i, &offer.agent_id);
                    TaskInfo::command(
                        tracker.task_id(i),
                        offer.agent_id.clone(),
                        self.per_task.clone(),
                        CommandInfo::shell(self.command.clone()),
                    )
                })
                .collect();
            tracing::info!("launching {} tasks on {}", tasks.len(), offer.agent_id);
            driver.launch(
                std::slice::from_ref(&offer.id),
                tasks,
                DECLINE_WHILE_PENDING,
            );
        }
    }

    fn status_update(&mut self, driver: &SchedulerDriver, status: TaskStatus) {
        print_line(status_line(&status));
        if status.state == TaskState::Running {
            if let Some(after) = self.kill_after {
                let (driver, id, agent) = (
                    driver.clone(),
                    status.task_id.clone(),
                    status.agent_id.clone(),
                );
                actix_rt::spawn(async move {
                    tokio::time::sleep(after).await;
                    driver.kill(id, agent);
                });
            }
        }
        let mut tracker = self.tracker.lock();
        tracker.update(&status);
        if tracker.done() {
            let _ = self.done.send(Outcome::AllEnded);
        }
    }

    fn registered(&mut self, _: &SchedulerDriver, _: &FrameworkId, _: &MasterInfo) {
        self.registered = true;
    }

    fn reregistered(&mut self, _: &SchedulerDriver, _: &MasterInfo) {
        self.registered = true;
    }

    /// Told once per disconnection by the driver (not once per failed attempt).
    fn disconnected(&mut self, _: &SchedulerDriver) {
        if self.registered {
            eprintln!(
                "meso: lost the master at {}; registering again",
                self.master
            );
        } else {
            eprintln!("meso: cannot reach the master at {}; retrying", self.master);
        }
    }

    fn error(&mut self, _: &SchedulerDriver, message: &str) {
        let _ = self.done.send(Outcome::Error(message.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> Resources {
        Resources::parse(text).unwrap()
    }

    /// Fixed-point scalars: ten 0.1-cpu tasks fit exactly in one cpu (with floats, 0.1 * 10
    /// overshoots 1.0 and only nine would).
    #[test]
    fn ten_tenth_cpu_tasks_fit_in_one_cpu() {
        let plan = pack(
            &[r("cpus:1;mem:1024")],
            &r("cpus:0.1;mem:32"),
            &(0..20).collect::<Vec<_>>(),
        );
        assert_eq!(plan, vec![(0..10).collect::<Vec<_>>()]);
    }

    #[test]
    fn offers_are_filled_in_order_and_memory_limits_too() {
        let plan = pack(
            &[
                r("cpus:1;mem:64"),
                r("cpus:0.05;mem:1000"),
                r("cpus:4;mem:4096"),
            ],
            &r("cpus:0.1;mem:32"),
            &[3, 4, 5, 6, 7],
        );
        assert_eq!(plan, vec![vec![3, 4], vec![], vec![5, 6, 7]]);
    }

    #[test]
    fn nothing_pending_takes_nothing() {
        let plan = pack(&[r("cpus:1;mem:64")], &r("cpus:0.1;mem:32"), &[]);
        assert_eq!(plan, vec![Vec::<usize>::new()]);
    }

    #[test]
    fn the_summary_reads_as_documented() {
        let mut t = Tracker::new("job", 3);
        let a = AgentId::new("a1");
        for i in 0..3 {
            t.launched(i, &a);
        }
        assert!(t.pending().is_empty());
        let st = |i: usize, s| TaskStatus::new(TaskId::new(format!("job-{i}")), s, 0);
        assert!(!t.update(&st(0, TaskState::Running)));
        assert!(t.update(&st(0, TaskState::Finished)));
        // A later terminal update of the same task is not counted twice.
        assert!(!t.update(&st(0, TaskState::Failed)));
        assert!(t.update(&st(1, TaskState::Failed)));
        assert!(!t.done());
        assert_eq!(t.outstanding(), vec![(TaskId::new("job-2"), Some(a))]);
        assert!(t.update(&st(2, TaskState::Dropped)));
        assert!(t.done());
        assert!(!t.all_finished());
        assert_eq!(
            t.summary.to_string(),
            "finished 1 failed 1 killed 0 lost 1 error 0"
        );
    }

    /// An interrupt launches nothing more: what was not launched counts as killed, what was
    /// launched stays outstanding until its end arrives, and the summary adds up.
    #[test]
    fn an_interrupt_kills_what_was_not_launched() {
        let mut t = Tracker::new("job", 4);
        let a = AgentId::new("a1");
        t.launched(0, &a);
        t.launched(1, &a);
        assert_eq!(t.interrupt(), 2);
        assert!(t.pending().is_empty());
        assert_eq!(t.outstanding().len(), 2);
        assert!(!t.done());
        for i in 0..2 {
            let id = t.task_id(i);
            t.update(&TaskStatus::new(id, TaskState::Killed, 1));
        }
        assert!(t.done());
        assert_eq!(
            t.summary.to_string(),
            "finished 0 failed 0 killed 4 lost 0 error 0"
        );
        assert_eq!(t.interrupt(), 0);
        assert_eq!(t.give_up(), 0, "nothing outstanding");
    }

    /// Ends never heard count as lost, once, and the summary adds up.
    #[test]
    fn a_run_given_up_counts_the_unheard_as_lost() {
        let mut t = Tracker::new("job", 3);
        let a = AgentId::new("a1");
        t.launched(0, &a);
        t.launched(1, &a);
        t.update(&TaskStatus::new(t.task_id(0), TaskState::Finished, 1));
        assert_eq!(t.interrupt(), 1);
        assert_eq!(t.give_up(), 1);
        assert_eq!(t.give_up(), 0);
        assert_eq!(
            t.summary.to_string(),
            "finished 1 failed 0 killed 1 lost 1 error 0"
        );
    }

    /// `--cpus 1000` on a small cluster: said once, after offers were declined for 3 s, naming
    /// the largest offer; a launch in between starts the wait again.
    #[test]
    fn offers_that_never_fit_are_reported_once_after_three_seconds() {
        let start = tokio::time::Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let task = r("cpus:1000;mem:32");
        let small = [r("cpus:1;mem:256"), r("cpus:2;mem:128")];
        let mut watch = FitWatch::default();
        assert_eq!(watch.offers(at(0), &small, false, &task), None);
        assert_eq!(watch.offers(at(2000), &small, false, &task), None);
        assert_eq!(watch.offers(at(2500), &[], true, &task), None);
        assert_eq!(watch.offers(at(4000), &small, false, &task), None);
        assert_eq!(
            watch.offers(at(7000), &small[..1], false, &task),
            Some(
                "meso: no offer fits a task of cpus:1000;mem:32 (largest offer: cpus:2;mem:128)"
                    .to_string()
            )
        );
        assert_eq!(watch.offers(at(9000), &small, false, &task), None);
    }

    #[test]
    fn status_lines() {
        let s = TaskStatus::new(TaskId::new("t-1"), TaskState::Failed, 0)
            .with_agent(AgentId::new("a-7"))
            .with_message("exited with status 3");
        assert_eq!(
            status_line(&s),
            "task t-1 TASK_FAILED agent a-7 exited with status 3"
        );
        let s = TaskStatus::new(TaskId::new("t-2"), TaskState::Running, 0);
        assert_eq!(status_line(&s), "task t-2 TASK_RUNNING");
    }
}
