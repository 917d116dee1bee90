//! `hookgate tls internal-ca`: the CA and leaf of `tls/internal_ca.rs`, and what to do with them.

use crate::tls::internal_ca::{self, SLACK_NAMES};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum Action {
    /// Make a CA in DIR (or reuse the one there) and a leaf it signs for NAMES, and print the
    /// rules lines that serve it (docs/slack-hosts.md). Only for networks you administer.
    InternalCa {
        /// Where the CA and the leaf are written; created when missing.
        #[arg(long)]
        dir: PathBuf,
        /// The DNS names the leaf is for, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = SLACK_NAMES.map(String::from))]
        names: Vec<String>,
    },
}

/// Exit code 0 when the files were written, 1 otherwise.
pub fn run(action: Action) -> i32 {
    let Action::InternalCa { dir, names } = action;
    let issued = match internal_ca::issue(&dir, &names, time::OffsetDateTime::now_utc()) {
        Ok(issued) => issued,
        Err(e) => {
            eprintln!("hookgate: {e}");
            return 1;
        }
    };
    let made = if issued.ca_made { "made" } else { "reused" };
    println!("CA ({made}): {}", issued.ca_cert.display());
    println!("  its key stays beside it (mode 0600); copy only the certificate to the machines that send.");
    println!("leaf for {}: {}", issued.names.join(", "), issued.leaf_cert.display());
    println!("  key {} (mode 0600), valid until {}", issued.leaf_key.display(), issued.leaf_not_after.date());
    println!();
    println!("Add to the rules (and send hookgate SIGHUP when it is running):");
    println!();
    println!("[gateway]");
    println!("listen_tls = \"0.0.0.0:443\"");
    println!(
        "tls_certs = [{{ cert = {:?}, key = {:?} }}]",
        issued.leaf_cert.display().to_string(),
        issued.leaf_key.display().to_string()
    );
    println!();
    println!(
        "Then point {} at this machine in your DNS and trust {} on the clients' machines",
        issued.names.join(" and "),
        issued.ca_cert.display()
    );
    println!("(docs/slack-hosts.md). Do this only on networks you administer.");
    0
}
