//! The embedded default object store: a folder on the local disk, one file
//! per object, written atomically (temporary file in the same folder, then
//! rename).

use super::key::{check_key, check_prefix};
use super::{ObjectMeta, ObjectStore, StoreError, StoreErrorKind, ends_before, range_end};
use async_trait::async_trait;
use bytes::Bytes;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Names of files being written start with this; they are never listed, and
/// keys whose file name would start with it are refused.
const TEMP_MARK: &str = ".nodal-tmp-";

/// An [`ObjectStore`] over a local folder: key `a/b/c` is the file
/// `<root>/a/b/c`.
///
/// Unlike S3, a folder cannot hold both an object `a` and an object `a/b`;
/// writing the second fails with a permanent error.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    name: String,
}

impl LocalStore {
    /// Open the folder `root`, creating it when it does not exist.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root: PathBuf = root.into();
        let name = format!("file://{}", root.display());
        tokio::fs::create_dir_all(&root).await.map_err(|e| {
            StoreError::new(
                StoreErrorKind::Permanent,
                "open",
                "",
                &name,
                format!("cannot create the store folder: {e}"),
            )
        })?;
        Ok(Self { root, name })
    }

    /// The folder holding the objects.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, op: &'static str, key: &str) -> Result<PathBuf, StoreError> {
        check_key(op, key, &self.name)?;
        if key.split('/').any(|segment| segment.starts_with(TEMP_MARK)) {
            return Err(self.error(
                StoreErrorKind::Permanent,
                op,
                key,
                format!("invalid key: names starting with {TEMP_MARK:?} are reserved"),
            ));
        }
        Ok(self.root.join(key))
    }

    fn error(
        &self,
        kind: StoreErrorKind,
        op: &'static str,
        key: &str,
        message: impl Into<String>,
    ) -> StoreError {
        StoreError::new(kind, op, key, &self.name, message)
    }

    fn io_error(&self, op: &'static str, key: &str, err: io::Error) -> StoreError {
        let kind = match err.kind() {
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                StoreErrorKind::Denied
            }
            io::ErrorKind::Interrupted | io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                StoreErrorKind::Transient
            }
            _ => StoreErrorKind::Permanent,
        };
        self.error(kind, op, key, err.to_string())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        op: &'static str,
        key: &str,
        work: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        match tokio::task::spawn_blocking(work).await {
            Ok(result) => result.map_err(|e| self.io_error(op, key, e)),
            Err(e) => Err(self.error(
                StoreErrorKind::Permanent,
                op,
                key,
                format!("file task failed: {e}"),
            )),
        }
    }
}

/// True for the errors a path with a missing (or non-folder) part gives.
fn is_absent(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory
    )
}

/// Write `body` to `path` so that readers see the old file or the new one,
/// never a part: a synced temporary file in the same folder, then a rename.
fn write_atomic(path: &Path, body: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("the key has no parent folder"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{TEMP_MARK}{}", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(body)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// What reading a byte range of a file found.
enum RangeRead {
    /// No such file (or not a file).
    Absent,
    /// The file has only this many bytes.
    Short(u64),
    /// The bytes asked for.
    Bytes(Vec<u8>),
}

/// Bytes `offset..end` of the file at `path`, the file's size checked
/// first; the open file is read, so a concurrent replacement (a rename)
/// cannot mix two versions.
fn read_range(path: &Path, offset: u64, end: u64) -> io::Result<RangeRead> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if is_absent(&e) => return Ok(RangeRead::Absent),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(RangeRead::Absent);
    }
    if meta.len() < end {
        return Ok(RangeRead::Short(meta.len()));
    }
    let len = usize::try_from(end - offset)
        .map_err(|_| io::Error::other("the range does not fit in memory"))?;
    let mut buf = vec![0; len];
    if len > 0 {
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(&mut buf)?;
    }
    Ok(RangeRead::Bytes(buf))
}

/// Every file under `root` whose key starts with `prefix`, unsorted.
fn list_files(root: &Path, prefix: &str) -> io::Result<Vec<ObjectMeta>> {
    // Start in the deepest folder the prefix names, and only descend into
    // folders that can hold matching keys.
    let start = prefix.rfind('/').map_or("", |i| &prefix[..i]);
    let mut out = Vec::new();
    let mut stack = vec![start.to_owned()];
    while let Some(dir_key) = stack.pop() {
        let entries = match std::fs::read_dir(root.join(&dir_key)) {
            Ok(entries) => entries,
            Err(e) if is_absent(&e) => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not UTF-8: cannot be a key
            };
            if name.starts_with(TEMP_MARK) {
                continue;
            }
            let key = if dir_key.is_empty() {
                name
            } else {
                format!("{dir_key}/{name}")
            };
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                let as_folder = format!("{key}/");
                if as_folder.starts_with(prefix) || prefix.starts_with(&as_folder) {
                    stack.push(key);
                }
            } else if file_type.is_file() && key.starts_with(prefix) {
                let size = match entry.metadata() {
                    Ok(meta) => meta.len(),
                    Err(e) if is_absent(&e) => continue, // deleted meanwhile
                    Err(e) => return Err(e),
                };
                out.push(ObjectMeta { key, size });
            }
        }
    }
    Ok(out)
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        let path = self.path("put", key)?;
        self.blocking("put", key, move || write_atomic(&path, &body))
            .await
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let path = self.path("get", key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Bytes::from(bytes)),
            Err(e) if is_absent(&e) => {
                Err(self.error(StoreErrorKind::NotFound, "get", key, "no such object"))
            }
            Err(e) => Err(self.io_error("get", key, e)),
        }
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        let path = self.path("get_range", key)?;
        let end = range_end(key, &self.name, offset, len)?;
        let read = self
            .blocking("get_range", key, move || read_range(&path, offset, end))
            .await?;
        match read {
            RangeRead::Bytes(bytes) => Ok(Bytes::from(bytes)),
            RangeRead::Short(size) => Err(ends_before(key, &self.name, offset, end, size)),
            RangeRead::Absent => {
                Err(self.error(StoreErrorKind::NotFound, "get_range", key, "no such object"))
            }
        }
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        let path = self.path("head", key)?;
        match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_file() => Ok(Some(ObjectMeta {
                key: key.to_owned(),
                size: meta.len(),
            })),
            Ok(_) => Ok(None),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(self.io_error("head", key, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        check_prefix(prefix, &self.name)?;
        let root = self.root.clone();
        let owned = prefix.to_owned();
        let mut found = self
            .blocking("list", prefix, move || list_files(&root, &owned))
            .await?;
        found.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path("delete", key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if is_absent(&e) => Ok(()),
            Err(e) => Err(self.io_error("delete", key, e)),
        }
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}
