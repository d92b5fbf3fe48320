//! [`ApiClient`]: JSON over HTTP/1.1 to the admin API of any node, with
//! failover between endpoints.
//!
//! A request goes to the endpoint that answered last (the first one at
//! start) and moves on to the next when the connection cannot be made. A
//! `GET` also moves on when the endpoint does not answer in time; a write
//! does not (it may have been applied, and writes are forwarded to the
//! leader by whichever node answers). An HTTP answer, success or error, is
//! final.

use std::error::Error as StdError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{CliError, Endpoint};
use crate::api::types::{ErrorBody, SERVED_BY_HEADER};

/// Default per-request deadline.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest response body read, bytes (a full history page is ~0.5 MiB).
pub const MAX_RESPONSE_BYTES: usize = 4 << 20;
/// Longest error text quoted from a non-JSON error answer.
const MAX_QUOTED_BYTES: usize = 200;

/// A decoded answer and who gave it.
#[derive(Debug, Clone)]
pub struct Answer<T> {
    pub value: T,
    pub status: StatusCode,
    /// The endpoint that answered.
    pub endpoint: Endpoint,
    /// The node id in the `x-topod-served-by` header, if present.
    pub served_by: Option<String>,
}

/// Why one attempt failed before an HTTP answer arrived.
enum AttemptError {
    /// No connection could be made: try the next endpoint.
    Unreachable(String),
    /// No complete answer within the deadline.
    TimedOut,
    /// Anything else: final.
    Failed(CliError),
}

/// Client of the admin API of a set of nodes.
pub struct ApiClient {
    endpoints: Vec<Endpoint>,
    http: Client<crate::security::client::PeerConnector, Full<Bytes>>,
    /// HTTPS to endpoints given without a scheme (the CA is known).
    tls: bool,
    timeout: Duration,
    max_body: usize,
    /// Index of the endpoint that answered last.
    preferred: AtomicUsize,
    /// `Authorization: Bearer ...`, sent with every request when set.
    authorization: Option<HeaderValue>,
}

impl ApiClient {
    /// A client of `endpoints` (at least one) with a per-request deadline.
    pub fn new(endpoints: Vec<Endpoint>, timeout: Duration) -> Self {
        ApiClient::with_roots(endpoints, timeout, None)
    }

    /// A client that speaks HTTPS, trusting `roots` (the cluster CA), to
    /// endpoints given without a scheme; plain HTTP when `None`.
    pub fn with_roots(
        endpoints: Vec<Endpoint>,
        timeout: Duration,
        roots: Option<rustls::RootCertStore>,
    ) -> Self {
        assert!(!endpoints.is_empty(), "ApiClient needs an endpoint");
        let tls = roots.is_some();
        let http = crate::security::client::operator_client(roots, timeout);
        ApiClient {
            endpoints,
            http,
            tls,
            timeout,
            max_body: MAX_RESPONSE_BYTES,
            preferred: AtomicUsize::new(0),
            authorization: None,
        }
    }

