//! Writing what a stream saw and predicted as an MCAP file for Foxglove: per predicted
//! frame, the point cloud coloured by the predicted class (`foxglove.PointCloud`, JSON
//! encoded) on `/edge4d/points` and the prediction on `/edge4d/prediction` (JSON, with
//! its JSON schema), both stamped with the input frame's time.
//!
//! The file is written beside its destination and renamed into place by
//! [`Recorder::finish`], so a crash never leaves half a recording under the name.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::json;

use crate::file_error as err;
use crate::render::class_colour;
use edge4d_runtime::Result;

pub const POINTS_TOPIC: &str = "/edge4d/points";
pub const PREDICTION_TOPIC: &str = "/edge4d/prediction";
pub const PREDICTION_SCHEMA: &str = "edge4d.Prediction";

/// foxglove.PointCloud's JSON schema (the fields Foxglove reads), with `data` base64.
const POINT_CLOUD_SCHEMA: &str = r#"{
  "title": "foxglove.PointCloud",
  "description": "A collection of N-dimensional points, which may contain additional fields with information like normals, intensity, etc.",
  "type": "object",
  "properties": {
    "timestamp": {"type": "object", "title": "time", "properties": {"sec": {"type": "integer", "minimum": 0}, "nsec": {"type": "integer", "minimum": 0, "maximum": 999999999}}},
    "frame_id": {"type": "string"},
    "pose": {"type": "object", "properties": {
      "position": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}, "z": {"type": "number"}}},
      "orientation": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}, "z": {"type": "number"}, "w": {"type": "number"}}}}},
    "point_stride": {"type": "integer", "minimum": 0},
    "fields": {"type": "array", "items": {"type": "object", "properties": {
      "name": {"type": "string"}, "offset": {"type": "integer", "minimum": 0},
      "type": {"type": "integer", "description": "foxglove.NumericType: 1 UINT8 ... 7 FLOAT32, 8 FLOAT64"}}}},
    "data": {"type": "string", "contentEncoding": "base64"}
  }
}"#;

const PREDICTION_JSON_SCHEMA: &str = r#"{
  "title": "edge4d.Prediction",
  "description": "An action model's prediction for one streamed frame",
  "type": "object",
  "properties": {
    "timestamp": {"type": "object", "properties": {"sec": {"type": "integer"}, "nsec": {"type": "integer"}}},
    "frame": {"type": "integer", "description": "index of the frame in the stream"},
    "class": {"type": "integer"},
    "class_name": {"type": "string"},
    "confidence": {"type": "number", "description": "the predicted class's probability"},
    "probabilities": {"type": "array", "items": {"type": "number"}},
    "latency_ms": {"type": "number"},
    "truth": {"type": ["integer", "null"]},
    "truth_name": {"type": ["string", "null"]}
  }
}"#;

/// One predicted frame to record.
pub struct RecordedPrediction<'a> {
    pub frame: u64,
    pub log_time_ns: u64,
    pub frame_id: &'a str,
    /// Metres, camera frame.
    pub points: &'a [[f32; 3]],
    pub class: usize,
    pub class_name: &'a str,
    pub probabilities: &'a [f32],
    pub latency_ms: f64,
    pub truth: Option<(usize, &'a str)>,
}

/// An MCAP file being written.
pub struct Recorder {
    writer: mcap::Writer<BufWriter<File>>,
    path: PathBuf,
    partial: PathBuf,
    points_channel: u16,
    prediction_channel: u16,
    sequence: u32,
}

fn mcap_err(path: &Path, e: mcap::McapError) -> edge4d_runtime::Error {
    err(path, format!("cannot write the recording: {e}"))
}

