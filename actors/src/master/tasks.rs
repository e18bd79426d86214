//! The master's record of tasks and their state machine. Pure: no I/O, no clock.
//!
//! A task enters as `Staging` when launched (or in the state an agent reports when it
//! reregisters). Terminal states are final. When a task reaches a terminal state, the transition
//! hands back the task's resources so the master can return them to the allocator.

use meso::protocol::{AgentId, FrameworkId, TaskId, TaskInfo, TaskState, TaskStatus};
use meso::resources::Resources;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

/// How many completed tasks the master remembers per framework (as Mesos'
/// `--max_completed_tasks_per_framework`), to answer a late or repeated message about one with
/// what became of it rather than with "unknown".
pub const MAX_COMPLETED_PER_FRAMEWORK: usize = 1000;

/// Everything the master knows about one task.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedTask {
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub info: TaskInfo,
    pub state: TaskState,
    /// The latest status received, if any.
    pub latest: Option<TaskStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    #[error("framework {framework_id} already has a task {task_id}")]
    Duplicate {
        framework_id: FrameworkId,
        task_id: TaskId,
    },
    #[error("framework {framework_id} has no task {task_id}")]
    Unknown {
        framework_id: FrameworkId,
        task_id: TaskId,
    },
    #[error("task {task_id} is already {state}; {attempted} is ignored")]
    AlreadyTerminal {
        task_id: TaskId,
        state: TaskState,
        attempted: TaskState,
    },
    #[error("task {task_id} cannot go from {from} to {to}")]
    Invalid {
        task_id: TaskId,
        from: TaskState,
        to: TaskState,
    },
}

/// The result of an accepted transition.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub from: TaskState,
    pub to: TaskState,
    /// The task's resources, when it just reached a terminal state (once per task).
    pub released: Option<Resources>,
}

impl Transition {
    pub fn changed(&self) -> bool {
        self.from != self.to
    }
}

/// Whether a task may move from `from` to `to` (a different state).
///
/// No task goes back to `Staging` or into `Unknown` (which only answers reconciliation for
/// tasks the master does not track); `Starting` cannot follow `Running` or `Killing`, and
/// `Running` cannot follow `Killing`. An unreachable task may come back in any live state.
pub fn may_transition(from: TaskState, to: TaskState) -> bool {
    use TaskState::*;
    if from.is_terminal() {
        return false;
    }
    match to {
        Staging | Unknown => false,
        Starting => matches!(from, Staging | Unreachable | Unknown),
        Running => matches!(from, Staging | Starting | Unreachable | Unknown),
        Killing => matches!(from, Staging | Starting | Running | Unreachable | Unknown),
        Unreachable => true,
        Finished | Failed | Killed | Error | Lost | Dropped | Gone => true,
    }
}

/// The tasks of all frameworks, by framework and task id.
#[derive(Debug, Clone, Default)]
pub struct TaskTracker {
    tasks: BTreeMap<(FrameworkId, TaskId), TrackedTask>,
    /// The keys of `tasks` by agent: an agent's tasks are found without a scan of them all.
    by_agent: HashMap<AgentId, BTreeSet<(FrameworkId, TaskId)>>,
    /// Tasks whose terminal update was acknowledged, oldest first, at most
    /// [`MAX_COMPLETED_PER_FRAMEWORK`] per framework.
    completed: BTreeMap<FrameworkId, VecDeque<TrackedTask>>,
}

impl TaskTracker {
    pub fn new() -> TaskTracker {
        TaskTracker::default()
    }

    /// Records a task just launched, as `Staging`.
    pub fn add(
        &mut self,
        framework_id: FrameworkId,
        agent_id: AgentId,
        info: TaskInfo,
    ) -> Result<(), TaskError> {
        self.add_in_state(framework_id, agent_id, info, TaskState::Staging, None)
    }

