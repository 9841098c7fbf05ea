//! JSON values and the two layouts zkelect writes: Jackson's default pretty printer, which
//! ZooKeeper's AdminServer uses (`JsonOutputter` with `INDENT_OUTPUT`) and which probes grep line
//! by line (`"error" : null`), and the compact form for event streams.
//!
//! Jackson's pretty layout: objects break lines with a 2-space indent per level and write
//! `"key" : value`; arrays stay on one line as `[ a, b ]`; empty ones are `{ }` and `[ ]`; there
//! is no trailing newline. Keys keep their insertion order (ZooKeeper's `LinkedHashMap`s).

use std::fmt::Write as _;

/// A JSON value. Integers and floating-point numbers are kept apart, as Java's `long` and
/// `double` are: `0` and `0.0` are different answers to a parser that checks types.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    Object(Obj),
}

/// An object: keys in insertion order, each at most once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Obj(Vec<(String, Json)>);

impl Obj {
    pub fn new() -> Obj {
        Obj(Vec::new())
    }

    /// Adds `key` (or replaces its value in place, as `LinkedHashMap.put` does).
    pub fn put(&mut self, key: impl Into<String>, value: impl Into<Json>) {
        let (key, value) = (key.into(), value.into());
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// [`put`](Self::put), for building an object in one expression.
    pub fn field(mut self, key: impl Into<String>, value: impl Into<Json>) -> Obj {
        self.put(key, value);
        self
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, &Json)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, Json)> for Obj {
    fn from_iter<I: IntoIterator<Item = (String, Json)>>(iter: I) -> Obj {
        let mut o = Obj::new();
        for (k, v) in iter {
            o.put(k, v);
        }
        o
    }
}

impl From<bool> for Json {
    fn from(v: bool) -> Json {
        Json::Bool(v)
    }
}

impl From<i64> for Json {
    fn from(v: i64) -> Json {
        Json::Int(v)
    }
}

impl From<i32> for Json {
    fn from(v: i32) -> Json {
        Json::Int(i64::from(v))
    }
}

impl From<u32> for Json {
    fn from(v: u32) -> Json {
        Json::Int(i64::from(v))
    }
}

impl From<u16> for Json {
    fn from(v: u16) -> Json {
        Json::Int(i64::from(v))
    }
}

/// Counters beyond `i64::MAX` are written as `i64::MAX` (Java has no larger `long`).
impl From<u64> for Json {
    fn from(v: u64) -> Json {
        Json::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<usize> for Json {
    fn from(v: usize) -> Json {
        Json::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Json {
    fn from(v: f64) -> Json {
        Json::Float(v)
    }
}

impl From<&str> for Json {
    fn from(v: &str) -> Json {
        Json::Str(v.to_string())
    }
}

impl From<String> for Json {
    fn from(v: String) -> Json {
        Json::Str(v)
    }
}

impl From<Obj> for Json {
    fn from(v: Obj) -> Json {
        Json::Object(v)
    }
}

impl From<Vec<Json>> for Json {
    fn from(v: Vec<Json>) -> Json {
        Json::Array(v)
    }
}

impl<T: Into<Json>> From<Option<T>> for Json {
    fn from(v: Option<T>) -> Json {
        v.map_or(Json::Null, Into::into)
    }
}

impl Json {
    /// An array of anything that converts to JSON.
    pub fn array<T: Into<Json>>(items: impl IntoIterator<Item = T>) -> Json {
        Json::Array(items.into_iter().map(Into::into).collect())
    }

    /// Jackson's `DefaultPrettyPrinter` layout (what ZooKeeper's AdminServer sends).
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        write_value(&mut out, self, Some(0));
        out
    }

    /// One line, no spaces: `{"k":1,"a":[1,2]}` (for Server-Sent Events, one event per line).
    pub fn compact(&self) -> String {
        let mut out = String::new();
        write_value(&mut out, self, None);
        out
    }
}

/// `nesting` is the object depth for the pretty layout, `None` for the compact one. Arrays do not
/// add a level: Jackson's array indenter writes single spaces.
fn write_value(out: &mut String, v: &Json, nesting: Option<usize>) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Json::Float(x) => write_double(out, *x),
        Json::Str(s) => write_string(out, s),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if nesting.is_some() {
                    out.push(' ');
                }
                write_value(out, item, nesting);
            }
            if nesting.is_some() {
                out.push(' ');
            }
            out.push(']');
        }
        Json::Object(obj) => {
            out.push('{');
            let inner = nesting.map(|n| n + 1);
            for (i, (k, item)) in obj.0.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if let Some(n) = inner {
                    newline(out, n);
                }
                write_string(out, k);
                out.push_str(if nesting.is_some() { " : " } else { ":" });
                write_value(out, item, inner);
            }
            match nesting {
                Some(n) if !obj.is_empty() => newline(out, n),
                Some(_) => out.push(' '),
                None => {}
            }
            out.push('}');
        }
    }
}

