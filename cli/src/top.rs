//! `warren top`: a live dashboard of every sandbox (ratatui over crossterm).
//!
//! One row per sandbox with CPU and memory sparklines, GPU use when NVML is there (`n/a`
//! otherwise), and below the table the selected sandbox's history. Keys: `c` `m` `n` sort
//! by CPU, memory, name; `/` filter by name (Enter applies, Esc clears); `↑` `↓` (or `k`
//! `j`) select; `l` or Enter show the selected sandbox's logs (Esc or `q` back); `s` stop
//! it; `q` quit.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Sparkline, Table, TableState, Wrap};

use crate::sandbox::{self, Info, Status};
use crate::state::{Roots, StateError};
use crate::stats::{self, Gpus, Sample, human_bytes, truncate};
use crate::timefmt;

/// Samples kept per sandbox for the sparklines.
const HISTORY: usize = 60;

/// Errors of `top`.
#[derive(Debug, thiserror::Error)]
pub enum TopError {
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    #[error(transparent)]
    State(#[from] StateError),
}

/// Sort order of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Cpu,
    Memory,
    Name,
}

#[derive(Debug)]
struct Tracked {
    info: Info,
    sample: Option<Sample>,
    cpu: VecDeque<u64>,
    mem: VecDeque<u64>,
}

#[derive(Debug, PartialEq, Eq)]
enum Mode {
    Table,
    Filter,
    Logs(String),
}

/// The dashboard's state (separate from drawing so tests can drive it).
#[derive(Debug)]
pub struct App {
    roots: Roots,
    gpus: Gpus,
    rows: HashMap<String, Tracked>,
    order: Vec<String>,
    pub sort: SortBy,
    pub filter: String,
    mode: Mode,
    table: TableState,
    message: String,
    stops: mpsc::Receiver<String>,
    stop_tx: mpsc::Sender<String>,
}

fn push(h: &mut VecDeque<u64>, v: u64) {
    if h.len() == HISTORY {
        h.pop_front();
    }
    h.push_back(v);
}

/// Unicode block sparkline of the last `width` values.
pub fn spark_text(values: &VecDeque<u64>, width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let skip = values.len().saturating_sub(width);
    let s: String = values
        .iter()
        .skip(skip)
        .map(|&v| BARS[((v * 7) / max).min(7) as usize])
        .collect();
    format!("{s:<width$}")
}

impl App {
    /// A dashboard over `roots` with the given GPU probe.
    pub fn new(roots: Roots, gpus: Gpus) -> Self {
        let (stop_tx, stops) = mpsc::channel();
        Self {
            roots,
            gpus,
            rows: HashMap::new(),
            order: Vec::new(),
            sort: SortBy::Cpu,
            filter: String::new(),
            mode: Mode::Table,
            table: TableState::default().with_selected(Some(0)),
            message: String::new(),
            stops,
            stop_tx,
        }
    }

    /// Reads every sandbox once more.
    pub fn refresh(&mut self) -> Result<(), StateError> {
        while let Ok(m) = self.stops.try_recv() {
            self.message = m;
        }
        let infos = sandbox::list(&self.roots, true)?;
        let mut seen = Vec::new();
        for info in infos {
            let id = info.record.id.clone();
            seen.push(id.clone());
            let t = self.rows.entry(id).or_insert_with(|| Tracked {
                info: info.clone(),
                sample: None,
                cpu: VecDeque::new(),
                mem: VecDeque::new(),
            });
            let s = stats::sample(&info, &self.gpus, t.sample.as_ref(), Path::new("/proc"));
            if let Some(s) = &s {
                push(&mut t.cpu, s.cpu_percent.unwrap_or(0.0).round() as u64);
                push(&mut t.mem, s.memory_bytes);
            }
            t.info = info;
            t.sample = s;
        }
        self.rows.retain(|id, _| seen.contains(id));
        self.reorder();
        Ok(())
    }

