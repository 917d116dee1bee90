//! The manual stays true to the repository: every relative link in `README.md` and `docs/` leads
//! to a file that exists and, with a `#fragment`, to a heading in it; every repository path
//! written in backquotes exists; every `make TARGET` is a target of the Makefile; every
//! `hookgate COMMAND` is a command of the binary.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every page of docs/.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// The text outside fenced code blocks.
fn prose(text: &str) -> String {
    let mut fenced = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as dashes.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(page: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(page).unwrap();
    prose(&text)
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|line| anchor(line.trim_start_matches('#')))
        .collect()
}

/// Markdown links `[text](target)` of a page's prose, outside code spans.
fn links(text: &str) -> Vec<String> {
    let span = regex::Regex::new(r"`[^`\n]+`").unwrap();
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let prose = prose(text);
    let outside = span.replace_all(&prose, "");
    link.captures_iter(&outside).map(|c| c[1].to_owned()).collect()
}

/// Backquoted spans of a page's prose.
fn spans(text: &str) -> Vec<String> {
    let span = regex::Regex::new(r"`([^`\n]+)`").unwrap();
    span.captures_iter(&prose(text)).map(|c| c[1].to_owned()).collect()
}

#[test]
fn links_lead_to_files_and_headings_that_exist() {
    let mut dead = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for target in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let file = if file.is_empty() { page.clone() } else { page.parent().unwrap().join(file) };
            if !file.exists() {
                dead.push(format!("{}: {target}: no such file", page.display()));
            } else if !fragment.is_empty() && !anchors(&file).contains(fragment) {
                dead.push(format!("{}: {target}: no such heading", page.display()));
            }
        }
    }
    assert!(dead.is_empty(), "{}", dead.join("\n"));
}

/// Paths the pages name that `make test` creates, so a fresh checkout does not have them yet.
const MADE_BY_MAKE: &[&str] = &["tests/clients/node_modules"];

#[test]
fn paths_make_targets_and_commands_are_current() {
    let makefile = std::fs::read_to_string(root().join("Makefile")).unwrap();
    let targets: BTreeSet<&str> =
        makefile.lines().filter_map(|l| l.split_once(':').map(|(t, _)| t)).filter(|t| !t.contains(' ')).collect();
    let help = Command::new(env!("CARGO_BIN_EXE_hookgate")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let commands: BTreeSet<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(commands.contains("serve") && commands.contains("check"), "{help}");
    let path = regex::Regex::new(r"^(src|tests|benches|rules|docs|packaging|fuzz|\.ci)/[\w./-]*$").unwrap();
    let mut stale = Vec::new();
    let mut seen_paths = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for span in spans(&text) {
            let words: Vec<&str> = span.split_whitespace().collect();
            match words.as_slice() {
                ["make", target, ..] if !targets.contains(target) => {
                    stale.push(format!("{}: `{span}`: no such make target", page.display()));
                }
                ["hookgate", command, ..]
                    if command.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !commands.contains(command) =>
                {
                    stale.push(format!("{}: `{span}`: no such hookgate command", page.display()));
                }
                [one] if path.is_match(one) => {
                    seen_paths += 1;
                    let made = MADE_BY_MAKE.iter().any(|made| one.trim_end_matches('/') == *made);
                    if !made && !root().join(one.trim_end_matches('/')).exists() {
                        stale.push(format!("{}: `{span}`: no such path", page.display()));
                    }
                }
                _ => {}
            }
        }
    }
    assert!(seen_paths > 50, "the check saw {seen_paths} paths: the pattern no longer matches the pages");
    assert!(stale.is_empty(), "{}", stale.join("\n"));
}

#[test]
fn anchors_are_made_as_github_makes_them() {
    assert_eq!(
        anchor(" Upgrading the binary: pingora's graceful upgrade"),
        "upgrading-the-binary-pingoras-graceful-upgrade"
    );
    assert_eq!(anchor("End to end against nginx (`benches/e2e.sh`)"), "end-to-end-against-nginx-benchese2esh");
}

/// Comments point into the manual as `docs/PAGE.md` or `docs/PAGE.md, "Heading"`: both must exist.
#[test]
fn comments_point_at_pages_and_headings_that_exist() {
    let pointer = regex::Regex::new(r#"\b(docs/[\w-]+\.md|README\.md)(?:, "([^"]+)")?"#).unwrap();
    let mut dead = Vec::new();
    let mut seen = 0;
    let mut dirs = vec![root().join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // A pointer may be cut across two comment lines: join them first.
            let joined = text
                .lines()
                .map(|l| l.trim_start().trim_start_matches('/').trim_start_matches('!'))
                .collect::<Vec<_>>()
                .join(" ");
            for found in pointer.captures_iter(&joined) {
                seen += 1;
                let page = root().join(&found[1]);
                if !page.exists() {
                    dead.push(format!("{}: {}: no such page", path.display(), &found[1]));
                } else if let Some(heading) = found.get(2) {
                    if !anchors(&page).contains(&anchor(heading.as_str())) {
                        dead.push(format!(
                            "{}: {}, \"{}\": no such heading",
                            path.display(),
                            &found[1],
                            heading.as_str()
                        ));
                    }
                }
            }
        }
    }
    assert!(seen > 30, "only {seen} pointers into the manual found");
    assert!(dead.is_empty(), "{}", dead.join("\n"));
}
