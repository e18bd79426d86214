//! Validation of an accept: which offers are usable, which tasks launch, which fail and why, and
//! what goes back to the allocator. Pure: the master applies the decision.
//!
//! Semantics follow Mesos:
//! - If any named offer is invalid (unknown, already used or expired, another framework's, from a
//!   second agent, or named twice), nothing launches: every task is lost with reason
//!   `InvalidOffers`, and the valid offers are removed and their whole resources recovered.
//! - Otherwise the offers are removed, and tasks are checked in order against what remains of
//!   the offered resources; a task that fails a check gets `TASK_ERROR` and uses nothing.

use super::book::OfferBook;
use meso::protocol::{
    AcceptOffers, AgentId, ExecutorId, FrameworkId, OfferId, Operation, TaskId, TaskInfo,
    TaskStatusReason,
};
use meso::resources::Resources;
use std::collections::HashSet;

/// A task that will not run because its accept named invalid offers (reported as `TASK_LOST`, or
/// `TASK_DROPPED` to partition-aware frameworks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostTask {
    pub task_id: TaskId,
    pub reason: TaskStatusReason,
    pub message: String,
}

/// What the master does with an accept.
#[derive(Debug, Clone, PartialEq)]
pub enum AcceptDecision {
    /// Launch nothing; report the tasks lost; give the valid offers' resources back.
    InvalidOffers {
        reason: String,
        tasks_lost: Vec<LostTask>,
        offers_to_recover: Vec<(AgentId, Resources)>,
    },
    /// Launch `launched` on `agent_id`; report `errors` as `TASK_ERROR`; give `unused` back.
    Launch {
        agent_id: AgentId,
        launched: Vec<TaskInfo>,
        errors: Vec<(TaskId, TaskStatusReason, String)>,
        unused: Resources,
    },
}

fn all_tasks(accept: &AcceptOffers) -> impl Iterator<Item = &TaskInfo> {
    accept.operations.iter().flat_map(|op| match op {
        Operation::Launch { tasks } => tasks.iter(),
    })
}

/// Finds the first problem with the offers of an accept, if any.
fn offers_problem(
    book: &OfferBook,
    framework_id: &FrameworkId,
    accept: &AcceptOffers,
) -> Option<String> {
    if &accept.framework_id != framework_id {
        return Some(format!(
            "accept names framework {} but comes from framework {framework_id}",
            accept.framework_id
        ));
    }
    if accept.offer_ids.is_empty() {
        return Some("no offers named".to_string());
    }
    let mut seen: HashSet<&OfferId> = HashSet::new();
    let mut agent: Option<&AgentId> = None;
    for id in &accept.offer_ids {
        if !seen.insert(id) {
            return Some(format!("offer {id} is named more than once"));
        }
        let Some(offer) = book.get(id) else {
            return Some(format!("offer {id} is no longer valid"));
        };
        if &offer.framework_id != framework_id {
            return Some(format!(
                "offer {id} is not an offer to framework {framework_id}"
            ));
        }
        match agent {
            None => agent = Some(&offer.agent_id),
            Some(first) if first != &offer.agent_id => {
                return Some(format!(
                    "offers are from more than one agent ({first} and {})",
                    offer.agent_id
                ));
            }
            Some(_) => {}
        }
    }
    None
}

/// Checks the description of a task, apart from its id and resources use.
fn task_problem(task: &TaskInfo, framework_id: &FrameworkId, agent_id: &AgentId) -> Option<String> {
    let id = &task.task_id;
    if id.as_str().is_empty() {
        return Some("task has an empty id".to_string());
    }
    if &task.agent_id != agent_id {
        return Some(format!(
            "task {id} names agent {} but the offers are from agent {agent_id}",
            task.agent_id
        ));
    }
    match (&task.command, &task.executor) {
        (None, None) => return Some(format!("task {id} has neither a command nor an executor")),
        (Some(_), Some(_)) => return Some(format!("task {id} has both a command and an executor")),
        (Some(command), None) if command.value.trim().is_empty() => {
            return Some(format!("task {id} has an empty command"));
        }
        (None, Some(executor)) => {
            if executor.executor_id.as_str().is_empty() {
                return Some(format!("task {id} has an executor with an empty id"));
            }
            if executor.command.value.trim().is_empty() {
                return Some(format!("task {id} has an executor with an empty command"));
            }
            if &executor.framework_id != framework_id {
                return Some(format!(
                    "task {id} has an executor of framework {}",
                    executor.framework_id
                ));
            }
        }
        (Some(_), None) => {}
    }
    if task.resources.is_empty() {
        return Some(format!("task {id} asks for no resources"));
    }
    None
}

