//! Where an agent keeps things on disk, and how it writes checkpoints.
//!
//! ```text
//! <work_dir>/agents/<agent>/frameworks/<fw>/executors/<ex>/runs/<run>/{stdout,stderr}   sandboxes
//! <work_dir>/meta/agents/latest                                                          latest agent id
//! <work_dir>/meta/agents/<agent>/agent.info
//! <work_dir>/meta/agents/<agent>/frameworks/<fw>/{framework.info,framework.pid}
//! <work_dir>/meta/agents/<agent>/frameworks/<fw>/executors/<ex>/executor.info
//! <work_dir>/meta/agents/<agent>/frameworks/<fw>/executors/<ex>/runs/<run>/forked.pid
//! <work_dir>/meta/agents/<agent>/frameworks/<fw>/executors/<ex>/runs/<run>/tasks/<task>/{task.info,task.updates}
//! ```
//!
//! Every id becomes one path component, so ids that could escape their directory (empty, `.`,
//! `..`, or holding `/` or NUL) are refused with `InvalidInput`.

use meso::protocol::{AgentId, ExecutorId, FrameworkId, TaskId};
use serde::{de::DeserializeOwned, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Checks that `id` is usable as a single path component.
pub fn component(id: &str) -> io::Result<&str> {
    let bad = id.is_empty() || id == "." || id == ".." || id.contains(['/', '\0']);
    if bad {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{id}` cannot be used as a directory name"),
        ));
    }
    Ok(id)
}

/// A fresh id for one run of an executor.
pub fn new_run_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The on-disk layout under one agent work directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    work_dir: PathBuf,
}

impl Layout {
    pub fn new(work_dir: impl Into<PathBuf>) -> Layout {
        Layout {
            work_dir: work_dir.into(),
        }
    }

    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// The sandbox of one executor run.
    pub fn sandbox_dir(
        &self,
        agent: &AgentId,
        framework: &FrameworkId,
        executor: &ExecutorId,
        run: &str,
    ) -> io::Result<PathBuf> {
        Ok(self
            .work_dir
            .join("agents")
            .join(component(agent.as_str())?)
            .join("frameworks")
            .join(component(framework.as_str())?)
            .join("executors")
            .join(component(executor.as_str())?)
            .join("runs")
            .join(component(run)?))
    }

    /// Creates the sandbox of one executor run, with empty `stdout` and `stderr` files, and
    /// returns its path. Existing files are kept.
    pub fn create_sandbox(
        &self,
        agent: &AgentId,
        framework: &FrameworkId,
        executor: &ExecutorId,
        run: &str,
    ) -> io::Result<PathBuf> {
        let dir = self.sandbox_dir(agent, framework, executor, run)?;
        fs::create_dir_all(&dir)?;
        for name in ["stdout", "stderr"] {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(name))?;
        }
        Ok(dir)
    }

    pub fn meta_dir(&self) -> PathBuf {
        self.work_dir.join("meta")
    }

    /// The file holding the id of the agent that last ran on this work dir.
    pub fn latest_agent_path(&self) -> PathBuf {
        self.meta_dir().join("agents").join("latest")
    }

    pub fn agent_meta_dir(&self, agent: &AgentId) -> io::Result<PathBuf> {
        Ok(self
            .meta_dir()
            .join("agents")
            .join(component(agent.as_str())?))
    }

    pub fn agent_info_path(&self, agent: &AgentId) -> io::Result<PathBuf> {
        Ok(self.agent_meta_dir(agent)?.join("agent.info"))
    }

    pub fn framework_meta_dir(
        &self,
        agent: &AgentId,
        framework: &FrameworkId,
    ) -> io::Result<PathBuf> {
        Ok(self
            .agent_meta_dir(agent)?
            .join("frameworks")
            .join(component(framework.as_str())?))
    }

    pub fn framework_info_path(
        &self,
        agent: &AgentId,
        framework: &FrameworkId,
    ) -> io::Result<PathBuf> {
        Ok(self
            .framework_meta_dir(agent, framework)?
            .join("framework.info"))
    }

    /// The file holding the scheduler's address.
    pub fn framework_pid_path(
        &self,
        agent: &AgentId,
        framework: &FrameworkId,
    ) -> io::Result<PathBuf> {
        Ok(self
            .framework_meta_dir(agent, framework)?
            .join("framework.pid"))
    }

    pub fn executor_meta_dir(
        &self,
        agent: &AgentId,
        framework: &FrameworkId,
        executor: &ExecutorId,
    ) -> io::Result<PathBuf> {
        Ok(self
            .framework_meta_dir(agent, framework)?
            .join("executors")
            .join(component(executor.as_str())?))
    }

    pub fn executor_info_path(
        &self,
        agent: &AgentId,
        framework: &FrameworkId,
        executor: &ExecutorId,
    ) -> io::Result<PathBuf> {
        Ok(self
            .executor_meta_dir(agent, framework, executor)?
            .join("executor.info"))
    }

    pub fn run_meta_dir(
        &self,
        agent: &AgentId,
        framework: &FrameworkId,
        executor: &ExecutorId,
        run: &str,
    ) -> io::Result<PathBuf> {
        Ok(self
            .executor_meta_dir(agent, framework, executor)?
            .join("runs")
            .join(component(run)?))
    }

    /// The file holding the pid of the executor process of a run.
    pub fn forked_pid_path(
        &self,
        agent: &AgentId,
        framework: &FrameworkId,
        executor: &ExecutorId,
        run: &str,
    ) -> io::Result<PathBuf> {
        Ok(self
            .run_meta_dir(agent, framework, executor, run)?
            .join("forked.pid"))
    }

    pub fn task_meta_dir(
        &self,
        agent: &AgentId,
        framework: &FrameworkId,
        executor: &ExecutorId,
        run: &str,
        task: &TaskId,
    ) -> io::Result<PathBuf> {
        Ok(self
            .run_meta_dir(agent, framework, executor, run)?
            .join("tasks")
            .join(component(task.as_str())?))
    }

    pub fn task_info_path(
        &self,
        agent: &AgentId,
        framework: &FrameworkId,
        executor: &ExecutorId,
        run: &str,
        task: &TaskId,
    ) -> io::Result<PathBuf> {
        Ok(self
            .task_meta_dir(agent, framework, executor, run, task)?
            .join("task.info"))
    }

    pub fn task_updates_path(
        &self,
        agent: &AgentId,
        framework: &FrameworkId,
        executor: &ExecutorId,
        run: &str,
        task: &TaskId,
    ) -> io::Result<PathBuf> {
        Ok(self
            .task_meta_dir(agent, framework, executor, run, task)?
            .join("task.updates"))
    }
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces the file at `path` with `bytes` so that a crash leaves either the old or the new
/// content: writes a temporary file next to it, syncs it, renames it over `path`, and syncs the
/// directory. Missing parent directories are created. On error the old content is untouched
/// and the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    fs::create_dir_all(dir)?;
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}-{n}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()
}

/// Reads a checkpoint file; a missing, unreadable or empty file counts as never written.
pub fn read_checkpoint(path: &Path) -> Option<Vec<u8>> {
    match fs::read(path) {
        Ok(bytes) if !bytes.is_empty() => Some(bytes),
        _ => None,
    }
}

/// Writes a value as a checkpoint, in the wire encoding.
pub fn write_checkpoint<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = meso::codec::encode(value)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    write_atomic(path, &bytes)
}

/// Reads a value checkpointed by [`write_checkpoint`]; a file that is missing, empty or does not
/// decode counts as never written.
pub fn read_checkpoint_as<T: DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = read_checkpoint(path)?;
    meso::codec::decode(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (AgentId, FrameworkId, ExecutorId) {
        (
            AgentId::new("A-1"),
            FrameworkId::new("F-1"),
            ExecutorId::new("e1"),
        )
    }

    #[test]
    fn sandbox_layout_and_creation() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let (a, f, e) = ids();
        let sandbox = layout.create_sandbox(&a, &f, &e, "r1").unwrap();
        assert_eq!(
            sandbox,
            dir.path()
                .join("agents/A-1/frameworks/F-1/executors/e1/runs/r1")
        );
        assert!(sandbox.join("stdout").is_file());
        assert!(sandbox.join("stderr").is_file());
        fs::write(sandbox.join("stdout"), b"kept").unwrap();
        layout.create_sandbox(&a, &f, &e, "r1").unwrap();
        assert_eq!(fs::read(sandbox.join("stdout")).unwrap(), b"kept");
    }

    #[test]
    fn ids_cannot_escape_their_directory() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let (a, f, _) = ids();
        for bad in ["", ".", "..", "a/b", "../../etc", "x\0y"] {
            let err = layout
                .create_sandbox(&a, &f, &ExecutorId::new(bad), "r1")
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
            assert!(layout.agent_meta_dir(&AgentId::new(bad)).is_err());
        }
        assert!(layout
            .sandbox_dir(&a, &f, &ExecutorId::new("e"), "..")
            .is_err());
        assert!(!dir.path().join("agents").exists(), "nothing was created");
    }

    #[test]
    fn meta_layout() {
        let layout = Layout::new("/w");
        let (a, f, e) = ids();
        let t = TaskId::new("t1");
        let p = |r: io::Result<PathBuf>| r.unwrap().to_string_lossy().into_owned();
        assert_eq!(
            layout.latest_agent_path(),
            PathBuf::from("/w/meta/agents/latest")
        );
        assert_eq!(
            p(layout.agent_info_path(&a)),
            "/w/meta/agents/A-1/agent.info"
        );
        assert_eq!(
            p(layout.framework_pid_path(&a, &f)),
            "/w/meta/agents/A-1/frameworks/F-1/framework.pid"
        );
        assert_eq!(
            p(layout.framework_info_path(&a, &f)),
            "/w/meta/agents/A-1/frameworks/F-1/framework.info"
        );
        assert_eq!(
            p(layout.executor_info_path(&a, &f, &e)),
            "/w/meta/agents/A-1/frameworks/F-1/executors/e1/executor.info"
        );
        assert_eq!(
            p(layout.forked_pid_path(&a, &f, &e, "r1")),
            "/w/meta/agents/A-1/frameworks/F-1/executors/e1/runs/r1/forked.pid"
        );
        assert_eq!(
            p(layout.task_info_path(&a, &f, &e, "r1", &t)),
            "/w/meta/agents/A-1/frameworks/F-1/executors/e1/runs/r1/tasks/t1/task.info"
        );
        assert_eq!(
            p(layout.task_updates_path(&a, &f, &e, "r1", &t)),
            "/w/meta/agents/A-1/frameworks/F-1/executors/e1/runs/r1/tasks/t1/task.updates"
        );
        assert_ne!(new_run_id(), new_run_id());
    }

    #[test]
    fn atomic_writes_replace_and_leave_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta/agents/latest");
        write_atomic(&path, b"A-1").unwrap();
        assert_eq!(read_checkpoint(&path), Some(b"A-1".to_vec()));
        write_atomic(&path, b"A-2").unwrap();
        assert_eq!(read_checkpoint(&path), Some(b"A-2".to_vec()));
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("latest")]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("target");
        // A directory in the way makes the rename fail.
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), b"x").unwrap();
        assert!(write_atomic(&path, b"new").is_err());
        assert!(path.is_dir());
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "the temporary file is removed");
        assert!(write_atomic(Path::new("/"), b"x").is_err());
    }

    #[test]
    fn missing_empty_or_garbled_checkpoints_are_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("task.info");
        assert_eq!(read_checkpoint(&path), None);
        assert_eq!(read_checkpoint_as::<TaskId>(&path), None);
        fs::write(&path, b"").unwrap();
        assert_eq!(read_checkpoint(&path), None);
        fs::write(&path, [0xff, 0xff, 0xff]).unwrap();
        assert!(read_checkpoint(&path).is_some());
        assert_eq!(read_checkpoint_as::<TaskId>(&path), None);
        assert_eq!(
            read_checkpoint(dir.path()),
            None,
            "a directory is not a checkpoint"
        );

        write_checkpoint(&path, &TaskId::new("t1")).unwrap();
        assert_eq!(read_checkpoint_as::<TaskId>(&path), Some(TaskId::new("t1")));
    }
}
