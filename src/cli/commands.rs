//! Runs one `topoctl` command against the API and prints the answer.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use hyper::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::args::{
    Cli, Command, FaultsCommand, HistoryArgs, JoinArgs, NodeCommand, OptimizeArgs, PolicyArgs,
    RulesCommand, SwitchArgs, TransitionArgs, WatchArgs,
};
use super::render::{self, EndpointStatus};
use super::watch::{self, Lines, ProgressSink, Silent, Spinner};
use super::{ApiClient, CliError, MAX_ENDPOINTS};
use crate::api::types::{
    ClusterStatus, FaultsView, HistoryPage, JoinRequest, MembersView, MonitorRoundEvent,
    MonitorView, NodeStats, OptimizeAnswer, OptimizeRequest, OptimizeStatus, PolicyRequest,
    PolicyView, SwitchAccepted, SwitchRequest, TopologyEventView, TopologyInfo, TransitionStatus,
    TransitionView,
};
use crate::model::TransitionId;

/// The cluster CA topoctl trusts: `--ca-cert` (which must be usable), else
/// `<data-dir>/certs/ca.pem` when it exists, else none (plain HTTP).
fn cluster_roots(cli: &Cli) -> Result<Option<rustls::RootCertStore>, CliError> {
    let (path, explicit) = match &cli.ca_cert {
        Some(p) => (p.clone(), true),
        None => (cli.data_dir.join("certs").join("ca.pem"), false),
    };
    if !explicit && !path.exists() {
        return Ok(None);
    }
    crate::security::client::roots_from_file(&path)
        .map(Some)
        .map_err(|e| {
            CliError::BadRequest(crate::api::types::BadRequest::new(format!(
                "the cluster CA {e} (--ca-cert, TOPOCTL_CA_CERT or <data-dir>/certs/ca.pem)"
            )))
        })
}

/// Runs `cli`, printing results to `out`. Errors are returned for the
/// binary to print as `error: <code>: <message>` (exit 1).
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    if cli.endpoints.len() > MAX_ENDPOINTS {
        return Err(CliError::BadRequest(crate::api::types::BadRequest::new(
            format!("at most {MAX_ENDPOINTS} endpoints"),
        )));
    }
    let roots = cluster_roots(&cli)?;
    let token = super::token::resolve(cli.token.as_deref(), &cli.data_dir)?;
    let client = ApiClient::with_roots(
        cli.endpoints.clone(),
        Duration::from_millis(cli.timeout_ms),
        roots,
    )
    .with_token(token);
    let json = cli.json;
    match cli.command {
        Command::Status => status(&client, json, out).await,
        Command::Members => {
            show::<MembersView>(&client, "/v1/cluster/members", json, out, |v| {
                render::table(&render::MEMBERS_HEADER, render::members_rows(v))
            })
            .await
        }
        Command::Info => {
            show::<TopologyInfo>(&client, "/v1/topology", json, out, |v| {
                render::table(&["KEY", "VALUE"], render::info_rows(v))
            })
            .await
        }
        Command::Switch(args) => switch(&client, &args, json, out).await,
        Command::Transition(args) => transition(&client, &args, json, out).await,
        Command::History(args) => history(&client, &args, json, out).await,
        Command::Policy(args) => policy(&client, &args, json, out).await,
        Command::Optimize(args) => optimize(&client, &args, json, out).await,
        Command::Monitor => monitor(&client, json, out).await,
        Command::Watch(args) => watch_events(&client, &args, json, out).await,
        Command::Join(args) => join(&client, &args, json, out).await,
        Command::Promote { id } => {
            let path = format!("/v1/cluster/members/{id}/promote");
            members_change(&client, Method::POST, &path, None, json, out).await
        }
        Command::Remove { id } => {
            let path = format!("/v1/cluster/members/{id}");
            members_change(&client, Method::DELETE, &path, None, json, out).await
        }
        Command::Simulate(mut args) => {
            args.json = json;
            crate::sim::run_simulate(&args, out)?;
            Ok(())
        }
        Command::Node(NodeCommand::Stats) => node_stats(&client, json, out).await,
        Command::Faults(cmd) => faults(&client, &cmd, json, out).await,
        Command::Rules(cmd) => rules(&client, &cmd, json, out).await,
        Command::Snapshot(cmd) => super::snapshot::snapshot(client, &cmd, json, out).await,
        Command::Token(cmd) => super::token::token(&client, &cmd, json, out).await,
    }
}

