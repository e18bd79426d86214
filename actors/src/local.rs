//! A whole cluster in one process: a master and N agents on one node (`meso local`, `meso execute
//! --local N`, tests and examples).

use crate::agent::{self, resources_detect, AgentConfig, AgentError};
use crate::master::{self, MasterConfig, MasterError};
use meso::process::{Node, Upid};
use meso::protocol::ShutdownAgent;
use meso::resources::{Ranges, Resource, Resources, ResourcesError, Scalar};
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// How a local cluster is made.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// How many agents (named `agent-1` .. `agent-N`).
    pub agents: usize,
    /// What each agent offers; `None`: the machine's resources, split evenly between the agents,
    /// each with its own slice of the port range.
    pub resources: Option<Resources>,
    /// The port the node listens on when the caller makes the node from this config (`meso local`);
    /// [`LocalCluster::start`] uses the node it is given.
    pub port: u16,
    /// Agent `i` works in `<work_dir>/agent-<i>`, the master in `<work_dir>/master`.
    pub work_dir: PathBuf,
    /// The `meso` binary, run by agents as `<program> executor`.
    pub executor_program: PathBuf,
    pub allocation_interval_ms: u64,
    /// The master's `agent_ping_timeout_ms` and `max_agent_ping_timeouts`.
    pub agent_ping_timeout_ms: u64,
    pub max_agent_ping_timeouts: u32,
}

