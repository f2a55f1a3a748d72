//! `pull`: the manifest, then every blob not yet in the store, then the manifest file.
//!
//! A blob is fetched into `blobs/sha256-<hex>-partial` (sparse, its final size) in Range
//! parts downloaded in parallel. Each part's state `{n, offset, size, completed}` is kept
//! in `sha256-<hex>-partial-<n>` beside it, written atomically after the data it counts
//! was synced, so a later pull, in this process or another, resumes where it stopped.
//! Only after all parts are in and the sha256 matches is the file renamed to
//! `sha256-<hex>`; a mismatch deletes the partial data.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::{Client, RegistryError, Result};
use crate::store::manifest::{MEDIA_DOCKER_MANIFEST, MEDIA_OCI_MANIFEST};
use crate::store::{atomic_write, io_err, name::hex, Digest, Manifest, Name, StoreError};

/// Largest manifest accepted.
const MAX_MANIFEST: u64 = 4 << 20;
/// Save a part's progress after this many bytes or this long.
const SAVE_BYTES: u64 = 8 << 20;
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The resumable state of one Range part (Ollama's `blobDownloadPart`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct PartState {
    n: usize,
    offset: u64,
    size: u64,
    completed: u64,
}

fn part_file(partial: &Path, n: usize) -> PathBuf {
    let mut s = partial.as_os_str().to_owned();
    s.push(format!("-{n}"));
    PathBuf::from(s)
}

/// Deletes a partial download and its part files.
fn remove_partial(partial: &Path) {
    let _ = fs::remove_file(partial);
    let (Some(dir), Some(stem)) = (partial.parent(), partial.file_name()) else {
        return;
    };
    let prefix = format!("{}-", stem.to_string_lossy());
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// The saved parts of a partial download, if they describe exactly `size` bytes.
fn load_parts(partial: &Path, size: u64) -> Option<Vec<PartState>> {
    if fs::metadata(partial).ok()?.len() != size {
        return None;
    }
    let mut parts: Vec<PartState> = Vec::new();
    let mut next = 0u64;
    while let Ok(b) = fs::read(part_file(partial, parts.len())) {
        let p: PartState = serde_json::from_slice(&b).ok()?;
        if p.n != parts.len() || p.offset != next || p.completed > p.size || p.size == 0 {
            return None;
        }
        next += p.size;
        parts.push(p);
    }
    (next == size && !parts.is_empty()).then_some(parts)
}

fn plan_parts(size: u64, min: u64, max: u64) -> Vec<PartState> {
    let part = (size / 16).clamp(min.max(1), max.max(min).max(1));
    let mut parts = Vec::new();
    let mut offset = 0;
    while offset < size {
        let s = part.min(size - offset);
        parts.push(PartState {
            n: parts.len(),
            offset,
            size: s,
            completed: 0,
        });
        offset += s;
    }
    parts
}

/// Syncs the data, then records the part's progress.
fn save_part(file: &File, partial: &Path, p: &PartState) -> Result<()> {
    file.sync_data().map_err(io_err("cannot sync", partial))?;
    let json = serde_json::to_vec(p).expect("serialisable");
    atomic_write(&part_file(partial, p.n), &json)?;
    Ok(())
}

fn sha256_file(path: &Path) -> Result<Digest> {
    let mut f = File::open(path).map_err(io_err("cannot open", path))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io_err("cannot read", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Digest::from_hex(&hex(&h.finalize()))?)
}

/// What one blob download shares between its workers.
struct Job<'a> {
    url: String,
    key: String,
    file: File,
    partial: &'a Path,
    done: AtomicU64,
    abort: AtomicBool,
}