/// `rules list|check|set`. `check` sends nothing; `set` checks first and
/// sends nothing when the file has an error.
async fn rules(
    client: &ApiClient,
    cmd: &RulesCommand,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let checked = |file: &std::path::Path| {
        super::rules::check_file(file).map_err(|problems| CliError::Rules {
            file: file.display().to_string(),
            problems,
        })
    };
    let answer = match cmd {
        RulesCommand::List => client.get::<serde_json::Value>("/v1/policy").await?,
        RulesCommand::Check { file } => {
            let rules = checked(file)?;
            let disabled = rules.disabled.as_ref().map_or(0, Vec::len);
            if json {
                return print_json(out, &rules.request());
            }
            writeln!(
                out,
                "{}: ok, {} custom rule(s), {disabled} disabled built-in rule(s)",
                file.display(),
                rules.custom.len()
            )?;
            return Ok(());
        }
        RulesCommand::Set { file } => {
            let req = checked(file)?.request();
            client
                .send::<serde_json::Value>(Method::PUT, "/v1/policy", &req)
                .await?
        }
    };
    let view: PolicyView = decode_value(&answer.endpoint, answer.value)?;
    if json {
        let subset = serde_json::json!({
            "builtin_rules": view.builtin_rules,
            "disabled_rules": view.disabled_rules,
            "custom_rules": view.custom_rules,
        });
        return print_json(out, &subset);
    }
    writeln!(
        out,
        "{}",
        render::table(
            &super::rules::BUILTIN_HEADER,
            super::rules::builtin_rows(&view)
        )
    )?;
    if view.custom_rules.is_empty() {
        writeln!(out, "no custom rules")?;
    } else {
        writeln!(
            out,
            "{}",
            render::table(
                &super::rules::CUSTOM_HEADER,
                super::rules::custom_rows(&view)
            )
        )?;
    }
    Ok(())
}

/// `node stats`: asks the first endpoint only (the answer is about it).
async fn node_stats(client: &ApiClient, json: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let endpoint = &client.endpoints()[0];
    let answer = client
        .get_from::<serde_json::Value>(endpoint, "/v1/node/stats")
        .await?;
    if json {
        return print_json(out, &answer.value);
    }
    let stats: NodeStats = decode_value(&answer.endpoint, answer.value)?;
    writeln!(
        out,
        "{}",
        render::table(&["KEY", "VALUE"], render::node_stats_rows(&stats))
    )?;
    writeln!(
        out,
        "{}",
        render::table(&render::PEERS_HEADER, render::peer_rows(&stats))
    )?;
    Ok(())
}

/// `faults show|set|clear`, to the first endpoint only: rules are local
/// to a node, and failing over would install them on another one.
async fn faults(
    client: &ApiClient,
    cmd: &FaultsCommand,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let endpoint = &client.endpoints()[0];
    let path = "/v1/node/faults";
    let answer = match cmd {
        FaultsCommand::Show => client.get_from::<serde_json::Value>(endpoint, path).await?,
        FaultsCommand::Set(args) => {
            let req = super::faults::faults_request(args)?;
            let body = serde_json::to_vec(&req).expect("fault rules serialise");
            client
                .request_to(endpoint, Method::PUT, path, Some(body.into()))
                .await?
        }
        FaultsCommand::Clear => {
            client
                .request_to(endpoint, Method::DELETE, path, None)
                .await?
        }
    };
    if json {
        return print_json(out, &answer.value);
    }
    let view: FaultsView = decode_value(&answer.endpoint, answer.value)?;
    writeln!(out, "{}", render::faults_summary(&view))?;
    if !view.rules.is_empty() {
        writeln!(
            out,
            "{}",
            render::table(&render::FAULTS_HEADER, render::fault_rows(&view))
        )?;
    }
    Ok(())
}

