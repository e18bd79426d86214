//! What an agent checkpoints so that a restarted agent can take its work back, and how it reads
//! it again.
//!
//! Every file is written whole and atomically ([`write_atomic`]); a file that is missing, empty
//! or does not decode (cut off by a crash) is treated as never written. Reading never fails: what
//! cannot be read is skipped, and the agent starts with what is left.

use super::sandbox::{read_checkpoint, read_checkpoint_as, write_atomic, write_checkpoint, Layout};
use meso::process::Upid;
use meso::protocol::{
    AgentId, AgentInfo, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo, StatusUpdate, TaskId,
    TaskInfo, TaskStatus,
};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The status update stream of one task, as written to `task.updates`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamCheckpoint {
    /// Updates not yet acknowledged, oldest (the one in flight) first.
    pub pending: Vec<StatusUpdate>,
    /// Uuids acknowledged already (the most recent ones).
    pub acked: Vec<[u8; 16]>,
    /// The latest status of the task the agent recorded.
    pub latest: Option<TaskStatus>,
}

/// One task read back.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredTask {
    pub task: TaskInfo,
    pub stream: StreamCheckpoint,
}

/// One executor run read back.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredRun {
    pub framework_id: FrameworkId,
    pub info: ExecutorInfo,
    pub run_id: String,
    /// The executor's pid, once it was started (`forked.pid`). The executor leads its own
    /// session and process group, so this is also their id: what is left of the executor after
    /// a restart is found and killed by it.
    pub pgid: Option<i32>,
    /// Where the executor was registered from, once it registered.
    pub upid: Option<Upid>,
    /// The agent saw the executor end.
    pub exited: bool,
    pub tasks: Vec<RecoveredTask>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredFramework {
    pub id: FrameworkId,
    pub info: FrameworkInfo,
    pub scheduler: Option<Upid>,
}

/// Everything read back from a work directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovered {
    pub agent_id: AgentId,
    pub agent_info: Option<AgentInfo>,
    pub frameworks: Vec<RecoveredFramework>,
    pub runs: Vec<RecoveredRun>,
}

/// Where the files of one executor run are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPaths {
    pub agent: AgentId,
    pub framework: FrameworkId,
    pub executor: ExecutorId,
    pub run: String,
}

fn text(path: &Path) -> Option<String> {
    let bytes = read_checkpoint(path)?;
    let s = String::from_utf8(bytes).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn upid_at(path: &Path) -> Option<Upid> {
    text(path)?.parse().ok()
}

fn subdirs(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| Some((e.file_name().to_str()?.to_string(), e.path())))
        .collect();
    out.sort();
    out
}

/// The writer and reader of one agent's checkpoints.
#[derive(Debug, Clone)]
pub struct Checkpointer {
    layout: Layout,
}

impl Checkpointer {
    pub fn new(layout: Layout) -> Checkpointer {
        Checkpointer { layout }
    }

    pub fn agent(&self, info: &AgentInfo, id: &AgentId) -> io::Result<()> {
        write_checkpoint(&self.layout.agent_info_path(id)?, info)?;
        write_atomic(&self.layout.latest_agent_path(), id.as_str().as_bytes())
    }

    pub fn framework(
        &self,
        agent: &AgentId,
        id: &FrameworkId,
        info: &FrameworkInfo,
        scheduler: &Upid,
    ) -> io::Result<()> {
        write_checkpoint(&self.layout.framework_info_path(agent, id)?, info)?;
        let pid = scheduler.to_string();
        write_atomic(&self.layout.framework_pid_path(agent, id)?, pid.as_bytes())
    }

    pub fn executor(&self, run: &RunPaths, info: &ExecutorInfo) -> io::Result<()> {
        let path = self
            .layout
            .executor_info_path(&run.agent, &run.framework, &run.executor)?;
        write_checkpoint(&path, info)?;
        fs::create_dir_all(self.run_dir(run)?)
    }

    fn run_dir(&self, run: &RunPaths) -> io::Result<PathBuf> {
        self.layout
            .run_meta_dir(&run.agent, &run.framework, &run.executor, &run.run)
    }

