//! The documentation's relative links resolve: every `[text](path)` and `[text](path#anchor)` in
//! README.md, CONTRIBUTING.md, ARCHITECTURE.md and docs/*.md names a file of the repository, and
//! an anchor names one of that file's headings (the README was split into docs/: a moved section
//! must not leave a dead link behind).

use crate::alerts_rules::anchors;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The targets of a Markdown text's inline links, outside code blocks and code spans.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Drop code spans, where `](` is text.
        let text: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = text.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find(')') else { break };
            out.push(rest[..end].trim().to_string());
            rest = &rest[end..];
        }
    }
    out
}

fn documents() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> =
        ["README.md", "CONTRIBUTING.md", "ARCHITECTURE.md"].iter().map(|f| repo().join(f)).collect();
    let mut pages: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    docs.extend(pages);
    docs
}

fn check(doc: &Path, target: &str) -> Option<String> {
    if target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let (path, anchor) = target.split_once('#').map_or((target, None), |(p, a)| (p, Some(a)));
    let file = if path.is_empty() { doc.to_path_buf() } else { doc.parent().expect("a directory").join(path) };
    if !file.exists() {
        return Some(format!("{}: link to {target}: no such file", doc.display()));
    }
    let anchor = anchor.filter(|a| !a.is_empty())?;
    if file.extension().is_none_or(|e| e != "md") {
        return None;
    }
    let text = std::fs::read_to_string(&file).expect("read linked file");
    (!anchors(&text).iter().any(|a| a == anchor))
        .then(|| format!("{}: link to {target}: {} has no heading with that anchor", doc.display(), file.display()))
}

#[test]
fn every_relative_link_in_the_docs_names_an_existing_file_and_heading() {
    let mut dead = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).expect("read doc");
        for target in link_targets(&text) {
            checked += 1;
            dead.extend(check(&doc, &target));
        }
    }
    assert!(checked > 50, "only {checked} links found: is the link scanner broken?");
    assert!(dead.is_empty(), "dead links:\n{}", dead.join("\n"));
}

#[test]
fn the_link_scanner_finds_links_and_skips_code() {
    let text = "see [a](docs/a.md#x) and `[b](nope.md)`\n```\n[c](nope.md)\n```\n[d](https://x/y) [e](#top)";
    assert_eq!(link_targets(text), ["docs/a.md#x", "https://x/y", "#top"]);
}

#[test]
fn the_readme_fits_on_a_few_screens() {
    // The reference lives in docs/ (issue 20: the README was 2 038 lines); the README keeps what
    // and why, the comparison, the quick start, Kubernetes and the links.
    let text = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let lines = text.lines().count();
    assert!(lines <= 300, "README.md has {lines} lines: move reference material into docs/");
    for section in ["## Quick start", "leakwatch run --", "## Kubernetes and Helm", "bash tests/run.sh"] {
        assert!(text.contains(section), "README.md lacks {section:?}");
    }
}
