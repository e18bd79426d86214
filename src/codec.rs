//! The wire format, in one place.
//!
//! A frame on a connection is `len: u32 (big endian)` followed by `len` bytes of body. A body is an
//! envelope header followed by the message payload:
//!
//! ```text
//! u8 from_len | from (actor name, utf-8) | u8 to_len | to | u8 name_len | message name | payload
//! ```
//!
//! The sender's node is the peer of the connection, so `from` is only the actor name; the receiver
//! completes it with the peer's advertised address. The payload is bincode 2.x (standard config,
//! varint integers) of the message's serde form. Decoding is limited to [`MAX_FRAME_BYTES`], and a
//! payload can never be longer than its frame, so decoding allocates at most the frame limit.

use serde::{de::DeserializeOwned, Serialize};

/// The largest frame any node accepts, whatever its configuration: 16 MiB.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Bytes of the length prefix of a frame.
pub const LEN_PREFIX_BYTES: usize = 4;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_FRAME_BYTES>,
>;

fn config() -> Config {
    bincode::config::standard().with_limit::<MAX_FRAME_BYTES>()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("cannot encode: {0}")]
    Encode(String),
    #[error("cannot decode: {0}")]
    Decode(String),
    #[error("{trailing} trailing bytes after the payload")]
    Trailing { trailing: usize },
    #[error("name `{0}` is longer than 255 bytes")]
    NameTooLong(String),
    #[error("frame header is cut short")]
    ShortHeader,
    #[error("frame header holds a name that is not utf-8")]
    NotUtf8,
}

/// Encodes a value into a fresh buffer.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| CodecError::Encode(e.to_string()))
}

/// Appends the encoding of a value to `buf`.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> Result<(), CodecError> {
    bincode::serde::encode_into_std_write(value, buf, config())
        .map(|_| ())
        .map_err(|e| CodecError::Encode(e.to_string()))
}

/// Decodes a value that must take up all of `bytes`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::Trailing {
            trailing: bytes.len() - used,
        });
    }
    Ok(value)
}

/// The envelope of one frame, borrowed from the frame's bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub name: &'a str,
    pub payload: &'a [u8],
}

fn put_name(buf: &mut Vec<u8>, name: &str) -> Result<(), CodecError> {
    let len = u8::try_from(name.len()).map_err(|_| CodecError::NameTooLong(name.to_string()))?;
    buf.push(len);
    buf.extend_from_slice(name.as_bytes());
    Ok(())
}

/// Appends one whole frame (length prefix, envelope, payload) to `buf`, and returns its length.
/// On error, `buf` is left as it was.
pub fn encode_frame<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    from: &str,
    to: &str,
    name: &str,
    payload: &T,
) -> Result<usize, CodecError> {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; LEN_PREFIX_BYTES]);
    let result = put_name(buf, from)
        .and_then(|_| put_name(buf, to))
        .and_then(|_| put_name(buf, name))
        .and_then(|_| encode_into(payload, buf));
    if let Err(e) = result {
        buf.truncate(start);
        return Err(e);
    }
    let body = buf.len() - start - LEN_PREFIX_BYTES;
    let Ok(len) = u32::try_from(body) else {
        buf.truncate(start);
        return Err(CodecError::Encode(format!("frame of {body} bytes")));
    };
    buf[start..start + LEN_PREFIX_BYTES].copy_from_slice(&len.to_be_bytes());
    Ok(buf.len() - start)
}

/// Reads the length prefix at the start of `buf`, if it holds one.
pub fn frame_len(buf: &[u8]) -> Option<usize> {
    let prefix: [u8; LEN_PREFIX_BYTES] = buf.get(..LEN_PREFIX_BYTES)?.try_into().ok()?;
    Some(u32::from_be_bytes(prefix) as usize)
}

fn take_name<'a>(body: &mut &'a [u8]) -> Result<&'a str, CodecError> {
    let (&len, rest) = body.split_first().ok_or(CodecError::ShortHeader)?;
    let len = len as usize;
    if rest.len() < len {
        return Err(CodecError::ShortHeader);
    }
    let (name, rest) = rest.split_at(len);
    *body = rest;
    std::str::from_utf8(name).map_err(|_| CodecError::NotUtf8)
}

/// Splits a frame body (without its length prefix) into its envelope.
pub fn decode_envelope(mut body: &[u8]) -> Result<Envelope<'_>, CodecError> {
    let from = take_name(&mut body)?;
    let to = take_name(&mut body)?;
    let name = take_name(&mut body)?;
    Ok(Envelope {
        from,
        to,
        name,
        payload: body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        id: u64,
        name: String,
        cpus: Option<f64>,
        tags: Vec<String>,
    }

    fn sample() -> Sample {
        Sample {
            id: 7,
            name: "t-1".into(),
            cpus: Some(0.5),
            tags: vec!["a".into(), "b".into()],
        }
    }

    #[test]
    fn value_round_trips() {
        let bytes = encode(&sample()).unwrap();
        assert_eq!(decode::<Sample>(&bytes).unwrap(), sample());
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut bytes = encode(&sample()).unwrap();
        bytes.push(0);
        assert_eq!(
            decode::<Sample>(&bytes),
            Err(CodecError::Trailing { trailing: 1 })
        );
    }

    #[test]
    fn frame_round_trips() {
        let mut buf = vec![9, 9];
        let n = encode_frame(&mut buf, "scheduler", "master", "meso.Sample", &sample()).unwrap();
        assert_eq!(n, buf.len() - 2);
        let len = frame_len(&buf[2..]).unwrap();
        assert_eq!(len + LEN_PREFIX_BYTES, n);
        let env = decode_envelope(&buf[2 + LEN_PREFIX_BYTES..]).unwrap();
        assert_eq!(
            (env.from, env.to, env.name),
            ("scheduler", "master", "meso.Sample")
        );
        assert_eq!(decode::<Sample>(env.payload).unwrap(), sample());
    }

    #[test]
    fn a_long_name_leaves_the_buffer_untouched() {
        let mut buf = vec![1, 2, 3];
        let long = "x".repeat(256);
        assert!(encode_frame(&mut buf, &long, "to", "n", &1u8).is_err());
        assert_eq!(buf, vec![1, 2, 3]);
    }

    #[test]
    fn cut_headers_are_errors_not_panics() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, "a", "b", "c", &sample()).unwrap();
        let body = &buf[LEN_PREFIX_BYTES..];
        for cut in 0..6 {
            assert!(decode_envelope(&body[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(decode_envelope(&[1, 0xff, 0, 0]), Err(CodecError::NotUtf8));
    }

    #[test]
    fn a_huge_claimed_length_fails_without_allocating_it() {
        // A Vec<u64> that claims 2^60 elements in a few bytes: varint 0xFD then a u64.
        let mut bytes = vec![0xFD];
        bytes.extend_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(decode::<Vec<u64>>(&bytes).is_err());
        let mut bytes = vec![0xFD];
        bytes.extend_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(decode::<String>(&bytes).is_err());
    }
}