fn print_json(out: &mut dyn Write, v: &impl Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(v).expect("JSON values serialise");
    writeln!(out, "{text}")?;
    Ok(())
}

/// `GET path`, printed raw (`--json`) or as the table `render` makes.
async fn show<T: DeserializeOwned>(
    client: &ApiClient,
    path: &str,
    json: bool,
    out: &mut dyn Write,
    render: impl FnOnce(&T) -> comfy_table::Table,
) -> Result<(), CliError> {
    if json {
        let v = client.get::<serde_json::Value>(path).await?;
        return print_json(out, &v.value);
    }
    let v = client.get::<T>(path).await?;
    writeln!(out, "{}", render(&v.value))?;
    Ok(())
}

/// Asks every endpoint (concurrently) for its own status.
async fn status(client: &ApiClient, json: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let answers = futures::future::join_all(
        client
            .endpoints()
            .iter()
            .map(|ep| client.get_from::<serde_json::Value>(ep, "/v1/cluster/status")),
    )
    .await;
    let statuses: Vec<(String, Result<serde_json::Value, CliError>)> = client
        .endpoints()
        .iter()
        .map(ToString::to_string)
        .zip(answers.into_iter().map(|a| a.map(|a| a.value)))
        .collect();
    if json {
        let list: Vec<serde_json::Value> = statuses
            .iter()
            .map(|(ep, r)| match r {
                Ok(v) => serde_json::json!({"endpoint": ep, "status": v}),
                Err(e) => serde_json::json!({"endpoint": ep, "error": e.to_body().error}),
            })
            .collect();
        return print_json(out, &list);
    }
    let none_answered = statuses.iter().all(|(_, r)| r.is_err());
    let rows: Vec<EndpointStatus> = statuses
        .into_iter()
        .map(|(endpoint, r)| EndpointStatus {
            endpoint,
            result: r.map_err(|e| row_error(&e)).and_then(|v| {
                serde_json::from_value::<ClusterStatus>(v)
                    .map_err(|e| format!("bad_response: unexpected JSON ({e})"))
            }),
        })
        .collect();
    writeln!(
        out,
        "{}",
        render::table(&render::STATUS_HEADER, render::status_rows(&rows))
    )?;
    if none_answered {
        return Err(CliError::Unreachable {
            attempts: rows
                .into_iter()
                .map(|r| {
                    let e = r.result.err().unwrap_or_default();
                    (
                        r.endpoint,
                        e.trim_start_matches("unreachable: ").to_string(),
                    )
                })
                .collect(),
        });
    }
    Ok(())
}

/// An endpoint's error in one short cell.
fn row_error(e: &CliError) -> String {
    match e {
        CliError::Unreachable { attempts } if attempts.len() == 1 => {
            format!("unreachable: {}", attempts[0].1)
        }
        other => other.to_string(),
    }
}

/// The switch request the arguments describe.
pub fn switch_request(args: &SwitchArgs) -> Result<SwitchRequest, CliError> {
    let overlay_config = match &args.config {
        None => None,
        Some(text) => Some(serde_json::from_str(text).map_err(|e| {
            crate::api::types::BadRequest::new(format!("--config is not valid JSON: {e}"))
        })?),
    };
    Ok(SwitchRequest {
        topology: args.topology.clone(),
        overlay_config,
        wait: None,
        request_id: args.request_id.clone(),
        wait_timeout_ms: None,
    })
}

