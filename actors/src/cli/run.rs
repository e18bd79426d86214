//! What each subcommand does. Each returns the process exit code.

use super::execute::{print_line, ExecuteScheduler, Outcome, Tracker};
use super::{AgentArgs, Command, ExecuteArgs, LocalArgs, MasterArgs, Target};
use crate::agent::{self, resources_detect, AgentConfig};
use crate::local::{LocalCluster, LocalConfig};
use crate::master::{self, MasterConfig};
use crate::scheduler::run_scheduler;
use meso::process::{Node, NodeConfig};
use meso::protocol::FrameworkInfo;
use meso::resources::{Resource, Resources};
use parking_lot::Mutex;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

/// Runs a parsed command line.
pub fn run(command: Command) -> i32 {
    match command {
        Command::Help(text) => {
            print_line(text);
            0
        }
        Command::Executor => crate::executor::run_command_executor(),
        Command::Master(args) => {
            init_logging("info");
            in_system(run_master(args))
        }
        Command::Agent(args) => {
            init_logging("info");
            in_system(run_agent(args))
        }
        Command::Local(args) => {
            init_logging("info");
            in_system(run_local(args))
        }
        Command::Execute(args) => {
            init_logging("warn");
            in_system(run_execute(args))
        }
    }
}

fn init_logging(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn in_system(body: impl std::future::Future<Output = i32>) -> i32 {
    actix_rt::System::new().block_on(body)
}

fn fail(message: impl std::fmt::Display) -> i32 {
    eprintln!("meso: {message}");
    1
}

async fn start_node(listen: SocketAddr, advertise_ip: Option<IpAddr>) -> Result<Node, i32> {
    let config = NodeConfig {
        advertise_ip,
        ..NodeConfig::listen(listen)
    };
    Node::start(config).await.map_err(fail)
}

fn current_exe() -> Result<PathBuf, i32> {
    std::env::current_exe().map_err(|e| fail(format!("cannot locate the meso binary: {e}")))
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM: either asks for the same clean shutdown.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("cannot listen for SIGTERM: {e}");
            None
        }
    };
    let terminated = async {
        match term.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    let interrupted = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = terminated => {},
        _ = interrupted => {},
    }
}

async fn run_master(args: MasterArgs) -> i32 {
    let node = match start_node(args.listen, args.advertise_ip).await {
        Ok(n) => n,
        Err(code) => return code,
    };
    let config = MasterConfig {
        work_dir: args.work_dir,
        agent_ping_timeout_ms: args.agent_ping_timeout_ms,
        max_agent_ping_timeouts: args.max_agent_ping_timeouts,
        agent_reregister_timeout_ms: args.agent_reregister_timeout_ms,
        ..MasterConfig::default()
    };
    match master::start_master(&node, config) {
        Ok(upid) => print_line(format_args!("master {upid}")),
        Err(e) => return fail(format!("cannot start the master: {e}")),
    }
    shutdown_signal().await;
    node.shutdown();
    0
}

async fn run_agent(args: AgentArgs) -> i32 {
    let resources = match args.resources {
        Some(r) => r,
        None => match resources_detect::detect_resources_at(&args.work_dir) {
            Ok(r) => r,
            Err(e) => return fail(format!("cannot detect resources: {e}")),
        },
    };
    let program = match current_exe() {
        Ok(p) => p,
        Err(code) => return code,
    };
    let node = match start_node(args.listen, args.advertise_ip).await {
        Ok(n) => n,
        Err(code) => return code,
    };
    let mut config = AgentConfig::new(args.master, args.work_dir, resources, program);
    config.name = args.name;
    config.attributes = args.attributes;
    config.recovery_timeout_ms = args.recovery_timeout_ms;
    config.hostname = node.addr().ip().to_string();
    let stopped = match agent::start_agent_with_stop(&node, config) {
        Ok((upid, stopped)) => {
            print_line(format_args!("agent {upid}"));
            stopped
        }
        Err(e) => return fail(format!("cannot start the agent: {e}")),
    };
    // Until Ctrl-C or SIGTERM, or until the agent stops (the master shut it down).
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = stopped => tracing::info!("the agent stopped; exiting"),
    }
    node.shutdown();
    0
}

async fn run_local(args: LocalArgs) -> i32 {
    let program = match current_exe() {
        Ok(p) => p,
        Err(code) => return code,
    };
    // Without --work-dir the cluster works in a temporary directory removed on exit.
    let temp = match &args.work_dir {
        Some(_) => None,
        None => match tempfile::Builder::new().prefix("meso-local-").tempdir() {
            Ok(t) => Some(t),
            Err(e) => return fail(format!("cannot make a work dir: {e}")),
        },
    };
    let work_dir = match (&args.work_dir, &temp) {
        (Some(dir), _) => dir.clone(),
        (None, Some(t)) => t.path().to_path_buf(),
        (None, None) => return fail("no work dir"),
    };
    let node = match start_node(
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), args.port),
        None,
    )
    .await
    {
        Ok(n) => n,
        Err(code) => return code,
    };
    let mut config = LocalConfig::new(work_dir, program);
    config.agents = args.agents;
    config.resources = args.resources;
    config.port = args.port;
    let cluster = match LocalCluster::start(&node, config) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    print_line(format_args!("master {}", cluster.master));
    for a in &cluster.agents {
        print_line(format_args!("agent {a}"));
    }
    shutdown_signal().await;
    // The agents kill their executors before the node goes: the cluster goes with its tasks
    // (its executors would otherwise wait for their agent for the recovery timeout, in a work
    // dir that is removed on exit when it is a temporary one). Not cut short by another Ctrl-C:
    // a task that ignores SIGTERM is killed at the end of its grace period, not orphaned, and
    // the wait is bounded.
    cluster.shutdown_agents(LOCAL_SHUTDOWN_WAIT).await;
    node.shutdown();
    drop(temp);
    0
}

