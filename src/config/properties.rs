//! A reader for the Java `.properties` syntax that `zoo.cfg` uses (`java.util.Properties.load`),
//! keeping the line number of every entry so that configuration errors can point at it.

/// One `key=value` entry with the 1-based line on which it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub line: usize,
    pub key: String,
    pub value: String,
}

/// Splits `text` into entries. Comments (`#`, `!`), blank lines, `\` continuations, the three
/// separators (`=`, `:`, white space) and the usual escapes are handled as Java does. Keys and values
/// are trimmed afterwards, as `QuorumPeerConfig.parseProperties` does.
pub fn parse(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((idx, raw)) = lines.next() {
        let first = raw.trim_start_matches([' ', '\t', '\x0c']);
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = String::new();
        let mut cur = first.to_string();
        loop {
            if ends_with_odd_backslashes(&cur) {
                cur.pop();
                logical.push_str(&cur);
                match lines.next() {
                    Some((_, next)) => cur = next.trim_start_matches([' ', '\t', '\x0c']).to_string(),
                    None => break,
                }
            } else {
                logical.push_str(&cur);
                break;
            }
        }
        let (key, value) = split_key_value(&logical);
        out.push(Entry {
            line: idx + 1,
            key: unescape(&key).trim().to_string(),
            value: unescape(&value).trim().to_string(),
        });
    }
    out
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Returns the raw (still escaped) key and value of one logical line.
fn split_key_value(line: &str) -> (String, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut key_end = chars.len();
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '=' | ':' | ' ' | '\t' | '\x0c' => {
                key_end = i;
                break;
            }
            _ => i += 1,
        }
    }
    let key: String = chars[..key_end.min(chars.len())].iter().collect();
    let mut j = key_end;
    while j < chars.len() && matches!(chars[j], ' ' | '\t' | '\x0c') {
        j += 1;
    }
    if j < chars.len() && matches!(chars[j], '=' | ':') {
        j += 1;
    }
    while j < chars.len() && matches!(chars[j], ' ' | '\t' | '\x0c') {
        j += 1;
    }
    let value: String = chars[j.min(chars.len())..].iter().collect();
    (key, value)
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
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
                let hex: String = it.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => out.push_str(&hex),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_comments_and_continuations() {
        let text = "# comment\n! other\n\na=1\nb : 2\nc 3\nd=x\\\n   y\ne\\:f=4\n  g  =  spaced  \n";
        let e = parse(text);
        let kv: Vec<(&str, &str)> = e.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect();
        assert_eq!(kv, vec![("a", "1"), ("b", "2"), ("c", "3"), ("d", "xy"), ("e:f", "4"), ("g", "spaced")]);
        assert_eq!(e[0].line, 4);
        assert_eq!(e[3].line, 7);
        assert_eq!(e[4].line, 9);
    }

    #[test]
    fn key_without_value() {
        let e = parse("lonely\n");
        assert_eq!(e[0].key, "lonely");
        assert_eq!(e[0].value, "");
    }
}
