//! The master's registry: what must survive a master restart. It holds the master's id (so ids
//! made by a restarted master stay unique) and the admitted agents (id, info, upid).
//!
//! [`Registry`] is the interface the pure [`super::state::MasterState`] writes through;
//! [`MemoryRegistry`] keeps it in memory (tests, a master without a work dir) and
//! [`RedbRegistry`] in an embedded redb database, each write a committed transaction.

use meso::codec;
use meso::process::Upid;
use meso::protocol::{AgentId, AgentInfo};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One admitted agent as the registry keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredAgent {
    pub info: AgentInfo,
    pub upid: Upid,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry database: {0}")]
    Db(#[from] redb::Error),
    #[error("registry record: {0}")]
    Codec(#[from] codec::CodecError),
}

impl From<redb::DatabaseError> for RegistryError {
    fn from(e: redb::DatabaseError) -> Self {
        RegistryError::Db(e.into())
    }
}
impl From<redb::TransactionError> for RegistryError {
    fn from(e: redb::TransactionError) -> Self {
        RegistryError::Db(e.into())
    }
}
impl From<redb::TableError> for RegistryError {
    fn from(e: redb::TableError) -> Self {
        RegistryError::Db(e.into())
    }
}
impl From<redb::StorageError> for RegistryError {
    fn from(e: redb::StorageError) -> Self {
        RegistryError::Db(e.into())
    }
}
impl From<redb::CommitError> for RegistryError {
    fn from(e: redb::CommitError) -> Self {
        RegistryError::Db(e.into())
    }
}

/// Where the master records what it must not forget. Writes return once durable.
pub trait Registry: Send {
    /// The master id recorded by an earlier run, if any.
    fn master_id(&self) -> Option<String>;
    fn set_master_id(&mut self, id: &str) -> Result<(), RegistryError>;
    /// Starts a new run of the master: returns its number (1 for the first run).
    fn next_run(&mut self) -> Result<u64, RegistryError>;
    /// The admitted agents.
    fn agents(&self) -> BTreeMap<AgentId, RegisteredAgent>;
    /// Records (or updates) an admitted agent.
    fn admit(&mut self, id: &AgentId, agent: &RegisteredAgent) -> Result<(), RegistryError>;
    /// Forgets an agent (it left for good).
    fn remove(&mut self, id: &AgentId) -> Result<(), RegistryError>;
}

/// A registry in memory: forgotten with the process.
#[derive(Debug, Default, Clone)]
pub struct MemoryRegistry {
    pub master_id: Option<String>,
    pub runs: u64,
    pub agents: BTreeMap<AgentId, RegisteredAgent>,
}

impl Registry for MemoryRegistry {
    fn master_id(&self) -> Option<String> {
        self.master_id.clone()
    }

    fn set_master_id(&mut self, id: &str) -> Result<(), RegistryError> {
        self.master_id = Some(id.to_string());
        Ok(())
    }

    fn next_run(&mut self) -> Result<u64, RegistryError> {
        self.runs += 1;
        Ok(self.runs)
    }

    fn agents(&self) -> BTreeMap<AgentId, RegisteredAgent> {
        self.agents.clone()
    }

    fn admit(&mut self, id: &AgentId, agent: &RegisteredAgent) -> Result<(), RegistryError> {
        self.agents.insert(id.clone(), agent.clone());
        Ok(())
    }

    fn remove(&mut self, id: &AgentId) -> Result<(), RegistryError> {
        self.agents.remove(id);
        Ok(())
    }
}

const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
const AGENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("agents");

/// A registry in `<dir>/registry.redb`.
pub struct RedbRegistry {
    db: redb::Database,
    /// What the database holds, read once at open and kept in step with every write.
    cache: MemoryRegistry,
}

impl RedbRegistry {
    /// Opens (or creates) the registry in `dir`, reading what an earlier run left there.
    pub fn open(dir: &Path) -> Result<RedbRegistry, RegistryError> {
        std::fs::create_dir_all(dir).map_err(|e| RegistryError::Db(e.into()))?;
        let db = redb::Database::create(dir.join("registry.redb"))?;
        let txn = db.begin_write()?;
        {
            txn.open_table(META)?;
            txn.open_table(AGENTS)?;
        }
        txn.commit()?;
        let mut cache = MemoryRegistry::default();
        let read = db.begin_read()?;
        let meta = read.open_table(META)?;
        cache.master_id = meta.get("master_id")?.map(|v| v.value().to_string());
        cache.runs = meta
            .get("runs")?
            .and_then(|v| v.value().parse().ok())
            .unwrap_or(0);
        let agents = read.open_table(AGENTS)?;
        for row in agents.iter()? {
            let (key, value) = row?;
            match codec::decode::<RegisteredAgent>(value.value()) {
                Ok(agent) => {
                    cache.agents.insert(AgentId::new(key.value()), agent);
                }
                Err(e) => tracing::warn!("registry: skipping agent {}: {e}", key.value()),
            }
        }
        Ok(RedbRegistry { db, cache })
    }
}

impl Registry for RedbRegistry {
    fn master_id(&self) -> Option<String> {
        self.cache.master_id.clone()
    }

    fn set_master_id(&mut self, id: &str) -> Result<(), RegistryError> {
        let txn = self.db.begin_write()?;
        txn.open_table(META)?.insert("master_id", id)?;
        txn.commit()?;
        self.cache.master_id = Some(id.to_string());
        Ok(())
    }

    fn next_run(&mut self) -> Result<u64, RegistryError> {
        let run = self.cache.runs + 1;
        let txn = self.db.begin_write()?;
        txn.open_table(META)?
            .insert("runs", run.to_string().as_str())?;
        txn.commit()?;
        self.cache.runs = run;
        Ok(run)
    }

    fn agents(&self) -> BTreeMap<AgentId, RegisteredAgent> {
        self.cache.agents.clone()
    }

    fn admit(&mut self, id: &AgentId, agent: &RegisteredAgent) -> Result<(), RegistryError> {
        if self.cache.agents.get(id) == Some(agent) {
            return Ok(());
        }
        let bytes = codec::encode(agent)?;
        let txn = self.db.begin_write()?;
        txn.open_table(AGENTS)?
            .insert(id.as_str(), bytes.as_slice())?;
        txn.commit()?;
        self.cache.agents.insert(id.clone(), agent.clone());
        Ok(())
    }

    fn remove(&mut self, id: &AgentId) -> Result<(), RegistryError> {
        let txn = self.db.begin_write()?;
        txn.open_table(AGENTS)?.remove(id.as_str())?;
        txn.commit()?;
        self.cache.agents.remove(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meso::resources::Resources;

    fn agent(port: u16) -> RegisteredAgent {
        RegisteredAgent {
            info: AgentInfo {
                id: Some(AgentId::new("m-A1")),
                hostname: "h".into(),
                resources: Resources::parse("cpus:2;mem:512").unwrap(),
                attributes: vec![("rack".into(), "r1".into())],
                port,
            },
            upid: Upid::new("agent", format!("127.0.0.1:{port}").parse().unwrap()).unwrap(),
        }
    }

    #[test]
    fn redb_registry_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut r = RedbRegistry::open(dir.path()).unwrap();
            assert_eq!(r.master_id(), None);
            r.set_master_id("m").unwrap();
            assert_eq!(r.next_run().unwrap(), 1);
            r.admit(&AgentId::new("m-A1"), &agent(1)).unwrap();
            r.admit(&AgentId::new("m-A2"), &agent(2)).unwrap();
            r.remove(&AgentId::new("m-A2")).unwrap();
        }
        let mut r = RedbRegistry::open(dir.path()).unwrap();
        assert_eq!(r.master_id().as_deref(), Some("m"));
        assert_eq!(r.next_run().unwrap(), 2);
        let agents = r.agents();
        assert_eq!(agents.len(), 1);
        assert_eq!(agents[&AgentId::new("m-A1")], agent(1));
    }
}
