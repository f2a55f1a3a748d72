//! The model store, laid out exactly as Ollama's so either can read the other's:
//! `manifests/<host>/<namespace>/<model>/<tag>` holds a manifest's raw JSON bytes and
//! `blobs/sha256-<hex>` each blob. The root is [`crate::config::models_dir`].
//!
//! Concurrency between processes is **lock-free for writes**: every file is written to a
//! temporary file in its final directory, fsynced, renamed into place (atomic) and the
//! directory fsynced, so a reader sees either the old file or the whole new one. A blob
//! gets its final name only after its sha256 was checked, so any `sha256-<hex>` file is
//! trusted; a manifest is written only once all its blobs are in place. The one race
//! left, garbage collection deleting a blob that a concurrent pull has just committed
//! but not yet referenced, is closed by an advisory lock on `.gc.lock`: writers hold it
//! shared from their first blob to their manifest, and GC runs only if it can take it
//! exclusively at once (otherwise it is skipped and the next `remove` collects).

pub mod create;
pub mod info;
pub mod manifest;
pub mod name;

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use sha2::Digest as _;
use thiserror::Error;

pub use manifest::{Layer, Manifest};
pub use name::{Digest, Name, NameError};

/// What can go wrong in the store.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("model '{0}' not found")]
    NotFound(String),
    #[error("invalid manifest for '{name}': {reason}")]
    BadManifest { name: String, reason: String },
    #[error("blob {0} is missing from the store")]
    MissingBlob(String),
    #[error("model '{0}' has no model layer")]
    NoModelLayer(String),
    #[error("digest mismatch, file must be downloaded again: want {want}, got {got}")]
    DigestMismatch { want: String, got: String },
    #[error("no space left on device while writing {0}")]
    NoSpace(PathBuf),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Whether an I/O error means the disk is full.
pub fn is_no_space(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(28)
}

/// Wraps an I/O error with what was being done, mapping ENOSPC to [`StoreError::NoSpace`].
pub fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| {
        if is_no_space(&source) {
            StoreError::NoSpace(path.to_path_buf())
        } else {
            StoreError::Io {
                what,
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

/// One model in [`Store::list`].
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: Name,
    /// The first 12 hex digits of the manifest file's sha256.
    pub id: String,
    /// The manifest file's sha256.
    pub digest: Digest,
    pub manifest: Manifest,
    /// Layers plus config.
    pub size: u64,
    pub modified: SystemTime,
}

/// A model store on disk.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary file name in `dir` unique to this process and call.
fn temp_path(dir: &Path, stem: &str) -> PathBuf {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".tmp-{}-{n}-{stem}", std::process::id()))
}

/// Fsyncs a directory so a rename in it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("cannot sync directory", dir))
}

