//! A whole cluster over the fault-injecting transport, driven by one seed.
//!
//! A master, three agents and a framework, each on a node of its own (and an arbiter, so a thread,
//! of its own), in one process; real `meso executor` processes run the tasks. Every node drops,
//! duplicates and delays its outgoing frames with probabilities and a random generator fixed by the
//! seed, and on a schedule drawn from the seed the master, an agent or the framework dies at once
//! (its thread, node and actors go; executors, real processes, live on) and starts again on the
//! same address and work dir. The framework launches tasks, kills those that stay silent too long,
//! and reconciles; the test checks throughout and at the end:
//! - each task reaches exactly one terminal state as the framework sees it (a reliable terminal
//!   update after another is a violation);
//! - no update is lost: every task ends, and a task whose command ran to the end (it leaves a
//!   `ran` file in its sandbox) ends FINISHED;
//! - on every agent, resources in use plus offered plus free equal its total (the master's books,
//!   read with `InspectMaster` every quarter second from a node without faults).
//!
//! The seed fixes the faults each node injects and the schedule of restarts, not the interleaving
//! of threads, so a failing seed reproduces the same storm, usually the same failure. A failure
//! prints its seed. CI runs a few seeds; a longer run:
//! `MESO_SEEDS=1-40 MESO_TASKS=400 cargo test --release --test seeded_faults -- --nocapture`.

#[path = "../benches/support/arbiter.rs"]
mod arbiter;
#[path = "../benches/support/inspector.rs"]
mod inspector;
#[path = "../benches/support/meso_binary.rs"]
mod meso_binary;

use actix::Arbiter;
use arbiter::on_arbiter;
use inspector::start_inspector;
use meso::process::{FaultConfig, Node, NodeConfig, Upid};
use meso::protocol::{
    AgentId, CommandInfo, Filters, FrameworkInfo, InspectMaster, Offer, TaskId, TaskInfo,
    TaskState, TaskStatus,
};
use meso::resources::Resources;
use meso_actors::agent::{start_agent, AgentConfig};
use meso_actors::master::{start_master, MasterConfig};
use meso_actors::scheduler::{run_scheduler, Scheduler, SchedulerDriver};
use meso_binary::meso_binary;
use parking_lot::Mutex;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const AGENTS: usize = 3;
const AGENT_RESOURCES: &str = "cpus:4;mem:4096;disk:1000;ports:[31000-31099]";
/// A task silent this long after its launch is killed (and the kill retried).
const KILL_AFTER: Duration = Duration::from_secs(8);
const KILL_RETRY: Duration = Duration::from_secs(2);
const RECONCILE_EVERY: Duration = Duration::from_secs(1);
const DEADLINE: Duration = Duration::from_secs(120);

#[derive(Debug, Default)]
struct TaskRecord {
    agent: Option<AgentId>,
    launched_at: Option<Instant>,
    last_kill: Option<Instant>,
    /// Every update the framework was shown: state and whether it was a reliable one (with uuid).
    seen: Vec<(TaskState, bool, String)>,
    terminal: Option<TaskState>,
    /// Uuids of the reliable updates shown. Within one scheduler the driver hides a resent update;
    /// after a failover the new scheduler may be sent again one whose acknowledgement was lost, so
    /// the framework (whose book outlives its schedulers) recognises it by uuid, as a framework
    /// that keeps state across failovers must.
    uuids: std::collections::BTreeSet<[u8; 16]>,
    /// Reliable terminal updates with distinct uuids: more than one is an end shown twice as news.
    reliable_ends: usize,
}

#[derive(Debug, Default)]
struct Book {
    tasks: BTreeMap<TaskId, TaskRecord>,
    queue: Vec<TaskId>,
    violations: Vec<String>,
}

struct Checker {
    book: Arc<Mutex<Book>>,
    per_task: Resources,
}

