//! Action labels of a recording: a CSV file with one row per labelled interval,
//! `start,end,action` — times in seconds, `action` a class index or a name. A header
//! row is allowed. Times count from the recording's first frame, unless they are
//! larger than 10⁹ (then they are absolute, like ROS stamps: seconds since 1970).

use std::path::Path;

use crate::file_error as err;
use edge4d_runtime::Result;

/// One labelled interval, [start, end] in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    pub start: f64,
    pub end: f64,
    pub action: String,
}

/// Times at or above this are absolute (seconds since 1970).
const ABSOLUTE: f64 = 1e9;

/// The intervals of a recording and the classes they name.
#[derive(Debug, Clone)]
pub struct ActionLabels {
    pub intervals: Vec<Interval>,
    /// Class names in index order: the numbers themselves when every action is a
    /// number, else the distinct names sorted.
    pub classes: Vec<String>,
}

impl ActionLabels {
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
        let mut intervals = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = line.split(',').map(str::trim).collect();
            let bad = |what: String| err(path, format!("line {}: {what}", i + 1));
            if cols.len() != 3 {
                return Err(bad(format!(
                    "expected start,end,action, got {} columns: {line:?}",
                    cols.len()
                )));
            }
            let (start, end) = match (cols[0].parse::<f64>(), cols[1].parse::<f64>()) {
                (Ok(s), Ok(e)) => (s, e),
                _ if intervals.is_empty() && i == 0 => continue, // a header row
                _ => {
                    return Err(bad(format!(
                        "{:?} and {:?} must be times in seconds",
                        cols[0], cols[1]
                    )))
                }
            };
            if !(start.is_finite() && end.is_finite() && start >= 0.0 && end > start) {
                return Err(bad(format!(
                    "the interval {start} to {end} s is empty or negative"
                )));
            }
            if (start >= ABSOLUTE) != (end >= ABSOLUTE) {
                return Err(bad(format!(
                    "{start} and {end} mix absolute and relative times"
                )));
            }
            if cols[2].is_empty() {
                return Err(bad("the action is empty".into()));
            }
            intervals.push(Interval {
                start,
                end,
                action: cols[2].to_string(),
            });
        }
        if intervals.is_empty() {
            return Err(err(path, "no labelled interval".into()));
        }
        let numeric = intervals.iter().all(|iv| iv.action.parse::<u32>().is_ok());
        if numeric {
            for iv in &mut intervals {
                iv.action = iv.action.parse::<u32>().expect("checked").to_string();
            }
        }
        let classes = if numeric {
            let top = intervals
                .iter()
                .map(|iv| iv.action.parse::<u32>().expect("checked"))
                .max()
                .expect("non-empty");
            (0..=top).map(|c| c.to_string()).collect()
        } else {
            let mut names: Vec<String> = intervals.iter().map(|iv| iv.action.clone()).collect();
            names.sort();
            names.dedup();
            names
        };
        Ok(Self { intervals, classes })
    }

    /// The class of a frame logged at `time_ns`, given the recording's first frame time;
    /// None outside every interval. Intervals include their start and end; where they
    /// overlap, the later row wins.
    pub fn class_at(&self, time_ns: u64, first_ns: u64) -> Option<u32> {
        let absolute = time_ns as f64 * 1e-9;
        let relative = time_ns.saturating_sub(first_ns) as f64 * 1e-9;
        self.intervals
            .iter()
            .rev()
            .find(|iv| {
                let t = if iv.start >= ABSOLUTE {
                    absolute
                } else {
                    relative
                };
                iv.start <= t && t <= iv.end
            })
            .map(|iv| {
                self.classes
                    .iter()
                    .position(|c| *c == iv.action)
                    .expect("every action is a class") as u32
            })
    }
}
