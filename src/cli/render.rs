//! Tables of `topoctl` output, built from the API views.
//!
//! Each `*_rows` function is pure (views in, cells out) so that tests can
//! check the content; `*_table` wraps the rows in a comfy-table.

use comfy_table::{presets, Table};

use crate::api::types::{
    ClusterStatus, ExecStateView, FaultsView, HistoryPage, MembersView, NodeStats, OverlayView,
    PhaseView, PolicyView, ReasonView, TopologyInfo, TransitionView,
};

/// The result of asking one endpoint for its status.
#[derive(Debug, Clone)]
pub struct EndpointStatus {
    /// The endpoint as given in `--endpoints`.
    pub endpoint: String,
    /// Its status, or the error text.
    pub result: Result<ClusterStatus, String>,
}

/// A table with `header` and `rows`, ASCII borders.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::ASCII_FULL_CONDENSED);
    t.set_header(header.iter().copied());
    for row in rows {
        t.add_row(row);
    }
    t
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn ids(ids: &[u64]) -> String {
    if ids.is_empty() {
        return "-".to_string();
    }
    ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

/// Header of [`status_rows`].
pub const STATUS_HEADER: [&str; 8] = [
    "ENDPOINT",
    "NODE",
    "ROLE",
    "TERM",
    "LAST INDEX",
    "APPLIED",
    "LEADER",
    "ERROR",
];

/// One row per endpoint; an unreachable one shows its error.
pub fn status_rows(statuses: &[EndpointStatus]) -> Vec<Vec<String>> {
    statuses
        .iter()
        .map(|s| match &s.result {
            Ok(st) => vec![
                s.endpoint.clone(),
                st.node_id.to_string(),
                st.role.as_str().to_string(),
                st.term.to_string(),
                opt(st.last_log_index),
                opt(st.applied_index),
                opt(st.leader),
                String::new(),
            ],
            Err(e) => {
                let mut row = vec![s.endpoint.clone()];
                row.extend(std::iter::repeat_n("-".to_string(), 6));
                row.push(e.clone());
                row
            }
        })
        .collect()
}

/// Header of [`members_rows`].
pub const MEMBERS_HEADER: [&str; 6] = ["ID", "ROLE", "API", "RAFT", "PEER", "UUID"];

/// One row per member, by id.
pub fn members_rows(view: &MembersView) -> Vec<Vec<String>> {
    view.members
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                if m.voter { "voter" } else { "learner" }.to_string(),
                m.api_addr.clone(),
                m.raft_addr.clone(),
                m.peer_addr.clone(),
                m.node_uuid.clone(),
            ]
        })
        .collect()
}

/// `manual`, `auto (rule)`, `workload (profile)`, `rollback of 12`.
pub fn reason_text(r: &ReasonView) -> String {
    match r {
        ReasonView::Manual => "manual".to_string(),
        ReasonView::Auto { rule } => format!("auto ({rule})"),
        ReasonView::Workload { profile } => format!("workload ({profile})"),
        ReasonView::Rollback { of } => format!("rollback of {of}"),
    }
}

/// `prepared`, `failed: reason`, ...
pub fn phase_text(p: &PhaseView) -> String {
    match p {
        PhaseView::Prepared => "prepared".to_string(),
        PhaseView::Failed { reason } => format!("failed: {reason}"),
        PhaseView::Verified => "verified".to_string(),
        PhaseView::Unhealthy { reason } => format!("unhealthy: {reason}"),
    }
}

/// `committed (epoch 4)`, `aborted: reason`, `in progress (2/3 prepared)`.
pub fn outcome_text(t: &TransitionView) -> String {
    match t.status {
        crate::api::types::TransitionStatus::Committed => match (t.epoch, t.missing.is_empty()) {
            (Some(e), true) => format!("committed (epoch {e})"),
            (Some(e), false) => format!("committed (epoch {e}, without {})", ids(&t.missing)),
            (None, _) => "committed".to_string(),
        },
        crate::api::types::TransitionStatus::Aborted => {
            format!("aborted: {}", t.abort_reason.as_deref().unwrap_or("-"))
        }
        crate::api::types::TransitionStatus::InProgress => {
            let prepared = t
                .reports
                .values()
                .filter(|p| **p == PhaseView::Prepared)
                .count();
            format!("in progress ({prepared}/{} prepared)", t.members.len())
        }
    }
}

/// Key-value rows of the current topology, then its overlay config.
pub fn info_rows(info: &TopologyInfo) -> Vec<Vec<String>> {
    let in_flight = info.in_flight.as_ref().map_or("-".to_string(), |t| {
        format!("{}: {} -> {}, {}", t.id, t.from, t.to, outcome_text(t))
    });
    let mut rows = vec![
        kv("topology", info.topology),
        kv("epoch", info.epoch),
        kv("instance", info.current_instance),
        kv("nodes", info.node_count),
        kv("leader", opt(info.leader)),
        kv("in flight", in_flight),
        kv("links (this node)", ids(&info.links)),
    ];
    match &info.metrics {
        Some(m) => rows.extend(super::monitor::metrics_rows(m)),
        None => rows.push(kv("metrics", "- (no monitor round yet)")),
    }
    let mut config = Vec::new();
    flatten("", &info.overlay_config, &mut config);
    rows.extend(
        config
            .into_iter()
            .map(|(k, v)| kv(format!("config.{k}"), v)),
    );
    rows
}