/// Writes `bytes` to `path` atomically: temp file in the same directory, fsync, rename,
/// fsync the directory. On failure the temp file is removed and `path` is untouched.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().expect("a file path");
    fs::create_dir_all(dir).map_err(io_err("cannot create directory", dir))?;
    let stem = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = temp_path(dir, &stem);
    let res = (|| {
        let mut f = File::create(&tmp).map_err(io_err("cannot create", &tmp))?;
        f.write_all(bytes).map_err(io_err("cannot write", &tmp))?;
        f.sync_all().map_err(io_err("cannot sync", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("cannot rename into", path))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res?;
    sync_dir(dir)
}

/// A shared hold on the GC lock; GC cannot run while it lives.
pub struct WriteGuard(#[allow(dead_code)] File);

impl Store {
    /// The store at [`crate::config::models_dir`].
    pub fn open() -> Store {
        Store::at(crate::config::models_dir())
    }

    /// The store at `root` (created lazily on the first write).
    pub fn at(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    /// The path of a blob (which may not exist).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.file_name())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// The manifest file of a name (which may not exist).
    pub fn manifest_path(&self, n: &Name) -> PathBuf {
        let mut p = self.root.join("manifests");
        for part in n.path_parts() {
            p.push(part);
        }
        p
    }

    /// Takes the GC lock shared: hold it from the first blob written to the manifest.
    pub fn write_guard(&self) -> Result<WriteGuard> {
        let dir = &self.root;
        fs::create_dir_all(dir).map_err(io_err("cannot create directory", dir))?;
        let p = dir.join(".gc.lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io_err("cannot open", &p))?;
        f.lock_shared().map_err(io_err("cannot lock", &p))?;
        Ok(WriteGuard(f))
    }

    /// The raw manifest bytes of a name.
    pub fn manifest_bytes(&self, n: &Name) -> Result<Vec<u8>> {
        let p = self.manifest_path(n);
        match fs::read(&p) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::NotFound(n.to_string()))
            }
            Err(e) => Err(io_err("cannot read", &p)(e)),
        }
    }

    /// The manifest of a name.
    pub fn resolve(&self, n: &Name) -> Result<Manifest> {
        let b = self.manifest_bytes(n)?;
        Manifest::from_json(&b).map_err(|reason| StoreError::BadManifest {
            name: n.to_string(),
            reason,
        })
    }

    /// The GGUF file of a model: the blob of its `application/vnd.ollama.image.model` layer.
    pub fn model_path(&self, n: &Name) -> Result<PathBuf> {
        let m = self.resolve(n)?;
        let l = m
            .layer(manifest::MEDIA_MODEL)
            .ok_or_else(|| StoreError::NoModelLayer(n.to_string()))?;
        let p = self.blob_path(&l.digest()?);
        if !p.is_file() {
            return Err(StoreError::MissingBlob(l.digest.clone()));
        }
        Ok(p)
    }

    /// The text of a small layer (template, system, params…) if the model has one.
    pub fn layer_text(&self, m: &Manifest, media_type: &str) -> Result<Option<String>> {
        let Some(l) = m.layer(media_type) else {
            return Ok(None);
        };
        let p = self.blob_path(&l.digest()?);
        fs::read_to_string(&p)
            .map(Some)
            .map_err(io_err("cannot read", &p))
    }

    /// Every model in the store, most recently modified first.
    pub fn list(&self) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        let root = self.root.join("manifests");
        for (parts, path) in walk_manifests(&root)? {
            let Ok(name) = Name::parse(&format!(
                "{}/{}/{}:{}",
                parts[0], parts[1], parts[2], parts[3]
            )) else {
                continue;
            };
            let Ok(bytes) = fs::read(&path) else { continue };
            let Ok(m) = Manifest::from_json(&bytes) else {
                continue;
            };
            let modified = fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let digest = Digest::of_bytes(&bytes);
            out.push(Entry {
                name,
                id: digest.short().to_string(),
                digest,
                size: m.total_size(),
                manifest: m,
                modified,
            });
        }
        out.sort_by_key(|e| std::cmp::Reverse(e.modified));
        Ok(out)
    }

    /// Writes a blob from a reader, checking it against `want`; a blob already present
    /// is left alone (and the reader not read). Returns the blob's size.
    pub fn write_blob(&self, mut r: impl Read, want: &Digest) -> Result<u64> {
        let dst = self.blob_path(want);
        if dst.is_file() {
            return Ok(fs::metadata(&dst).map(|m| m.len()).unwrap_or(0));
        }
        let (tmp, got, size) = self.copy_to_temp(&mut r, &mut |_| {})?;
        if &got != want {
            let _ = fs::remove_file(&tmp);
            return Err(StoreError::DigestMismatch {
                want: want.to_string(),
                got: got.to_string(),
            });
        }
        self.commit_blob(&tmp, want)?;
        Ok(size)
    }

    /// Copies a file into the store as a blob and returns its digest and size.
    pub fn write_blob_from_file(&self, path: &Path) -> Result<(Digest, u64)> {
        self.import_file(path).map(|(d, s, _)| (d, s))
    }

    /// Copies a file into the store as a blob, hashing while copying; the third value says
    /// whether an identical blob was already there (the copy is then dropped).
    pub fn import_file(&self, path: &Path) -> Result<(Digest, u64, bool)> {
        self.import_file_reporting(path, &mut |_| {})
    }

    /// [`Store::import_file`], calling `copied` with the bytes copied so far after each
    /// chunk of 1 MiB.
    pub fn import_file_reporting(
        &self,
        path: &Path,
        copied: &mut dyn FnMut(u64),
    ) -> Result<(Digest, u64, bool)> {
        let mut f = File::open(path).map_err(io_err("cannot open", path))?;
        let (tmp, got, size) = self.copy_to_temp(&mut f, copied)?;
        let existed = self.has_blob(&got);
        if existed {
            let _ = fs::remove_file(&tmp);
        } else {
            self.commit_blob(&tmp, &got)?;
        }
        Ok((got, size, existed))
    }

    /// Stores bytes as a blob and returns its digest and size.
    pub fn write_blob_bytes(&self, bytes: &[u8]) -> Result<(Digest, u64)> {
        let d = Digest::of_bytes(bytes);
        self.write_blob(bytes, &d)?;
        Ok((d, bytes.len() as u64))
    }

    fn copy_to_temp(
        &self,
        r: &mut dyn Read,
        copied: &mut dyn FnMut(u64),
    ) -> Result<(PathBuf, Digest, u64)> {
        let dir = self.blobs_dir();
        fs::create_dir_all(&dir).map_err(io_err("cannot create directory", &dir))?;
        let tmp = temp_path(&dir, "blob");
        let res = (|| {
            let mut f = File::create(&tmp).map_err(io_err("cannot create", &tmp))?;
            let mut h = sha2::Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut size = 0u64;
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io_err("cannot read blob data for", &tmp)(e)),
                };
                h.update(&buf[..n]);
                f.write_all(&buf[..n])
                    .map_err(io_err("cannot write", &tmp))?;
                size += n as u64;
                copied(size);
            }
            f.sync_all().map_err(io_err("cannot sync", &tmp))?;
            Ok((Digest::from_hex(&name::hex(&h.finalize()))?, size))
        })();
        match res {
            Ok((d, s)) => Ok((tmp, d, s)),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Renames a verified temporary file in `blobs/` to its final name.
    pub fn commit_blob(&self, tmp: &Path, d: &Digest) -> Result<()> {
        let dst = self.blob_path(d);
        fs::rename(tmp, &dst).map_err(io_err("cannot rename into", &dst))?;
        sync_dir(&self.blobs_dir())
    }

    /// Writes a manifest for a name after checking that it parses and that every blob it
    /// names is in the store.
    pub fn write_manifest(&self, n: &Name, bytes: &[u8]) -> Result<()> {
        let m = Manifest::from_json(bytes).map_err(|reason| StoreError::BadManifest {
            name: n.to_string(),
            reason,
        })?;
        for l in m.blobs() {
            if !self.has_blob(&l.digest()?) {
                return Err(StoreError::MissingBlob(l.digest.clone()));
            }
        }
        atomic_write(&self.manifest_path(n), bytes)
    }

    /// Copies a model under a new name (the manifest only; blobs are shared).
    pub fn copy(&self, src: &Name, dst: &Name) -> Result<()> {
        let b = self.manifest_bytes(src)?;
        self.write_manifest(dst, &b)
    }

    /// Removes a model's manifest, then the blobs no manifest refers to any more.
    pub fn remove(&self, n: &Name) -> Result<()> {
        let p = self.manifest_path(n);
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(n.to_string()))
            }
            Err(e) => return Err(io_err("cannot remove", &p)(e)),
        }
        // Drop the now empty tag/model/namespace/host directories.
        let top = self.root.join("manifests");
        let mut dir = p.parent();
        while let Some(d) = dir {
            if d == top || fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
        self.gc()?;
        Ok(())
    }

    /// Deletes the blobs no manifest refers to. Skipped (returns false) when another
    /// process is writing to the store.
    pub fn gc(&self) -> Result<bool> {
        let lp = self.root.join(".gc.lock");
        let Ok(lock) = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lp)
        else {
            return Ok(false);
        };
        if lock.try_lock().is_err() {
            return Ok(false);
        }
        let mut used = HashSet::new();
        for (_, path) in walk_manifests(&self.root.join("manifests"))? {
            let Ok(bytes) = fs::read(&path) else {
                return Ok(false); // be safe: never delete on a partial view
            };
            let Ok(m) = Manifest::from_json(&bytes) else {
                continue;
            };
            for l in m.blobs() {
                used.insert(l.digest.clone());
            }
        }
        let dir = self.blobs_dir();
        let Ok(rd) = fs::read_dir(&dir) else {
            return Ok(true);
        };
        for e in rd.flatten() {
            let fname = e.file_name();
            let Some(d) = fname.to_str().and_then(Digest::from_file_name) else {
                continue; // partial downloads, temp files, foreign files
            };
            if !used.contains(&d.to_string()) {
                let _ = fs::remove_file(e.path());
            }
        }
        let _ = sync_dir(&dir);
        Ok(true)
    }
}

