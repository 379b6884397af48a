//! Networks built from the ops: parameters under PyTorch's state_dict names, configs
//! in TOML, and each model's forward and backward passes written out explicitly.

pub mod attention;
pub mod concept;
pub mod config;
pub mod layers;
pub mod linear;
pub mod p4dconv;
pub mod p4stream;
pub mod p4transformer;
pub mod params;
pub mod pointmae;
pub mod pointmae_cls;
pub mod predictor;
pub mod synthia;
pub mod transformer;

pub use config::{ModelKind, P4TransformerConfig};
pub use layers::Layer;
pub use p4stream::P4Stream;
pub use p4transformer::{P4Forward, P4Transformer};
pub use params::{Grads, ParamStore};
