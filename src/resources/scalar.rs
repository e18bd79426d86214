//! Fixed-point scalars with three decimals, as Mesos stores `cpus`, `mem` and `disk` since 1.0
//! (MESOS-4687): values are kept in thousandths so that repeated addition and subtraction is exact.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};

/// A fixed-point scalar in thousandths: `Scalar(1500)` is 1.5.
///
/// Arithmetic saturates at the ends of `i64` instead of wrapping or panicking.
///
/// Decoding refuses a negative value (resources are never negative); on the wire it is the
/// plain `i64` of thousandths.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(try_from = "i64")]
pub struct Scalar(pub i64);

/// A negative scalar from the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a scalar resource cannot be negative ({0} thousandths)")]
pub struct NegativeScalar(pub i64);

impl TryFrom<i64> for Scalar {
    type Error = NegativeScalar;

    fn try_from(thousandths: i64) -> Result<Scalar, NegativeScalar> {
        if thousandths < 0 {
            return Err(NegativeScalar(thousandths));
        }
        Ok(Scalar(thousandths))
    }
}

/// Why a scalar text was rejected (the caller adds the offending text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScalarTextError {
    Empty,
    Negative,
    NotANumber,
    Infinite,
    TooLarge,
    RoundsToZero,
}

impl ScalarTextError {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            ScalarTextError::Empty => "empty scalar value",
            ScalarTextError::Negative => "scalar value is negative",
            ScalarTextError::NotANumber => "scalar value is not a number",
            ScalarTextError::Infinite => "scalar value is infinite",
            ScalarTextError::TooLarge => "scalar value is too large",
            ScalarTextError::RoundsToZero => "scalar value rounds to zero at three decimals",
        }
    }
}

impl Scalar {
    pub const ZERO: Scalar = Scalar(0);
    /// Largest value whose whole part fits the text form.
    pub const MAX: Scalar = Scalar(i64::MAX);

    pub const fn from_millis(millis: i64) -> Scalar {
        Scalar(millis)
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    /// Whole units, e.g. `Scalar::from_units(4)` is 4.0. `None` on overflow.
    pub fn from_units(units: i64) -> Option<Scalar> {
        units.checked_mul(1000).map(Scalar)
    }

    /// Rounds half away from zero to three decimals. `None` for NaN, infinities, negative values
    /// and values beyond the range of the representation.
    pub fn from_f64(value: f64) -> Option<Scalar> {
        if !value.is_finite() || value < 0.0 {
            return None;
        }
        let scaled = (value * 1000.0).round();
        // i64::MAX is not exactly representable; anything at or above 2^63 is out of range.
        if scaled >= 9_223_372_036_854_775_808.0 {
            return None;
        }
        Some(Scalar(scaled as i64))
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    pub fn checked_add(self, other: Scalar) -> Option<Scalar> {
        self.0.checked_add(other.0).map(Scalar)
    }

    pub fn checked_sub(self, other: Scalar) -> Option<Scalar> {
        self.0.checked_sub(other.0).map(Scalar)
    }

    /// Parses the decimal text form exactly: digits with an optional fraction, rounded half up at
    /// the fourth decimal without going through floating point.
    pub(crate) fn parse_text(text: &str) -> Result<Scalar, ScalarTextError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ScalarTextError::Empty);
        }
        let lower = text.to_ascii_lowercase();
        let unsigned = lower.strip_prefix('+').unwrap_or(&lower);
        if unsigned.starts_with('-') {
            return Err(ScalarTextError::Negative);
        }
        if unsigned.contains("nan") {
            return Err(ScalarTextError::NotANumber);
        }
        if unsigned.contains("inf") {
            return Err(ScalarTextError::Infinite);
        }
        let (whole, fraction) = match unsigned.split_once('.') {
            Some((w, f)) => (w, f),
            None => (unsigned, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction)
        {
            return Err(ScalarTextError::NotANumber);
        }
        let mut millis: i64 = 0;
        for b in whole.bytes() {
            millis = millis
                .checked_mul(10)
                .and_then(|m| m.checked_add(i64::from(b - b'0')))
                .ok_or(ScalarTextError::TooLarge)?;
        }
        millis = millis.checked_mul(1000).ok_or(ScalarTextError::TooLarge)?;
        let digits = fraction.as_bytes();
        let mut place = 100;
        for &b in digits.iter().take(3) {
            millis += i64::from(b - b'0') * place;
            place /= 10;
        }
        if digits.get(3).is_some_and(|&b| b >= b'5') {
            millis = millis.checked_add(1).ok_or(ScalarTextError::TooLarge)?;
        }
        let any_nonzero = whole.bytes().chain(fraction.bytes()).any(|b| b != b'0');
        if millis == 0 && any_nonzero {
            return Err(ScalarTextError::RoundsToZero);
        }
        Ok(Scalar(millis))
    }
}

impl Add for Scalar {
    type Output = Scalar;
    fn add(self, rhs: Scalar) -> Scalar {
        Scalar(self.0.saturating_add(rhs.0))
    }
}

impl Sub for Scalar {
    type Output = Scalar;
    fn sub(self, rhs: Scalar) -> Scalar {
        Scalar(self.0.saturating_sub(rhs.0))
    }
}

impl AddAssign for Scalar {
    fn add_assign(&mut self, rhs: Scalar) {
        *self = *self + rhs;
    }
}

impl SubAssign for Scalar {
    fn sub_assign(&mut self, rhs: Scalar) {
        *self = *self - rhs;
    }
}

impl std::iter::Sum for Scalar {
    fn sum<I: Iterator<Item = Scalar>>(iter: I) -> Scalar {
        iter.fold(Scalar::ZERO, |a, b| a + b)
    }
}

/// Minimal decimal form: `1.1`, `0.5`, `2`, `1000001`.
impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = abs / 1000;
        let frac = abs % 1000;
        if frac == 0 {
            write!(f, "{sign}{whole}")
        } else {
            let digits = format!("{frac:03}");
            write!(f, "{sign}{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}
