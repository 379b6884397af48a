//! The `edge4d` command line end to end: training runs (fine-tuning, pre-training,
//! segmentation, concept distillation) with their files and resume, evaluation,
//! inference, streaming, flags and the environment. One binary, one process helper
//! (`common::edge4d`).

#[path = "../common/mod.rs"]
mod common;

mod concept;
mod environment;
mod finetune;
mod flags;
mod infer;
mod pretrain;
mod segmentation;
mod stream;
