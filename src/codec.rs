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
//! varint integers) of the message's serde form.
//!
//! Decoding allocates in proportion to the bytes it was given, never to the lengths those bytes
//! claim. bincode counts what a payload claims at its size in memory (each integer at its width,
//! each string and byte buffer at its length, checked *before* it is reserved) against a limit;
//! [`decode_within_limit`] makes that limit the smallest of [`DECODE_TIERS`] holding sixteen times
//! the payload (no value takes more than sixteen bytes of memory per byte of wire), and never more
//! than the frame limit. So a 30-byte frame claiming a 15 MiB string is refused before the string
//! is reserved, and a valid payload always fits. A sequence reserves at most
//! [`MIN_FRAME_LIMIT_BYTES`] ahead (serde's cautious size hint); as no node's frame limit is below
//! that, and every limit is itself a tier, decoding a frame never allocates more than the limit.

use serde::{de::DeserializeOwned, Serialize};

/// The largest frame any node accepts, whatever its configuration: 16 MiB.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Bytes of the length prefix of a frame.
pub const LEN_PREFIX_BYTES: usize = 4;

/// The smallest frame limit a node takes: serde reserves up to 1 MiB ahead for a sequence whose
/// claimed length it cannot check yet, so a lower limit could not bound what decoding allocates.
pub const MIN_FRAME_LIMIT_BYTES: usize = 1024 * 1024;

/// The limits [`decode_within_limit`] chooses from: each a power of two, the last
/// [`MAX_FRAME_BYTES`].
pub const DECODE_TIERS: [usize; 9] = [
    4 * 1024,
    16 * 1024,
    64 * 1024,
    256 * 1024,
    1024 * 1024,
    2 * 1024 * 1024,
    4 * 1024 * 1024,
    8 * 1024 * 1024,
    MAX_FRAME_BYTES,
];

/// The most memory one byte of bincode can decode into (a `u128` or `i128` in one varint byte).
const MAX_MEMORY_PER_WIRE_BYTE: usize = 16;

/// A frame limit as nodes use it: a power of two between [`MIN_FRAME_LIMIT_BYTES`] and
/// [`MAX_FRAME_BYTES`] (a value in between is rounded down), so that it is one of the decode tiers.
pub fn frame_limit(requested_bytes: usize) -> usize {
    let clamped = requested_bytes.clamp(MIN_FRAME_LIMIT_BYTES, MAX_FRAME_BYTES);
    1usize << (usize::BITS - 1 - clamped.leading_zeros())
}

type Config<const N: usize> = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<N>,
>;

fn config<const N: usize>() -> Config<N> {
    bincode::config::standard().with_limit::<N>()
}

fn decode_within<T: DeserializeOwned, const N: usize>(
    bytes: &[u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    bincode::serde::decode_from_slice(bytes, config::<N>())
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
    bincode::serde::encode_to_vec(value, config::<MAX_FRAME_BYTES>())
        .map_err(|e| CodecError::Encode(e.to_string()))
}

/// Appends the encoding of a value to `buf`.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> Result<(), CodecError> {
    bincode::serde::encode_into_std_write(value, buf, config::<MAX_FRAME_BYTES>())
        .map(|_| ())
        .map_err(|e| CodecError::Encode(e.to_string()))
}

/// Decodes a value that must take up all of `bytes` (checkpoints, registries: anything already
/// bounded by [`MAX_FRAME_BYTES`]).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_within_limit(bytes, MAX_FRAME_BYTES)
}

