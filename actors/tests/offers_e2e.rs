//! Offers and the task environment end to end: the real `meso` binary for the master and the
//! agent, real command executors running shell tasks, and a framework in the test. The tasks
//! block on gate files, so the test decides when each one ends.

use meso::process::Upid;
use meso::protocol::*;
use meso::resources::{Resources, Scalar};
use meso_actors::scheduler::SchedulerEvent;
use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;

mod support;
use support::framework::{cluster, framework, Framework};
use support::{only_dir, Children};

/// How long a task may take to reach RUNNING or to end on two loaded cores (executors are
/// debug builds started one per task).
const TASK_LIMIT: Duration = Duration::from_secs(60);
/// How long an expected offer may take.
const OFFER_LIMIT: Duration = Duration::from_secs(20);

/// Declines and accepts set no filter: declined resources come back at the next allocation.
const NO_FILTER: Filters = Filters {
    refuse_seconds: 0.0,
};

fn r(text: &str) -> Resources {
    Resources::parse(text).unwrap()
}

fn cpus(millis: i64) -> Scalar {
    Scalar::from_millis(millis)
}

/// Gate files the tasks wait for. Dropped (also when a test fails), it opens every gate, so no
/// task is left waiting; a task also stops waiting once the gate directory is gone.
struct Gates(PathBuf);

impl Gates {
    fn new(dir: &Path) -> Gates {
        let gates = dir.join("gates");
        std::fs::create_dir_all(&gates).unwrap();
        Gates(gates)
    }

    /// A shell command that waits until gate `name` (or every gate) is open.
    fn command(&self, name: &str) -> String {
        let d = self.0.display();
        format!(
            "while [ -d '{d}' ] && [ ! -e '{d}/go-{name}' ] && [ ! -e '{d}/go-all' ]; \
             do sleep 0.1; done"
        )
    }

    fn open(&self, name: &str) {
        std::fs::write(self.0.join(format!("go-{name}")), "").unwrap();
    }

    fn open_all(&self) {
        let _ = std::fs::write(self.0.join("go-all"), "");
    }
}

impl Drop for Gates {
    fn drop(&mut self) {
        self.open_all();
    }
}

/// A framework registered with `master`, and the id it was given.
async fn registered(master: &Upid, name: &str) -> (Framework, FrameworkId) {
    let mut f = framework(master, FrameworkInfo::new(name, "test")).await;
    let id = f.registered(OFFER_LIMIT).await;
    (f, id)
}

/// A command task of `resources` on the offer's agent.
fn task(id: &str, offer: &Offer, resources: &str, command: &str) -> TaskInfo {
    TaskInfo::command(
        TaskId::new(id),
        offer.agent_id.clone(),
        r(resources),
        CommandInfo::shell(command),
    )
}

/// Panics if `status` is terminal: no task may end yet.
fn assert_not_ended(status: &TaskStatus) {
    assert!(
        !status.state.is_terminal(),
        "task {} ended {}",
        status.task_id,
        status.state
    )
}

impl Framework {
    fn decline(&self, offer: &Offer) {
        self.driver.decline(offer.id.clone(), NO_FILTER);
    }

    /// Launches `tasks` on `offer`; what they leave of it comes back unfiltered.
    fn launch_on(&self, offer: &Offer, tasks: Vec<TaskInfo>) {
        self.driver
            .launch(std::slice::from_ref(&offer.id), tasks, NO_FILTER);
    }

