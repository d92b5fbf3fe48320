//! The executor's wire format: what travels in a transport frame's payload
//! (postcard), and what an overlay broadcast carries.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::model::{NodeId, Topology};
use crate::overlay::any::AnyMessage;
use crate::overlay::MessageId;

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
        }
    }
}
