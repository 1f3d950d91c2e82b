//! The layers of `ARCHITECTURE.md`, enforced: every `crate::<module>` path in `src/` (in `use`
//! declarations and inline, grouped `crate::{a, b}` too) must point at the same layer or one
//! below, and the top-level modules must not import each other in a circle.
//!
//! `cargo test --test layering -- --nocapture import_graph` prints the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first. A module may use its own layer and the layers below it, never one above.
/// Keep in step with `ARCHITECTURE.md`.
const LAYERS: &[&[&str]] = &[
    // The vocabulary: imports nothing from the crate.
    &["domain"],
    // Leaf utilities.
    &[
        "clock",
        "signal",
        "text",
        "http_client",
        "templates",
        "telemetry",
    ],
    // Process settings (flags, environment, defaults).
    &["settings"],
    &["config"],
    // Unit-test helpers (cfg(test)): a parsed routing file and fixtures.
    &["test_support"],
    &["intake", "classification", "auth", "store"],
    &["metrics"],
    &["incidents"],
    &["notify", "escalation", "digest", "watch"],
    &["http"],
    &["app"],
    // For integration tests only: nothing in the crate imports it.
    &["testing"],
    // The binary: `paiid_alerts::` paths.
    &["main"],
];

/// Known imports against the order: (from, to, why). Left out of the cycle check too.
const EXEMPT: &[(&str, &str, &str)] = &[];

#[derive(Debug, Clone)]
struct Import {
    from: String,
    to: String,
    file: PathBuf,
    line: usize,
    text: String,
}

fn src_dir() -> PathBuf {
    match std::env::var_os("LAYERING_SRC") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `src/notify/slack/blocks.rs` -> `notify`; `src/clock.rs` -> `clock`; `lib.rs` -> None.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib").then(|| name.to_string())
}

/// The text with comments blanked (same length, newlines kept, so offsets still give lines).
/// String literals are kept as they are: a path inside one is rare and would show in review.
fn strip_comments(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        if in_str {
            if b[i] == b'\\' && i + 1 < b.len() {
                out.extend_from_slice(&b[i..i + 2]);
                i += 2;
                continue;
            }
            if b[i] == b'"' {
                in_str = false;
            }
            out.push(b[i]);
            i += 1;
        } else if b[i] == b'"' && (i == 0 || b[i - 1] != b'\'') {
            in_str = true;
            out.push(b[i]);
            i += 1;
        } else if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let end = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            for &c in &b[i..end] {
                out.push(if c == b'\n' { b'\n' } else { b' ' });
            }
            i = end;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("blanking keeps UTF-8")
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The top-level modules a `{...}` group names (`crate::{a::X, b, c::{d, e}}` -> a, b, c).
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut at_item_start = true;
    let mut cur = String::new();
    for c in group.chars() {
        match c {
            '{' => {
                depth += 1;
                at_item_start = false;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                if !cur.is_empty() {
                    heads.push(std::mem::take(&mut cur));
                }
                at_item_start = true;
            }
            c if depth == 0 && at_item_start && (c.is_alphanumeric() || c == '_') => cur.push(c),
            _ => {
                if !cur.is_empty() {
                    heads.push(std::mem::take(&mut cur));
                    at_item_start = false;
                }
            }
        }
    }
    if !cur.is_empty() {
        heads.push(cur);
    }
    heads
}

/// The names `lib.rs` re-exports at the crate root, each with the module it comes from
/// (`pub use app::{Application, channel_env};` -> Application: app, channel_env: app).
fn root_reexports(src: &Path) -> BTreeMap<String, String> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let mut names = BTreeMap::new();
    for line in strip_comments(&lib).lines() {
        let Some(path) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let path = path.trim_end_matches(';');
        let Some((module, _)) = path.split_once("::") else {
            continue;
        };
        let items = match path.split_once('{') {
            Some((_, group)) => group_heads(group.trim_end_matches('}')),
            None => path
                .rsplit("::")
                .next()
                .map(str::to_string)
                .into_iter()
                .collect(),
        };
        for item in items {
            names.insert(item, module.to_string());
        }
    }
    names
}