/// How long `meso local` waits for its agents to kill their executors on Ctrl-C (their kill
/// grace period is 3 s, and a session that ignores SIGTERM is killed after it).
const LOCAL_SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// How long `meso execute` waits for kills to land after Ctrl-C.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// How often `meso execute` sends the kills again while tasks have not ended after Ctrl-C.
const KILL_RESEND: Duration = Duration::from_secs(2);

async fn run_execute(args: ExecuteArgs) -> i32 {
    let per_task = Resources::new()
        .with(Resource::scalar("cpus", args.cpus))
        .with(Resource::scalar("mem", args.mem));
    // With --local, the machine is split between the agents: refuse a task that fits none of
    // the shares up front (before anything is started) rather than wait for ever.
    if let Target::Local(agents) = args.target {
        match resources_detect::detect_resources_at(&std::env::temp_dir()) {
            Ok(total) => {
                let shares = crate::local::split_evenly(&total, agents);
                if let Some(share) = shares.first().filter(|s| !s.contains(&per_task)) {
                    eprintln!(
                        "meso: --local {agents} gives each agent {share}, which cannot fit one task of {per_task}"
                    );
                    return 2;
                }
            }
            Err(e) => tracing::warn!("cannot detect this machine's resources: {e}"),
        }
    }
    let node = match start_node(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0), None).await {
        Ok(n) => n,
        Err(code) => return code,
    };
    let mut _temp = None;
    let mut local = None;
    let master = match args.target {
        Target::Master(m) => m,
        Target::Local(agents) => {
            let program = match current_exe() {
                Ok(p) => p,
                Err(code) => return code,
            };
            let temp = match tempfile::Builder::new().prefix("meso-execute-").tempdir() {
                Ok(t) => t,
                Err(e) => return fail(format!("cannot make a work dir: {e}")),
            };
            let mut config = LocalConfig::new(temp.path().to_path_buf(), program);
            config.agents = agents;
            config.allocation_interval_ms = 500;
            _temp = Some(temp);
            match LocalCluster::start(&node, config) {
                Ok(c) => local.insert(c).master.clone(),
                Err(e) => return fail(e),
            }
        }
    };
    let tracker = Arc::new(Mutex::new(Tracker::new(&args.name, args.instances)));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let scheduler = ExecuteScheduler::new(
        args.command,
        per_task,
        args.kill_after_ms.map(Duration::from_millis),
        tracker.clone(),
        done_tx,
        master.addr().to_string(),
    );
    let user = std::env::var("USER").unwrap_or_else(|_| "root".to_string());
    let mut framework = FrameworkInfo::new(format!("meso-execute {}", args.name), user);
    framework.hostname = node.addr().ip().to_string();
    let driver = match run_scheduler(&node, master, framework, scheduler) {
        Ok(d) => d,
        Err(e) => {
            node.shutdown();
            return fail(format!("cannot start the scheduler driver: {e}"));
        }
    };
    let outcome = tokio::select! {
        outcome = done_rx.recv() => outcome,
        _ = shutdown_signal() => {
            let (never, outstanding) = {
                let mut t = tracker.lock();
                (t.interrupt(), t.outstanding())
            };
            eprintln!(
                "meso: interrupted; killing {} tasks ({never} never launched)",
                outstanding.len()
            );
            // Kills are resent until every task has ended (a kill can be lost with its
            // connection), for `KILL_WAIT` at most; nothing outstanding means nothing to wait for.
            let kill_all = async {
                loop {
                    let outstanding = tracker.lock().outstanding();
                    if outstanding.is_empty() {
                        return;
                    }
                    for (task, agent) in outstanding {
                        driver.kill(task, agent);
                    }
                    tokio::select! {
                        _ = done_rx.recv() => return,
                        _ = tokio::time::sleep(KILL_RESEND) => {}
                    }
                }
            };
            let _ = tokio::time::timeout(KILL_WAIT, async {
                tokio::select! {
                    _ = kill_all => {},
                    _ = shutdown_signal() => {},
                }
            })
            .await;
            None
        }
    };
    driver.stop();
    // Give the unregistration a moment to leave before the process ends.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // An in-process cluster goes with its tasks, as `meso local` does on Ctrl-C: whatever the
    // kills above did not reach is ended by the agents before the work dir is removed.
    // Not cut short by another Ctrl-C, as in `meso local`: what ignores SIGTERM is killed at the
    // end of its grace period rather than orphaned in a work dir about to be removed.
    if let Some(cluster) = &local {
        cluster.shutdown_agents(LOCAL_SHUTDOWN_WAIT).await;
    }
    node.shutdown();
    let mut tracker = tracker.lock();
    // Interrupted, some ends were never heard (the master gone, a kill unanswered in time): the
    // framework does not know how those tasks ended, which is what lost means.
    let unheard = tracker.give_up();
    if unheard > 0 {
        eprintln!("meso: {unheard} tasks did not report an end; counted as lost");
    }
    print_line(tracker.summary);
    match outcome {
        Some(Outcome::AllEnded) if tracker.all_finished() => 0,
        Some(Outcome::Error(message)) => {
            fail(format!("the master refused the framework: {message}"))
        }
        Some(Outcome::AllEnded) => 1,
        None => 130,
    }
}
