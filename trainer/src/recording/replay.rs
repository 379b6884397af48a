//! Replaying a ROS 2 MCAP recording as point frames.
//!
//! The file is read twice, streaming (memory bounded by the largest chunk, not the
//! file): once to list its topics and pick the depth source, once to decode frames.
//! Depth images need intrinsics: those of `--camera-info-topic`, else of the image
//! topic's sibling `camera_info`, else of the one CameraInfo topic with the image's
//! frame_id. Frames come out in log-time order (a reorder window of
//! [`REORDER_WINDOW`] frames absorbs a recorder's out-of-order writes).

use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::io::BufReader;
use std::path::{Path, PathBuf};

use mcap::sans_io::LinearReaderOptions;

use super::ros::{self, CameraInfo, Image, PointCloud2, CAMERA_INFO, IMAGE, POINT_CLOUD2};
use crate::depth_io::DepthIntrinsics;
use crate::file_error as err;
use edge4d_runtime::Result;

/// Frames held back to put out-of-order messages in log-time order.
pub const REORDER_WINDOW: usize = 32;
/// The largest record read (a corrupt length must not become a huge allocation).
const RECORD_LIMIT: usize = 1 << 30;

/// Which topics to replay; `None` picks the only candidate.
#[derive(Debug, Clone, Default)]
pub struct TopicChoice {
    pub depth_topic: Option<String>,
    pub camera_info_topic: Option<String>,
    pub points_topic: Option<String>,
}

/// One topic of a recording.
#[derive(Debug, Clone)]
pub struct TopicInfo {
    pub topic: String,
    /// The schema's name (`sensor_msgs/msg/Image`, …), empty when it has none.
    pub schema: String,
    pub message_encoding: String,
    pub messages: u64,
    /// The first message's header frame_id (images, camera infos, point clouds).
    pub frame_id: Option<String>,
    /// The first image's encoding (image topics).
    pub image_encoding: Option<String>,
}

impl std::fmt::Display for TopicInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let schema = if self.schema.is_empty() {
            "no schema"
        } else {
            &self.schema
        };
        write!(
            f,
            "{} ({schema}, {}, {} messages",
            self.topic, self.message_encoding, self.messages
        )?;
        if let Some(e) = &self.image_encoding {
            write!(f, ", encoding {e}")?;
        }
        if let Some(id) = &self.frame_id {
            write!(f, ", frame_id {id:?}")?;
        }
        write!(f, ")")
    }
}

/// Where the frames come from.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameSource {
    Depth {
        image_topic: String,
        camera_info_topic: String,
    },
    Points {
        topic: String,
    },
}

/// One decoded frame.
#[derive(Debug, Clone)]
pub struct RecordedFrame {
    /// The message's log time, nanoseconds.
    pub log_time_ns: u64,
    /// The message's index on its topic, in file order.
    pub index: usize,
    pub frame_id: String,
    /// Points in metres, camera frame (x right, y down, z forward); may be empty.
    pub points: Vec<[f32; 3]>,
}

/// An MCAP recording opened for replay.
pub struct Replay {
    path: PathBuf,
    topics: Vec<TopicInfo>,
    source: FrameSource,
    /// The first CameraInfo of the chosen topic, for images logged before it.
    first_info: Option<CameraInfo>,
}

