//! Starting executors as child processes, each in a session of its own, and killing a whole
//! process group or a whole session: SIGTERM, a grace period, then SIGKILL.
//!
//! An executor leads a new session (and a new process group): the command executor puts its task
//! in a group of its own, but that group stays in the executor's session, so killing the session
//! reaches the task even when the executor died first.

use meso::protocol::CommandInfo;
use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// How often a kill checks whether the group is gone.
const POLL: Duration = Duration::from_millis(20);
/// How long a kill waits for the group to vanish after SIGKILL.
const AFTER_SIGKILL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("command is empty")]
    EmptyCommand,
    #[error("cannot open {path}: {source}")]
    Output { path: PathBuf, source: io::Error },
    #[error("cannot start `{command}`: {source}")]
    Spawn { command: String, source: io::Error },
    #[error("started `{command}` but it has no pid")]
    NoPid { command: String },
    #[error("refusing to signal process group {0}")]
    InvalidGroup(i32),
    #[error("cannot signal process group {pgid}: {source}")]
    Signal { pgid: i32, source: io::Error },
    #[error("process group {0} survived SIGKILL")]
    Survived(i32),
    #[error("refusing to kill session {0}")]
    InvalidSession(i32),
    #[error("a process of session {0} survived SIGKILL")]
    SessionSurvived(i32),
}

/// A started child: its handle (to wait for it) and its process group.
#[derive(Debug)]
pub struct Launched {
    pub child: Child,
    pub pid: u32,
    /// The child leads its own session and group, so this is its pid, its process group id and
    /// its session id.
    pub pgid: i32,
}

/// How a group ended under [`kill_group`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillOutcome {
    /// No process of the group was alive.
    AlreadyGone,
    /// The group ended within the grace period after SIGTERM.
    Terminated,
    /// The group was still alive after the grace period and got SIGKILL.
    Killed,
}

fn open_output(path: PathBuf) -> Result<std::fs::File, LaunchError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|source| LaunchError::Output { path, source })
}

/// Builds the command line for `command`: `sh -c <value>` for a shell command, otherwise
/// `value` run with `arguments` as its argv (argv\[0\] first).
pub fn build_command(command: &CommandInfo) -> Result<Command, LaunchError> {
    if command.value.trim().is_empty() {
        return Err(LaunchError::EmptyCommand);
    }
    let mut cmd;
    if command.shell {
        cmd = Command::new("sh");
        cmd.arg("-c").arg(&command.value);
    } else {
        cmd = Command::new(&command.value);
        if let Some((argv0, rest)) = command.arguments.split_first() {
            cmd.arg0(argv0).args(rest);
        }
    }
    Ok(cmd)
}

/// Starts `command` in a new session (so in a new process group too), in `sandbox`, with the command's environment and
/// then `env` added to the agent's, stdin from /dev/null, and stdout and stderr appended to the
/// sandbox's `stdout` and `stderr` files.
pub fn launch(
    command: &CommandInfo,
    env: &[(String, String)],
    sandbox: &Path,
) -> Result<Launched, LaunchError> {
    let mut cmd = build_command(command)?;
    let stdout = open_output(sandbox.join("stdout"))?;
    let stderr = open_output(sandbox.join("stderr"))?;
    cmd.current_dir(sandbox)
        .envs(command.environment.iter().map(|(k, v)| (k, v)))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|source| LaunchError::Spawn {
        command: command.value.clone(),
        source,
    })?;
    let pid = child.id().ok_or_else(|| LaunchError::NoPid {
        command: command.value.clone(),
    })?;
    let pgid = i32::try_from(pid).map_err(|_| LaunchError::NoPid {
        command: command.value.clone(),
    })?;
    Ok(Launched { child, pid, pgid })
}

/// What `/proc/<pid>/stat` says of a process: its state, process group and session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    state: char,
    pgrp: i32,
    session: i32,
}

impl Stat {
    fn live(&self) -> bool {
        self.state != 'Z' && self.state != 'X'
    }
}

