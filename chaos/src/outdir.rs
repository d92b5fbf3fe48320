//! A run's output directory: what the harness writes there, removed at the
//! start of a run that reuses it.

use anyhow::Context;

/// Removes what an earlier run left in `out`: the node logs are opened for
/// appending (a restarted node goes on in the same file), so a reused
/// directory would otherwise mix two runs' logs and their WARN/ERROR
/// counts.
pub fn clear_outputs(out: &std::path::Path, nodes: usize) -> anyhow::Result<()> {
    let names = ["schedule.json", "history.jsonl", "report.json"];
    let per_node =
        (1..=nodes).flat_map(|n| [format!("node{n}.log"), format!("final-node{n}.json")]);
    for name in names.iter().map(|n| n.to_string()).chain(per_node) {
        let path = out.join(&name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::clear_outputs;

    #[test]
    fn a_reused_output_directory_starts_without_the_last_runs_files() {
        let dir = std::env::temp_dir().join(format!("topod-chaos-test-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            "node1.log",
            "node2.log",
            "history.jsonl",
            "final-node2.json",
            "mine.txt",
        ] {
            std::fs::write(dir.join(name), "old").unwrap();
        }
        clear_outputs(&dir, 2).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec!["mine.txt"],
            "only a file the harness does not write stays"
        );
        clear_outputs(&dir, 2).expect("nothing to remove is not an error");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