impl Scheduler for Checker {
    fn resource_offers(&mut self, driver: &SchedulerDriver, offers: Vec<Offer>) {
        let mut book = self.book.lock();
        for offer in offers {
            let mut left = offer.resources.clone();
            let mut tasks = Vec::new();
            while let Some(id) = book.queue.last().cloned() {
                let Ok(rest) = left.checked_sub(&self.per_task) else {
                    break;
                };
                left = rest;
                book.queue.pop();
                let rec = book.tasks.entry(id.clone()).or_default();
                rec.agent = Some(offer.agent_id.clone());
                rec.launched_at = Some(Instant::now());
                let command = CommandInfo::shell("sleep 0.5; echo $MESOS_TASK_ID > ran");
                tasks.push(TaskInfo::command(
                    id,
                    offer.agent_id.clone(),
                    self.per_task.clone(),
                    command,
                ));
            }
            if tasks.is_empty() {
                driver.decline(
                    offer.id,
                    Filters {
                        refuse_seconds: 0.5,
                    },
                );
            } else {
                driver.launch(
                    &[offer.id],
                    tasks,
                    Filters {
                        refuse_seconds: 0.0,
                    },
                );
            }
        }
    }

    fn status_update(&mut self, _: &SchedulerDriver, status: TaskStatus) {
        let mut book = self.book.lock();
        let Book {
            tasks, violations, ..
        } = &mut *book;
        let Some(rec) = tasks.get_mut(&status.task_id) else {
            violations.push(format!("update for a task never launched: {status:?}"));
            return;
        };
        let reliable = status.uuid.is_some();
        if let Some(uuid) = status.uuid {
            if !rec.uuids.insert(uuid) {
                return; // sent again across a failover: nothing new
            }
        }
        rec.seen.push((
            status.state,
            reliable,
            format!("{:?} {}", status.reason, status.message),
        ));
        if !status.state.is_terminal() {
            // The agent sends a task's updates in order, one in flight: a reliable update that
            // is not an end, after a reliable end, came out of order.
            if reliable && rec.reliable_ends > 0 {
                violations.push(format!(
                    "task {} was shown {} after its reliable end: {:?}",
                    status.task_id, status.state, rec.seen
                ));
            }
            return;
        }
        if reliable {
            rec.reliable_ends += 1;
            if rec.reliable_ends == 2 {
                violations.push(format!(
                    "task {} was shown two reliable ends (distinct uuids): {:?}",
                    status.task_id, rec.seen
                ));
            }
        }
        match rec.terminal {
            None => rec.terminal = Some(status.state),
            // The reliable update of an end the framework already learned (from a reconciliation
            // answer that overtook it) tells nothing new; a different end contradicts the first.
            Some(first) if reliable && first != status.state => violations.push(format!(
                "task {} ended {} and then again {} ({}): seen {:?}",
                status.task_id, first, status.state, status.message, rec.seen
            )),
            // A reconciliation answer after the end is old news, not a second ending.
            Some(_) => {}
        }
    }
}

fn faults(seed: u64, salt: u64) -> FaultConfig {
    FaultConfig {
        seed: seed.wrapping_mul(1_000_003).wrapping_add(salt),
        drop: 0.01,
        duplicate: 0.05,
        delay: 0.2,
        max_delay_ms: 30,
    }
}

