//! No two modules of `src/` import each other in a circle (docs/architecture.md, "The corridor").
//! A module is a file (`foo.rs` and `foo/mod.rs` are both `foo`); it imports another when a
//! `crate::` or `super::` path in it names that module or something inside it. A module naming
//! its own ancestor or descendant is ordinary Rust and not counted, and neither are the imports
//! of `#[cfg(test)]` modules: tests may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

/// Every module of the tree under `src` with its source.
fn modules(src: &Path) -> BTreeMap<Module, String> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: Module = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if module.last().is_some_and(|last| last == "mod") || module == ["lib"] || module == ["main"] {
                module.pop();
            }
            found.insert(module, std::fs::read_to_string(&path).unwrap());
        }
    }
    found
}

/// The source without comments and without `#[cfg(test)]` modules.
fn code(source: &str) -> String {
    let mut out = String::new();
    for line in source.lines() {
        let line = line.split("//").next().unwrap_or("");
        out.push_str(line);
        out.push('\n');
    }
    let mut kept = String::new();
    let mut rest = out.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        kept.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let trimmed = after.trim_start();
        if !trimmed.starts_with("mod ") {
            kept.push_str("#[cfg(test)]");
            rest = after;
            continue;
        }
        let Some(open) = after.find('{') else { break };
        let mut depth = 0;
        let mut end = after.len();
        for (i, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    kept.push_str(rest);
    kept
}

/// The paths a use tree starting at `text` names, each as its segments: `a::{b, c::d}` is
/// `a::b` and `a::c::d`. Returns them and how many bytes the tree took.
fn use_tree(text: &str) -> (Vec<Vec<String>>, usize) {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut prefix = Vec::new();
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'{' {
            i += 1;
            let mut paths = Vec::new();
            loop {
                let (inner, used) = use_tree(&text[i..]);
                i += used;
                let renamed = text[i..].trim_start();
                if let Some(alias) = renamed.strip_prefix("as ") {
                    let alias = alias.trim_start();
                    let length = alias.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(alias.len());
                    i = text.len() - alias.len() + length;
                }
                for path in inner {
                    paths.push(prefix.iter().cloned().chain(path.into_iter().filter(|s| s != "self")).collect());
                }
                while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b',') {
                    i += 1;
                }
                if i >= bytes.len() || bytes[i] == b'}' {
                    return (paths, (i + 1).min(bytes.len()));
                }
            }
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        if i == start {
            return (vec![prefix], i);
        }
        prefix.push(text[start..i].to_owned());
        if text[i..].starts_with("::") {
            i += 2;
        } else {
            return (vec![prefix], i);
        }
    }
}

/// Which modules each module imports.
fn imports(modules: &BTreeMap<Module, String>) -> BTreeMap<Module, BTreeSet<Module>> {
    let resolve =
        |path: &[String]| (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|m| modules.contains_key(m));
    let root = regex::Regex::new(r"\b(crate|super(?:::super)*)::").unwrap();
    let mut edges = BTreeMap::new();
    for (module, source) in modules {
        let code = code(source);
        let mut targets = BTreeSet::new();
        for found in root.captures_iter(&code) {
            let whole = found.get(0).unwrap();
            let ups = found[1].matches("super").count();
            let base: Module = if &found[1] == "crate" { Vec::new() } else { module[..module.len() - ups].to_vec() };
            for path in use_tree(&code[whole.end()..]).0 {
                let full: Vec<String> = base.iter().cloned().chain(path).collect();
                let Some(target) = resolve(&full) else { continue };
                let related = target.starts_with(module) || module.starts_with(&target);
                if !related {
                    targets.insert(target);
                }
            }
        }
        edges.insert(module.clone(), targets);
    }
    edges
}

/// The sets of two or more modules that import each other, through any number of steps.
fn circles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    // Two modules are in one circle when each reaches the other.
    let reach = |from: &Module| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(m) = todo.pop() {
            for next in edges.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&Module, BTreeSet<Module>> = edges.keys().map(|m| (m, reach(m))).collect();
    let mut placed = BTreeSet::new();
    let mut found = Vec::new();
    for (module, reached) in &reaches {
        if placed.contains(*module) || !reached.contains(*module) {
            continue;
        }
        let circle: Vec<Module> = reached.iter().filter(|other| reaches[other].contains(*module)).cloned().collect();
        placed.extend(circle.iter().cloned());
        found.push(circle);
    }
    found
}

fn name(module: &Module) -> String {
    if module.is_empty() {
        "crate".into()
    } else {
        module.join("::")
    }
}

#[test]
fn no_two_modules_import_each_other_in_a_circle() {
    let modules = modules(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let edges = imports(&modules);
    // The checker sees imports at all: the listener hands bodies to the pipeline.
    let server = ["ingress", "server"].map(String::from).to_vec();
    assert!(edges[&server].contains(&vec!["pipeline".to_owned()]), "{:?}", edges[&server]);
    let found = circles(&edges);
    let report: Vec<String> = found
        .iter()
        .map(|circle| {
            let within: Vec<String> = circle
                .iter()
                .flat_map(|a| edges[a].iter().filter(|b| circle.contains(b)).map(move |b| (a, b)))
                .map(|(a, b)| format!("{} -> {}", name(a), name(b)))
                .collect();
            format!("circle: {}", within.join(", "))
        })
        .collect();
    assert!(found.is_empty(), "{}", report.join("\n"));
}

#[test]
fn use_trees_name_each_path() {
    let (paths, _) = use_tree("a::{b, c::{self, d}, e as f};");
    let paths: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(paths, ["a::b", "a::c", "a::c::d", "a::e"]);
    let (paths, _) = use_tree("rules::Rules) -> x");
    assert_eq!(paths, [["rules", "Rules"]]);
}

#[test]
fn a_circle_is_found() {
    let source = |uses: &str| uses.to_owned();
    let modules: BTreeMap<Module, String> = [
        (vec!["a".to_owned()], source("use crate::b::Thing;")),
        (vec!["b".to_owned()], source("use crate::c;")),
        (vec!["c".to_owned()], source("fn f() { crate::a::g() }")),
        (vec!["d".to_owned()], source("use crate::a;\n#[cfg(test)]\nmod tests { use crate::d; }")),
    ]
    .into_iter()
    .collect();
    let found = circles(&imports(&modules));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].iter().map(name).collect::<Vec<_>>(), ["a", "b", "c"]);
}