fn kv(k: impl ToString, v: impl ToString) -> Vec<String> {
    vec![k.to_string(), v.to_string()]
}

/// `a.b = value` pairs of a JSON object, keys in order.
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other if !prefix.is_empty() => out.push((prefix.to_string(), other.to_string())),
        _ => {}
    }
}

/// Header of [`history_rows`].
pub const HISTORY_HEADER: [&str; 8] = [
    "ID", "FROM", "TO", "REASON", "BY", "PROPOSED", "DECIDED", "OUTCOME",
];

/// One row per transition, newest first.
pub fn history_rows(page: &HistoryPage) -> Vec<Vec<String>> {
    page.transitions
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                t.from.to_string(),
                t.to.to_string(),
                reason_text(&t.reason),
                t.requested_by.clone(),
                format_unix_ms(t.proposed_at_ms),
                t.decided_at_ms.map_or("-".to_string(), format_unix_ms),
                outcome_text(t),
            ]
        })
        .collect()
}

/// Key-value rows of one transition, with each member's report.
pub fn transition_rows(t: &TransitionView) -> Vec<Vec<String>> {
    let mut rows = vec![
        kv("id", t.id),
        kv("from", t.from),
        kv("to", t.to),
        kv("reason", reason_text(&t.reason)),
        kv("requested by", &t.requested_by),
        kv("proposed", format_unix_ms(t.proposed_at_ms)),
        kv(
            "decided",
            t.decided_at_ms.map_or("-".to_string(), format_unix_ms),
        ),
        kv("outcome", outcome_text(t)),
        kv("request id", t.request_id.as_deref().unwrap_or("-")),
    ];
    for m in &t.members {
        let report = t.reports.get(m).map_or("waiting".to_string(), phase_text);
        rows.push(kv(format!("node {m}"), report));
    }
    for (node, phase) in &t.health {
        rows.push(kv(format!("health of node {node}"), phase_text(phase)));
    }
    rows
}

