//! The results document (`results.json`): machine, runtimes, and per suite a list of
//! measurements, each with its samples, median, p95 and ratio to its group's baseline.
//! Its shape is `schema/results.schema.json`; [`FORMAT_VERSION`] changes with it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::machine::Machine;

/// `format` of the document.
pub const FORMAT: &str = "warren-bench-results";
/// `version` of the document; bumped on any incompatible change of the schema.
pub const FORMAT_VERSION: u32 = 1;

/// The whole `results.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`FORMAT_VERSION`].
    pub version: u32,
    /// RFC 3339 time the run started (UTC).
    pub started_at: String,
    /// Wall-clock seconds the run took.
    pub seconds: f64,
    /// `quick`, `default` or `full`.
    pub level: String,
    /// The header note given with `--note`.
    pub note: Option<String>,
    /// What the numbers were taken on.
    pub machine: Machine,
    /// The runtimes asked for, found or not.
    pub runtimes: Vec<RuntimeInfo>,
    /// Run-wide notes (skipped runtimes, missing tools).
    pub notes: Vec<String>,
    /// The suites, in report order.
    pub suites: Vec<Suite>,
}

/// A runtime binary under test.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeInfo {
    /// Display name (`warren-runtime`, `runc`, `crun`, or a file name).
    pub name: String,
    /// Resolved path, when found.
    pub path: Option<String>,
    /// First line of `--version`, when it answered.
    pub version: Option<String>,
    /// Found and used.
    pub found: bool,
}

/// How a suite ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuiteStatus {
    /// Measured (some measurements may still have failed).
    Ok,
    /// Not run here; `reason` says why (no GPU, no compiler...).
    Skipped,
    /// Could not be set up; `reason` holds the error.
    Failed,
}

/// One suite's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Suite {
    /// Suite id (`lifecycle`, `syscall`, ...).
    pub name: String,
    /// Heading in the report.
    pub title: String,
    /// Outcome.
    pub status: SuiteStatus,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
    /// How it measures, for the report.
    pub method: String,
    /// Seconds the suite took.
    pub seconds: f64,
    /// Remarks (e.g. a profile unavailable here).
    pub notes: Vec<String>,
    /// The measurements, grouped by `group`.
    pub measurements: Vec<Measurement>,
}

impl Suite {
    /// A suite with no measurements yet.
    pub fn new(name: &str, title: &str, method: &str) -> Self {
        Suite {
            name: name.into(),
            title: title.into(),
            status: SuiteStatus::Ok,
            reason: None,
            method: method.into(),
            seconds: 0.0,
            notes: Vec::new(),
            measurements: Vec::new(),
        }
    }

    /// A skipped suite.
    pub fn skipped(name: &str, title: &str, method: &str, reason: impl Into<String>) -> Self {
        Suite {
            status: SuiteStatus::Skipped,
            reason: Some(reason.into()),
            ..Suite::new(name, title, method)
        }
    }

    /// A suite that could not be set up; `reason` holds the error.
    pub fn failed(name: &str, title: &str, method: &str, reason: impl Into<String>) -> Self {
        Suite {
            status: SuiteStatus::Failed,
            reason: Some(reason.into()),
            ..Suite::new(name, title, method)
        }
    }

    /// The group names in first-seen order.
    pub fn groups(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for m in &self.measurements {
            if !out.contains(&m.group.as_str()) {
                out.push(&m.group);
            }
        }
        out
    }

    /// The measurement of `subject` in `group`.
    pub fn find(&self, group: &str, subject: &str) -> Option<&Measurement> {
        self.measurements
            .iter()
            .find(|m| m.group == group && m.subject == subject)
    }

    /// Sets every measurement's ratio in `group` to its median over `baseline`'s median
    /// (the first of `baselines` that has a timing).
    pub fn set_baseline(&mut self, group: &str, baselines: &[&str]) {
        let base = baselines.iter().find_map(|b| {
            self.find(group, b)
                .and_then(|m| m.stats.map(|s| ((*b).to_owned(), s.median)))
        });
        for m in self.measurements.iter_mut().filter(|m| m.group == group) {
            match (&base, m.stats) {
                (Some((name, b)), Some(s)) if *b > 0.0 => {
                    m.baseline = Some(name.clone());
                    m.ratio = Some(s.median / b);
                }
                _ => {
                    m.baseline = None;
                    m.ratio = None;
                }
            }
        }
    }
}

/// Outcome of one measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Timed.
    Ok,
    /// The workload failed: `error` says how; not timed.
    Failed,
}

/// Median, p95, min, max and mean of a sample set, in the measurement's unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Number of samples.
    pub n: usize,
    /// Median.
    pub median: f64,
    /// 95th percentile (nearest rank).
    pub p95: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Stats {
    /// Statistics of `samples`; `None` when empty or not all finite.
    pub fn of(samples: &[f64]) -> Option<Stats> {
        if samples.is_empty() || samples.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let s = crate::stats::summarize(samples);
        let max = samples.iter().copied().fold(f64::MIN, f64::max);
        Some(Stats {
            n: s.n,
            median: s.median_ms,
            p95: s.p95_ms,
            min: s.min_ms,
            max,
            mean: s.mean_ms,
        })
    }
}

