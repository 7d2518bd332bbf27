//! Finds the line of a key path (`logs.sources[1].max_lines`) in block-style YAML text, so that
//! a value that parsed but failed validation is reported with its line, like a syntax error.
//! Flow style (`{a: 1}`, `[x, y]`) and anchors are not followed: the problem is then reported
//! by key path only.

use super::problem::Problem;

/// One step of a key path.
#[derive(Debug, PartialEq, Eq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// `a.b[2].c` → `Key(a) Key(b) Index(2) Key(c)`; `None` for anything else.
fn steps(path: &str) -> Option<Vec<Step<'_>>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return None;
        }
        out.push(Step::Key(key));
        while !rest.is_empty() {
            let (n, after) = rest.split_once(']')?;
            out.push(Step::Index(n.parse().ok()?));
            rest = after.strip_prefix('[').unwrap_or(after);
            if !after.is_empty() && !after.starts_with('[') {
                return None;
            }
        }
    }
    Some(out)
}

/// A content line: its number (1-based), its indentation, its text after the indentation.
struct Line<'a> {
    number: usize,
    indent: usize,
    text: &'a str,
}

fn content_lines(text: &str) -> Vec<Line<'_>> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let text = l.trim_start_matches(' ');
            (!text.is_empty() && !text.starts_with('#')).then_some(Line {
                number: i + 1,
                indent: l.len() - text.len(),
                text,
            })
        })
        .collect()
}

/// The 1-based line where `path` is written in `text`, if it can be found.
pub(crate) fn line_of(text: &str, path: &str) -> Option<usize> {
    let lines = content_lines(text);
    let mut at = 0; // index into `lines` where the current node's children start
    let mut parent: Option<usize> = None; // the current node's indentation (None: the document)
                                          // After an index: the item's first key sits on the dash line, at `indent + 2`.
    let mut dash: Option<(usize, &str)> = None;
    let mut found = None;
    for step in steps(path)? {
        match step {
            Step::Key(key) => {
                let mut candidates: Vec<(usize, usize, &str)> = Vec::new(); // (index, indent, text)
                if let Some((indent, text)) = dash.take() {
                    candidates.push((at, indent, text));
                    at += 1;
                }
                for (i, l) in lines.iter().enumerate().skip(at) {
                    if parent.is_some_and(|p| l.indent <= p) {
                        break;
                    }
                    candidates.push((i, l.indent, l.text));
                }
                let level = candidates.first()?.1;
                let (i, indent, _) = candidates.into_iter().filter(|c| c.1 == level).find(|(_, _, t)| {
                    t.strip_prefix(key).is_some_and(|r| r.trim_start_matches(' ').starts_with(':'))
                })?;
                found = Some(lines[i].number);
                parent = Some(indent);
                at = i + 1;
            }
            Step::Index(n) => {
                // Items are `- ` lines below the key, or at its own indentation (indentless).
                let p = parent.unwrap_or(0);
                let items: Vec<usize> = lines
                    .iter()
                    .enumerate()
                    .skip(at)
                    .take_while(|(_, l)| l.indent > p || (l.indent == p && l.text.starts_with('-')))
                    .filter(|(_, l)| l.text.starts_with("- ") || l.text == "-")
                    .map(|(i, _)| i)
                    .collect();
                let level = lines[*items.first()?].indent;
                let i = items.into_iter().filter(|i| lines[*i].indent == level).nth(n)?;
                found = Some(lines[i].number);
                parent = Some(level);
                at = i;
                let after = lines[i].text.trim_start_matches('-');
                let item = after.trim_start_matches(' ');
                dash = (!item.is_empty()).then_some((level + lines[i].text.len() - item.len(), item));
                if dash.is_none() {
                    at += 1;
                }
            }
        }
    }
    found
}

/// Fills in each problem's line from its key path in `text` (left `None` when not found).
pub(crate) fn locate(text: &str, problems: &mut [Problem]) {
    for p in problems {
        p.line = line_of(text, &p.key_path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
# leakwatch
interval: 5s
target:
  max_processes: 0
logs:
  max_lines: 10
  sources:
    - name: app
      path: /a.log
    -   name: web

        max_lines: 0
alerts:
  rules:
  - ratio: fd_utilization
    levels: {warning: 2}
";

    #[test]
    fn keys_and_items_are_found_in_block_style() {
        assert_eq!(line_of(YAML, "interval"), Some(2));
        assert_eq!(line_of(YAML, "target.max_processes"), Some(4));
        assert_eq!(line_of(YAML, "logs.max_lines"), Some(6));
        assert_eq!(line_of(YAML, "logs.sources[0]"), Some(8));
        assert_eq!(line_of(YAML, "logs.sources[0].name"), Some(8));
        assert_eq!(line_of(YAML, "logs.sources[0].path"), Some(9));
        assert_eq!(line_of(YAML, "logs.sources[1].max_lines"), Some(12));
        assert_eq!(line_of(YAML, "alerts.rules[0].levels"), Some(16), "an indentless sequence");
    }

    #[test]
    fn what_is_not_written_is_not_found() {
        assert_eq!(line_of(YAML, "pss.max_rss"), None);
        assert_eq!(line_of(YAML, "logs.sources[2].name"), None);
        assert_eq!(line_of(YAML, "logs.sources[0].max_lines"), None, "not in another item");
        assert_eq!(line_of(YAML, "alerts.rules[0].levels.warning"), None, "flow style");
        assert_eq!(line_of(YAML, "target, logs"), None);
        let mut problems = [
            Problem::new("target.max_processes", "must be 1..=10000, got 0"),
            Problem::new("target.pid, target.name", "give at most one"),
        ];
        locate(YAML, &mut problems);
        assert_eq!(problems[0].line, Some(4));
        assert_eq!(problems[0].to_string(), "target.max_processes: must be 1..=10000, got 0 (line 4)");
        assert_eq!(problems[1].line, None, "not a key path");
    }
}