    /// Records a task in a given state (as an agent reports it when reregistering).
    pub fn add_in_state(
        &mut self,
        framework_id: FrameworkId,
        agent_id: AgentId,
        info: TaskInfo,
        state: TaskState,
        latest: Option<TaskStatus>,
    ) -> Result<(), TaskError> {
        let key = (framework_id, info.task_id.clone());
        if self.tasks.contains_key(&key) {
            return Err(TaskError::Duplicate {
                framework_id: key.0,
                task_id: key.1,
            });
        }
        let task = TrackedTask {
            framework_id: key.0.clone(),
            agent_id,
            info,
            state,
            latest,
        };
        self.insert(key, task);
        Ok(())
    }

    /// Records a task as an agent reports it, replacing what was known of it (a task thought
    /// lost or unreachable whose agent came back).
    pub fn put(
        &mut self,
        framework_id: FrameworkId,
        agent_id: AgentId,
        info: TaskInfo,
        state: TaskState,
        latest: Option<TaskStatus>,
    ) {
        let key = (framework_id, info.task_id.clone());
        let task = TrackedTask {
            framework_id: key.0.clone(),
            agent_id,
            info,
            state,
            latest,
        };
        self.insert(key, task);
    }

    /// The one place a task goes in, kept in the agent index (moved if its agent changed).
    fn insert(&mut self, key: (FrameworkId, TaskId), task: TrackedTask) {
        self.by_agent
            .entry(task.agent_id.clone())
            .or_default()
            .insert(key.clone());
        if let Some(old) = self.tasks.insert(key.clone(), task) {
            if self.tasks[&key].agent_id != old.agent_id {
                self.unindex(&old.agent_id, &key);
            }
        }
    }

