//! `Upid`: one actor on one node, written `name@ip:port`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

/// Longest actor name, so that it fits the one-byte length of the frame envelope.
pub const MAX_NAME_BYTES: usize = 255;

/// The address of one actor: its name and the node (`ip:port`) it lives on.
///
/// Cloning is cheap (the name is shared). Prints and parses exactly as `name@ip:port`
/// (`name@[::1]:5050` for IPv6).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Upid {
    name: Arc<str>,
    addr: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpidError {
    #[error("upid `{0}` has no `@` between name and address (expected name@ip:port)")]
    MissingAt(String),
    #[error("upid `{0}` has an empty name")]
    EmptyName(String),
    #[error("upid `{0}` has a name longer than {MAX_NAME_BYTES} bytes")]
    NameTooLong(String),
    #[error("upid `{0}` has a name with `@`, whitespace or a control character")]
    BadName(String),
    #[error("upid `{upid}` has a bad address `{addr}` (expected ip:port)")]
    BadAddress { upid: String, addr: String },
}

fn name_ok(name: &str) -> bool {
    !name
        .chars()
        .any(|c| c == '@' || c.is_whitespace() || c.is_control())
}

impl Upid {
    /// Makes a Upid, checking the name as parsing would.
    pub fn new(name: &str, addr: SocketAddr) -> Result<Upid, UpidError> {
        let shown = || format!("{name}@{addr}");
        if name.is_empty() {
            return Err(UpidError::EmptyName(shown()));
        }
        if name.len() > MAX_NAME_BYTES {
            return Err(UpidError::NameTooLong(shown()));
        }
        if !name_ok(name) {
            return Err(UpidError::BadName(shown()));
        }
        Ok(Upid {
            name: Arc::from(name),
            addr,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn name_arc(&self) -> &Arc<str> {
        &self.name
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The same name on another node.
    pub fn with_addr(&self, addr: SocketAddr) -> Upid {
        Upid {
            name: self.name.clone(),
            addr,
        }
    }
}

impl fmt::Display for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.addr)
    }
}

impl fmt::Debug for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Upid {
    type Err = UpidError;

    fn from_str(s: &str) -> Result<Upid, UpidError> {
        // The name may not hold `@`, so the first `@` splits; an IPv6 address never holds one.
        let (name, addr) = s
            .split_once('@')
            .ok_or_else(|| UpidError::MissingAt(s.to_string()))?;
        let addr: SocketAddr = addr.parse().map_err(|_| UpidError::BadAddress {
            upid: s.to_string(),
            addr: addr.to_string(),
        })?;
        Upid::new(name, addr)
    }
}

impl serde::Serialize for Upid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Upid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Upid, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_v4_and_v6() {
        for s in [
            "master@127.0.0.1:5050",
            "agent(1)@10.0.0.2:5051",
            "scheduler-7f@[::1]:40000",
        ] {
            let upid: Upid = s.parse().unwrap();
            assert_eq!(upid.to_string(), s);
        }
        let upid: Upid = "master@127.0.0.1:5050".parse().unwrap();
        assert_eq!(upid.name(), "master");
        assert_eq!(upid.port(), 5050);
    }

    #[test]
    fn bad_forms_are_errors() {
        let bad = [
            ("", "no `@`"),
            ("master", "no `@`"),
            ("master127.0.0.1:5050", "no `@`"),
            ("@127.0.0.1:5050", "empty name"),
            ("master@", "bad address"),
            ("master@127.0.0.1", "bad address"),
            ("master@127.0.0.1:", "bad address"),
            ("master@127.0.0.1:70000", "bad address"),
            ("master@host:5050", "bad address"),
            ("master@::1:5050", "bad address"),
            ("a@b@127.0.0.1:1", "bad address"),
            ("ma ster@127.0.0.1:1", "name with"),
            ("m\n@127.0.0.1:1", "name with"),
        ];
        for (s, why) in bad {
            let err = s.parse::<Upid>().expect_err(s).to_string();
            assert!(err.contains(why), "{s:?}: {err}");
        }
        let long = format!("{}@127.0.0.1:1", "x".repeat(256));
        assert!(matches!(
            long.parse::<Upid>(),
            Err(UpidError::NameTooLong(_))
        ));
    }

    #[test]
    fn serde_round_trips_and_rejects_bad_text() {
        let upid: Upid = "agent@127.0.0.2:5051".parse().unwrap();
        let bytes = crate::codec::encode(&upid).unwrap();
        assert_eq!(crate::codec::decode::<Upid>(&bytes).unwrap(), upid);
        let bytes = crate::codec::encode("not a upid").unwrap();
        assert!(crate::codec::decode::<Upid>(&bytes).is_err());
    }
}
