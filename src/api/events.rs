//! `GET /v1/events`: this node's topology events and, while it leads, its
//! monitor's rounds, as Server-Sent Events (payloads in
//! [`super::types::TopologyEventView`] and friends), with keep-alive
//! comments. At most [`MAX_EVENT_CLIENTS`] streams at once per node (503
//! `too_many_clients` beyond); a stream ends when the node stops.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Response, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use serde::Serialize;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::routes::Ctx;
use super::types::{ErrorBody, LaggedEvent, MonitorRoundEvent, TopologyEventView};
use crate::monitor::MonitorRound;
use crate::node::events::{TopologyEvent, MAX_EVENT_CLIENTS};

/// Error code when [`MAX_EVENT_CLIENTS`] streams are open (503).
pub const TOO_MANY_CLIENTS: &str = "too_many_clients";
/// Interval of the keep-alive comments (guess: below common proxy idle
/// timeouts of 30–60 s).
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

struct Stream {
    events: broadcast::Receiver<TopologyEvent>,
    rounds: broadcast::Receiver<Arc<MonitorRound>>,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Held while the stream is open: the client limit.
    _permit: OwnedSemaphorePermit,
}

fn event(name: &str, data: &impl Serialize) -> Event {
    let json = serde_json::to_string(data).expect("event views serialise");
    Event::default().event(name).data(json)
}

fn lagged(stream: &str, missed: u64) -> Event {
    event(
        "lagged",
        &LaggedEvent {
            stream: stream.to_string(),
            missed,
        },
    )
}

impl Stream {
    /// The next SSE event; `None` when the node stops.
    async fn next(&mut self) -> Option<Event> {
        tokio::select! {
            _ = &mut self.stop => None,
            r = self.events.recv() => match r {
                Ok(e) => Some(event(e.kind(), &TopologyEventView::from(&e))),
                Err(RecvError::Lagged(n)) => Some(lagged("topology", n)),
                Err(RecvError::Closed) => None,
            },
            r = self.rounds.recv() => match r {
                Ok(round) => Some(event("monitor_round", &MonitorRoundEvent::from(&*round))),
                Err(RecvError::Lagged(n)) => Some(lagged("monitor", n)),
                Err(RecvError::Closed) => None,
            },
        }
    }
}

pub(super) async fn events(State(ctx): Ctx) -> Response<Body> {
    let Some(permit) = ctx.events.admit() else {
        return ctx.error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorBody::new(
                TOO_MANY_CLIENTS,
                format!("{MAX_EVENT_CLIENTS} event streams are open on this node; retry later"),
            ),
        );
    };
    let state = Stream {
        events: ctx.events.receiver(),
        rounds: ctx.monitor.subscribe(),
        stop: Box::pin(ctx.events.stopped()),
        _permit: permit,
    };
    let stream = futures::stream::unfold(state, |mut s| async move {
        s.next().await.map(|e| (Ok::<_, Infallible>(e), s))
    });
    let sse = Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    ctx.served(sse.into_response())
}