    fn reorder(&mut self) {
        let mut ids: Vec<&Tracked> = self
            .rows
            .values()
            .filter(|t| self.filter.is_empty() || t.info.record.name.contains(&self.filter))
            .collect();
        let cpu = |t: &Tracked| {
            t.sample
                .as_ref()
                .and_then(|s| s.cpu_percent)
                .unwrap_or(-1.0)
        };
        let mem = |t: &Tracked| t.sample.as_ref().map_or(0, |s| s.memory_bytes);
        match self.sort {
            SortBy::Cpu => ids.sort_by(|a, b| {
                cpu(b)
                    .total_cmp(&cpu(a))
                    .then(a.info.record.name.cmp(&b.info.record.name))
            }),
            SortBy::Memory => ids.sort_by(|a, b| {
                mem(b)
                    .cmp(&mem(a))
                    .then(a.info.record.name.cmp(&b.info.record.name))
            }),
            SortBy::Name => ids.sort_by(|a, b| a.info.record.name.cmp(&b.info.record.name)),
        }
        self.order = ids.iter().map(|t| t.info.record.id.clone()).collect();
        let sel = self.table.selected().unwrap_or(0);
        if !self.order.is_empty() && sel >= self.order.len() {
            self.table.select(Some(self.order.len() - 1));
        }
    }

    /// Names in display order.
    pub fn names(&self) -> Vec<String> {
        self.order
            .iter()
            .filter_map(|id| self.rows.get(id).map(|t| t.info.record.name.clone()))
            .collect()
    }

    fn selected(&self) -> Option<&Tracked> {
        self.order
            .get(self.table.selected()?)
            .and_then(|id| self.rows.get(id))
    }

