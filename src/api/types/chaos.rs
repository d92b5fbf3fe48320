//! `POST /v1/node/broadcast` and `GET /v1/node/deliveries`: the chaos
//! harness's application broadcasts, local to the answering node and
//! served only in chaos mode (`transport.chaos = true`; otherwise 409
//! `chaos_disabled`).
//!
//! ```json
//! POST /v1/node/broadcast {"channel": "chaos", "id": "n3-17", "payload": "x"}
//! GET  /v1/node/deliveries?after=0&limit=1000
//! ```
//!
//! The harness chooses each broadcast's `id`, so it can tell, from every
//! node's deliveries, whether a broadcast arrived once, twice or never.

use serde::{Deserialize, Serialize};

use super::BadRequest;
use crate::model::NodeId;

/// The one channel the harness broadcasts on and the nodes record.
pub const HARNESS_CHANNEL: &str = "chaos";
/// Longest broadcast id, bytes.
pub const MAX_BROADCAST_ID_LEN: usize = 128;
/// Longest broadcast payload, bytes (the API body limit bounds it too).
pub const MAX_BROADCAST_PAYLOAD_LEN: usize = 16 * 1024;
/// Most deliveries in one page.
pub const MAX_DELIVERIES_LIMIT: usize = 1000;

/// Body of `POST /v1/node/broadcast`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastRequest {
    /// Must be [`HARNESS_CHANNEL`]: only that channel is recorded.
    pub channel: String,
    /// Chosen by the harness, 1..=[`MAX_BROADCAST_ID_LEN`] bytes.
    pub id: String,
    /// Carried as is, at most [`MAX_BROADCAST_PAYLOAD_LEN`] bytes.
    pub payload: String,
}

impl BroadcastRequest {
    /// Checks the fields' limits, naming the field at fault.
    pub fn validate(&self) -> Result<(), BadRequest> {
        if self.channel != HARNESS_CHANNEL {
            return Err(BadRequest::new(format!(
                "channel `{}`: only the harness channel `{HARNESS_CHANNEL}` is recorded",
                self.channel
            )));
        }
        if self.id.is_empty() {
            return Err(BadRequest::new("id must not be empty"));
        }
        if self.id.len() > MAX_BROADCAST_ID_LEN {
            return Err(BadRequest::new(format!(
                "id is {} bytes, more than {MAX_BROADCAST_ID_LEN}",
                self.id.len()
            )));
        }
        if self.payload.len() > MAX_BROADCAST_PAYLOAD_LEN {
            return Err(BadRequest::new(format!(
                "payload is {} bytes, more than {MAX_BROADCAST_PAYLOAD_LEN}",
                self.payload.len()
            )));
        }
        Ok(())
    }
}

/// Answer to an accepted `POST /v1/node/broadcast` (202): the broadcast
/// is queued on this node's current overlay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastAccepted {
    pub node_id: NodeId,
    pub id: String,
}

/// What the overlay carries for a harness broadcast (JSON bytes inside the
/// application message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HarnessMessage {
    pub id: String,
    pub payload: String,
}

/// Query of `GET /v1/node/deliveries`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// Only deliveries with a sequence number above this (the previous
    /// page's `next_after`); default 0, the first page.
    pub after: Option<u64>,
    /// Deliveries per page, 1..=[`MAX_DELIVERIES_LIMIT`]; default the
    /// maximum.
    pub limit: Option<usize>,
}

impl DeliveriesQuery {
    /// The page size, refused (naming `limit`) outside its range.
    pub fn effective_limit(&self) -> Result<usize, BadRequest> {
        match self.limit {
            None => Ok(MAX_DELIVERIES_LIMIT),
            Some(n) if (1..=MAX_DELIVERIES_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(BadRequest::new(format!(
                "limit {n} is outside 1..={MAX_DELIVERIES_LIMIT}"
            ))),
        }
    }
}

/// One delivery of a harness broadcast on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryView {
    /// This node's sequence number of the delivery, from 1, contiguous.
    pub seq: u64,
    /// The node that broadcast it.
    pub origin: NodeId,
    /// The harness's id of the broadcast.
    pub id: String,
    /// When it was delivered, ms since the Unix epoch (this node's clock).
    pub at_ms: u64,
}

/// One page of `GET /v1/node/deliveries`, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveriesPage {
    pub node_id: NodeId,
    pub deliveries: Vec<DeliveryView>,
    /// `after` of the next page; `None` when this page reached the end.
    pub next_after: Option<u64>,
    /// The last sequence number recorded so far (0: none yet).
    pub last_seq: u64,
    /// Deliveries evicted from the bounded ring (the oldest go first):
    /// sequence numbers `1..=dropped` can no longer be read.
    pub dropped: u64,
    /// Messages the recorder missed because it fell behind the executor.
    pub lagged: u64,
    /// Messages on the harness channel that were not a harness message.
    pub undecodable: u64,
    /// Capacity of the ring.
    pub capacity: usize,
}
