//! Hello, framework: the smallest useful meso framework.
//!
//! It registers with a master, launches five tasks that each print a greeting, prints every status
//! update it receives, and exits once all five tasks have ended.
//!
//! Against a running cluster:
//!
//! ```text
//! cargo run --bin meso -- local --agents 2 &          # or: meso master / meso agent
//! cargo run --example hello_framework -- --master 127.0.0.1:5050
//! ```
//!
//! Or with a cluster of its own, started inside this process:
//!
//! ```text
//! cargo build --bin meso                              # the agents run `meso executor`
//! cargo run --example hello_framework -- --local 2
//! ```
//!
//! Each task's output lands in its sandbox, under the agent's work dir:
//! `.../frameworks/<framework>/executors/<task>/runs/<run>/stdout`.

use meso::process::{Node, NodeConfig, Upid};
use meso::protocol::{
    CommandInfo, Filters, FrameworkId, FrameworkInfo, MasterInfo, Offer, TaskId, TaskInfo,
    TaskStatus,
};
use meso::resources::Resources;
use meso_actors::local::{LocalCluster, LocalConfig};
use meso_actors::scheduler::{run_scheduler, Scheduler, SchedulerDriver};
use std::collections::HashSet;
use std::path::PathBuf;

/// How many tasks we run.
const TASKS: usize = 5;

/// A framework is a value that implements `Scheduler`. The driver calls it from an actor of its
/// own, one event at a time, so plain fields are enough: no locks.
struct HelloFramework {
    /// Each task asks for this much: a tenth of a cpu and 32 MB.
    per_task: Resources,
    /// Tasks launched so far (ids `hello-0` .. `hello-4`).
    launched: usize,
    /// Tasks that reached a terminal state (finished, failed, killed, lost...).
    ended: HashSet<TaskId>,
    /// Told when every task has ended, so `main` can stop.
    done: tokio::sync::mpsc::UnboundedSender<()>,
}

impl Scheduler for HelloFramework {
    /// The master accepted us and gave the framework an id.
    fn registered(&mut self, _driver: &SchedulerDriver, id: &FrameworkId, master: &MasterInfo) {
        println!("registered as {id} with {}", master.upid);
    }

    /// The master offers resources of some agents. We either use an offer (launch tasks on it) or
    /// decline it; an offer left alone keeps its resources away from everyone.
    fn resource_offers(&mut self, driver: &SchedulerDriver, offers: Vec<Offer>) {
        for offer in offers {
            // Carve as many tasks out of this offer as fit, and as we still need.
            let mut left = offer.resources.clone();
            let mut tasks = Vec::new();
            while self.launched < TASKS && left.contains(&self.per_task) {
                let Ok(rest) = left.checked_sub(&self.per_task) else {
                    break;
                };
                left = rest;
                let id = TaskId::new(format!("hello-{}", self.launched));
                self.launched += 1;
                // A command task: the agent starts `meso executor`, which runs this through
                // `sh -c` in the task's sandbox. MESOS_TASK_ID is set in its environment.
                let command = CommandInfo::shell("echo hello from $MESOS_TASK_ID");
                tasks.push(TaskInfo::command(
                    id,
                    offer.agent_id.clone(),
                    self.per_task.clone(),
                    command,
                ));
            }
            if tasks.is_empty() {
                // Nothing to run here: give the offer back, and do not offer these resources to
                // us again for a while.
                driver.decline(
                    offer.id,
                    Filters {
                        refuse_seconds: 5.0,
                    },
                );
            } else {
                println!(
                    "launching {} tasks on agent {}",
                    tasks.len(),
                    offer.agent_id
                );
                // What the tasks do not use returns to the cluster at once.
                driver.launch(&[offer.id], tasks, Filters::default());
            }
        }
    }

    /// A task changed state. The driver acknowledges the update for us once this returns
    /// (implicit acknowledgements), so the agent stops resending it.
    fn status_update(&mut self, _driver: &SchedulerDriver, status: TaskStatus) {
        println!(
            "task {} is {} {}",
            status.task_id, status.state, status.message
        );
        if status.state.is_terminal() {
            self.ended.insert(status.task_id);
            if self.ended.len() == TASKS {
                let _ = self.done.send(());
            }
        }
    }

    fn disconnected(&mut self, _driver: &SchedulerDriver) {
        println!("lost the master; the driver registers again on its own");
    }

    fn error(&mut self, _driver: &SchedulerDriver, message: &str) {
        eprintln!("the master refused us: {message}");
        std::process::exit(1);
    }
}

/// `--master HOST:PORT` or `--local N`.
enum Cluster {
    Master(Upid),
    Local(usize),
}

fn parse_args() -> Result<Cluster, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, value] if flag == "--master" => {
            meso_actors::cli::master_upid(value).map(Cluster::Master)
        }
        [flag, value] if flag == "--local" => value
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .map(Cluster::Local)
            .ok_or_else(|| format!("--local takes a number of agents, not '{value}'")),
        _ => Err("usage: hello_framework (--master HOST:PORT | --local N)".to_string()),
    }
}

/// The `meso` binary, which agents run as the command executor: next to this example's directory
/// (`target/<profile>/meso` for `target/<profile>/examples/hello_framework`).
fn meso_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let program = exe
        .parent()
        .and_then(|examples| examples.parent())
        .map(|profile| profile.join("meso"))
        .ok_or("cannot tell where the meso binary is")?;
    if !program.exists() {
        return Err(format!(
            "{} is missing: build it first with `cargo build --bin meso`",
            program.display()
        ));
    }
    Ok(program)
}

fn main() {
    let cluster = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    // Actors live in an actix system; the whole framework runs inside this one.
    let code = actix_rt::System::new().block_on(async move {
        // A node is this process's presence on the network: the master answers us through it.
        let node = Node::start(NodeConfig::default())
            .await
            .expect("start a node");

        // With --local, start a master and agents inside this process, in a temporary dir.
        let _work_dir;
        let master = match cluster {
            Cluster::Master(upid) => upid,
            Cluster::Local(agents) => {
                let program = match meso_binary() {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("{e}");
                        return 1;
                    }
                };
                let dir = tempfile::tempdir().expect("a temporary work dir");
                let mut config = LocalConfig::new(dir.path().to_path_buf(), program);
                config.agents = agents;
                let local = LocalCluster::start(&node, config).expect("start the local cluster");
                println!("local cluster in {}", dir.path().display());
                _work_dir = dir;
                local.master
            }
        };

        // Say who we are, and start the driver: it registers (retrying until the master
        // answers) and then calls our `Scheduler` methods as events arrive.
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
        let framework = HelloFramework {
            per_task: Resources::parse("cpus:0.1;mem:32").expect("valid resources"),
            launched: 0,
            ended: HashSet::new(),
            done: done_tx,
        };
        let info = FrameworkInfo::new("hello", "nobody");
        let driver = run_scheduler(&node, master, info, framework).expect("start the driver");

        // Wait for every task to end, then unregister (the master forgets the framework).
        let _ = done_rx.recv().await;
        driver.stop();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        0
    });
    std::process::exit(code);
}
