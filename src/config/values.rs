//! Parsers for single values of `zoo.cfg` keys, with typed errors that the caller places at a
//! file, line and key.

use std::fmt;

/// What is wrong with one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    /// `QuorumPeerConfig.parseBoolean` accepts only `true`/`false`, in any case.
    NotBool(String),
    NotNumber(String),
    PortOutOfRange(i64),
    OutOfRange {
        value: i64,
        min: i64,
        max: i64,
    },
    BadId(String),
    /// A value that parses but is refused, with the reason and the fix.
    Invalid(String),
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::NotBool(v) => write!(f, "Invalid option {v} for this key. Choose 'true' or 'false.'"),
            ValueError::NotNumber(v) => write!(f, "bad number '{v}'"),
            ValueError::PortOutOfRange(p) => write!(f, "port {p} is out of range 0..65535"),
            ValueError::OutOfRange { value, min, max } => write!(f, "{value} is out of range {min}..{max}"),
            ValueError::BadId(v) => write!(f, "server id '{v}' is not a number"),
            ValueError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ValueError {}

/// Java's `int`: tick counts and milliseconds that ZooKeeper reads with `Integer.parseInt`.
pub const JAVA_INT_MAX: i64 = i32::MAX as i64;

pub fn parse_bool(v: &str) -> Result<bool, ValueError> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ValueError::NotBool(v.to_string())),
    }
}

/// `Boolean.parseBoolean`: `true` in any case is true, anything else false. The second value
/// says whether `v` was neither `true` nor `false`, so that the caller can warn.
pub fn java_parse_boolean(v: &str) -> (bool, bool) {
    let lower = v.to_ascii_lowercase();
    (lower == "true", lower != "true" && lower != "false")
}

pub fn parse_num(v: &str) -> Result<u64, ValueError> {
    v.parse::<u64>().map_err(|_| ValueError::NotNumber(v.to_string()))
}

/// An integer in `min..=max`.
pub fn parse_int_in(v: &str, min: i64, max: i64) -> Result<i64, ValueError> {
    let value = v.parse::<i64>().map_err(|_| ValueError::NotNumber(v.to_string()))?;
    if (min..=max).contains(&value) { Ok(value) } else { Err(ValueError::OutOfRange { value, min, max }) }
}

pub fn parse_port(v: &str) -> Result<u16, ValueError> {
    match v.parse::<i64>() {
        Ok(p) if (0..=65535).contains(&p) => Ok(p as u16),
        Ok(p) => Err(ValueError::PortOutOfRange(p)),
        Err(_) => Err(ValueError::NotNumber(v.to_string())),
    }
}

pub fn parse_id(v: &str) -> Result<i64, ValueError> {
    v.parse::<i64>().map_err(|_| ValueError::BadId(v.to_string()))
}

/// A host written as in `clientPortAddress`: an IPv6 literal may come in brackets, which
/// `InetAddress.getByName` accepts; it is kept without them, as `HostPort` holds hosts.
pub fn unbracket(host: &str) -> String {
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_booleans() {
        assert_eq!(
            parse_int_in("4294967296", 0, JAVA_INT_MAX).unwrap_err().to_string(),
            "4294967296 is out of range 0..2147483647"
        );
        assert_eq!(parse_int_in("-1", 0, 9).unwrap_err().to_string(), "-1 is out of range 0..9");
        assert_eq!(parse_int_in("x", 0, 9).unwrap_err(), ValueError::NotNumber("x".into()));
        assert_eq!(parse_bool("TRUE"), Ok(true));
        assert_eq!(java_parse_boolean("True"), (true, false));
        assert_eq!(java_parse_boolean("yes"), (false, true));
        assert_eq!(unbracket("[::1]"), "::1");
        assert_eq!(unbracket("10.0.0.1"), "10.0.0.1");
    }
}