    /// Records the executor's pid, which is also its session id and process group id.
    pub fn forked_pid(&self, run: &RunPaths, pgid: i32) -> io::Result<()> {
        let path =
            self.layout
                .forked_pid_path(&run.agent, &run.framework, &run.executor, &run.run)?;
        write_atomic(&path, pgid.to_string().as_bytes())
    }

    pub fn executor_upid(&self, run: &RunPaths, upid: &Upid) -> io::Result<()> {
        let path = self.run_dir(run)?.join("executor.pid");
        write_atomic(&path, upid.to_string().as_bytes())
    }

    /// Marks the run as ended: a restarted agent does not look for its executor.
    pub fn executor_exited(&self, run: &RunPaths) -> io::Result<()> {
        write_atomic(&self.run_dir(run)?.join("exited"), b"1")
    }

    pub fn task(&self, run: &RunPaths, task: &TaskInfo) -> io::Result<()> {
        let path = self.layout.task_info_path(
            &run.agent,
            &run.framework,
            &run.executor,
            &run.run,
            &task.task_id,
        )?;
        write_checkpoint(&path, task)
    }

    pub fn stream(
        &self,
        run: &RunPaths,
        task: &TaskId,
        stream: &StreamCheckpoint,
    ) -> io::Result<()> {
        let path = self.layout.task_updates_path(
            &run.agent,
            &run.framework,
            &run.executor,
            &run.run,
            task,
        )?;
        write_checkpoint(&path, stream)
    }

