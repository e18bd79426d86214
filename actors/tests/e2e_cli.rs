//! End to end, with the real `meso` binary: masters, agents and `meso execute` as separate
//! processes, tasks run by the command executor in sandboxes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::framework::spawn_agent_with;
use support::{free_port, sleepers, Children, MESO};

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `meso <args>` to completion, killed after `limit`.
fn meso(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(MESO)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn meso");
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = Output {
        code: status.and_then(|s| s.code()),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    assert!(
        status.is_some(),
        "meso {args:?} did not end within {limit:?}\nstdout:\n{}\nstderr:\n{}",
        output.stdout,
        output.stderr
    );
    output
}

fn count(stdout: &str, state: &str) -> usize {
    stdout
        .lines()
        .filter(|l| l.starts_with("task ") && l.split_whitespace().nth(2) == Some(state))
        .count()
}

/// Every file named `name` under `dir`.
fn find_files(dir: &Path, name: &str, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            find_files(&path, name, found);
        } else if path.file_name().is_some_and(|n| n == name) {
            found.push(path);
        }
    }
}

#[test]
fn execute_on_a_local_cluster_runs_every_task() {
    let out = meso(
        &[
            "execute",
            "--local",
            "2",
            "--instances",
            "5",
            "--command",
            "echo hi",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(
        out.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(count(&out.stdout, "TASK_FINISHED"), 5, "{}", out.stdout);
    assert!(
        out.stdout
            .lines()
            .any(|l| l == "finished 5 failed 0 killed 0 lost 0 error 0"),
        "{}",
        out.stdout
    );
}

/// A master and two agents in their own processes; fifty tasks each write their id in their
/// sandbox.
#[test]
fn execute_across_processes_runs_fifty_tasks_in_their_sandboxes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut children = Children::default();
    let master_port = free_port();
    let master = format!("127.0.0.1:{master_port}");
    children.spawn(["master", "--port", &master_port.to_string()]);
    for i in 1..=2 {
        spawn_agent_with(
            &mut children,
            master_port,
            free_port(),
            &dir.path().join(format!("a{i}")),
            "cpus:2;mem:4096;disk:1000;ports:[31000-31100]",
            &["--name", &format!("agent-{i}")],
        );
    }
    let out = meso(
        &[
            "execute",
            "--master",
            &master,
            "--instances",
            "50",
            "--command",
            "echo $MESOS_TASK_ID > out.txt; sha256sum out.txt",
        ],
        Duration::from_secs(180),
    );
    assert_eq!(
        out.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(count(&out.stdout, "TASK_FINISHED"), 50, "{}", out.stdout);
    let mut files = Vec::new();
    find_files(dir.path(), "out.txt", &mut files);
    let mut ids: Vec<String> = files
        .iter()
        .map(|f| {
            assert!(
                f.to_string_lossy().contains("/runs/"),
                "{} is not in a sandbox",
                f.display()
            );
            std::fs::read_to_string(f)
                .expect("read out.txt")
                .trim()
                .to_string()
        })
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (0..50).map(|i| format!("task-{i}")).collect();
    expected.sort();
    assert_eq!(ids, expected);
}

#[test]
fn a_failing_command_is_task_failed_and_a_non_zero_exit() {
    let out = meso(
        &["execute", "--local", "1", "--command", "exit 3"],
        Duration::from_secs(60),
    );
    assert_ne!(out.code, Some(0), "{}", out.stdout);
    assert_eq!(count(&out.stdout, "TASK_FAILED"), 1, "{}", out.stdout);
    assert!(out.stdout.contains("finished 0 failed 1"), "{}", out.stdout);
}

#[test]
fn a_killed_task_leaves_no_process_behind() {
    // A duration of our own (this process's id in the fraction), so no other sleep is counted.
    let seconds = format!("600.{}", std::process::id());
    let command = format!("sleep {seconds}");
    let out = meso(
        &[
            "execute",
            "--local",
            "1",
            "--command",
            &command,
            "--kill-after-ms",
            "500",
        ],
        Duration::from_secs(60),
    );
    assert_ne!(out.code, Some(0), "{}", out.stdout);
    assert_eq!(count(&out.stdout, "TASK_KILLED"), 1, "{}", out.stdout);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sleepers(&seconds).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        sleepers(&seconds),
        Vec::<String>::new(),
        "{command} survived the kill"
    );
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let out = meso(
        &[
            "agent",
            "--master",
            "127.0.0.1:5050",
            "--wrok-dir",
            "/tmp/x",
        ],
        Duration::from_secs(10),
    );
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("--wrok-dir"), "{}", out.stderr);
    let out = meso(
        &[
            "agent",
            "--master",
            "127.0.0.1:5050",
            "--resources",
            "cpus:many",
        ],
        Duration::from_secs(10),
    );
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("bad --resources"), "{}", out.stderr);
    let out = meso(&["execute", "--help"], Duration::from_secs(10));
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.contains("--kill-after-ms"));
}