async fn switch(
    client: &ApiClient,
    args: &SwitchArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let req = switch_request(args)?;
    let accepted = client
        .send::<serde_json::Value>(Method::POST, "/v1/topology/switch", &req)
        .await?;
    let decoded: SwitchAccepted =
        serde_json::from_value(accepted.value.clone()).map_err(|e| CliError::BadResponse {
            endpoint: accepted.endpoint.to_string(),
            message: format!("unexpected JSON ({e})"),
        })?;
    if !args.wait {
        if json {
            return print_json(out, &accepted.value);
        }
        writeln!(
            out,
            "transition {id} accepted ({}); follow it with: topoctl transition {id} --wait",
            decoded.status.as_str(),
            id = decoded.transition_id,
        )?;
        return Ok(());
    }
    let timeout = Duration::from_millis(args.wait_timeout_ms);
    follow(client, decoded.transition_id, timeout, json, out).await
}

async fn transition(
    client: &ApiClient,
    args: &TransitionArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let path = format!("/v1/transitions/{}", args.id);
    if !args.wait {
        return show::<TransitionView>(client, &path, json, out, |v| {
            render::table(&["KEY", "VALUE"], render::transition_rows(v))
        })
        .await;
    }
    let timeout = Duration::from_millis(args.wait_timeout_ms);
    follow(client, args.id, timeout, json, out).await
}

/// Waits for transition `id` to be decided, showing its phases (a spinner
/// on a terminal, plain lines otherwise, nothing with `--json`), then
/// prints it. Exit 1 if it was aborted.
async fn follow(
    client: &ApiClient,
    id: TransitionId,
    timeout: Duration,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let view = {
        let mut spinner;
        let mut lines;
        let mut silent = Silent;
        let sink: &mut dyn ProgressSink = if json {
            &mut silent
        } else if std::io::stderr().is_terminal() {
            spinner = Spinner::new();
            &mut spinner
        } else {
            lines = Lines(&mut *out);
            &mut lines
        };
        watch::wait_for_decision(client, id, timeout, watch::POLL_INTERVAL, sink).await?
    };
    if json {
        print_json(out, &view)?;
    } else {
        writeln!(
            out,
            "{}",
            render::table(&["KEY", "VALUE"], render::transition_rows(&view))
        )?;
    }
    decided(&view)
}

/// An aborted transition is an error (exit 1).
fn decided(view: &TransitionView) -> Result<(), CliError> {
    if view.status == TransitionStatus::Aborted {
        return Err(CliError::Aborted {
            id: view.id,
            reason: view.abort_reason.clone().unwrap_or_default(),
        });
    }
    Ok(())
}

async fn history(
    client: &ApiClient,
    args: &HistoryArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let mut path = format!("/v1/topology/history?limit={}", args.limit);
    if let Some(before) = args.before {
        path.push_str(&format!("&before={before}"));
    }
    if json {
        let v = client.get::<serde_json::Value>(&path).await?;
        return print_json(out, &v.value);
    }
    let page = client.get::<HistoryPage>(&path).await?.value;
    writeln!(
        out,
        "{}",
        render::table(&render::HISTORY_HEADER, render::history_rows(&page))
    )?;
    if let Some(next) = page.next_before {
        writeln!(out, "older transitions: topoctl history --before {next}")?;
    }
    Ok(())
}

fn usage(message: String) -> CliError {
    CliError::BadRequest(crate::api::types::BadRequest::new(message))
}

