//! A linear pass over a config file's YAML events before yaml_serde builds anything from it: the
//! nesting depth, the number of nodes, the aliases and the size they expand to are capped, and the
//! pass stops at the first cap it meets. yaml_serde keeps every event of a document in memory and
//! expands each alias in full (a 1 MiB file can name a 380 KB string 45 000 times: 16 GiB), and the
//! YAML scanner's cost per token grows with the flow nesting depth (100 000 `[` take minutes);
//! stopping at [`MAX_DEPTH`] and `MAX_NODES` keeps both the time and the memory linear in the
//! bytes read so far.
//!
//! yaml_serde does not expose its event stream, so this module drives the same parser
//! (`libyaml-rs`, the one yaml_serde uses) through its C-style API: the only `unsafe` code in
//! leakwatch, kept to the parser's life cycle below.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::mem::MaybeUninit;

use libyaml_rs as sys;

/// Deepest nesting of mappings and sequences (a leakwatch config needs about 6).
pub const MAX_DEPTH: usize = 64;
/// Most YAML nodes (scalars, mappings, sequences, aliases) in the file.
pub(crate) const MAX_NODES: u64 = 50_000;
/// Most aliases (`*name`) in the file.
pub const MAX_ALIASES: u64 = 1_000;
/// Most nodes once every alias is expanded.
pub(crate) const MAX_EXPANDED_NODES: u64 = 100_000;
/// Most scalar bytes once every alias is expanded.
pub const MAX_EXPANDED_BYTES: u64 = 4 << 20;

/// What the top level of the document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    /// No document at all (an empty file, or only comments).
    Empty,
    /// A mapping (`{}` included).
    Mapping,
    /// A scalar or a sequence: not a config.
    Other,
    /// The parser stopped at a syntax error before the root was known (yaml_serde reports it).
    Unknown,
}

/// The size of a node once expanded.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    nodes: u64,
    bytes: u64,
}

