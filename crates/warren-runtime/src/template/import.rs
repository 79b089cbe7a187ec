//! `warren template import`: an OCI image layout or `docker save` tarball.
//!
//! The tarball is indexed once (entry name to offset and size) and blobs are
//! then read in place, so nothing is unpacked twice. With a `manifest.json`
//! (`docker save`, both the legacy layout and Docker 25+'s OCI one) its first
//! image is imported; otherwise `index.json` is followed (through nested
//! indexes, choosing `linux` and this machine's architecture) to a manifest.
//! Blobs named by digest are verified. Layers may be plain or gzip tars.
//! The image config's `Env` and `WorkingDir` become the template's.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::base::finish_rootfs;
use super::inroot::InRoot;
use super::layer::apply_layer;
use super::{
    default_env, hash_parts, name_lock, now_secs, publish_template, TemplateError, TemplateMeta,
    TemplateSource, TmpVolume,
};
use crate::storage::Pool;
use crate::SANDBOX_ID_BASE;

/// Largest JSON document (index, manifest, config) read into memory.
const MAX_JSON: u64 = 16 << 20;

/// Imports the image in `tar_path` as template `name` (replacing an
/// existing one).
pub fn import(pool: &Pool, name: &str, tar_path: &Path) -> Result<TemplateMeta, TemplateError> {
    pool.template_path(name)?;
    let image = tar_path.display().to_string();
    let archive = Archive::open(pool, tar_path)?;
    let (config, layers) = archive.resolve_image()?;
    let config_bytes = archive.read_blob(&config, MAX_JSON)?;
    let config_doc: ImageConfig = serde_json::from_slice(&config_bytes)
        .map_err(|e| archive.invalid(format!("config: {e}")))?;

    let _lock = name_lock(pool, name)?;
    let tmp = TmpVolume::create(pool, name)?;
    std::os::unix::fs::lchown(tmp.path(), Some(SANDBOX_ID_BASE), Some(SANDBOX_ID_BASE))
        .map_err(|e| TemplateError::io("chown", tmp.path(), e))?;
    let root =
        InRoot::open(tmp.path()).map_err(|e| TemplateError::io("open rootfs", tmp.path(), e))?;
    for layer in &layers {
        archive.apply(layer, &root)?;
    }
    finish_rootfs(tmp.path())?;

    let mut env = BTreeMap::new();
    for kv in config_doc.config.env.unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            env.insert(k.to_string(), v.to_string());
        }
    }
    for (k, v) in default_env() {
        env.entry(k).or_insert(v);
    }
    let workdir = config_doc
        .config
        .working_dir
        .filter(|w| w.starts_with('/'))
        .unwrap_or_else(|| "/".to_string());
    let meta = TemplateMeta {
        name: name.to_string(),
        source: TemplateSource::Import {
            image: tar_path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or(image),
        },
        build_id: hash_parts(&[b"import", &config_bytes]),
        layers: Vec::new(),
        env,
        workdir,
        start: None,
        ready_port: None,
        user: None,
        created_at: now_secs(),
    };
    publish_template(pool, tmp, &meta)?;
    Ok(meta)
}

#[derive(Deserialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

/// An image index or a manifest: the fields of both.
#[derive(Deserialize)]
struct OciDocument {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    #[serde(default)]
    manifests: Vec<Descriptor>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Deserialize, Default)]
struct ImageConfig {
    #[serde(default)]
    config: RunConfig,
}

#[derive(Deserialize, Default)]
struct RunConfig {
    #[serde(rename = "Env")]
    env: Option<Vec<String>>,
    #[serde(rename = "WorkingDir")]
    working_dir: Option<String>,
}

/// A blob to read: its name in the tarball and, when known, its digest.
struct Blob {
    name: String,
    digest: Option<String>,
}

/// The outer tarball, indexed.
struct Archive {
    path: PathBuf,
    /// Kept for the archive's lifetime when the tarball was gzip-compressed.
    _decompressed: Option<TempFile>,
    file: File,
    entries: HashMap<String, (u64, u64)>,
    links: HashMap<String, String>,
}

/// A file removed on drop.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn normalize(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

