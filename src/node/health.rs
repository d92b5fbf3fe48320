//! `topod healthcheck`: a GET of this node's `/readyz` (or `/livez`) by the
//! binary itself, for container health checks in images without a shell or
//! curl (the image is `FROM scratch`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;

/// Largest answer read: `/readyz` answers a few hundred bytes.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why the check failed. Nothing changes on the node in any case.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("{url}: not a valid URL: {detail}")]
    Url { url: String, detail: String },
    #[error("{url} is unreachable: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("{url} did not answer within {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("{url} answered {status}: {body}")]
    Status {
        url: String,
        status: hyper::StatusCode,
        body: String,
    },
    #[error("{url}: reading the answer: {detail}")]
    Body { url: String, detail: String },
}

/// The address to check for a node listening on `api_addr`: an unspecified
/// listener (`0.0.0.0`, `::`) is reached on loopback.
pub fn local_target(api_addr: SocketAddr) -> SocketAddr {
    match api_addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), api_addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), api_addr.port())
        }
        _ => api_addr,
    }
}

/// GETs `{addr}{path}` within `timeout` — over mutual TLS with `peer`
/// (the node's own certificate) when given, else plain HTTP; the body when
/// it answers 200, else the error.
pub async fn check(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
    peer: Option<crate::security::PeerHttp>,
) -> Result<String, HealthError> {
    let peer = peer.unwrap_or_else(crate::security::PeerHttp::insecure);
    let url = format!("{}{path}", peer.base(&addr.to_string()));
    let uri: hyper::Uri =
        url.parse()
            .map_err(|e: hyper::http::uri::InvalidUri| HealthError::Url {
                url: url.clone(),
                detail: e.to_string(),
            })?;
    let client: Client<_, Empty<bytes::Bytes>> = peer.client(timeout, timeout, 1);
    let call = async {
        let resp = client
            .get(uri)
            .await
            .map_err(|e| HealthError::Unreachable {
                url: url.clone(),
                detail: e.to_string(),
            })?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| HealthError::Body {
                url: url.clone(),
                detail: e.to_string(),
            })?
            .to_bytes();
        let body = String::from_utf8_lossy(&body).trim().to_string();
        if status == hyper::StatusCode::OK {
            Ok(body)
        } else {
            Err(HealthError::Status {
                url: url.clone(),
                status,
                body,
            })
        }
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(r) => r,
        Err(_) => Err(HealthError::Timeout {
            url: url.clone(),
            after: timeout,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_listener_is_checked_on_loopback() {
        let any: SocketAddr = "0.0.0.0:7100".parse().expect("addr");
        assert_eq!(local_target(any), "127.0.0.1:7100".parse().expect("addr"));
        let any6: SocketAddr = "[::]:7100".parse().expect("addr");
        assert_eq!(local_target(any6), "[::1]:7100".parse().expect("addr"));
        let fixed: SocketAddr = "172.28.0.11:7100".parse().expect("addr");
        assert_eq!(local_target(fixed), fixed);
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let err = check(addr, "/readyz", Duration::from_secs(2), None)
            .await
            .expect_err("nothing listens");
        assert!(matches!(err, HealthError::Unreachable { .. }), "{err}");
    }
}
