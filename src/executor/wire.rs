//! The executor's wire format: what travels in a transport frame's payload
//! (postcard), and what an overlay broadcast carries.
//!
//! Point-to-point messages, the hot path, skip the copies postcard would
//! make of their payload: [`direct_head`] encodes everything of a
//! [`Frame::Direct`] before the payload (the transport sends the payload
//! after it as it is), and [`decode_frame`] hands out the payload as a
//! slice of the received frame. The bytes are exactly postcard's encoding
//! of the `Frame`.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::model::{NodeId, Topology};
use crate::overlay::any::AnyMessage;
use crate::overlay::MessageId;
use crate::transport::Head;

/// One frame between executors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// A message of overlay `instance` (the transition id that created it;
    /// 0 for the bootstrap overlay) running `topology`.
    Overlay {
        instance: u64,
        topology: Topology,
        message: AnyMessage,
    },
    /// A point-to-point application message; a server relays it when `to`
    /// is not itself (client_server: clients never link to clients).
    Direct(Direct),
    /// "Your probe `probe` over overlay `instance` reached me."
    ProbeAck { instance: u64, probe: MessageId },
    /// Gap repair of application broadcasts (see `super::repair`).
    Repair(RepairMsg),
}

/// A gap-repair message from `from` to `to`; a client_server server relays
/// it when `to` is not itself, like [`Direct`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairMsg {
    pub from: NodeId,
    pub to: NodeId,
    pub kind: RepairKind,
}

/// What a gap-repair message says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RepairKind {
    /// "My latest broadcast (of this incarnation) is `last`."
    Summary { incarnation: u32, last: u64 },
    /// "Please resend these broadcasts of your incarnation."
    Nack { incarnation: u32, missing: Vec<u64> },
    /// A broadcast resent on request.
    Resend {
        bseq: u64,
        id: MessageId,
        channel: String,
        data: Bytes,
    },
    /// "I no longer keep my broadcasts of `incarnation` below `below`."
    Gone { incarnation: u32, below: u64 },
}

/// A point-to-point application message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Direct {
    pub id: MessageId,
    pub to: NodeId,
    pub channel: String,
    pub payload: Bytes,
}

/// What an overlay broadcast carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// An application broadcast on `channel`; `bseq` numbers the origin's
    /// broadcasts contiguously (gap repair).
    App {
        channel: String,
        data: Bytes,
        bseq: u64,
    },
    /// A verification probe of overlay `instance`: every receiver acks it
    /// to the origin with [`Frame::ProbeAck`].
    Probe { instance: u64 },
}

/// A payload that does not decode; the frame is dropped and counted.
#[derive(Debug, thiserror::Error)]
#[error("undecodable {what}: {source}")]
pub struct DecodeError {
    pub what: &'static str,
    pub source: postcard::Error,
}

/// Postcard's tag of [`Frame::Direct`] (its variant index).
const DIRECT_TAG: u8 = 1;

/// The bytes of `Frame::Direct(Direct { id, to, channel, payload })` that
/// precede the payload's own bytes, for a payload of `payload_len` bytes.
pub fn direct_head(id: MessageId, to: NodeId, channel: &str, payload_len: usize) -> Head {
    // A struct is its fields back to back; `Bytes` is a length and the
    // bytes. Encoded on the stack and kept inline (no allocation) unless
    // the channel name is long.
    let mut buf = [0u8; 64];
    buf[0] = DIRECT_TAG;
    match postcard::to_slice(&(id, to, channel, payload_len), &mut buf[1..]) {
        Ok(used) => {
            let n = 1 + used.len();
            Head::copy_from_slice(&buf[..n])
        }
        // A long channel name.
        Err(_) => {
            let out = postcard::to_extend(&(id, to, channel, payload_len), vec![DIRECT_TAG])
                .expect("postcard encodes into a Vec");
            Head::from(Bytes::from(out))
        }
    }
}

/// Decodes a frame; a point-to-point payload is a slice of `bytes`, not a
/// copy. Same results as [`decode`]`::<Frame>`.
pub fn decode_frame(bytes: &Bytes) -> Result<Frame, DecodeError> {
    if bytes.first() != Some(&DIRECT_TAG) {
        return decode("frame", bytes);
    }
    let err = |source| DecodeError {
        what: "frame",
        source,
    };
    let ((id, to, channel, len), rest) =
        postcard::take_from_bytes::<(MessageId, NodeId, String, usize)>(&bytes[1..])
            .map_err(err)?;
    if len > rest.len() {
        return Err(err(postcard::Error::DeserializeUnexpectedEnd));
    }
    let at = bytes.len() - rest.len();
    Ok(Frame::Direct(Direct {
        id,
        to,
        channel,
        payload: bytes.slice(at..at + len),
    }))
}

