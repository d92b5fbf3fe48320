//! The four overlay topologies a cluster can run.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the overlay topologies `topod` can switch between.
///
/// The wire and log encoding is the variant index (postcard); the JSON and
/// text name is the snake_case atom (`full_mesh`, `hyparview`,
/// `client_server`, `pub_sub`). New topologies are appended, never inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Topology {
    /// Every node linked to every other node.
    #[serde(rename = "full_mesh")]
    FullMesh,
    /// HyParView partial views; broadcast floods the active view.
    #[serde(rename = "hyparview")]
    HyParView,
    /// Servers in a full mesh, each client linked to k servers.
    #[serde(rename = "client_server")]
    ClientServer,
    /// Plumtree broadcast tree over HyParView.
    #[serde(rename = "pub_sub")]
    PubSub,
}

impl Topology {
    /// Every topology, in declaration order.
    pub const ALL: [Topology; 4] = [
        Topology::FullMesh,
        Topology::HyParView,
        Topology::ClientServer,
        Topology::PubSub,
    ];

    /// The snake_case atom used in JSON, config files and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Topology::FullMesh => "full_mesh",
            Topology::HyParView => "hyparview",
            Topology::ClientServer => "client_server",
            Topology::PubSub => "pub_sub",
        }
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A topology name that is not one of [`Topology::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown topology `{0}`: expected one of full_mesh, hyparview, client_server, pub_sub")]
pub struct UnknownTopology(pub String);

impl FromStr for Topology {
    type Err = UnknownTopology;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Topology::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownTopology(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_json() {
        for t in Topology::ALL {
            assert_eq!(t.as_str().parse::<Topology>().unwrap(), t);
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(serde_json::from_str::<Topology>(&json).unwrap(), t);
        }
    }

    #[test]
    fn unknown_name_is_named_in_the_error() {
        let err = "ring".parse::<Topology>().unwrap_err();
        assert!(err.to_string().contains("`ring`"));
    }
}