fn imports_of(src: &Path, file: &Path) -> Vec<Import> {
    let Some(from) = top_module(src, file) else {
        return Vec::new();
    };
    let raw = std::fs::read_to_string(file).unwrap();
    let text = strip_comments(&raw);
    // The binary reaches the library by its name.
    let prefixes: &[&str] = if from == "main" {
        &["paiid_alerts::"]
    } else {
        &["crate::"]
    };
    let root_names = if from == "main" {
        root_reexports(src)
    } else {
        BTreeMap::new()
    };
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    for prefix in prefixes {
        let mut start = 0;
        while let Some(pos) = text[start..].find(prefix) {
            let at = start + pos;
            start = at + prefix.len();
            // `$crate::`, `paiid_crate::`: not a path from this crate's root.
            if at > 0 && (is_ident(bytes[at - 1]) || bytes[at - 1] == b'$') {
                continue;
            }
            let rest = &text[start..];
            let targets = if let Some(group) = rest.strip_prefix('{') {
                let mut depth = 1;
                let end = group
                    .char_indices()
                    .find(|&(_, c)| {
                        match c {
                            '{' => depth += 1,
                            '}' => depth -= 1,
                            _ => {}
                        }
                        depth == 0
                    })
                    .map_or(group.len(), |(i, _)| i);
                group_heads(&group[..end])
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                vec![name]
            };
            // The binary names the library's root re-exports (`paiid_alerts::Application`):
            // each counts as an import of the module it comes from.
            let targets: Vec<String> = targets
                .into_iter()
                .map(|t| root_names.get(&t).cloned().unwrap_or(t))
                .collect();
            let line = text[..at].matches('\n').count() + 1;
            let line_text = raw.lines().nth(line - 1).unwrap_or("").trim().to_string();
            for to in targets {
                if to.is_empty() || to == from || to == "self" || to == "super" {
                    continue;
                }
                out.push(Import {
                    from: from.clone(),
                    to,
                    file: file.to_path_buf(),
                    line,
                    text: line_text.clone(),
                });
            }
        }
    }
    out
}

fn all_imports() -> Vec<Import> {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 20,
        "found only {} files under {}",
        files.len(),
        src.display()
    );
    files.iter().flat_map(|f| imports_of(&src, f)).collect()
}

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn exempt(from: &str, to: &str) -> bool {
    EXEMPT.iter().any(|(f, t, _)| *f == from && *t == to)
}

fn graph(imports: &[Import]) -> BTreeMap<(String, String), usize> {
    let mut g = BTreeMap::new();
    for i in imports {
        *g.entry((i.from.clone(), i.to.clone())).or_insert(0) += 1;
    }
    g
}

/// Every circle of the module graph, each once (as the list of modules along it).
fn cycles(edges: &BTreeSet<(String, String)>) -> Vec<Vec<String>> {
    let nodes: BTreeSet<&str> = edges
        .iter()
        .flat_map(|(a, b)| [a.as_str(), b.as_str()])
        .collect();
    let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
    // Small graph: a depth-first search from each node for paths back to it.
    fn walk<'a>(
        start: &'a str,
        at: &'a str,
        path: &mut Vec<&'a str>,
        edges: &'a BTreeSet<(String, String)>,
        found: &mut BTreeSet<Vec<String>>,
    ) {
        for (_, b) in edges.iter().filter(|(a, _)| a == at) {
            if b == start {
                let mut c: Vec<String> = path.iter().map(|s| s.to_string()).collect();
                // One rotation per circle: start at its smallest module.
                let min = (0..c.len()).min_by_key(|&i| c[i].clone()).unwrap_or(0);
                c.rotate_left(min);
                found.insert(c);
            } else if !path.contains(&b.as_str()) && b.as_str() > start {
                path.push(b);
                walk(start, b, path, edges, found);
                path.pop();
            }
        }
    }
    for n in nodes {
        walk(n, n, &mut vec![n], edges, &mut found);
    }
    found.into_iter().collect()
}

