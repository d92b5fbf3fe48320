//! `--endpoints`: the API addresses `topoctl` talks to.

use std::fmt;
use std::str::FromStr;

use hyper::Uri;

/// Most endpoints accepted in one `--endpoints` list.
pub const MAX_ENDPOINTS: usize = 64;

/// One node's admin API: `host:port`, over HTTPS when topoctl knows the
/// cluster CA (`--ca-cert`, `TOPOCTL_CA_CERT`, or `certs/ca.pem` in
/// `--data-dir`) and plain HTTP otherwise, or with an explicit
/// `http://`/`https://`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    authority: String,
    /// `Some(true)` for `https://`, `Some(false)` for `http://`.
    tls: Option<bool>,
}

/// An `--endpoints` entry that is not `host:port` or `http://host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("endpoint `{input}`: {reason}")]
pub struct EndpointError {
    pub input: String,
    pub reason: String,
}

impl Endpoint {
    /// `host:port`.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The URI of `path_and_query` (starting with `/`) on this endpoint;
    /// `https` when the endpoint says so, or says nothing and `tls`.
    pub fn uri(
        &self,
        tls: bool,
        path_and_query: &str,
    ) -> Result<Uri, hyper::http::uri::InvalidUri> {
        let scheme = if self.tls.unwrap_or(tls) {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}{}", self.authority, path_and_query).parse()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.authority)
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    /// Accepts `host:port`, `http(s)://host:port` and `http(s)://host:port/`.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| EndpointError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(err("empty"));
        }
        let explicit = s.contains("://");
        let with_scheme = if explicit {
            s.to_string()
        } else {
            format!("http://{s}")
        };
        let uri: Uri = with_scheme
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| err(&e.to_string()))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(err("only http:// and https:// endpoints are supported")),
        };
        let authority = uri.authority().ok_or_else(|| err("no host"))?;
        if authority.as_str().contains('@') {
            return Err(err("user info is not supported"));
        }
        if authority.port_u16().is_none() {
            return Err(err(
                "missing port (expected host:port, e.g. 127.0.0.1:7101)",
            ));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(err("must not have a path or query"));
        }
        Ok(Endpoint {
            authority: authority.as_str().to_string(),
            tls: explicit.then_some(tls),
        })
    }
}

/// Parses a comma-separated list, e.g. `127.0.0.1:7101,127.0.0.1:7102`.
pub fn parse_endpoints(list: &str) -> Result<Vec<Endpoint>, EndpointError> {
    let endpoints = list
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(Endpoint::from_str)
        .collect::<Result<Vec<_>, _>>()?;
    if endpoints.is_empty() {
        return Err(EndpointError {
            input: list.to_string(),
            reason: "no endpoint given".into(),
        });
    }
    if endpoints.len() > MAX_ENDPOINTS {
        return Err(EndpointError {
            input: format!("{} endpoints", endpoints.len()),
            reason: format!("at most {MAX_ENDPOINTS}"),
        });
    }
    Ok(endpoints)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_host_port_and_http_urls() {
        let eps = parse_endpoints("127.0.0.1:7101, http://node2:7102/,http://[::1]:7103").unwrap();
        let names: Vec<&str> = eps.iter().map(|e| e.authority()).collect();
        assert_eq!(names, vec!["127.0.0.1:7101", "node2:7102", "[::1]:7103"]);
        assert_eq!(
            eps[0].uri(false, "/v1/topology").unwrap().to_string(),
            "http://127.0.0.1:7101/v1/topology"
        );
        // A bare host:port follows the client (HTTPS when it knows the CA);
        // an explicit scheme wins.
        assert_eq!(
            eps[0].uri(true, "/v1/topology").unwrap().to_string(),
            "https://127.0.0.1:7101/v1/topology"
        );
        assert!(eps[1]
            .uri(true, "/")
            .unwrap()
            .to_string()
            .starts_with("http://"));
        let tls = parse_endpoints("https://127.0.0.1:7101").unwrap();
        assert!(tls[0]
            .uri(false, "/")
            .unwrap()
            .to_string()
            .starts_with("https://"));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let reason = |s: &str| parse_endpoints(s).unwrap_err().to_string();
        assert!(
            reason("127.0.0.1").contains("missing port"),
            "{}",
            reason("127.0.0.1")
        );
        assert!(reason("ftp://a:1").contains("only http:// and https://"));
        assert!(reason("ftp://a:1").contains("only http://"));
        assert!(reason("http://a:1/v1").contains("path"));
        assert!(reason("").contains("no endpoint given"));
        assert!(reason(" , ").contains("no endpoint given"));
        assert!(reason("a:1,b").contains("endpoint `b`"));
        assert!(reason("a b:1").starts_with("endpoint `a b:1`"));
    }
}
