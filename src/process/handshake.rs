//! The hello each side of a connection sends before any frame.
//!
//! ```text
//! magic "\0MSO" | version u16 BE | incarnation u64 BE | addr_len u8 | advertised address (utf-8)
//! ```
//! The first byte is NUL, which no HTTP request starts with, so one listener can later serve both.
//! Pure functions over bytes: tested without sockets.

use std::net::SocketAddr;

pub const MAGIC: [u8; 4] = *b"\0MSO";
pub const VERSION: u16 = 1;
/// The longest a hello can be.
pub const MAX_HELLO_BYTES: usize = 4 + 2 + 8 + 1 + 255;
/// The fixed part before the address.
pub const FIXED_HELLO_BYTES: usize = 4 + 2 + 8 + 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    pub version: u16,
    /// Chosen at random when a node starts: a new one means the peer restarted.
    pub incarnation: u64,
    /// Where the peer can be reached, and so the node part of its actors' Upids.
    pub addr: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("peer did not start with the meso magic bytes")]
    BadMagic,
    #[error("peer speaks protocol version {0}, this node speaks {VERSION}")]
    Version(u16),
    #[error("peer advertised a bad address `{0}`")]
    BadAddress(String),
}

impl Hello {
    pub fn encode(&self) -> Vec<u8> {
        let addr = self.addr.to_string();
        let mut out = Vec::with_capacity(FIXED_HELLO_BYTES + addr.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.incarnation.to_be_bytes());
        // A socket address prints in well under 255 bytes.
        out.push(addr.len() as u8);
        out.extend_from_slice(addr.as_bytes());
        out
    }

    /// Reads the fixed part; returns the length of the address that follows.
    pub fn decode_fixed(
        fixed: &[u8; FIXED_HELLO_BYTES],
    ) -> Result<(u16, u64, usize), HandshakeError> {
        if fixed[..4] != MAGIC {
            return Err(HandshakeError::BadMagic);
        }
        let version = u16::from_be_bytes([fixed[4], fixed[5]]);
        if version != VERSION {
            return Err(HandshakeError::Version(version));
        }
        let mut inc = [0u8; 8];
        inc.copy_from_slice(&fixed[6..14]);
        Ok((version, u64::from_be_bytes(inc), fixed[14] as usize))
    }

    pub fn decode(bytes: &[u8]) -> Result<Hello, HandshakeError> {
        let fixed: &[u8; FIXED_HELLO_BYTES] = bytes
            .get(..FIXED_HELLO_BYTES)
            .and_then(|b| b.try_into().ok())
            .ok_or(HandshakeError::BadMagic)?;
        let (version, incarnation, addr_len) = Hello::decode_fixed(fixed)?;
        let rest = &bytes[FIXED_HELLO_BYTES..];
        let addr_bytes = rest
            .get(..addr_len)
            .ok_or_else(|| HandshakeError::BadAddress(String::from_utf8_lossy(rest).into()))?;
        let addr = parse_addr(addr_bytes)?;
        Ok(Hello {
            version,
            incarnation,
            addr,
        })
    }
}

pub fn parse_addr(bytes: &[u8]) -> Result<SocketAddr, HandshakeError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| HandshakeError::BadAddress(String::from_utf8_lossy(bytes).into()))?;
    let addr: SocketAddr = text
        .parse()
        .map_err(|_| HandshakeError::BadAddress(text.into()))?;
    if addr.ip().is_unspecified() || addr.port() == 0 {
        return Err(HandshakeError::BadAddress(text.into()));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            version: VERSION,
            incarnation: 0xdead_beef_1234,
            addr: "127.0.0.3:5051".parse().unwrap(),
        }
    }

    #[test]
    fn round_trips() {
        assert_eq!(Hello::decode(&hello().encode()).unwrap(), hello());
    }

    #[test]
    fn never_looks_like_http() {
        let bytes = hello().encode();
        for method in [
            "GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH", "CONNECT", "PRI",
        ] {
            assert!(!bytes.starts_with(method.as_bytes()));
        }
    }

    #[test]
    fn rejects_bad_input_without_panicking() {
        assert_eq!(
            Hello::decode(b"GET / HTTP/1.1\r\n"),
            Err(HandshakeError::BadMagic)
        );
        assert_eq!(Hello::decode(b""), Err(HandshakeError::BadMagic));
        let mut v2 = hello().encode();
        v2[5] = 2;
        assert_eq!(Hello::decode(&v2), Err(HandshakeError::Version(2)));
        let mut cut = hello().encode();
        cut.truncate(cut.len() - 2);
        assert!(matches!(
            Hello::decode(&cut),
            Err(HandshakeError::BadAddress(_))
        ));
        let mut zero = Hello {
            addr: "0.0.0.0:5050".parse().unwrap(),
            ..hello()
        }
        .encode();
        assert!(matches!(
            Hello::decode(&zero),
            Err(HandshakeError::BadAddress(_))
        ));
        zero[FIXED_HELLO_BYTES] = 0xff;
        assert!(Hello::decode(&zero).is_err());
    }
}
