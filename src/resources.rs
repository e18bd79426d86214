//! Resources in the Mesos text form: `cpus:4;mem:4096;disk:10000;ports:[31000-32000]`, sets `{a,b}`,
//! reserved roles `cpus(analytics):2`. Scalars are fixed-point with three decimals.
//!
//! (API outline; the implementation lands with the resources module.)

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A fixed-point scalar in thousandths: `Scalar(1500)` is 1.5.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Scalar(pub i64);

/// Inclusive port-style ranges, kept sorted and merged.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Ranges(pub Vec<(u64, u64)>);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    Scalar(Scalar),
    Ranges(Ranges),
    Set(BTreeSet<String>),
}

/// One named resource, unreserved (`role == None`) or reserved for a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub name: String,
    pub role: Option<String>,
    pub value: Value,
}

/// A bag of resources, at most one entry per (name, role).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Resources {
    items: Vec<Resource>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResourcesError(pub String);

impl Resources {
    pub fn parse(_text: &str) -> Result<Resources, ResourcesError> {
        todo!()
    }
}
