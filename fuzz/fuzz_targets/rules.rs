//! Loading any text as a rules file never panics: it is a rule set or a list of problems, each
//! with FILE:LINE or the file it is about.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::LazyLock;

/// One rules directory for this process, its file written anew for each input.
static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("hookgate-fuzz-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    std::fs::write(DIR.join("rules.toml"), text).expect("the rules file is written");
    if let Err(problems) = hookgate::delivery::load_rules(&DIR) {
        assert!(!problems.is_empty());
        for problem in problems {
            assert!(problem.at.is_some() || !problem.path.is_empty(), "a problem that points nowhere: {problem}");
        }
    }
});
