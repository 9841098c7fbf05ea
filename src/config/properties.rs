//! A reader for the Java `.properties` syntax that `zoo.cfg` uses (`java.util.Properties.load`),
//! keeping the line number of every entry so that configuration errors can point at it.

use std::fmt;

/// One `key=value` entry with the 1-based line on which it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub line: usize,
    pub key: String,
    pub value: String,
}

/// A text `Properties.load` refuses: today only a malformed `\uXXXX` escape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertiesError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for PropertiesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for PropertiesError {}

/// White space as `Properties.load` skips it (not Unicode white space).
const BLANK: [char; 3] = [' ', '\t', '\x0c'];

/// Splits `text` into entries. Comments (`#`, `!`), blank lines, `\` continuations, the three
/// separators (`=`, `:`, white space), the escapes and the three line ends (`\n`, `\r\n`, `\r`) are
/// handled as `Properties.load` does. Keys and values are then trimmed as `String.trim` does, as
/// `QuorumPeerConfig.parseProperties` does.
pub fn parse(text: &str) -> Result<Vec<Entry>, PropertiesError> {
    let mut out = Vec::new();
    let mut lines = natural_lines(text).into_iter().enumerate();
    while let Some((idx, raw)) = lines.next() {
        let first = raw.trim_start_matches(BLANK);
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = String::new();
        let mut cur = first;
        // An odd number of trailing backslashes continues the line; at the end of the text the
        // backslash is dropped, as Java's LineReader does.
        while ends_with_odd_backslashes(cur) {
            logical.push_str(&cur[..cur.len() - 1]);
            match lines.next() {
                Some((_, next)) => cur = next.trim_start_matches(BLANK),
                None => {
                    cur = "";
                    break;
                }
            }
        }
        logical.push_str(cur);
        let line = idx + 1;
        let (key, value) = split_key_value(&logical);
        let malformed = |_| PropertiesError { line, message: "Malformed \\uxxxx encoding.".into() };
        out.push(Entry {
            line,
            key: java_trim(&unescape(key).map_err(malformed)?).to_string(),
            value: java_trim(&unescape(value).map_err(malformed)?).to_string(),
        });
    }
    Ok(out)
}

/// `String.trim()`: strips every char up to U+0020, controls included, and nothing else.
pub fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// The text's lines, ended by `\n`, `\r\n` or a lone `\r`.
fn natural_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['\n', '\r']) {
            None => {
                out.push(rest);
                break;
            }
            Some(i) => {
                out.push(&rest[..i]);
                let end = if rest[i..].starts_with("\r\n") { i + 2 } else { i + 1 };
                rest = &rest[end..];
            }
        }
    }
    out
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Returns the raw (still escaped) key and value of one logical line.
fn split_key_value(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut i = 0;
    let mut key_end = bytes.len();
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' | b':' | b' ' | b'\t' | b'\x0c' => {
                key_end = i;
                break;
            }
            _ => i += 1,
        }
    }
    let key_end = key_end.min(bytes.len());
    let is_blank = |b: u8| matches!(b, b' ' | b'\t' | b'\x0c');
    let mut j = key_end;
    while j < bytes.len() && is_blank(bytes[j]) {
        j += 1;
    }
    if j < bytes.len() && matches!(bytes[j], b'=' | b':') {
        j += 1;
    }
    while j < bytes.len() && is_blank(bytes[j]) {
        j += 1;
    }
    // Every index above sits on an ASCII byte or the end, so both slices are on char boundaries.
    (&line[..key_end], &line[j..])
}

/// A `\u` escape that is not followed by four hex digits.
struct MalformedEscape;

