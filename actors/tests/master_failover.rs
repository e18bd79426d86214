//! The master through failures, with the real `meso` binary for the master and the agents and a
//! framework in the test: a master killed and restarted (and reconciled with), a scheduler
//! failing over (getting the updates it missed) or not in time (its tasks killed), an agent that
//! goes silent and comes back, an agent killed while its offer is out.

use meso::protocol::*;
use meso::resources::Resources;
use meso_actors::scheduler::SchedulerEvent;
use std::path::Path;
use std::time::Duration;

mod support;
use support::framework::{
    assert_agents_update, cluster, framework, master_upid, spawn_agent, spawn_agent_on,
    spawn_master, wait_agent_free, wait_id_checkpointed,
};
use support::{free_port, poll, sleepers, Children};

/// A shell command that runs until `release` exists: a task that ends when the test says so.
fn until_exists(release: &Path) -> String {
    format!("while [ ! -e '{}' ]; do sleep 0.1; done", release.display())
}

fn info(name: &str, failover_s: f64) -> FrameworkInfo {
    let mut info = FrameworkInfo::new(name, "test");
    info.failover_timeout_s = failover_s;
    info
}

/// Mesos's master failover: a master killed (SIGKILL) and restarted on its work dir takes back
/// the framework (which reregisters) and the agent with its running task. Once the framework is
/// back, an implicit reconciliation (no task named) answers the task's latest state, RUNNING on
/// its agent, with reason Reconciliation and no uuid (nothing to acknowledge), as an explicit one
/// does; the task's end then reaches the framework through the new master.
#[actix_rt::test]
async fn a_master_killed_and_restarted_keeps_the_running_task() {
    let dir = tempfile::tempdir().unwrap();
    let mut children = Children::default();
    let port = free_port();
    let master_dir = dir.path().join("master");
    let m = spawn_master(&mut children, port, &master_dir, &[]);
    for i in 0..2 {
        let work = dir.path().join(format!("agent-{i}"));
        spawn_agent(&mut children, port, &work, "cpus:1;mem:256");
    }
    let master = master_upid(port);
    let mut f = framework(&master, info("restart", 60.0)).await;
    // The task runs until the test lets it end: it is still running when reconciled.
    let release = dir.path().join("release");
    let agent = f
        .launch("t1", "cpus:0.5;mem:32", &until_exists(&release))
        .await;
    f.state("t1", TaskState::Running, Duration::from_secs(10))
        .await;
    let id = f.driver.framework_id().unwrap();

    children.kill(m);
    spawn_master(&mut children, port, &master_dir, &[]);
    f.reregistered(&id, Duration::from_secs(30)).await;
    // The master knows the task once its agent has reregistered too: ask until it answers.
    let implicit = f.reconcile_until("t1", Vec::new()).await;
    assert_eq!(
        (implicit.state, implicit.agent_id.as_ref(), implicit.uuid),
        (TaskState::Running, Some(&agent), None),
        "the implicit answer after the restart: {implicit:?}"
    );
    let explicit = f.reconcile("t1", &agent).await;
    assert_eq!(explicit.state, TaskState::Running, "{explicit:?}");

    std::fs::write(&release, "").unwrap();
    f.state("t1", TaskState::Finished, Duration::from_secs(20))
        .await;
}

/// Mesos's framework failover: a scheduler that dies without unregistering leaves its tasks
/// running, and a new scheduler naming the framework's id within the failover timeout takes the
/// framework over (FrameworkReregistered) and hears of its task from then on.
#[actix_rt::test]
async fn a_new_scheduler_takes_over_within_the_failover_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut children = Children::default();
    let master = cluster(&mut children, dir.path(), "cpus:1;mem:256");
    let mut first = framework(&master, info("failover", 30.0)).await;
    first.launch("t1", "cpus:0.5;mem:32", "sleep 2").await;
    first
        .state("t1", TaskState::Running, Duration::from_secs(10))
        .await;
    let id = first.driver.framework_id().unwrap();
    first.die();

    let mut again = info("failover", 30.0);
    again.id = Some(id.clone());
    let mut second = framework(&master, again).await;
    second.reregistered(&id, Duration::from_secs(10)).await;
    second
        .state("t1", TaskState::Finished, Duration::from_secs(15))
        .await;
}

