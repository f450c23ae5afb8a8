//! The server's modules depend on one another in one direction only
//! (docs/architecture.md): no top-level module of `server/src` reaches,
//! through `crate::…` paths (comments included, as a reader follows them
//! too), one that reaches back to it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules of `server/src` and, for each, the others it names.
fn module_edges(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            let name = name.strip_suffix(".rs").map(str::to_string).unwrap_or(name);
            (name != "lib" && name != "main").then_some(name)
        })
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(src) {
        let relative = file.strip_prefix(src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let me = first.to_str().unwrap().trim_end_matches(".rs").to_string();
        if !modules.contains(&me) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit tests may reach anywhere.
        let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        for other in named_modules(text) {
            if other != me && modules.contains(&other) {
                edges.entry(me.clone()).or_default().insert(other);
            }
        }
    }
    edges
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The modules a file names: `crate::x` and `use crate::{x, y…}`.
fn named_modules(text: &str) -> Vec<String> {
    let word = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut named = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            named.extend(group.split(',').map(|part| word(part.trim())));
        } else {
            named.push(word(rest));
        }
    }
    named
}

/// The modules on a cycle through `start`, if any.
fn cycle_through(edges: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        edges: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in edges.get(at).into_iter().flatten() {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(edges, start, next, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    walk(edges, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn server_modules_have_no_import_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = module_edges(&src);
    assert!(
        edges.contains_key("api") && edges.contains_key("lease"),
        "read no module edges from {}",
        src.display()
    );
    let cycles: Vec<String> = edges
        .keys()
        .filter_map(|m| cycle_through(&edges, m))
        .map(|path| format!("{} -> {}", path.join(" -> "), path[0]))
        .collect();
    assert!(cycles.is_empty(), "import cycles: {cycles:#?}");
}

#[test]
fn the_domain_modules_reach_nothing_above_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = module_edges(&src);
    let domain = [
        "job",
        "schedule",
        "queue",
        "account",
        "target_group",
        "endpoint",
    ];
    for module in domain {
        let above: Vec<&String> = edges
            .get(module)
            .into_iter()
            .flatten()
            .filter(|other| !domain.contains(&other.as_str()))
            .collect();
        assert!(above.is_empty(), "{module} names {above:?}");
    }
    let store_reaches: Vec<&String> = edges
        .get("store")
        .into_iter()
        .flatten()
        .filter(|other| !domain.contains(&other.as_str()))
        .collect();
    assert!(
        store_reaches.is_empty(),
        "store names {store_reaches:?}: it depends on the domain only"
    );
}