    /// Sends `token` as a bearer token with every request (`None`: none).
    /// A token that cannot be a header value is dropped with a warning on
    /// stderr (the server then answers 401).
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.authorization = token.and_then(|t| {
            let value = HeaderValue::from_str(&format!("Bearer {t}"));
            match value {
                Ok(mut v) => {
                    v.set_sensitive(true);
                    Some(v)
                }
                Err(_) => {
                    eprintln!("warning: the token has characters a header cannot carry; not sent");
                    None
                }
            }
        });
        self
    }

    /// Changes the response size limit.
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The endpoints, in the order given.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// `GET path` with failover.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Answer<T>, CliError> {
        self.request(Method::GET, path, None).await
    }

    /// `method path` with `body` as JSON, with failover.
    pub async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Answer<T>, CliError> {
        let bytes = serde_json::to_vec(body).expect("API request types serialise");
        self.request(method, path, Some(Bytes::from(bytes))).await
    }

    /// `method path` with an optional JSON body, trying the endpoints in
    /// turn as the module doc says.
    pub async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Answer<T>, CliError> {
        let (endpoint, answer) = self.request_raw(method, path, body).await?;
        decode(&endpoint, answer)
    }

    /// `GET path` with failover, the body as bytes (a backup file): a
    /// success is returned as it came, anything else decoded as an API
    /// error.
    pub async fn get_bytes(&self, path: &str) -> Result<Answer<Bytes>, CliError> {
        let (endpoint, raw) = self.request_raw(Method::GET, path, None).await?;
        if !raw.status.is_success() {
            return Err(api_error(raw.status, &raw.bytes));
        }
        Ok(Answer {
            value: raw.bytes,
            status: raw.status,
            endpoint,
            served_by: raw.served_by,
        })
    }

    /// The endpoint loop of [`Self::request`], the answer undecoded.
    async fn request_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(Endpoint, RawAnswer), CliError> {
        let n = self.endpoints.len();
        let start = self.preferred.load(Ordering::Relaxed) % n;
        let mut attempts = Vec::new();
        for i in 0..n {
            let index = (start + i) % n;
            let endpoint = &self.endpoints[index];
            match self.attempt(endpoint, &method, path, body.clone()).await {
                Ok(answer) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok((endpoint.clone(), answer));
                }
                Err(AttemptError::Unreachable(msg)) => attempts.push((endpoint.to_string(), msg)),
                Err(AttemptError::TimedOut) if method == Method::GET => attempts.push((
                    endpoint.to_string(),
                    format!("no answer within {} ms", self.timeout.as_millis()),
                )),
                Err(AttemptError::TimedOut) => return Err(self.timeout_error(endpoint)),
                Err(AttemptError::Failed(e)) => return Err(e),
            }
        }
        Err(CliError::Unreachable { attempts })
    }

    /// `GET path` from `endpoint` only (no failover): for per-node views
    /// such as `/v1/cluster/status`.
    pub async fn get_from<T: DeserializeOwned>(
        &self,
        endpoint: &Endpoint,
        path: &str,
    ) -> Result<Answer<T>, CliError> {
        self.request_to(endpoint, Method::GET, path, None).await
    }

    /// `method path` to `endpoint` only (no failover): for requests about
    /// one node, such as `/v1/node/faults`, which another node must not
    /// answer in its place.
    pub async fn request_to<T: DeserializeOwned>(
        &self,
        endpoint: &Endpoint,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Answer<T>, CliError> {
        match self.attempt(endpoint, &method, path, body).await {
            Ok(answer) => decode(endpoint, answer),
            Err(AttemptError::Unreachable(msg)) => Err(CliError::Unreachable {
                attempts: vec![(endpoint.to_string(), msg)],
            }),
            Err(AttemptError::TimedOut) => Err(self.timeout_error(endpoint)),
            Err(AttemptError::Failed(e)) => Err(e),
        }
    }

    /// `GET path` as a long-lived stream (`GET /v1/events`): tries the
    /// endpoints in turn like [`Self::get`] until one answers; the
    /// deadline covers the answer's head only. A non-2xx answer is read
    /// (bounded) and decoded as an API error.
    pub async fn open_stream(
        &self,
        path: &str,
    ) -> Result<(Endpoint, hyper::body::Incoming), CliError> {
        let n = self.endpoints.len();
        let start = self.preferred.load(Ordering::Relaxed) % n;
        let mut attempts = Vec::new();
        for i in 0..n {
            let endpoint = &self.endpoints[(start + i) % n];
            let uri = endpoint
                .uri(self.tls, path)
                .map_err(|e| CliError::Network {
                    endpoint: endpoint.to_string(),
                    message: format!("bad path {path}: {e}"),
                })?;
            let req = Request::builder()
                .method(Method::GET)
                .uri(uri)
                .header(ACCEPT, HeaderValue::from_static("text/event-stream"));
            let req = match &self.authorization {
                Some(auth) => req.header(AUTHORIZATION, auth.clone()),
                None => req,
            };
            let req = req
                .body(Full::new(Bytes::new()))
                .map_err(|e| CliError::Network {
                    endpoint: endpoint.to_string(),
                    message: e.to_string(),
                })?;
            let resp = match tokio::time::timeout(self.timeout, self.http.request(req)).await {
                Err(_) => {
                    attempts.push((
                        endpoint.to_string(),
                        format!("no answer within {} ms", self.timeout.as_millis()),
                    ));
                    continue;
                }
                Ok(Err(e)) if e.is_connect() => {
                    attempts.push((endpoint.to_string(), root_cause(&e)));
                    continue;
                }
                Ok(Err(e)) => {
                    return Err(CliError::Network {
                        endpoint: endpoint.to_string(),
                        message: error_chain(&e),
                    })
                }
                Ok(Ok(resp)) => resp,
            };
            let (parts, body) = resp.into_parts();
            if parts.status.is_success() {
                return Ok((endpoint.clone(), body));
            }
            let read =
                tokio::time::timeout(self.timeout, Limited::new(body, self.max_body).collect())
                    .await;
            return Err(match read {
                Ok(Ok(body)) => api_error(parts.status, &body.to_bytes()),
                // The status alone still says what happened.
                Ok(Err(_)) | Err(_) => api_error(parts.status, &[]),
            });
        }
        Err(CliError::Unreachable { attempts })
    }

    fn timeout_error(&self, endpoint: &Endpoint) -> CliError {
        CliError::Timeout {
            endpoint: endpoint.to_string(),
            after_ms: self.timeout.as_millis() as u64,
        }
    }

    /// One request to one endpoint, body read within the deadline.
    async fn attempt(
        &self,
        endpoint: &Endpoint,
        method: &Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<RawAnswer, AttemptError> {
        let failed = |message: String| {
            AttemptError::Failed(CliError::Network {
                endpoint: endpoint.to_string(),
                message,
            })
        };
        let uri = endpoint
            .uri(self.tls, path)
            .map_err(|e| failed(format!("bad path {path}: {e}")))?;
        let mut req = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .header(
                USER_AGENT,
                HeaderValue::from_static(concat!("topoctl/", env!("CARGO_PKG_VERSION"))),
            );
        if body.is_some() {
            req = req.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if let Some(auth) = &self.authorization {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        // The node stops waiting on a write when this client gives up.
        req = req.header(
            crate::api::types::DEADLINE_HEADER,
            HeaderValue::from(self.timeout.as_millis().clamp(1, u64::MAX as u128) as u64),
        );
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| failed(e.to_string()))?;
        let exchange = async {
            let resp = self.http.request(req).await.map_err(|e| {
                if e.is_connect() {
                    AttemptError::Unreachable(root_cause(&e))
                } else {
                    let chain = error_chain(&e);
                    // Plain HTTP to a TLS listener: say what to do.
                    if !self.tls && chain.contains("invalid HTTP version") {
                        failed(format!(
                            "{chain} (the node speaks HTTPS: pass the cluster CA with --ca-cert or \
                             TOPOCTL_CA_CERT, or --data-dir of a `topod dev` cluster)"
                        ))
                    } else {
                        failed(chain)
                    }
                }
            })?;
            let (parts, body) = resp.into_parts();
            let bytes = Limited::new(body, self.max_body)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        AttemptError::Failed(CliError::BadResponse {
                            endpoint: endpoint.to_string(),
                            message: format!("response body exceeds {} bytes", self.max_body),
                        })
                    } else {
                        failed(format!("reading the response: {}", error_chain(&*e)))
                    }
                })?
                .to_bytes();
            let served_by = parts
                .headers
                .get(SERVED_BY_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            Ok(RawAnswer {
                status: parts.status,
                served_by,
                bytes,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(AttemptError::TimedOut))
    }
}

struct RawAnswer {
    status: StatusCode,
    served_by: Option<String>,
    bytes: Bytes,
}

/// Decodes a success as `T` and anything else as an API error.
fn decode<T: DeserializeOwned>(endpoint: &Endpoint, raw: RawAnswer) -> Result<Answer<T>, CliError> {
    let status = raw.status;
    if !status.is_success() {
        return Err(api_error(status, &raw.bytes));
    }
    let value = serde_json::from_slice(&raw.bytes).map_err(|e| CliError::BadResponse {
        endpoint: endpoint.to_string(),
        message: format!("unexpected JSON ({e})"),
    })?;
    Ok(Answer {
        value,
        status,
        endpoint: endpoint.clone(),
        served_by: raw.served_by,
    })
}

/// The error an unsuccessful answer carries: its error body, or the
/// status and the start of a body that is not one.
fn api_error(status: StatusCode, bytes: &[u8]) -> CliError {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(body) => CliError::from_body(status.as_u16(), body),
        Err(_) => CliError::Api {
            status: status.as_u16(),
            code: format!("http_{}", status.as_u16()),
            message: quote(status, bytes),
        },
    }
}

/// The start of a non-JSON error body, or the status text.
fn quote(status: StatusCode, bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_QUOTED_BYTES)]);
    let text = text.trim();
    if text.is_empty() {
        status.canonical_reason().unwrap_or("no body").to_string()
    } else {
        text.to_string()
    }
}

/// The innermost error's message (for connect errors: "Connection
/// refused (os error 111)" rather than hyper's layers around it).
fn root_cause(e: &(dyn StdError + 'static)) -> String {
    let mut current = e;
    while let Some(s) = current.source() {
        current = s;
    }
    current.to_string()
}

/// `outer: inner: innermost`, skipping repeated messages.
fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
