//! `make deb`'s package, installed into this machine with `dpkg -i` as an operator would: the
//! binary checks the shipped rules under /etc/hookgate, the rules are conffiles, the systemd unit
//! runs as the `hookgate` system user and reloads with SIGHUP; then the package is purged again.
//! Installing needs root; anyone else gets a printed reason and the test does nothing. It changes
//! the machine, so only `make test-deb` (which CI runs) runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn is_root() -> bool {
    String::from_utf8_lossy(&run("id", &["-u"]).stdout).trim() == "0"
}

fn installed() -> bool {
    let out = run("dpkg-query", &["-W", "-f", "${Status}", "hookgate"]);
    // "install ok installed"; a purged package reads "unknown ok not-installed" or nothing.
    String::from_utf8_lossy(&out.stdout).trim() == "install ok installed"
}

/// The package `make deb` built for this version.
fn package() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debian");
    let prefix = format!("hookgate_{}-", env!("CARGO_PKG_VERSION"));
    let found = std::fs::read_dir(&dir).ok().and_then(|entries| {
        entries.filter_map(|e| e.ok().map(|e| e.path())).find(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".deb")
        })
    });
    found.unwrap_or_else(|| {
        panic!("no {prefix}*.deb in {}: `make test` builds it as root; run `make deb`", dir.display())
    })
}

/// Purges the package when the test ends, passed or not.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let out = run("dpkg", &["--purge", "hookgate"]);
        assert!(out.status.success() || std::thread::panicking(), "dpkg --purge: {}", text(&out));
    }
}

#[test]
#[ignore = "installs the package into this machine: run by make test-deb"]
fn the_package_installs_checks_its_rules_and_is_purged() {
    if !is_root() {
        println!("skipped: installing a package with dpkg -i needs root");
        return;
    }
    let deb = package();
    assert!(!installed(), "a hookgate package is already installed here; this test installs and purges its own");
    let _purge = Purge;
    let out = run("dpkg", &["-i", deb.to_str().unwrap()]);
    assert!(out.status.success(), "dpkg -i {}: {}", deb.display(), text(&out));

    let out = run("/usr/bin/hookgate", &["check", "--rules", "/etc/hookgate"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("/etc/hookgate: ok, 2 hooks, 2 backends"), "{}", text(&out));

    let conffiles = run("dpkg-query", &["-W", "-f", "${Conffiles}", "hookgate"]);
    for file in ["/etc/hookgate/gateway.toml", "/etc/hookgate/mattermost.toml"] {
        assert!(text(&conffiles).contains(file), "{file} is not a conffile: {}", text(&conffiles));
    }
    let listed = text(&run("dpkg", &["-L", "hookgate"]));
    let unit = listed.lines().find(|l| l.ends_with("/systemd/system/hookgate.service")).expect("the unit is installed");
    let unit = std::fs::read_to_string(unit).unwrap();
    for line in ["User=hookgate", "ExecReload=/bin/kill -HUP $MAINPID", "--rules /etc/hookgate"] {
        assert!(unit.contains(line), "the unit lacks {line:?}:\n{unit}");
    }
    assert!(Path::new("/usr/share/doc/hookgate/README.md").is_file());
    assert!(Path::new("/usr/share/doc/hookgate/docs/rules.md").is_file(), "the manual is installed");
    let user = text(&run("getent", &["passwd", "hookgate"]));
    let uid: u32 =
        user.split(':').nth(2).and_then(|u| u.parse().ok()).unwrap_or_else(|| panic!("no hookgate user: {user}"));
    assert!(uid < 1000, "hookgate is a system user: {user}");

    drop(_purge);
    assert!(!installed(), "purged");
    assert!(!Path::new("/usr/bin/hookgate").exists() && !Path::new("/etc/hookgate").exists());
}
