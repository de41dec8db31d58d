//! Who is an agent: the configured extensions (exact user parts and numeric ranges such
//! as `8001-8099`) and the optional roster CSV (`extension,agent_id,name,team`) that
//! gives each extension its agent id, name and team. The roster arrives as bytes
//! (the config loader reads the file): UTF-8 with or without BOM, or GB18030 as Chinese
//! Excel saves it.

use std::collections::HashMap;

/// The set of user parts that are agents' extensions.
#[derive(Clone, Debug, Default)]
pub struct ExtensionSet {
    exact: Vec<Vec<u8>>,
    /// Inclusive numeric ranges with the digit count of their bounds: `8001-8099` only
    /// matches four-digit users, so `08001` is not `8001`.
    ranges: Vec<(u64, u64, usize)>,
}

impl ExtensionSet {
    pub fn parse(patterns: &[String]) -> Result<ExtensionSet, String> {
        let mut set = ExtensionSet::default();
        for p in patterns {
            let p = p.trim();
            if p.is_empty() {
                return Err("empty extension pattern".into());
            }
            match p.split_once('-') {
                Some((lo, hi)) => {
                    let (lo, hi) = (lo.trim(), hi.trim());
                    let (Ok(a), Ok(b)) = (lo.parse::<u64>(), hi.parse::<u64>()) else {
                        return Err(format!("{p:?} is not a range of numbers like 8001-8099"));
                    };
                    if a > b || lo.len() != hi.len() {
                        return Err(format!(
                            "{p:?}: the range must go up and both bounds need the same number of digits"
                        ));
                    }
                    set.ranges.push((a, b, lo.len()));
                }
                None => set.exact.push(p.as_bytes().to_vec()),
            }
        }
        Ok(set)
    }

    pub fn contains(&self, user: &[u8]) -> bool {
        if self.exact.iter().any(|e| e.as_slice() == user) {
            return true;
        }
        if user.is_empty() || user.len() > 19 || !user.iter().all(u8::is_ascii_digit) {
            return false;
        }
        let n = user
            .iter()
            .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
        self.ranges
            .iter()
            .any(|&(a, b, digits)| digits == user.len() && (a..=b).contains(&n))
    }
}

/// One roster line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentInfo {
    pub agent_id: String,
    pub name: Option<String>,
    pub team: Option<String>,
}

/// Extension → agent, from the roster CSV. Empty when no roster is configured: the
/// agent id is then the extension itself.
#[derive(Clone, Debug, Default)]
pub struct Roster {
    by_extension: HashMap<String, AgentInfo>,
}

impl Roster {
    pub fn lookup(&self, extension: &str) -> Option<&AgentInfo> {
        self.by_extension.get(extension)
    }

    pub fn len(&self) -> usize {
        self.by_extension.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_extension.is_empty()
    }

    /// Every agent of the roster with its extension, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AgentInfo)> {
        self.by_extension.iter().map(|(e, a)| (e.as_str(), a))
    }

    /// Teams named in the roster, sorted.
    pub fn teams(&self) -> Vec<String> {
        let mut t: Vec<String> = self
            .by_extension
            .values()
            .filter_map(|a| a.team.clone())
            .collect();
        t.sort();
        t.dedup();
        t
    }

    pub fn from_csv_bytes(bytes: &[u8]) -> Result<Roster, String> {
        let text = decode_text(bytes);
        let mut roster = Roster::default();
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((_, header)) = lines.next() else {
            return Err("empty roster".into());
        };
        let cols: Vec<String> = split_csv_line(header)
            .into_iter()
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        let want = ["extension", "agent_id", "name", "team"];
        if cols.len() < 4 || cols[..4] != want {
            return Err(format!(
                "header line must be `extension,agent_id,name,team`, found {header:?}"
            ));
        }
        for (n, line) in lines {
            let f = split_csv_line(line);
            if f.len() < 2 {
                return Err(format!(
                    "line {}: expected 4 fields, found {}",
                    n + 1,
                    f.len()
                ));
            }
            let ext = f[0].trim().to_string();
            let agent_id = f[1].trim().to_string();
            if ext.is_empty() || agent_id.is_empty() {
                return Err(format!(
                    "line {}: extension and agent_id are required",
                    n + 1
                ));
            }
            let opt = |i: usize| {
                f.get(i)
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            };
            roster.by_extension.insert(
                ext,
                AgentInfo {
                    agent_id,
                    name: opt(2),
                    team: opt(3),
                },
            );
        }
        Ok(roster)
    }
}

/// UTF-8 (a BOM is dropped), else GB18030 (a superset of GBK and GB2312).
fn decode_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => {
            let (text, _, _) = encoding_rs::GB18030.decode(bytes);
            text.into_owned()
        }
    }
}

/// One CSV record (RFC 4180 quoting, no embedded newlines).
fn split_csv_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cur.trim().is_empty() => {
                cur.clear();
                quoted = true
            }
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_exact_users() {
        let s = ExtensionSet::parse(&["8001-8099".into(), "7000".into()]).unwrap();
        assert!(s.contains(b"8001"));
        assert!(s.contains(b"8099"));
        assert!(!s.contains(b"8100"));
        assert!(!s.contains(b"08001"));
        assert!(!s.contains(b"80a1"));
        assert!(s.contains(b"7000"));
        assert!(!s.contains(b""));
        assert!(ExtensionSet::parse(&["8099-8001".into()]).is_err());
        assert!(ExtensionSet::parse(&["80-x".into()]).is_err());
    }

    #[test]
    fn roster_in_utf8_with_bom_and_in_gb18030() {
        let utf8 = "\u{feff}extension,agent_id,name,team\r\n8001,A1024,李娜,A\r\n8002,A1025,\"Wang, Wei\",B\r\n";
        let r = Roster::from_csv_bytes(utf8.as_bytes()).unwrap();
        assert_eq!(r.lookup("8001").unwrap().name.as_deref(), Some("李娜"));
        assert_eq!(r.lookup("8002").unwrap().name.as_deref(), Some("Wang, Wei"));
        assert_eq!(r.teams(), vec!["A".to_string(), "B".to_string()]);

        let (gb, _, _) =
            encoding_rs::GB18030.encode("extension,agent_id,name,team\n8003,A2000,张伟,客服一组\n");
        let r = Roster::from_csv_bytes(&gb).unwrap();
        let a = r.lookup("8003").unwrap();
        assert_eq!(a.name.as_deref(), Some("张伟"));
        assert_eq!(a.team.as_deref(), Some("客服一组"));
    }

    #[test]
    fn roster_header_is_checked() {
        assert!(Roster::from_csv_bytes(b"ext,id\n8001,A\n").is_err());
        assert!(Roster::from_csv_bytes(b"").is_err());
    }
}
