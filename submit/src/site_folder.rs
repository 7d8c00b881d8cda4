//! The one way `nodal submit` reads a site folder (`docs/submission.md`,
//! "Which files are read").
//!
//! Every path is resolved inside the folder by `cap-std`, which walks it
//! component by component (`openat2` with `RESOLVE_BENEATH` where the kernel
//! has it): a symbolic link that stays inside the folder is followed, one
//! that leads out of it — to a file or through a linked folder — is refused,
//! as are absolute links. Only regular files are read: a FIFO, socket or
//! device is opened without blocking, seen for what it is and refused
//! without a byte read. Size limits count the bytes actually read, and an
//! error never quotes what a refused file holds.

use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use std::io::{self, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// Why a file of the site folder was not read. Displayed after the path:
/// `images/a.jpg is a FIFO, not a regular file`.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Nothing at that path.
    #[error("does not exist")]
    NotFound,
    /// The path goes through a symbolic link out of the folder.
    #[error(
        "leads outside the site folder through the symbolic link {link}; nodal submit reads only files inside the folder"
    )]
    Outside {
        /// The linked component, relative to the folder.
        link: String,
    },
    /// A folder, FIFO, socket or device.
    #[error("is a {kind}, not a regular file")]
    NotRegular {
        /// What it is.
        kind: &'static str,
    },
    /// More bytes than the limit (counted while reading).
    #[error("is larger than the {limit}-byte limit")]
    TooLarge {
        /// The limit, bytes.
        limit: u64,
    },
    /// Any other failure of the file system.
    #[error("cannot be read: {0}")]
    Io(io::Error),
}

impl AccessError {
    /// True when nothing is at the path.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound)
    }
}

/// An opened site folder; every read goes through it.
#[derive(Debug)]
pub struct SiteFolder {
    dir: Dir,
}

impl SiteFolder {
    /// Open the folder at `path` (the folder itself may be reached through
    /// a link: it is what the user named).
    pub fn open(path: &Path) -> io::Result<Self> {
        let dir = Dir::open_ambient_dir(path, cap_std::ambient_authority())?;
        Ok(Self { dir })
    }

    /// Read the whole regular file at `rel` (forward slashes, relative to
    /// the folder), refusing it past `limit` bytes.
    pub fn read(&self, rel: &str, limit: u64) -> Result<Vec<u8>, AccessError> {
        let mut options = OpenOptions::new();
        // Opening a FIFO for reading blocks until a writer comes, unless
        // non-blocking; on a regular file the flag changes nothing.
        options.read(true).custom_flags(libc::O_NONBLOCK);
        let file = self
            .dir
            .open_with(rel, &options)
            .map_err(|e| self.open_error(rel, e))?;
        let file = file.into_std();
        let kind = file.metadata().map_err(AccessError::Io)?.file_type();
        if !kind.is_file() {
            return Err(AccessError::NotRegular {
                kind: describe(&kind),
            });
        }
        let mut bytes = Vec::new();
        file.take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(AccessError::Io)?;
        if bytes.len() as u64 > limit {
            return Err(AccessError::TooLarge { limit });
        }
        Ok(bytes)
    }

    /// Every regular file or link under the folder, relative paths with
    /// forward slashes, sorted. Linked folders are not entered. Folders that
    /// cannot be listed are returned as `(path, error)`.
    pub fn list(&self) -> (Vec<String>, Vec<(String, io::Error)>) {
        let mut files = Vec::new();
        let mut failed = Vec::new();
        let mut stack = vec![String::new()];
        while let Some(rel) = stack.pop() {
            let entries = if rel.is_empty() {
                self.dir.entries()
            } else {
                self.dir.read_dir(&rel)
            };
            let entries = match entries {
                Ok(entries) => entries,
                Err(e) => {
                    failed.push((if rel.is_empty() { ".".into() } else { rel }, e));
                    continue;
                }
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let child = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(child);
                } else {
                    files.push(child);
                }
            }
        }
        files.sort();
        (files, failed)
    }

    /// Name the reason an open failed: a link out of the folder is told
    /// apart from other errors by walking the path's prefixes.
    fn open_error(&self, rel: &str, e: io::Error) -> AccessError {
        if e.kind() == io::ErrorKind::NotFound {
            return AccessError::NotFound;
        }
        let mut prefix = String::new();
        for part in rel.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            let is_link = self
                .dir
                .symlink_metadata(&prefix)
                .is_ok_and(|m| m.file_type().is_symlink());
            if is_link && self.dir.metadata(&prefix).is_err() {
                return AccessError::Outside { link: prefix };
            }
        }
        AccessError::Io(e)
    }
}