/// Mesos's framework failover, for the updates the framework missed: the scheduler dies and its
/// task finishes while no scheduler is connected, so the master has no one to give TASK_FINISHED
/// to. The agent keeps resending the update until a scheduler acknowledges it: a new scheduler
/// that reregisters under the framework's id gets it, as the agent's update (with a uuid to
/// acknowledge), not as an answer to a reconciliation.
#[actix_rt::test]
async fn a_scheduler_that_fails_over_gets_the_updates_it_missed() {
    let dir = tempfile::tempdir().unwrap();
    let mut children = Children::default();
    let master = cluster(&mut children, dir.path(), "cpus:1;mem:256");
    let mut first = framework(&master, info("missed", 600.0)).await;
    // The task runs until the test lets it end: it cannot finish before its scheduler is gone.
    let release = dir.path().join("release");
    let agent = first
        .launch("t1", "cpus:0.5;mem:32", &until_exists(&release))
        .await;
    first
        .state("t1", TaskState::Running, Duration::from_secs(10))
        .await;
    let id = first.driver.framework_id().unwrap();
    first.die();

    std::fs::write(&release, "").unwrap();
    // The task ends with no scheduler there: the master has its end (the agent is free again).
    wait_agent_free(
        &master,
        &agent,
        Duration::from_secs(20),
        "end of the task at the master",
    )
    .await;

    let mut again = info("missed", 600.0);
    again.id = Some(id.clone());
    let mut second = framework(&master, again).await;
    second.reregistered(&id, Duration::from_secs(10)).await;
    // Resent at least every 30 s (the agent's largest retry interval) while unacknowledged.
    let finished = second
        .state("t1", TaskState::Finished, Duration::from_secs(45))
        .await;
    assert_agents_update(&finished, &agent);
}

