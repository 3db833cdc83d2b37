//! Mount tables as /proc/PID/mountinfo shows them.

/// One mount. Its identity is what it shows of the filesystem (device and
/// root within it), which copies of the mount in nested mount namespaces
/// share, unlike the mount id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub id: u64,
    pub dev: String,
    pub root: String,
    pub mount_point: String,
    pub read_only: bool,
    pub fstype: String,
}

impl MountEntry {
    pub fn identity(&self) -> (String, String) {
        (self.dev.clone(), self.root.clone())
    }
}

fn unescape(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() + 1 && i + 4 <= b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo text; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            if f.len() < 6 {
                return None;
            }
            Some(MountEntry {
                id: f[0].parse().ok()?,
                dev: f[2].to_owned(),
                root: unescape(f[3]),
                mount_point: unescape(f[4]),
                read_only: f[5].split(',').any(|o| o == "ro"),
                fstype: right.split(' ').next()?.to_owned(),
            })
        })
        .collect()
}

pub fn read(pid: i32) -> std::io::Result<Vec<MountEntry>> {
    Ok(parse(&std::fs::read_to_string(format!(
        "/proc/{pid}/mountinfo"
    ))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_lines() {
        let t = "100 90 0:50 / /proc rw,nosuid - proc proc rw\n\
                 101 100 0:5 /null /proc/kcore rw - devtmpfs udev rw\n\
                 102 90 0:60 / /sys ro,nosuid - sysfs sysfs ro\n\
                 bad line\n\
                 103 90 0:61 /a\\040b /mnt\\040x rw - tmpfs t rw\n";
        let m = parse(t);
        assert_eq!(m.len(), 4);
        assert_eq!(m[1].identity(), ("0:5".to_owned(), "/null".to_owned()));
        assert!(m[2].read_only && !m[0].read_only);
        assert_eq!(m[3].mount_point, "/mnt x");
        assert_eq!(m[3].root, "/a b");
    }
}
