//! Parser messages without the file's text: a config path may name a file that is not a config
//! (`--config /etc/shadow`), and its content must not reach the log or the terminal. A quoted
//! fragment of a message (`` `…` `` or `"…"`) stays only when it reads as a key name.

/// The longest quoted fragment kept.
const MAX_KEY_CHARS: usize = 64;

/// `message` with every quoted fragment that is not a plausible key name replaced by `…`.
pub(crate) fn quoted_text(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = &rest[open..open + 1];
        let Some(len) = closing(&rest[open + 1..], quote) else { break };
        let inner = &rest[open + 1..open + 1 + len];
        out.push_str(&rest[..open]);
        if is_key(inner) {
            out.push_str(&rest[open..open + len + 2]);
        } else {
            out.push_str(quote);
            out.push('…');
            out.push_str(quote);
        }
        rest = &rest[open + len + 2..];
    }
    out.push_str(rest);
    out
}

/// Where the quote closing at `quote` stands in `text`: the first one not escaped by `\`.
fn closing(text: &str, quote: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            '\\' => escaped = !escaped,
            c if !escaped && quote.starts_with(c) => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn is_key(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= MAX_KEY_CHARS
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_stay_and_file_text_goes() {
        assert_eq!(
            quoted_text("unknown field `pth`, expected one of `name`, `path` at line 4"),
            "unknown field `pth`, expected one of `name`, `path` at line 4"
        );
        assert_eq!(
            quoted_text("unknown field `root:*:20228:0:99999:7::`, expected one of `listen` at line 1 column 1"),
            "unknown field `…`, expected one of `listen` at line 1 column 1"
        );
        assert_eq!(
            quoted_text("invalid type: string \"hunter2 is my password\", expected i32"),
            "invalid type: string \"…\", expected i32"
        );
        assert_eq!(quoted_text("an `unclosed quote"), "an `unclosed quote");
        assert_eq!(quoted_text(r#"value "a\"b c", expected"#), r#"value "…", expected"#);
        assert_eq!(quoted_text(&format!("`{}`", "k".repeat(65))), "`…`");
    }
}
