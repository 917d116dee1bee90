//! The command line: `serve`, `check`, `hash-key` (README.md, "Commands"), `spool`
//! (docs/spool.md) and `tls` (docs/slack-hosts.md).

mod spool;
mod tls;

use crate::active::Active;
use crate::delivery;
use crate::ingress::admin::Admin;
use crate::ingress::reload::Reloader;
use crate::ingress::server::WebhookService;
use crate::observe::logging::{self, LogFormat};
use crate::observe::metrics::Metrics;
use crate::rules::keys;
use crate::rules::Rules;
use crate::tls::listener::{self, ServingCertificate};
use arc_swap::ArcSwap;
use clap::{Parser, Subcommand};
use pingora::listeners::ListenerConfig;
use pingora::protocols::l4::stream::{L4BufferSettings, DEFAULT_L4_WRITE_BUFFER_SIZE};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::Server;
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "hookgate",
    version,
    about = "A gateway for Slack-style incoming webhooks in front of a chat server (Mattermost, Matrix)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway on the rules directory.
    Serve {
        /// Rules directory: every *.toml in it is loaded.
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// Webhook listener address (overrides [gateway] listen); port 0 picks a free port.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Admin listener address (overrides [gateway] admin_listen).
        #[arg(long)]
        admin_listen: Option<SocketAddr>,
        /// Log line format on stderr.
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
        /// Least severe log level shown: error, warn, info, debug or trace.
        #[arg(long, default_value = "info", value_parser = parse_level)]
        log_level: log::LevelFilter,
        /// Take over the listening sockets of a running hookgate (graceful upgrade); send the old
        /// process SIGQUIT to hand them over.
        #[arg(long)]
        upgrade: bool,
        /// Run in the background (pingora's daemon mode).
        #[arg(long)]
        daemon: bool,
        /// Pid file, used by daemon mode and upgrades.
        #[arg(long, default_value = "/tmp/hookgate.pid")]
        pid_file: String,
        /// Unix socket through which an upgrade hands over the listening sockets.
        #[arg(long, default_value = "/tmp/hookgate_upgrade.sock")]
        upgrade_sock: String,
    },
    /// Load and validate the rules; print every problem as FILE:LINE: message.
    Check {
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
    },
    /// Print the sha256: digest of a hook key, for storing keys as digests (reads stdin without KEY).
    HashKey { key: Option<String> },
    /// Inspect and repair a running gateway's spool through its admin listener.
    Spool {
        #[command(subcommand)]
        action: spool::Action,
        /// The gateway's admin listener.
        #[arg(long, default_value = "127.0.0.1:9465", global = true)]
        admin: String,
    },
    /// Certificates for the HTTPS listener.
    Tls {
        #[command(subcommand)]
        action: tls::Action,
    },
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    match Cli::parse().command {
        Command::Serve {
            rules,
            listen,
            admin_listen,
            log_format,
            log_level,
            upgrade,
            daemon,
            pid_file,
            upgrade_sock,
        } => {
            logging::init(log_format, log_level);
            let process = Process { upgrade, daemon, pid_file, upgrade_sock };
            serve(&rules, listen, admin_listen, process)
        }
        Command::Check { rules } => check(&rules),
        Command::HashKey { key } => hash_key(key),
        Command::Spool { action, admin } => spool::run(action, &admin),
        Command::Tls { action } => tls::run(action),
    }
}

fn check(dir: &Path) -> i32 {
    match delivery::load_rules(dir) {
        Ok(rules) => {
            for w in &rules.warnings {
                println!("{w}");
            }
            println!("{}: ok, {} hooks, {} backends", dir.display(), rules.hooks.len(), rules.backends.len());
            0
        }
        Err(problems) => {
            for p in problems {
                println!("{p}");
            }
            1
        }
    }
}