fn newline(out: &mut String, level: usize) {
    out.push('\n');
    for _ in 0..level {
        out.push_str("  ");
    }
}

/// Jackson's escaping: the two-character escapes for `"`, `\` and the common control characters,
/// `\u00XX` (upper-case hex) for the other control characters, everything else as UTF-8.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Java's `Double.toString`, which Jackson uses: plain notation with at least one fractional
/// digit for magnitudes in [10^-3, 10^7), otherwise `d.dddE[-]n`. Jackson writes the non-finite
/// values as strings.
fn write_double(out: &mut String, x: f64) {
    if x.is_nan() {
        out.push_str("\"NaN\"");
    } else if x.is_infinite() {
        out.push_str(if x > 0.0 { "\"Infinity\"" } else { "\"-Infinity\"" });
    } else if x == 0.0 {
        out.push_str(if x.is_sign_negative() { "-0.0" } else { "0.0" });
    } else if (1e-3..1e7).contains(&x.abs()) {
        let s = format!("{x}");
        out.push_str(&s);
        if !s.contains('.') {
            out.push_str(".0");
        }
    } else {
        // Rust's shortest form, `1.5e-5` or `1e10`, in Java's spelling.
        let s = format!("{x:e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        out.push_str(mantissa);
        if !mantissa.contains('.') {
            out.push_str(".0");
        }
        out.push('E');
        out.push_str(exponent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jackson_pretty_layout() {
        let v = Json::Object(
            Obj::new()
                .field(
                    "current_config",
                    Obj::new().field("1", Obj::new().field("server_addresses", Json::array(["h:1"]))),
                )
                .field("list", Json::array([1, 2]))
                .field("empty_list", Json::array(Vec::<Json>::new()))
                .field("empty_map", Obj::new())
                .field("objects", Json::array([Obj::new().field("a", 1), Obj::new()]))
                .field("avg", 0.0)
                .field("none", Option::<i64>::None)
                .field("command", "voting_view")
                .field("error", Json::Null),
        );
        let want = r#"{
  "current_config" : {
    "1" : {
      "server_addresses" : [ "h:1" ]
    }
  },
  "list" : [ 1, 2 ],
  "empty_list" : [ ],
  "empty_map" : { },
  "objects" : [ {
    "a" : 1
  }, { } ],
  "avg" : 0.0,
  "none" : null,
  "command" : "voting_view",
  "error" : null
}"#;
        assert_eq!(v.pretty(), want);
        assert_eq!(
            v.compact(),
            r#"{"current_config":{"1":{"server_addresses":["h:1"]}},"list":[1,2],"empty_list":[],"empty_map":{},"objects":[{"a":1},{}],"avg":0.0,"none":null,"command":"voting_view","error":null}"#
        );
        assert_eq!(Json::Object(Obj::new()).pretty(), "{ }");
    }

    #[test]
    fn put_replaces_in_place_like_a_linked_hash_map() {
        let mut o = Obj::new().field("error", "first").field("command", "x");
        o.put("error", "second");
        assert_eq!(o.keys().collect::<Vec<_>>(), ["error", "command"]);
        assert_eq!(o.get("error"), Some(&Json::from("second")));
    }

    #[test]
    fn strings_are_escaped_as_jackson_does() {
        let s = Json::from("a\"b\\c\nd\te\u{1}f/é\u{8}\u{c}\r");
        assert_eq!(s.compact(), r#""a\"b\\c\nd\te\u0001f/é\b\f\r""#);
    }

    #[test]
    fn doubles_are_written_as_java_does() {
        for (x, want) in [
            (0.0, "0.0"),
            (1.0, "1.0"),
            (21329.5, "21329.5"),
            (0.001, "0.001"),
            (0.0001, "1.0E-4"),
            (1.5e-5, "1.5E-5"),
            (9_999_999.0, "9999999.0"),
            (1e7, "1.0E7"),
            (1.25e10, "1.25E10"),
            (-2.5, "-2.5"),
            (12.0 / 3.0, "4.0"),
        ] {
            assert_eq!(Json::Float(x).compact(), want, "{x}");
        }
        assert_eq!(Json::Float(f64::NAN).compact(), "\"NaN\"");
    }

    #[test]
    fn conversions() {
        assert_eq!(Json::from(u64::MAX), Json::Int(i64::MAX));
        assert_eq!(Json::from(Some(3i64)), Json::Int(3));
        assert_eq!(Json::from(Option::<String>::None), Json::Null);
        let o: Obj = [("b".to_string(), Json::Int(1)), ("a".to_string(), Json::Int(2))].into_iter().collect();
        assert_eq!(o.keys().collect::<Vec<_>>(), ["b", "a"]);
    }
}