/// The `PUT /v1/policy` body the flags ask for (`--profile-file` read as
/// JSON); `None` without flags. Checked like the server decodes it, so a
/// misspelt threshold is refused before anything is sent.
pub fn policy_request(args: &PolicyArgs) -> Result<Option<PolicyRequest>, CliError> {
    use serde_json::{Map, Value};
    let mut body = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            body.insert(k.to_string(), v);
        }
    };
    put("cooldown_ms", args.cooldown_ms.map(Value::from));
    put("auto_switch", args.auto_switch.map(Value::from));
    put("history_retention", args.history_retention.map(Value::from));
    put(
        "monitor_interval_ms",
        args.monitor_interval_ms.map(Value::from),
    );
    put("hold_rounds", args.hold_rounds.map(Value::from));
    put("flap_window_ms", args.flap_window_ms.map(Value::from));
    let mut thresholds = Map::new();
    for t in &args.thresholds {
        let (k, v) = t
            .split_once('=')
            .ok_or_else(|| usage(format!("--threshold `{t}` is not KEY=VALUE")))?;
        let v: Value = serde_json::from_str(v.trim())
            .map_err(|_| usage(format!("--threshold {k}: `{v}` is not a number")))?;
        thresholds.insert(k.trim().to_string(), v);
    }
    if !thresholds.is_empty() {
        body.insert("thresholds".into(), Value::Object(thresholds));
    }
    let mut profiles = match &args.profile_file {
        None => Map::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| usage(format!("--profile-file {}: {e}", path.display())))?;
            match serde_json::from_str(&text) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(usage(format!(
                        "--profile-file {}: expected a JSON object of profiles by name",
                        path.display()
                    )))
                }
                Err(e) => {
                    return Err(usage(format!(
                        "--profile-file {} is not JSON: {e}",
                        path.display()
                    )))
                }
            }
        }
    };
    for name in &args.delete_profile {
        profiles.insert(name.clone(), Value::Null);
    }
    if !profiles.is_empty() {
        body.insert("profiles".into(), Value::Object(profiles));
    }
    if body.is_empty() {
        return Ok(None);
    }
    Ok(Some(PolicyRequest::from_json(&Value::Object(body))?))
}

async fn policy(
    client: &ApiClient,
    args: &PolicyArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let answer = match policy_request(args)? {
        None => client.get::<serde_json::Value>("/v1/policy").await?,
        Some(req) => {
            client
                .send::<serde_json::Value>(Method::PUT, "/v1/policy", &req)
                .await?
        }
    };
    if json {
        return print_json(out, &answer.value);
    }
    let view: PolicyView = decode_value(&answer.endpoint, answer.value)?;
    writeln!(
        out,
        "{}",
        render::table(&["KEY", "VALUE"], render::policy_rows(&view))
    )?;
    Ok(())
}

async fn join(
    client: &ApiClient,
    args: &JoinArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let req = JoinRequest {
        id: args.id,
        api_addr: args.api_addr.clone(),
        raft_addr: args.raft_addr.clone(),
        peer_addr: args.peer_addr.clone(),
        node_uuid: args.node_uuid.clone(),
    };
    req.to_node_addr()?;
    let body = serde_json::to_vec(&req).expect("join request serialises");
    members_change(
        client,
        Method::POST,
        "/v1/cluster/members",
        Some(body.into()),
        json,
        out,
    )
    .await
}

/// A membership change; prints the members afterwards.
async fn members_change(
    client: &ApiClient,
    method: Method,
    path: &str,
    body: Option<bytes::Bytes>,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let answer = client
        .request::<serde_json::Value>(method, path, body)
        .await?;
    if json {
        return print_json(out, &answer.value);
    }
    let view: MembersView = decode_value(&answer.endpoint, answer.value)?;
    writeln!(
        out,
        "{}",
        render::table(&render::MEMBERS_HEADER, render::members_rows(&view))
    )?;
    Ok(())
}

fn decode_value<T: DeserializeOwned>(
    endpoint: &super::Endpoint,
    v: serde_json::Value,
) -> Result<T, CliError> {
    serde_json::from_value(v).map_err(|e| CliError::BadResponse {
        endpoint: endpoint.to_string(),
        message: format!("unexpected JSON ({e})"),
    })
}

async fn optimize(
    client: &ApiClient,
    args: &OptimizeArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let req = OptimizeRequest {
        request_id: args.request_id.clone(),
        ..OptimizeRequest::new(&args.profile)
    };
    let answer = client
        .send::<serde_json::Value>(Method::POST, "/v1/topology/optimize", &req)
        .await?;
    let decoded: OptimizeAnswer = decode_value(&answer.endpoint, answer.value.clone())?;
    if json && !args.wait {
        return print_json(out, &answer.value);
    }
    if !json {
        writeln!(out, "{}", optimize_text(&decoded))?;
    }
    match decoded.transition_id {
        Some(id) if args.wait => {
            let timeout = Duration::from_millis(args.wait_timeout_ms);
            follow(client, id, timeout, json, out).await
        }
        _ => {
            if json {
                print_json(out, &answer.value)?;
            }
            Ok(())
        }
    }
}

