//! `[advertise]`: the addresses other nodes use to reach this one, when
//! they differ from the listeners (a container or pod that listens on
//! `0.0.0.0` behind a stable virtual address, e.g. a Kubernetes Service's
//! ClusterIP or a NAT). What this section says goes into the Raft
//! membership instead of the bound address; unset keys advertise the
//! bound address, as before.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Advertised addresses; each `None` (the default) means "the bound one".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdvertiseConfig {
    /// Where other nodes and clients reach the admin API, `ip:port`.
    #[serde(default)]
    pub api_addr: Option<SocketAddr>,
    /// Where other nodes reach the Raft RPC listener.
    #[serde(default)]
    pub raft_addr: Option<SocketAddr>,
    /// Where other nodes reach the overlay peer listener.
    #[serde(default)]
    pub peer_addr: Option<SocketAddr>,
}

impl AdvertiseConfig {
    /// An advertised address must be reachable: a real IP and port.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, addr) in [
            ("advertise.api_addr", self.api_addr),
            ("advertise.raft_addr", self.raft_addr),
            ("advertise.peer_addr", self.peer_addr),
        ] {
            if let Some(a) = addr {
                if a.port() == 0 || a.ip().is_unspecified() {
                    return Err(ConfigError::invalid(
                        key,
                        format!("is {a}: other nodes cannot reach port 0 or an unspecified IP"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, NodeConfig};

    /// A node listening on 0.0.0.0 that advertises `10.96.100.11`.
    const BEHIND_A_SERVICE: &str = r#"
node_id = 1
cluster_id = "k8s"
api_addr = "0.0.0.0:7100"
raft_addr = "0.0.0.0:7200"
peer_addr = "0.0.0.0:7300"
data_dir = "/data"
initial_voters = [{ id = 1, api_addr = "10.96.100.11:7100", raft_addr = "10.96.100.11:7200", peer_addr = "10.96.100.11:7300" }]

[advertise]
api_addr = "10.96.100.11:7100"
raft_addr = "10.96.100.11:7200"
peer_addr = "10.96.100.11:7300"
"#;

    fn load(toml: &str) -> Result<NodeConfig, ConfigError> {
        NodeConfig::from_toml_str_with_env(toml, "TOPOD_TEST_ADVERTISE_NO_ENV_")
    }

    #[test]
    fn the_membership_holds_the_advertised_addresses_and_the_own_entry_matches_them() {
        let c = load(BEHIND_A_SERVICE).expect("valid");
        let addr = c.node_addr("u");
        assert_eq!(addr.api_addr, "10.96.100.11:7100");
        assert_eq!(addr.raft_addr, "10.96.100.11:7200");
        assert_eq!(addr.peer_addr, "10.96.100.11:7300");
        assert_eq!(
            c.api_addr.to_string(),
            "0.0.0.0:7100",
            "still listens there"
        );
    }

    #[test]
    fn without_advertise_the_own_entry_must_match_the_listeners() {
        let toml = BEHIND_A_SERVICE.split("[advertise]").next().expect("head");
        let e = load(toml).expect_err("entry differs from api_addr");
        assert!(e.to_string().contains("initial_voters"), "{e}");
    }

    #[test]
    fn an_unreachable_advertised_address_is_refused_by_name() {
        for bad in ["0.0.0.0:7100", "10.0.0.1:0"] {
            let toml = BEHIND_A_SERVICE.replace(
                "[advertise]\napi_addr = \"10.96.100.11:7100\"",
                &format!("[advertise]\napi_addr = \"{bad}\""),
            );
            let e = load(&toml).expect_err(bad);
            assert!(e.to_string().contains("advertise.api_addr"), "{bad}: {e}");
        }
    }
}
