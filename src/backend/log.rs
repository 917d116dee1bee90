//! The `log` backend: each canonical payload as one JSON line on stdout. It needs no chat server,
//! so `make run` works anywhere, and it shows exactly what a real backend would receive.

use std::io::Write;

pub fn write(payload: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(payload)?;
    out.write_all(b"\n")?;
    out.flush()
}