impl Client {
    /// Pulls a model into the store and returns its manifest.
    pub fn pull(&self, name: &Name) -> Result<Manifest> {
        let base = self.base_url(name)?;
        self.progress.status("pulling manifest");
        let url = format!("{base}/v2/{}/manifests/{}", name.repository(), name.tag());
        let accept = format!("{MEDIA_DOCKER_MANIFEST}, {MEDIA_OCI_MANIFEST}");
        let bytes = self
            .http
            .retry(|_| {
                let r = self.http.send("GET", &url, &[("Accept", &accept)], None)?;
                let mut b = Vec::new();
                r.into_reader()
                    .take(MAX_MANIFEST)
                    .read_to_end(&mut b)
                    .map_err(|e| RegistryError::Network(format!("reading the manifest: {e}")))?;
                Ok(b)
            })
            .map_err(|e| match e {
                RegistryError::Status { code: 404, .. } => RegistryError::ManifestNotFound,
                e => e,
            })?;
        let manifest = Manifest::from_json(&bytes)
            .map_err(|r| RegistryError::Protocol(format!("invalid manifest from {url}: {r}")))?;

        let _guard = self.store.write_guard()?;
        let mut seen = HashSet::new();
        let mut fetched = Vec::new();
        for layer in manifest.blobs() {
            let d = layer.digest()?;
            if seen.insert(d.clone()) && self.download(&base, name, &d, layer.size)? {
                fetched.push(d);
            }
        }
        self.progress.status("verifying sha256 digest");
        // Check every blob (each bad one is deleted), then report the first failure.
        let mut first_err = None;
        for d in &fetched {
            if let Err(e) = self.verify_and_commit(d) {
                first_err.get_or_insert(e);
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        self.progress.status("writing manifest");
        self.store.write_manifest(name, &bytes)?;
        self.progress.status("success");
        Ok(manifest)
    }

    /// Downloads one blob into its partial file; false when it is already in the store.
    fn download(&self, base: &str, name: &Name, d: &Digest, size: u64) -> Result<bool> {
        let key = d.to_string();
        let label = format!("pulling {}", d.short());
        if self.store.has_blob(d) {
            self.progress.start(&key, &label, size, size);
            self.progress.finish(&key);
            return Ok(false);
        }
        let dir = self.store.blobs_dir();
        fs::create_dir_all(&dir).map_err(io_err("cannot create directory", &dir))?;
        let partial = dir.join(format!("{}-partial", d.file_name()));
        let res = self.download_into(base, name, d, size, &partial, &key, &label);
        if let Err(RegistryError::Store(StoreError::NoSpace(_))) = &res {
            remove_partial(&partial);
        }
        res.map(|()| true)
    }

    #[allow(clippy::too_many_arguments)]
    fn download_into(
        &self,
        base: &str,
        name: &Name,
        d: &Digest,
        size: u64,
        partial: &Path,
        key: &str,
        label: &str,
    ) -> Result<()> {
        let parts = match load_parts(partial, size) {
            Some(p) => p,
            None => {
                remove_partial(partial);
                let f = File::create(partial).map_err(io_err("cannot create", partial))?;
                f.set_len(size).map_err(io_err("cannot size", partial))?;
                let parts = plan_parts(size, self.opts.min_part_size, self.opts.max_part_size);
                for p in &parts {
                    save_part(&f, partial, p)?;
                }
                parts
            }
        };
        let file = File::options()
            .read(true)
            .write(true)
            .open(partial)
            .map_err(io_err("cannot open", partial))?;
        let done: u64 = parts.iter().map(|p| p.completed).sum();
        self.progress.start(key, label, size, done);
        let job = Job {
            url: format!("{base}/v2/{}/blobs/{d}", name.repository()),
            key: key.to_string(),
            file,
            partial,
            done: AtomicU64::new(done),
            abort: AtomicBool::new(false),
        };
        let queue: Mutex<Vec<PartState>> = Mutex::new(
            parts
                .into_iter()
                .rev()
                .filter(|p| p.completed < p.size)
                .collect(),
        );
        let first_err: Mutex<Option<RegistryError>> = Mutex::new(None);
        let workers = queue
            .lock()
            .unwrap()
            .len()
            .min(self.opts.max_parallel.max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let Some(mut p) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    if job.abort.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Err(e) = self.download_part(&job, &mut p) {
                        job.abort.store(true, Ordering::Relaxed);
                        first_err.lock().unwrap().get_or_insert(e);
                        break;
                    }
                });
            }
        });
        if let Some(e) = first_err.into_inner().unwrap() {
            return Err(e);
        }
        self.progress.finish(key);
        Ok(())
    }

    /// One part, retried with backoff; a try that made progress resets the count.
    fn download_part(&self, job: &Job, p: &mut PartState) -> Result<()> {
        let mut attempt = 0;
        loop {
            let before = p.completed;
            match self.fetch_range(job, p) {
                Ok(()) => return Ok(()),
                Err(_) if job.abort.load(Ordering::Relaxed) => return Ok(()),
                Err(e) if e.is_retryable() && attempt < self.http.retries() => {
                    if p.completed > before {
                        attempt = 0;
                    }
                    std::thread::sleep(self.http.delay(&e, attempt));
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One Range request for what is left of a part; progress is saved however it ends.
    fn fetch_range(&self, job: &Job, p: &mut PartState) -> Result<()> {
        let res = self.fetch_range_inner(job, p);
        let saved = save_part(&job.file, job.partial, p);
        res.and(saved)
    }

    fn fetch_range_inner(&self, job: &Job, p: &mut PartState) -> Result<()> {
        let start = p.offset + p.completed;
        let end = p.offset + p.size;
        if start >= end {
            return Ok(());
        }
        let range = format!("bytes={start}-{}", end - 1);
        let resp = self
            .http
            .send("GET", &job.url, &[("Range", &range)], None)?;
        let skip = match resp.status() {
            206 => 0,
            200 => start, // the server ignored Range: skip to our offset
            s => {
                return Err(RegistryError::Protocol(format!(
                    "unexpected status {s} for a blob range"
                )))
            }
        };
        let mut r = resp.into_reader();
        if skip > 0 {
            io::copy(&mut (&mut r).take(skip), &mut io::sink())
                .map_err(|e| RegistryError::Network(format!("part {}: {e}", p.n)))?;
        }
        let mut r = r.take(end - start);
        let mut buf = vec![0u8; 256 << 10];
        let mut unsaved = 0u64;
        let mut last_save = Instant::now();
        loop {
            if job.abort.load(Ordering::Relaxed) {
                return Err(RegistryError::Protocol("aborted".into()));
            }
            let n = match r.read(&mut buf) {
                Ok(0) if p.completed == p.size => return Ok(()),
                Ok(0) => {
                    return Err(RegistryError::Network(format!(
                        "part {}: connection closed after {} of {} bytes",
                        p.n, p.completed, p.size
                    )))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                    ) =>
                {
                    return Err(RegistryError::Network(format!(
                        "part {} stalled; retrying",
                        p.n
                    )))
                }
                Err(e) => return Err(RegistryError::Network(format!("part {}: {e}", p.n))),
            };
            let pos = p.offset + p.completed;
            job.file
                .write_all_at(&buf[..n], pos)
                .map_err(io_err("cannot write", job.partial))?;
            p.completed += n as u64;
            let total = job.done.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
            self.progress.update(&job.key, total);
            unsaved += n as u64;
            if unsaved >= SAVE_BYTES || last_save.elapsed() >= SAVE_EVERY {
                save_part(&job.file, job.partial, p)?;
                unsaved = 0;
                last_save = Instant::now();
            }
        }
    }

    /// Hashes a finished partial file; renames it into place only if the digest matches.
    fn verify_and_commit(&self, d: &Digest) -> Result<()> {
        let partial = self
            .store
            .blobs_dir()
            .join(format!("{}-partial", d.file_name()));
        let got = sha256_file(&partial)?;
        if &got != d {
            remove_partial(&partial);
            return Err(StoreError::DigestMismatch {
                want: d.to_string(),
                got: got.to_string(),
            }
            .into());
        }
        File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(io_err("cannot sync", &partial))?;
        self.store.commit_blob(&partial, d)?;
        remove_partial(&partial);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_blob() {
        let p = plan_parts(100, 30, 1000);
        assert_eq!(p.len(), 4);
        assert_eq!(p[3].offset + p[3].size, 100);
        assert!(plan_parts(0, 1, 10).is_empty());
    }
}
