//! The wire format: a `u32` big-endian length, then a postcard-encoded
//! [`WireFrame`]. Owns encoding, the cancel-safe buffered [`FrameReader`]
//! and the codec's errors. Both transports use it for every frame.
//!
//! `Data` frames, the hot path, never copy their payload in the codec:
//! [`data_header`] gives the bytes that precede the payload on the wire
//! (the writer sends the payload after them as it is), and the reader
//! hands out the payload as a slice of its read buffer. Both produce and
//! accept exactly postcard's encoding of [`WireFrame::Data`].

use bytes::{Buf, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::FrameClass;
use crate::model::NodeId;

/// Version of the wire protocol, carried in `Hello`. Peers with another
/// version are refused.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame accepted before the handshake completes, bytes: an
/// unauthenticated peer cannot make us allocate more.
pub const HANDSHAKE_MAX_FRAME: usize = 4096;

/// Bytes of the length prefix.
pub const LEN_PREFIX: usize = 4;

/// Bytes that a `Data` frame adds to its payload at most (variant tag,
/// class, varint length).
pub const DATA_OVERHEAD: usize = 1 + 1 + 10;

/// Postcard's tag of [`WireFrame::Data`] (its variant index, one varint
/// byte).
const DATA_TAG: u8 = 6;

/// Bytes of a `Data` frame's header on the wire at most: length prefix,
/// then [`DATA_OVERHEAD`].
pub const DATA_HEADER_MAX: usize = LEN_PREFIX + DATA_OVERHEAD;

/// One frame on a link. The variant order is the wire format: `Hello` must
/// stay variant 0 with these fields forever, so that a peer of another
/// protocol version can still read it and refuse with a clear reason. New
/// frames are appended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireFrame {
    /// First frame in both directions.
    Hello {
        cluster_id: String,
        node_id: NodeId,
        protocol_version: u32,
    },
    /// The sender refuses the link (and closes it) for `reason`.
    Refuse {
        reason: String,
    },
    /// Sent by the accepting side once it keeps the link; the dialer waits
    /// for it before sending anything else.
    Ready,
    /// Sent by the accepting side instead of `Ready` when both nodes dialed
    /// at once and the other connection wins (the one dialed by the lower
    /// node id). Not an error: the dialer uses the other connection.
    Duplicate,
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
    Data {
        class: FrameClass,
        #[serde(with = "payload_serde")]
        payload: Bytes,
    },
}

/// Why bytes could not become a frame, or a frame could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The length prefix announces more than the limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    /// The length prefix is 0.
    #[error("empty frame")]
    Empty,
    /// The body is not a valid `WireFrame`.
    #[error("undecodable frame: {0}")]
    Decode(String),
    /// The body decoded but left bytes over.
    #[error("{extra} trailing bytes after the frame")]
    Trailing { extra: usize },
    /// The frame could not be encoded.
    #[error("cannot encode frame: {0}")]
    Encode(String),
}

/// Why reading a frame from a stream failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    /// The stream ended in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
}

/// Encodes `frame` with its length prefix. Fails if the body exceeds `max`.
pub fn encode(frame: &WireFrame, max: usize) -> Result<Bytes, CodecError> {
    let out = postcard::to_extend(frame, vec![0u8; LEN_PREFIX])
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    let len = out.len() - LEN_PREFIX;
    if len > max {
        return Err(CodecError::TooLarge { len, max });
    }
    let mut out = out;
    let prefix = u32::try_from(len).map_err(|_| CodecError::TooLarge { len, max })?;
    out[..LEN_PREFIX].copy_from_slice(&prefix.to_be_bytes());
    Ok(Bytes::from(out))
}

