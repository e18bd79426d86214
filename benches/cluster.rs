//! Throughput and launch latency of a whole local cluster running real processes.
//!
//! A master and 4 agents on one node, a framework on another node of the same process; 2,000 tasks
//! of `true`, each run by a real `meso executor` process. Launch latency is from the accept that
//! launched a task to its TASK_RUNNING. Ends by printing
//! `summary tasks_per_s=N launch_p50_ms=A launch_p99_ms=B`.
//!
//! Needs the release `meso` binary (the agents run it as the command executor); it is brought up
//! to date first. `CLUSTER_BENCH_TASKS` changes the number of tasks; `CLUSTER_BENCH_DIR` where
//! the work dir goes (default: the system's temporary directory).

use meso::process::{Node, NodeConfig};
use meso::protocol::{
    CommandInfo, Filters, FrameworkInfo, Offer, TaskId, TaskInfo, TaskState, TaskStatus,
};
use meso::resources::Resources;
use meso_actors::local::{LocalCluster, LocalConfig};
use meso_actors::scheduler::{run_scheduler, Scheduler, SchedulerDriver};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[path = "support/meso_binary.rs"]
mod meso_binary;
use meso_binary::meso_binary;

const AGENTS: usize = 4;
const AGENT_RESOURCES: &str = "cpus:8;mem:8192;disk:10000;ports:[31000-31999]";

struct Batch {
    total: usize,
    per_task: Resources,
    launched: usize,
    accepted_at: HashMap<TaskId, Instant>,
    launch_ms: Vec<f64>,
    ended: usize,
    bad: Vec<TaskStatus>,
    done: Option<tokio::sync::oneshot::Sender<(Vec<f64>, Vec<TaskStatus>)>>,
}

impl Scheduler for Batch {
    fn resource_offers(&mut self, driver: &SchedulerDriver, offers: Vec<Offer>) {
        for offer in offers {
            let mut left = offer.resources.clone();
            let mut tasks = Vec::new();
            while self.launched < self.total {
                let Ok(rest) = left.checked_sub(&self.per_task) else {
                    break;
                };
                left = rest;
                let id = TaskId::new(format!("t-{}", self.launched));
                self.launched += 1;
                tasks.push(TaskInfo::command(
                    id,
                    offer.agent_id.clone(),
                    self.per_task.clone(),
                    CommandInfo::shell("true"),
                ));
            }
            if tasks.is_empty() {
                driver.decline(
                    offer.id,
                    Filters {
                        refuse_seconds: 1.0,
                    },
                );
                continue;
            }
            let now = Instant::now();
            for t in &tasks {
                self.accepted_at.insert(t.task_id.clone(), now);
            }
            driver.launch(
                &[offer.id],
                tasks,
                Filters {
                    refuse_seconds: 0.0,
                },
            );
        }
    }

    fn status_update(&mut self, _: &SchedulerDriver, status: TaskStatus) {
        if status.state == TaskState::Running {
            if let Some(at) = self.accepted_at.get(&status.task_id) {
                self.launch_ms.push(at.elapsed().as_secs_f64() * 1e3);
            }
        }
        if status.state.is_terminal() {
            if status.state != TaskState::Finished {
                self.bad.push(status);
            }
            self.ended += 1;
            if self.ended == self.total {
                if let Some(done) = self.done.take() {
                    let _ = done.send((
                        std::mem::take(&mut self.launch_ms),
                        std::mem::take(&mut self.bad),
                    ));
                }
            }
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    // Executors still finishing when the bench ends give up on their agent after 5 s instead of
    // 15 minutes. Set before any thread starts, while the environment is safe to change.
    if std::env::var_os("MESO_RECOVERY_TIMEOUT_MS").is_none() {
        std::env::set_var("MESO_RECOVERY_TIMEOUT_MS", "5000");
    }
    let total: usize = std::env::var("CLUSTER_BENCH_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let program = meso_binary();
    // The work dir's disk dominates (agents sync every checkpoint): CLUSTER_BENCH_DIR=/dev/shm
    // measures the software alone.
    let work_dir = match std::env::var("CLUSTER_BENCH_DIR") {
        Ok(base) => tempfile::tempdir_in(base),
        Err(_) => tempfile::tempdir(),
    }
    .expect("temp dir");
    let (elapsed, mut launch_ms, bad) = actix_rt::System::new().block_on(async move {
        let cluster_node = Node::start(NodeConfig::default()).await.unwrap();
        let mut config = LocalConfig::new(work_dir.path().to_path_buf(), program);
        config.agents = AGENTS;
        config.resources = Some(Resources::parse(AGENT_RESOURCES).unwrap());
        let cluster = LocalCluster::start(&cluster_node, config).unwrap();
        let framework_node = Node::start(NodeConfig::default()).await.unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let batch = Batch {
            total,
            per_task: Resources::parse("cpus:0.1;mem:16").unwrap(),
            launched: 0,
            accepted_at: HashMap::new(),
            launch_ms: Vec::new(),
            ended: 0,
            bad: Vec::new(),
            done: Some(tx),
        };
        let start = Instant::now();
        let driver = run_scheduler(
            &framework_node,
            cluster.master.clone(),
            FrameworkInfo::new("cluster-bench", "bench"),
            batch,
        )
        .unwrap();
        let (launch_ms, bad) = tokio::time::timeout(Duration::from_secs(600), rx)
            .await
            .expect("tasks did not all end within 10 minutes")
            .expect("the framework stopped");
        let elapsed = start.elapsed();
        driver.stop();
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(work_dir);
        (elapsed, launch_ms, bad)
    });
    assert!(
        bad.is_empty(),
        "{} tasks did not finish, e.g. {:?}",
        bad.len(),
        bad.first()
    );
    launch_ms.sort_by(|a, b| a.total_cmp(b));
    println!(
        "summary tasks_per_s={:.0} launch_p50_ms={:.1} launch_p99_ms={:.1}",
        total as f64 / elapsed.as_secs_f64(),
        percentile(&launch_ms, 0.50),
        percentile(&launch_ms, 0.99)
    );
}
