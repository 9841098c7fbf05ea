//! `dataDir/version-2/currentEpoch` and `acceptedEpoch`: ASCII decimal, written atomically
//! (temp file, fsync, rename, fsync of the directory) so a crash leaves the old or the new value.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const CURRENT_EPOCH: &str = "currentEpoch";
pub const ACCEPTED_EPOCH: &str = "acceptedEpoch";

/// A problem with the epoch files.
#[derive(Debug)]
pub enum EpochError {
    Io {
        path: PathBuf,
        source: io::Error,
    },
    Invalid {
        path: PathBuf,
        text: String,
    },
    /// ZooKeeper's `QuorumPeer.loadDataBase` check.
    AcceptedBelowCurrent {
        dir: PathBuf,
        accepted: i64,
        current: i64,
    },
}

impl fmt::Display for EpochError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EpochError::Io { path, source } => write!(f, "cannot write {}: {source}", path.display()),
            EpochError::Invalid { path, text } => write!(f, "{}: '{text}' is not a valid epoch", path.display()),
            EpochError::AcceptedBelowCurrent { dir, accepted, current } => {
                write!(f, "{}: the accepted epoch, {accepted} is less than the current epoch, {current}", dir.display())
            }
        }
    }
}

impl std::error::Error for EpochError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EpochError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EpochFiles {
    dir: PathBuf,
}

impl EpochFiles {
    pub fn new(data_dir: &Path) -> EpochFiles {
        EpochFiles { dir: data_dir.join("version-2") }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads (currentEpoch, acceptedEpoch), creating missing files with 0 as ZooKeeper does for a
    /// fresh node, and refusing acceptedEpoch < currentEpoch.
    pub fn load(&self) -> Result<(i64, i64), EpochError> {
        let fresh = !self.dir.exists();
        fs::create_dir_all(&self.dir).map_err(|source| EpochError::Io { path: self.dir.clone(), source })?;
        if fresh {
            log::info!("New node: starting with currentEpoch and acceptedEpoch 0 in {}", self.dir.display());
        }
        let current = self.read_or_create(CURRENT_EPOCH, fresh)?;
        let accepted = self.read_or_create(ACCEPTED_EPOCH, fresh)?;
        if accepted < current {
            return Err(EpochError::AcceptedBelowCurrent { dir: self.dir.clone(), accepted, current });
        }
        Ok((current, accepted))
    }

    fn read_or_create(&self, name: &str, fresh: bool) -> Result<i64, EpochError> {
        let path = self.dir.join(name);
        match fs::read_to_string(&path) {
            Ok(text) => {
                let t = text.trim();
                t.parse::<i64>().ok().filter(|v| *v >= 0).ok_or(EpochError::Invalid { path, text: t.to_string() })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !fresh {
                    // ZooKeeper's line, for a data directory that has lost the file.
                    log::info!(
                        "{name} not found! Creating with a reasonable default of 0. This should only happen when you \
                         are upgrading your installation"
                    );
                }
                self.write(name, 0)?;
                Ok(0)
            }
            Err(source) => Err(EpochError::Io { path, source }),
        }
    }

    /// Writes one epoch file atomically.
    pub fn write(&self, name: &str, value: i64) -> Result<(), EpochError> {
        let path = self.dir.join(name);
        write_atomic(&path, value.to_string().as_bytes()).map_err(|source| EpochError::Io { path, source })
    }
}

/// Temp file, fsync, rename over the target, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir).and_then(|d| d.sync_all())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_load_and_check() {
        let d = std::env::temp_dir().join(format!("zkelect-epochs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        let e = EpochFiles::new(&d);
        assert_eq!(e.load().unwrap(), (0, 0));
        e.write(ACCEPTED_EPOCH, 3).unwrap();
        e.write(CURRENT_EPOCH, 2).unwrap();
        assert_eq!(e.load().unwrap(), (2, 3));
        assert_eq!(fs::read_to_string(d.join("version-2/currentEpoch")).unwrap(), "2");
        e.write(CURRENT_EPOCH, 4).unwrap();
        let err = e.load().unwrap_err().to_string();
        assert!(err.contains("the accepted epoch, 3 is less than the current epoch, 4"), "{err}");
        fs::write(d.join("version-2/acceptedEpoch"), "x").unwrap();
        assert!(matches!(e.load(), Err(EpochError::Invalid { text, .. }) if text == "x"));
        fs::remove_dir_all(&d).unwrap();
    }
}
