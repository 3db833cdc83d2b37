//! Log records in the shape runc writes them.
//!
//! containerd's shim passes `--log FILE --log-format json` and, when a call
//! fails, reads the last record whose `level` is `error` and shows its `msg`.
//! The records here are `{"level":…,"msg":…,"time":…}` (json) or
//! `time="…" level=… msg="…"` (text), as runc's logrus writes them.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value {
            None | Some("text") => Ok(LogFormat::Text),
            Some("json") => Ok(LogFormat::Json),
            Some(other) => Err(format!(
                "invalid --log-format {other:?}: use \"text\" or \"json\""
            )),
        }
    }
}

/// Writes one record per event to a log file.
pub struct RecordLayer {
    out: Mutex<File>,
    format: LogFormat,
    path: std::path::PathBuf,
    /// The file's length when this run opened it: its records come after.
    start: u64,
}

impl RecordLayer {
    pub fn open(path: &Path, format: LogFormat) -> std::io::Result<Self> {
        let out = OpenOptions::new().create(true).append(true).open(path)?;
        let start = out.metadata()?.len();
        Ok(RecordLayer {
            out: Mutex::new(out),
            format,
            path: path.to_path_buf(),
            start,
        })
    }

    /// The first error recorded in this run, by this process or by the
    /// container's init (which inherits the file): the init's own failure
    /// reaches the runtime only as a broken handshake, so its record is the
    /// one that says what went wrong.
    pub fn first_error(&self) -> Option<String> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = File::open(&self.path).ok()?;
        f.seek(SeekFrom::Start(self.start)).ok()?;
        let mut text = String::new();
        f.take(1 << 20).read_to_string(&mut text).ok()?;
        text.lines().find_map(|l| error_msg(self.format, l))
    }

    /// Writes a record directly, without going through a subscriber. The
    /// binary uses it for the final error, so that it is the last record.
    pub fn write(&self, level: Level, msg: &str, fields: &[(String, String)]) {
        let line = render(self.format, level, msg, fields, &now());
        if let Ok(mut out) = self.out.lock() {
            // A log that cannot be written has nowhere else to be reported.
            let _ = out.write_all(line.as_bytes());
        }
    }
}

/// The message of an error record, in either format.
fn error_msg(format: LogFormat, line: &str) -> Option<String> {
    match format {
        LogFormat::Json => {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            (v["level"] == "error").then(|| v["msg"].as_str().map(str::to_owned))?
        }
        LogFormat::Text => {
            let rest = line.split_once(" level=error msg=\"")?.1;
            let mut out = String::new();
            let mut chars = rest.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next()),
                    '"' => return Some(out),
                    c => out.push(c),
                }
            }
            None
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// Renders one record, newline included.
pub fn render(
    format: LogFormat,
    level: Level,
    msg: &str,
    fields: &[(String, String)],
    time: &str,
) -> String {
    match format {
        LogFormat::Json => {
            let mut map = serde_json::Map::new();
            for (k, v) in fields {
                map.insert(k.clone(), serde_json::Value::String(v.clone()));
            }
            map.insert("level".into(), level_name(level).into());
            map.insert("msg".into(), msg.into());
            map.insert("time".into(), time.into());
            let mut line = serde_json::Value::Object(map).to_string();
            line.push('\n');
            line
        }
        LogFormat::Text => {
            let mut line = format!(
                "time={} level={} msg={}",
                quote(time),
                level_name(level),
                quote(msg)
            );
            for (k, v) in fields {
                let _ = write!(line, " {k}={}", quote(v));
            }
            line.push('\n');
            line
        }
    }
}

fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

#[derive(Default)]
struct FieldCollector {
    msg: String,
    fields: Vec<(String, String)>,
}

impl Visit for FieldCollector {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg = value.to_owned();
        } else {
            self.fields
                .push((field.name().to_owned(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.msg = format!("{value:?}");
        } else {
            self.fields
                .push((field.name().to_owned(), format!("{value:?}")));
        }
    }
}

impl<S: Subscriber> Layer<S> for RecordLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut collector = FieldCollector::default();
        event.record(&mut collector);
        self.write(*event.metadata().level(), &collector.msg, &collector.fields);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_records_have_runc_keys() {
        let line = render(
            LogFormat::Json,
            Level::ERROR,
            "container \"x\" does not exist",
            &[("id".into(), "x".into())],
            "2026-01-01T00:00:00Z",
        );
        let v: serde_json::Value = serde_json::from_str(line.trim()).expect("valid json");
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container \"x\" does not exist");
        assert_eq!(v["time"], "2026-01-01T00:00:00Z");
        assert_eq!(v["id"], "x");
        assert!(line.ends_with('\n'));
    }

    #[test]
    fn text_records_quote_values() {
        let line = render(
            LogFormat::Text,
            Level::WARN,
            "a \"b\"",
            &[],
            "2026-01-01T00:00:00Z",
        );
        assert_eq!(
            line,
            "time=\"2026-01-01T00:00:00Z\" level=warning msg=\"a \\\"b\\\"\"\n"
        );
    }

    #[test]
    fn error_messages_are_read_back_in_both_formats() {
        let now = "2026-01-01T00:00:00Z";
        for format in [LogFormat::Json, LogFormat::Text] {
            let warn = render(format, Level::WARN, "w", &[], now);
            let err = render(format, Level::ERROR, "bad \"sysctl\"", &[], now);
            assert_eq!(error_msg(format, warn.trim()), None);
            assert_eq!(
                error_msg(format, err.trim()).as_deref(),
                Some("bad \"sysctl\"")
            );
        }
    }

    #[test]
    fn unknown_format_is_refused() {
        assert!(LogFormat::parse(Some("yaml")).is_err());
        assert_eq!(LogFormat::parse(None), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("json")), Ok(LogFormat::Json));
    }
}