/// `Properties.loadConvert`. Java strings are UTF-16, so an escaped surrogate pair makes one
/// char; a lone surrogate cannot be held by a Rust string and becomes U+FFFD.
fn unescape(s: &str) -> Result<String, MalformedEscape> {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let unit = hex4(&mut it)?;
                if (0xD800..0xDC00).contains(&unit) {
                    let mut ahead = it.clone();
                    if ahead.next() == Some('\\') && ahead.next() == Some('u') {
                        let low = hex4(&mut ahead)?;
                        if (0xDC00..0xE000).contains(&low) {
                            it = ahead;
                            let joined = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                            out.push(char::from_u32(joined).unwrap_or(char::REPLACEMENT_CHARACTER));
                            continue;
                        }
                    }
                }
                out.push(char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

fn hex4(it: &mut impl Iterator<Item = char>) -> Result<u32, MalformedEscape> {
    let mut v = 0;
    for _ in 0..4 {
        let d = it.next().and_then(|c| c.to_digit(16)).ok_or(MalformedEscape)?;
        v = v * 16 + d;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String)> {
        parse(text).unwrap().into_iter().map(|e| (e.key, e.value)).collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn separators_comments_and_continuations() {
        let text = "# comment\n! other\n\na=1\nb : 2\nc 3\nd=x\\\n   y\ne\\:f=4\n  g  =  spaced  \n";
        let e = parse(text).unwrap();
        let kv: Vec<(&str, &str)> = e.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect();
        assert_eq!(kv, vec![("a", "1"), ("b", "2"), ("c", "3"), ("d", "xy"), ("e:f", "4"), ("g", "spaced")]);
        assert_eq!(e[0].line, 4);
        assert_eq!(e[3].line, 7);
        assert_eq!(e[4].line, 9);
    }

    #[test]
    fn key_without_value() {
        let e = parse("lonely\n").unwrap();
        assert_eq!(e[0].key, "lonely");
        assert_eq!(e[0].value, "");
    }

    #[test]
    fn unicode_escapes() {
        assert_eq!(kv("k\\u0041y=\\u00e9t\\u00E9\n"), pairs(&[("kAy", "été")]));
        // An escaped surrogate pair is one char, as in a Java string.
        assert_eq!(kv("smile=\\uD83D\\uDE00\n"), pairs(&[("smile", "😀")]));
        assert_eq!(kv("lone=\\uD83Dx\n"), pairs(&[("lone", "\u{FFFD}x")]));
        // An escaped separator or blank is part of the key, not the end of it.
        assert_eq!(kv("a\\u003db=c\n"), pairs(&[("a=b", "c")]));
        for bad in ["k=\\u12\n", "k=\\u12G4\n", "k\\uzzzz=v\n", "k=\\u"] {
            let e = parse(&format!("ok=1\n{bad}")).unwrap_err();
            assert_eq!(e.to_string(), "line 2: Malformed \\uxxxx encoding.", "{bad:?}");
        }
    }

    #[test]
    fn escaped_separators_and_escapes() {
        assert_eq!(
            kv("a\\=b=c\nsp\\ ace = v\ncol\\:on:x\nv=1\\=2\\:3\nesc=\\t\\q\\\\\n\\#not=comment\n"),
            pairs(&[
                ("a=b", "c"),
                ("sp ace", "v"),
                ("col:on", "x"),
                ("v", "1=2:3"),
                ("esc", "q\\"),
                ("#not", "comment")
            ])
        );
        // Only one separator is eaten; the next `=` belongs to the value.
        assert_eq!(kv("k == v\nk2 : : v\n"), pairs(&[("k", "= v"), ("k2", ": v")]));
    }

    #[test]
    fn line_ends() {
        let e = parse("a=1\r\nb=2\rc=3\n\r\nd=x\\\r\n  y\r\n").unwrap();
        let got: Vec<(&str, &str, usize)> = e.iter().map(|e| (e.key.as_str(), e.value.as_str(), e.line)).collect();
        // CRLF is one line end and a lone CR is another, as in java.util.Properties.
        assert_eq!(got, vec![("a", "1", 1), ("b", "2", 2), ("c", "3", 3), ("d", "xy", 5)]);
    }

    #[test]
    fn trailing_backslash_at_end_of_text() {
        // LineReader drops the backslash of a continuation that meets the end of the input.
        assert_eq!(kv("a=1\nb=tail\\"), pairs(&[("a", "1"), ("b", "tail")]));
        assert_eq!(kv("b=tail\\\n"), pairs(&[("b", "tail")]));
        // An even count is an escaped backslash, not a continuation.
        assert_eq!(kv("b=tail\\\\\nc=1\n"), pairs(&[("b", "tail\\"), ("c", "1")]));
        // A continued line may look like a comment: it is still part of the value.
        assert_eq!(kv("a=x\\\n#y\n"), pairs(&[("a", "x#y")]));
        // A comment line never continues.
        assert_eq!(kv("# c\\\na=1\n"), pairs(&[("a", "1")]));
    }

    #[test]
    fn trims_like_java() {
        // String.trim strips controls too, but not non-ASCII white space.
        assert_eq!(kv("k=\x01v\x02\u{a0}\n"), pairs(&[("k", "v\x02\u{a0}")]));
    }
}