    fn unindex(&mut self, agent_id: &AgentId, key: &(FrameworkId, TaskId)) {
        if let Some(keys) = self.by_agent.get_mut(agent_id) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_agent.remove(agent_id);
            }
        }
    }

    pub fn get(&self, framework_id: &FrameworkId, task_id: &TaskId) -> Option<&TrackedTask> {
        self.tasks.get(&(framework_id.clone(), task_id.clone()))
    }

    pub fn contains(&self, framework_id: &FrameworkId, task_id: &TaskId) -> bool {
        self.get(framework_id, task_id).is_some()
    }

    /// Forgets a task for good.
    pub fn remove(&mut self, framework_id: &FrameworkId, task_id: &TaskId) -> Option<TrackedTask> {
        let key = (framework_id.clone(), task_id.clone());
        let task = self.tasks.remove(&key)?;
        self.unindex(&task.agent_id, &key);
        Some(task)
    }

    /// Moves a task whose terminal update was acknowledged to the completed tasks of its
    /// framework (the oldest one beyond the bound is forgotten).
    pub fn complete(&mut self, framework_id: &FrameworkId, task_id: &TaskId) {
        let Some(task) = self.remove(framework_id, task_id) else {
            return;
        };
        let done = self.completed.entry(framework_id.clone()).or_default();
        done.push_back(task);
        while done.len() > MAX_COMPLETED_PER_FRAMEWORK {
            done.pop_front();
        }
    }

    /// A completed task of a framework (the latest one under that id).
    pub fn completed(&self, framework_id: &FrameworkId, task_id: &TaskId) -> Option<&TrackedTask> {
        self.completed
            .get(framework_id)
            .and_then(|done| done.iter().rev().find(|t| &t.info.task_id == task_id))
    }

    /// A task known live or completed.
    pub fn live_or_completed(
        &self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
    ) -> Option<&TrackedTask> {
        self.get(framework_id, task_id)
            .or_else(|| self.completed(framework_id, task_id))
    }

    /// Forgets everything of a framework, live and completed tasks alike.
    pub fn remove_framework(&mut self, framework_id: &FrameworkId) {
        let keys: Vec<_> = self.framework_keys(framework_id).cloned().collect();
        for (f, t) in keys {
            self.remove(&f, &t);
        }
        self.completed.remove(framework_id);
    }

    fn entry(
        &mut self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
    ) -> Result<&mut TrackedTask, TaskError> {
        self.tasks
            .get_mut(&(framework_id.clone(), task_id.clone()))
            .ok_or_else(|| TaskError::Unknown {
                framework_id: framework_id.clone(),
                task_id: task_id.clone(),
            })
    }

    fn check(task: &TrackedTask, to: TaskState) -> Result<(), TaskError> {
        if task.state.is_terminal() {
            return Err(TaskError::AlreadyTerminal {
                task_id: task.info.task_id.clone(),
                state: task.state,
                attempted: to,
            });
        }
        if task.state != to && !may_transition(task.state, to) {
            return Err(TaskError::Invalid {
                task_id: task.info.task_id.clone(),
                from: task.state,
                to,
            });
        }
        Ok(())
    }

    fn apply(task: &mut TrackedTask, to: TaskState) -> Transition {
        let from = task.state;
        task.state = to;
        let released =
            (to.is_terminal() && !from.is_terminal()).then(|| task.info.resources.clone());
        Transition { from, to, released }
    }

    /// Moves a task to `to`. Staying in the same live state is accepted as no change. On error the
    /// task is left as it was.
    pub fn transition(
        &mut self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        to: TaskState,
    ) -> Result<Transition, TaskError> {
        let task = self.entry(framework_id, task_id)?;
        Self::check(task, to)?;
        Ok(Self::apply(task, to))
    }

    /// Applies a status update: moves the task to the status' state and keeps the status as the
    /// latest. On error nothing changes.
    pub fn update(
        &mut self,
        framework_id: &FrameworkId,
        status: TaskStatus,
    ) -> Result<Transition, TaskError> {
        let task = self.entry(framework_id, &status.task_id)?;
        Self::check(task, status.state)?;
        let transition = Self::apply(task, status.state);
        task.latest = Some(status);
        Ok(transition)
    }

    /// The keys of a framework's tasks: a range of the map, not a scan of every task.
    fn framework_keys<'a>(
        &'a self,
        framework_id: &'a FrameworkId,
    ) -> impl Iterator<Item = &'a (FrameworkId, TaskId)> + 'a {
        let from = (framework_id.clone(), TaskId::new(""));
        self.tasks
            .range(from..)
            .map(|(k, _)| k)
            .take_while(move |(f, _)| f == framework_id)
    }

    /// The ids of a framework's tasks.
    pub fn task_ids(&self, framework_id: &FrameworkId) -> HashSet<TaskId> {
        self.framework_keys(framework_id)
            .map(|(_, t)| t.clone())
            .collect()
    }

    /// The tasks of a framework, by task id.
    pub fn for_framework<'a>(
        &'a self,
        framework_id: &'a FrameworkId,
    ) -> impl Iterator<Item = &'a TrackedTask> + 'a {
        self.framework_keys(framework_id).map(|k| &self.tasks[k])
    }

    /// The tasks on an agent (to mark them when the agent is lost).
    pub fn on_agent<'a>(&'a self, agent_id: &'a AgentId) -> impl Iterator<Item = &'a TrackedTask> {
        self.by_agent
            .get(agent_id)
            .into_iter()
            .flatten()
            .map(|k| &self.tasks[k])
    }

    /// The resources of the live (non-terminal) tasks on an agent.
    pub fn used_on_agent(&self, agent_id: &AgentId) -> Resources {
        let mut used = Resources::default();
        for task in self.on_agent(agent_id) {
            if !task.state.is_terminal() {
                used += task.info.resources.clone();
            }
        }
        used
    }

    pub fn iter(&self) -> impl Iterator<Item = &TrackedTask> {
        self.tasks.values()
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meso::protocol::CommandInfo;
    use TaskState::*;

    fn fw() -> FrameworkId {
        FrameworkId::new("f1")
    }

    fn tid(id: &str) -> TaskId {
        TaskId::new(id)
    }

    fn info(id: &str) -> TaskInfo {
        TaskInfo::command(
            tid(id),
            AgentId::new("a1"),
            Resources::default(),
            CommandInfo::shell("true"),
        )
    }

    fn tracker() -> TaskTracker {
        let mut tracker = TaskTracker::new();
        tracker.add(fw(), AgentId::new("a1"), info("t1")).unwrap();
        tracker
    }

    #[test]
    fn adding_twice_is_an_error_and_keeps_the_first() {
        let mut tracker = tracker();
        tracker.transition(&fw(), &tid("t1"), Running).unwrap();
        let err = tracker
            .add(fw(), AgentId::new("a2"), info("t1"))
            .unwrap_err();
        assert!(matches!(err, TaskError::Duplicate { .. }));
        assert_eq!(tracker.get(&fw(), &tid("t1")).unwrap().state, Running);
        // Same task id in another framework is a different task.
        tracker
            .add(FrameworkId::new("f2"), AgentId::new("a1"), info("t1"))
            .unwrap();
        assert_eq!(tracker.len(), 2);
        assert_eq!(tracker.task_ids(&fw()), [tid("t1")].into_iter().collect());
    }

    #[test]
    fn normal_life_releases_resources_once() {
        let mut tracker = tracker();
        let t = tracker.transition(&fw(), &tid("t1"), Starting).unwrap();
        assert_eq!(
            (t.from, t.to, t.released.is_some()),
            (Staging, Starting, false)
        );
        tracker.transition(&fw(), &tid("t1"), Running).unwrap();
        let same = tracker.transition(&fw(), &tid("t1"), Running).unwrap();
        assert!(!same.changed());
        let done = tracker.transition(&fw(), &tid("t1"), Finished).unwrap();
        assert_eq!(done.released, Some(Resources::default()));
        let again = tracker.transition(&fw(), &tid("t1"), Finished).unwrap_err();
        assert!(matches!(again, TaskError::AlreadyTerminal { .. }));
    }

    #[test]
    fn updates_after_terminal_are_ignored() {
        let mut tracker = tracker();
        tracker.transition(&fw(), &tid("t1"), Killed).unwrap();
        for state in TaskState::ALL {
            let err = tracker.transition(&fw(), &tid("t1"), state).unwrap_err();
            assert!(matches!(err, TaskError::AlreadyTerminal { .. }), "{state}");
        }
        assert_eq!(tracker.get(&fw(), &tid("t1")).unwrap().state, Killed);
    }

    #[test]
    fn backward_moves_are_refused_and_change_nothing() {
        let mut tracker = tracker();
        tracker.transition(&fw(), &tid("t1"), Running).unwrap();
        for to in [Staging, Starting, Unknown] {
            let err = tracker.transition(&fw(), &tid("t1"), to).unwrap_err();
            assert!(matches!(err, TaskError::Invalid { .. }), "{to}");
        }
        tracker.transition(&fw(), &tid("t1"), Killing).unwrap();
        assert!(tracker.transition(&fw(), &tid("t1"), Running).is_err());
        assert_eq!(tracker.get(&fw(), &tid("t1")).unwrap().state, Killing);
    }

    #[test]
    fn unreachable_tasks_can_come_back() {
        let mut tracker = tracker();
        tracker.transition(&fw(), &tid("t1"), Running).unwrap();
        tracker.transition(&fw(), &tid("t1"), Unreachable).unwrap();
        let back = tracker.transition(&fw(), &tid("t1"), Running).unwrap();
        assert_eq!((back.from, back.to), (Unreachable, Running));
    }

    #[test]
    fn the_transition_table_matches_terminality() {
        for from in TaskState::ALL {
            for to in TaskState::ALL {
                if from.is_terminal() {
                    assert!(!may_transition(from, to), "{from} -> {to}");
                }
                if to == Staging || to == Unknown {
                    assert!(!may_transition(from, to), "{from} -> {to}");
                }
                if !from.is_terminal() && to.is_terminal() {
                    assert!(may_transition(from, to), "{from} -> {to}");
                }
            }
        }
    }

    #[test]
    fn status_updates_are_kept_and_checked() {
        let mut tracker = tracker();
        let status = TaskStatus::new(tid("t1"), Running, 10).with_message("up");
        tracker.update(&fw(), status.clone()).unwrap();
        let task = tracker.get(&fw(), &tid("t1")).unwrap();
        assert_eq!(task.latest.as_ref(), Some(&status));
        let bad = TaskStatus::new(tid("t1"), Staging, 11);
        assert!(tracker.update(&fw(), bad).is_err());
        let task = tracker.get(&fw(), &tid("t1")).unwrap();
        assert_eq!(
            task.latest.as_ref(),
            Some(&status),
            "a refused update changes nothing"
        );
        let unknown = TaskStatus::new(tid("nope"), Running, 12);
        assert!(matches!(
            tracker.update(&fw(), unknown),
            Err(TaskError::Unknown { .. })
        ));
    }

    #[test]
    fn lookups_by_agent_and_framework() {
        let mut tracker = tracker();
        tracker.add(fw(), AgentId::new("a2"), info("t2")).unwrap();
        let a1 = AgentId::new("a1");
        let on_a1: Vec<&str> = tracker
            .on_agent(&a1)
            .map(|t| t.info.task_id.as_str())
            .collect();
        assert_eq!(on_a1, vec!["t1"]);
        assert_eq!(tracker.for_framework(&fw()).count(), 2);
        assert!(tracker.remove(&fw(), &tid("t1")).is_some());
        assert!(!tracker.contains(&fw(), &tid("t1")));
    }

    /// The agent index follows every way a task comes and goes: added, put back on another agent
    /// (an agent reregistering with it), removed, and a framework removed with all its tasks; and
    /// a framework's tasks are its own, not those of a framework whose id it prefixes.
    #[test]
    fn the_agent_index_follows_every_change() {
        let ids = |t: &TaskTracker, a: &str| -> Vec<String> {
            let agent = AgentId::new(a);
            t.on_agent(&agent)
                .map(|t| t.info.task_id.to_string())
                .collect()
        };
        let mut t = tracker();
        t.add(fw(), AgentId::new("a1"), info("t2")).unwrap();
        let other = FrameworkId::new(format!("{}x", fw()));
        t.add(other.clone(), AgentId::new("a1"), info("t9"))
            .unwrap();
        assert_eq!(ids(&t, "a1"), vec!["t1", "t2", "t9"]);
        t.put(fw(), AgentId::new("a2"), info("t2"), Running, None);
        assert_eq!(
            (ids(&t, "a1"), ids(&t, "a2")),
            (vec!["t1".into(), "t9".into()], vec!["t2".into()])
        );
        assert_eq!(
            t.task_ids(&fw()),
            [tid("t1"), tid("t2")].into_iter().collect()
        );
        t.remove(&fw(), &tid("t1"));
        assert_eq!(ids(&t, "a1"), vec!["t9"]);
        t.remove_framework(&fw());
        assert_eq!(
            (ids(&t, "a1"), ids(&t, "a2")),
            (vec!["t9".into()], Vec::<String>::new())
        );
        assert_eq!(t.for_framework(&other).count(), 1);
    }

    #[test]
    fn used_resources_count_live_tasks_only() {
        let mut tracker = TaskTracker::new();
        let a1 = AgentId::new("a1");
        let mut t1 = info("t1");
        t1.resources = Resources::parse("cpus:1;mem:64").unwrap();
        let mut t2 = info("t2");
        t2.resources = Resources::parse("cpus:0.5").unwrap();
        tracker.add(fw(), a1.clone(), t1).unwrap();
        tracker.add(fw(), a1.clone(), t2).unwrap();
        tracker.transition(&fw(), &tid("t2"), Failed).unwrap();
        assert_eq!(
            tracker.used_on_agent(&a1),
            Resources::parse("cpus:1;mem:64").unwrap()
        );
    }
}
