//! `topoctl faults set`: from flags (or a JSON file) to the
//! `PUT /v1/node/faults` body. Pure, so the mapping is tested without a
//! node; the server validates the values again.

use std::collections::BTreeMap;
use std::time::Duration;

use super::args::FaultsSetArgs;
use super::CliError;
use crate::api::types::{BadRequest, DirectionView, FaultRuleView, FaultsRequest};
use crate::model::NodeId;

/// Largest rule file read, bytes (the server's default body limit).
const MAX_FILE_BYTES: u64 = 64 << 10;

/// The rule for `peer` and `direction` in `rules`, created doing nothing.
fn rule(
    rules: &mut BTreeMap<(NodeId, DirectionView), FaultRuleView>,
    peer: NodeId,
    direction: DirectionView,
) -> &mut FaultRuleView {
    rules.entry((peer, direction)).or_insert(FaultRuleView {
        peer,
        direction,
        drop_probability: 0.0,
        delay_ms: 0,
    })
}

fn bad(message: String) -> CliError {
    CliError::BadRequest(BadRequest::new(message))
}

/// The request the flags describe. At least one rule; flags for the same
/// peer and direction merge into one rule.
pub fn faults_request(args: &FaultsSetArgs) -> Result<FaultsRequest, CliError> {
    if let Some(path) = &args.file {
        return from_file(path);
    }
    let p = args.drop_probability;
    if !(p > 0.0 && p <= 1.0) {
        return Err(bad(format!(
            "--drop-probability: {p} is outside 0 (exclusive)..=1"
        )));
    }
    let mut rules: BTreeMap<(NodeId, DirectionView), FaultRuleView> = BTreeMap::new();
    for (peers, direction) in [
        (&args.drop_to, DirectionView::Outbound),
        (&args.drop_from, DirectionView::Inbound),
        (&args.drop, DirectionView::Both),
    ] {
        for peer in peers {
            rule(&mut rules, *peer, direction).drop_probability = p;
        }
    }
    for (specs, flag, direction) in [
        (&args.delay_to, "--delay-to", DirectionView::Outbound),
        (&args.delay_from, "--delay-from", DirectionView::Inbound),
    ] {
        for spec in specs {
            let (peer, delay) =
                parse_delay(spec).map_err(|e| bad(format!("{flag} {spec}: {e}")))?;
            rule(&mut rules, peer, direction).delay_ms =
                u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        }
    }
    if rules.is_empty() {
        return Err(bad(
            "no rule given: use --drop-to, --drop-from, --drop, --delay-to, --delay-from or \
             --file (to remove every rule: topoctl faults clear)"
                .into(),
        ));
    }
    Ok(FaultsRequest {
        rules: rules.into_values().collect(),
        seed: args.seed,
    })
}

fn from_file(path: &std::path::Path) -> Result<FaultsRequest, CliError> {
    let shown = path.display();
    let len = std::fs::metadata(path)
        .map_err(|e| bad(format!("--file {shown}: {e}")))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(bad(format!(
            "--file {shown}: {len} bytes, at most {MAX_FILE_BYTES}"
        )));
    }
    let text = std::fs::read(path).map_err(|e| bad(format!("--file {shown}: {e}")))?;
    serde_json::from_slice(&text).map_err(|e| bad(format!("--file {shown}: {e}")))
}