/// One figure: what (`group`), who (`subject`), its samples and their statistics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measurement {
    /// What was measured; measurements of one group are compared with each other.
    pub group: String,
    /// Who ran it: `host`, a runtime name, or a runtime with a configuration
    /// (`warren-runtime agent`).
    pub subject: String,
    /// The runtime, when a container ran it.
    pub runtime: Option<String>,
    /// Unit of the samples (`ms`, `ns/op`, `MiB/s`, `containers/s`, ...).
    pub unit: String,
    /// Whether a larger value is better (rates) or worse (times).
    pub higher_is_better: bool,
    /// Timed or failed.
    pub status: Status,
    /// The first error, when any run failed.
    pub error: Option<String>,
    /// Runs that failed (a measurement with any failed run is reported, with its error;
    /// one with only failed runs is `failed` and has no statistics).
    pub failures: usize,
    /// Statistics of `samples`; absent when failed.
    pub stats: Option<Stats>,
    /// The group's baseline subject, when it has a timing.
    pub baseline: Option<String>,
    /// `stats.median / baseline median`.
    pub ratio: Option<f64>,
    /// The raw samples.
    pub samples: Vec<f64>,
    /// Other figures of this measurement (e.g. memory: `rss_mib`).
    pub extra: BTreeMap<String, f64>,
}

impl Measurement {
    /// A measurement of `subject` in `group`, with no samples yet (so failed, until
    /// [`Measurement::samples`] gives it some).
    pub fn new(group: &str, subject: &str, unit: &str, higher_is_better: bool) -> Self {
        Measurement {
            group: group.into(),
            subject: subject.into(),
            runtime: None,
            unit: unit.into(),
            higher_is_better,
            status: Status::Failed,
            error: Some("no samples".into()),
            failures: 0,
            stats: None,
            baseline: None,
            ratio: None,
            samples: Vec::new(),
            extra: BTreeMap::new(),
        }
    }

    /// Names the runtime that ran it.
    pub fn runtime(mut self, runtime: &str) -> Self {
        self.runtime = Some(runtime.into());
        self
    }

    /// Sets the samples, the count of failed runs and the first error; the measurement is
    /// failed (not timed) when there are no samples.
    pub fn samples(mut self, samples: Vec<f64>, failures: usize, error: Option<String>) -> Self {
        self.stats = Stats::of(&samples);
        self.failures = failures;
        self.status = if self.stats.is_some() {
            Status::Ok
        } else {
            Status::Failed
        };
        self.error = match (self.status, error) {
            (Status::Failed, None) => Some("no samples".into()),
            (_, e) => e,
        };
        self.samples = samples;
        self
    }

    /// Marks it failed with `error` (its samples are dropped: a failed workload is not
    /// timed).
    pub fn fail(mut self, error: impl Into<String>) -> Self {
        self.status = Status::Failed;
        self.error = Some(error.into());
        self.failures = self.failures.max(1);
        self.stats = None;
        self.samples.clear();
        self
    }

    /// Relative cost against the baseline: > 1 means worse than the baseline, whichever
    /// direction the unit goes.
    pub fn cost(&self) -> Option<f64> {
        let r = self.ratio?;
        if self.higher_is_better {
            (r > 0.0).then(|| 1.0 / r)
        } else {
            Some(r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_use_the_first_baseline_with_a_timing() {
        let mut s = Suite::new("x", "X", "");
        s.measurements
            .push(Measurement::new("g", "crun", "ms", false).fail("boom"));
        for (sub, v) in [("warren-runtime", 5.0), ("runc", 20.0)] {
            s.measurements.push(
                Measurement::new("g", sub, "ms", false)
                    .runtime(sub)
                    .samples(vec![v, v], 0, None),
            );
        }
        s.set_baseline("g", &["crun", "warren-runtime"]);
        let w = s.find("g", "runc").and_then(|m| m.ratio);
        assert_eq!(w, Some(4.0));
        assert_eq!(
            s.find("g", "runc")
                .and_then(|m| m.baseline.clone())
                .as_deref(),
            Some("warren-runtime")
        );
        assert_eq!(s.find("g", "crun").and_then(|m| m.ratio), None);
        assert_eq!(s.find("g", "crun").map(|m| m.status), Some(Status::Failed));
    }

    #[test]
    fn cost_flips_rates() {
        let mut m = Measurement::new("g", "a", "MiB/s", true).samples(vec![50.0], 0, None);
        m.ratio = Some(0.5);
        assert_eq!(m.cost(), Some(2.0));
        assert!(Stats::of(&[f64::NAN]).is_none());
    }
}
