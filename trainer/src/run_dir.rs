//! A training run's output folder and its `metrics.jsonl`: a new run never mixes its
//! log into an old run's, temporary files a killed save left behind are removed, and a
//! resumed run cuts the log back to the checkpoint it continues from, so no epoch is
//! logged twice.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use edge4d_runtime::tensor_file::write_bytes_atomic;
use edge4d_runtime::{Error, Result};

use crate::file_error;

/// The files whose presence marks a folder as holding a run.
const RUN_FILES: [&str; 3] = [
    "metrics.jsonl",
    "checkpoint.safetensors",
    "model.safetensors",
];

/// How a run starts in its folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// A new run. A folder that already holds a run is refused unless `overwrite`,
    /// which starts a new log in its place.
    Fresh { overwrite: bool },
    /// Continuing from a checkpoint taken after `epoch` epochs and `step` steps: log
    /// records beyond it (written after the checkpoint, before the run stopped) go.
    Resume { epoch: u64, step: u64 },
}

/// An open run folder with its metrics log, appended one JSON record per line.
pub struct RunDir {
    path: PathBuf,
    metrics: File,
    /// What opening changed, one line each, for the run to print.
    pub notes: Vec<String>,
}

impl RunDir {
    pub fn open(out: &Path, start: Start) -> Result<Self> {
        std::fs::create_dir_all(out)
            .map_err(|e| file_error(out, format!("cannot create the output folder: {e}")))?;
        let mut notes = remove_stale_temporaries(out)?;
        let metrics_path = out.join("metrics.jsonl");
        match start {
            Start::Fresh { overwrite } => {
                let used: Vec<&str> = RUN_FILES
                    .iter()
                    .copied()
                    .filter(|f| out.join(f).exists())
                    .collect();
                if !used.is_empty() && !overwrite {
                    return Err(Error::InvalidArgument {
                        op: "--out",
                        detail: format!(
                            "{} already holds a run ({}): continue it with --resume {}, start over with --overwrite, or choose another --out",
                            out.display(),
                            used.join(", "),
                            out.join("checkpoint.safetensors").display()
                        ),
                    });
                }
                if !used.is_empty() {
                    notes.push(format!(
                        "--overwrite: a new metrics.jsonl replaces the old run's in {}",
                        out.display()
                    ));
                }
                File::create(&metrics_path)
                    .map_err(|e| file_error(&metrics_path, format!("cannot create: {e}")))?;
            }
            Start::Resume { epoch, step } => {
                if let Some(dropped) = truncate_log(&metrics_path, epoch, step)? {
                    if dropped > 0 {
                        notes.push(format!(
                            "resume: dropped {dropped} metrics.jsonl records written after the checkpoint (epoch {epoch}, step {step})"
                        ));
                    }
                }
            }
        }
        let metrics = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&metrics_path)
            .map_err(|e| file_error(&metrics_path, format!("cannot open for appending: {e}")))?;
        Ok(Self {
            path: out.to_path_buf(),
            metrics,
            notes,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn metrics_path(&self) -> PathBuf {
        self.path.join("metrics.jsonl")
    }

    /// Appends one record to metrics.jsonl.
    pub fn log(&mut self, record: &Record) -> Result<()> {
        let line = serde_json::to_string(record).map_err(|e| {
            file_error(&self.metrics_path(), format!("cannot encode a record: {e}"))
        })?;
        writeln!(self.metrics, "{line}")
            .map_err(|e| file_error(&self.metrics_path(), format!("cannot write: {e}")))
    }

    /// Redraws curves.png from the whole log.
    pub fn plot(&self) -> Result<()> {
        plot_metrics(&self.metrics_path(), &self.path.join("curves.png"))
    }
}

/// One line of metrics.jsonl, the same schema for every task. Epochs count from 1;
/// `step` is the number of optimizer steps taken.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Record {
    /// A loss read back during an epoch.
    Step {
        epoch: u64,
        step: u64,
        loss: f64,
        lr: f64,
        /// Training samples (clips, sequences, clouds) per second so far this epoch.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        samples_per_s: Option<f64>,
    },
    /// The end of an epoch: mean loss of the losses read back, and the scores measured.
    Epoch {
        epoch: u64,
        train_loss: f64,
        train_accuracy: Option<f64>,
        val_accuracy: Option<f64>,
        /// What the accuracies are: "acc", "mIoU", …
        metric: String,
    },
}

/// Reads a metrics.jsonl, naming the file and line of anything that is not a record.
pub fn read_metrics(path: &Path) -> Result<Vec<Record>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| {
                file_error(
                    path,
                    format!("line {}: not a metrics.jsonl record ({e})", i + 1),
                )
            })
        })
        .collect()
}

/// Draws a metrics.jsonl as a PNG of the loss per step and the scores per epoch (a
/// no-op when the trainer is built without its `plots` feature).
pub fn plot_metrics(metrics: &Path, png: &Path) -> Result<()> {
    let (mut losses, mut train, mut val) = (Vec::new(), Vec::new(), Vec::new());
    let mut score = "acc".to_string();
    for record in read_metrics(metrics)? {
        match record {
            Record::Step { step, loss, .. } => losses.push((step as f64, loss)),
            Record::Epoch {
                epoch,
                train_accuracy,
                val_accuracy,
                metric,
                ..
            } => {
                if let Some(a) = train_accuracy {
                    train.push((epoch as f64, a));
                }
                if let Some(a) = val_accuracy {
                    val.push((epoch as f64, a));
                }
                score = if metric == "acc" {
                    "accuracy".to_string()
                } else {
                    metric
                };
            }
        }
    }
    #[cfg(feature = "plots")]
    return crate::plot::training_curves_of(png, &losses, &train, &val, &score);
    // Built without plotting (the C library): the metrics are all there is.
    #[cfg(not(feature = "plots"))]
    {
        let _ = (png, losses, train, val, score);
        Ok(())
    }
}