fn hash_key(key: Option<String>) -> i32 {
    let key = match key {
        Some(k) => k,
        None => {
            let mut s = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut s) {
                eprintln!("hookgate: cannot read stdin: {e}");
                return 2;
            }
            s.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if key.is_empty() {
        eprintln!("hookgate: the key is empty");
        return 2;
    }
    println!("{}", keys::format_digest(&keys::digest(&key)));
    0
}

/// How the process runs, passed on to pingora.
struct Process {
    upgrade: bool,
    daemon: bool,
    pid_file: String,
    upgrade_sock: String,
}

fn serve(dir: &Path, listen: Option<SocketAddr>, admin_listen: Option<SocketAddr>, process: Process) -> i32 {
    let mut rules: Rules = match delivery::load_rules(dir) {
        Ok(r) => r,
        Err(problems) => {
            for p in problems {
                log::error!("{p}");
            }
            return 1;
        }
    };
    for w in &rules.warnings {
        log::warn!(target: "hookgate", "{w}");
    }
    if let Some(addr) = listen {
        rules.gateway.listen = Some(addr.to_string());
    }
    if let Some(addr) = admin_listen {
        rules.gateway.admin_listen = addr.to_string();
    }
    if let Err(e) = rules.gateway.check_admin_listen() {
        log::error!("{e}");
        return 1;
    }
    let gateway = &rules.gateway;
    let addresses = (
        gateway.listen.as_deref().map(concrete_address).transpose(),
        gateway.tls.as_ref().map(|tls| concrete_address(&tls.listen)).transpose(),
        concrete_address(&gateway.admin_listen),
    );
    let (plain, secure, admin) = match addresses {
        (Ok(plain), Ok(secure), Ok(admin)) => (plain, secure, admin),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            let listeners: Vec<_> = gateway.webhook_listeners().chain([gateway.admin_listen.as_str()]).collect();
            log::error!("cannot listen on {}: {e}", listeners.join(", "));
            return 1;
        }
    };
    // Ready means the first webhook listener accepts; the loader makes sure there is one.
    let Some(first) = plain.or(secure) else {
        log::error!("no webhook listener: set listen or listen_tls");
        return 1;
    };
    let conf = ServerConf {
        threads: 1,
        // One current-thread runtime per thread costs about a fifth less CPU per request.
        work_stealing: false,
        grace_period_seconds: Some(1),
        graceful_shutdown_timeout_seconds: Some(5),
        pid_file: process.pid_file,
        upgrade_sock: process.upgrade_sock,
        ..ServerConf::default()
    };
    let opt = Opt { upgrade: process.upgrade, daemon: process.daemon, ..Opt::default() };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    log::info!(
        target: "hookgate",
        rules = dir.display().to_string().as_str(),
        hooks = rules.hooks.len() as u64,
        backends = rules.backends.len() as u64,
        listen = plain.map(|a| a.to_string()).unwrap_or_default().as_str(),
        listen_tls = secure.map(|a| a.to_string()).unwrap_or_default().as_str(),
        admin = admin.to_string().as_str();
        "listening"
    );
    let metrics = Arc::new(Metrics::new());
    // A spool that cannot keep what it would acknowledge must not start.
    let spool = match rules.spool.as_ref().map(|settings| crate::spool::open(settings, &metrics)).transpose() {
        Ok(spool) => spool,
        Err(e) => {
            log::error!("the spool cannot be used, not starting: {e}");
            return 1;
        }
    };
    let serving = rules.gateway.tls.as_ref().and_then(|tls| {
        metrics.tls_cert_expiry(tls);
        tls.serving().map(|certificates| Arc::new(ServingCertificate::new(certificates)))
    });
    let active = match Active::new(rules, &metrics, None) {
        Ok(active) => Arc::new(ArcSwap::from_pointee(active)),
        Err(e) => {
            log::error!("the rules cannot be served, not starting: {e}");
            return 1;
        }
    };
    let reloader = Reloader::new(dir.to_owned(), active.clone(), metrics.clone(), serving.clone());
    server.add_service(background_service("rules reloader", reloader));
    if let Some(spool) = &spool {
        server.add_service(background_service("spool delivery", spool.clone().worker(active.clone(), metrics.clone())));
    }
    let webhook_service = WebhookService::new(active.clone(), metrics.clone(), spool.clone());
    let mut webhooks = Service::new("hookgate webhooks".into(), webhook_service);
    if let Some(addr) = plain {
        webhooks.add_listener(unbuffered(addr));
    }
    if let (Some(addr), Some(certificate)) = (secure, serving) {
        webhooks.add_listener(unbuffered(addr).tls(listener::settings(certificate)));
    }
    server.add_service(webhooks);
    let mut admin_service = Service::new("hookgate admin".into(), Admin::new(metrics, active, spool, first));
    admin_service.add_tcp(&admin.to_string());
    server.add_service(admin_service);
    server.run_forever()
}

/// A webhook listener whose connections read straight into the HTTP parser's buffer (or
/// rustls's), without pingora's 64 KiB read buffer in front of it: a request is read in as many
/// reads either way, and each of 1,000 open connections held about 4 KiB of that buffer
/// (docs/performance.md, "Connections").
fn unbuffered(addr: SocketAddr) -> ListenerConfig {
    ListenerConfig::tcp(addr.to_string()).l4_buffer(L4BufferSettings::new(0, DEFAULT_L4_WRITE_BUFFER_SIZE))
}

/// Resolves port 0 to a free port now, so the address can be logged and connected to.
fn concrete_address(addr: &str) -> std::io::Result<SocketAddr> {
    let addr: SocketAddr = addr.parse().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    if addr.port() != 0 {
        return Ok(addr);
    }
    TcpListener::bind(addr)?.local_addr()
}

fn parse_level(s: &str) -> Result<log::LevelFilter, String> {
    s.parse().map_err(|_| format!("{s:?} is not one of off, error, warn, info, debug, trace"))
}
