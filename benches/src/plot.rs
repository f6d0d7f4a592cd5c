//! PNG plots of a run, drawn with plotters' bitmap backend and a bundled font (DejaVu Sans,
//! `assets/`, so no system font library is needed): lifecycle latency distributions
//! (ECDFs), containers per second against parallelism, and the sandbox's relative cost
//! against the host.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use crate::error::BenchError;
use crate::results::{Measurement, Results, Suite, SuiteStatus};

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

fn font_ready() -> Result<(), String> {
    static ONCE: OnceLock<Result<(), String>> = OnceLock::new();
    ONCE.get_or_init(|| {
        register_font(FAMILY, FontStyle::Normal, FONT)
            .map_err(|_| "the bundled font could not be loaded".to_owned())
    })
    .clone()
}

fn e<E: std::fmt::Debug>(err: E) -> String {
    format!("{err:?}")
}

/// Draws every plot the results have data for into `dir`; returns the files written.
pub fn draw_all(r: &Results, dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
    let mut files = Vec::new();
    let mut one =
        |name: &str, f: &dyn Fn(&Path) -> Result<bool, String>| -> Result<(), BenchError> {
            let path = dir.join(name);
            font_ready()
                .and_then(|()| f(&path))
                .map_err(|msg| BenchError::Plot {
                    path: path.clone(),
                    msg,
                })
                .map(|drawn| {
                    if drawn {
                        files.push(path.clone())
                    }
                })
        };
    let ok = |name: &str| {
        r.suites
            .iter()
            .find(|s| s.name == name && s.status == SuiteStatus::Ok)
    };
    if let Some(s) = ok("lifecycle") {
        one("lifecycle.png", &|p| lifecycle(s, p))?;
    }
    if let Some(s) = ok("throughput") {
        one("throughput.png", &|p| throughput(s, p))?;
    }
    one("overhead.png", &|p| overhead(r, p))?;
    Ok(files)
}

/// ECDFs of lifecycle latency, one panel per `create → start` group.
fn lifecycle(s: &Suite, path: &Path) -> Result<bool, String> {
    let mut groups: Vec<&str> = s
        .groups()
        .into_iter()
        .filter(|g| g.contains("create"))
        .collect();
    if groups.is_empty() {
        groups = s.groups();
    }
    if groups.is_empty() {
        return Ok(false);
    }
    let root = BitMapBackend::new(path, (600 * groups.len() as u32, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let root = root
        .titled(
            "Lifecycle latency: fraction of lifecycles done within x ms",
            (FAMILY, 20),
        )
        .map_err(e)?;
    let panels = root.split_evenly((1, groups.len()));
    for (panel, g) in panels.iter().zip(groups) {
        let ms: Vec<&Measurement> = s
            .measurements
            .iter()
            .filter(|m| m.group == g && m.stats.is_some())
            .collect();
        // Up to the largest p95 (plus a margin): the tail beyond is in the tables.
        let xmax = ms
            .iter()
            .filter_map(|m| m.stats.map(|st| st.p95))
            .fold(1.0f64, f64::max)
            * 1.3;
        let xmin = ms
            .iter()
            .filter_map(|m| m.stats.map(|st| st.min))
            .fold(xmax, f64::min)
            * 0.8;
        let mut chart = ChartBuilder::on(panel)
            .caption(g, (FAMILY, 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(xmin..xmax, 0f64..1.02f64)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("ms")
            .y_desc("fraction ≤ x")
            .label_style((FAMILY, 13))
            .draw()
            .map_err(e)?;
        for (i, m) in ms.iter().enumerate() {
            let mut v = m.samples.clone();
            v.sort_by(f64::total_cmp);
            let n = v.len() as f64;
            let pts: Vec<(f64, f64)> = v
                .iter()
                .enumerate()
                .map(|(k, x)| (x.clamp(xmin, xmax), (k + 1) as f64 / n))
                .collect();
            let c = color(i);
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                .map_err(e)?
                .label(m.subject.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .label_font((FAMILY, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(e)?;
    }
    root.present().map_err(e)?;
    Ok(true)
}

/// Containers per second against parallelism, a line per runtime.
fn throughput(s: &Suite, path: &Path) -> Result<bool, String> {
    let mut subjects: Vec<&str> = Vec::new();
    for m in &s.measurements {
        if !subjects.contains(&m.subject.as_str()) {
            subjects.push(&m.subject);
        }
    }
    let par = |g: &str| {
        g.split_whitespace()
            .next()
            .and_then(|x| x.parse::<u32>().ok())
    };
    let ymax = s
        .measurements
        .iter()
        .filter_map(|m| m.stats.map(|st| st.max))
        .fold(1.0f64, f64::max)
        * 1.2;
    let xmax = s
        .measurements
        .iter()
        .filter_map(|m| par(&m.group))
        .max()
        .unwrap_or(8)
        + 1;
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Throughput: containers per second (median of trials)",
            (FAMILY, 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0u32..xmax, 0f64..ymax)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("containers started in parallel")
        .y_desc("containers / s")
        .label_style((FAMILY, 13))
        .draw()
        .map_err(e)?;
    for (i, subject) in subjects.iter().enumerate() {
        let pts: Vec<(u32, f64)> = s
            .measurements
            .iter()
            .filter(|m| &m.subject == subject)
            .filter_map(|m| Some((par(&m.group)?, m.stats?.median)))
            .collect();
        if pts.is_empty() {
            continue;
        }
        let c = color(i);
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(e)?
            .label(subject.to_string())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))
            .map_err(e)?;
    }
    chart
        .configure_series_labels()
        .label_font((FAMILY, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(true)
}

/// Horizontal bars: relative cost against the host of every container measurement of the
/// syscall, file system, network and CPU suites.
fn overhead(r: &Results, path: &Path) -> Result<bool, String> {
    let suites = ["syscall", "fs", "network", "cpu"];
    let rows: Vec<(usize, String, f64)> = r
        .suites
        .iter()
        .filter(|s| s.status == SuiteStatus::Ok)
        .filter_map(|s| Some((suites.iter().position(|n| *n == s.name)?, s)))
        .flat_map(|(si, s)| {
            s.measurements
                .iter()
                .filter(|m| m.subject != "host")
                .filter_map(move |m| Some((si, format!("{} · {}", m.group, m.subject), m.cost()?)))
        })
        .collect();
    if rows.is_empty() {
        return Ok(false);
    }
    let n = rows.len();
    let cmax = rows.iter().map(|r| r.2).fold(1.5f64, f64::max);
    let xmax = cmax * 1.9;
    let root = BitMapBackend::new(path, (1100, 90 + 24 * n as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Relative cost against the host (1.0 = free; > 1 = slower inside)",
            (FAMILY, 20),
        )
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(10)
        .build_cartesian_2d(0f64..xmax, 0f64..n as f64)
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("relative cost")
        .label_style((FAMILY, 13))
        .draw()
        .map_err(e)?;
    let style = TextStyle::from((FAMILY, 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (si, label, cost)) in rows.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        let c = color(*si);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, y + 0.15), (*cost, y + 0.85)],
                c.mix(0.8).filled(),
            )))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{label}  {cost:.2}×"),
                (cost + xmax * 0.01, y + 0.5),
                style.clone(),
            )))
            .map_err(e)?;
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(1.0, 0.0), (1.0, n as f64)],
            BLACK.stroke_width(1),
        )))
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(true)
}