    /// Forgets a task that is done (terminal and acknowledged).
    pub fn remove_task(&self, run: &RunPaths, task: &TaskId) -> io::Result<()> {
        let dir =
            self.layout
                .task_meta_dir(&run.agent, &run.framework, &run.executor, &run.run, task)?;
        match fs::remove_dir_all(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Forgets an ended run with no task left.
    /// Forgets a framework that was shut down: nothing of it is recovered after a restart (its
    /// executors were killed; their tasks must not come back as failed).
    pub fn remove_framework(&self, agent: &AgentId, framework: &FrameworkId) -> io::Result<()> {
        match fs::remove_dir_all(self.layout.framework_meta_dir(agent, framework)?) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub fn remove_run(&self, run: &RunPaths) -> io::Result<()> {
        match fs::remove_dir_all(self.run_dir(run)?) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Reads back what the agent that last ran on this work directory left; `None` when there
    /// is no usable agent id (a first start, or a checkpoint cut off before it was complete).
    pub fn recover(&self) -> Option<Recovered> {
        let agent_id = AgentId::new(text(&self.layout.latest_agent_path())?);
        let agent_info = read_checkpoint_as(&self.layout.agent_info_path(&agent_id).ok()?);
        let fw_root = self
            .layout
            .agent_meta_dir(&agent_id)
            .ok()?
            .join("frameworks");
        let mut frameworks = Vec::new();
        let mut runs = Vec::new();
        for (fw_name, fw_dir) in subdirs(&fw_root) {
            let framework_id = FrameworkId::new(fw_name);
            let Some(info) = read_checkpoint_as(&fw_dir.join("framework.info")) else {
                tracing::warn!(framework = %framework_id, "skipping a framework with no readable checkpoint");
                continue;
            };
            frameworks.push(RecoveredFramework {
                id: framework_id.clone(),
                info,
                scheduler: upid_at(&fw_dir.join("framework.pid")),
            });
            for (ex_name, ex_dir) in subdirs(&fw_dir.join("executors")) {
                let Some(info) = read_checkpoint_as::<ExecutorInfo>(&ex_dir.join("executor.info"))
                else {
                    tracing::warn!(executor = %ex_name, "skipping an executor with no readable checkpoint");
                    continue;
                };
                for (run_id, run_dir) in subdirs(&ex_dir.join("runs")) {
                    runs.push(read_run(&framework_id, &info, run_id, &run_dir));
                }
            }
        }
        Some(Recovered {
            agent_id,
            agent_info,
            frameworks,
            runs,
        })
    }
}

fn read_run(
    framework_id: &FrameworkId,
    info: &ExecutorInfo,
    run_id: String,
    dir: &Path,
) -> RecoveredRun {
    let mut tasks = Vec::new();
    for (task_name, task_dir) in subdirs(&dir.join("tasks")) {
        let Some(task) = read_checkpoint_as::<TaskInfo>(&task_dir.join("task.info")) else {
            tracing::warn!(task = %task_name, "skipping a task with no readable checkpoint");
            continue;
        };
        let stream = read_checkpoint_as(&task_dir.join("task.updates")).unwrap_or_default();
        tasks.push(RecoveredTask { task, stream });
    }
    RecoveredRun {
        framework_id: framework_id.clone(),
        info: info.clone(),
        run_id,
        pgid: text(&dir.join("forked.pid")).and_then(|p| p.parse().ok()),
        upid: upid_at(&dir.join("executor.pid")),
        exited: read_checkpoint(&dir.join("exited")).is_some(),
        tasks,
    }
}

/// What a restarted agent does with an executor run it finds in its checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub enum RunAction {
    /// It ended before the restart: only its tasks' updates are left to deliver.
    Ended,
    /// It is alive and was registered: ask it to reregister at this Upid.
    Reconnect(Upid),
    /// Its framework does not checkpoint, or it never registered: kill what is left of it
    /// (the group, if known) and report its tasks lost.
    Kill(Option<i32>),
    /// Its process is gone: its unfinished tasks failed.
    Died,
}

/// Decides the fate of a recovered run; `alive` tells whether the executor's process (by pid) is
/// still alive.
pub fn run_action(
    run: &RecoveredRun,
    checkpointing: bool,
    alive: impl Fn(i32) -> bool,
) -> RunAction {
    if run.exited {
        return RunAction::Ended;
    }
    let live_group = run.pgid.filter(|p| alive(*p));
    match (live_group, &run.upid) {
        (None, _) if checkpointing => RunAction::Died,
        (None, _) => RunAction::Kill(None),
        (Some(_), Some(upid)) if checkpointing => RunAction::Reconnect(upid.clone()),
        (Some(pgid), _) => RunAction::Kill(Some(pgid)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meso::protocol::{CommandInfo, StatusSource, TaskState};
    use meso::resources::Resources;

    fn paths() -> RunPaths {
        RunPaths {
            agent: AgentId::new("A1"),
            framework: FrameworkId::new("F1"),
            executor: ExecutorId::new("E1"),
            run: "r1".to_string(),
        }
    }

    fn task() -> TaskInfo {
        TaskInfo::command(
            TaskId::new("t1"),
            AgentId::new("A1"),
            Resources::new(),
            CommandInfo::shell("sleep 1"),
        )
    }

    fn executor_info() -> ExecutorInfo {
        ExecutorInfo {
            executor_id: ExecutorId::new("E1"),
            framework_id: FrameworkId::new("F1"),
            command: CommandInfo::shell("x"),
            resources: Resources::new(),
            name: String::new(),
        }
    }

    fn upid(s: &str) -> Upid {
        s.parse().unwrap()
    }

    fn write_all(c: &Checkpointer) -> StreamCheckpoint {
        let p = paths();
        let info = AgentInfo {
            id: Some(p.agent.clone()),
            hostname: "h".into(),
            resources: Resources::new(),
            attributes: Vec::new(),
            port: 1,
        };
        c.agent(&info, &p.agent).unwrap();
        let fw = FrameworkInfo::new("f", "u");
        c.framework(&p.agent, &p.framework, &fw, &upid("s@127.0.0.1:1"))
            .unwrap();
        c.executor(&p, &executor_info()).unwrap();
        c.forked_pid(&p, 4242).unwrap();
        c.executor_upid(&p, &upid("executor@127.0.0.1:2")).unwrap();
        c.task(&p, &task()).unwrap();
        let status = TaskStatus::new(TaskId::new("t1"), TaskState::Running, 5).reliable();
        let stream = StreamCheckpoint {
            pending: vec![StatusUpdate {
                framework_id: p.framework.clone(),
                status: status.clone(),
                executor_id: Some(p.executor.clone()),
                source: StatusSource::Executor,
            }],
            acked: vec![[7; 16]],
            latest: Some(status),
        };
        c.stream(&p, &TaskId::new("t1"), &stream).unwrap();
        stream
    }

    /// A framework shut down by the master leaves nothing to recover: its executors were killed
    /// on purpose, and a restart must not report their tasks as failed.
    #[test]
    fn a_removed_framework_is_not_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpointer::new(Layout::new(dir.path()));
        write_all(&c);
        let p = paths();
        c.remove_framework(&p.agent, &p.framework).unwrap();
        c.remove_framework(&p.agent, &p.framework).unwrap(); // twice is fine
        let r = c.recover().unwrap();
        assert_eq!(r.agent_id, AgentId::new("A1"));
        assert!(r.frameworks.is_empty(), "{:?}", r.frameworks);
        assert!(r.runs.is_empty(), "{:?}", r.runs);
    }

    #[test]
    fn everything_written_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpointer::new(Layout::new(dir.path()));
        assert!(c.recover().is_none(), "nothing written yet");
        let stream = write_all(&c);
        let r = c.recover().unwrap();
        assert_eq!(r.agent_id, AgentId::new("A1"));
        assert_eq!(r.agent_info.unwrap().hostname, "h");
        assert_eq!(r.frameworks.len(), 1);
        assert_eq!(r.frameworks[0].scheduler, Some(upid("s@127.0.0.1:1")));
        assert_eq!(r.runs.len(), 1);
        let run = &r.runs[0];
        assert_eq!(run.run_id, "r1");
        assert_eq!(run.pgid, Some(4242));
        assert_eq!(run.upid, Some(upid("executor@127.0.0.1:2")));
        assert!(!run.exited);
        assert_eq!(run.tasks.len(), 1);
        assert_eq!(run.tasks[0].task, task());
        assert_eq!(run.tasks[0].stream, stream);
        c.executor_exited(&paths()).unwrap();
        assert!(c.recover().unwrap().runs[0].exited);
        c.remove_task(&paths(), &TaskId::new("t1")).unwrap();
        assert!(c.recover().unwrap().runs[0].tasks.is_empty());
        c.remove_run(&paths()).unwrap();
        assert!(c.recover().unwrap().runs.is_empty());
    }

    /// A crash leaves a file cut off or empty: it counts as not written, and the rest is read.
    #[test]
    fn cut_off_or_empty_files_count_as_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let c = Checkpointer::new(layout.clone());
        write_all(&c);
        let p = paths();
        let updates = layout
            .task_updates_path(
                &p.agent,
                &p.framework,
                &p.executor,
                &p.run,
                &TaskId::new("t1"),
            )
            .unwrap();
        let bytes = fs::read(&updates).unwrap();
        fs::write(&updates, &bytes[..bytes.len() / 2]).unwrap();
        let pid = layout
            .forked_pid_path(&p.agent, &p.framework, &p.executor, &p.run)
            .unwrap();
        fs::write(&pid, b"").unwrap();
        let r = c.recover().unwrap();
        let run = &r.runs[0];
        assert_eq!(run.pgid, None);
        assert_eq!(run.tasks.len(), 1, "the task itself is still known");
        assert_eq!(run.tasks[0].stream, StreamCheckpoint::default());
        let info = layout
            .task_info_path(
                &p.agent,
                &p.framework,
                &p.executor,
                &p.run,
                &TaskId::new("t1"),
            )
            .unwrap();
        fs::write(&info, [1, 2, 3]).unwrap();
        assert!(c.recover().unwrap().runs[0].tasks.is_empty());
        fs::write(layout.latest_agent_path(), b"").unwrap();
        assert!(c.recover().is_none(), "no agent id: a fresh start");
    }

    #[test]
    fn what_becomes_of_a_recovered_run() {
        let mut run = RecoveredRun {
            framework_id: FrameworkId::new("F1"),
            info: executor_info(),
            run_id: "r".into(),
            pgid: Some(10),
            upid: Some(upid("executor@127.0.0.1:2")),
            exited: false,
            tasks: Vec::new(),
        };
        let alive = |_| true;
        let dead = |_| false;
        assert_eq!(
            run_action(&run, true, alive),
            RunAction::Reconnect(upid("executor@127.0.0.1:2"))
        );
        assert_eq!(run_action(&run, true, dead), RunAction::Died);
        assert_eq!(run_action(&run, false, alive), RunAction::Kill(Some(10)));
        assert_eq!(run_action(&run, false, dead), RunAction::Kill(None));
        run.upid = None;
        assert_eq!(run_action(&run, true, alive), RunAction::Kill(Some(10)));
        run.exited = true;
        assert_eq!(run_action(&run, true, alive), RunAction::Ended);
    }
}