/// Mesos's failover timeout: a framework whose scheduler dies and does not come back within its
/// `failover_timeout` is removed. Its task is killed: its process is gone from the machine, and
/// the whole agent is offered to another framework. A scheduler naming its id later is refused.
#[actix_rt::test]
async fn a_framework_that_does_not_fail_over_in_time_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut children = Children::default();
    let master = cluster(&mut children, dir.path(), "cpus:1;mem:256");
    let mut first = framework(&master, info("late", 1.0)).await;
    // A duration of our own (this process's id in the fraction): the task's `sleep` is found in
    // /proc, and no other is taken for it.
    let seconds = format!("600.{}", std::process::id());
    let command = format!("sleep {seconds}");
    first.launch("t1", "cpus:1;mem:256", &command).await;
    first
        .state("t1", TaskState::Running, Duration::from_secs(10))
        .await;
    poll(200, Duration::from_millis(50), || {
        (!sleepers(&seconds).is_empty()).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("no `{command}` running"));
    let id = first.driver.framework_id().unwrap();
    first.die();

    // Once it is removed its task is killed: the whole agent is offered to another framework.
    let mut other = framework(&master, info("other", 0.0)).await;
    let offers = other.offers(Duration::from_secs(15), "a full offer").await;
    assert_eq!(
        offers[0].resources,
        Resources::parse("cpus:1;mem:256").unwrap()
    );
    // And the process itself is gone (the agent kills it with a grace period).
    let gone = poll(600, Duration::from_millis(50), || {
        sleepers(&seconds).is_empty().then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "`{command}` outlived its framework: {:?}",
        sleepers(&seconds)
    );

    let mut late = info("late", 1.0);
    late.id = Some(id.clone());
    let mut second = framework(&master, late).await;
    let error = second
        .wait(Duration::from_secs(10), "an error", |e| match e {
            SchedulerEvent::Error(message) => Some(message.clone()),
            SchedulerEvent::Reregistered { .. } => panic!("a removed framework came back"),
            _ => None,
        })
        .await;
    assert_eq!(error, format!("framework {id} was removed"));
}

#[actix_rt::test]
async fn a_silent_agent_is_lost_after_its_pings_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut children = Children::default();
    let port = free_port();
    let health = [
        "--agent-ping-timeout",
        "200ms",
        "--max-agent-ping-timeouts",
        "2",
    ];
    spawn_master(&mut children, port, &dir.path().join("master"), &health);
    let a = spawn_agent(
        &mut children,
        port,
        &dir.path().join("agent"),
        "cpus:2;mem:256",
    );
    let master = master_upid(port);
    let mut plain = framework(&master, info("plain", 60.0)).await;
    let agent = plain.launch("t1", "cpus:1;mem:32", "sleep 5").await;
    plain
        .state("t1", TaskState::Running, Duration::from_secs(10))
        .await;
    let mut aware_info = info("aware", 60.0);
    aware_info.partition_aware = true;
    let mut aware = framework(&master, aware_info).await;
    aware.launch("t2", "cpus:1;mem:32", "sleep 5").await;
    aware
        .state("t2", TaskState::Running, Duration::from_secs(10))
        .await;

    children.signal(a, libc::SIGSTOP);
    let lost = plain
        .wait(Duration::from_secs(10), "TASK_LOST", |e| match e {
            SchedulerEvent::StatusUpdate(s) if s.task_id.as_str() == "t1" => {
                assert_eq!(s.state, TaskState::Lost, "{s:?}");
                Some(s.clone())
            }
            _ => None,
        })
        .await;
    assert_eq!(lost.reason, Some(TaskStatusReason::AgentRemoved));
    plain
        .wait(Duration::from_secs(5), "AgentLost", |e| match e {
            SchedulerEvent::AgentLost(id) if id == &agent => Some(()),
            _ => None,
        })
        .await;
    aware
        .wait(Duration::from_secs(10), "TASK_UNREACHABLE", |e| match e {
            SchedulerEvent::StatusUpdate(s) if s.task_id.as_str() == "t2" => {
                assert_eq!(s.state, TaskState::Unreachable, "{s:?}");
                Some(())
            }
            _ => None,
        })
        .await;

    children.signal(a, libc::SIGCONT);
    // Back: the master knows the task again (running, or finished by now).
    let mut state = TaskState::Lost;
    for _ in 0..20 {
        state = aware.reconcile("t2", &agent).await.state;
        if state != TaskState::Unreachable {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        matches!(state, TaskState::Running | TaskState::Finished),
        "after it came back the master says {state}"
    );
    aware
        .state("t2", TaskState::Finished, Duration::from_secs(15))
        .await;
}

/// Mesos's field case, with a real agent killed: two agents, a framework holding an offer from
/// each. The killed agent's offer is rescinded as soon as its connection drops (the ping timeout
/// is ten minutes, so nothing else can rescind it); accepting it then gives TASK_LOST (invalid
/// offers); the other offer is untouched. When the agent comes back its resources are offered
/// once, never counted twice. A framework that disconnects has its outstanding offers rescinded
/// and their resources go to another framework.
#[actix_rt::test]
async fn a_killed_agent_has_its_offer_rescinded_at_once_and_is_offered_once_when_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut children = Children::default();
    let port = free_port();
    let health = ["--agent-ping-timeout", "600secs"];
    spawn_master(&mut children, port, &dir.path().join("master"), &health);
    let (small, big) = ("cpus:1;mem:256", "cpus:2;mem:512");
    let (a_port, a_dir) = (free_port(), dir.path().join("agent-a"));
    let a = spawn_agent_on(&mut children, port, a_port, &a_dir, small);
    spawn_agent(&mut children, port, &dir.path().join("agent-b"), big);
    let master = master_upid(port);
    let mut f = framework(&master, info("holder", 60.0)).await;

    // Hold one offer from each agent: the small one is agent A's.
    let (small, big) = (
        Resources::parse(small).unwrap(),
        Resources::parse(big).unwrap(),
    );
    let mut held: Vec<Offer> = Vec::new();
    while held.len() < 2 {
        let offers = f
            .offers(Duration::from_secs(10), "offers from both agents")
            .await;
        held.extend(offers);
    }
    assert_eq!(held.len(), 2, "one offer per agent: {held:?}");
    held.sort_by_key(|o| o.resources != small);
    let (offer_a, offer_b) = (held[0].clone(), held[1].clone());
    assert_eq!((&offer_a.resources, &offer_b.resources), (&small, &big));
    assert_ne!(offer_a.agent_id, offer_b.agent_id);

    // Killed only once its id is on disk, agent A returns as the same agent.
    wait_id_checkpointed(&a_dir, &offer_a.agent_id, 200, Duration::from_millis(25)).await;
    children.kill(a);
    let rescinded = f
        .wait(Duration::from_secs(10), "the rescind", |e| match e {
            SchedulerEvent::OfferRescinded(id) => Some(id.clone()),
            SchedulerEvent::AgentLost(id) => panic!("agent {id} lost before its offer went"),
            _ => None,
        })
        .await;
    assert_eq!(rescinded, offer_a.id, "only the killed agent's offer goes");

    let task = |id: &str, offer: &Offer| {
        TaskInfo::command(
            TaskId::new(id),
            offer.agent_id.clone(),
            Resources::parse("cpus:0.5;mem:32").unwrap(),
            CommandInfo::shell("sleep 1"),
        )
    };
    f.driver.launch(
        std::slice::from_ref(&offer_a.id),
        vec![task("on-a", &offer_a)],
        Filters::default(),
    );
    let lost = f
        .state("on-a", TaskState::Lost, Duration::from_secs(10))
        .await;
    assert_eq!(
        lost.reason,
        Some(TaskStatusReason::InvalidOffers),
        "{lost:?}"
    );
    // The other offer is untouched: it still launches.
    f.driver.launch(
        std::slice::from_ref(&offer_b.id),
        vec![task("on-b", &offer_b)],
        Filters::default(),
    );
    f.state("on-b", TaskState::Running, Duration::from_secs(10))
        .await;

    // Agent A comes back (same port, same work dir: the same agent). Its resources are offered
    // once: one offer of exactly its total, and no second one while that is held.
    spawn_agent_on(&mut children, port, a_port, &a_dir, "cpus:1;mem:256");
    let back = f
        .wait(
            Duration::from_secs(15),
            "agent A offered again",
            |e| match e {
                SchedulerEvent::ResourceOffers(o) => {
                    o.iter().find(|o| o.agent_id == offer_a.agent_id).cloned()
                }
                _ => None,
            },
        )
        .await;
    assert_eq!(back.resources, small);
    let quiet = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Some(event)) = tokio::time::timeout_at(quiet, f.rx.recv()).await {
        if let SchedulerEvent::ResourceOffers(o) = event {
            assert!(
                o.iter().all(|o| o.agent_id != offer_a.agent_id),
                "agent A offered twice: {o:?}"
            );
        }
    }

    // The holder disconnects: its offer of agent A is rescinded and goes to another framework.
    let mut other = framework(&master, info("other", 0.0)).await;
    other
        .wait(Duration::from_secs(10), "registration", |e| {
            matches!(e, SchedulerEvent::Registered { .. }).then_some(())
        })
        .await;
    f.die();
    let offered = other
        .wait(
            Duration::from_secs(15),
            "agent A's resources",
            |e| match e {
                SchedulerEvent::ResourceOffers(o) => {
                    o.iter().find(|o| o.agent_id == offer_a.agent_id).cloned()
                }
                _ => None,
            },
        )
        .await;
    assert_eq!(offered.resources, small);
}