fn describe(kind: &std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "folder"
    } else if kind.is_fifo() {
        "FIFO (named pipe)"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "device"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn folder() -> (tempfile::TempDir, SiteFolder) {
        let tmp = tempfile::tempdir().unwrap();
        let site = tmp.path().join("site");
        std::fs::create_dir_all(site.join("images/inner")).unwrap();
        std::fs::write(site.join("images/a.jpg"), b"inside").unwrap();
        std::fs::write(tmp.path().join("secret"), b"root:x:0:0").unwrap();
        std::fs::create_dir_all(tmp.path().join("elsewhere")).unwrap();
        std::fs::write(tmp.path().join("elsewhere/b.jpg"), b"outside").unwrap();
        let folder = SiteFolder::open(&site).unwrap();
        (tmp, folder)
    }

    #[test]
    fn reads_files_and_links_that_stay_inside() {
        let (tmp, folder) = folder();
        let site = tmp.path().join("site");
        symlink("a.jpg", site.join("images/same.jpg")).unwrap();
        symlink("../../images", site.join("images/inner/up")).unwrap();
        assert_eq!(folder.read("images/a.jpg", 100).unwrap(), b"inside");
        assert_eq!(folder.read("images/same.jpg", 100).unwrap(), b"inside");
        assert_eq!(
            folder.read("images/inner/up/a.jpg", 100).unwrap(),
            b"inside"
        );
        assert!(
            folder
                .read("images/none.jpg", 100)
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn links_out_of_the_folder_are_refused_naming_the_link() {
        let (tmp, folder) = folder();
        let site = tmp.path().join("site");
        symlink(tmp.path().join("secret"), site.join("images/abs.jpg")).unwrap();
        symlink("../../secret", site.join("images/rel.jpg")).unwrap();
        symlink(tmp.path().join("elsewhere"), site.join("linked")).unwrap();
        for (rel, link) in [
            ("images/abs.jpg", "images/abs.jpg"),
            ("images/rel.jpg", "images/rel.jpg"),
            ("linked/b.jpg", "linked"),
        ] {
            let err = folder.read(rel, 100).unwrap_err();
            assert!(
                matches!(&err, AccessError::Outside { link: l } if l == link),
                "{rel}: {err}"
            );
            assert!(!err.to_string().contains("root"), "{err}");
        }
    }

    #[test]
    fn fifos_devices_and_folders_are_refused_without_reading() {
        let (tmp, folder) = folder();
        let site = tmp.path().join("site");
        let fifo = site.join("images/pipe.jpg");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // /dev/zero is outside; a device inside the folder is reached by a
        // link to /dev/zero only if links out were allowed, so test both.
        symlink("/dev/zero", site.join("images/zero.jpg")).unwrap();
        let err = folder.read("images/pipe.jpg", 100).unwrap_err();
        assert!(
            matches!(err, AccessError::NotRegular { kind } if kind.starts_with("FIFO")),
            "{err}"
        );
        assert!(matches!(
            folder.read("images/zero.jpg", 100).unwrap_err(),
            AccessError::Outside { .. }
        ));
        assert!(matches!(
            folder.read("images", 100).unwrap_err(),
            AccessError::NotRegular { kind: "folder" }
        ));
    }

    #[test]
    fn the_limit_counts_bytes_read() {
        let (_tmp, folder) = folder();
        assert!(matches!(
            folder.read("images/a.jpg", 5).unwrap_err(),
            AccessError::TooLarge { limit: 5 }
        ));
        assert_eq!(folder.read("images/a.jpg", 6).unwrap(), b"inside");
    }

    #[test]
    fn lists_files_without_entering_linked_folders() {
        let (tmp, folder) = folder();
        symlink(tmp.path().join("elsewhere"), tmp.path().join("site/linked")).unwrap();
        let (files, failed) = folder.list();
        assert!(failed.is_empty());
        assert_eq!(files, ["images/a.jpg", "linked"]);
    }
}