fn free_low_port() -> u16 {
    let mut rng = rand::thread_rng();
    loop {
        let port = rng.gen_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Starts a node on `arbiter`; a port just given up may take a moment to be free again.
async fn start_node_on(arbiter: &Arbiter, config: NodeConfig) -> Node {
    on_arbiter(arbiter, move || async move {
        let mut tries = 0;
        loop {
            match Node::start(config.clone()).await {
                Ok(node) => return node,
                Err(e) if tries < 50 => {
                    tries += 1;
                    tracing::debug!("node not started yet: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot start a node on {}: {e}", config.listen),
            }
        }
    })
    .await
}

/// Files named `ran` under an agent's sandboxes, by task id (the command executor's id is the task's).
fn tasks_that_ran(work_dir: &Path) -> Vec<TaskId> {
    fn walk(dir: &Path, out: &mut Vec<TaskId>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.file_name().is_some_and(|n| n == "ran") {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    if !text.trim().is_empty() {
                        out.push(TaskId::new(text.trim()));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(work_dir, &mut out);
    out
}

/// The pieces of the simulated cluster that can be restarted.
struct Sim {
    seed: u64,
    program: PathBuf,
    dir: PathBuf,
    master: Upid,
    master_arbiter: Option<Arbiter>,
    /// Per agent: its arbiter (thread) and the port it listens on, kept across restarts.
    agents: Vec<(Arbiter, u16)>,
    framework: Option<(Arbiter, SchedulerDriver)>,
    book: Arc<Mutex<Book>>,
    restarts: Vec<String>,
}

impl Sim {
    /// Port 0 takes a free port below the kernel's ephemeral range (32768 and up), so that no
    /// outgoing connection can be holding it when the node restarts on it.
    fn node_config(&self, salt: u64, port: u16) -> NodeConfig {
        let port = if port == 0 { free_low_port() } else { port };
        let listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        NodeConfig {
            faults: Some(faults(self.seed, salt)),
            ..NodeConfig::listen(listen)
        }
    }

    async fn start_agent(&self, i: usize, port: u16) -> (Arbiter, u16) {
        let arbiter = Arbiter::new();
        let node = start_node_on(&arbiter, self.node_config(10 + i as u64, port)).await;
        let port = node.addr().port();
        let mut config = AgentConfig::new(
            self.master.clone(),
            self.dir.join(format!("agent-{i}")),
            Resources::parse(AGENT_RESOURCES).unwrap(),
            self.program.clone(),
        );
        config.name = format!("agent-{i}");
        config.kill_grace_ms = 500;
        config.recovery_timeout_ms = 30_000;
        on_arbiter(&arbiter, move || async move {
            start_agent(&node, config).expect("agent")
        })
        .await;
        (arbiter, port)
    }

    /// The agent's process dies at once (its thread, node and actors go) and starts again on the
    /// same port and work dir; its executors, real processes, live on.
    async fn restart_agent(&mut self, i: usize) {
        let (arbiter, port) = self.agents.remove(i);
        arbiter.stop();
        let _ = arbiter.join();
        let again = self.start_agent(i, port).await;
        self.agents.insert(i, again);
        self.restarts.push(format!("agent-{i}"));
    }

    async fn start_master(&mut self, port: u16) -> Upid {
        let arbiter = Arbiter::new();
        let node = start_node_on(
            &arbiter,
            self.node_config(1 + 1000 * self.restarts.len() as u64, port),
        )
        .await;
        let dir = self.dir.join("master");
        let master = on_arbiter(&arbiter, move || async move {
            let config = MasterConfig {
                allocation_interval_ms: 200,
                offer_timeout_ms: Some(5_000),
                work_dir: Some(dir),
                ..MasterConfig::default()
            };
            start_master(&node, config).expect("master")
        })
        .await;
        self.master_arbiter = Some(arbiter);
        master
    }

    /// The master dies at once and starts again on the same port and work dir (its registry).
    async fn restart_master(&mut self) {
        if let Some(arbiter) = self.master_arbiter.take() {
            arbiter.stop();
            let _ = arbiter.join();
        }
        let port = self.master.port();
        self.master = self.start_master(port).await;
        self.restarts.push("master".into());
    }

    async fn start_framework(&mut self, id: Option<meso::protocol::FrameworkId>) {
        let arbiter = Arbiter::new();
        let node = start_node_on(
            &arbiter,
            self.node_config(2 + 100 * self.restarts.len() as u64, 0),
        )
        .await;
        let checker = Checker {
            book: self.book.clone(),
            per_task: Resources::parse("cpus:0.1;mem:16").unwrap(),
        };
        let mut fw = FrameworkInfo::new("seeded", "test");
        fw.failover_timeout_s = 300.0;
        fw.id = id;
        let master = self.master.clone();
        let driver = on_arbiter(&arbiter, move || async move {
            run_scheduler(&node, master, fw, checker).expect("scheduler")
        })
        .await;
        self.framework = Some((arbiter, driver));
    }

    /// The scheduler dies at once; a new one registers with the same framework id.
    async fn restart_framework(&mut self) {
        let Some(id) = self.driver().framework_id() else {
            return;
        };
        if let Some((arbiter, _)) = self.framework.take() {
            arbiter.stop();
            let _ = arbiter.join();
        }
        self.start_framework(Some(id)).await;
        self.restarts.push("framework".into());
    }

    fn driver(&self) -> &SchedulerDriver {
        &self.framework.as_ref().expect("a framework").1
    }

    fn stop(self) {
        if let Some((arbiter, driver)) = self.framework {
            driver.stop();
            std::thread::sleep(Duration::from_millis(200));
            arbiter.stop();
        }
        for (arbiter, _) in self.agents {
            arbiter.stop();
        }
        if let Some(arbiter) = self.master_arbiter {
            arbiter.stop();
        }
    }
}

async fn run(seed: u64, tasks: usize, restarts: usize) -> Result<String, String> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let program = meso_binary();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;

    let book = Arc::new(Mutex::new(Book::default()));
    {
        let mut b = book.lock();
        for t in 0..tasks {
            let id = TaskId::new(format!("s{seed}-t{t}"));
            b.tasks.insert(id.clone(), TaskRecord::default());
            b.queue.push(id);
        }
        b.queue.reverse();
    }
    let mut sim = Sim {
        seed,
        program,
        dir: dir.path().to_path_buf(),
        master: "master@127.0.0.1:1".parse().unwrap(),
        master_arbiter: None,
        agents: Vec::new(),
        framework: None,
        book: book.clone(),
        restarts: Vec::new(),
    };
    sim.master = sim.start_master(0).await;
    for i in 0..AGENTS {
        let agent = sim.start_agent(i, 0).await;
        sim.agents.push(agent);
    }
    sim.start_framework(None).await;

    // The master's books are read throughout, from a node without faults of its own.
    let inspector_node = Node::start(NodeConfig::default()).await.expect("node");
    let (inspector, mut inspections) = start_inspector(&inspector_node);
    let mut books_read = 0usize;
    let mut book_problems: Vec<String> = Vec::new();

    let start = Instant::now();
    let mut last_reconcile = start;
    // The restart schedule comes from the seed: after 1 to 4 s, then again, `restarts` times.
    let mut next_restart = start + Duration::from_millis(rng.gen_range(1_000..4_000));
    let outcome = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = Instant::now();
        if sim.restarts.len() < restarts && now >= next_restart {
            let pick = rng.gen_range(0..AGENTS + 2);
            if pick == AGENTS {
                sim.restart_framework().await;
            } else if pick == AGENTS + 1 {
                sim.restart_master().await;
            } else {
                sim.restart_agent(pick).await;
            }
            next_restart = Instant::now() + Duration::from_millis(rng.gen_range(1_000..4_000));
        }
        let (done, kills, reconcile) = {
            let mut b = book.lock();
            let mut kills = Vec::new();
            let mut reconcile = Vec::new();
            for (id, rec) in b.tasks.iter_mut() {
                if rec.terminal.is_some() {
                    continue;
                }
                let Some(at) = rec.launched_at else { continue };
                reconcile.push((id.clone(), rec.agent.clone()));
                let silent = now - at > KILL_AFTER;
                let may_retry = rec.last_kill.is_none_or(|k| now - k > KILL_RETRY);
                if silent && may_retry {
                    rec.last_kill = Some(now);
                    kills.push((id.clone(), rec.agent.clone()));
                }
            }
            (
                b.tasks.values().all(|r| r.terminal.is_some()),
                kills,
                reconcile,
            )
        };
        if done && sim.restarts.len() >= restarts {
            break Ok(());
        }
        if now - start > DEADLINE {
            let b = book.lock();
            let stuck: Vec<_> = b
                .tasks
                .iter()
                .filter(|(_, r)| r.terminal.is_none())
                .take(5)
                .map(|(id, r)| format!("{id}: {:?}", r.seen))
                .collect();
            break Err(format!(
                "{} of {tasks} tasks never ended within {DEADLINE:?}, e.g. {stuck:?}",
                b.tasks.values().filter(|r| r.terminal.is_none()).count()
            ));
        }
        inspector_node.send_from(&inspector, &sim.master, InspectMaster::all());
        while let Ok(inspection) = inspections.try_recv() {
            books_read += 1;
            if book_problems.len() < 10 {
                book_problems.extend(inspection.problems);
            }
        }
        let driver = sim.driver();
        for (id, agent) in kills {
            driver.kill(id, agent);
        }
        if now - last_reconcile > RECONCILE_EVERY && !reconcile.is_empty() {
            last_reconcile = now;
            driver.reconcile(reconcile);
        }
    };

    let restarted = sim.restarts.clone();
    sim.stop();
    let b = book.lock();
    let mut problems = b.violations.clone();
    problems.extend(book_problems);
    if books_read == 0 {
        problems.push("the master never answered an inspection".into());
    }
    // Faults and restarts cost tasks (an accept that reaches a restarted master, or one that
    // arrives after its offer timed out, loses its tasks, as in Mesos), but a run where few
    // finish proves nothing: a broken executor binary, say.
    let finished = b
        .tasks
        .values()
        .filter(|r| r.terminal == Some(TaskState::Finished))
        .count();
    if finished * 4 < tasks {
        problems.push(format!("only {finished} of {tasks} tasks finished"));
    }
    if let Err(e) = outcome {
        problems.push(e);
    }
    for ran in tasks_that_ran(dir.path()) {
        match b.tasks.get(&ran).and_then(|r| r.terminal) {
            Some(TaskState::Finished) | None => {}
            Some(other) => problems.push(format!(
                "task {ran} ran to the end but the framework saw it {other}: {:?}",
                b.tasks[&ran].seen
            )),
        }
    }
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for r in b.tasks.values() {
        *tally
            .entry(r.terminal.map_or("none".into(), |s| s.to_string()))
            .or_default() += 1;
    }
    // Why tasks did not finish, by the update that ended them (MESO_VERBOSE=1 prints it).
    let mut why: BTreeMap<String, usize> = BTreeMap::new();
    for r in b
        .tasks
        .values()
        .filter(|r| r.terminal != Some(TaskState::Finished))
    {
        let last = r.seen.iter().rev().find(|(s, _, _)| s.is_terminal());
        let key = last.map_or("none".into(), |(s, rel, m)| {
            format!("{s} reliable={rel} {m}")
        });
        *why.entry(key.chars().take(140).collect()).or_default() += 1;
    }
    if std::env::var("MESO_VERBOSE").is_ok() {
        eprintln!("seed {seed}: unfinished tasks by their last update {why:#?}");
    }
    if problems.is_empty() {
        Ok(format!(
            "{tally:?} restarts {restarted:?}, master books read {books_read} times"
        ))
    } else {
        Err(format!(
            "{}\n(restarts: {restarted:?})",
            problems.join("\n")
        ))
    }
}

fn seeds() -> Vec<u64> {
    let spec = std::env::var("MESO_SEEDS").unwrap_or_else(|_| "1,2,3".into());
    let mut out = Vec::new();
    for part in spec.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                out.extend(a.trim().parse::<u64>().unwrap()..=b.trim().parse::<u64>().unwrap())
            }
            None => out.push(part.trim().parse().unwrap()),
        }
    }
    out
}

#[test]
fn seeded_cluster_keeps_every_task_and_update() {
    let tasks: usize = std::env::var("MESO_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let restarts: usize = std::env::var("MESO_RESTARTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for seed in seeds() {
        let reproduce = format!(
            "reproduce: MESO_SEEDS={seed} MESO_TASKS={tasks} MESO_RESTARTS={restarts} cargo test --test seeded_faults -- --nocapture"
        );
        // A panic inside the run (a node that cannot start, say) names the seed too.
        let run_seed = std::panic::AssertUnwindSafe(|| {
            actix_rt::System::new().block_on(run(seed, tasks, restarts))
        });
        match std::panic::catch_unwind(run_seed) {
            Ok(Ok(tally)) => eprintln!("seed {seed}: ok {tally}"),
            Ok(Err(e)) => panic!("seed {seed} failed:\n{e}\n{reproduce}"),
            Err(cause) => {
                let why = cause
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| cause.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("seed {seed} panicked: {why}\n{reproduce}")
            }
        }
    }
}
