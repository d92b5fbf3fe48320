//! The docker backend against the Compose cluster of deploy/compose
//! (3 voters, 2 learners; the image `topod:latest` that scripts/image.sh
//! builds): a short seeded run with isolations, kills and pauses passes
//! every property and leaves nothing behind; SIGTERM or Ctrl-C (SIGINT)
//! in the middle of a run removes the project too; `cleanup --backend docker` removes what
//! a dead run left. Those need Docker and the image, so they are ignored
//! by default:
//!
//! ```sh
//! scripts/image.sh   # once
//! cargo test -p topod-chaos --test docker_backend -- --ignored --test-threads=1
//! ```
//!
//! The refusal of nemeses the backend cannot express needs neither and
//! always runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_topod-chaos");

fn out_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("docker-{name}"));
    if d.exists() {
        std::fs::remove_dir_all(&d).expect("clearing the output dir");
    }
    d
}

/// Waits for `child` to end within `within`, killing it past that.
fn wait(child: &mut Child, within: Duration) -> ExitStatus {
    let until = Instant::now() + within;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if Instant::now() >= until {
            child.kill().expect("kill");
            panic!("topod-chaos did not finish within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("running docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Containers, networks and volumes of Compose project `p`.
fn objects_of(p: &str) -> Vec<String> {
    let label = format!("label=com.docker.compose.project={p}");
    let mut all = Vec::new();
    for list in [
        vec!["ps", "-aq"],
        vec!["network", "ls", "-q"],
        vec!["volume", "ls", "-q"],
    ] {
        let mut args = list.clone();
        args.extend(["--filter", &label]);
        all.extend(
            docker(&args)
                .split_whitespace()
                .map(|s| format!("{list:?} {s}")),
        );
    }
    all
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn nemeses_docker_cannot_express_are_refused_by_name() {
    let out = Command::new(BIN)
        .args([
            "run",
            "--backend",
            "docker",
            "--nemesis",
            "isolate,split,bridge",
            "--duration",
            "5s",
        ])
        .output()
        .expect("running topod-chaos");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot run nemesis split, bridge") && err.contains("docker network"),
        "{err}"
    );
    let out = Command::new(BIN)
        .args([
            "run",
            "--backend",
            "docker",
            "--nemesis",
            "kill",
            "--topod",
            BIN,
        ])
        .output()
        .expect("running topod-chaos");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--topod is for the netns backend"), "{err}");
    // `all` includes what docker cannot express.
    let out = Command::new(BIN)
        .args(["run", "--backend", "docker", "--nemesis", "all"])
        .output()
        .expect("running topod-chaos");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("split, bridge, ring"), "{err}");
}

#[test]
#[ignore = "needs Docker and the topod:latest image (scripts/image.sh)"]
fn a_short_docker_run_with_isolations_kills_and_pauses_passes_every_property() {
    let out = out_dir("run");
    // Seed 1 over 45 s: kill (leader), pause, kill (leader), isolate a
    // voter, isolate another.
    let mut child = Command::new(BIN)
        .args([
            "run",
            "--backend",
            "docker",
            "--duration",
            "45s",
            "--seed",
            "1",
            "--nemesis",
            "isolate,kill,pause",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting topod-chaos");
    let project = format!("topodchaos{}", child.id());
    let st = wait(&mut child, Duration::from_secs(420));
    assert!(st.success(), "the run failed ({st}); see {}", out.display());

    let report = read_json(&out.join("report.json"));
    let verdicts = report["verdicts"].as_array().expect("verdicts");
    assert_eq!(verdicts.len(), 9, "{verdicts:?}");
    for v in verdicts {
        assert_eq!(v["pass"], true, "{v}");
    }
    assert_eq!(report["scenario"]["nodes"], 5);
    assert_eq!(report["scenario"]["voters"], 3, "the compose file's shape");
    for kind in ["isolate", "kill", "pause"] {
        assert!(
            report["faults_by_kind"][kind].as_u64().unwrap_or(0) >= 1,
            "no {kind} injected: {}",
            report["faults_by_kind"]
        );
    }
    assert!(
        report["convergence"]["t_ms"].is_u64(),
        "{}",
        report["convergence"]
    );

    let history = std::fs::read_to_string(out.join("history.jsonl")).expect("history");
    let records: Vec<Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).expect("a history line"))
        .collect();
    let errors: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "nemesis" && r["phase"] == "error")
        .collect();
    assert!(errors.is_empty(), "faults not injected: {errors:?}");
    let events = |e: &str| {
        records
            .iter()
            .filter(|r| r["type"] == "process" && r["event"] == e)
            .count()
    };
    assert_eq!(events("killed"), 2, "two docker kills");
    assert_eq!(events("started"), 5 + 2, "five ups and two docker starts");
    assert_eq!(events("ready"), 5 + 2, "each start became ready");
    assert_eq!(events("paused"), 1);
    assert_eq!(events("resumed"), 1);

    for n in 1..=5 {
        let log = std::fs::read_to_string(out.join(format!("node{n}.log"))).expect("node log");
        assert!(log.contains(" INFO "), "node{n}.log has no log lines");
        assert!(!log.contains('\u{1b}'), "node{n}.log has colour codes");
    }
    assert!(
        objects_of(&project).is_empty(),
        "left behind: {:?}",
        objects_of(&project)
    );
}

/// Starts a 120 s run, sends `sig` `after` the 5 containers run, and
/// checks that the run ends with 2, the project is gone and the logs
/// were saved.
fn interrupted_run_removes_the_project(name: &str, sig: Signal, after: Duration) {
    let out = out_dir(name);
    let mut child = Command::new(BIN)
        .args([
            "run",
            "--backend",
            "docker",
            "--duration",
            "120s",
            "--nemesis",
            "kill",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting topod-chaos");
    let project = format!("topodchaos{}", child.id());
    let label = format!("label=com.docker.compose.project={project}");
    let until = Instant::now() + Duration::from_secs(180);
    while docker(&["ps", "-q", "--filter", &label])
        .split_whitespace()
        .count()
        < 5
    {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "the run ended early"
        );
        assert!(Instant::now() < until, "5 containers never ran");
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(after);
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, sig).expect("signal");
    let st = wait(&mut child, Duration::from_secs(120));
    assert_eq!(st.code(), Some(2), "interrupted runs exit 2: {st}");
    assert!(
        objects_of(&project).is_empty(),
        "left behind after {sig}: {:?}",
        objects_of(&project)
    );
    let log = std::fs::read_to_string(out.join("node1.log")).expect("logs saved");
    assert!(log.contains(" INFO "), "{log}");
}

#[test]
#[ignore = "needs Docker and the topod:latest image (scripts/image.sh)"]
fn sigterm_as_the_containers_start_removes_the_project() {
    interrupted_run_removes_the_project("sigterm", Signal::SIGTERM, Duration::ZERO);
}

#[test]
#[ignore = "needs Docker and the topod:latest image (scripts/image.sh)"]
fn ctrl_c_during_the_faults_removes_the_project() {
    // Past the 5 s warm-up: the first kill has been injected.
    interrupted_run_removes_the_project("sigint", Signal::SIGINT, Duration::from_secs(12));
}

#[test]
#[ignore = "needs Docker"]
fn cleanup_removes_what_a_dead_run_left_and_keeps_a_running_ones() {
    // No pid is this large (pid_max is at most 2^22): its run is gone.
    let dead = "topodchaos4999999";
    // A topod-chaos process that stays up for a while: a run's stand-in.
    let mut live = Command::new(BIN)
        .args(["probe-listen", "127.0.0.1:0", "60"])
        .stdout(Stdio::null())
        .spawn()
        .expect("starting a live topod-chaos");
    let alive = format!("topodchaos{}", live.id());
    let alive_tmp = std::env::temp_dir().join(format!("topod-chaos-{}", live.id()));
    std::fs::create_dir_all(&alive_tmp).expect("a live run's temp dir");
    let mut vols = Vec::new();
    for p in [dead, alive.as_str()] {
        let label = format!("com.docker.compose.project={p}");
        vols.push(
            docker(&["volume", "create", "--label", &label])
                .trim()
                .to_string(),
        );
        assert_eq!(objects_of(p).len(), 1);
    }
    let out = Command::new(BIN)
        .args(["cleanup", "--backend", "docker"])
        .output()
        .expect("running topod-chaos cleanup");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let kept_live = objects_of(&alive).len() == 1 && alive_tmp.is_dir();
    // Whatever happened, leave nothing behind before asserting.
    live.kill().expect("kill the stand-in");
    live.wait().expect("reap the stand-in");
    docker(&["volume", "rm", "-f", &vols[1]]);
    if alive_tmp.exists() {
        std::fs::remove_dir_all(&alive_tmp).expect("removing the stand-in's temp dir");
    }
    assert!(out.status.success(), "{out:?}");
    assert!(
        said.contains(&format!("removed volume {} of {dead}", vols[0])),
        "{said}"
    );
    assert!(objects_of(dead).is_empty(), "{:?}", objects_of(dead));
    assert!(
        kept_live,
        "a running run's project or temp dir was removed: {said}"
    );
    assert!(said.contains(&format!("kept {alive}")), "{said}");
}