impl Size {
    fn add(&mut self, other: Size) {
        self.nodes = self.nodes.saturating_add(other.nodes);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// An open mapping or sequence: its anchor and its size so far.
struct Frame {
    anchor: Option<Vec<u8>>,
    size: Size,
}

/// Checks `bytes` against the caps. `Ok` gives the shape of the root (a syntax error ends the
/// pass early and is left to yaml_serde, which names it); `Err` names the cap and the line.
pub(crate) fn check(bytes: &[u8]) -> Result<Root, String> {
    let mut parser = Parser::new(bytes);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<Vec<u8>, Size> = HashMap::new();
    let mut total = Size::default();
    let (mut nodes, mut aliases) = (0u64, 0u64);
    let mut root = Root::Unknown;
    let mut documents = 0usize;
    loop {
        let Some(event) = parser.next() else { return Ok(root) };
        let line = event.line + 1;
        let own = match event.kind {
            Kind::StreamEnd => return Ok(if documents == 0 { Root::Empty } else { root }),
            Kind::DocumentStart => {
                documents += 1;
                continue;
            }
            Kind::Other => continue,
            Kind::Scalar { len } => Size { nodes: 1, bytes: len },
            Kind::Alias => {
                aliases += 1;
                if aliases > MAX_ALIASES {
                    return Err(format!("more than {MAX_ALIASES} aliases (at line {line})"));
                }
                event.anchor.as_ref().and_then(|name| anchors.get(name)).copied().unwrap_or_default()
            }
            Kind::Start { mapping } => {
                if stack.is_empty() && documents == 1 && root == Root::Unknown {
                    root = if mapping { Root::Mapping } else { Root::Other };
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("nested deeper than {MAX_DEPTH} levels (at line {line})"));
                }
                nodes += 1;
                stack.push(Frame { anchor: event.anchor, size: Size { nodes: 1, bytes: 0 } });
                total.add(Size { nodes: 1, bytes: 0 });
                check_totals(nodes, total, line)?;
                continue;
            }
            Kind::End => {
                let Some(frame) = stack.pop() else { continue };
                if let Some(name) = frame.anchor {
                    anchors.insert(name, frame.size);
                }
                if let Some(parent) = stack.last_mut() {
                    parent.size.add(frame.size);
                }
                continue;
            }
        };
        // A scalar or an alias: a leaf of its parent.
        if stack.is_empty() && documents == 1 && root == Root::Unknown {
            root = Root::Other;
        }
        if !matches!(event.kind, Kind::Alias) {
            nodes += 1;
            if let Some(name) = event.anchor {
                anchors.insert(name, own);
            }
        }
        if let Some(parent) = stack.last_mut() {
            parent.size.add(own);
        }
        total.add(own);
        check_totals(nodes, total, line)?;
    }
}

fn check_totals(nodes: u64, total: Size, line: u64) -> Result<(), String> {
    if nodes > MAX_NODES {
        return Err(format!("more than {MAX_NODES} YAML nodes (at line {line})"));
    }
    if total.nodes > MAX_EXPANDED_NODES {
        return Err(format!("aliases expand to more than {MAX_EXPANDED_NODES} nodes (at line {line})"));
    }
    if total.bytes > MAX_EXPANDED_BYTES {
        return Err(format!("aliases expand to more than {} MiB of text (at line {line})", MAX_EXPANDED_BYTES >> 20));
    }
    Ok(())
}

/// What the pass needs of an event.
enum Kind {
    StreamEnd,
    DocumentStart,
    Scalar { len: u64 },
    Alias,
    Start { mapping: bool },
    End,
    Other,
}

struct Event {
    kind: Kind,
    anchor: Option<Vec<u8>>,
    line: u64,
}

/// libyaml's parser over a byte slice; freed on drop.
struct Parser<'a> {
    // Boxed and never moved out: the parser points at itself (its string reader's data), so its
    // address must not change once the input is set (yaml_serde holds it the same way).
    sys: Box<MaybeUninit<sys::yaml_parser_t>>,
    _input: std::marker::PhantomData<&'a [u8]>,
    done: bool,
}