/// Reads the state, process group and session of a process from `/proc/<pid>/stat`.
fn stat_of(pid: &str) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold anything; fields follow the last `)`.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    Some(Stat {
        state,
        pgrp,
        session,
    })
}

/// Every live (not zombie) process of `/proc` that `keep` accepts, with its stat; `None` if
/// `/proc` is not readable.
fn live_processes(keep: impl Fn(&Stat) -> bool) -> Option<Vec<(i32, Stat)>> {
    let entries = std::fs::read_dir("/proc").ok()?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Ok(pid) = name.parse::<i32>() else {
            continue;
        };
        if let Some(stat) = stat_of(name) {
            if stat.live() && keep(&stat) {
                found.push((pid, stat));
            }
        }
    }
    Some(found)
}

/// The live (not zombie) processes of group `pgid`, from `/proc`; `None` if `/proc` is not
/// readable.
pub fn group_members(pgid: i32) -> Option<Vec<i32>> {
    let found = live_processes(|s| s.pgrp == pgid)?;
    Some(found.into_iter().map(|(pid, _)| pid).collect())
}

/// The live (not zombie) processes of session `sid`, from `/proc`; `None` if `/proc` is not
/// readable.
pub fn session_members(sid: i32) -> Option<Vec<i32>> {
    let found = live_processes(|s| s.session == sid)?;
    Some(found.into_iter().map(|(pid, _)| pid).collect())
}

/// Whether process `pid` is alive (a zombie is not).
pub fn process_alive(pid: i32) -> bool {
    pid > 0 && stat_of(&pid.to_string()).is_some_and(|s| s.live())
}

/// Whether any process of session `sid` is alive (zombies do not count).
pub fn session_alive(sid: i32) -> bool {
    sid > 1 && session_members(sid).is_none_or(|members| !members.is_empty())
}

