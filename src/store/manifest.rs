//! The manifest: Docker image manifest v2 / OCI image manifest, with Ollama's layer
//! media types (`application/vnd.ollama.image.*`) and a config blob.

use serde::{Deserialize, Serialize};

use super::name::{Digest, NameError};

/// Docker image manifest v2, schema 2 (what Ollama writes).
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// OCI image manifest.
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The config blob's media type.
pub const MEDIA_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// The GGUF weights.
pub const MEDIA_MODEL: &str = "application/vnd.ollama.image.model";
pub const MEDIA_ADAPTER: &str = "application/vnd.ollama.image.adapter";
pub const MEDIA_PROJECTOR: &str = "application/vnd.ollama.image.projector";
pub const MEDIA_TEMPLATE: &str = "application/vnd.ollama.image.template";
pub const MEDIA_SYSTEM: &str = "application/vnd.ollama.image.system";
pub const MEDIA_PARAMS: &str = "application/vnd.ollama.image.params";
pub const MEDIA_MESSAGES: &str = "application/vnd.ollama.image.messages";
pub const MEDIA_LICENSE: &str = "application/vnd.ollama.image.license";

/// One blob a manifest refers to.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Layer {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    /// The repository the blob came from (used for cross-repository mounts on push).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

impl Layer {
    /// The validated digest.
    pub fn digest(&self) -> Result<Digest, NameError> {
        Digest::parse(&self.digest)
    }
}

/// A model manifest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: String,
    pub config: Layer,
    #[serde(default)]
    pub layers: Vec<Layer>,
}

impl Manifest {
    /// A Docker v2 manifest over a config blob and layers.
    pub fn new(config: Layer, layers: Vec<Layer>) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: MEDIA_DOCKER_MANIFEST.into(),
            config,
            layers,
        }
    }

    /// Parses manifest JSON and validates every digest in it.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, String> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        for l in m.blobs() {
            l.digest().map_err(|e| e.to_string())?;
        }
        Ok(m)
    }

    /// The layers, then the config blob.
    pub fn blobs(&self) -> impl Iterator<Item = &Layer> {
        self.layers.iter().chain(std::iter::once(&self.config))
    }

    /// The first layer of a media type.
    pub fn layer(&self, media_type: &str) -> Option<&Layer> {
        self.layers.iter().find(|l| l.media_type == media_type)
    }

    /// Total size: the layers and the config blob.
    pub fn total_size(&self) -> u64 {
        self.blobs().map(|l| l.size).sum()
    }
}
