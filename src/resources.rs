//! Resources in the Mesos text form: `cpus:4;mem:4096;disk:10000;ports:[31000-32000]`, sets `{a,b}`,
//! reserved roles `cpus(analytics):2`. Scalars are fixed-point with three decimals.
//!
//! A [`Resources`] holds at most one entry per (name, role), kept sorted so that equal bags compare
//! equal. Role `*` is the unreserved role, stored as `role: None`, as in Mesos. Entries whose value
//! becomes zero or empty are removed. Scalars are non-negative: subtraction that would go below zero
//! is refused ([`Resources::checked_sub`]).

mod parse;
mod ranges;
mod scalar;
#[cfg(test)]
mod tests;

pub use ranges::{InvertedRange, Ranges};
pub use scalar::{NegativeScalar, Scalar};

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::ops::{Add, AddAssign};
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    Scalar(Scalar),
    Ranges(Ranges),
    Set(BTreeSet<String>),
}

impl Value {
    /// Zero (or negative) scalar, empty ranges, empty set.
    pub fn is_empty(&self) -> bool {
        match self {
            Value::Scalar(s) => !s.is_positive(),
            Value::Ranges(r) => r.is_empty(),
            Value::Set(s) => s.is_empty(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::Ranges(_) => "ranges",
            Value::Set(_) => "set",
        }
    }

    /// Sum of two values of the same kind; `None` when the kinds differ or a scalar overflows.
    fn checked_add(&self, other: &Value) -> Option<Value> {
        match (self, other) {
            (Value::Scalar(a), Value::Scalar(b)) => a.checked_add(*b).map(Value::Scalar),
            (Value::Ranges(a), Value::Ranges(b)) => Some(Value::Ranges(a.add(b))),
            (Value::Set(a), Value::Set(b)) => Some(Value::Set(a.union(b).cloned().collect())),
            _ => None,
        }
    }

    /// True when `other` is covered by `self`. Empty values are covered by anything.
    fn contains(&self, other: &Value) -> bool {
        if other.is_empty() {
            return true;
        }
        match (self, other) {
            (Value::Scalar(a), Value::Scalar(b)) => a >= b,
            (Value::Ranges(a), Value::Ranges(b)) => a.contains(b),
            (Value::Set(a), Value::Set(b)) => a.is_superset(b),
            _ => false,
        }
    }

    /// `self - other`, assuming `self.contains(other)`.
    fn minus(&self, other: &Value) -> Value {
        match (self, other) {
            (Value::Scalar(a), Value::Scalar(b)) => Value::Scalar(*a - *b),
            (Value::Ranges(a), Value::Ranges(b)) => Value::Ranges(a.subtract(b)),
            (Value::Set(a), Value::Set(b)) => Value::Set(a.difference(b).cloned().collect()),
            _ => self.clone(),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Scalar(s) => write!(f, "{s}"),
            Value::Ranges(r) => write!(f, "{r}"),
            Value::Set(items) => {
                f.write_str("{")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(item)?;
                }
                f.write_str("}")
            }
        }
    }
}

/// One named resource, unreserved (`role == None`) or reserved for a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub name: String,
    pub role: Option<String>,
    pub value: Value,
}

impl Resource {
    pub fn scalar(name: &str, value: Scalar) -> Resource {
        Resource {
            name: name.to_string(),
            role: None,
            value: Value::Scalar(value),
        }
    }

    pub fn ranges(name: &str, value: Ranges) -> Resource {
        Resource {
            name: name.to_string(),
            role: None,
            value: Value::Ranges(value),
        }
    }

    pub fn set<I: IntoIterator<Item = S>, S: Into<String>>(name: &str, items: I) -> Resource {
        Resource {
            name: name.to_string(),
            role: None,
            value: Value::Set(items.into_iter().map(Into::into).collect()),
        }
    }

    /// The same resource reserved for `role` (`*` means unreserved).
    pub fn reserved_for(mut self, role: &str) -> Resource {
        self.role = Some(role.to_string());
        self.normalize_role();
        self
    }

    /// The role, with `*` and the empty role read as unreserved.
    pub fn role(&self) -> Option<&str> {
        self.role.as_deref().filter(|r| !r.is_empty() && *r != "*")
    }

    fn normalize_role(&mut self) {
        if self.role().is_none() {
            self.role = None;
        }
    }

    fn key(&self) -> (&str, Option<&str>) {
        (&self.name, self.role())
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.role() {
            Some(role) => write!(f, "{}({}):{}", self.name, role, self.value),
            None => write!(f, "{}:{}", self.name, self.value),
        }
    }
}

