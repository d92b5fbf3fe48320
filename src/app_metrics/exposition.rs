//! `topod_app_*` in the Prometheus text format, rendered at scrape time
//! from a summary (so that several nodes in one process keep their figures
//! apart, as in `api::exposition`). One series per metric name, no labels
//! besides a histogram's `quantile`: at most `app_metrics.max_names`
//! series families per node.
//!
//! | reported | exported |
//! |---|---|
//! | gauge `app.x` | gauge `topod_app_x` (its last value) |
//! | counter `app.y` | counter `topod_app_y_total` |
//! | histogram `app.z_ms` | summary `topod_app_z_ms{quantile="0.5"\|"0.99"}`, `topod_app_z_ms_count` (last minute) |

use crate::model::{AppSummaries, AppSummary};

use super::exported_name;

pub(super) fn render(summaries: &AppSummaries) -> String {
    let mut out = String::new();
    for (name, s) in summaries {
        let base = exported_name(name);
        let text = match s {
            AppSummary::Gauge { last, .. } => format!("# TYPE {base} gauge\n{base} {last}\n"),
            AppSummary::Counter { total, .. } => {
                let n = if base.ends_with("_total") {
                    base.clone()
                } else {
                    format!("{base}_total")
                };
                format!("# TYPE {n} counter\n{n} {total}\n")
            }
            AppSummary::Histogram { count, p50, p99 } => {
                let q = |v: &Option<f64>| v.map_or("NaN".to_string(), |v| v.to_string());
                format!(
                    "# TYPE {base} summary\n{base}{{quantile=\"0.5\"}} {}\n\
                     {base}{{quantile=\"0.99\"}} {}\n{base}_count {count}\n",
                    q(p50),
                    q(p99)
                )
            }
        };
        out.push_str(&text);
    }
    out
}