impl Archive {
    fn open(pool: &Pool, path: &Path) -> Result<Archive, TemplateError> {
        let io_err = |e| TemplateError::io("read image", path, e);
        // What the tar and gzip readers reject is the image's fault, not ours.
        let bad = |e: io::Error| TemplateError::InvalidImage {
            image: path.display().to_string(),
            reason: e.to_string(),
        };
        let mut file = File::open(path).map_err(io_err)?;
        let mut magic = [0u8; 2];
        let n = file.read(&mut magic).map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        let mut decompressed = None;
        if n == 2 && magic == [0x1f, 0x8b] {
            // The index needs seeks: decompress once, next to the pool.
            let tmp = TempFile(
                pool.tmp_dir()
                    .join(format!("import.{}.tar", std::process::id())),
            );
            let mut out =
                File::create(&tmp.0).map_err(|e| TemplateError::io("create", &tmp.0, e))?;
            io::copy(
                &mut flate2::read::GzDecoder::new(BufReader::new(file)),
                &mut out,
            )
            .map_err(bad)?;
            file = File::open(&tmp.0).map_err(|e| TemplateError::io("open", &tmp.0, e))?;
            decompressed = Some(tmp);
        }
        let mut entries = HashMap::new();
        let mut links = HashMap::new();
        {
            let mut tar = tar::Archive::new(&file);
            for entry in tar.entries_with_seek().map_err(bad)? {
                let entry = entry.map_err(bad)?;
                let name = normalize(&entry.path().map_err(bad)?.to_string_lossy());
                match entry.header().entry_type() {
                    tar::EntryType::Regular | tar::EntryType::Continuous => {
                        entries.insert(name, (entry.raw_file_position(), entry.size()));
                    }
                    // Legacy `docker save` links duplicate layers.
                    tar::EntryType::Symlink | tar::EntryType::Link => {
                        if let Some(target) = entry.link_name().map_err(io_err)? {
                            let target = target.to_string_lossy().into_owned();
                            let base = match entry.header().entry_type() {
                                tar::EntryType::Symlink => Path::new(&name)
                                    .parent()
                                    .map(|p| p.to_string_lossy().into_owned()),
                                _ => None,
                            };
                            let full = match base {
                                Some(dir) if !target.starts_with('/') => format!("{dir}/{target}"),
                                _ => target,
                            };
                            links.insert(name, normalize(&full));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(Archive {
            path: path.to_path_buf(),
            _decompressed: decompressed,
            file,
            entries,
            links,
        })
    }

    fn invalid(&self, reason: String) -> TemplateError {
        TemplateError::InvalidImage {
            image: self.path.display().to_string(),
            reason,
        }
    }

    fn locate(&self, name: &str) -> Result<(u64, u64), TemplateError> {
        let mut name = normalize(name);
        for _ in 0..8 {
            if let Some(found) = self.entries.get(&name) {
                return Ok(*found);
            }
            match self.links.get(&name) {
                Some(target) => name = target.clone(),
                None => break,
            }
        }
        Err(self.invalid(format!("no {name} in the tarball")))
    }

    fn open_entry(&self, name: &str) -> Result<io::Take<File>, TemplateError> {
        let (offset, size) = self.locate(name)?;
        let mut file = self
            .file
            .try_clone()
            .map_err(|e| TemplateError::io("read image", &self.path, e))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| TemplateError::io("read image", &self.path, e))?;
        Ok(file.take(size))
    }

    fn has(&self, name: &str) -> bool {
        self.locate(name).is_ok()
    }

    /// Reads a whole (small) blob, verifying its digest.
    fn read_blob(&self, blob: &Blob, limit: u64) -> Result<Vec<u8>, TemplateError> {
        let mut data = Vec::new();
        self.open_entry(&blob.name)?
            .take(limit)
            .read_to_end(&mut data)
            .map_err(|e| TemplateError::io("read image", &self.path, e))?;
        if let Some(digest) = &blob.digest {
            let actual = format!("sha256:{}", super::hex(&Sha256::digest(&data)));
            if &actual != digest {
                return Err(
                    self.invalid(format!("{} has digest {actual}, not {digest}", blob.name))
                );
            }
        }
        Ok(data)
    }

    fn read_json<T: for<'de> Deserialize<'de>>(&self, blob: &Blob) -> Result<T, TemplateError> {
        let data = self.read_blob(blob, MAX_JSON)?;
        serde_json::from_slice(&data).map_err(|e| self.invalid(format!("{}: {e}", blob.name)))
    }

    fn blob(&self, digest: &str) -> Result<Blob, TemplateError> {
        let Some((algorithm, hex)) = digest.split_once(':') else {
            return Err(self.invalid(format!("bad digest {digest:?}")));
        };
        if algorithm != "sha256" || hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.invalid(format!("unsupported digest {digest:?}")));
        }
        Ok(Blob {
            name: format!("blobs/sha256/{hex}"),
            digest: Some(digest.to_string()),
        })
    }

    /// The image's config blob and its layers, bottom first.
    fn resolve_image(&self) -> Result<(Blob, Vec<Blob>), TemplateError> {
        if self.has("manifest.json") {
            let entries: Vec<DockerManifestEntry> = self.read_json(&Blob {
                name: "manifest.json".to_string(),
                digest: None,
            })?;
            let first = entries
                .into_iter()
                .next()
                .ok_or_else(|| self.invalid("manifest.json lists no image".to_string()))?;
            let plain = |name: String| Blob { name, digest: None };
            return Ok((
                plain(first.config),
                first.layers.into_iter().map(plain).collect(),
            ));
        }
        if !self.has("index.json") {
            return Err(self.invalid(
                "neither manifest.json (docker save) nor index.json (OCI layout)".to_string(),
            ));
        }
        let mut doc: OciDocument = self.read_json(&Blob {
            name: "index.json".to_string(),
            digest: None,
        })?;
        for _ in 0..4 {
            if let Some(config) = doc.config {
                let config = self.blob(&config.digest)?;
                let layers = doc
                    .layers
                    .iter()
                    .map(|l| self.blob(&l.digest))
                    .collect::<Result<_, _>>()?;
                return Ok((config, layers));
            }
            let chosen = doc
                .manifests
                .iter()
                .find(|m| {
                    m.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == arch())
                })
                .or_else(|| doc.manifests.first())
                .ok_or_else(|| self.invalid(format!("{} lists no manifest", doc.media_type)))?;
            tracing::debug!(media_type = %chosen.media_type, digest = %chosen.digest, "following");
            doc = self.read_json(&self.blob(&chosen.digest)?)?;
        }
        Err(self.invalid("image indexes nested too deeply".to_string()))
    }

    /// Applies one layer blob, verifying its digest when it has one.
    fn apply(&self, layer: &Blob, root: &InRoot) -> Result<(), TemplateError> {
        let mut hashing = HashingReader {
            inner: self.open_entry(&layer.name)?,
            hasher: Sha256::new(),
        };
        {
            let mut buffered = BufReader::new(&mut hashing);
            let head = buffered
                .fill_buf()
                .map_err(|e| TemplateError::io("read image", &self.path, e))?;
            if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                return Err(self.invalid(format!("{}: zstd layers are not supported", layer.name)));
            }
            if head.starts_with(&[0x1f, 0x8b]) {
                let mut gz = flate2::bufread::GzDecoder::new(buffered);
                apply_layer(root, &mut gz)?;
                drain(&mut gz, &self.path)?;
                drain(&mut gz.into_inner(), &self.path)?;
            } else {
                apply_layer(root, &mut buffered)?;
                drain(&mut buffered, &self.path)?;
            }
        }
        if let Some(digest) = &layer.digest {
            let actual = format!("sha256:{}", super::hex(&hashing.hasher.finalize()));
            if &actual != digest {
                return Err(
                    self.invalid(format!("{} has digest {actual}, not {digest}", layer.name))
                );
            }
        }
        Ok(())
    }
}

/// Reads to the end (so that the digest covers the whole blob).
fn drain(reader: &mut impl Read, path: &Path) -> Result<(), TemplateError> {
    io::copy(reader, &mut io::sink())
        .map(|_| ())
        .map_err(|e| TemplateError::io("read image", path, e))
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