/// Key-value rows of the policy.
pub fn policy_rows(p: &PolicyView) -> Vec<Vec<String>> {
    let mut rows = vec![
        kv("cooldown_ms", p.cooldown_ms),
        kv("auto_switch", if p.auto_switch { "on" } else { "off" }),
        kv("history_retention", p.history_retention),
        kv("monitor_interval_ms", p.monitor_interval_ms),
        kv("hold_rounds", p.hold_rounds),
        kv("flap_window_ms", p.flap_window_ms),
    ];
    rows.extend(
        p.thresholds
            .pairs()
            .into_iter()
            .map(|(k, v)| kv(format!("thresholds.{k}"), v)),
    );
    let builtin = if p.builtin_profiles.is_empty() {
        "-".to_string()
    } else {
        p.builtin_profiles.join(", ")
    };
    rows.push(kv("builtin_profiles", builtin));
    for (name, profile) in &p.profiles {
        for (i, r) in profile.ranges.iter().enumerate() {
            let size = r
                .max_nodes
                .map_or("rest".to_string(), |m| format!("<= {m}"));
            let config = match &r.overlay_config {
                Some(c) => c.to_string(),
                None => "defaults".to_string(),
            };
            rows.push(kv(
                format!("profiles.{name}[{i}]"),
                format!("{size}: {} ({config})", r.topology),
            ));
        }
    }
    rows
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS.mmmZ` (UTC).
pub fn format_unix_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's
/// `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `steady (instance 4)`, `preparing (current 4, shadow 9)`, ...
pub fn state_text(s: &ExecStateView) -> String {
    match s {
        ExecStateView::Starting => "starting".to_string(),
        ExecStateView::Steady { current } => format!("steady (instance {current})"),
        ExecStateView::Preparing { current, shadow } => {
            format!("preparing (current {current}, shadow {shadow})")
        }
        ExecStateView::Draining { current, old } => {
            format!("draining (current {current}, old {old})")
        }
    }
}

/// `4 full_mesh, links 2,3` (and `, eager 2` for pub_sub).
fn overlay_text(o: Option<&OverlayView>) -> String {
    let Some(o) = o else {
        return "-".to_string();
    };
    let mut text = format!("{} {}, links {}", o.instance, o.topology, ids(&o.links));
    if let Some(eager) = &o.eager {
        text.push_str(&format!(", eager {}", ids(eager)));
    }
    text
}

/// Key-value rows of a node's data plane: state, overlays, totals and the
/// executor's counters.
pub fn node_stats_rows(s: &NodeStats) -> Vec<Vec<String>> {
    let t = &s.totals;
    let c = &s.counters;
    vec![
        kv("node", s.node_id),
        kv("incarnation", s.incarnation),
        kv("state", state_text(&s.state)),
        kv("verified", opt(s.verified)),
        kv("last failure", s.last_failure.as_deref().unwrap_or("-")),
        kv("current overlay", overlay_text(s.current.as_ref())),
        kv("other overlay", overlay_text(s.other.as_ref())),
        kv("links up", format!("{} of {} peers", t.links_up, t.peers)),
        kv(
            "bytes in / out",
            format!("{} / {}", t.bytes_in, t.bytes_out),
        ),
        kv(
            "messages in / out",
            format!("{} / {}", t.messages_in, t.messages_out),
        ),
        kv("send queue", t.send_queue_depth),
        kv("disconnects", t.disconnects),
        kv("frames dropped", t.frames_dropped),
        kv("events dropped", s.dropped_events),
        kv(
            "broadcasts / direct sent",
            format!("{} / {}", c.broadcasts_sent, c.direct_sent),
        ),
        kv("delivered", c.delivered),
        kv("duplicates dropped", c.duplicates_dropped),
        kv("stale frames dropped", c.stale_frames_dropped),
        kv("undecodable frames", c.undecodable_frames),
        kv("send failures", c.send_failures),
        kv(
            "probes ok / failed",
            format!("{} / {}", c.probes_ok, c.probes_failed),
        ),
        kv(
            "repairs asked / sent / delivered",
            format!(
                "{} / {} / {}",
                c.repairs_requested, c.repairs_sent, c.repaired
            ),
        ),
        kv("broadcasts unrecoverable", c.unrecoverable),
        kv(
            "summary window",
            format!("{:.1}s", s.summary.window_ms as f64 / 1e3),
        ),
        kv(
            "overlay links up / expected",
            format!("{} / {}", s.summary.links_up, s.summary.links_expected),
        ),
        kv(
            "overlay rtt p50 / p99",
            s.summary.rtt_ms.map_or("-".to_string(), |r| {
                format!("{:.2}ms / {:.2}ms", r.p50, r.p99)
            }),
        ),
        kv(
            "broadcast hops p50 / max",
            s.summary
                .hops
                .map_or("-".to_string(), |h| format!("{} / {}", h.p50, h.max)),
        ),
        kv("cpu share", format!("{:.2}", s.summary.cpu_share)),
    ]
}

/// Header of [`peer_rows`].
pub const PEERS_HEADER: [&str; 13] = [
    "PEER",
    "LINK",
    "OVERLAY",
    "RTT",
    "P50",
    "P99",
    "BYTES IN",
    "BYTES OUT",
    "MSGS IN",
    "MSGS OUT",
    "QUEUE",
    "DISCONNECTS",
    "DROPPED",
];

/// A duration in µs as `850µs`, `12.3ms` or `1.20s`.
pub fn micros_text(us: Option<u64>) -> String {
    match us {
        None => "-".to_string(),
        Some(us) if us < 1_000 => format!("{us}µs"),
        Some(us) if us < 1_000_000 => format!("{:.1}ms", us as f64 / 1e3),
        Some(us) => format!("{:.2}s", us as f64 / 1e6),
    }
}

/// One row per peer, by id.
pub fn peer_rows(s: &NodeStats) -> Vec<Vec<String>> {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    s.peers
        .iter()
        .map(|p| {
            vec![
                p.peer.to_string(),
                if p.link_up { "up" } else { "down" }.to_string(),
                yes_no(p.overlay_link),
                micros_text(p.rtt_us),
                micros_text(p.rtt_p50_us),
                micros_text(p.rtt_p99_us),
                p.bytes_in.to_string(),
                p.bytes_out.to_string(),
                p.messages_in.to_string(),
                p.messages_out.to_string(),
                p.send_queue_depth.to_string(),
                p.disconnects.to_string(),
                p.frames_dropped.to_string(),
            ]
        })
        .collect()
}

/// One line above the rules: chaos mode and how many rules.
pub fn faults_summary(v: &FaultsView) -> String {
    if !v.chaos_enabled {
        return format!(
            "node {}: chaos mode is off (transport.chaos = false); no fault rules",
            v.node_id
        );
    }
    match v.rules.len() {
        0 => format!("node {}: chaos mode on; no fault rules", v.node_id),
        n => format!(
            "node {}: chaos mode on; {n} fault rule(s), seed {}",
            v.node_id, v.seed
        ),
    }
}

/// Header of [`fault_rows`].
pub const FAULTS_HEADER: [&str; 4] = ["PEER", "DIRECTION", "DROP", "DELAY"];

/// One row per rule, in the installed order.
pub fn fault_rows(v: &FaultsView) -> Vec<Vec<String>> {
    v.rules
        .iter()
        .map(|r| {
            vec![
                r.peer.to_string(),
                r.direction.as_str().to_string(),
                format!("{}", r.drop_probability),
                format!("{}ms", r.delay_ms),
            ]
        })
        .collect()
}
