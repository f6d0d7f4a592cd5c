//! `report.md`: the machine, the runtimes, a headline table (warren-runtime against the
//! other runtimes, and what the sandbox costs against the host), then each suite's method,
//! table and plot.

use std::fmt::Write as _;

use crate::results::{Measurement, Results, Status, Suite, SuiteStatus};
use crate::runtimes::WARREN;

/// A number with about three significant digits.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 10.0 {
        format!("{v:.2}")
    } else if a >= 0.1 || a == 0.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

fn ratio(r: f64) -> String {
    format!("{r:.2}×")
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The PNG files drawn for the suites, by suite name.
pub fn plots_for(suite: &str) -> &'static [(&'static str, &'static str)] {
    match suite {
        "lifecycle" => &[("lifecycle.png", "Lifecycle latency distributions")],
        "throughput" => &[(
            "throughput.png",
            "Containers per second against parallelism",
        )],
        "syscall" | "fs" | "network" | "cpu" => &[],
        _ => &[],
    }
}

/// The median of `subject` in `group` of `suite`.
fn median(s: &Suite, group: &str, subject: &str) -> Option<f64> {
    s.find(group, subject)
        .and_then(|m| m.stats)
        .map(|st| st.median)
}

fn headline(r: &Results, out: &mut String) {
    let others: Vec<&str> = r
        .runtimes
        .iter()
        .filter(|rt| rt.found && rt.name != WARREN)
        .map(|rt| rt.name.as_str())
        .collect();
    let compared: Vec<&Suite> = r
        .suites
        .iter()
        .filter(|s| matches!(s.name.as_str(), "lifecycle" | "throughput" | "memory"))
        .filter(|s| s.status == SuiteStatus::Ok)
        .collect();
    if !compared.is_empty() {
        let _ = writeln!(
            out,
            "## Headline: warren-runtime against the other runtimes\n"
        );
        let mut head = format!("| measure | {WARREN} |");
        let mut rule = "|---|---:|".to_owned();
        for o in &others {
            let _ = write!(head, " {o} |");
            rule.push_str("---:|");
        }
        for o in &others {
            let _ = write!(head, " warren / {o} |");
            rule.push_str("---:|");
        }
        let _ = writeln!(out, "{head}\n{rule}");
        for s in compared {
            for g in s.groups() {
                let unit = s
                    .measurements
                    .iter()
                    .find(|m| m.group == g)
                    .map(|m| m.unit.as_str())
                    .unwrap_or("");
                let w = median(s, g, WARREN);
                let show = |v: Option<f64>, subject: &str| match (v, s.find(g, subject)) {
                    (Some(v), _) => format!("{} {unit}", num(v)),
                    (None, Some(m)) if m.status == Status::Failed => "failed".into(),
                    _ => "–".into(),
                };
                let mut row = format!("| {}: {} | {} |", s.title, cell(g), show(w, WARREN));
                for o in &others {
                    let _ = write!(row, " {} |", show(median(s, g, o), o));
                }
                for o in &others {
                    let r = match (w, median(s, g, o)) {
                        (Some(a), Some(b)) if b > 0.0 => format!("**{}**", ratio(a / b)),
                        _ => "–".into(),
                    };
                    let _ = write!(row, " {r} |");
                }
                let _ = writeln!(out, "{row}");
            }
        }
        let _ = writeln!(
            out,
            "\nTimes and memory: < 1 means warren-runtime is smaller/faster. Throughput \
             (containers/s): > 1 means warren-runtime is faster.\n"
        );
    }
    let costs: Vec<(&Suite, &Measurement)> = r
        .suites
        .iter()
        .filter(|s| matches!(s.name.as_str(), "syscall" | "fs" | "network" | "cpu"))
        .flat_map(|s| s.measurements.iter().map(move |m| (s, m)))
        .filter(|(_, m)| m.subject != "host")
        .collect();
    if !costs.is_empty() {
        let _ = writeln!(
            out,
            "## Headline: what the sandbox costs against the host\n"
        );
        let _ = writeln!(
            out,
            "Relative cost = time inside / time on the host (for rates: host rate / rate \
             inside); 1.00× is free. Medians are the reported figure; the best samples \
             (fastest time, highest rate, on each side) are the least disturbed by other load \
             on the machine.\n"
        );
        let _ = writeln!(
            out,
            "| suite | measure | configuration | median | relative cost (medians) | \
             relative cost (best samples) |"
        );
        let _ = writeln!(out, "|---|---|---|---:|---:|---:|");
        for (s, m) in costs {
            let best = best_cost(s, m).map_or_else(|| "–".into(), ratio);
            let (med, cost) = match (m.stats, m.cost()) {
                (Some(st), Some(c)) => (format!("{} {}", num(st.median), m.unit), ratio(c)),
                (Some(st), None) => (format!("{} {}", num(st.median), m.unit), "–".into()),
                _ => ("failed".into(), "–".into()),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {med} | {cost} | {best} |",
                s.title,
                cell(&m.group),
                cell(&m.subject)
            );
        }
        let _ = writeln!(out, "\n![relative cost against the host](overhead.png)\n");
    }
}