fn reader(path: &Path) -> Result<mcap::io::MessageReader<BufReader<std::fs::File>>> {
    let meta = std::fs::metadata(path).map_err(|e| err(path, format!("cannot open: {e}")))?;
    if meta.len() == 0 {
        return Err(err(
            path,
            "empty file (0 bytes), not an MCAP recording".into(),
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| err(path, format!("cannot open: {e}")))?;
    let opts = LinearReaderOptions::default().with_record_length_limit(RECORD_LIMIT);
    Ok(mcap::io::MessageReader::new_with_options(
        BufReader::new(file),
        opts,
    ))
}

fn mcap_error(path: &Path, e: mcap::McapError, messages: u64) -> edge4d_runtime::Error {
    let what = match e {
        mcap::McapError::BadMagic => {
            "not an MCAP file (it does not start and end with the MCAP magic)".to_string()
        }
        e => e.to_string(),
    };
    if messages == 0 {
        err(path, format!("cannot read the recording: {what}"))
    } else {
        err(
            path,
            format!("the recording breaks off after {messages} messages: {what}"),
        )
    }
}

fn schema_name(msg: &mcap::Message) -> String {
    msg.channel
        .schema
        .as_ref()
        .map(|s| s.name.clone())
        .unwrap_or_default()
}

/// Where in the file a message is, for errors.
fn at(topic: &str, index: usize) -> String {
    format!("topic {topic} message {index}")
}

impl Replay {
    /// Reads the recording's topics and picks the frame source as `choice` says.
    pub fn open(path: &Path, choice: &TopicChoice) -> Result<Self> {
        let mut topics: BTreeMap<String, TopicInfo> = BTreeMap::new();
        let mut infos: BTreeMap<String, CameraInfo> = BTreeMap::new();
        let mut read = 0u64;
        for msg in reader(path)? {
            let msg = match msg {
                Ok(m) => m,
                // A recording cut short still replays up to the cut; the second pass
                // reports it there.
                Err(e) if read > 0 => {
                    log::warn!("{}", mcap_error(path, e, read));
                    break;
                }
                Err(e) => return Err(mcap_error(path, e, read)),
            };
            read += 1;
            let topic = &msg.channel.topic;
            let info = topics.entry(topic.clone()).or_insert_with(|| TopicInfo {
                topic: topic.clone(),
                schema: schema_name(&msg),
                message_encoding: msg.channel.message_encoding.clone(),
                messages: 0,
                frame_id: None,
                image_encoding: None,
            });
            info.messages += 1;
            if info.messages > 1 || info.message_encoding != "cdr" {
                continue;
            }
            match info.schema.as_str() {
                IMAGE => {
                    if let Ok(img) = ros::decode::<Image>(&msg.data) {
                        info.frame_id = Some(img.header.frame_id);
                        info.image_encoding = Some(img.encoding);
                    }
                }
                CAMERA_INFO => {
                    if let Ok(ci) = ros::decode::<CameraInfo>(&msg.data) {
                        info.frame_id = Some(ci.header.frame_id.clone());
                        infos.insert(topic.clone(), ci);
                    }
                }
                POINT_CLOUD2 => {
                    if let Ok(pc) = ros::decode::<PointCloud2>(&msg.data) {
                        info.frame_id = Some(pc.header.frame_id);
                    }
                }
                _ => {}
            }
        }
        let topics: Vec<TopicInfo> = topics.into_values().collect();
        let source = choose(path, &topics, choice)?;
        let first_info = match &source {
            FrameSource::Depth {
                camera_info_topic, ..
            } => infos.remove(camera_info_topic),
            FrameSource::Points { .. } => None,
        };
        Ok(Self {
            path: path.to_path_buf(),
            topics,
            source,
            first_info,
        })
    }

    pub fn topics(&self) -> &[TopicInfo] {
        &self.topics
    }

    pub fn source(&self) -> &FrameSource {
        &self.source
    }

    /// Frames in log-time order; an error (a bad message, a cut) ends the iteration
    /// after the frames before it.
    pub fn frames(&self) -> Result<Frames> {
        Ok(Frames {
            path: self.path.clone(),
            reader: reader(&self.path)?,
            source: self.source.clone(),
            info: self.first_info.clone(),
            intrinsics: None,
            counts: [0, 0],
            read: 0,
            held: BinaryHeap::new(),
            out: VecDeque::new(),
            done: false,
        })
    }

    /// One line saying what is replayed.
    pub fn describe(&self) -> String {
        match &self.source {
            FrameSource::Depth {
                image_topic,
                camera_info_topic,
            } => format!("depth images {image_topic} with intrinsics from {camera_info_topic}"),
            FrameSource::Points { topic } => format!("point clouds {topic}"),
        }
    }
}

fn list(topics: &[TopicInfo]) -> String {
    if topics.is_empty() {
        return "the recording has no messages".into();
    }
    let lines: Vec<String> = topics.iter().map(|t| format!("  {t}")).collect();
    format!("its topics:\n{}", lines.join("\n"))
}

fn is_depth_encoding(e: &str) -> bool {
    matches!(e, "16UC1" | "mono16" | "32FC1")
}

fn choose(path: &Path, topics: &[TopicInfo], choice: &TopicChoice) -> Result<FrameSource> {
    let find = |name: &str, schema: &str, flag: &str| -> Result<&TopicInfo> {
        let t = topics.iter().find(|t| t.topic == name).ok_or_else(|| {
            err(
                path,
                format!("{flag} {name}: no such topic; {}", list(topics)),
            )
        })?;
        if t.schema != schema {
            return Err(err(
                path,
                format!(
                    "{flag} {name}: the topic carries {:?}, not {schema}; {}",
                    t.schema,
                    list(topics)
                ),
            ));
        }
        Ok(t)
    };
    if choice.points_topic.is_some() && choice.depth_topic.is_some() {
        return Err(err(
            path,
            "give --depth-topic or --points-topic, not both".into(),
        ));
    }
    if let Some(name) = &choice.points_topic {
        find(name, POINT_CLOUD2, "--points-topic")?;
        return Ok(FrameSource::Points {
            topic: name.clone(),
        });
    }
    let image = if let Some(name) = &choice.depth_topic {
        find(name, IMAGE, "--depth-topic")?
    } else {
        let images: Vec<&TopicInfo> = topics.iter().filter(|t| t.schema == IMAGE).collect();
        let depth: Vec<&TopicInfo> = images
            .iter()
            .copied()
            .filter(|t| t.image_encoding.as_deref().is_some_and(is_depth_encoding))
            .collect();
        let clouds: Vec<&TopicInfo> = topics.iter().filter(|t| t.schema == POINT_CLOUD2).collect();
        match (depth.len(), clouds.len()) {
            (1, 0) => depth[0],
            (0, 1) => {
                return Ok(FrameSource::Points {
                    topic: clouds[0].topic.clone(),
                })
            }
            (0, 0) if !images.is_empty() => {
                let found: Vec<String> = images
                    .iter()
                    .map(|t| {
                        format!(
                            "{} has encoding {:?}",
                            t.topic,
                            t.image_encoding.as_deref().unwrap_or("?")
                        )
                    })
                    .collect();
                return Err(err(
                    path,
                    format!(
                        "no depth image topic: {}; edge4d reads depth as 16UC1 (millimetres) or 32FC1 (metres), or PointCloud2; {}",
                        found.join(", "),
                        list(topics)
                    ),
                ));
            }
            (0, 0) => {
                return Err(err(
                    path,
                    format!(
                        "no {IMAGE} depth topic and no {POINT_CLOUD2} topic; {}",
                        list(topics)
                    ),
                ))
            }
            _ => {
                return Err(err(
                    path,
                    format!(
                        "{} depth image topics and {} point cloud topics: choose one with --depth-topic or --points-topic; {}",
                        depth.len(),
                        clouds.len(),
                        list(topics)
                    ),
                ))
            }
        }
    };
    let camera_info_topic = if let Some(name) = &choice.camera_info_topic {
        find(name, CAMERA_INFO, "--camera-info-topic")?;
        name.clone()
    } else {
        let infos: Vec<&TopicInfo> = topics.iter().filter(|t| t.schema == CAMERA_INFO).collect();
        let sibling = match image.topic.rsplit_once('/') {
            Some((parent, _)) => format!("{parent}/camera_info"),
            None => "camera_info".into(),
        };
        let same_frame: Vec<&&TopicInfo> = infos
            .iter()
            .filter(|t| t.frame_id.is_some() && t.frame_id == image.frame_id)
            .collect();
        if let Some(t) = infos.iter().find(|t| t.topic == sibling) {
            t.topic.clone()
        } else if same_frame.len() == 1 {
            same_frame[0].topic.clone()
        } else {
            return Err(err(
                path,
                format!(
                    "depth topic {} (frame_id {:?}) has no {sibling} topic and {} CameraInfo topics with its frame_id: name one with --camera-info-topic; {}",
                    image.topic,
                    image.frame_id.as_deref().unwrap_or("?"),
                    same_frame.len(),
                    list(topics)
                ),
            ));
        }
    };
    Ok(FrameSource::Depth {
        image_topic: image.topic.clone(),
        camera_info_topic,
    })
}

/// A frame held in the reorder window: earliest log time first, then file order.
struct Held {
    log_time_ns: u64,
    order: u64,
    frame: RecordedFrame,
}

impl PartialEq for Held {
    fn eq(&self, o: &Self) -> bool {
        (self.log_time_ns, self.order) == (o.log_time_ns, o.order)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Held {
    // Reversed: BinaryHeap pops the largest, we want the earliest.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.log_time_ns, o.order).cmp(&(self.log_time_ns, self.order))
    }
}

/// The frames of a [`Replay`], in log-time order.
pub struct Frames {
    path: PathBuf,
    reader: mcap::io::MessageReader<BufReader<std::fs::File>>,
    source: FrameSource,
    info: Option<CameraInfo>,
    intrinsics: Option<DepthIntrinsics>,
    /// Messages seen on the frame topic and on the camera-info topic.
    counts: [usize; 2],
    read: u64,
    held: BinaryHeap<Held>,
    out: VecDeque<Result<RecordedFrame>>,
    done: bool,
}

impl Frames {
    /// Decodes one message of the chosen topics: Some(frame) for a frame.
    fn decode(
        &mut self,
        msg: &mcap::Message,
    ) -> std::result::Result<Option<RecordedFrame>, String> {
        let topic = msg.channel.topic.as_str();
        match &self.source {
            FrameSource::Points { topic: want } if want == topic => {
                let index = self.counts[0];
                self.counts[0] += 1;
                let pc: PointCloud2 =
                    ros::decode(&msg.data).map_err(|e| format!("{}: {e}", at(topic, index)))?;
                let points =
                    ros::cloud_points(&pc).map_err(|e| format!("{}: {e}", at(topic, index)))?;
                Ok(Some(RecordedFrame {
                    log_time_ns: msg.log_time,
                    index,
                    frame_id: pc.header.frame_id,
                    points,
                }))
            }
            FrameSource::Depth {
                camera_info_topic, ..
            } if camera_info_topic == topic => {
                let index = self.counts[1];
                self.counts[1] += 1;
                let ci: CameraInfo =
                    ros::decode(&msg.data).map_err(|e| format!("{}: {e}", at(topic, index)))?;
                self.intrinsics =
                    Some(ros::intrinsics(&ci).map_err(|e| format!("{}: {e}", at(topic, index)))?);
                self.info = Some(ci);
                Ok(None)
            }
            FrameSource::Depth {
                image_topic,
                camera_info_topic,
            } if image_topic == topic => {
                let index = self.counts[0];
                self.counts[0] += 1;
                if self.intrinsics.is_none() {
                    let info = self.info.as_ref().ok_or_else(|| {
                        format!(
                            "{}: no CameraInfo on {camera_info_topic} in the whole recording",
                            at(topic, index)
                        )
                    })?;
                    self.intrinsics = Some(
                        ros::intrinsics(info)
                            .map_err(|e| format!("{}: {e}", at(camera_info_topic, 0)))?,
                    );
                }
                let img: Image =
                    ros::decode(&msg.data).map_err(|e| format!("{}: {e}", at(topic, index)))?;
                let intr = self.intrinsics.as_ref().expect("set above");
                let points = ros::depth_points(&img, intr)
                    .map_err(|e| format!("{}: {e}", at(topic, index)))?;
                Ok(Some(RecordedFrame {
                    log_time_ns: msg.log_time,
                    index,
                    frame_id: img.header.frame_id,
                    points,
                }))
            }
            _ => Ok(None),
        }
    }

    fn release_all(&mut self) {
        while let Some(h) = self.held.pop() {
            self.out.push_back(Ok(h.frame));
        }
    }
}

impl Iterator for Frames {
    type Item = Result<RecordedFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.out.pop_front() {
                return Some(r);
            }
            if self.done {
                return None;
            }
            match self.reader.next() {
                None => {
                    self.done = true;
                    self.release_all();
                }
                Some(Err(e)) => {
                    self.done = true;
                    self.release_all();
                    self.out
                        .push_back(Err(mcap_error(&self.path, e, self.read)));
                }
                Some(Ok(msg)) => {
                    self.read += 1;
                    match self.decode(&msg) {
                        Ok(Some(frame)) => {
                            self.held.push(Held {
                                log_time_ns: frame.log_time_ns,
                                order: self.read,
                                frame,
                            });
                            if self.held.len() > REORDER_WINDOW {
                                let h = self.held.pop().expect("non-empty");
                                self.out.push_back(Ok(h.frame));
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            self.done = true;
                            self.release_all();
                            self.out.push_back(Err(err(&self.path, e)));
                        }
                    }
                }
            }
        }
    }
}
