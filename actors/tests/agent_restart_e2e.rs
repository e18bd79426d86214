//! Agents through restarts and shutdowns, with the real `meso` binary: an agent SIGKILLed under a
//! running task and started again against a real master (`meso master`) keeps the task, and
//! `meso local` runs another process's tasks (`meso execute`) and, on Ctrl-C, exits leaving no
//! executor or task of its work dir behind.

use meso::protocol::*;
use meso::resources::Resources;
use meso_actors::scheduler::SchedulerEvent;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::framework::{
    assert_agents_update, framework, master_upid, spawn_agent_on, spawn_master, wait_agent_free,
    wait_id_checkpointed,
};
use support::{
    alive, assert_none_left, free_port, meso_command, poll, processes_of, sleepers,
    wait_file_every, Children,
};

/// Mesos's agent recovery (checkpointing framework, `--recover=reconnect`): an agent SIGKILLed
/// while its task runs leaves the executor running (it lives in a session of its own and waits
/// for its agent to come back); started again on the same work dir and port it recovers its
/// checkpointed state, reregisters with the master under the same agent id and reconnects to the
/// executor. The task is kept: the framework later gets its TASK_FINISHED (the agent's reliable
/// update, with a uuid) and never a TASK_LOST or TASK_FAILED, and the master's books give the
/// agent's resources back when it ends, balanced, with one agent in all (not a second one).
#[actix_rt::test]
async fn an_agent_killed_under_a_running_task_and_restarted_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut children = Children::default();
    let port = free_port();
    spawn_master(&mut children, port, &dir.path().join("master"), &[]);
    let (a_port, a_dir) = (free_port(), dir.path().join("agent"));
    let a = spawn_agent_on(&mut children, port, a_port, &a_dir, "cpus:1;mem:256");
    let master = master_upid(port);

    let mut info = FrameworkInfo::new("keeper", "test");
    info.failover_timeout_s = 600.0;
    // Only a checkpointing framework's executors outlive their agent.
    info.checkpoint = true;
    let mut f = framework(&master, info).await;
    let offers = f.offers(Duration::from_secs(20), "an offer").await;
    let offer = offers[0].clone();
    let agent = offer.agent_id.clone();
    let mut seen_offers: Vec<OfferId> = offers.iter().map(|o| o.id.clone()).collect();

    // The task writes its pid when it starts, then runs until the gate exists.
    let started = dir.path().join("started");
    let gate = dir.path().join("gate");
    let command = format!(
        "echo $$ > '{s}.tmp' && mv '{s}.tmp' '{s}'; while [ ! -e '{g}' ]; do sleep 0.1; done",
        s = started.display(),
        g = gate.display()
    );
    let task = TaskInfo::command(
        TaskId::new("t1"),
        agent.clone(),
        Resources::parse("cpus:0.5;mem:32").unwrap(),
        CommandInfo::shell(command),
    );
    f.driver.launch(
        std::slice::from_ref(&offer.id),
        vec![task],
        Filters::default(),
    );
    let running = f
        .state("t1", TaskState::Running, Duration::from_secs(20))
        .await;
    assert_eq!(running.agent_id.as_ref(), Some(&agent), "{running:?}");
    let pid: i32 = wait_file_every(&started, Duration::from_millis(100))
        .await
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid), "the task's process {pid} runs");

    // Killed only once its id is on disk, the agent returns as the same agent.
    wait_id_checkpointed(&a_dir, &agent, 400, Duration::from_millis(50)).await;
    children.kill(a);
    // The executor, and so the task, outlive the agent.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(alive(pid), "the task's process {pid} died with its agent");
    // Offers made before the restart do not count as the restarted agent's.
    for event in f.drain(Duration::from_millis(500)).await {
        if let SchedulerEvent::ResourceOffers(o) = event {
            seen_offers.extend(o.into_iter().map(|o| o.id));
        }
    }

    spawn_agent_on(&mut children, port, a_port, &a_dir, "cpus:1;mem:256");
    let back = f
        .wait(
            Duration::from_secs(30),
            "an offer from the restarted agent",
            |e| match e {
                SchedulerEvent::ResourceOffers(o) => {
                    o.iter().find(|o| !seen_offers.contains(&o.id)).cloned()
                }
                _ => None,
            },
        )
        .await;
    assert_eq!(back.agent_id, agent, "the agent came back under a new id");
    // Its task is still held: only what the task does not use is offered.
    assert_eq!(
        back.resources,
        Resources::parse("cpus:0.5;mem:224").unwrap(),
        "{back:?}"
    );
    assert!(
        alive(pid),
        "the task's process {pid} is gone after the restart"
    );

    std::fs::write(&gate, "").unwrap();
    let finished = f
        .state("t1", TaskState::Finished, Duration::from_secs(30))
        .await;
    assert_agents_update(&finished, &agent);

    let books = wait_agent_free(
        &master,
        &agent,
        Duration::from_secs(20),
        "the agent's resources back at the master",
    )
    .await;
    assert!(books.problems.is_empty(), "{:?}", books.problems);
    assert_eq!(books.agents_total, 1, "one agent in all: {books:?}");

    // Nothing more of the task arrives (no late TASK_LOST).
    f.drain(Duration::from_secs(2)).await;
    let of_t1: Vec<_> = f
        .statuses
        .iter()
        .filter(|s| s.task_id.as_str() == "t1")
        .collect();
    assert!(
        of_t1
            .iter()
            .all(|s| !matches!(s.state, TaskState::Lost | TaskState::Failed)),
        "{of_t1:?}"
    );
    assert_eq!(
        of_t1.iter().filter(|s| s.state.is_terminal()).count(),
        1,
        "one end: {of_t1:?}"
    );
    f.driver.stop();
    f.node.shutdown();
}