/// What `optimize` did, for the operator.
pub fn optimize_text(a: &OptimizeAnswer) -> String {
    let head = format!("{}: {} members -> {}", a.workload, a.node_count, a.topology);
    match (a.status, a.transition_id) {
        (OptimizeStatus::AlreadyCurrent, _) | (_, None) => {
            format!("{head}: already current\nwhy: {}", a.why)
        }
        (status, Some(id)) => format!(
            "{head}: transition {id} {}\nwhy: {}",
            status.as_str(),
            a.why
        ),
    }
}

async fn monitor(client: &ApiClient, json: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let answer = client.get::<serde_json::Value>("/v1/monitor").await?;
    if json {
        return print_json(out, &answer.value);
    }
    let view: MonitorView = decode_value(&answer.endpoint, answer.value)?;
    let Some(round) = view.round else {
        writeln!(out, "no monitor round yet")?;
        return Ok(());
    };
    writeln!(
        out,
        "{}",
        render::table(&["KEY", "VALUE"], super::monitor::round_rows(&round))
    )?;
    writeln!(
        out,
        "{}",
        render::table(
            &super::monitor::RULES_HEADER,
            super::monitor::rule_rows(&round)
        )
    )?;
    Ok(())
}

/// One SSE event as the operator's line (or as JSON with `--json`).
pub fn watch_line(e: &super::sse::SseEvent, json: bool) -> Result<String, CliError> {
    let bad = |err: serde_json::Error| CliError::BadResponse {
        endpoint: "event stream".into(),
        message: format!("event `{}` is not the expected JSON ({err})", e.event),
    };
    if json {
        let data: serde_json::Value = serde_json::from_str(&e.data).map_err(bad)?;
        return Ok(serde_json::json!({"event": e.event, "data": data}).to_string());
    }
    Ok(match e.event.as_str() {
        "monitor_round" => {
            let r: MonitorRoundEvent = serde_json::from_str(&e.data).map_err(bad)?;
            super::monitor::round_event_line(&r)
        }
        "lagged" => {
            let l: crate::api::types::LaggedEvent = serde_json::from_str(&e.data).map_err(bad)?;
            format!(
                "missed {} {} events (this client fell behind)",
                l.missed, l.stream
            )
        }
        _ => {
            let t: TopologyEventView = serde_json::from_str(&e.data).map_err(bad)?;
            super::monitor::topology_event_line(&t)
        }
    })
}

/// Pause before `watch` reconnects after its stream ended.
pub const WATCH_RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// `watch`: prints events from `GET /v1/events` as they arrive. When the
/// stream ends (the node stopped), it reconnects through the endpoints
/// (events in between are missed, and it says so).
async fn watch_events(
    client: &ApiClient,
    args: &WatchArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    use http_body_util::BodyExt;
    let mut printed = 0u64;
    let done = |n: u64| args.count.is_some_and(|c| n >= c);
    loop {
        let (endpoint, mut body) = client.open_stream("/v1/events").await?;
        let mut parser = super::sse::SseParser::default();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| CliError::Network {
                endpoint: endpoint.to_string(),
                message: e.to_string(),
            })?;
            let Some(data) = frame.data_ref() else {
                continue;
            };
            let events = parser.push(data).map_err(|e| CliError::BadResponse {
                endpoint: endpoint.to_string(),
                message: e.to_string(),
            })?;
            for e in events {
                writeln!(out, "{}", watch_line(&e, json)?)?;
                out.flush()?;
                printed += 1;
                if done(printed) {
                    return Ok(());
                }
            }
        }
        if !json {
            writeln!(
                out,
                "stream from {endpoint} ended; reconnecting (events in between are missed)"
            )?;
        }
        tokio::time::sleep(WATCH_RECONNECT_DELAY).await;
    }
}