#[test]
fn every_top_level_module_has_a_layer() {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let unknown: BTreeSet<String> = files
        .iter()
        .filter_map(|f| top_module(&src, f))
        .filter(|m| rank(m).is_none())
        .collect();
    assert!(
        unknown.is_empty(),
        "modules without a layer (add them to LAYERS here and to ARCHITECTURE.md): {unknown:?}"
    );
}

#[test]
fn no_import_goes_up_a_layer() {
    let bad: Vec<String> = all_imports()
        .into_iter()
        .filter(|i| match (rank(&i.from), rank(&i.to)) {
            (Some(from), Some(to)) => to > from && !exempt(&i.from, &i.to),
            _ => false,
        })
        .map(|i| {
            format!(
                "{}:{}: {} -> {} goes up a layer: {}",
                i.file.display(),
                i.line,
                i.from,
                i.to,
                i.text
            )
        })
        .collect();
    assert!(bad.is_empty(), "\n{}\n", bad.join("\n"));
}

#[test]
fn no_import_names_an_unknown_module() {
    let bad: Vec<String> = all_imports()
        .into_iter()
        .filter(|i| rank(&i.to).is_none())
        .map(|i| format!("{}:{}: {}", i.file.display(), i.line, i.text))
        .collect();
    assert!(bad.is_empty(), "\n{}\n", bad.join("\n"));
}

#[test]
fn top_level_modules_import_no_circle() {
    let imports = all_imports();
    let edges: BTreeSet<(String, String)> = graph(&imports)
        .into_keys()
        .filter(|(a, b)| !exempt(a, b))
        .collect();
    let circles = cycles(&edges);
    let described: Vec<String> = circles
        .iter()
        .map(|c| {
            let mut s = c.join(" -> ");
            s.push_str(&format!(" -> {}", c[0]));
            // Where each step of the circle is written.
            for (k, from) in c.iter().enumerate() {
                let to = &c[(k + 1) % c.len()];
                if let Some(i) = imports.iter().find(|i| &i.from == from && &i.to == to) {
                    s.push_str(&format!(
                        "\n    {}:{}: {}",
                        i.file.display(),
                        i.line,
                        i.text
                    ));
                }
            }
            s
        })
        .collect();
    assert!(described.is_empty(), "\n{}\n", described.join("\n"));
}

#[test]
fn the_parser_sees_every_form_of_path() {
    let text = "use crate::a::X;\nuse crate::{b, c::{D, E}, self};\nfn f() { crate::d::g(); }\n\
                // crate::commented::out\n/* crate::blocked */ let s = $crate::e::x; pub(crate) fn h() {}\n";
    let dir = std::env::temp_dir().join(format!("layering-{}", std::process::id()));
    let file = dir.join("top").join("x.rs");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, text).unwrap();
    let mut found: Vec<(String, usize)> = imports_of(&dir, &file)
        .into_iter()
        .map(|i| (i.to, i.line))
        .collect();
    found.sort();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        found,
        [
            ("a".to_string(), 1),
            ("b".to_string(), 2),
            ("c".to_string(), 2),
            ("d".to_string(), 3)
        ]
    );
}

/// Not a check: prints the import graph between top-level modules (`--nocapture`).
#[test]
fn import_graph() {
    for ((from, to), n) in graph(&all_imports()) {
        let mark = match (rank(&from), rank(&to)) {
            (Some(f), Some(t)) if t > f && exempt(&from, &to) => "  (up, exempt)",
            (Some(f), Some(t)) if t > f => "  (UP)",
            _ => "",
        };
        println!("{from} -> {to} ({n}){mark}");
    }
}
