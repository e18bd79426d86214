//! Inclusive integer ranges such as `ports:[21000-24000,30000-34000]`, kept sorted and merged the
//! way Mesos coalesces `Value::Ranges`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Inclusive port-style ranges, kept sorted and merged (overlapping and adjacent ranges joined).
///
/// The field is public for construction in tests and pattern matching; every operation accepts
/// non-canonical input and returns canonical output. Pairs with `begin > end` are ignored.
///
/// Decoding refuses a pair with `begin > end` and puts the rest in canonical form (sorted,
/// overlapping and adjacent pairs merged); on the wire it is the plain list of pairs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "Vec<(u64, u64)>")]
pub struct Ranges(pub Vec<(u64, u64)>);

/// A range from the wire whose begin is past its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("range [{0}-{1}] begins after it ends")]
pub struct InvertedRange(pub u64, pub u64);

impl TryFrom<Vec<(u64, u64)>> for Ranges {
    type Error = InvertedRange;

    fn try_from(pairs: Vec<(u64, u64)>) -> Result<Ranges, InvertedRange> {
        if let Some(&(b, e)) = pairs.iter().find(|(b, e)| b > e) {
            return Err(InvertedRange(b, e));
        }
        Ok(Ranges::new(pairs))
    }
}

impl Ranges {
    /// Builds canonical ranges from any list of inclusive pairs.
    pub fn new<I: IntoIterator<Item = (u64, u64)>>(pairs: I) -> Ranges {
        let mut v: Vec<(u64, u64)> = pairs.into_iter().filter(|(b, e)| b <= e).collect();
        v.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
        for (b, e) in v {
            match out.last_mut() {
                // Overlapping or adjacent (`last.1 + 1 == b`) ranges merge.
                Some(last) if b <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => out.push((b, e)),
            }
        }
        Ranges(out)
    }

    /// A single inclusive range; empty when `begin > end`.
    pub fn single(begin: u64, end: u64) -> Ranges {
        Ranges::new([(begin, end)])
    }

    fn is_canonical(&self) -> bool {
        self.0.iter().all(|(b, e)| b <= e)
            && self
                .0
                .windows(2)
                .all(|w| w[0].1 < u64::MAX && w[0].1 + 1 < w[1].0)
    }

    fn canonical(&self) -> std::borrow::Cow<'_, Ranges> {
        if self.is_canonical() {
            std::borrow::Cow::Borrowed(self)
        } else {
            std::borrow::Cow::Owned(Ranges::new(self.0.iter().copied()))
        }
    }

    pub fn pairs(&self) -> &[(u64, u64)] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|(b, e)| b > e)
    }

    /// Number of values covered, saturating at `u64::MAX`.
    pub fn len(&self) -> u64 {
        let total: u128 = self
            .canonical()
            .0
            .iter()
            .map(|&(b, e)| u128::from(e - b) + 1)
            .sum();
        u64::try_from(total).unwrap_or(u64::MAX)
    }

    /// Union.
    pub fn add(&self, other: &Ranges) -> Ranges {
        Ranges::new(self.0.iter().chain(other.0.iter()).copied())
    }

    /// Set difference: the values of `self` not in `other`; ranges split as needed.
    pub fn subtract(&self, other: &Ranges) -> Ranges {
        let mut out = Vec::new();
        let other = other.canonical();
        for &(b, e) in &self.canonical().0 {
            let mut start = b;
            let mut done = false;
            for &(ob, oe) in &other.0 {
                if oe < start || ob > e {
                    continue;
                }
                if ob > start {
                    out.push((start, ob - 1));
                }
                if oe >= e {
                    done = true;
                    break;
                }
                start = oe + 1;
            }
            if !done {
                out.push((start, e));
            }
        }
        Ranges::new(out)
    }

    /// Values in both.
    pub fn intersection(&self, other: &Ranges) -> Ranges {
        self.subtract(&self.subtract(other))
    }

    /// True when every value of `other` is in `self`.
    pub fn contains(&self, other: &Ranges) -> bool {
        let me = self.canonical();
        other
            .canonical()
            .0
            .iter()
            .all(|&(b, e)| me.0.iter().any(|&(mb, me)| mb <= b && e <= me))
    }

    pub fn contains_value(&self, value: u64) -> bool {
        self.0.iter().any(|&(b, e)| b <= value && value <= e)
    }

    /// True when some value is in both.
    pub fn overlaps(&self, other: &Ranges) -> bool {
        self.0.iter().any(|&(b, e)| {
            b <= e
                && other
                    .0
                    .iter()
                    .any(|&(ob, oe)| ob <= oe && ob <= e && b <= oe)
        })
    }
}

/// `[21000-24000,30000-34000]`; empty ranges print `[]`.
impl fmt::Display for Ranges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, (b, e)) in self.canonical().0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{b}-{e}")?;
        }
        f.write_str("]")
    }
}