/// Decides what to do with an accept by `framework_id`.
///
/// `known_task` tells whether the master already knows a task id of the framework (running or
/// pending); `running_executor` whether an executor already runs, so that its resources are not
/// asked again. Look-ups, not sets: an accept costs what it names, not what the cluster runs.
/// The offers the decision consumes (all valid named offers, whatever the outcome) are removed
/// from `book`; nothing else changes.
pub fn validate_accept(
    book: &mut OfferBook,
    framework_id: &FrameworkId,
    accept: &AcceptOffers,
    known_task: impl Fn(&TaskId) -> bool,
    running_executor: impl Fn(&(AgentId, ExecutorId)) -> bool,
) -> AcceptDecision {
    if let Some(reason) = offers_problem(book, framework_id, accept) {
        let tasks_lost = all_tasks(accept)
            .map(|task| LostTask {
                task_id: task.task_id.clone(),
                reason: TaskStatusReason::InvalidOffers,
                message: format!("task {} not launched: {reason}", task.task_id),
            })
            .collect();
        // Offers of another framework stay with it; a framework mismatch consumes nothing.
        let mut offers_to_recover = Vec::new();
        if &accept.framework_id == framework_id {
            for id in &accept.offer_ids {
                let ours = book
                    .get(id)
                    .is_some_and(|o| &o.framework_id == framework_id);
                if ours {
                    if let Some(offer) = book.remove_offer(id) {
                        offers_to_recover.push((offer.agent_id, offer.resources));
                    }
                }
            }
        }
        return AcceptDecision::InvalidOffers {
            reason,
            tasks_lost,
            offers_to_recover,
        };
    }

    // All offers are valid, distinct, this framework's and from one agent.
    let mut agent_id: Option<AgentId> = None;
    let mut remaining = Resources::default();
    for id in &accept.offer_ids {
        if let Some(offer) = book.remove_offer(id) {
            agent_id.get_or_insert(offer.agent_id);
            remaining += offer.resources;
        }
    }
    let Some(agent_id) = agent_id else {
        // Unreachable after the checks above; handled without panicking all the same.
        return AcceptDecision::InvalidOffers {
            reason: "no offers named".to_string(),
            tasks_lost: Vec::new(),
            offers_to_recover: Vec::new(),
        };
    };

    let mut launched: Vec<TaskInfo> = Vec::new();
    let mut launched_ids: HashSet<TaskId> = HashSet::new();
    let mut new_executors: HashSet<ExecutorId> = HashSet::new();
    let mut errors = Vec::new();
    for task in all_tasks(accept) {
        let id = &task.task_id;
        if known_task(id) || launched_ids.contains(id) {
            errors.push((
                id.clone(),
                TaskStatusReason::DuplicateTaskId,
                format!("task {id} duplicates the id of a task of this framework"),
            ));
            continue;
        }
        if let Some(problem) = task_problem(task, framework_id, &agent_id) {
            errors.push((id.clone(), TaskStatusReason::InvalidTask, problem));
            continue;
        }
        let mut asked = task.resources.clone();
        let mut starts_executor = None;
        if let Some(executor) = &task.executor {
            let key = (agent_id.clone(), executor.executor_id.clone());
            if !running_executor(&key) && !new_executors.contains(&key.1) {
                asked += executor.resources.clone();
                starts_executor = Some(key.1);
            }
        }
        if !remaining.contains(&asked) {
            errors.push((
                id.clone(),
                TaskStatusReason::InvalidResources,
                format!("task {id} asks {asked} but the offer has {remaining} left"),
            ));
            continue;
        }
        match remaining.checked_sub(&asked) {
            Ok(rest) => remaining = rest,
            Err(e) => {
                errors.push((
                    id.clone(),
                    TaskStatusReason::InvalidResources,
                    format!("task {id} asks {asked} but the offer has {remaining} left: {e}"),
                ));
                continue;
            }
        }
        if let Some(executor_id) = starts_executor {
            new_executors.insert(executor_id);
        }
        launched_ids.insert(id.clone());
        launched.push(task.clone());
    }

    AcceptDecision::Launch {
        agent_id,
        launched,
        errors,
        unused: remaining,
    }
}

#[cfg(test)]
#[path = "validation_tests.rs"]
mod tests;
