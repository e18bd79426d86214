//! Decline filters ("refused resources" in Mesos): after a framework declines resources of an agent
//! with `refuse_seconds`, the allocator does not offer it resources of that agent which are
//! contained in the declined set until the filter expires.

use crate::resources::Resources;
use serde::{Deserialize, Serialize};

/// The longest filter: Mesos caps `refuse_seconds` that do not fit its clock; we cap at 365 days.
pub const MAX_REFUSE_MS: u64 = 365 * 24 * 60 * 60 * 1000;

/// Converts `refuse_seconds` as a scheduler sends it into a filter length in milliseconds.
///
/// As in Mesos: `0` means no filter (`None`); a negative value or NaN means the default; a value
/// too large (including infinity) is capped at [`MAX_REFUSE_MS`], never wrapped. Positive values
/// shorter than a millisecond round up to one millisecond, so they still set a filter.
pub fn refuse_ms(refuse_seconds: f64, default_ms: u64) -> Option<u64> {
    if refuse_seconds.is_nan() || refuse_seconds < 0.0 {
        return Some(default_ms.min(MAX_REFUSE_MS)).filter(|&ms| ms > 0);
    }
    if refuse_seconds == 0.0 {
        return None;
    }
    let ms = (refuse_seconds * 1000.0).ceil();
    if !ms.is_finite() || ms >= MAX_REFUSE_MS as f64 {
        return Some(MAX_REFUSE_MS);
    }
    Some((ms as u64).max(1))
}

/// One refused set of an agent's resources, active while `now_ms < expires_at_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub resources: Resources,
    pub expires_at_ms: u64,
}

impl Filter {
    pub fn is_active(&self, now_ms: u64) -> bool {
        now_ms < self.expires_at_ms
    }

    /// Mesos' `RefusedOfferFilter`: filters an offer whose resources are all in the refused set.
    pub fn refuses(&self, offer: &Resources, now_ms: u64) -> bool {
        self.is_active(now_ms) && self.resources.contains(offer)
    }
}
