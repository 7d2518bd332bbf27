//! docs/configuration.md's reference is generated: every config file key from the config
//! structs' doc comments (a JSON Schema derived with `schemars`), every flag and environment
//! variable from the CLI's clap definitions. So the keys, defaults and ranges are written once, in
//! `src/config/`, and the docs cannot drift from them. Re-bless with
//! `LEAKWATCH_BLESS=1 cargo test --test integration config_docs`.

use std::collections::BTreeMap;
use std::path::Path;

use clap::CommandFactory;
use serde_json::Value;

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
const BEGIN: &str =
    "<!-- BEGIN GENERATED from src/config and src/cli.rs: LEAKWATCH_BLESS=1 cargo test --test integration config_docs -->";
const END: &str = "<!-- END GENERATED -->";

/// One table row: a key path and its description.
type Row = (String, String);

/// Text for a Markdown table cell: one line, no unescaped `|`.
fn cell(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|")
}

/// A schema's own description: schemars puts a doc comment's first paragraph in `title` when
/// there are several.
fn described(schema: &Value) -> String {
    let part = |k: &str| schema.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    [part("title"), part("description")].iter().filter(|s| !s.is_empty()).cloned().collect::<Vec<_>>().join(" ")
}

/// Follows a `$ref` (directly, or the one non-null branch of an `Option`'s `anyOf`).
fn resolve<'a>(schema: &'a Value, defs: &'a Value) -> (&'a Value, Option<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/").to_owned();
        return (&defs[&name], Some(name));
    }
    if let Some(branches) = schema.get("anyOf").and_then(Value::as_array) {
        let real: Vec<&Value> = branches.iter().filter(|b| b.get("type") != Some(&Value::from("null"))).collect();
        if let [one] = real[..] {
            return resolve(one, defs);
        }
    }
    (schema, None)
}

/// A config section: a struct that refuses unknown keys (so not e.g. `Duration`'s schema).
fn is_section(schema: &Value) -> bool {
    schema.get("properties").is_some() && schema.get("additionalProperties") == Some(&Value::Bool(false))
}

/// The item schema of an array (or `Option` of one).
fn array_items<'a>(schema: &'a Value, defs: &'a Value) -> Option<&'a Value> {
    let (s, _) = resolve(schema, defs);
    if let Some(items) = s.get("items") {
        return Some(items);
    }
    s.get("anyOf")?.as_array()?.iter().find_map(|b| b.get("items"))
}

/// Rows for every key under `schema` (a section), depth first; `sections` maps each struct's
/// name to its key path, for the doc comments' `[`Struct::field`]` links.
fn walk(schema: &Value, defs: &Value, prefix: &str, rows: &mut Vec<Row>, sections: &mut BTreeMap<String, String>) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else { return };
    for (name, prop) in props {
        let path = format!("{prefix}{name}");
        let (target, def) = resolve(prop, defs);
        let mut text = described(prop);
        if let Some(items) = array_items(prop, defs) {
            let (item, def) = resolve(items, defs);
            if is_section(item) {
                rows.push((format!("{path}[]"), text));
                if let Some(def) = def {
                    sections.insert(def, format!("{path}[]"));
                }
                walk(item, defs, &format!("{path}[]."), rows, sections);
                continue;
            }
        }
        if is_section(target) {
            if text.is_empty() {
                text = described(target);
            }
            rows.push((path.clone(), text));
            if let Some(def) = def {
                sections.insert(def, path.clone());
            }
            walk(target, defs, &format!("{path}."), rows, sections);
            continue;
        }
        rows.push((path, text));
    }
}