    /// Waits until every task of `tasks` has reported `state`. Any other task reaching a
    /// terminal state, or one of these reaching another terminal state, fails the test. Every
    /// offer that comes meanwhile is passed to `check` and declined without a filter.
    async fn wait_states(
        &mut self,
        tasks: &[&str],
        state: TaskState,
        mut check: impl FnMut(&Offer),
    ) {
        let mut waiting: BTreeSet<&str> = tasks.iter().copied().collect();
        let deadline = Instant::now() + TASK_LIMIT;
        while !waiting.is_empty() {
            let what = format!("{state} of {waiting:?}");
            match self.next(deadline, &what).await {
                SchedulerEvent::ResourceOffers(offers) => {
                    for offer in &offers {
                        check(offer);
                        self.decline(offer);
                    }
                }
                SchedulerEvent::StatusUpdate(s) => {
                    let id = s.task_id.as_str();
                    if s.state == state && waiting.remove(id) {
                        continue;
                    }
                    assert!(
                        !s.state.is_terminal() || (s.state == state && tasks.contains(&id)),
                        "task {id} ended {} ({:?}: {}) while waiting for {what}",
                        s.state,
                        s.reason,
                        s.message
                    );
                }
                SchedulerEvent::Error(e) => panic!("framework error: {e}"),
                _ => {}
            }
        }
    }

    /// The next offer; status updates meanwhile must not be terminal.
    async fn next_offer(&mut self, what: &str) -> Offer {
        let deadline = Instant::now() + OFFER_LIMIT;
        loop {
            match self.next(deadline, what).await {
                SchedulerEvent::ResourceOffers(mut offers) => {
                    assert_eq!(offers.len(), 1, "one agent, one offer: {offers:?}");
                    return offers.remove(0);
                }
                SchedulerEvent::StatusUpdate(s) => assert!(
                    !s.state.is_terminal(),
                    "task {} ended {} while waiting for {what}",
                    s.task_id,
                    s.state
                ),
                SchedulerEvent::Error(e) => panic!("framework error: {e}"),
                _ => {}
            }
        }
    }
}