impl<'a> Parser<'a> {
    fn new(input: &'a [u8]) -> Parser<'a> {
        let mut sys = Box::new(MaybeUninit::<sys::yaml_parser_t>::uninit());
        // SAFETY: `yaml_parser_initialize` fully initializes the struct (it zeroes it, then
        // allocates its buffers), and a zeroed struct is also what `yaml_parser_delete` accepts.
        // The struct is on the heap and stays there (see `sys`); the input slice is non-null
        // (even when empty) and outlives the parser (`'a`).
        let done = unsafe {
            let p = sys.as_mut_ptr();
            let failed = sys::yaml_parser_initialize(p).fail;
            if !failed {
                sys::yaml_parser_set_encoding(p, sys::YAML_UTF8_ENCODING);
                sys::yaml_parser_set_input_string(p, input.as_ptr(), input.len() as u64);
            }
            failed
        };
        Parser { sys, _input: std::marker::PhantomData, done }
    }

    /// The next event; `None` after a syntax error (or the end of the stream).
    fn next(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        let mut event = MaybeUninit::<sys::yaml_event_t>::uninit();
        // SAFETY: the parser was initialized in `new`; `yaml_parser_parse` either fills `event`
        // (read below, then freed with `yaml_event_delete`) or fails and leaves nothing to free.
        // Anchor pointers are NUL-terminated strings owned by the event, copied before the delete.
        unsafe {
            let p = self.sys.as_mut_ptr();
            let e = event.as_mut_ptr();
            if sys::yaml_parser_parse(p, e).fail {
                self.done = true;
                return None;
            }
            let ev = &*e;
            let anchor_of = |ptr: *mut u8| {
                (!ptr.is_null()).then(|| std::ffi::CStr::from_ptr(ptr.cast::<std::ffi::c_char>()).to_bytes().to_vec())
            };
            let (kind, anchor) = match ev.type_ {
                sys::YAML_STREAM_END_EVENT => {
                    self.done = true;
                    (Kind::StreamEnd, None)
                }
                sys::YAML_DOCUMENT_START_EVENT => (Kind::DocumentStart, None),
                sys::YAML_SCALAR_EVENT => {
                    (Kind::Scalar { len: ev.data.scalar.length }, anchor_of(ev.data.scalar.anchor))
                }
                sys::YAML_ALIAS_EVENT => (Kind::Alias, anchor_of(ev.data.alias.anchor)),
                sys::YAML_SEQUENCE_START_EVENT => {
                    (Kind::Start { mapping: false }, anchor_of(ev.data.sequence_start.anchor))
                }
                sys::YAML_MAPPING_START_EVENT => {
                    (Kind::Start { mapping: true }, anchor_of(ev.data.mapping_start.anchor))
                }
                sys::YAML_SEQUENCE_END_EVENT | sys::YAML_MAPPING_END_EVENT => (Kind::End, None),
                _ => (Kind::Other, None),
            };
            let line = ev.start_mark.line;
            sys::yaml_event_delete(e);
            Some(Event { kind, anchor, line })
        }
    }
}

impl Drop for Parser<'_> {
    fn drop(&mut self) {
        // SAFETY: initialized (or zeroed by a failed initialization) in `new`, deleted once.
        unsafe { sys::yaml_parser_delete(self.sys.as_mut_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn ordinary_files_pass_and_give_their_root() {
        assert_eq!(check(b"interval: 5s\nlogs:\n  sources:\n    - {name: a, path: /x}\n"), Ok(Root::Mapping));
        assert_eq!(check(b"{}\n"), Ok(Root::Mapping));
        assert_eq!(check(b""), Ok(Root::Empty));
        assert_eq!(check(b"# only a comment\n\n"), Ok(Root::Empty));
        assert_eq!(check(b"logs"), Ok(Root::Other));
        assert_eq!(check(b"- a\n- b\n"), Ok(Root::Other));
        assert_eq!(check(b"a: [\n"), Ok(Root::Mapping), "a syntax error is left to yaml_serde");
        let anchors = b"base: &b {max_lines: 10}\nlogs:\n  sources:\n    - {name: a, path: /x}\nother: *b\n";
        assert_eq!(check(anchors), Ok(Root::Mapping));
    }

    #[test]
    fn deep_nesting_stops_at_the_cap_in_linear_time() {
        let start = Instant::now();
        let deep = "[".repeat(100_000);
        let e = check(deep.as_bytes()).unwrap_err();
        assert!(e.contains("deeper than 64") && e.contains("line 1"), "{e}");
        let block = "a:\n".to_owned() + &"- ".repeat(100_000) + "x\n";
        assert!(check(block.as_bytes()).unwrap_err().contains("deeper than"));
        assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    }

    #[test]
    fn alias_bombs_are_refused_by_their_expanded_size() {
        // One 380 KB string named 45 000 times: 16 GiB expanded.
        let mut y = format!("a: &s {}\nb: [", "x".repeat(380_000));
        y.push_str(&vec!["*s"; 1_000].join(","));
        y.push_str("]\n");
        let e = check(y.as_bytes()).unwrap_err();
        assert!(e.contains("expand to more than 4 MiB"), "{e}");
        // The billion laughs: ten levels of ten references.
        let mut y = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            y.push_str(&format!("a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 10].join(", ")));
        }
        assert!(check(y.as_bytes()).unwrap_err().contains("expand to more than 100000 nodes"));
        let many = format!("a: &s x\nb: [{}]\n", vec!["*s"; 1_001].join(","));
        assert!(check(many.as_bytes()).unwrap_err().contains("more than 1000 aliases"));
        let nodes = format!("a: [{}]\n", vec!["x"; 60_000].join(","));
        assert!(check(nodes.as_bytes()).unwrap_err().contains("more than 50000 YAML nodes"));
    }
}