/// Decodes a value that must take up all of `bytes`, claiming at most the smallest tier that holds
/// sixteen times `bytes` and at most the tier `limit_bytes` rounds to ([`frame_limit`]).
pub fn decode_within_limit<T: DeserializeOwned>(
    bytes: &[u8],
    limit_bytes: usize,
) -> Result<T, CodecError> {
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(CodecError::Decode(format!(
            "{} bytes is over the {MAX_FRAME_BYTES}-byte limit",
            bytes.len()
        )));
    }
    let need = bytes
        .len()
        .saturating_mul(MAX_MEMORY_PER_WIRE_BYTE)
        .min(frame_limit(limit_bytes));
    let tier = DECODE_TIERS.iter().position(|&t| need <= t);
    let decoded = match tier {
        Some(0) => decode_within::<T, { DECODE_TIERS[0] }>(bytes),
        Some(1) => decode_within::<T, { DECODE_TIERS[1] }>(bytes),
        Some(2) => decode_within::<T, { DECODE_TIERS[2] }>(bytes),
        Some(3) => decode_within::<T, { DECODE_TIERS[3] }>(bytes),
        Some(4) => decode_within::<T, { DECODE_TIERS[4] }>(bytes),
        Some(5) => decode_within::<T, { DECODE_TIERS[5] }>(bytes),
        Some(6) => decode_within::<T, { DECODE_TIERS[6] }>(bytes),
        Some(7) => decode_within::<T, { DECODE_TIERS[7] }>(bytes),
        _ => decode_within::<T, MAX_FRAME_BYTES>(bytes),
    };
    let (value, used) = decoded.map_err(|e| CodecError::Decode(e.to_string()))?;
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

    /// A length prefix claiming `n` elements (bincode varint: 0xFD then a little-endian u64).
    fn claims(n: u64) -> Vec<u8> {
        let mut bytes = vec![0xFD];
        bytes.extend_from_slice(&n.to_le_bytes());
        bytes
    }

    #[test]
    fn a_huge_claimed_length_fails_without_allocating_it() {
        assert!(decode::<Vec<u64>>(&claims(1 << 60)).is_err());
        assert!(decode::<String>(&claims(1 << 60)).is_err());
    }

    /// The claim is checked against the tier of the bytes at hand, not against the 16 MiB
    /// ceiling: a 9-byte payload claiming a 15 MiB string is refused as over its limit, before
    /// bincode reserves the string (which it does before reading it).
    #[test]
    fn a_small_payload_cannot_claim_more_than_its_tier() {
        let err = decode::<String>(&claims(15 * 1024 * 1024)).unwrap_err();
        assert!(
            matches!(&err, CodecError::Decode(e) if e.contains("Limit")),
            "{err:?}"
        );
        // Within the tier, a claim that the bytes do not back is a plain end of input.
        let err = decode::<String>(&claims(100)).unwrap_err();
        assert!(
            matches!(&err, CodecError::Decode(e) if !e.contains("Limit")),
            "{err:?}"
        );
        // A frame limit bounds the claim too, whatever the payload's size.
        let big = encode(&"x".repeat(3 * 1024 * 1024)).unwrap();
        assert!(decode_within_limit::<String>(&big, MAX_FRAME_BYTES).is_ok());
        let err = decode_within_limit::<String>(&big, MIN_FRAME_LIMIT_BYTES).unwrap_err();
        assert!(
            matches!(&err, CodecError::Decode(e) if e.contains("Limit")),
            "{err:?}"
        );
    }

    /// Valid payloads always fit their tier: a string that fills one (one byte of memory per
    /// byte), and integers that take one varint byte each but eight bytes of memory.
    #[test]
    fn valid_payloads_fit_their_tier() {
        for &tier in &DECODE_TIERS {
            let text = "x".repeat(tier - 9);
            let bytes = encode(&text).unwrap();
            assert_eq!(decode::<String>(&bytes).unwrap(), text, "tier {tier}");
        }
        for n in [10usize, 500, 5_000, 100_000] {
            let numbers: Vec<u64> = vec![1; n];
            let bytes = encode(&numbers).unwrap();
            assert!(bytes.len() < n + 10, "one byte each");
            assert_eq!(decode::<Vec<u64>>(&bytes).unwrap(), numbers);
            let wide: Vec<u128> = vec![1; n];
            assert_eq!(decode::<Vec<u128>>(&encode(&wide).unwrap()).unwrap(), wide);
        }
        assert!(decode::<String>(&vec![0u8; MAX_FRAME_BYTES + 1]).is_err());
    }

    #[test]
    fn frame_limits_are_tiers() {
        assert_eq!(frame_limit(0), MIN_FRAME_LIMIT_BYTES);
        assert_eq!(frame_limit(3 * 1024 * 1024), 2 * 1024 * 1024);
        assert_eq!(frame_limit(usize::MAX), MAX_FRAME_BYTES);
        for requested in [1, 1 << 20, (1 << 22) + 1, 1 << 24, 1 << 30] {
            assert!(
                DECODE_TIERS.contains(&frame_limit(requested)),
                "{requested}"
            );
        }
    }
}
