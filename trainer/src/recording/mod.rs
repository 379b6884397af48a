//! ROS 2 recordings: replay an MCAP file's depth images or point clouds
//! ([`replay::Replay`]) and record a stream's predictions over its point clouds for
//! Foxglove ([`record::Recorder`]).

pub mod dataset;
pub mod labels;
pub mod record;
pub mod replay;
pub mod ros;

pub use record::{RecordedPrediction, Recorder};
pub use replay::{FrameSource, RecordedFrame, Replay, TopicChoice, TopicInfo};
