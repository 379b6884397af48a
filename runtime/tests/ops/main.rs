//! Per-op tests: GPU vs CPU reference on random inputs with odd sizes, a
//! finite-difference check of each reference backward, and bitwise determinism of
//! GPU forward and backward across two runs. Runs on the backend EDGE4D_BACKEND names.

mod common;

mod activation;
mod attention;
mod batchnorm;
mod cross_entropy;
mod device;
mod dropout;
mod elementwise;
mod kernels;
mod layernorm;
mod layers;
mod layout;
mod matmul;
mod mse;
mod optim;
mod p4blocks;
mod p4stream;
mod point;
mod pointmae_cls;
mod reduce;
mod softmax;
mod threads;
