//! Master failover at scale: the time for a restarted master to have 10,000 agents re-registered,
//! with 10 tasks each known to it.
//!
//! The agents are simulated: one light actor each, all on one node, speaking the real protocol over
//! loopback TCP to a real master on its own thread. The master is started, the agents register, the
//! master is stopped and started again on the same port and work dir (its registry of admitted
//! agents on disk). The clock runs from the start of the new master (its registry read included)
//! until every agent has had its `AgentReregistered` and the master's books show every task of
//! every agent in use (asked with `InspectMaster`: 10 tasks of `cpus:0.1;mem:32` per agent, of
//! five frameworks the agents name, as a real agent names the frameworks of its tasks). Ends by
//! printing `summary master_failover_10k_agents_ms=N`. `FAILOVER_BENCH_AGENTS` changes the number
//! of agents (the summary then says how many on a line before it).

#[path = "support/arbiter.rs"]
mod arbiter;
#[path = "support/inspector.rs"]
mod inspector;

use actix::{Actor, Arbiter, Context, Handler};
use arbiter::on_arbiter;
use inspector::start_inspector;
use meso::process::{Incoming, Node, NodeConfig, Process, Upid};
use meso::protocol::{
    AgentId, AgentInfo, AgentRegistered, AgentReregistered, AgentTask, CommandInfo, FrameworkId,
    FrameworkInfo, InspectMaster, MasterInspection, Ping, Pong, RegisterAgent, ReregisterAgent,
    TaskId, TaskInfo, TaskState,
};
use meso::resources::Resources;
use meso_actors::master::{start_master, MasterConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

const TASKS_PER_AGENT: usize = 10;
const FRAMEWORKS: usize = 5;
const TASK_RESOURCES: &str = "cpus:0.1;mem:32";

fn framework_id(f: usize) -> FrameworkId {
    FrameworkId::new(format!("sim-F{f}"))
}

struct SimAgent {
    index: usize,
    process: Process,
    master: Upid,
    resources: Resources,
    id: Option<AgentId>,
    events: UnboundedSender<(usize, bool)>,
}

/// Local nudges from the bench.
#[derive(actix::Message)]
#[rtype(result = "()")]
enum Nudge {
    Register,
    Reregister,
}

impl Actor for SimAgent {
    type Context = Context<Self>;
}

impl SimAgent {
    fn info(&self) -> AgentInfo {
        AgentInfo {
            id: self.id.clone(),
            hostname: format!("sim-{}", self.index),
            resources: self.resources.clone(),
            attributes: Vec::new(),
            port: 0,
        }
    }

    fn tasks(&self, id: &AgentId) -> Vec<AgentTask> {
        (0..TASKS_PER_AGENT)
            .map(|t| {
                let task_id = TaskId::new(format!("{}-t{t}", self.index));
                let resources = Resources::parse(TASK_RESOURCES).unwrap();
                let task =
                    TaskInfo::command(task_id, id.clone(), resources, CommandInfo::shell("true"));
                AgentTask {
                    framework_id: framework_id(t % FRAMEWORKS),
                    task,
                    state: TaskState::Running,
                    status: None,
                }
            })
            .collect()
    }

    /// The frameworks of its tasks, as a real agent reports them from its checkpoints.
    fn frameworks() -> Vec<FrameworkInfo> {
        (0..FRAMEWORKS)
            .map(|f| {
                let mut info = FrameworkInfo::new(format!("sim-{f}"), "bench");
                info.id = Some(framework_id(f));
                info.failover_timeout_s = 3600.0;
                info
            })
            .collect()
    }
}

impl Handler<Nudge> for SimAgent {
    type Result = ();
    fn handle(&mut self, nudge: Nudge, _: &mut Context<Self>) {
        match nudge {
            Nudge::Register => self.process.send(
                &self.master,
                RegisterAgent {
                    agent: self.info(),
                    version: "bench".into(),
                },
            ),
            Nudge::Reregister => {
                let Some(id) = self.id.clone() else { return };
                let msg = ReregisterAgent {
                    agent: self.info(),
                    version: "bench".into(),
                    tasks: self.tasks(&id),
                    executors: Vec::new(),
                    frameworks: Self::frameworks(),
                };
                self.process.send(&self.master, msg);
            }
        }
    }
}

impl Handler<Incoming<AgentRegistered>> for SimAgent {
    type Result = ();
    fn handle(&mut self, m: Incoming<AgentRegistered>, _: &mut Context<Self>) {
        if self.id.is_none() {
            self.id = Some(m.msg.agent_id);
            let _ = self.events.send((self.index, false));
        }
    }
}

impl Handler<Incoming<AgentReregistered>> for SimAgent {
    type Result = ();
    fn handle(&mut self, _: Incoming<AgentReregistered>, _: &mut Context<Self>) {
        let _ = self.events.send((self.index, true));
    }
}

impl Handler<Incoming<Ping>> for SimAgent {
    type Result = ();
    fn handle(&mut self, m: Incoming<Ping>, _: &mut Context<Self>) {
        self.process.send(&m.from, Pong {});
    }
}

/// Agents per `InspectMaster` page: 1,000 accounts make a frame of a few hundred KiB.
const INSPECT_PAGE: usize = 1_000;

/// Whether a page of the master's books holds every task of its agents: each agent uses exactly
/// its tasks' resources, and the books balance.
fn all_tasks_known(books: &MasterInspection) -> bool {
    let mut per_agent = Resources::default();
    for _ in 0..TASKS_PER_AGENT {
        per_agent += Resources::parse(TASK_RESOURCES).unwrap();
    }
    books.problems.is_empty() && books.agents.iter().all(|a| a.used == per_agent)
}

async fn start_master_on(arbiter: &Arbiter, port: u16, work_dir: PathBuf) -> (Node, Upid) {
    on_arbiter(arbiter, move || async move {
        let listen: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let node = Node::start(NodeConfig::listen(listen))
            .await
            .expect("master node");
        let config = MasterConfig {
            work_dir: Some(work_dir),
            ..MasterConfig::default()
        };
        let master = start_master(&node, config).expect("master");
        (node, master)
    })
    .await
}

/// Waits for `n` events of the given kind.
async fn wait_for(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(usize, bool)>,
    n: usize,
    rereg: bool,
) {
    let mut seen = std::collections::HashSet::new();
    while seen.len() < n {
        let (i, kind) = tokio::time::timeout(Duration::from_secs(120), rx.recv())
            .await
            .expect("agents stalled")
            .expect("agents gone");
        if kind == rereg {
            seen.insert(i);
        }
    }
}

fn main() {
    let agents: usize = std::env::var("FAILOVER_BENCH_AGENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let work_dir = tempfile::tempdir().expect("temp dir");
    let ms = actix_rt::System::new().block_on(async move {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = work_dir.path().join("master");
        let first = Arbiter::new();
        let (_node1, master) = start_master_on(&first, port, dir.clone()).await;

        let sim = Node::start(NodeConfig {
            max_queued_bytes: 1 << 30,
            ..NodeConfig::default()
        })
        .await
        .unwrap();
        let (tx, mut rx) = unbounded_channel();
        let resources = Resources::parse("cpus:4;mem:8192;disk:10000").unwrap();
        let mut addrs = Vec::with_capacity(agents);
        for index in 0..agents {
            let name = format!("agent-{index}");
            let agent = SimAgent {
                index,
                process: sim.process(&name).unwrap(),
                master: master.clone(),
                resources: resources.clone(),
                id: None,
                events: tx.clone(),
            };
            let (_, addr) = sim
                .actor::<SimAgent>(&name)
                .handle::<AgentRegistered>()
                .handle::<AgentReregistered>()
                .handle::<Ping>()
                .start(agent)
                .unwrap();
            addrs.push(addr);
        }
        for addr in &addrs {
            addr.do_send(Nudge::Register);
        }
        wait_for(&mut rx, agents, false).await;

        let (inspector, mut books) = start_inspector(&sim);

        // The master goes away; a new one starts on the same port and work dir.
        first.stop();
        first.join().ok();
        let start = Instant::now();
        let second = Arbiter::new();
        let (_node2, _) = start_master_on(&second, port, dir).await;
        for addr in &addrs {
            addr.do_send(Nudge::Reregister);
        }
        wait_for(&mut rx, agents, true).await;
        // Every agent is back; now read the books, a page at a time (a frame is capped), until
        // they show all the tasks (taken in with the reregistration, so the first reading does).
        loop {
            let mut known = 0;
            for first in (0..agents).step_by(INSPECT_PAGE) {
                let page = InspectMaster {
                    first_agent: first as u64,
                    max_agents: INSPECT_PAGE as u64,
                };
                sim.send_from(&inspector, &master, page);
                let answer = tokio::time::timeout(Duration::from_secs(60), books.recv())
                    .await
                    .expect("the master answers InspectMaster")
                    .expect("inspector gone");
                assert_eq!(answer.agents_total, agents as u64, "agents in the master");
                if all_tasks_known(&answer) {
                    known += answer.agents.len();
                }
            }
            if known == agents {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "the master never knew every task: {known} of {agents} agents complete"
            );
        }
        let ms = start.elapsed().as_secs_f64() * 1e3;
        second.stop();
        ms
    });
    if agents != 10_000 {
        println!("agents={agents} (FAILOVER_BENCH_AGENTS): the figure below is for that many");
    }
    println!("summary master_failover_10k_agents_ms={ms:.0}");
}