    /// Handles one key; returns false to quit.
    pub fn key(&mut self, code: KeyCode) -> bool {
        match &self.mode {
            Mode::Filter => match code {
                KeyCode::Enter => self.mode = Mode::Table,
                KeyCode::Esc => {
                    self.filter.clear();
                    self.mode = Mode::Table;
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => {}
            },
            Mode::Logs(_) => {
                if matches!(code, KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('l')) {
                    self.mode = Mode::Table;
                }
            }
            Mode::Table => match code {
                KeyCode::Char('q') | KeyCode::Esc => return false,
                KeyCode::Char('c') => self.sort = SortBy::Cpu,
                KeyCode::Char('m') => self.sort = SortBy::Memory,
                KeyCode::Char('n') => self.sort = SortBy::Name,
                KeyCode::Char('/') => {
                    self.filter.clear();
                    self.mode = Mode::Filter;
                }
                KeyCode::Down | KeyCode::Char('j') => {
                    let n = self.order.len();
                    if n > 0 {
                        self.table
                            .select(Some((self.table.selected().unwrap_or(0) + 1).min(n - 1)));
                    }
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    self.table
                        .select(Some(self.table.selected().unwrap_or(0).saturating_sub(1)));
                }
                KeyCode::Char('l') | KeyCode::Enter => {
                    if let Some(t) = self.selected() {
                        self.mode = Mode::Logs(t.info.record.id.clone());
                    }
                }
                KeyCode::Char('s') => {
                    if let Some(t) = self.selected() {
                        let (id, name) = (t.info.record.id.clone(), t.info.record.name.clone());
                        self.message = format!("stopping {name}…");
                        let roots = self.roots.clone();
                        let tx = self.stop_tx.clone();
                        std::thread::spawn(move || {
                            let m = match crate::remove::stop(&roots, &id, Duration::from_secs(10))
                            {
                                Ok(_) => format!("stopped {name}"),
                                Err(e) => format!("stop {name}: {e}"),
                            };
                            let _ = tx.send(m);
                        });
                    }
                }
                _ => {}
            },
        }
        self.reorder();
        true
    }

    /// Draws the dashboard.
    pub fn draw(&mut self, f: &mut Frame<'_>) {
        let [head, body, detail, foot] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(5),
            Constraint::Length(7),
            Constraint::Length(1),
        ])
        .areas(f.area());
        let running = self
            .rows
            .values()
            .filter(|t| t.info.status == Status::Running)
            .count();
        let gpu = match &self.gpus.reason {
            None => "GPU: NVML".to_owned(),
            Some(r) => format!("GPU: n/a ({})", truncate(r, 60)),
        };
        let sort = match self.sort {
            SortBy::Cpu => "cpu",
            SortBy::Memory => "mem",
            SortBy::Name => "name",
        };
        f.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(
                    " warren top ",
                    Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
                ),
                Span::raw(format!(
                    "  {} sandboxes, {running} running   sort: {sort}   filter: {}   {gpu}",
                    self.rows.len(),
                    if self.filter.is_empty() {
                        "-"
                    } else {
                        &self.filter
                    }
                )),
            ])),
            head,
        );
        if let Mode::Logs(id) = &self.mode {
            let text = log_tail(
                &self.roots,
                id,
                body.height.saturating_add(detail.height) as usize,
            );
            let name = self
                .rows
                .get(id)
                .map(|t| t.info.record.name.clone())
                .unwrap_or_default();
            f.render_widget(
                Paragraph::new(text)
                    .wrap(Wrap { trim: false })
                    .block(Block::bordered().title(format!(" logs: {name} "))),
                body.union(detail),
            );
            f.render_widget(Paragraph::new(" Esc/q/l: back to the table"), foot);
            return;
        }
        let now = timefmt::now().0;
        let rows: Vec<Row> = self
            .order
            .iter()
            .filter_map(|id| self.rows.get(id))
            .map(|t| {
                let s = t.sample.as_ref();
                let cpu = s
                    .and_then(|s| s.cpu_percent)
                    .map(|c| format!("{c:.1}%"))
                    .unwrap_or_else(|| "-".into());
                let mem = s
                    .map(|s| {
                        format!(
                            "{} / {}",
                            human_bytes(s.memory_bytes),
                            s.memory_limit
                                .map(human_bytes)
                                .unwrap_or_else(|| "-".into())
                        )
                    })
                    .unwrap_or_else(|| "-".into());
                let gpu = match (s.and_then(|s| s.gpu.as_ref()), self.gpus.present()) {
                    (Some(g), _) => format!("{}% {}", g.util_percent, human_bytes(g.memory_bytes)),
                    (None, false) => "n/a".into(),
                    (None, true) => "-".into(),
                };
                let style = if t.info.status.is_live() {
                    Style::new()
                } else {
                    Style::new().fg(Color::DarkGray)
                };
                Row::new(vec![
                    Cell::from(truncate(&t.info.record.name, 20)),
                    Cell::from(truncate(&t.info.status_text(now), 22)),
                    Cell::from(cpu),
                    Cell::from(spark_text(&t.cpu, 16)).style(Style::new().fg(Color::Green)),
                    Cell::from(mem),
                    Cell::from(spark_text(&t.mem, 16)).style(Style::new().fg(Color::Cyan)),
                    Cell::from(s.map(|s| s.pids.to_string()).unwrap_or_else(|| "-".into())),
                    Cell::from(gpu),
                    Cell::from(truncate(
                        &format!(
                            "{} {}",
                            t.info.record.image.as_deref().unwrap_or("host"),
                            t.info.record.profile.as_deref().unwrap_or("")
                        ),
                        24,
                    )),
                ])
                .style(style)
            })
            .collect();
        let table = Table::new(
            rows,
            [
                Constraint::Length(20),
                Constraint::Length(22),
                Constraint::Length(7),
                Constraint::Length(16),
                Constraint::Length(20),
                Constraint::Length(16),
                Constraint::Length(5),
                Constraint::Length(12),
                Constraint::Min(10),
            ],
        )
        .header(
            Row::new([
                "NAME",
                "STATUS",
                "CPU",
                "CPU HISTORY",
                "MEMORY / LIMIT",
                "MEM HISTORY",
                "PIDS",
                "GPU",
                "IMAGE PROFILE",
            ])
            .style(Style::new().add_modifier(Modifier::BOLD)),
        )
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .block(Block::bordered().title(" sandboxes "));
        f.render_stateful_widget(table, body, &mut self.table);

        let [cpu_area, mem_area] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(detail);
        let (name, cpu, mem) = match self.selected() {
            Some(t) => (
                t.info.record.name.clone(),
                t.cpu.iter().copied().collect::<Vec<u64>>(),
                t.mem.iter().map(|m| m >> 10).collect::<Vec<u64>>(),
            ),
            None => (String::new(), Vec::new(), Vec::new()),
        };
        f.render_widget(
            Sparkline::default()
                .block(Block::bordered().title(format!(" {name} CPU % ")))
                .data(&cpu)
                .style(Style::new().fg(Color::Green)),
            cpu_area,
        );
        f.render_widget(
            Sparkline::default()
                .block(Block::bordered().title(format!(" {name} memory KiB ")))
                .data(&mem)
                .style(Style::new().fg(Color::Cyan)),
            mem_area,
        );
        let keys = if self.mode == Mode::Filter {
            format!(" filter: {}▏ (Enter apply, Esc clear)", self.filter)
        } else {
            format!(
                " c/m/n sort  / filter  l/Enter logs  s stop  q quit   {}",
                self.message
            )
        };
        f.render_widget(Paragraph::new(keys), foot);
    }
}