/// A bag of resources, at most one entry per (name, role).
///
/// Decoding checks the invariants (a peer may send anything): a payload with two entries of one
/// name and role, an empty name, or an empty value (zero scalar, empty ranges or set) fails to
/// decode; entries are put in order. On the wire it is the plain list of entries.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "Vec<Resource>")]
pub struct Resources {
    items: Vec<Resource>,
}

impl TryFrom<Vec<Resource>> for Resources {
    type Error = ResourcesError;

    fn try_from(items: Vec<Resource>) -> Result<Resources, ResourcesError> {
        let mut out = Resources::new();
        for mut r in items {
            r.normalize_role();
            let invalid = |reason: &str| ResourcesError::Parse {
                part: r.to_string(),
                reason: reason.to_string(),
            };
            if r.name.is_empty() {
                return Err(invalid("no name"));
            }
            if r.value.is_empty() {
                return Err(invalid("an empty value"));
            }
            if out.position(&r.name, r.role()).is_some() {
                return Err(invalid("named twice"));
            }
            out.items.push(r);
        }
        out.sort();
        Ok(out)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourcesError {
    /// A part of a resource string is malformed; `part` is the offending text.
    #[error("invalid resource `{part}`: {reason}")]
    Parse { part: String, reason: String },
    /// The same name and role carry values of different kinds.
    #[error("resource `{resource}` is a {incoming}, but `{name}` is already a {existing}")]
    TypeMismatch {
        name: String,
        resource: String,
        existing: &'static str,
        incoming: &'static str,
    },
    /// A scalar sum does not fit the fixed-point representation.
    #[error("resource `{resource}` overflows when added")]
    Overflow { resource: String },
    /// Subtraction of resources that are not all present.
    #[error("`{wanted}` is not contained in `{available}`")]
    NotContained { wanted: String, available: String },
}

impl Resources {
    pub fn new() -> Resources {
        Resources::default()
    }

    /// Parses `cpus:24;mem:24576;ports:[21000-24000];bugs(debug_role):{a,b,c}`. Same name and role
    /// twice are added; a zero scalar or empty ranges/set is accepted and left out.
    pub fn parse(text: &str) -> Result<Resources, ResourcesError> {
        parse::parse_resources(text)
    }

    /// Unreserved `cpus` and `mem`.
    pub fn from_scalars(cpus: Scalar, mem: Scalar) -> Resources {
        Resources::new()
            .with(Resource::scalar("cpus", cpus))
            .with(Resource::scalar("mem", mem))
    }

    /// Builder form of `+`: adds one resource (dropped if its kind clashes with an entry).
    pub fn with(mut self, resource: Resource) -> Resources {
        self.insert_lossy(resource);
        self
    }

    fn position(&self, name: &str, role: Option<&str>) -> Option<usize> {
        self.items.iter().position(|r| r.key() == (name, role))
    }

    fn sort(&mut self) {
        self.items.sort_by(|a, b| {
            a.key()
                .cmp(&b.key())
                .then_with(|| a.value.kind().cmp(b.value.kind()))
        });
    }

    /// Adds one resource; on a kind clash or overflow returns an error and changes nothing.
    pub fn try_insert(&mut self, mut resource: Resource) -> Result<(), ResourcesError> {
        resource.normalize_role();
        if resource.value.is_empty() {
            return Ok(());
        }
        match self.position(&resource.name, resource.role()) {
            None => {
                self.items.push(resource);
                self.sort();
                Ok(())
            }
            Some(i) => {
                let existing = &self.items[i];
                if existing.value.kind() != resource.value.kind() {
                    return Err(ResourcesError::TypeMismatch {
                        name: resource.name.clone(),
                        resource: resource.to_string(),
                        existing: existing.value.kind(),
                        incoming: resource.value.kind(),
                    });
                }
                let sum = existing.value.checked_add(&resource.value).ok_or_else(|| {
                    ResourcesError::Overflow {
                        resource: resource.to_string(),
                    }
                })?;
                self.items[i].value = sum;
                Ok(())
            }
        }
    }

    /// Adds one resource, saturating scalars on overflow and dropping it on a kind clash.
    fn insert_lossy(&mut self, resource: Resource) {
        if let Err(ResourcesError::Overflow { .. }) = self.try_insert(resource.clone()) {
            if let Some(i) = self.position(&resource.name, resource.role()) {
                self.items[i].value = Value::Scalar(Scalar::MAX);
            }
        }
    }

    /// Sum; fails (nothing built) when a name and role carry different kinds or a scalar overflows.
    pub fn checked_add(&self, other: &Resources) -> Result<Resources, ResourcesError> {
        let mut out = self.clone();
        for r in &other.items {
            out.try_insert(r.clone())?;
        }
        Ok(out)
    }

    /// True when every entry of `other` is covered by the entry of the same name and role here.
    pub fn contains(&self, other: &Resources) -> bool {
        other.items.iter().all(|r| {
            r.value.is_empty()
                || self
                    .position(&r.name, r.role())
                    .is_some_and(|i| self.items[i].value.contains(&r.value))
        })
    }

    /// `self - other`; an error (and `self` untouched) unless `self.contains(other)`.
    pub fn checked_sub(&self, other: &Resources) -> Result<Resources, ResourcesError> {
        if !self.contains(other) {
            return Err(ResourcesError::NotContained {
                wanted: other.to_string(),
                available: self.to_string(),
            });
        }
        let mut out = self.clone();
        for r in other.items.iter().filter(|r| !r.value.is_empty()) {
            if let Some(i) = out.position(&r.name, r.role()) {
                out.items[i].value = out.items[i].value.minus(&r.value);
            }
        }
        out.items.retain(|r| !r.value.is_empty());
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.items.iter().all(|r| r.value.is_empty())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Resource> {
        self.items.iter()
    }

    /// Sum of the scalar `name` over the unreserved part and all roles.
    pub fn scalar(&self, name: &str) -> Scalar {
        self.items
            .iter()
            .filter(|r| r.name == name)
            .filter_map(|r| match r.value {
                Value::Scalar(s) => Some(s),
                _ => None,
            })
            .sum()
    }

    pub fn cpus(&self) -> Scalar {
        self.scalar("cpus")
    }

    pub fn mem(&self) -> Scalar {
        self.scalar("mem")
    }

    pub fn disk(&self) -> Scalar {
        self.scalar("disk")
    }

    /// Union of the ranges named `name` over all roles.
    pub fn ranges(&self, name: &str) -> Ranges {
        self.items
            .iter()
            .filter(|r| r.name == name)
            .fold(Ranges::default(), |acc, r| match &r.value {
                Value::Ranges(x) => acc.add(x),
                _ => acc,
            })
    }

    pub fn ports(&self) -> Ranges {
        self.ranges("ports")
    }

    /// Union of the sets named `name` over all roles.
    pub fn set(&self, name: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for r in self.items.iter().filter(|r| r.name == name) {
            if let Value::Set(s) = &r.value {
                out.extend(s.iter().cloned());
            }
        }
        out
    }

    /// The unreserved entries (role `*`).
    pub fn unreserved(&self) -> Resources {
        self.filter(|r| r.role().is_none())
    }

    /// The entries reserved for `role`; `*` gives the unreserved entries.
    pub fn reserved(&self, role: &str) -> Resources {
        if role == "*" || role.is_empty() {
            return self.unreserved();
        }
        self.filter(|r| r.role() == Some(role))
    }

    pub fn filter<F: Fn(&Resource) -> bool>(&self, keep: F) -> Resources {
        Resources {
            items: self.items.iter().filter(|r| keep(r)).cloned().collect(),
        }
    }

    /// Names carrying scalar values, sorted and distinct.
    pub fn scalar_names(&self) -> Vec<String> {
        let names: BTreeSet<&str> = self
            .items
            .iter()
            .filter(|r| matches!(r.value, Value::Scalar(_)))
            .map(|r| r.name.as_str())
            .collect();
        names.into_iter().map(str::to_string).collect()
    }
}

impl FromStr for Resources {
    type Err = ResourcesError;
    fn from_str(s: &str) -> Result<Resources, ResourcesError> {
        Resources::parse(s)
    }
}

/// Parts joined by `;`, unreserved entries without a role; parses back to an equal value.
impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for r in self.items.iter().filter(|r| !r.value.is_empty()) {
            if !first {
                f.write_str(";")?;
            }
            first = false;
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// Sum. Scalars saturate instead of overflowing; an entry of `rhs` whose kind clashes with an
/// entry of `self` (same name and role) is dropped. Use [`Resources::checked_add`] to see either.
impl Add for Resources {
    type Output = Resources;
    fn add(mut self, rhs: Resources) -> Resources {
        self += rhs;
        self
    }
}

impl Add<&Resources> for &Resources {
    type Output = Resources;
    fn add(self, rhs: &Resources) -> Resources {
        let mut out = self.clone();
        out += rhs.clone();
        out
    }
}

impl AddAssign for Resources {
    fn add_assign(&mut self, rhs: Resources) {
        for r in rhs.items {
            self.insert_lossy(r);
        }
    }
}

impl AddAssign<&Resources> for Resources {
    fn add_assign(&mut self, rhs: &Resources) {
        *self += rhs.clone();
    }
}

impl FromIterator<Resource> for Resources {
    fn from_iter<I: IntoIterator<Item = Resource>>(iter: I) -> Resources {
        let mut out = Resources::new();
        for r in iter {
            out.insert_lossy(r);
        }
        out
    }
}