/// `PEER:DELAY`, the delay as `250ms`, `2s` or plain milliseconds.
pub fn parse_delay(spec: &str) -> Result<(NodeId, Duration), String> {
    let (peer, delay) = spec
        .split_once(':')
        .ok_or("expected PEER:DELAY, e.g. 5:100ms")?;
    let peer: NodeId = peer
        .trim()
        .parse()
        .map_err(|_| format!("peer `{peer}` is not a node id"))?;
    let delay = delay.trim();
    let (number, scale) = if let Some(ms) = delay.strip_suffix("ms") {
        (ms, 1)
    } else if let Some(s) = delay.strip_suffix('s') {
        (s, 1000)
    } else {
        (delay, 1)
    };
    let ms = number
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("delay `{delay}` is not a whole number of ms or s"))?;
    Ok((peer, Duration::from_millis(ms)))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::args::{Cli, Command, FaultsCommand};

    fn set_args(line: &str) -> Result<FaultsSetArgs, String> {
        let argv = format!("topoctl faults set {line}");
        let cli = Cli::try_parse_from(argv.split_whitespace()).map_err(|e| e.to_string())?;
        match cli.command {
            Command::Faults(FaultsCommand::Set(a)) => Ok(a),
            other => panic!("parsed as {other:?}"),
        }
    }

    fn rule(peer: NodeId, direction: DirectionView, p: f64, delay_ms: u64) -> FaultRuleView {
        FaultRuleView {
            peer,
            direction,
            drop_probability: p,
            delay_ms,
        }
    }

    #[test]
    fn flags_map_to_one_rule_per_peer_and_direction() {
        let args =
            set_args("--drop-to 2,3 --drop-from 4 --delay-to 5:100ms,2:1s --drop 6 --seed 9")
                .unwrap();
        let req = faults_request(&args).unwrap();
        use DirectionView::*;
        assert_eq!(
            req.rules,
            vec![
                rule(2, Outbound, 1.0, 1000),
                rule(3, Outbound, 1.0, 0),
                rule(4, Inbound, 1.0, 0),
                rule(5, Outbound, 0.0, 100),
                rule(6, Both, 1.0, 0),
            ]
        );
        assert_eq!(req.seed, 9);
        let half = set_args("--drop-from 2 --drop-probability 0.5 --delay-from 2:40").unwrap();
        assert_eq!(
            faults_request(&half).unwrap().rules,
            vec![rule(2, Inbound, 0.5, 40)]
        );
    }

    #[test]
    fn bad_arguments_are_named() {
        let cases = [
            ("--delay-to 5", "--delay-to 5: expected PEER:DELAY"),
            ("--delay-to x:5ms", "peer `x` is not a node id"),
            ("--delay-from 2:fast", "delay `fast` is not a whole number"),
            (
                "--drop-to 2 --drop-probability 1.5",
                "--drop-probability: 1.5",
            ),
            ("--drop-to 2 --drop-probability 0", "--drop-probability: 0"),
            ("--seed 3", "no rule given"),
        ];
        for (line, want) in cases {
            let e = faults_request(&set_args(line).unwrap()).unwrap_err();
            assert!(e.to_string().contains(want), "{line}: {e}");
            assert!(e.to_string().starts_with("bad_request: "), "{e}");
        }
        let e = set_args("--drop-to two").unwrap_err();
        assert!(e.contains("two"), "{e}");
        let e = set_args("--file r.json --drop-to 2").unwrap_err();
        assert!(e.contains("cannot be used with"), "{e}");
    }

    #[test]
    fn a_rule_file_is_the_request_body() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.json");
        std::fs::write(
            &path,
            r#"{"seed": 4, "rules": [{"peer": 3, "direction": "inbound", "delay_ms": 20}]}"#,
        )
        .unwrap();
        let args = set_args(&format!("--file {}", path.display())).unwrap();
        let req = faults_request(&args).unwrap();
        assert_eq!(req.rules, vec![rule(3, DirectionView::Inbound, 0.0, 20)]);
        assert_eq!(req.seed, 4);
        std::fs::write(&path, r#"{"rules": [{"peer": 3, "lag": 1}]}"#).unwrap();
        let e = faults_request(&args).unwrap_err().to_string();
        assert!(e.contains("lag") && e.contains("rules.json"), "{e}");
        let missing = set_args("--file /nonexistent/rules.json").unwrap();
        let e = faults_request(&missing).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/rules.json"), "{e}");
    }
}
