//! `dataDir/version-2/currentEpoch` and `acceptedEpoch`: ASCII decimal, written atomically
//! (temp file, fsync, rename, fsync of the directory) so a crash leaves the old or the new value.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const CURRENT_EPOCH: &str = "currentEpoch";
pub const ACCEPTED_EPOCH: &str = "acceptedEpoch";

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
    pub fn load(&self) -> Result<(i64, i64), String> {
        fs::create_dir_all(&self.dir).map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let current = self.read_or_create(CURRENT_EPOCH)?;
        let accepted = self.read_or_create(ACCEPTED_EPOCH)?;
        if accepted < current {
            return Err(format!(
                "{}: the accepted epoch, {accepted} is less than the current epoch, {current}",
                self.dir.display()
            ));
        }
        Ok((current, accepted))
    }

    fn read_or_create(&self, name: &str) -> Result<i64, String> {
        let path = self.dir.join(name);
        match fs::read_to_string(&path) {
            Ok(text) => {
                let t = text.trim();
                t.parse::<i64>()
                    .ok()
                    .filter(|v| *v >= 0)
                    .ok_or_else(|| format!("{}: '{t}' is not a valid epoch", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                log::info!(
                    "{name} not found! Creating with a reasonable default of 0. This should only happen when you are upgrading your installation"
                );
                self.write(name, 0)?;
                Ok(0)
            }
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Writes one epoch file atomically.
    pub fn write(&self, name: &str, value: i64) -> Result<(), String> {
        write_atomic(&self.dir.join(name), value.to_string().as_bytes())
    }
}

/// Temp file, fsync, rename over the target, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let ctx = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut f = File::create(&tmp).map_err(ctx)?;
    f.write_all(bytes).map_err(ctx)?;
    f.sync_all().map_err(ctx)?;
    drop(f);
    fs::rename(&tmp, path).map_err(ctx)?;
    if let Some(dir) = path.parent() {
        File::open(dir).and_then(|d| d.sync_all()).map_err(ctx)?;
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
        assert!(e.load().unwrap_err().contains("the accepted epoch, 3 is less than the current epoch, 4"));
        fs::write(d.join("version-2/acceptedEpoch"), "x").unwrap();
        assert!(e.load().unwrap_err().contains("'x' is not a valid epoch"));
        fs::remove_dir_all(&d).unwrap();
    }
}
