//! A generated rule set of 20,000 hooks loads whole and right, and a duplicate among them is
//! reported with both places. Only what was loaded is asserted; how long it takes belongs to
//! `benches/rules_scale.sh`, but a loader that compares every hook with every other would make
//! this test take minutes.

use hookgate::delivery::load_rules;
use hookgate::rules::keys::{digest, format_digest};

const HOOKS: usize = 20_000;
/// Lines each generated hook takes, blank line included.
const LINES_PER_HOOK: usize = 7;
const HEADER_LINES: usize = 4;

fn hook(i: usize) -> String {
    format!(
        "[[hooks]]\nname = \"hook-{i}\"\nkey = \"{}\"\nbackend = \"chat\"\nbackend_key = \"bk{i}\"\nchannel = \"chan-{}\"\n\n",
        format_digest(&digest(&format!("key-{i}"))),
        i % 100
    )
}

fn rules() -> String {
    let mut text = String::from("[backends.chat]\nkind = \"mattermost\"\nurl = \"http://127.0.0.1:8066\"\n\n");
    for i in 0..HOOKS {
        text.push_str(&hook(i));
    }
    text
}

/// The line of hook `i`'s `name` in the generated file.
fn name_line(i: usize) -> usize {
    HEADER_LINES + i * LINES_PER_HOOK + 2
}

#[test]
fn twenty_thousand_hooks_load_whole() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hooks.toml"), rules()).unwrap();
    let rules = load_rules(dir.path()).unwrap();
    assert_eq!(rules.hooks.len(), HOOKS);
    assert_eq!(rules.backends.len(), 1);
    assert!(rules.warnings.is_empty(), "{:?}", &rules.warnings[..rules.warnings.len().min(3)]);
    for i in [0, 1, 9_999, 12_345, HOOKS - 1] {
        let hook = rules.hook_by_digest(&digest(&format!("key-{i}"))).unwrap_or_else(|| panic!("hook {i}"));
        assert_eq!(hook.name, format!("hook-{i}"));
        assert_eq!(hook.backend, "chat");
        assert_eq!(hook.policy.defaults.channel, format!("chan-{}", i % 100));
    }
    assert!(rules.hook_by_digest(&digest(&format!("key-{HOOKS}"))).is_none());
}

#[test]
fn a_duplicate_among_twenty_thousand_names_both_places() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), rules()).unwrap();
    // A second file repeating one hook's name, and another hook's key under a new name.
    let repeat = hook(17_000).replace(&format_digest(&digest("key-17000")), &format_digest(&digest("other-key")));
    let key_of_5 = hook(5).replace("hook-5\"", "hook-new\"");
    std::fs::write(dir.path().join("b.toml"), format!("{repeat}{key_of_5}")).unwrap();
    let problems: Vec<String> = load_rules(dir.path())
        .unwrap_err()
        .iter()
        .map(|p| p.to_string().replace(&format!("{}/", dir.path().display()), ""))
        .collect();
    assert_eq!(
        problems,
        vec![
            format!("b.toml:2: hook `hook-17000` is defined twice; first at a.toml:{}", name_line(17_000)),
            format!("b.toml:10: hook `hook-new` has the same key as hook `hook-5` at a.toml:{}", name_line(5)),
        ]
    );
}