/// Relative cost from the best samples (min time, max rate) of `m` and its baseline: on a
/// busy machine the best samples are the least disturbed.
fn best_cost(s: &Suite, m: &Measurement) -> Option<f64> {
    let base = s.find(&m.group, m.baseline.as_deref()?)?.stats?;
    let st = m.stats?;
    let c = if m.higher_is_better {
        base.max / st.max
    } else {
        st.min / base.min
    };
    c.is_finite().then_some(c)
}

fn suite_table(s: &Suite, out: &mut String) {
    let _ = writeln!(
        out,
        "| measure | subject | median | p95 | min | n | ratio |\n|---|---|---:|---:|---:|---:|---|"
    );
    for g in s.groups() {
        let mut first = true;
        for m in s.measurements.iter().filter(|m| m.group == g) {
            let label = if first {
                format!("{} ({})", cell(g), m.unit)
            } else {
                String::new()
            };
            first = false;
            match m.stats {
                Some(st) if m.status == Status::Ok => {
                    let r = match (&m.ratio, &m.baseline) {
                        (Some(r), Some(b)) if b == &m.subject => {
                            format!("{} (baseline)", ratio(*r))
                        }
                        (Some(r), Some(b)) => format!("{} {}", ratio(*r), cell(b)),
                        _ => "–".into(),
                    };
                    let warn = if m.failures > 0 {
                        format!(
                            " ⚠ {} failed: {}",
                            m.failures,
                            cell(m.error.as_deref().unwrap_or(""))
                        )
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        out,
                        "| {label} | {} | {} | {} | {} | {} | {r}{warn} |",
                        cell(&m.subject),
                        num(st.median),
                        num(st.p95),
                        num(st.min),
                        st.n
                    );
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "| {label} | {} | **failed** | | | | {} |",
                        cell(&m.subject),
                        cell(m.error.as_deref().unwrap_or("failed"))
                    );
                }
            }
        }
    }
    let extras: Vec<&Measurement> = s
        .measurements
        .iter()
        .filter(|m| !m.extra.is_empty())
        .collect();
    if !extras.is_empty() {
        let _ = writeln!(out);
        for m in extras {
            let parts: Vec<String> = m
                .extra
                .iter()
                .map(|(k, v)| format!("{k} {}", num(*v)))
                .collect();
            let _ = writeln!(
                out,
                "- {} / {}: {}",
                cell(&m.group),
                cell(&m.subject),
                parts.join(", ")
            );
        }
    }
}

/// Renders the whole report.
pub fn render(r: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# warren bench\n");
    if let Some(n) = &r.note {
        let _ = writeln!(out, "> **{}**\n", cell(n));
    }
    let _ = writeln!(
        out,
        "Taken {} at level `{}` in {:.0} s on {}.\n",
        r.started_at,
        r.level,
        r.seconds,
        r.machine.summary()
    );
    let m = &r.machine;
    let _ = writeln!(out, "## Machine\n\n| | |\n|---|---|");
    let rows = [
        ("kernel", m.kernel.clone()),
        ("os", m.os.clone().unwrap_or_else(|| "unknown".into())),
        ("arch", m.arch.clone()),
        ("CPU", format!("{} × {}", m.cpus, m.cpu_model)),
        (
            "virtual machine",
            if m.virtual_machine { "yes" } else { "no" }.into(),
        ),
        (
            "memory",
            format!("{:.1} GiB", m.memory_bytes as f64 / (1u64 << 30) as f64),
        ),
        ("cgroup", m.cgroup.clone()),
        ("Landlock ABI", m.landlock_abi.to_string()),
        ("seccomp actions", m.seccomp_actions.join(", ")),
        ("overlayfs", if m.overlayfs { "yes" } else { "no" }.into()),
    ];
    for (k, v) in rows {
        let _ = writeln!(out, "| {k} | {} |", cell(&v));
    }
    for d in &m.degradations {
        let _ = writeln!(out, "\n- degraded: {}", cell(d));
    }
    let _ = writeln!(
        out,
        "\n## Runtimes\n\n| runtime | version | path |\n|---|---|---|"
    );
    for rt in &r.runtimes {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            rt.name,
            cell(rt.version.as_deref().unwrap_or("–")),
            if rt.found {
                cell(rt.path.as_deref().unwrap_or(""))
            } else {
                "not found, skipped".into()
            }
        );
    }
    for n in &r.notes {
        let _ = writeln!(out, "\n- {}", cell(n));
    }
    let _ = writeln!(out);
    headline(r, &mut out);
    for s in &r.suites {
        let _ = writeln!(out, "## {}\n", s.title);
        match s.status {
            SuiteStatus::Skipped => {
                let _ = writeln!(
                    out,
                    "Skipped: {}\n",
                    cell(s.reason.as_deref().unwrap_or("no reason given"))
                );
                continue;
            }
            SuiteStatus::Failed => {
                let _ = writeln!(
                    out,
                    "**Failed**: {}\n",
                    cell(s.reason.as_deref().unwrap_or("no reason given"))
                );
                continue;
            }
            SuiteStatus::Ok => {}
        }
        let _ = writeln!(out, "_{}_ ({:.1} s)\n", s.method, s.seconds);
        for n in &s.notes {
            let _ = writeln!(out, "- {}", cell(n));
        }
        if !s.notes.is_empty() {
            let _ = writeln!(out);
        }
        suite_table(s, &mut out);
        let _ = writeln!(out);
        for (file, alt) in plots_for(&s.name) {
            let _ = writeln!(out, "![{alt}]({file})\n");
        }
    }
    out
}
