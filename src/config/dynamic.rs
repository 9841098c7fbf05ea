//! `dynamicConfigFile`: the membership of a ZooKeeper 3.5+ configuration kept in its own file
//! (`QuorumPeerConfig.parse` and `parseDynamicConfig`). Only the static reading is done here;
//! zkelect does not write the file or adopt newer configurations.

use super::members::{Members, Source};
use super::{ConfigError, properties};

/// `QuorumPeerConfig.getVersionFromFilename`: the hex number after the last `.` of the name as
/// written (`zoo.cfg.dynamic.100000000` gives 0x100000000). `None` when it is not one; ZooKeeper
/// then uses version 0. Java does not require the `.dynamic.` part, so neither does this.
pub fn version_from_filename(name: &str) -> Option<i64> {
    let (_, suffix) = name.rsplit_once('.')?;
    i64::from_str_radix(suffix, 16).ok()
}

/// Reads the membership lines of a dynamic file named `file` (as written in `zoo.cfg`).
pub(super) fn parse_dynamic(text: &str, file: &str, multi_address: bool) -> Result<Members, ConfigError> {
    let err = |line: Option<usize>, key: Option<&str>, message: String| ConfigError {
        file: file.to_string(),
        line,
        key: key.map(str::to_string),
        message,
    };
    let entries = properties::parse(text).map_err(|e| err(Some(e.line), None, e.message))?;
    let mut members = Members::new(Source::DynamicFile, multi_address);
    for e in &entries {
        let line = Some(e.line);
        match members.add(&e.key, &e.value, e.line) {
            Ok(true) => {}
            Ok(false) => {
                return Err(err(
                    line,
                    Some(&e.key),
                    format!(
                        "Unrecognised parameter: {}; a dynamic file holds only server.N, group.G and weight.S lines, \
                         move it to the static configuration",
                        e.key
                    ),
                ));
            }
            Err(m) => return Err(err(line, Some(&e.key), m.to_string())),
        }
    }
    match version_from_filename(file) {
        // Java turns a negative version into a hex text that it cannot parse back.
        Some(v) if v < 0 => {
            return Err(err(
                None,
                None,
                format!(
                    "the version {v} at the end of the file name is negative; name the file <name>.dynamic.<hex version>"
                ),
            ));
        }
        Some(v) => members.set_version(v),
        None => {}
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_from_the_file_name() {
        assert_eq!(version_from_filename("zoo.cfg.dynamic.100000000"), Some(0x1_0000_0000));
        assert_eq!(version_from_filename("/etc/zk/zoo.cfg.dynamic.0"), Some(0));
        assert_eq!(version_from_filename("zoo.cfg.dynamic"), None);
        // Any last suffix that reads as hex counts, as in Java.
        assert_eq!(version_from_filename("servers.abc"), Some(0xabc));
        assert_eq!(version_from_filename("/etc/zk.d/dynamic"), None);
        assert_eq!(version_from_filename("dynamic"), None);
        assert_eq!(version_from_filename("zoo.cfg.dynamic."), None);
        assert_eq!(version_from_filename("zoo.cfg.dynamic.1ffffffffffffffff"), None);
    }
}
