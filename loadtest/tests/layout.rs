//! The source's layering, read from the files themselves: each folder of `src/` uses only
//! the folders below it, no two modules use each other (directly or round a loop), and the
//! client knows nothing of goose. Run with `--nocapture` to see the module graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each folder and the folders it may use.
const LAYERS: [(&str, &[&str]); 6] = [
    ("client", &[]),
    ("profile", &[]),
    ("probe", &[]),
    ("measure", &["client", "profile"]),
    ("report", &["measure", "probe", "profile"]),
    ("run", &["client", "measure", "probe", "profile", "report"]),
];

/// A module (`folder/file`, or `folder` for its `mod.rs`) and the code of its file, comments
/// left out.
fn modules() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeMap::new();
    for (folder, _) in LAYERS {
        let dir = src.join(folder);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
            assert!(
                path.extension().is_some_and(|e| e == "rs"),
                "{}: one level of folders, files only",
                path.display()
            );
            let name = if stem == "mod" {
                folder.to_owned()
            } else {
                format!("{folder}/{stem}")
            };
            let text = std::fs::read_to_string(&path).unwrap();
            let code: Vec<&str> = text
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .collect();
            modules.insert(name, code.join("\n"));
        }
    }
    modules
}

/// Every `crate::a::b` path in `code`, as `(a, b)` (`b` empty for `crate::a` alone); a group
/// `crate::a::{b, c::d}` gives one pair per member.
fn crate_paths(code: &str) -> Vec<(String, String)> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut paths = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        // Not the tail of another path (`$crate::` in a macro).
        if code[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        let first = ident(rest);
        let after = rest[first.len()..].strip_prefix("::").unwrap_or("");
        let Some(group) = after.strip_prefix('{') else {
            paths.push((first, ident(after)));
            continue;
        };
        // The members of the group, split at its own commas (not those of nested groups).
        let mut depth = 0;
        let mut member = String::new();
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    paths.push((first.clone(), ident(&member)));
                    member.clear();
                    continue;
                }
                _ => {}
            }
            member.push(c);
        }
        if !ident(&member).is_empty() {
            paths.push((first.clone(), ident(&member)));
        }
    }
    paths
}

/// The module graph: each module and the modules it uses.
fn graph(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for (name, code) in modules {
        let folder = name.split('/').next().unwrap();
        let mut uses = BTreeSet::new();
        for (first, second) in crate_paths(code) {
            let file = format!("{first}/{second}");
            let target = if modules.contains_key(&file) {
                file
            } else {
                assert!(
                    first != folder || name == folder,
                    "{name} uses crate::{first}::{second}: name a module of its own folder by \
                     its file, so the file graph is complete"
                );
                first
            };
            if &target != name {
                uses.insert(target);
            }
        }
        graph.insert(name.clone(), uses);
    }
    graph
}

/// A loop through `from`, if there is one.
fn cycle_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|m| m == from) {
        let mut cycle = path[at..].to_vec();
        cycle.push(from.to_owned());
        return Some(cycle);
    }
    path.push(from.to_owned());
    for next in graph.get(from).into_iter().flatten() {
        if let Some(cycle) = cycle_from(graph, next, path) {
            return Some(cycle);
        }
    }
    path.pop();
    None
}

#[test]
fn each_folder_uses_only_the_folders_below_it() {
    let modules = modules();
    let graph = graph(&modules);
    for (name, uses) in &graph {
        let folder = name.split('/').next().unwrap();
        let allowed = LAYERS.iter().find(|(f, _)| *f == folder).unwrap().1;
        for used in uses {
            let used_folder = used.split('/').next().unwrap();
            assert!(
                used_folder == folder || allowed.contains(&used_folder),
                "{name} uses {used}: {folder} may use only {allowed:?}"
            );
        }
        eprintln!(
            "{name:<24} -> {}",
            uses.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
}

#[test]
fn no_two_modules_use_each_other() {
    let graph = graph(&modules());
    // Between files: a folder's `mod.rs` only declares and re-exports its files.
    let files: BTreeMap<String, BTreeSet<String>> = graph
        .iter()
        .map(|(name, uses)| {
            let uses = uses.iter().filter(|u| u.contains('/')).cloned().collect();
            (name.clone(), uses)
        })
        .collect();
    for name in files.keys() {
        if let Some(cycle) = cycle_from(&files, name, &mut Vec::new()) {
            panic!("a loop: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_client_knows_no_goose() {
    for (name, code) in modules() {
        if name.starts_with("client") {
            assert!(!code.contains("goose"), "{name} mentions goose");
        }
    }
}
