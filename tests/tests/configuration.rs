//! docs/configuration.md against what the programs accept. A program given
//! a key it does not know refuses it and names the keys it takes, so each
//! program is asked about each of its sections, and the page must document
//! exactly those keys: it cannot drift from the code.

use elkservice_e2e::binary;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

const PAGE: &str = include_str!("../../docs/configuration.md");
const PROGRAMS: [&str; 4] = [
    "elkservice-api",
    "elkservice-writer",
    "elkservice-watcher",
    "elkservice-notifier",
];

/// The names in "expected one of `a`, `b`, …" of a program that was given
/// `toml` as its config file.
fn accepted(program: &str, toml: &str) -> BTreeSet<String> {
    let dir = std::env::temp_dir().join(format!("elk-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{program}.toml"));
    std::fs::write(&file, toml).unwrap();
    let out = Command::new(binary(program))
        .arg("--config")
        .arg(&file)
        .env_clear()
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{program} took {toml:?}: {err}");
    let list = err
        .split_once("expected one of ")
        .or_else(|| err.split_once("expected "))
        .unwrap_or_else(|| panic!("{program} does not name what it takes: {err}"))
        .1;
    let list = list.split(" for key").next().unwrap();
    list.split(", ")
        .map(|name| name.trim().trim_matches('`').to_owned())
        .collect()
}

/// `section.key` names in the first column of the page's tables.
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in PAGE.lines().filter(|l| l.starts_with("| `")) {
        let first = line.split('|').nth(1).unwrap();
        for name in first.split('`').skip(1).step_by(2) {
            if let Some((section, key)) = name.split_once('.') {
                keys.entry(section.to_owned())
                    .or_default()
                    .insert(key.to_owned());
            }
        }
    }
    keys
}

#[test]
fn the_configuration_page_names_every_key_the_programs_take_and_no_other() {
    let mut taken: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for program in PROGRAMS {
        for section in accepted(program, "zz_not_a_section = 1\n") {
            // Services to watch are described with the watcher (docs/watcher.md).
            if section == "services" {
                assert!(PAGE.contains("`[[services]]`"), "the page points to them");
                continue;
            }
            let keys = accepted(program, &format!("[{section}]\nzz_not_a_key = 1\n"));
            taken.entry(section).or_default().extend(keys);
        }
    }
    assert!(taken["api"].contains("listen") && taken["amqp"].contains("url"));
    let documented = documented();
    let mut wrong = Vec::new();
    for section in taken
        .keys()
        .chain(documented.keys())
        .collect::<BTreeSet<_>>()
    {
        let (code, page) = (taken.get(section), documented.get(section));
        let empty = BTreeSet::new();
        let (code, page) = (code.unwrap_or(&empty), page.unwrap_or(&empty));
        for key in code.difference(page) {
            wrong.push(format!("{section}.{key} is taken but not documented"));
        }
        for key in page.difference(code) {
            wrong.push(format!(
                "{section}.{key} is documented but no program takes it"
            ));
        }
    }
    assert!(wrong.is_empty(), "docs/configuration.md: {wrong:#?}");
}