/// The bytes preceding a `Data` frame's payload of `payload_len` bytes on
/// the wire (length prefix, tag, class, varint length), appended to `out`:
/// followed by the payload they are exactly what [`encode`] writes for the
/// frame. Fails if the frame's body would exceed `max`.
pub fn data_header(
    class: FrameClass,
    payload_len: usize,
    max: usize,
    out: &mut BytesMut,
) -> Result<(), CodecError> {
    let mut varint = [0u8; 10];
    let mut n = 0;
    let mut v = payload_len as u64;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            varint[n] = byte;
            n += 1;
            break;
        }
        varint[n] = byte | 0x80;
        n += 1;
    }
    let len = 2 + n + payload_len;
    if len > max {
        return Err(CodecError::TooLarge { len, max });
    }
    let prefix = u32::try_from(len).map_err(|_| CodecError::TooLarge { len, max })?;
    out.extend_from_slice(&prefix.to_be_bytes());
    out.extend_from_slice(&[DATA_TAG, class_tag(class)]);
    out.extend_from_slice(&varint[..n]);
    Ok(())
}

fn class_tag(class: FrameClass) -> u8 {
    match class {
        FrameClass::Control => 0,
        FrameClass::Data => 1,
    }
}

/// Decodes a `Data` frame body without copying its payload: the payload
/// is a slice of `body`. Same results and errors as postcard's decoding.
fn decode_data(body: Bytes) -> Result<WireFrame, CodecError> {
    let truncated = || CodecError::Decode("unexpected end of a data frame".into());
    let class = match body.get(1) {
        Some(0) => FrameClass::Control,
        Some(1) => FrameClass::Data,
        Some(c) => return Err(CodecError::Decode(format!("bad frame class {c}"))),
        None => return Err(truncated()),
    };
    let mut len = 0u64;
    let mut at = 2;
    for shift in (0..70).step_by(7) {
        let byte = *body.get(at).ok_or_else(truncated)?;
        at += 1;
        if shift == 63 && byte > 1 {
            return Err(CodecError::Decode("payload length overflows".into()));
        }
        len |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let rest = body.len() - at;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > rest {
        return Err(truncated());
    }
    if len < rest {
        return Err(CodecError::Trailing { extra: rest - len });
    }
    Ok(WireFrame::Data {
        class,
        payload: body.slice(at..),
    })
}

/// Decodes one frame body (without its length prefix).
pub fn decode_body(body: &[u8]) -> Result<WireFrame, CodecError> {
    if body.is_empty() {
        return Err(CodecError::Empty);
    }
    let (frame, rest) = postcard::take_from_bytes::<WireFrame>(body)
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CodecError::Trailing { extra: rest.len() });
    }
    Ok(frame)
}

/// Spare buffer below which the reader grows its buffer before a read,
/// bytes.
const READ_MIN: usize = 16 * 1024;
/// What the reader reserves then: from the minimum, doubled after each
/// read that filled the buffer up to the maximum, back to the minimum
/// after a read that did not fill a quarter of it, bytes. Measured with
/// `bench_p2p`: with 128 KiB chunks a 64 KiB frame straddled two chunks
/// every other time and was copied across (≈ 60 % of plain TCP); with
/// 512 KiB, ≈ 90–100 %. An idle link keeps only the minimum.
const READ_CHUNK_MIN: usize = 64 * 1024;
const READ_CHUNK_MAX: usize = 512 * 1024;

/// Reads length-prefixed frames from a byte stream. Cancel-safe: bytes read
/// stay in the buffer, so it can sit in a `select!`, and it can be handed
/// from the handshake to the link without losing read-ahead.
#[derive(Debug)]
pub struct FrameReader {
    buf: BytesMut,
    max: usize,
    /// What the next growth reserves, bytes.
    chunk: usize,
}