/// A point-to-point frame's id, addressee, channel (borrowed from `bytes`)
/// and payload (a slice of `bytes`); `None` if `bytes` is not a
/// well-formed [`Frame::Direct`].
pub fn peek_direct(bytes: &Bytes) -> Option<(MessageId, NodeId, &str, Bytes)> {
    if bytes.first() != Some(&DIRECT_TAG) {
        return None;
    }
    let ((id, to, channel, len), rest) =
        postcard::take_from_bytes::<(MessageId, NodeId, &str, usize)>(&bytes[1..]).ok()?;
    if len > rest.len() {
        return None;
    }
    let at = bytes.len() - rest.len();
    Some((id, to, channel, bytes.slice(at..at + len)))
}

pub fn encode<T: Serialize>(value: &T) -> Bytes {
    // Serialising these plain enums into a Vec cannot fail.
    Bytes::from(postcard::to_allocvec(value).expect("postcard encodes executor frames"))
}

pub fn decode<'a, T: Deserialize<'a>>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<T, DecodeError> {
    postcard::from_bytes(bytes).map_err(|source| DecodeError { what, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::full_mesh;

    #[test]
    fn frames_round_trip_through_postcard() {
        let id = MessageId {
            origin: 3,
            incarnation: 2,
            seq: 9,
        };
        let frames = [
            Frame::Overlay {
                instance: 7,
                topology: Topology::FullMesh,
                message: AnyMessage::FullMesh(full_mesh::Message::Gossip {
                    id,
                    hops: 1,
                    payload: encode(&Body::App {
                        channel: "c".into(),
                        data: Bytes::from_static(b"x"),
                        bseq: 1,
                    }),
                }),
            },
            Frame::Direct(Direct {
                id,
                to: 4,
                channel: "c".into(),
                payload: Bytes::from_static(b"y"),
            }),
            Frame::ProbeAck {
                instance: 7,
                probe: id,
            },
            Frame::Repair(RepairMsg {
                from: 1,
                to: 2,
                kind: RepairKind::Nack {
                    incarnation: 3,
                    missing: vec![4, 5],
                },
            }),
            Frame::Repair(RepairMsg {
                from: 1,
                to: 2,
                kind: RepairKind::Resend {
                    bseq: 4,
                    id,
                    channel: "c".into(),
                    data: Bytes::from_static(b"z"),
                },
            }),
        ];
        for f in frames {
            let back: Frame = decode("frame", &encode(&f)).expect("decodes");
            assert_eq!(back, f);
            assert_eq!(decode_frame(&encode(&f)).expect("decodes"), f);
        }
    }

    #[test]
    fn direct_head_and_payload_are_the_postcard_encoding() {
        let id = MessageId {
            origin: 300,
            incarnation: 70_000,
            seq: u64::MAX,
        };
        for n in [0usize, 1, 127, 128, 70_000] {
            let payload = Bytes::from(vec![5u8; n]);
            let mut wire = direct_head(id, 9, "chan", n).to_vec();
            wire.extend_from_slice(&payload);
            let f = Frame::Direct(Direct {
                id,
                to: 9,
                channel: "chan".into(),
                payload,
            });
            assert_eq!(wire, encode(&f).to_vec(), "{n} bytes");
            let wire = Bytes::from(wire);
            assert_eq!(decode_frame(&wire).expect("decodes"), f);
            let (pid, to, ch, data) = peek_direct(&wire).expect("a direct frame");
            assert_eq!((pid, to, ch, &data[..]), (id, 9, "chan", &vec![5u8; n][..]));
        }
        let cut = encode(&Frame::Direct(Direct {
            id,
            to: 9,
            channel: "c".into(),
            payload: Bytes::from_static(b"abc"),
        }));
        assert!(decode_frame(&cut.slice(..cut.len() - 1)).is_err());
        assert!(peek_direct(&cut.slice(..cut.len() - 1)).is_none());
        assert!(decode::<Frame>("frame", &cut[..cut.len() - 1]).is_err());
    }
}
