//! Logs on stderr (stdout belongs to the `log` backend), as text or one JSON object per line.
//! pingora logs through the `log` crate too, so its lines come out in the same format.

use log::kv::{self, VisitSource};
use log::{LevelFilter, Log, Metadata, Record};
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
        let line = format_record(
            self.format,
            record,
            &humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        );
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

fn format_record(format: LogFormat, record: &Record, timestamp: &str) -> String {
    let mut pairs = Pairs(Vec::new());
    let _ = record.key_values().visit(&mut pairs);
    match format {
        LogFormat::Text => {
            let mut line = format!("{timestamp} {} {} {}", record.level(), record.target(), record.args());
            for (k, v) in &pairs.0 {
                let v = plain(v);
                if v.is_empty() || v.contains([' ', '"', '=']) {
                    line.push_str(&format!(" {k}={v:?}"));
                } else {
                    line.push_str(&format!(" {k}={v}"));
                }
            }
            line.push('\n');
            line
        }
        LogFormat::Json => {
            let mut obj = serde_json::Map::new();
            obj.insert("ts".into(), timestamp.into());
            obj.insert("level".into(), record.level().as_str().into());
            obj.insert("target".into(), record.target().into());
            obj.insert("msg".into(), record.args().to_string().into());
            for (k, v) in pairs.0 {
                obj.insert(k, v);
            }
            let mut line = serde_json::Value::Object(obj).to_string();
            line.push('\n');
            line
        }
    }
}

/// Key-value pairs of a record, numbers kept as numbers for JSON.
struct Pairs(Vec<(String, serde_json::Value)>);

impl<'kvs> VisitSource<'kvs> for Pairs {
    fn visit_pair(&mut self, key: kv::Key<'kvs>, value: kv::Value<'kvs>) -> Result<(), kv::Error> {
        let v = match value.to_u64() {
            Some(n) => serde_json::Value::from(n),
            None => serde_json::Value::String(value.to_string()),
        };
        self.0.push((key.as_str().to_owned(), v));
        Ok(())
    }
}

/// A value as text, strings without their JSON quotes.
fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
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
        format_record(format, &record, "2026-01-01T00:00:00.000Z")
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