impl FrameReader {
    /// A reader refusing frames over `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameReader {
            buf: BytesMut::with_capacity(8 * 1024),
            max,
            chunk: READ_CHUNK_MIN,
        }
    }

    /// Changes the limit (raised after the handshake).
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// Feeds bytes (tests and the fuzz-like unit tests).
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame in the buffer with its size on the wire, or
    /// `None` if more bytes are needed. A bad length fails before any
    /// allocation of that size.
    pub fn next_frame(&mut self) -> Result<Option<(WireFrame, usize)>, CodecError> {
        if self.buf.len() < LEN_PREFIX {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > self.max {
            return Err(CodecError::TooLarge { len, max: self.max });
        }
        if len == 0 {
            return Err(CodecError::Empty);
        }
        if self.buf.len() < LEN_PREFIX + len {
            self.buf.reserve(LEN_PREFIX + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(LEN_PREFIX);
        let body = self.buf.split_to(len);
        let frame = if body[0] == DATA_TAG {
            decode_data(body.freeze())?
        } else {
            decode_body(&body)?
        };
        Ok(Some((frame, LEN_PREFIX + len)))
    }

    /// Whether a whole frame is buffered (the next `read` returns without
    /// reading).
    pub fn has_frame(&self) -> bool {
        if self.buf.len() < LEN_PREFIX {
            return false;
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        usize::try_from(len).is_ok_and(|len| self.buf.len() - LEN_PREFIX >= len)
    }

    /// Reads until a whole frame is buffered. `Ok(None)` on a clean end of
    /// stream between frames.
    pub async fn read<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
    ) -> Result<Option<(WireFrame, usize)>, ReadError> {
        loop {
            if let Some(f) = self.next_frame()? {
                return Ok(Some(f));
            }
            // Read in large chunks: frames handed out keep their part of
            // the buffer alive, so a small remainder is not reused.
            if self.buf.capacity() - self.buf.len() < READ_MIN {
                self.buf.reserve(self.chunk);
            }
            let spare = self.buf.capacity() - self.buf.len();
            let n = r.read_buf(&mut self.buf).await?;
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ReadError::Truncated)
                };
            }
            if n == spare {
                self.chunk = (self.chunk * 2).min(READ_CHUNK_MAX);
            } else if n < spare / 4 {
                self.chunk = READ_CHUNK_MIN;
            }
        }
    }
}