impl LocalConfig {
    /// Three agents with detected resources, any port, allocation every second.
    pub fn new(work_dir: PathBuf, executor_program: PathBuf) -> LocalConfig {
        LocalConfig {
            agents: 3,
            resources: None,
            port: 0,
            work_dir,
            executor_program,
            allocation_interval_ms: 1000,
            agent_ping_timeout_ms: MasterConfig::default().agent_ping_timeout_ms,
            max_agent_ping_timeouts: MasterConfig::default().max_agent_ping_timeouts,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("a local cluster needs at least one agent")]
    NoAgents,
    #[error("cannot detect this machine's resources: {0}")]
    Detect(#[from] ResourcesError),
    #[error("cannot start the master: {0}")]
    Master(#[from] MasterError),
    #[error("cannot start agent-{index}: {source}")]
    Agent { index: usize, source: AgentError },
    #[error("the thread of agent-{index} stopped before the agent started")]
    AgentThread { index: usize },
}

/// A running local cluster.
#[derive(Debug, Clone)]
pub struct LocalCluster {
    pub master: Upid,
    pub agents: Vec<Upid>,
    pub node: Node,
    /// Told when each agent actor has stopped (taken by [`LocalCluster::shutdown_agents`]).
    stopped: Arc<Mutex<Vec<oneshot::Receiver<()>>>>,
}

impl LocalCluster {
    /// Starts the master and the agents on `node`. Must run inside an actix system.
    pub fn start(node: &Node, config: LocalConfig) -> Result<LocalCluster, LocalError> {
        if config.agents == 0 {
            return Err(LocalError::NoAgents);
        }
        let per_agent = match &config.resources {
            Some(r) => vec![r.clone(); config.agents],
            None => {
                let total = resources_detect::detect_resources_at(&config.work_dir)?;
                split_evenly(&total, config.agents)
            }
        };
        let master = master::start_master(
            node,
            MasterConfig {
                allocation_interval_ms: config.allocation_interval_ms,
                offer_timeout_ms: None,
                work_dir: Some(config.work_dir.join("master")),
                agent_ping_timeout_ms: config.agent_ping_timeout_ms,
                max_agent_ping_timeouts: config.max_agent_ping_timeouts,
                ..MasterConfig::default()
            },
        )?;
        let mut agents = Vec::with_capacity(config.agents);
        let mut stopped = Vec::with_capacity(config.agents);
        for (i, resources) in per_agent.into_iter().enumerate() {
            let index = i + 1;
            let mut agent_config = AgentConfig::new(
                master.clone(),
                config.work_dir.join(format!("agent-{index}")),
                resources,
                config.executor_program.clone(),
            );
            agent_config.name = format!("agent-{index}");
            agent_config.hostname = node.addr().ip().to_string();
            // Each agent on a thread of its own: an agent waits on its disk (checkpoints are
            // synced before updates go out), and agents should not wait in line for each other.
            let arbiter = actix_rt::Arbiter::new();
            let (tx, rx) = std::sync::mpsc::channel();
            let agent_node = node.clone();
            arbiter.spawn_fn(move || {
                let _ = tx.send(agent::start_agent_with_stop(&agent_node, agent_config));
            });
            let (upid, stop) = rx
                .recv()
                .map_err(|_| LocalError::AgentThread { index })?
                .map_err(|source| LocalError::Agent { index, source })?;
            agents.push(upid);
            stopped.push(stop);
        }
        Ok(LocalCluster {
            master,
            agents,
            node: node.clone(),
            stopped: Arc::new(Mutex::new(stopped)),
        })
    }

    /// Shuts the agents down as the master does (`ShutdownAgent`): each kills its executors'
    /// sessions (with its kill grace period) and stops. Returns once every agent has stopped, or
    /// after `limit`. Without this, executors of checkpointing frameworks outlive the cluster,
    /// waiting for their agent to come back (the recovery timeout, 15 minutes by default).
    pub async fn shutdown_agents(&self, limit: Duration) {
        for agent in &self.agents {
            let msg = ShutdownAgent {
                message: "the local cluster is shutting down".into(),
            };
            self.node.send_from(&self.master, agent, msg);
        }
        let stopped = std::mem::take(&mut *self.stopped.lock());
        let all = async {
            for stop in stopped {
                let _ = stop.await;
            }
        };
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!("the agents did not all stop within {limit:?}");
        }
    }
}

/// `total` cut into `n` equal shares: each scalar divided (rounded down to the thousandth), each
/// range set cut into `n` consecutive slices. Sets are given whole to every share.
pub fn split_evenly(total: &Resources, n: usize) -> Vec<Resources> {
    let n = n.max(1);
    let mut shares = vec![Resources::new(); n];
    for resource in total.iter() {
        for (i, share) in shares.iter_mut().enumerate() {
            let value = match &resource.value {
                meso::resources::Value::Scalar(s) => {
                    let part = Scalar::from_millis(s.millis() / n as i64);
                    if !part.is_positive() {
                        continue;
                    }
                    meso::resources::Value::Scalar(part)
                }
                meso::resources::Value::Ranges(r) => {
                    let slice = range_slice(r, i, n);
                    if slice.is_empty() {
                        continue;
                    }
                    meso::resources::Value::Ranges(slice)
                }
                other => other.clone(),
            };
            let piece = Resource {
                name: resource.name.clone(),
                role: resource.role.clone(),
                value,
            };
            *share = std::mem::take(share).with(piece);
        }
    }
    shares
}

/// The `i`-th of `n` consecutive slices of the values in `ranges` (the last takes the remainder).
fn range_slice(ranges: &Ranges, i: usize, n: usize) -> Ranges {
    let values: Vec<u64> = ranges
        .pairs()
        .iter()
        .flat_map(|&(b, e)| b..=e)
        .take(1_000_000)
        .collect();
    let per = values.len() / n;
    if per == 0 {
        return Ranges::new(Vec::new());
    }
    let start = i * per;
    let end = if i + 1 == n {
        values.len()
    } else {
        start + per
    };
    let mut pairs: Vec<(u64, u64)> = Vec::new();
    for &v in &values[start..end] {
        match pairs.last_mut() {
            Some((_, e)) if *e + 1 == v => *e = v,
            _ => pairs.push((v, v)),
        }
    }
    Ranges::new(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detected_resources_are_split_evenly_with_own_port_ranges() {
        let total = Resources::parse("cpus:2;mem:3000;disk:900;ports:[31000-31999]").unwrap();
        let shares = split_evenly(&total, 3);
        assert_eq!(shares.len(), 3);
        for s in &shares {
            assert_eq!(s.cpus(), Scalar::from_millis(666));
            assert_eq!(s.mem(), Scalar::from_millis(1_000_000));
            assert_eq!(s.disk(), Scalar::from_millis(300_000));
        }
        assert_eq!(shares[0].ports(), Ranges::single(31000, 31332));
        assert_eq!(shares[1].ports(), Ranges::single(31333, 31665));
        assert_eq!(shares[2].ports(), Ranges::single(31666, 31999));
        assert!(!shares[0].ports().overlaps(&shares[1].ports()));
    }

    #[test]
    fn one_agent_gets_everything() {
        let total = Resources::parse("cpus:4;mem:100;ports:[1-10,20-30]").unwrap();
        assert_eq!(split_evenly(&total, 1), vec![total]);
    }
}
