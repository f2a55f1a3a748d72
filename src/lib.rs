//! hearth: pull, run and serve local LLMs on an ordinary CPU.
//!
//! Layers, lowest first (a layer never imports a higher one):
//! - [`quant`]: ggml block formats and their scalar reference kernels.
//! - [`gguf`]: the GGUF file format over a memory map; no knowledge of models.
//! - [`tokenizer`]: text <-> token ids, built from GGUF metadata alone.

pub mod civil;
pub mod cli;
pub mod config;
pub mod constrain;
pub mod engine;
pub mod generate;
pub mod gguf;
pub mod metrics;
pub mod model;
pub mod modelfile;
pub mod ops;
pub mod quant;
pub mod registry;
pub mod sampler;
pub mod scheduler;
pub mod server;
pub mod store;
pub mod template;
pub mod tokenizer;