/// Rewrites rustdoc links such as ``[`LogsConfig::max_lines`]`` to the key path they name.
fn unlink(text: &str, sections: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("[`") {
        let Some(len) = rest[start..].find("`]") else { break };
        let inner = &rest[start + 2..start + len];
        out.push_str(&rest[..start]);
        match inner.split_once("::").and_then(|(s, f)| Some(format!("`{}.{f}`", sections.get(s)?))) {
            Some(key) => out.push_str(&key),
            None => out.push_str(&format!("`{inner}`")),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// The config file's keys, one row each.
fn key_table() -> String {
    let schema = serde_json::to_value(schemars::schema_for!(leakwatch::config::Config)).expect("schema as JSON");
    let mut rows = Vec::new();
    let mut sections = BTreeMap::new();
    walk(&schema, &schema["$defs"], "", &mut rows, &mut sections);
    let mut out = String::from("| key | meaning, default and accepted values |\n| --- | --- |\n");
    for (key, text) in rows {
        out.push_str(&format!("| `{key}` | {} |\n", cell(&unlink(&text, &sections))));
    }
    out
}

/// The server's flags and their environment variables, one row each.
fn flag_table() -> String {
    let cmd = leakwatch::cli::Cli::command();
    let mut out = String::from("| flag | environment variable | meaning |\n| --- | --- | --- |\n");
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        let Some(long) = arg.get_long() else { continue };
        let value =
            arg.get_value_names().map(|v| v.iter().map(|n| format!(" {n}")).collect::<String>()).unwrap_or_default();
        let flag = if arg.get_action().takes_values() { format!("--{long}{value}") } else { format!("--{long}") };
        let env = arg.get_env().map(|e| format!("`{}`", e.to_string_lossy())).unwrap_or_else(|| "–".to_owned());
        let help = arg.get_long_help().or(arg.get_help()).map(ToString::to_string).unwrap_or_default();
        out.push_str(&format!("| `{flag}` | {env} | {} |\n", cell(&help)));
    }
    out
}

/// The generated part of docs/configuration.md.
fn reference() -> String {
    format!(
        "{BEGIN}\n\n### Config file keys\n\nEvery key is optional. A section's own row says what it is for; the \
         defaults and ranges are those `leakwatch` checks (`src/config/`).\n\n{}\n### Flags and environment \
         variables\n\nEach flag overrides the config file key its text names. `leakwatch --help` prints the \
         same.\n\n{}\n{END}",
        key_table(),
        flag_table()
    )
}

#[test]
fn the_configuration_reference_is_generated_from_the_config_and_the_cli() {
    let doc = std::fs::read_to_string(DOC).expect("docs/configuration.md");
    let (before, rest) = doc.split_once(BEGIN).expect("docs/configuration.md has the BEGIN GENERATED marker");
    let (current, after) = rest.split_once(END).expect("docs/configuration.md has the END GENERATED marker");
    let fresh = reference();
    if std::env::var("LEAKWATCH_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(Path::new(DOC), format!("{before}{fresh}{after}")).expect("write docs/configuration.md");
        return;
    }
    assert!(
        format!("{BEGIN}{current}{END}") == fresh,
        "docs/configuration.md's reference differs from the config structs and flags: re-bless with \
         LEAKWATCH_BLESS=1 cargo test --test integration config_docs\n--- generated ---\n{fresh}"
    );
}

#[test]
fn every_config_key_documents_itself() {
    let table = key_table();
    let empty: Vec<&str> = table.lines().filter(|l| l.ends_with("|  |")).collect();
    assert!(empty.is_empty(), "config keys without a doc comment: {empty:?}");
    // Spot checks that the walk reaches nested sections, arrays of sections and maps.
    for key in [
        "`interval`",
        "`target.process_name`",
        "`logs.sources[].max_bytes`",
        "`connections.peers[].limit`",
        "`alerts.prediction.critical.horizon`",
        "`alerts.rules[].levels.warning`",
        "`logs.basic_auth_users`",
    ] {
        assert!(table.contains(&format!("| {key} |")), "{key} missing from the generated table:\n{table}");
    }
    assert!(!table.contains("secs"), "a duration's internals leaked into the table:\n{table}");
}