/// Mesos keeps scalars in fixed point (MESOS-4687) and does not count the command executor's
/// overhead against the offer: launching tasks of 0.1 cpus on an agent of `cpus:1`, ten fit, the
/// eleventh waits for an offer, and after three finish the next offer holds exactly 0.3 cpus.
///
/// While the ten run, declined offers keep coming back (no filter) holding only memory; none
/// holds any cpus. To see what three finished tasks give back in one offer (rather than one
/// offer per task as each ends), the framework suppresses offers while they end and revives.
#[actix_rt::test]
async fn ten_tasks_of_a_tenth_fill_one_cpu_and_three_ending_give_back_exactly_three_tenths() {
    let dir = tempfile::tempdir().unwrap();
    let mut children = Children::default();
    let master = cluster(&mut children, dir.path(), "cpus:1;mem:1024");
    let gates = Gates::new(dir.path());
    let (mut f, _) = registered(&master, "tenths").await;
    let each = r("cpus:0.1;mem:32");
    let ids: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();

    // Launch the ten in as many accepts as offers come, each taking what fits.
    let mut pending: VecDeque<&str> = ids.iter().map(String::as_str).collect();
    let mut running: BTreeSet<String> = BTreeSet::new();
    let deadline = Instant::now() + TASK_LIMIT;
    while running.len() < ids.len() {
        match f.next(deadline, "the ten tasks RUNNING").await {
            SchedulerEvent::ResourceOffers(offers) => {
                for offer in &offers {
                    if pending.is_empty() {
                        assert_eq!(
                            offer.resources.cpus(),
                            Scalar::ZERO,
                            "cpus offered while ten tasks of 0.1 hold the agent's one cpu: {offer:?}"
                        );
                        f.decline(offer);
                        continue;
                    }
                    let mut left = offer.resources.clone();
                    let mut tasks = Vec::new();
                    while let Some(id) = pending.front() {
                        let Ok(rest) = left.checked_sub(&each) else {
                            break;
                        };
                        left = rest;
                        tasks.push(task(id, offer, "cpus:0.1;mem:32", &gates.command(id)));
                        pending.pop_front();
                    }
                    if tasks.is_empty() {
                        f.decline(offer);
                    } else {
                        f.launch_on(offer, tasks);
                    }
                }
            }
            SchedulerEvent::StatusUpdate(s) => {
                assert!(
                    !s.state.is_terminal(),
                    "task {} ended {} ({:?}: {})",
                    s.task_id,
                    s.state,
                    s.reason,
                    s.message
                );
                if s.state == TaskState::Running {
                    running.insert(s.task_id.as_str().to_string());
                }
            }
            SchedulerEvent::Error(e) => panic!("framework error: {e}"),
            _ => {}
        }
    }

    // The eleventh waits: for a while, offers keep coming back, and none holds cpus.
    let quiet = Instant::now() + Duration::from_secs(3);
    let mut memory_offers = 0;
    while let Some(event) = f.next_before(quiet).await {
        match event {
            SchedulerEvent::ResourceOffers(offers) => {
                for offer in &offers {
                    assert_eq!(
                        offer.resources.cpus(),
                        Scalar::ZERO,
                        "cpus offered while ten tasks of 0.1 run on one cpu: {offer:?}"
                    );
                    assert_eq!(offer.resources.mem(), Scalar::from_millis(704_000));
                    memory_offers += 1;
                    f.decline(offer);
                }
            }
            SchedulerEvent::StatusUpdate(s) => assert_not_ended(&s),
            _ => {}
        }
    }
    assert!(
        memory_offers > 0,
        "declined offers never came back: the quiet spell shows nothing"
    );

    // Suppress, and make sure the master has taken it (its answer to a reconciliation comes
    // after it, and after every offer made before it); offers that came first go back.
    f.driver.suppress();
    f.driver.reconcile(vec![(TaskId::new("t0"), None)]);
    let deadline = Instant::now() + OFFER_LIMIT;
    loop {
        match f.next(deadline, "the reconciliation answer").await {
            SchedulerEvent::ResourceOffers(offers) => {
                for offer in &offers {
                    assert_eq!(offer.resources.cpus(), Scalar::ZERO, "{offer:?}");
                    f.decline(offer);
                }
            }
            SchedulerEvent::StatusUpdate(s)
                if s.reason == Some(TaskStatusReason::Reconciliation) =>
            {
                assert_eq!((s.task_id.as_str(), s.state), ("t0", TaskState::Running));
                break;
            }
            SchedulerEvent::StatusUpdate(s) => assert_not_ended(&s),
            _ => {}
        }
    }

    for id in ["t0", "t1", "t2"] {
        gates.open(id);
    }
    f.wait_states(&["t0", "t1", "t2"], TaskState::Finished, |offer| {
        panic!("offer to a suppressed framework: {offer:?}")
    })
    .await;

    f.driver.revive();
    let offer = f.next_offer("the offer after three ended").await;
    assert_eq!(
        offer.resources.cpus(),
        cpus(300),
        "three tasks of 0.1 ended: {offer:?}"
    );
    assert_eq!(
        offer.resources,
        r("cpus:0.3;mem:800"),
        "all that seven tasks of cpus:0.1;mem:32 leave of cpus:1;mem:1024"
    );

    // The eleventh task goes into it.
    f.launch_on(
        &offer,
        vec![task(
            "t10",
            &offer,
            "cpus:0.1;mem:32",
            &gates.command("t10"),
        )],
    );
    f.wait_states(&["t10"], TaskState::Running, |offer| {
        assert!(
            offer.resources.cpus() <= cpus(200),
            "more than the two tenths left: {offer:?}"
        );
    })
    .await;

    gates.open_all();
    let rest: Vec<&str> = ids[3..].iter().map(String::as_str).chain(["t10"]).collect();
    f.wait_states(&rest, TaskState::Finished, |_| {}).await;
}