impl Recorder {
    pub fn create(path: &Path) -> Result<Self> {
        let mut name = path
            .file_name()
            .ok_or_else(|| err(path, "not a file name".into()))?
            .to_os_string();
        name.push(".partial");
        let partial = path.with_file_name(name);
        let file =
            File::create(&partial).map_err(|e| err(&partial, format!("cannot create: {e}")))?;
        let mut writer = mcap::WriteOptions::new()
            .profile("")
            .library(concat!("edge4d ", env!("CARGO_PKG_VERSION")))
            .create(BufWriter::new(file))
            .map_err(|e| mcap_err(path, e))?;
        let none = BTreeMap::new();
        let cloud_schema = writer
            .add_schema(
                "foxglove.PointCloud",
                "jsonschema",
                POINT_CLOUD_SCHEMA.as_bytes(),
            )
            .map_err(|e| mcap_err(path, e))?;
        let pred_schema = writer
            .add_schema(
                PREDICTION_SCHEMA,
                "jsonschema",
                PREDICTION_JSON_SCHEMA.as_bytes(),
            )
            .map_err(|e| mcap_err(path, e))?;
        let points_channel = writer
            .add_channel(cloud_schema, POINTS_TOPIC, "json", &none)
            .map_err(|e| mcap_err(path, e))?;
        let prediction_channel = writer
            .add_channel(pred_schema, PREDICTION_TOPIC, "json", &none)
            .map_err(|e| mcap_err(path, e))?;
        Ok(Self {
            writer,
            path: path.to_path_buf(),
            partial,
            points_channel,
            prediction_channel,
            sequence: 0,
        })
    }

    pub fn write(&mut self, p: &RecordedPrediction) -> Result<()> {
        let stamp = json!({
            "sec": p.log_time_ns / 1_000_000_000,
            "nsec": p.log_time_ns % 1_000_000_000,
        });
        // x, y, z float32 then r, g, b, a uint8: 16 bytes a point.
        let [r, g, b] = class_colour(p.class);
        let mut data = Vec::with_capacity(p.points.len() * 16);
        for q in p.points {
            for v in q {
                data.extend_from_slice(&v.to_le_bytes());
            }
            data.extend_from_slice(&[r, g, b, 255]);
        }
        let fields: Vec<_> = [("x", 0, 7), ("y", 4, 7), ("z", 8, 7)]
            .into_iter()
            .chain([
                ("red", 12, 1),
                ("green", 13, 1),
                ("blue", 14, 1),
                ("alpha", 15, 1),
            ])
            .map(|(name, offset, kind)| json!({"name": name, "offset": offset, "type": kind}))
            .collect();
        let cloud = json!({
            "timestamp": stamp,
            "frame_id": p.frame_id,
            "pose": {"position": {"x": 0.0, "y": 0.0, "z": 0.0},
                     "orientation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0}},
            "point_stride": 16,
            "fields": fields,
            "data": base64::engine::general_purpose::STANDARD.encode(&data),
        });
        let prediction = json!({
            "timestamp": stamp,
            "frame": p.frame,
            "class": p.class,
            "class_name": p.class_name,
            "confidence": p.probabilities.get(p.class).copied().unwrap_or(f32::NAN),
            "probabilities": p.probabilities,
            "latency_ms": p.latency_ms,
            "truth": p.truth.map(|t| t.0),
            "truth_name": p.truth.map(|t| t.1),
        });
        for (channel, msg) in [
            (self.points_channel, cloud),
            (self.prediction_channel, prediction),
        ] {
            let header = mcap::records::MessageHeader {
                channel_id: channel,
                sequence: self.sequence,
                log_time: p.log_time_ns,
                publish_time: p.log_time_ns,
            };
            let bytes = serde_json::to_vec(&msg).expect("JSON values serialise");
            self.writer
                .write_to_known_channel(&header, &bytes)
                .map_err(|e| mcap_err(&self.path, e))?;
        }
        self.sequence = self.sequence.wrapping_add(1);
        Ok(())
    }

    /// Writes the summary, syncs the file and renames it into place.
    pub fn finish(mut self) -> Result<PathBuf> {
        self.writer.finish().map_err(|e| mcap_err(&self.path, e))?;
        let buf = self.writer.into_inner();
        let file = buf
            .into_inner()
            .map_err(|e| err(&self.partial, format!("cannot write: {}", e.error())))?;
        file.sync_all()
            .map_err(|e| err(&self.partial, format!("cannot sync: {e}")))?;
        drop(file);
        std::fs::rename(&self.partial, &self.path).map_err(|e| {
            err(
                &self.path,
                format!("cannot move {} into place: {e}", self.partial.display()),
            )
        })?;
        Ok(self.path)
    }
}