fn signal_group(pgid: i32, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: kill has no memory effects; a negative pid names a process group, and the
    // callers have checked the group is neither ours nor a special value.
    if unsafe { libc::kill(-pgid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether any process of the group is alive. Zombies (exited, not yet reaped) do not count.
pub fn group_alive(pgid: i32) -> bool {
    if pgid <= 1 {
        return false;
    }
    match signal_group(pgid, 0) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => false,
        _ => group_members(pgid).is_none_or(|members| !members.is_empty()),
    }
}

fn check_group(pgid: i32) -> Result<(), LaunchError> {
    // SAFETY: getpgrp has no preconditions and cannot fail.
    let own = unsafe { libc::getpgrp() };
    if pgid <= 1 || pgid == own {
        return Err(LaunchError::InvalidGroup(pgid));
    }
    Ok(())
}

async fn wait_gone(pgid: i32, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if !group_alive(pgid) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Kills every process of group `pgid`: SIGTERM, then up to `grace` for them to exit, then
/// SIGKILL. Refuses our own group and the special groups 0 and 1.
pub async fn kill_group(pgid: i32, grace: Duration) -> Result<KillOutcome, LaunchError> {
    check_group(pgid)?;
    if !group_alive(pgid) {
        return Ok(KillOutcome::AlreadyGone);
    }
    match signal_group(pgid, libc::SIGTERM) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(KillOutcome::AlreadyGone),
        Err(source) => return Err(LaunchError::Signal { pgid, source }),
    }
    if wait_gone(pgid, grace).await {
        return Ok(KillOutcome::Terminated);
    }
    match signal_group(pgid, libc::SIGKILL) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(KillOutcome::Terminated),
        Err(source) => return Err(LaunchError::Signal { pgid, source }),
    }
    if wait_gone(pgid, AFTER_SIGKILL).await {
        Ok(KillOutcome::Killed)
    } else {
        Err(LaunchError::Survived(pgid))
    }
}

fn check_session(sid: i32) -> Result<(), LaunchError> {
    // SAFETY: getsid(0) has no preconditions.
    let own = unsafe { libc::getsid(0) };
    if sid <= 1 || sid == own {
        return Err(LaunchError::InvalidSession(sid));
    }
    Ok(())
}

/// Sends `signal` to every process group that has a live process in session `sid` (and to
/// each such process, in case it changed group meanwhile); whether there was any.
fn signal_session(sid: i32, signal: libc::c_int) -> bool {
    let Some(found) = live_processes(|s| s.session == sid) else {
        return false;
    };
    let mut groups: Vec<i32> = found.iter().map(|(_, s)| s.pgrp).collect();
    groups.sort_unstable();
    groups.dedup();
    for pgid in groups.into_iter().filter(|g| *g > 1) {
        let _ = signal_group(pgid, signal);
    }
    for (pid, _) in &found {
        // SAFETY: kill has no memory effects; `pid` is a positive process id of the session.
        unsafe { libc::kill(*pid, signal) };
    }
    !found.is_empty()
}

async fn wait_session_gone(sid: i32, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if !session_alive(sid) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Kills every process of session `sid` (found in `/proc`), whatever its process group:
/// SIGTERM to each group, up to `grace` for them to exit, then SIGKILL. Refuses our own
/// session and the special ids 0 and 1.
pub async fn kill_session(sid: i32, grace: Duration) -> Result<KillOutcome, LaunchError> {
    check_session(sid)?;
    if !signal_session(sid, libc::SIGTERM) {
        return Ok(KillOutcome::AlreadyGone);
    }
    if wait_session_gone(sid, grace).await {
        return Ok(KillOutcome::Terminated);
    }
    let deadline = tokio::time::Instant::now() + AFTER_SIGKILL;
    // Processes may still fork while being killed: signal again until none is left.
    while signal_session(sid, libc::SIGKILL) {
        if tokio::time::Instant::now() >= deadline {
            return Err(LaunchError::SessionSurvived(sid));
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(KillOutcome::Killed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn no_process_left(pgid: i32) -> bool {
        // SAFETY: probing a group with signal 0 has no effect.
        let rc = unsafe { libc::kill(-pgid, 0) };
        rc == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    }

    /// Waits (reaping the leader) until the kernel knows no process of the group.
    async fn wait_vanished(launched: &mut Launched) -> bool {
        let _ = launched.child.wait().await;
        for _ in 0..250 {
            if no_process_left(launched.pgid) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    async fn wait_members(pgid: i32, n: usize) {
        for _ in 0..250 {
            if group_members(pgid).is_some_and(|m| m.len() >= n) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("group {pgid} never had {n} members");
    }

    #[tokio::test]
    async fn a_whole_group_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = CommandInfo::shell("sleep 600 & sleep 600; wait");
        let mut launched = launch(&cmd, &[], dir.path()).unwrap();
        assert_eq!(launched.pgid as u32, launched.pid);
        wait_members(launched.pgid, 3).await;
        let outcome = kill_group(launched.pgid, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(outcome, KillOutcome::Terminated);
        assert!(!group_alive(launched.pgid));
        assert!(wait_vanished(&mut launched).await, "a process survived");
        let again = kill_group(launched.pgid, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(again, KillOutcome::AlreadyGone);
    }

    #[tokio::test]
    async fn sigterm_ignored_means_sigkill_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = CommandInfo::shell("trap '' TERM; sleep 600 & sleep 600; wait");
        let mut launched = launch(&cmd, &[], dir.path()).unwrap();
        wait_members(launched.pgid, 3).await;
        // Let the shell install its trap before the kill.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let outcome = kill_group(launched.pgid, Duration::from_secs(1))
            .await
            .unwrap();
        let took = started.elapsed();
        assert_eq!(outcome, KillOutcome::Killed);
        assert!(took >= Duration::from_secs(1), "killed after {took:?}");
        assert!(wait_vanished(&mut launched).await, "a process survived");
    }

    #[tokio::test]
    async fn output_environment_and_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = CommandInfo::shell("echo \"$A $B\"; pwd; echo oops >&2; exit 3");
        cmd.environment = vec![("A".into(), "from-command".into())];
        let env = vec![("B".into(), "from-agent".into())];
        let mut launched = launch(&cmd, &env, dir.path()).unwrap();
        let status = launched.child.wait().await.unwrap();
        assert_eq!(status.code(), Some(3));
        let out = std::fs::read_to_string(dir.path().join("stdout")).unwrap();
        let cwd = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(out, format!("from-command from-agent\n{}\n", cwd.display()));
        let err = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
        assert_eq!(err, "oops\n");
    }

    #[tokio::test]
    async fn direct_commands_get_their_argv() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = CommandInfo::exec(
            "/bin/sh",
            vec!["sh".into(), "-c".into(), "echo direct".into()],
        );
        let mut launched = launch(&cmd, &[], dir.path()).unwrap();
        assert!(launched.child.wait().await.unwrap().success());
        let out = std::fs::read_to_string(dir.path().join("stdout")).unwrap();
        assert_eq!(out, "direct\n");
    }

    #[tokio::test]
    async fn bad_launches_and_groups_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            launch(&CommandInfo::shell(" "), &[], dir.path()),
            Err(LaunchError::EmptyCommand)
        ));
        assert!(matches!(
            launch(
                &CommandInfo::exec("/no/such/program", vec![]),
                &[],
                dir.path()
            ),
            Err(LaunchError::Spawn { .. })
        ));
        assert!(matches!(
            launch(
                &CommandInfo::shell("true"),
                &[],
                &dir.path().join("missing")
            ),
            Err(LaunchError::Output { .. })
        ));
        // SAFETY: getpgrp has no preconditions.
        let own = unsafe { libc::getpgrp() };
        for pgid in [0, 1, -5, own] {
            assert!(matches!(
                kill_group(pgid, Duration::ZERO).await,
                Err(LaunchError::InvalidGroup(_))
            ));
        }
    }

    #[test]
    fn stat_lines_with_odd_names_parse() {
        assert!(stat_of("self").is_some());
        assert!(stat_of("no-such-pid").is_none());
    }

    /// A child leads a new session; a process it puts in another group of that session is
    /// still killed with the session, even after the leader is gone.
    #[tokio::test]
    async fn a_session_is_killed_across_its_groups() {
        let dir = tempfile::tempdir().unwrap();
        // The inner shell leads a group of its own (job control), in the same session.
        let cmd = CommandInfo::shell("exec bash -c 'set -m; sleep 600 & echo $! > inner; wait'");
        let mut launched = launch(&cmd, &[], dir.path()).unwrap();
        let sid = launched.pgid;
        // SAFETY: getsid has no memory effects.
        assert_eq!(unsafe { libc::getsid(launched.pid as i32) }, sid);
        let inner: i32 = loop {
            if let Ok(text) = std::fs::read_to_string(dir.path().join("inner")) {
                if let Ok(pid) = text.trim().parse() {
                    break pid;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // SAFETY: getpgid has no memory effects.
        assert_ne!(unsafe { libc::getpgid(inner) }, sid, "another group");
        // SAFETY: as above.
        unsafe { libc::kill(launched.pid as i32, libc::SIGKILL) };
        let _ = launched.child.wait().await;
        assert!(process_alive(inner), "the other group outlives the leader");
        assert!(session_alive(sid));
        let outcome = kill_session(sid, Duration::from_secs(1)).await.unwrap();
        assert_eq!(outcome, KillOutcome::Terminated);
        assert!(!session_alive(sid));
        assert_eq!(
            kill_session(sid, Duration::ZERO).await.unwrap(),
            KillOutcome::AlreadyGone
        );
        // SAFETY: getsid(0) has no preconditions.
        let own = unsafe { libc::getsid(0) };
        for sid in [0, 1, own] {
            assert!(matches!(
                kill_session(sid, Duration::ZERO).await,
                Err(LaunchError::InvalidSession(_))
            ));
        }
    }
}