/// `meso <args>` with its stdout piped; executors it starts wait `recovery_ms` for a lost agent.
fn meso(args: &[&str], recovery_ms: u64) -> Child {
    meso_command(recovery_ms)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn meso")
}

/// `meso local --agents 2` on `port` with its own work dir; its executors wait `recovery_ms`
/// for a lost agent.
fn local(kids: &mut Children, port: u16, work: &Path, recovery_ms: u64) -> usize {
    kids.watch_dir(work);
    let port = port.to_string();
    let args = [
        "local",
        "--agents",
        "2",
        "--port",
        &port,
        "--work-dir",
        work.to_str().unwrap(),
    ];
    kids.add(meso(&args, recovery_ms))
}

/// Sends SIGINT to `meso local` (child `l`); panics unless it exits with status 0 within 15 s.
fn ctrl_c(kids: &mut Children, l: usize, what: &str) {
    let asked = Instant::now();
    kids.signal(l, libc::SIGINT);
    let status = kids
        .wait(l, Duration::from_secs(15))
        .unwrap_or_else(|| panic!("{what} still runs 15 s after Ctrl-C"));
    assert!(status.success(), "{what} ended {status:?} after Ctrl-C");
    eprintln!("{what} exited {:?} after Ctrl-C", asked.elapsed());
}

/// What `mesos-local` is for: a whole cluster in one process (`meso local`) that other processes
/// use as they would a real master. A separate `meso execute` runs its tasks on it and exits 0
/// with every task finished. Ctrl-C (SIGINT) to `meso local` is its clean shutdown (`run_local`
/// answers SIGINT or SIGTERM by shutting its agents, then its node down, and returning 0): it
/// exits promptly with status 0, and no process of its work dir (an executor, a task) is left.
#[actix_rt::test]
async fn meso_local_runs_another_processes_tasks_and_exits_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let mut kids = Children::default();
    let port = free_port();
    let work = dir.path().join("local");
    let l = local(&mut kids, port, &work, 600_000);
    let master = format!("127.0.0.1:{port}");

    let args = [
        "execute",
        "--master",
        &master,
        "--instances",
        "4",
        "--command",
        "true",
    ];
    let e = kids.add(meso(&args, 600_000));
    let status = kids.wait(e, Duration::from_secs(60));
    let out = kids.stdout(e);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{out}");
    assert!(
        out.lines()
            .any(|l| l == "finished 4 failed 0 killed 0 lost 0 error 0"),
        "{out}"
    );
    assert!(
        kids.wait(l, Duration::ZERO).is_none(),
        "`meso local` is still up"
    );
    ctrl_c(&mut kids, l, "`meso local`");
    assert_none_left(&work, Duration::from_secs(20), "by `meso local`").await;
}

/// Ctrl-C to `meso local` while a task runs (of `meso execute`, whose framework checkpoints, so
/// its executor would wait for a lost agent): `meso local` still exits promptly with status 0,
/// and the task goes with it, its executor too, within the agents' kill grace period, not once
/// the executor gives up on its agent (its recovery timeout, here ten minutes, 15 by default).
/// Mesos's `ShutdownAgent`: the throwaway cluster's agents shut their executors down.
#[actix_rt::test]
async fn ctrl_c_to_meso_local_ends_the_tasks_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut kids = Children::default();
    let port = free_port();
    let work = dir.path().join("local");
    let l = local(&mut kids, port, &work, 600_000);
    let master = format!("127.0.0.1:{port}");
    let seconds = format!("600.{}", std::process::id());
    let command = format!("sleep {seconds}");
    let args = ["execute", "--master", &master, "--command", &command];
    let e = kids.add(meso(&args, 600_000));
    poll(600, Duration::from_millis(100), || {
        (!sleepers(&seconds).is_empty()).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("no `{command}` running"));
    // The check below is not vacuous: the task's executor runs in the work dir.
    let before = processes_of(&work);
    assert!(
        before.iter().any(|(_, p)| p.contains("meso executor")),
        "no executor found under {}: {before:?}",
        work.display()
    );

    ctrl_c(&mut kids, l, "`meso local` with a task running");
    let gone = poll(150, Duration::from_millis(100), || {
        sleepers(&seconds).is_empty().then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "`{command}` outlived `meso local` by 15 s: {:?}",
        sleepers(&seconds)
    );
    assert_none_left(&work, Duration::from_secs(15), "by `meso local`").await;
    // `meso execute` keeps trying to reach its master; it is not under test here.
    kids.signal(e, libc::SIGKILL);
}
