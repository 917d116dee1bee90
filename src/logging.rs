//! Logs on stderr (stdout belongs to the `log` backend), as text or one JSON object per line.
//! pingora logs through the `log` crate too, so its lines come out in the same format.

use log::kv::{self, VisitSource};
use log::{LevelFilter, Log, Metadata, Record};
use std::fmt::{self, Write as _};
use std::io::Write;

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
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        let line = format_record(self.format, record, &now);
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// One log line, written straight into one buffer: this runs for every request.
fn format_record(format: LogFormat, record: &Record, timestamp: &dyn fmt::Display) -> String {
    let mut line = String::with_capacity(256);
    match format {
        LogFormat::Text => {
            let _ = write!(line, "{timestamp} {} {} {}", record.level(), record.target(), record.args());
            let _ = record.key_values().visit(&mut TextPairs(&mut line));
        }
        LogFormat::Json => {
            line.push_str("{\"ts\":");
            json_string(&mut line, &timestamp.to_string());
            line.push_str(",\"level\":");
            json_string(&mut line, record.level().as_str());
            line.push_str(",\"target\":");
            json_string(&mut line, record.target());
            line.push_str(",\"msg\":");
            json_string(&mut line, &record.args().to_string());
            let _ = record.key_values().visit(&mut JsonPairs(&mut line));
            line.push('}');
        }
    }
    line.push('\n');
    line
}

/// ` key=value`, quoting values that are empty or hold spaces, quotes or `=`.
struct TextPairs<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for TextPairs<'_> {
    fn visit_pair(&mut self, key: kv::Key<'kvs>, value: kv::Value<'kvs>) -> Result<(), kv::Error> {
        let line = &mut *self.0;
        let _ = write!(line, " {key}=");
        match value.to_borrowed_str() {
            Some(v) if v.is_empty() || v.contains([' ', '"', '=']) => {
                let _ = write!(line, "{v:?}");
            }
            Some(v) => line.push_str(v),
            None => {
                let _ = write!(line, "{value}");
            }
        }
        Ok(())
    }
}

/// `,"key":value`, numbers kept as numbers.
struct JsonPairs<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for JsonPairs<'_> {
    fn visit_pair(&mut self, key: kv::Key<'kvs>, value: kv::Value<'kvs>) -> Result<(), kv::Error> {
        let line = &mut *self.0;
        line.push(',');
        json_string(line, key.as_str());
        line.push(':');
        match (value.to_u64(), value.to_borrowed_str()) {
            (Some(n), _) => {
                let _ = write!(line, "{n}");
            }
            (None, Some(v)) => json_string(line, v),
            (None, None) => json_string(line, &value.to_string()),
        }
        Ok(())
    }
}

fn json_string(line: &mut String, s: &str) {
    // Serialising a str cannot fail.
    line.push_str(&serde_json::to_string(s).unwrap_or_default());
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
        format_record(format, &record, &"2026-01-01T00:00:00.000Z")
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
}
