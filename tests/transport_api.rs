//! The transport's public API, used from outside the crate the way the
//! executor will: two in-memory nodes and two TCP nodes exchange frames,
//! and the stats account for them.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc::Receiver;
use topod::transport::{FrameClass, MemoryNetwork, Transport, TransportConfig, TransportEvent};

fn assert_handle_traits<T: Clone + Send + Sync + 'static>() {}

async fn wait_for(
    events: &mut Receiver<TransportEvent>,
    want: impl Fn(&TransportEvent) -> bool,
) -> TransportEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(ev)) if want(&ev) => return ev,
            Ok(Some(_)) => {}
            other => panic!("no expected event: {other:?}"),
        }
    }
}

async fn exchange(
    a: Transport,
    mut ea: Receiver<TransportEvent>,
    b: Transport,
    mut eb: Receiver<TransportEvent>,
) {
    let book = [(1, a.bound_addr()), (2, b.bound_addr())].into();
    a.set_address_book(book);
    a.connect(2).unwrap();
    // Frames queued before the link is up go out once it is.
    a.try_send(2, FrameClass::Control, Bytes::from_static(b"hello"))
        .unwrap();
    a.send(2, Bytes::from_static(b"data")).await.unwrap();
    wait_for(&mut ea, |e| matches!(e, TransportEvent::LinkUp { peer: 2 })).await;
    let got = wait_for(&mut eb, |e| matches!(e, TransportEvent::Frame { .. })).await;
    assert_eq!(
        got,
        TransportEvent::Frame {
            from: 1,
            class: FrameClass::Control,
            payload: Bytes::from_static(b"hello")
        }
    );
    let got = wait_for(&mut eb, |e| matches!(e, TransportEvent::Frame { .. })).await;
    assert_eq!(
        got,
        TransportEvent::Frame {
            from: 1,
            class: FrameClass::Data,
            payload: Bytes::from_static(b"data")
        }
    );
    // b answers over the link a opened, without connecting itself.
    b.try_send(1, FrameClass::Data, Bytes::from_static(b"reply"))
        .unwrap();
    let got = wait_for(&mut ea, |e| matches!(e, TransportEvent::Frame { .. })).await;
    assert!(matches!(got, TransportEvent::Frame { from: 2, .. }));
    let s = b.stats().peers[&1].clone();
    assert!(s.link_up && s.frames_in >= 2 && s.bytes_in > 9 && s.bytes_out > 0);
    assert_eq!(a.links(), vec![2]);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn transport_api_in_memory() {
    assert_handle_traits::<Transport>();
    let net = MemoryNetwork::new();
    let (a, ea) = net.endpoint(TransportConfig::default(), 1, "c").unwrap();
    let (b, eb) = net.endpoint(TransportConfig::default(), 2, "c").unwrap();
    exchange(a, ea, b, eb).await;
}

#[tokio::test]
async fn transport_api_over_tcp() {
    let any = "127.0.0.1:0".parse().unwrap();
    let (a, ea) = Transport::bind_tcp(any, TransportConfig::default(), 1, "c")
        .await
        .unwrap();
    let (b, eb) = Transport::bind_tcp(any, TransportConfig::default(), 2, "c")
        .await
        .unwrap();
    assert_ne!(b.bound_addr().port(), 0);
    exchange(a, ea, b, eb).await;
}