/// Removes `.NAME.tmp-PID` files (an interrupted atomic save) whose process is gone;
/// returns a note per file removed.
fn remove_stale_temporaries(dir: &Path) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| file_error(dir, format!("cannot list the folder: {e}")))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = temporary_owner(&name) else {
            continue;
        };
        if pid == std::process::id() || process_alive(pid) {
            continue;
        }
        if std::fs::remove_file(entry.path()).is_ok() {
            notes.push(format!(
                "removed {name}: an unfinished save of process {pid}, which is gone"
            ));
        }
    }
    Ok(notes)
}

/// The process id in a temporary file name `.NAME.tmp-PID`, as `write_bytes_atomic`
/// names them.
fn temporary_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (stem, pid) = rest.rsplit_once(".tmp-")?;
    if stem.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process with this id runs (on Linux, by /proc; elsewhere assumed gone).
fn process_alive(pid: u32) -> bool {
    cfg!(target_os = "linux") && Path::new(&format!("/proc/{pid}")).exists()
}

/// Cuts `path` back to the records of the first `epoch` epochs and `step` steps;
/// returns how many records went, or `None` when there is no log.
fn truncate_log(path: &Path, epoch: u64, step: u64) -> Result<Option<usize>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(file_error(path, format!("cannot read: {e}"))),
    };
    let mut kept = String::with_capacity(text.len());
    let mut dropped = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            file_error(
                path,
                format!(
                    "line {}: not a metrics record ({e}); move the file away to resume",
                    i + 1
                ),
            )
        })?;
        let keep = match (record["step"].as_u64(), record["epoch"].as_u64()) {
            (Some(s), _) => s <= step,
            (None, Some(e)) => e <= epoch,
            (None, None) => true,
        };
        if keep {
            kept.push_str(line);
            kept.push('\n');
        } else {
            dropped += 1;
        }
    }
    if dropped > 0 {
        write_bytes_atomic(path, kept.as_bytes())?;
    }
    Ok(Some(dropped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_recognised_and_nothing_else() {
        assert_eq!(
            temporary_owner(".checkpoint.safetensors.tmp-123"),
            Some(123)
        );
        assert_eq!(temporary_owner(".model.safetensors.tmp-7"), Some(7));
        assert_eq!(temporary_owner("checkpoint.safetensors.tmp-123"), None);
        assert_eq!(temporary_owner(".x.tmp-12a"), None);
        assert_eq!(temporary_owner(".x.tmp-"), None);
        assert_eq!(temporary_owner(".tmp-5"), None);
    }

    #[test]
    fn a_used_folder_is_refused_unless_overwritten_and_overwriting_starts_a_new_log() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("metrics.jsonl"), "{\"step\":1}\n").unwrap();
        let err = RunDir::open(dir.path(), Start::Fresh { overwrite: false })
            .err()
            .expect("a used folder must be refused")
            .to_string();
        assert!(
            err.contains("--resume") && err.contains("metrics.jsonl"),
            "{err}"
        );
        let mut run = RunDir::open(dir.path(), Start::Fresh { overwrite: true }).unwrap();
        assert_eq!(run.notes.len(), 1, "{:?}", run.notes);
        let record = Record::Step {
            epoch: 1,
            step: 5,
            loss: 0.5,
            lr: 0.1,
            samples_per_s: None,
        };
        run.log(&record).unwrap();
        assert_eq!(read_metrics(&run.metrics_path()).unwrap(), [record]);
    }

    #[test]
    fn resuming_drops_the_records_after_the_checkpoint_and_stale_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let log = [
            r#"{"epoch":1,"step":2,"loss":1.0}"#,
            r#"{"epoch":1,"step":4,"loss":0.9}"#,
            r#"{"epoch":1,"train_loss":0.95}"#,
            r#"{"epoch":2,"step":6,"loss":0.8}"#,
            r#"{"epoch":2,"train_loss":0.8}"#,
        ]
        .join("\n");
        std::fs::write(dir.path().join("metrics.jsonl"), log + "\n").unwrap();
        // No process has an id this large (Linux's pid_max is at most 2^22).
        let stale = dir.path().join(".checkpoint.safetensors.tmp-999999999");
        std::fs::write(&stale, b"half a file").unwrap();
        let ours = dir
            .path()
            .join(format!(".model.safetensors.tmp-{}", std::process::id()));
        std::fs::write(&ours, b"being written").unwrap();
        let run = RunDir::open(dir.path(), Start::Resume { epoch: 1, step: 4 }).unwrap();
        assert!(!stale.exists() && ours.exists());
        assert_eq!(run.notes.len(), 2, "{:?}", run.notes);
        let text = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
        let steps: Vec<String> = text.lines().map(str::to_string).collect();
        assert_eq!(
            steps,
            [
                r#"{"epoch":1,"step":2,"loss":1.0}"#,
                r#"{"epoch":1,"step":4,"loss":0.9}"#,
                r#"{"epoch":1,"train_loss":0.95}"#,
            ]
        );
    }
}
