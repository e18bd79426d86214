//! The Mesos text form: `name[(role)]:value` parts separated by `;`, where a value is a scalar
//! (`24`, `0.5`), ranges (`[21000-24000,30000-34000]`) or a set (`{a,b,c}`).

use super::{Ranges, Resource, Resources, ResourcesError, Scalar, Value};
use std::collections::BTreeSet;

fn err(part: &str, reason: impl Into<String>) -> ResourcesError {
    ResourcesError::Parse {
        part: part.to_string(),
        reason: reason.into(),
    }
}

const RESERVED_CHARS: &[char] = &[':', ';', '(', ')', '[', ']', '{', '}', ','];

fn valid_token(s: &str) -> bool {
    !s.is_empty() && !s.contains(RESERVED_CHARS) && !s.contains(char::is_whitespace)
}

/// Parses a whole resource string. An empty string is empty resources; empty parts between `;`
/// are skipped like Mesos' tokenizer does.
pub(super) fn parse_resources(text: &str) -> Result<Resources, ResourcesError> {
    let mut out = Resources::default();
    for raw in text.split(';') {
        let part = raw.trim();
        if part.is_empty() {
            continue;
        }
        let resource = parse_part(part)?;
        out.try_insert(resource)
            .map_err(|e| err(part, e.to_string()))?;
    }
    Ok(out)
}

/// Parses one `name[(role)]:value` part. A zero scalar or empty ranges/set parse fine and are
/// dropped when added to `Resources`.
pub(super) fn parse_part(part: &str) -> Result<Resource, ResourcesError> {
    let Some((key, value)) = part.split_once(':') else {
        return Err(err(part, "missing `:` between name and value"));
    };
    let (name, role) = parse_key(part, key.trim())?;
    let value = parse_value(part, value.trim())?;
    Ok(Resource { name, role, value })
}

fn parse_key(part: &str, key: &str) -> Result<(String, Option<String>), ResourcesError> {
    let opens = key.matches('(').count();
    let closes = key.matches(')').count();
    if opens != closes || opens > 1 {
        return Err(err(part, "unbalanced parentheses around the role"));
    }
    let (name, role) = if opens == 1 {
        let open = key.find('(').unwrap_or(0);
        let close = key.find(')').unwrap_or(0);
        if close < open || close != key.len() - 1 {
            return Err(err(part, "unbalanced parentheses around the role"));
        }
        let role = key[open + 1..close].trim();
        if !valid_token(role) && role != "*" {
            return Err(err(part, "empty or invalid role"));
        }
        (key[..open].trim(), Some(role))
    } else {
        (key, None)
    };
    if name.is_empty() {
        return Err(err(part, "empty resource name"));
    }
    if !valid_token(name) {
        return Err(err(part, "invalid resource name"));
    }
    let role = role.filter(|r| *r != "*").map(str::to_string);
    Ok((name.to_string(), role))
}

fn parse_value(part: &str, value: &str) -> Result<Value, ResourcesError> {
    let opens_sq = value.matches('[').count();
    let closes_sq = value.matches(']').count();
    let opens_br = value.matches('{').count();
    let closes_br = value.matches('}').count();
    if opens_sq != closes_sq || opens_br != closes_br || value.contains(['(', ')']) {
        return Err(err(part, "unbalanced brackets"));
    }
    if opens_sq > 0 {
        if opens_sq != 1 || opens_br != 0 || !value.starts_with('[') || !value.ends_with(']') {
            return Err(err(part, "unbalanced brackets"));
        }
        return parse_ranges(part, &value[1..value.len() - 1]).map(Value::Ranges);
    }
    if opens_br > 0 {
        if opens_br != 1 || !value.starts_with('{') || !value.ends_with('}') {
            return Err(err(part, "unbalanced braces"));
        }
        return parse_set(part, &value[1..value.len() - 1]).map(Value::Set);
    }
    Scalar::parse_text(value)
        .map(Value::Scalar)
        .map_err(|e| err(part, e.reason()))
}

fn parse_number(part: &str, text: &str) -> Result<u64, ResourcesError> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(
            part,
            format!("range bound `{text}` is not a non-negative integer"),
        ));
    }
    text.parse::<u64>()
        .map_err(|_| err(part, format!("range bound `{text}` is too large")))
}

fn parse_ranges(part: &str, inner: &str) -> Result<Ranges, ResourcesError> {
    let inner = inner.trim();
    let mut pairs = Vec::new();
    if inner.is_empty() {
        return Ok(Ranges::default());
    }
    for item in inner.split(',') {
        let item = item.trim();
        let (b, e) = match item.split_once('-') {
            Some((b, e)) => (parse_number(part, b)?, parse_number(part, e)?),
            None => {
                let v = parse_number(part, item)?;
                (v, v)
            }
        };
        if b > e {
            return Err(err(part, format!("range `{item}` begins after it ends")));
        }
        pairs.push((b, e));
    }
    Ok(Ranges::new(pairs))
}

fn parse_set(part: &str, inner: &str) -> Result<BTreeSet<String>, ResourcesError> {
    let inner = inner.trim();
    let mut set = BTreeSet::new();
    if inner.is_empty() {
        return Ok(set);
    }
    for item in inner.split(',') {
        let item = item.trim();
        if !valid_token(item) {
            return Err(err(part, format!("set item `{item}` is empty or invalid")));
        }
        if !set.insert(item.to_string()) {
            return Err(err(part, format!("duplicate set item `{item}`")));
        }
    }
    Ok(set)
}
