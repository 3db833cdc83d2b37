//! /etc/subuid and /etc/subgid: `user:start:count` per line.

use std::io::Write;
use std::path::Path;

use super::SubidError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubidEntry {
    pub user: String,
    pub start: u32,
    pub count: u32,
}

impl SubidEntry {
    fn end(&self) -> u64 {
        u64::from(self.start) + u64::from(self.count)
    }
}

pub fn parse(path: &Path, text: &str) -> Result<Vec<SubidEntry>, SubidError> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let malformed = |reason: &str| SubidError::Malformed {
            path: path.to_owned(),
            line: i + 1,
            reason: reason.to_owned(),
        };
        let mut parts = line.split(':');
        let (Some(user), Some(start), Some(count), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("expected user:start:count"));
        };
        let start = start
            .parse()
            .map_err(|_| malformed("start is not a number"))?;
        let count = count
            .parse()
            .map_err(|_| malformed("count is not a number"))?;
        entries.push(SubidEntry {
            user: user.to_owned(),
            start,
            count,
        });
    }
    Ok(entries)
}

/// Where a new range of `size` goes: above every existing entry and above
/// the IDs regular users get, aligned to 65536.
fn place(entries: &[SubidEntry], size: u32) -> Option<u32> {
    const FLOOR: u64 = 100_000;
    const ALIGN: u64 = 65_536;
    let top = entries
        .iter()
        .map(SubidEntry::end)
        .max()
        .unwrap_or(0)
        .max(FLOOR);
    let start = top.div_ceil(ALIGN) * ALIGN;
    // Leave the top of the 32-bit space alone: (u32)-1 is "no id".
    (start + u64::from(size) < u64::from(u32::MAX)).then_some(start as u32)
}

/// Returns `user`'s first entry in the file, adding one of `size` when the
/// user has none. The caller holds the allocator lock.
pub fn ensure_entry(path: &Path, user: &str, size: u32) -> Result<SubidEntry, SubidError> {
    let io = |source| SubidError::Io {
        path: path.to_owned(),
        source,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(e)),
    };
    let entries = parse(path, &text)?;
    if let Some(entry) = entries.iter().find(|e| e.user == user) {
        return Ok(entry.clone());
    }
    let start = place(&entries, size).ok_or_else(|| SubidError::NoRoomForEntry {
        path: path.to_owned(),
        user: user.to_owned(),
        size,
    })?;
    let entry = SubidEntry {
        user: user.to_owned(),
        start,
        count: size,
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    let sep = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    writeln!(file, "{sep}{user}:{start}:{size}").map_err(io)?;
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_and_skips_comments() {
        let e = parse(
            Path::new("s"),
            "# c\nalice:100000:65536\n\nwarren:200000:10\n",
        )
        .unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(
            e[1],
            SubidEntry {
                user: "warren".into(),
                start: 200000,
                count: 10
            }
        );
    }

    #[test]
    fn malformed_lines_name_the_line() {
        let err = parse(Path::new("/etc/subuid"), "a:1:2\nb:x:2\n").unwrap_err();
        assert_eq!(err.to_string(), "/etc/subuid line 2: start is not a number");
        assert!(parse(Path::new("s"), "a:1\n").is_err());
        assert!(parse(Path::new("s"), "a:1:2:3\n").is_err());
    }

    #[test]
    fn new_entries_go_above_existing_ones() {
        let existing = vec![SubidEntry {
            user: "a".into(),
            start: 100000,
            count: 65536,
        }];
        assert_eq!(place(&existing, 65536), Some(196608));
        assert_eq!(place(&[], 65536), Some(131072));
    }

    #[test]
    fn a_full_id_space_has_no_room() {
        let existing = vec![SubidEntry {
            user: "a".into(),
            start: 100000,
            count: u32::MAX - 200000,
        }];
        assert_eq!(place(&existing, 65536), None);
    }
}
