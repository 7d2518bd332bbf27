//! The config parser (`Config::from_yaml`) and validator (`config::validate`): arbitrary bytes,
//! deeply nested or aliased YAML, and line-level mutations of generated valid configs never panic;
//! a syntax error names its line, a validation problem starts with its key path; an unmutated
//! generated config validates to exactly the values it was written with.

use std::time::Duration;

use leakwatch::config::{validate, Config, ConfigError, Selector};
use proptest::collection::vec;
use proptest::prelude::*;

use crate::{check, ensure};

/// The top-level keys: every validation problem starts with one of them.
const TOP_KEYS: [&str; 9] = ["listen", "interval", "target", "pss", "logs", "connections", "tasks", "alerts", "admin"];

/// A generated valid config: its YAML and the values it must validate to.
#[derive(Debug, Clone)]
struct Generated {
    yaml: String,
    port: u16,
    interval_ms: u64,
    process_name: Option<String>,
    sources: Vec<(String, String, Option<usize>)>,
    peers: Vec<(String, u16, u64)>,
    levels: Option<(f64, f64)>,
}

fn generated() -> impl Strategy<Value = Generated> {
    let sources = vec(
        ("[a-z][a-z0-9_.-]{0,10}", "/[a-z]{1,8}(/[a-z]{1,8}\\*?){0,2}\\.log", proptest::option::of(1usize..=100_000)),
        0..4,
    );
    let peers = vec(("[a-z][a-z0-9_-]{0,10}", 1u16..=65535, 1u64..=1_000_000), 0..3);
    let levels =
        proptest::option::of((5u32..=49, 50u32..=100).prop_map(|(a, b)| (f64::from(a) / 100.0, f64::from(b) / 100.0)));
    (1024u16..=65535, 100u64..=3_600_000, proptest::option::of("[a-z]{1,15}"), sources, peers, levels).prop_map(
        |(port, interval_ms, process_name, mut sources, mut peers, levels)| {
            // Names are unique.
            let mut seen = Vec::new();
            sources.retain(|(n, _, _)| !seen.contains(n) && n != "stdout" && n != "stderr" && { seen.push(n.clone()); true });
            let mut seen = Vec::new();
            peers.retain(|(n, _, _)| !seen.contains(n) && { seen.push(n.clone()); true });
            let mut y = format!("listen: 127.0.0.1:{port}\ninterval: {interval_ms}ms\n");
            if let Some(name) = &process_name {
                y.push_str(&format!("target:\n  process_name: {name}\n  max_processes: 8\n"));
            }
            y.push_str("pss:\n  max_rss: 2GiB\n  time_budget: 50ms\n");
            if !sources.is_empty() {
                y.push_str("logs:\n  max_bytes: 1MiB\n  sources:\n");
                for (name, path, lines) in &sources {
                    y.push_str(&format!("    - name: {name}\n      path: '{path}'\n"));
                    if let Some(l) = lines {
                        y.push_str(&format!("      max_lines: {l}\n"));
                    }
                }
            }
            if !peers.is_empty() {
                y.push_str("connections:\n  stale_after: 10m\n  peers:\n");
                for (name, port, limit) in &peers {
                    y.push_str(&format!("    - name: {name}\n      remote_port: {port}\n      limit: {limit}\n"));
                }
            }
            y.push_str("tasks:\n  stale_after: 1h\n  max_tracked: 100\n");
            if let Some((w, c)) = levels {
                y.push_str(&format!(
                    "alerts:\n  rules:\n    - ratio: memory_utilization\n      levels: {{ warning: {w}, critical: {c} }}\n      for: 5m\n      hysteresis: 0.01\n"
                ));
            }
            Generated { yaml: y, port, interval_ms, process_name, sources, peers, levels }
        },
    )
}