/// `Bytes` as a postcard byte string (length + raw bytes).
mod payload_serde {
    use bytes::Bytes;
    use serde::de::{Error, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes::copy_from_slice(v))
            }
            fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes::from(v))
            }
        }
        d.deserialize_bytes(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames() -> Vec<WireFrame> {
        vec![
            WireFrame::Hello {
                cluster_id: "c1".into(),
                node_id: 7,
                protocol_version: PROTOCOL_VERSION,
            },
            WireFrame::Refuse {
                reason: "no".into(),
            },
            WireFrame::Ready,
            WireFrame::Duplicate,
            WireFrame::Ping { nonce: u64::MAX },
            WireFrame::Pong { nonce: 0 },
            WireFrame::Data {
                class: FrameClass::Data,
                payload: Bytes::from_static(b"hello"),
            },
            WireFrame::Data {
                class: FrameClass::Control,
                payload: Bytes::new(),
            },
        ]
    }

    #[test]
    fn every_frame_round_trips_through_one_buffer() {
        let mut r = FrameReader::new(1 << 20);
        for f in frames() {
            r.extend(&encode(&f, 1 << 20).unwrap());
        }
        for f in frames() {
            assert_eq!(r.next_frame().unwrap().map(|x| x.0), Some(f));
        }
        assert_eq!(r.next_frame().unwrap(), None);
    }

    #[test]
    fn hello_is_variant_zero() {
        let b = encode(&frames()[0], 1024).unwrap();
        assert_eq!(b[LEN_PREFIX], 0, "Hello must stay variant 0");
    }

    #[test]
    fn oversized_length_is_refused_before_reading_the_body() {
        let mut r = FrameReader::new(100);
        r.extend(&1000u32.to_be_bytes());
        assert_eq!(
            r.next_frame(),
            Err(CodecError::TooLarge {
                len: 1000,
                max: 100
            })
        );
    }

    #[test]
    fn encoding_over_the_limit_fails() {
        let f = WireFrame::Data {
            class: FrameClass::Data,
            payload: Bytes::from(vec![0; 200]),
        };
        assert!(matches!(
            encode(&f, 100),
            Err(CodecError::TooLarge { max: 100, .. })
        ));
    }

    #[test]
    fn garbage_gives_clear_errors() {
        assert_eq!(decode_body(&[]), Err(CodecError::Empty));
        assert!(matches!(decode_body(&[200]), Err(CodecError::Decode(_))));
        // Ready followed by a stray byte.
        assert_eq!(decode_body(&[2, 9]), Err(CodecError::Trailing { extra: 1 }));
        // Data with a payload length past the end.
        assert!(matches!(
            decode_body(&[6, 1, 50, 1]),
            Err(CodecError::Decode(_))
        ));
        let mut r = FrameReader::new(100);
        r.extend(&[0, 0, 0, 0]);
        assert_eq!(r.next_frame(), Err(CodecError::Empty));
    }

    #[test]
    fn data_header_plus_payload_is_the_postcard_encoding() {
        for n in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            for class in [FrameClass::Control, FrameClass::Data] {
                let payload = Bytes::from(vec![9u8; n]);
                let mut out = BytesMut::new();
                data_header(class, n, 1 << 20, &mut out).unwrap();
                assert!(out.len() <= DATA_HEADER_MAX);
                out.extend_from_slice(&payload);
                let f = WireFrame::Data { class, payload };
                assert_eq!(&out[..], &encode(&f, 1 << 20).unwrap()[..], "{n} bytes");
            }
        }
        let mut out = BytesMut::new();
        assert!(matches!(
            data_header(FrameClass::Data, 200, 100, &mut out),
            Err(CodecError::TooLarge { max: 100, .. })
        ));
    }

    #[test]
    fn bad_data_frames_fail_in_the_reader_as_in_postcard() {
        for body in [
            vec![6u8],
            vec![6, 2, 0],
            vec![6, 1],
            vec![6, 1, 0x80],
            vec![6, 1, 3, 1],
            vec![
                6, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ],
        ] {
            let mut r = FrameReader::new(1024);
            r.extend(&(body.len() as u32).to_be_bytes());
            r.extend(&body);
            assert!(
                matches!(r.next_frame(), Err(CodecError::Decode(_))),
                "{body:?}"
            );
            assert!(matches!(decode_body(&body), Err(CodecError::Decode(_))));
        }
        let mut r = FrameReader::new(1024);
        r.extend(&[0, 0, 0, 4, 6, 1, 1, 7]);
        r.extend(&[0, 0, 0, 5, 6, 1, 1, 7, 8]);
        assert_eq!(
            r.next_frame().unwrap().map(|x| x.0),
            Some(WireFrame::Data {
                class: FrameClass::Data,
                payload: Bytes::from_static(&[7])
            })
        );
        assert_eq!(r.next_frame(), Err(CodecError::Trailing { extra: 1 }));
    }

    #[tokio::test]
    async fn truncated_stream_is_an_error_and_clean_end_is_none() {
        let bytes = encode(&WireFrame::Ping { nonce: 3 }, 100).unwrap();
        let mut r = FrameReader::new(100);
        let mut half = &bytes[..bytes.len() - 1];
        assert!(matches!(r.read(&mut half).await, Err(ReadError::Truncated)));
        let mut r = FrameReader::new(100);
        let mut whole = &bytes[..];
        assert_eq!(
            r.read(&mut whole).await.unwrap().unwrap().0,
            WireFrame::Ping { nonce: 3 }
        );
        assert!(r.read(&mut whole).await.unwrap().is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = FrameReader::new(1024);
            r.extend(&bytes);
            // Drain until an error or more bytes are needed.
            while let Ok(Some(_)) = r.next_frame() {}
        }

        #[test]
        fn data_round_trips(payload in proptest::collection::vec(any::<u8>(), 0..2048), ctl in any::<bool>(), split in 0usize..2100) {
            let class = if ctl { FrameClass::Control } else { FrameClass::Data };
            let f = WireFrame::Data { class, payload: Bytes::from(payload) };
            let b = encode(&f, 4096).unwrap();
            let split = split.min(b.len());
            let mut r = FrameReader::new(4096);
            r.extend(&b[..split]);
            if split < b.len() {
                prop_assert_eq!(r.next_frame().unwrap(), None);
                r.extend(&b[split..]);
            }
            prop_assert_eq!(r.next_frame().unwrap(), Some((f, b.len())));
        }
    }
}
