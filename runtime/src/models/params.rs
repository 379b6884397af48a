//! Named parameters on the device, under PyTorch's state_dict names, and their
//! gradients. Loading checks every name and shape and reports all problems at once.

use std::collections::BTreeMap;
use std::path::Path;

use crate::tensor_file::{write_atomic, HostTensor, Stored, TensorFile};
use crate::{Device, Error, Result, Tensor};

/// Gradients by parameter name.
pub type Grads = BTreeMap<String, Tensor>;

/// Adds `g` into `grads[name]` (creating it), so shared weights accumulate.
pub fn accumulate(s: &mut crate::Step<'_>, grads: &mut Grads, name: &str, g: Tensor) -> Result<()> {
    let g = match grads.remove(name) {
        Some(prev) => crate::ops::elementwise::add(s, &prev, &g.reshape(prev.shape())?)?,
        None => g,
    };
    grads.insert(name.to_string(), g);
    Ok(())
}

/// How a parameter starts when a model is trained from scratch (PyTorch's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as nn.Linear / nn.Conv weights and biases.
    Uniform {
        fan_in: usize,
    },
    /// N(0, std²) truncated to [−2, 2] (timm's `trunc_normal_`, as Point-MAE uses it).
    TruncNormal {
        std: f32,
    },
    Ones,
    Zeros,
    /// An integer counter kept on the host (BatchNorm's `num_batches_tracked`).
    Counter,
}

/// One expected parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
    /// False for buffers (running statistics, counters): saved and loaded, never trained.
    pub trainable: bool,
}

/// What a model expects, in state_dict order.
pub type Spec = Vec<ParamSpec>;

fn entry(name: String, shape: Vec<usize>, init: Init, trainable: bool) -> ParamSpec {
    ParamSpec {
        name,
        shape,
        init,
        trainable,
    }
}

/// Spec entries of a linear layer `prefix.weight (out, in…)` and optional `prefix.bias`.
pub fn linear_spec(spec: &mut Spec, prefix: &str, out: usize, in_shape: &[usize], bias: bool) {
    let fan_in = in_shape.iter().product();
    let mut shape = vec![out];
    shape.extend_from_slice(in_shape);
    spec.push(entry(
        format!("{prefix}.weight"),
        shape,
        Init::Uniform { fan_in },
        true,
    ));
    if bias {
        spec.push(entry(
            format!("{prefix}.bias"),
            vec![out],
            Init::Uniform { fan_in },
            true,
        ));
    }
}

/// Spec entries of a LayerNorm `prefix.{weight,bias}`.
pub fn norm_spec(spec: &mut Spec, prefix: &str, dim: usize) {
    spec.push(entry(
        format!("{prefix}.weight"),
        vec![dim],
        Init::Ones,
        true,
    ));
    spec.push(entry(
        format!("{prefix}.bias"),
        vec![dim],
        Init::Zeros,
        true,
    ));
}

/// Spec entries of a BatchNorm: `prefix.{weight,bias}` and the buffers
/// `prefix.{running_mean,running_var,num_batches_tracked}`.
pub fn batchnorm_spec(spec: &mut Spec, prefix: &str, dim: usize) {
    norm_spec(spec, prefix, dim);
    spec.push(entry(
        format!("{prefix}.running_mean"),
        vec![dim],
        Init::Zeros,
        false,
    ));
    spec.push(entry(
        format!("{prefix}.running_var"),
        vec![dim],
        Init::Ones,
        false,
    ));
    spec.push(entry(
        format!("{prefix}.num_batches_tracked"),
        vec![],
        Init::Counter,
        false,
    ));
}

/// A model's parameters on the device.
pub struct ParamStore {
    tensors: BTreeMap<String, Tensor>,
    counters: std::sync::Mutex<BTreeMap<String, i64>>,
    spec: Spec,
}