/// One change to a config's text, line-wise or byte-wise.
#[derive(Debug, Clone)]
enum Mutation {
    /// The value after the first `:` of a line becomes this.
    Value(usize, String),
    /// A character is inserted into a line's key.
    Key(usize, char),
    DeleteLine(usize),
    DuplicateLine(usize),
    /// A line is moved right or left.
    Indent(usize, i8),
    /// Bytes inserted at a position.
    Insert(usize, Vec<u8>),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let scalar = prop_oneof![
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("99999999999999999999h".to_owned()),
        Just("0s".to_owned()),
        Just("1e309".to_owned()),
        Just(".nan".to_owned()),
        Just("~".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("[1, [2, {a: b}]]".to_owned()),
        Just("'unterminated".to_owned()),
        Just("&a x".to_owned()),
        Just("*a".to_owned()),
        Just("!!binary aGk=".to_owned()),
        Just("\"\\u0000\"".to_owned()),
        "[0-9]{1,25}(ms|s|m|h|d|KiB|MiB|GiB|TiB)?",
        "[ -~]{0,20}",
        "\\PC{0,10}",
    ];
    prop_oneof![
        4 => (any::<usize>(), scalar).prop_map(|(l, v)| Mutation::Value(l, v)),
        1 => (any::<usize>(), proptest::char::any()).prop_map(|(l, c)| Mutation::Key(l, c)),
        1 => any::<usize>().prop_map(Mutation::DeleteLine),
        1 => any::<usize>().prop_map(Mutation::DuplicateLine),
        1 => (any::<usize>(), -4i8..=4).prop_map(|(l, d)| Mutation::Indent(l, d)),
        1 => (any::<usize>(), vec(any::<u8>(), 1..8)).prop_map(|(at, b)| Mutation::Insert(at, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(yaml: &str, m: &Mutation) -> Vec<u8> {
    let mut lines: Vec<String> = yaml.lines().map(str::to_owned).collect();
    let n = lines.len().max(1);
    match m {
        Mutation::Value(l, v) => {
            if let Some(line) = lines.get_mut(l % n) {
                if let Some((key, _)) = line.split_once(':') {
                    *line = format!("{key}: {v}");
                }
            }
        }
        Mutation::Key(l, c) => {
            if let Some(line) = lines.get_mut(l % n) {
                let at = line.find(':').unwrap_or(line.len());
                line.insert(at, *c);
            }
        }
        Mutation::DeleteLine(l) => {
            if !lines.is_empty() {
                lines.remove(l % n);
            }
        }
        Mutation::DuplicateLine(l) => {
            if let Some(line) = lines.get(l % n).cloned() {
                lines.insert(l % n, line);
            }
        }
        Mutation::Indent(l, d) => {
            if let Some(line) = lines.get_mut(l % n) {
                if *d > 0 {
                    line.insert_str(0, &" ".repeat(*d as usize));
                } else {
                    let strip = line.len() - line.trim_start().len();
                    line.drain(..strip.min(d.unsigned_abs() as usize));
                }
            }
        }
        Mutation::Insert(..) | Mutation::Truncate(_) => {}
    }
    let mut bytes = (lines.join("\n") + "\n").into_bytes();
    match m {
        Mutation::Insert(at, b) => {
            let at = at % (bytes.len() + 1);
            bytes.splice(at..at, b.iter().copied());
        }
        Mutation::Truncate(at) => bytes.truncate(at % (bytes.len() + 1)),
        _ => {}
    }
    bytes
}

/// Parses and validates `bytes` both ways (`serve` and `run` mode), checking the error shapes.
fn parse_and_validate(bytes: &[u8]) -> Result<(), TestCaseError> {
    let config = match Config::from_yaml(bytes) {
        Ok(c) => c,
        Err(message) => {
            ensure!(
                message.contains("line ") || message.starts_with("not UTF-8"),
                "a syntax error without a line: {message:?} for {:?}",
                String::from_utf8_lossy(bytes)
            );
            return Ok(());
        }
    };
    for wrapped in [false, true] {
        match validate(&config, wrapped) {
            Ok(_) => {}
            Err(ConfigError::Invalid(problems)) => {
                ensure!(!problems.is_empty(), "Invalid without a problem");
                for p in &problems {
                    let key = p.key_path.split([':', ',', '.', '[']).next().unwrap_or("");
                    ensure!(TOP_KEYS.contains(&key), "problem {p:?} does not start with its key");
                }
            }
            Err(e) => return Err(TestCaseError::fail(format!("validate gave {e}"))),
        }
    }
    Ok(())
}

#[test]
fn arbitrary_bytes_never_panic() {
    let yamlish = vec(
        prop_oneof![
            "[a-z_]{1,12}".prop_map(String::into_bytes),
            proptest::sample::select(TOP_KEYS.to_vec()).prop_map(|k| k.as_bytes().to_vec()),
            prop_oneof![
                Just(": "),
                Just("\n"),
                Just("\n  "),
                Just("- "),
                Just("["),
                Just("]"),
                Just("{"),
                Just("}"),
                Just(", "),
                Just("&a "),
                Just("*a"),
                Just("<<: "),
                Just("'"),
                Just("\""),
                Just("!!"),
                Just("---\n"),
                Just("#"),
                Just("\t"),
            ]
            .prop_map(|s| s.as_bytes().to_vec()),
            vec(any::<u8>(), 0..4),
        ],
        0..64,
    )
    .prop_map(|t| t.concat());
    check("config::arbitrary_bytes", prop_oneof![vec(any::<u8>(), 0..512), yamlish], |bytes| {
        parse_and_validate(&bytes)
    });
}

#[test]
fn deep_nesting_and_alias_bombs_are_refused_without_a_crash() {
    let shape = (proptest::sample::select(vec!["[", "{a: ", "- ", "a:\n "]), 1usize..5000);
    check("config::deep_nesting", shape, |(open, depth)| parse_and_validate(open.repeat(depth).as_bytes()));
    check("config::alias_bomb", 2usize..12, |levels| {
        // Each level refers to the one before ten times: 10^levels nodes if expanded.
        let mut y = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..levels {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            y.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        parse_and_validate(y.as_bytes())
    });
}

#[test]
fn yaml_caps_hold_for_any_size_alias_count_and_depth() {
    use leakwatch::yaml_guard::{MAX_ALIASES, MAX_DEPTH, MAX_EXPANDED_BYTES};
    // A `size`-byte anchored string named `aliases` times inside `depth` nested flow sequences.
    let shape = (1usize..100, 0usize..1500, 1usize..200_000);
    check("config::yaml_caps", shape, |(depth, aliases, size)| {
        let refs = vec!["*s"; aliases].join(",");
        let y = format!("a: &s {}\nb: {}{refs}{}\n", "x".repeat(size), "[".repeat(depth), "]".repeat(depth));
        let started = std::time::Instant::now();
        let result = Config::from_yaml(y.as_bytes());
        ensure!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
        let message = result.err().unwrap_or_default();
        // The root mapping is one level, each `[` one more.
        let expect = if depth + 1 > MAX_DEPTH {
            Some("deeper than")
        } else {
            // The alias at which each cap is crossed (the count is checked before the size).
            let by_bytes = (1..=aliases).find(|k| (size * (k + 1)) as u64 > MAX_EXPANDED_BYTES);
            let by_count = (aliases as u64 > MAX_ALIASES).then_some(MAX_ALIASES as usize + 1);
            match (by_count, by_bytes) {
                (Some(c), Some(b)) if b < c => Some("expand to more than"),
                (Some(_), _) => Some("aliases (at line"),
                (None, Some(_)) => Some("expand to more than"),
                (None, None) => None,
            }
        };
        match expect {
            Some(text) => ensure!(message.contains(text), "expected {text:?}, got {message:?}"),
            None => ensure!(
                !message.contains("deeper than") && !message.contains("expand to") && !message.contains("aliases ("),
                "a cap refused a file within them: {message}"
            ),
        }
        Ok(())
    });
}

#[test]
fn generated_configs_validate_to_their_values() {
    check("config::generated_roundtrip", generated(), |g| {
        let config =
            Config::from_yaml(g.yaml.as_bytes()).map_err(|e| TestCaseError::fail(format!("{}\n{e}", g.yaml)))?;
        let v = validate(&config, false).map_err(|e| TestCaseError::fail(format!("{}\n{e}", g.yaml)))?;
        ensure!(v.listen.port() == g.port, "port");
        ensure!(v.sampler.interval == Duration::from_millis(g.interval_ms), "interval {:?}", v.sampler.interval);
        match (&v.sampler.selector, &g.process_name) {
            (Selector::ProcessName(n), Some(want)) => ensure!(n == want, "process_name"),
            (Selector::Own, None) => {}
            (s, want) => return Err(TestCaseError::fail(format!("selector {s:?}, expected {want:?}"))),
        }
        ensure!(v.logs.len() == g.sources.len(), "sources");
        for (spec, (name, _, lines)) in v.logs.iter().zip(&g.sources) {
            ensure!(spec.name == *name && spec.limits.max_bytes == 1 << 20, "{spec:?}");
            ensure!(spec.limits.max_lines == lines.unwrap_or(leakwatch::config::DEFAULT_LOG_MAX_LINES), "{spec:?}");
        }
        ensure!(v.sampler.conns.peers.len() == g.peers.len(), "peers");
        for (p, (name, port, limit)) in v.sampler.conns.peers.iter().zip(&g.peers) {
            ensure!(p.name == *name && p.remote_port == *port && p.limit == *limit, "{p:?}");
        }
        if let Some((w, c)) = g.levels {
            let rule = &v.alerts.thresholds[0];
            let got: Vec<f64> = rule.levels.iter().map(|(_, l)| *l).collect();
            ensure!(got == vec![w, c], "levels {got:?}");
        }
        Ok(())
    });
}

#[test]
fn mutated_configs_never_panic_and_errors_name_a_line_or_key() {
    check("config::mutated", (generated(), vec(mutation(), 1..4)), |(g, mutations)| {
        let mut text = g.yaml.into_bytes();
        for m in &mutations {
            text = apply(&String::from_utf8_lossy(&text), m);
        }
        parse_and_validate(&text)
    });
}
