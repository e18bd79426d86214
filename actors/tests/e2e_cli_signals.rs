//! `meso execute` at its edges, with the real binary: flags that cannot work, a master that is
//! not there, a task no agent can fit, SIGTERM, and a stdout closed under it.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod support;
use support::{free_port, meso_command, sleepers, Children};

/// `meso <args>` as [`support::meso_command`] starts it, with stdout and stderr piped (the tests
/// read them) and only errors logged.
fn command(args: &[&str]) -> Command {
    let mut c = meso_command(20_000);
    c.args(args)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Sends each line of `from` to the returned channel, from a thread of its own.
fn lines(from: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Lines received until one satisfies `until` (returned with it) or `limit` passes.
fn read_until(
    rx: &mpsc::Receiver<String>,
    limit: Duration,
    until: impl Fn(&str) -> bool,
) -> (Vec<String>, bool) {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = until(&line);
                got.push(line);
                if done {
                    return (got, true);
                }
            }
            Err(_) => break,
        }
    }
    (got, false)
}

#[test]
fn zero_instances_is_a_flag_error() {
    let out = command(&[
        "execute",
        "--local",
        "1",
        "--instances",
        "0",
        "--command",
        "true",
    ])
    .output()
    .expect("run meso");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--instances"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `--local N` splits the machine between N agents: a task bigger than a share is refused before
/// anything starts, instead of waiting for ever.
#[test]
fn a_task_bigger_than_a_local_share_is_refused_up_front() {
    let out = command(&[
        "execute",
        "--local",
        "2",
        "--cpus",
        "100000",
        "--command",
        "true",
    ])
    .output()
    .expect("run meso");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot fit one task of cpus:100000;mem:32"),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_master_is_said_once() {
    let mut children = Children::default();
    let mut child = command(&["execute", "--master", "127.0.0.1:1", "--command", "true"])
        .spawn()
        .expect("spawn meso");
    let err = lines(child.stderr.take().expect("piped"));
    children.add(child);
    let said = "meso: cannot reach the master at 127.0.0.1:1; retrying";
    let (got, found) = read_until(&err, Duration::from_secs(10), |l| l == said);
    assert!(found, "{got:?}");
    // Retries go on (the backoff reaches several seconds): nothing more is said meanwhile.
    let (more, _) = read_until(&err, Duration::from_secs(3), |_| false);
    assert!(!more.iter().any(|l| l == said), "said again: {more:?}");
}

#[test]
fn a_task_no_agent_can_fit_is_reported_once_and_the_run_waits() {
    let dir = tempfile::tempdir().unwrap();
    let mut children = Children::default();
    let port = free_port().to_string();
    let master = format!("127.0.0.1:{port}");
    let work = dir.path().join("master");
    children.add(
        command(&[
            "master",
            "--port",
            &port,
            "--work-dir",
            work.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn master"),
    );
    let agent_port = free_port().to_string();
    let work = dir.path().join("agent");
    children.add(
        command(&[
            "agent",
            "--master",
            &master,
            "--port",
            &agent_port,
            "--work-dir",
            work.to_str().unwrap(),
            "--resources",
            "cpus:1;mem:256",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn agent"),
    );
    let mut child = command(&[
        "execute",
        "--master",
        &master,
        "--cpus",
        "1000",
        "--command",
        "true",
    ])
    .spawn()
    .expect("spawn meso");
    let err = lines(child.stderr.take().expect("piped"));
    let execute = children.add(child);
    let said = "meso: no offer fits a task of cpus:1000;mem:32 (largest offer: cpus:1;mem:256)";
    let (got, found) = read_until(&err, Duration::from_secs(20), |l| l == said);
    assert!(found, "{got:?}");
    let (more, _) = read_until(&err, Duration::from_secs(3), |_| false);
    assert!(!more.iter().any(|l| l == said), "said again: {more:?}");
    assert!(
        children.wait(execute, Duration::ZERO).is_none(),
        "it keeps waiting"
    );
}

/// SIGTERM is Ctrl-C: the running tasks are killed, nothing more is launched, the summary adds
/// up to the instances (those never launched count as killed), and no process of the in-process
/// cluster outlives `meso execute`.
#[test]
fn sigterm_kills_the_tasks_and_prints_the_summary() {
    let mut children = Children::default();
    let seconds = format!("30.{}", std::process::id());
    let sleep = format!("sleep {seconds}");
    // One cpu a task: the machine's cpus run at once, the others wait for an offer.
    let args = [
        "execute",
        "--local",
        "1",
        "--instances",
        "50",
        "--cpus",
        "1",
        "--command",
        &sleep,
    ];
    let mut child = command(&args).spawn().expect("spawn meso");
    let out = lines(child.stdout.take().expect("piped"));
    let execute = children.add(child);
    let (got, running) = read_until(&out, Duration::from_secs(20), |l| {
        l.contains("TASK_RUNNING")
    });
    assert!(running, "{got:?}");
    children.signal(execute, libc::SIGTERM);
    let status = children
        .wait(execute, Duration::from_secs(20))
        .expect("exits after SIGTERM");
    assert_eq!(status.code(), Some(130));
    let (rest, _) = read_until(&out, Duration::from_secs(2), |l| l.starts_with("finished"));
    assert!(
        rest.iter()
            .any(|l| l == "finished 0 failed 0 killed 50 lost 0 error 0"),
        "{rest:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sleepers(&seconds).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        sleepers(&seconds),
        Vec::<String>::new(),
        "`{sleep}` outlived meso execute"
    );
}

/// `meso execute ... | head -1`: once stdout is closed nothing more is printed, and the run
/// still ends as the tasks did (no panic on EPIPE).
#[test]
fn a_closed_stdout_stops_the_printing_not_the_run() {
    let mut children = Children::default();
    let mut child = command(&[
        "execute",
        "--local",
        "1",
        "--instances",
        "3",
        "--command",
        "true",
    ])
    .spawn()
    .expect("spawn meso");
    let mut stderr = child.stderr.take().expect("piped");
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    {
        let mut first = String::new();
        let mut out = BufReader::new(child.stdout.take().expect("piped"));
        out.read_line(&mut first).expect("a first line");
        assert!(first.starts_with("task "), "{first}");
    }
    let execute = children.add(child);
    let status = children.wait(execute, Duration::from_secs(30));
    if status.is_none() {
        children.kill(execute);
    }
    let stderr = err.join().unwrap_or_default();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