fn log_tail(roots: &Roots, id: &str, n: usize) -> String {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let o = crate::logs::LogsOptions {
        follow: false,
        tail: Some(n.max(1)),
        timestamps: false,
    };
    // Both streams, in order: write stderr into the same buffer.
    if crate::logs::logs(roots, id, &o, &mut out, &mut err).is_err() {
        return "(no logs)".into();
    }
    out.extend_from_slice(&err);
    if out.is_empty() {
        return "(no output yet; only detached sandboxes are logged)".into();
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs the dashboard until `q`.
pub fn run(roots: &Roots, interval: Duration) -> Result<(), TopError> {
    let mut app = App::new(roots.clone(), Gpus::probe());
    app.refresh()?;
    let mut terminal = ratatui::try_init()?;
    let r = (|| -> Result<(), TopError> {
        let mut last = Instant::now();
        loop {
            terminal.draw(|f| app.draw(f))?;
            let wait = interval.saturating_sub(last.elapsed());
            if event::poll(wait)?
                && let Event::Key(k) = event::read()?
                && k.kind == KeyEventKind::Press
            {
                {
                    if k.code == KeyCode::Char('c')
                        && k.modifiers
                            .contains(crossterm::event::KeyModifiers::CONTROL)
                    {
                        return Ok(());
                    }
                    if !app.key(k.code) {
                        return Ok(());
                    }
                }
            }
            if last.elapsed() >= interval {
                app.refresh()?;
                last = Instant::now();
            }
        }
    })();
    ratatui::try_restore()?;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_to_the_maximum() {
        let h: VecDeque<u64> = [0, 50, 100].into_iter().collect();
        assert_eq!(spark_text(&h, 5), "▁▄█  ");
        let empty = VecDeque::new();
        assert_eq!(spark_text(&empty, 3), "   ");
    }

    #[test]
    fn keys_sort_filter_and_quit() {
        let d = tempfile::tempdir().expect("tmp");
        let roots = Roots {
            root: d.path().join("r"),
            data_root: d.path().join("d"),
        };
        let mut app = App::new(roots, Gpus::none("test"));
        app.refresh().expect("refresh");
        assert!(app.key(KeyCode::Char('m')));
        assert_eq!(app.sort, SortBy::Memory);
        assert!(app.key(KeyCode::Char('/')));
        for c in "exp".chars() {
            assert!(app.key(KeyCode::Char(c)));
        }
        assert!(app.key(KeyCode::Enter));
        assert_eq!(app.filter, "exp");
        assert!(!app.key(KeyCode::Char('q')));
    }
}