impl ParamStore {
    /// Loads every tensor of `spec` from `file`, reading `prefix + name`
    /// (prefix "" for ordinary checkpoints). Missing, misshaped and (when
    /// `allow_extra` is false) unexpected tensors are all named in one error.
    pub fn load(
        dev: &Device,
        spec: Spec,
        file: &TensorFile,
        prefix: &str,
        allow_extra: bool,
    ) -> Result<Self> {
        let mut problems = Vec::new();
        let mut tensors = BTreeMap::new();
        let mut counters = BTreeMap::new();
        for ParamSpec {
            name, shape, init, ..
        } in &spec
        {
            let key = format!("{prefix}{name}");
            if !file.contains(&key) {
                problems.push(format!("missing {key} {shape:?}"));
                continue;
            }
            if *init == Init::Counter {
                match file.i64(&key) {
                    Ok((v, _)) if v.len() == 1 => {
                        counters.insert(name.clone(), v[0]);
                    }
                    _ => problems.push(format!("{key} should be one integer")),
                }
                continue;
            }
            let h = file.f32(&key)?;
            if &h.shape != shape {
                problems.push(format!(
                    "{key} has shape {:?}, the model needs {shape:?}",
                    h.shape
                ));
                continue;
            }
            tensors.insert(
                name.clone(),
                upload_named(dev, file, &key, &h.data, &h.shape)?,
            );
        }
        if !allow_extra {
            for key in file.names() {
                if let Some(name) = key.strip_prefix(prefix) {
                    if !spec.iter().any(|p| p.name == name) {
                        problems.push(format!("unexpected {key} (not a parameter of this model)"));
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(Error::TensorFile {
                path: file.path().to_string(),
                detail: format!(
                    "weights do not match the model config ({} problems):\n  {}",
                    problems.len(),
                    problems.join("\n  ")
                ),
            });
        }
        Ok(Self {
            tensors,
            counters: std::sync::Mutex::new(counters),
            spec,
        })
    }

    /// Parameters initialised as PyTorch initialises them by default: weights and
    /// biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)); norm weights 1 and biases 0.
    pub fn init(dev: &Device, spec: Spec, seed: u64) -> Result<Self> {
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_add(0x9E3779B97F4A7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
            ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
        };
        let mut tensors = BTreeMap::new();
        let mut counters = BTreeMap::new();
        for p in &spec {
            let n: usize = p.shape.iter().product();
            let data: Vec<f32> = match p.init {
                Init::Counter => {
                    counters.insert(p.name.clone(), 0);
                    continue;
                }
                Init::Ones => vec![1.0; n],
                Init::Zeros => vec![0.0; n],
                Init::Uniform { fan_in } => {
                    let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
                    (0..n).map(|_| (2.0 * next() - 1.0) * bound).collect()
                }
                Init::TruncNormal { std } => (0..n)
                    .map(|_| loop {
                        // Box–Muller; redraw the rare value outside [−2, 2].
                        let (u1, u2) = (next().max(f32::MIN_POSITIVE), next());
                        let z = (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
                        if (z * std).abs() <= 2.0 {
                            break z * std;
                        }
                    })
                    .collect(),
            };
            tensors.insert(p.name.clone(), dev.upload(&data, &p.shape)?);
        }
        Ok(Self {
            tensors,
            counters: std::sync::Mutex::new(counters),
            spec,
        })
    }

    /// Replaces every parameter `file` holds under the same name (for `--init` from a
    /// pre-trained or differently headed model): returns the store, how many tensors
    /// were loaded and the names kept as initialised. Tensors the model lacks are
    /// ignored; a tensor of the wrong shape, or a file with no usable tensor, is an
    /// error naming the file.
    pub fn load_matching(
        mut self,
        dev: &Device,
        file: &TensorFile,
    ) -> Result<(Self, usize, Vec<String>)> {
        let mut loaded = 0;
        let mut kept = Vec::new();
        let mut problems = Vec::new();
        for ParamSpec {
            name, shape, init, ..
        } in self.spec.clone()
        {
            let Some(source) = source_names(&name).into_iter().find(|n| file.contains(n)) else {
                kept.push(name);
                continue;
            };
            if init == Init::Counter {
                if let Ok((v, _)) = file.i64(&source) {
                    if let Some(&c) = v.first() {
                        self.counters
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(name.clone(), c);
                    }
                }
                loaded += 1;
                continue;
            }
            let h = file.f32(&source)?;
            if h.shape != shape {
                problems.push(format!(
                    "{source} has shape {:?}, the model's {name} needs {shape:?}",
                    h.shape
                ));
                continue;
            }
            self.tensors
                .insert(name, upload_named(dev, file, &source, &h.data, &h.shape)?);
            loaded += 1;
        }
        if !problems.is_empty() || loaded == 0 {
            if loaded == 0 {
                problems.push("no tensor matches a parameter of this model".into());
            }
            return Err(Error::TensorFile {
                path: file.path().to_string(),
                detail: format!(
                    "cannot initialise the model from it:\n  {}",
                    problems.join("\n  ")
                ),
            });
        }
        Ok((self, loaded, kept))
    }

    /// Writes every parameter under `rename(name)` (e.g. the official pre-training
    /// checkpoint's `model.` prefix on backbone names).
    pub fn save_renamed(
        &self,
        dev: &Device,
        path: &Path,
        metadata: std::collections::HashMap<String, String>,
        rename: impl Fn(&str) -> String,
    ) -> Result<()> {
        let tensors: Vec<(String, Stored)> = self
            .stored(dev)?
            .into_iter()
            .map(|(name, t)| (rename(&name), t))
            .collect();
        write_atomic(path, &tensors, metadata)
    }

    /// An independent copy on the device (e.g. one per stream that fine-tunes its own).
    pub fn duplicate(&self, dev: &Device) -> Result<Self> {
        let tensors = self
            .tensors
            .iter()
            .map(|(name, t)| Ok((name.clone(), dev.upload(&dev.read(t)?, t.shape())?)))
            .collect::<Result<BTreeMap<_, _>>>()?;
        Ok(Self {
            tensors,
            counters: std::sync::Mutex::new(
                self.counters
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
            ),
            spec: self.spec.clone(),
        })
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    pub fn get(&self, name: &str) -> Result<&Tensor> {
        self.tensors
            .get(name)
            .ok_or_else(|| Error::InvalidArgument {
                op: "params",
                detail: format!("no parameter named {name:?}"),
            })
    }

    /// A weight viewed as a matrix (out, in), dropping PyTorch's trailing 1×1 conv dims.
    pub fn matrix(&self, name: &str) -> Result<Tensor> {
        let t = self.get(name)?;
        let out = t.shape()[0];
        t.reshape(&[out, t.numel() / out])
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Tensor)> {
        self.tensors.iter()
    }

    /// Replaces a parameter's values (e.g. after an optimizer step wrote a new tensor).
    pub fn set(&mut self, name: &str, t: Tensor) -> Result<()> {
        let old = self.get(name)?;
        if old.shape() != t.shape() {
            return Err(Error::Shape {
                op: "params.set",
                detail: format!("{name}: {:?} vs {:?}", old.shape(), t.shape()),
            });
        }
        self.tensors.insert(name.to_string(), t);
        Ok(())
    }

    /// A host counter (BatchNorm's `num_batches_tracked`).
    pub fn counter(&self, name: &str) -> Option<i64> {
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied()
    }

    /// Adds `by` to a counter (a train-mode BatchNorm call counts one batch).
    pub fn bump(&self, name: &str, by: i64) {
        *self
            .counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_string())
            .or_insert(0) += by;
    }

    /// Reads every float parameter and buffer back to the host.
    pub fn to_host(&self, dev: &Device) -> Result<Vec<(String, HostTensor)>> {
        self.spec
            .iter()
            .filter(|p| p.init != Init::Counter)
            .map(|p| {
                Ok((
                    p.name.clone(),
                    HostTensor::new(dev.read(self.get(&p.name)?)?, &p.shape),
                ))
            })
            .collect()
    }

    /// Every parameter, buffer and counter as host values under its state_dict name.
    pub fn stored(&self, dev: &Device) -> Result<Vec<(String, Stored)>> {
        let mut tensors: Vec<(String, Stored)> = self
            .to_host(dev)?
            .into_iter()
            .map(|(n, h)| (n, Stored::F32(h)))
            .collect();
        for (name, v) in self
            .counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            tensors.push((name.clone(), Stored::I64(vec![*v], vec![])));
        }
        Ok(tensors)
    }

    /// Saves parameters, buffers and counters as a safetensors state_dict (atomically),
    /// under the same names PyTorch uses, so the file loads with `load_state_dict`.
    pub fn save(
        &self,
        dev: &Device,
        path: &Path,
        metadata: std::collections::HashMap<String, String>,
    ) -> Result<()> {
        write_atomic(path, &self.stored(dev)?, metadata)
    }
}

/// Uploads tensor `key` of `file`; a NaN or infinity is an error naming both.
fn upload_named(
    dev: &Device,
    file: &TensorFile,
    key: &str,
    data: &[f32],
    shape: &[usize],
) -> Result<Tensor> {
    dev.upload(data, shape).map_err(|e| match e {
        Error::NonFinite { index, value, .. } => Error::TensorFile {
            path: file.path().to_string(),
            detail: format!("tensor {key} holds a non-finite value ({value}) at index {index}"),
        },
        other => other,
    })
}

/// The names a parameter may have in a file, in order of preference: its own; under
/// `model.`, as the official C2P pre-training checkpoint stores its backbone
/// (`models/AS_p4_pretrain.py` wraps it in `self.model`); and a per-clip model's
/// `transformer.*` from a per-frame backbone's `transformer1.*` (§5.7 copies the
/// transformer's weights), with or without `model.`.
pub fn source_names(name: &str) -> Vec<String> {
    let mut names = vec![name.to_string(), format!("model.{name}")];
    if let Some(rest) = name.strip_prefix("transformer.") {
        names.push(format!("transformer1.{rest}"));
        names.push(format!("model.transformer1.{rest}"));
    }
    names
}