/// All `manifests/<host>/<ns>/<model>/<tag>` files under `root`, with their four parts.
fn walk_manifests(root: &Path) -> Result<Vec<([String; 4], PathBuf)>> {
    fn children(p: &Path) -> Vec<(String, PathBuf)> {
        let Ok(rd) = fs::read_dir(p) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| {
                let n = e.file_name().into_string().ok()?;
                (!n.starts_with('.')).then(|| (n, e.path()))
            })
            .collect()
    }
    let mut out = Vec::new();
    for (h, hp) in children(root) {
        for (n, np) in children(&hp) {
            for (m, mp) in children(&np) {
                for (t, tp) in children(&mp) {
                    if tp.is_file() {
                        out.push(([h.clone(), n.clone(), m.clone(), t], tp));
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "hearth-store-unit-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn write_resolve_list_copy_remove() {
        let root = tmp();
        let s = Store::at(&root);
        let (md, ms) = s.write_blob_bytes(b"GGUF fake").unwrap();
        let (cd, cs) = s.write_blob_bytes(b"{}").unwrap();
        let m = Manifest::new(
            Layer {
                media_type: manifest::MEDIA_CONFIG.into(),
                digest: cd.to_string(),
                size: cs,
                from: None,
            },
            vec![Layer {
                media_type: manifest::MEDIA_MODEL.into(),
                digest: md.to_string(),
                size: ms,
                from: None,
            }],
        );
        let n = Name::parse("a/b:c").unwrap();
        s.write_manifest(&n, &serde_json::to_vec(&m).unwrap())
            .unwrap();
        assert_eq!(s.resolve(&n).unwrap(), m);
        assert_eq!(s.model_path(&n).unwrap(), s.blob_path(&md));
        let n2 = Name::parse("x:y").unwrap();
        s.copy(&n, &n2).unwrap();
        let l = s.list().unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].size, ms + cs);
        s.remove(&n).unwrap();
        assert!(s.has_blob(&md));
        s.remove(&n2).unwrap();
        assert!(!s.has_blob(&md) && !s.has_blob(&cd));
        assert!(matches!(s.remove(&n2), Err(StoreError::NotFound(_))));
        let bad = Digest::of_bytes(b"other");
        assert!(matches!(
            s.write_blob(&b"data"[..], &bad),
            Err(StoreError::DigestMismatch { .. })
        ));
        assert!(!s.has_blob(&bad));
        let _ = fs::remove_dir_all(&root);
    }
}