/// Fixed-point scalars (MESOS-4687): with floats, 4.1 - 1.1 is 2.9999999999999996 and a task of
/// 3 cpus would not fit what is left. An agent of cpus:4.1 that runs a task of 1.1 cpus is
/// offered exactly 3 cpus more, and can still take a task of 3.
#[actix_rt::test]
async fn an_agent_of_4_1_cpus_running_1_1_still_takes_a_task_of_3() {
    let dir = tempfile::tempdir().unwrap();
    let mut children = Children::default();
    let master = cluster(&mut children, dir.path(), "cpus:4.1;mem:1024");
    let gates = Gates::new(dir.path());
    let (mut f, _) = registered(&master, "odd-cpus").await;

    let first = f.next_offer("the agent's offer").await;
    assert_eq!(first.resources, r("cpus:4.1;mem:1024"));
    f.launch_on(
        &first,
        vec![task(
            "small",
            &first,
            "cpus:1.1;mem:32",
            &gates.command("small"),
        )],
    );
    let next = f.next_offer("what the small task leaves").await;
    assert_eq!(next.resources.cpus(), cpus(3000), "{next:?}");
    f.launch_on(
        &next,
        vec![task("big", &next, "cpus:3;mem:32", &gates.command("big"))],
    );
    f.wait_states(&["small", "big"], TaskState::Running, |offer| {
        assert_eq!(offer.resources.cpus(), Scalar::ZERO, "{offer:?}");
    })
    .await;

    gates.open_all();
    f.wait_states(&["small", "big"], TaskState::Finished, |_| {})
        .await;
}

/// Mesos's command task environment: the task runs in its sandbox
/// (`<work_dir>/agents/<agent>/frameworks/<framework>/executors/<executor>/runs/<run>/`, the
/// command executor named after its task) with `MESOS_SANDBOX` naming it, and `MESOS_TASK_ID`,
/// `MESOS_AGENT_ID` and `MESOS_FRAMEWORK_ID` set to its ids; its stdout and stderr are the files
/// `stdout` and `stderr` of the sandbox.
#[actix_rt::test]
async fn a_task_runs_in_its_sandbox_with_its_ids_in_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let mut children = Children::default();
    let master = cluster(&mut children, dir.path(), "cpus:1;mem:256");
    let (mut f, id) = registered(&master, "environment").await;

    let offer = f.next_offer("the agent's offer").await;
    let command = "printf '%s\\n' \"$MESOS_SANDBOX\" \"$MESOS_TASK_ID\" \"$MESOS_AGENT_ID\" \
                   \"$MESOS_FRAMEWORK_ID\" \"$(pwd)\" > env.tmp && mv env.tmp env.txt \
                   && echo to-stdout && echo to-stderr >&2";
    f.launch_on(
        &offer,
        vec![task("env-task", &offer, "cpus:0.5;mem:32", command)],
    );
    f.wait_states(&["env-task"], TaskState::Finished, |_| {})
        .await;

    let executors = dir
        .path()
        .join("agent/agents")
        .join(offer.agent_id.as_str())
        .join("frameworks")
        .join(id.as_str())
        .join("executors");
    let sandbox = only_dir(&executors.join("env-task").join("runs"));
    let text = std::fs::read_to_string(sandbox.join("env.txt"))
        .unwrap_or_else(|e| panic!("the task wrote no env.txt in {}: {e}", sandbox.display()));
    let lines: Vec<&str> = text.lines().collect();
    let &[sandbox_var, task_id, agent_id, framework_id, cwd] = lines.as_slice() else {
        panic!("five lines expected: {text:?}");
    };
    let real = |p: &str| std::fs::canonicalize(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    let expected = std::fs::canonicalize(&sandbox).unwrap();
    assert_eq!(real(sandbox_var), expected, "MESOS_SANDBOX");
    assert_eq!(real(cwd), expected, "the task's working directory");
    assert_eq!(task_id, "env-task", "MESOS_TASK_ID");
    assert_eq!(agent_id, offer.agent_id.as_str(), "MESOS_AGENT_ID");
    assert_eq!(framework_id, id.as_str(), "MESOS_FRAMEWORK_ID");

    for (name, line) in [("stdout", "to-stdout"), ("stderr", "to-stderr")] {
        let path = sandbox.join(name);
        assert!(path.is_file(), "no {} file", path.display());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.lines().any(|l| l == line),
            "the task's {name} is not in {}: {text:?}",
            path.display()
        );
    }
}
