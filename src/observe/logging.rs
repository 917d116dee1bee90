//! Logs on stderr (stdout belongs to the `log` backend), as text or one JSON object per line.
//! pingora logs through the `log` crate too, so its lines come out in the same format.

use crate::pipeline::json::write_string;
use log::kv::{self, VisitSource};
use log::{LevelFilter, Log, Metadata, Record};
use std::cell::RefCell;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

struct Logger {
    format: LogFormat,
}

/// Installs the logger once for the process; later calls keep the first.
pub fn init(format: LogFormat, level: LevelFilter) {
    if log::set_boxed_logger(Box::new(Logger { format })).is_ok() {
        log::set_max_level(level);
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = STAMP.with_borrow_mut(|stamp| format_record(self.format, record, stamp.now()));
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(&line);
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

thread_local! {
    static STAMP: RefCell<Stamp> = const { RefCell::new(Stamp { second: u64::MAX, text: String::new() }) };
}

/// An RFC 3339 timestamp with milliseconds. The part up to the second is formatted once a second,
/// not for every line.
struct Stamp {
    second: u64,
    /// `2026-01-01T00:00:00.000Z`.
    text: String,
}

impl Stamp {
    fn now(&mut self) -> &str {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        if since_epoch.as_secs() != self.second {
            self.second = since_epoch.as_secs();
            self.text = humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_secs(self.second)).to_string();
        }
        // The text ends in `.mmmZ`.
        let millis = since_epoch.subsec_millis();
        let digits = [b'0' + (millis / 100) as u8, b'0' + (millis / 10 % 10) as u8, b'0' + (millis % 10) as u8];
        let at = self.text.len() - 4;
        self.text.replace_range(at..at + 3, std::str::from_utf8(&digits).unwrap_or("000"));
        &self.text
    }
}

/// One log line, written straight into one buffer: this runs for every request.
fn format_record(format: LogFormat, record: &Record, timestamp: &str) -> Vec<u8> {
    let mut line = Vec::with_capacity(256);
    match format {
        LogFormat::Text => {
            line.extend_from_slice(timestamp.as_bytes());
            line.push(b' ');
            line.extend_from_slice(record.level().as_str().as_bytes());
            line.push(b' ');
            line.extend_from_slice(record.target().as_bytes());
            line.push(b' ');
            match record.args().as_str() {
                Some(message) => line.extend_from_slice(message.as_bytes()),
                None => {
                    let _ = write!(line, "{}", record.args());
                }
            }
            let _ = record.key_values().visit(&mut TextPairs(&mut line));
        }
        LogFormat::Json => {
            line.extend_from_slice(b"{\"ts\":");
            write_string(&mut line, timestamp);
            line.extend_from_slice(b",\"level\":");
            write_string(&mut line, record.level().as_str());
            line.extend_from_slice(b",\"target\":");
            write_string(&mut line, record.target());
            line.extend_from_slice(b",\"msg\":");
            match record.args().as_str() {
                Some(message) => write_string(&mut line, message),
                None => write_string(&mut line, &record.args().to_string()),
            }
            let _ = record.key_values().visit(&mut JsonPairs(&mut line));
            line.push(b'}');
        }
    }
    line.push(b'\n');
    line
}

/// ` key=value`, quoting values that are empty or hold spaces, quotes or `=`.
struct TextPairs<'a>(&'a mut Vec<u8>);

impl<'kvs> VisitSource<'kvs> for TextPairs<'_> {
    fn visit_pair(&mut self, key: kv::Key<'kvs>, value: kv::Value<'kvs>) -> Result<(), kv::Error> {
        let line = &mut *self.0;
        line.push(b' ');
        line.extend_from_slice(key.as_str().as_bytes());
        line.push(b'=');
        match (value.to_u64(), value.to_borrowed_str()) {
            (Some(n), _) => line.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
            (None, Some(v)) if v.is_empty() || v.contains([' ', '"', '=']) => {
                let _ = write!(line, "{v:?}");
            }
            (None, Some(v)) => line.extend_from_slice(v.as_bytes()),
            (None, None) => {
                let _ = write!(line, "{value}");
            }
        }
        Ok(())
    }
}

/// `,"key":value`, numbers kept as numbers.
struct JsonPairs<'a>(&'a mut Vec<u8>);

impl<'kvs> VisitSource<'kvs> for JsonPairs<'_> {
    fn visit_pair(&mut self, key: kv::Key<'kvs>, value: kv::Value<'kvs>) -> Result<(), kv::Error> {
        let line = &mut *self.0;
        line.push(b',');
        write_string(line, key.as_str());
        line.push(b':');
        match (value.to_u64(), value.to_borrowed_str()) {
            (Some(n), _) => line.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
            (None, Some(v)) => write_string(line, v),
            (None, None) => write_string(line, &value.to_string()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: LogFormat) -> String {
        let kvs: [(&str, kv::Value); 3] =
            [("request_id", "abc".into()), ("status", 200u64.into()), ("reason", "no text".into())];
        let record = Record::builder()
            .level(log::Level::Info)
            .target("hookgate::request")
            .args(format_args!("request"))
            .key_values(&kvs)
            .build();
        String::from_utf8(format_record(format, &record, "2026-01-01T00:00:00.000Z")).unwrap()
    }

    #[test]
    fn text_lines_quote_values_with_spaces() {
        assert_eq!(
            render(LogFormat::Text),
            "2026-01-01T00:00:00.000Z INFO hookgate::request request request_id=abc status=200 reason=\"no text\"\n"
        );
    }

    #[test]
    fn json_lines_keep_numbers() {
        let v: serde_json::Value = serde_json::from_str(&render(LogFormat::Json)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "ts": "2026-01-01T00:00:00.000Z", "level": "INFO", "target": "hookgate::request",
                "msg": "request", "request_id": "abc", "status": 200, "reason": "no text"
            })
        );
    }

    #[test]
    fn timestamps_keep_milliseconds_across_seconds() {
        let mut stamp = Stamp { second: u64::MAX, text: String::new() };
        for _ in 0..3 {
            let before = SystemTime::now();
            let text = stamp.now().to_owned();
            let parsed = humantime::parse_rfc3339(&text).unwrap();
            assert_eq!(text.len(), "2026-01-01T00:00:00.000Z".len(), "{text}");
            let early = before.duration_since(parsed).unwrap_or_default();
            assert!(early < Duration::from_millis(2), "{text} is {early:?} before the clock");
            std::thread::sleep(Duration::from_millis(600));
        }
    }
}
