//! The project's shape, checked on every `make test` (docs/ARCHITECTURE.md describes it):
//! - no import cycles between the top-level modules of any crate: an edge A -> B is a
//!   `crate::B` path (use lines, paths, docs) in a file of module A, tests excluded;
//! - command-line types stay in the binaries: no `clap` in library modules;
//! - no source file holds more than 400 lines of code (its tests excluded) unless it is
//!   listed below with the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use pagan_e2e::repo;

/// The crates' source folders and their binary-only modules (a binary's `main.rs` and the
/// modules it declares: clap lives there).
const CRATES: [(&str, &[&str]); 3] = [
    ("trainer/src", &["main.rs", "cli"]),
    ("server/src", &["main.rs", "cli.rs"]),
    ("shared/src", &[]),
];

/// Files allowed past the size limit, and why.
const LONG_FILES: [(&str, &str); 0] = [];

const MAX_CODE_LINES: usize = 400;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file: everything before its unit tests.
fn code(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap_or(text)
}

/// The top-level module a file belongs to (`None` for the crate roots).
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    let name = first.trim_end_matches(".rs").to_owned();
    (!(name == "main" || name == "lib") || rel.components().count() > 1).then_some(name)
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The modules a file names through `crate::` (`crate::a::b`, `use crate::{a, b::c}`), and
/// through `super::` when the file sits at the crate root (there `super` is the crate).
fn named_modules(text: &str, root_level: bool) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut prefixes = vec!["crate::"];
    if root_level {
        prefixes.push("super::");
    }
    for prefix in prefixes {
        for (at, _) in text.match_indices(prefix) {
            let rest = &text[at + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // A use group: the first identifier of each top-level item.
                let (mut depth, mut item_start) = (0usize, 0usize);
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            out.insert(ident(group[item_start..i].trim()));
                            break;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            out.insert(ident(group[item_start..i].trim()));
                            item_start = i + 1;
                        }
                        _ => {}
                    }
                }
            } else {
                out.insert(ident(rest));
            }
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let i = t.index.len();
        t.index.insert(v, i);
        t.low.insert(v, i);
        t.stack.push(v);
        t.on.insert(v);
        let edges = t.edges;
        for w in edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(lw));
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(iw));
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

/// The module graph of a crate's source folder.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| top_module(src, f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let Some(a) = top_module(src, f) else { continue };
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display()));
        let root_level = f.parent() == Some(src);
        let named = named_modules(code(&text), root_level);
        let e = edges.entry(a.clone()).or_default();
        e.extend(named.into_iter().filter(|b| *b != a && modules.contains(b)));
    }
    edges
}

#[test]
fn the_cycle_finder_finds_cycles() {
    // The check itself, on a known graph: a -> b -> c -> a is one cycle, d -> a none.
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")] {
        g.entry(a.into()).or_default().insert(b.into());
    }
    assert_eq!(cycles(&g), vec![vec!["a".to_owned(), "b".into(), "c".into()]]);
    let names = named_modules(
        "use crate::{config::{A, B}, data};\nlet x = crate::rng::f();\n",
        false,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        vec!["config", "data", "rng"]
    );
}

#[test]
fn no_import_cycles_between_top_level_modules() {
    let mut report = Vec::new();
    for (src, _) in CRATES {
        let g = graph(&repo().join(src));
        assert!(g.len() > 5, "{src}: found only {} modules", g.len());
        for c in cycles(&g) {
            report.push(format!("{src}: cycle among {}", c.join(", ")));
        }
        println!("{src}:");
        for (a, bs) in &g {
            println!("  {a} -> {}", bs.iter().cloned().collect::<Vec<_>>().join(", "));
        }
    }
    assert!(report.is_empty(), "import cycles:\n{}", report.join("\n"));
}

#[test]
fn command_line_types_stay_in_the_binaries() {
    let mut offenders = Vec::new();
    for (src, binary_only) in CRATES {
        let dir = repo().join(src);
        let mut files = Vec::new();
        rust_files(&dir, &mut files);
        for f in files {
            let rel = f.strip_prefix(&dir).unwrap_or(&f);
            let first = rel
                .components()
                .next()
                .map(|c| c.as_os_str().to_string_lossy().into_owned());
            if first.is_some_and(|c| binary_only.contains(&c.as_str())) {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            if text.contains("clap::") || text.contains("use clap") || text.contains("#[arg(") {
                offenders.push(f.display().to_string());
            }
        }
    }
    assert!(offenders.is_empty(), "clap in library modules: {offenders:?}");
}

#[test]
fn no_source_file_is_too_long_without_a_reason() {
    let mut long = Vec::new();
    for dir in ["trainer/src", "server/src", "shared/src", "tests/src"] {
        let mut files = Vec::new();
        rust_files(&repo().join(dir), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let n = code(&text).lines().count();
            let rel = f.strip_prefix(repo()).unwrap_or(&f).display().to_string();
            if n > MAX_CODE_LINES && !LONG_FILES.iter().any(|(p, _)| *p == rel) {
                long.push(format!("{rel}: {n} lines"));
            }
        }
    }
    assert!(long.is_empty(), "over {MAX_CODE_LINES} lines of code: {long:?}");
}
