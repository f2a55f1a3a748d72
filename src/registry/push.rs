//! `push`: every blob the registry lacks (HEAD; else POST, cross-repository mount when
//! the layer says where it came from, PATCH chunks, PUT `?digest=`), then the manifest.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;

use super::{Client, RegistryError, Result};
use crate::store::manifest::MEDIA_DOCKER_MANIFEST;
use crate::store::{io_err, Layer, Manifest, Name};

impl Client {
    /// Pushes a model from the store to its registry.
    pub fn push(&self, name: &Name) -> Result<()> {
        let base = self.base_url(name)?;
        self.progress.status("retrieving manifest");
        let bytes = self.store.manifest_bytes(name)?;
        let m = Manifest::from_json(&bytes)
            .map_err(|r| RegistryError::Protocol(format!("invalid manifest for {name}: {r}")))?;
        let mut seen = HashSet::new();
        for layer in m.blobs() {
            if seen.insert(layer.digest.clone()) {
                self.push_blob(&base, name, layer)?;
            }
        }
        self.progress.status("pushing manifest");
        let url = format!("{base}/v2/{}/manifests/{}", name.repository(), name.tag());
        let ct = if m.media_type.is_empty() {
            MEDIA_DOCKER_MANIFEST
        } else {
            m.media_type.as_str()
        };
        self.http.retry(|_| {
            self.http
                .send("PUT", &url, &[("Content-Type", ct)], Some(&bytes))
        })?;
        self.progress.status("success");
        Ok(())
    }

    fn push_blob(&self, base: &str, name: &Name, layer: &Layer) -> Result<()> {
        let d = layer.digest()?;
        let key = d.to_string();
        let repo = name.repository();
        self.progress
            .start(&key, &format!("pushing {}", d.short()), layer.size, 0);
        let head = format!("{base}/v2/{repo}/blobs/{d}");
        match self
            .http
            .retry(|_| self.http.send("HEAD", &head, &[], None))
        {
            Ok(_) => {
                self.progress.update(&key, layer.size);
                self.progress.finish(&key);
                return Ok(());
            }
            Err(RegistryError::Status { code: 404, .. }) => {}
            Err(e) => return Err(e),
        }
        let path = self.store.blob_path(&d);
        self.http.retry(|_| {
            let mut post = format!("{base}/v2/{repo}/blobs/uploads/");
            if let Some(from) = layer.from.as_deref().filter(|f| *f != repo) {
                post.push_str(&format!("?mount={d}&from={from}"));
            }
            let r = self.http.send("POST", &post, &[], Some(&[]))?;
            if r.status() == 201 {
                return Ok(()); // mounted from another repository
            }
            let mut loc = location(base, &r)?;
            let mut f = File::open(&path).map_err(io_err("cannot open", &path))?;
            let mut buf = vec![0u8; self.opts.upload_chunk.max(1)];
            let mut offset = 0u64;
            loop {
                let n = read_full(&mut f, &mut buf).map_err(io_err("cannot read", &path))?;
                if n == 0 {
                    break;
                }
                let range = format!("{offset}-{}", offset + n as u64 - 1);
                let r = self.http.send(
                    "PATCH",
                    &loc,
                    &[
                        ("Content-Type", "application/octet-stream"),
                        ("Content-Range", &range),
                    ],
                    Some(&buf[..n]),
                )?;
                loc = location(base, &r)?;
                offset += n as u64;
                self.progress.update(&key, offset);
            }
            let sep = if loc.contains('?') { '&' } else { '?' };
            let put = format!("{loc}{sep}digest={d}");
            self.http.send("PUT", &put, &[], Some(&[]))?;
            Ok(())
        })?;
        self.progress.update(&key, layer.size);
        self.progress.finish(&key);
        Ok(())
    }
}

/// The upload URL a registry answered with, made absolute.
fn location(base: &str, r: &ureq::Response) -> Result<String> {
    let loc = r
        .header("Location")
        .or_else(|| r.header("Docker-Upload-Location"))
        .ok_or_else(|| RegistryError::Protocol("upload reply without Location".into()))?;
    url::Url::parse(base)
        .and_then(|b| b.join(loc))
        .map(|u| u.to_string())
        .map_err(|e| RegistryError::Protocol(format!("bad upload location {loc}: {e}")))
}

fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
