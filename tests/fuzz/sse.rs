//! The SSE decoder (`http::sse::Decoder`): arbitrary bytes in arbitrary chunks, and encoded
//! events split anywhere, which must decode to what was encoded.

use leakwatch::http::sse::{self, Decoder, Event, MAX_EVENT_BYTES};
use proptest::collection::vec;
use proptest::prelude::*;

use crate::{check, ensure};

/// Splits `bytes` at the given cut points (taken modulo its length).
fn chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|c| if bytes.is_empty() { 0 } else { c % bytes.len() }).collect();
    at.sort_unstable();
    at.dedup();
    let mut out = Vec::new();
    let mut from = 0;
    for a in at.into_iter().chain([bytes.len()]) {
        out.push(bytes[from..a].to_vec());
        from = a;
    }
    out
}

/// SSE-ish bytes: field names, colons, CR, LF and noise, so that lines and events do form.
fn sse_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"data".to_vec()),
        Just(b"event".to_vec()),
        Just(b"id".to_vec()),
        Just(b"retry".to_vec()),
        Just(b":".to_vec()),
        Just(b": ".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n\n".to_vec()),
        vec(any::<u8>(), 0..16),
    ];
    vec(token, 0..64).prop_map(|t| t.concat())
}

#[test]
fn arbitrary_bytes_never_panic_and_stay_bounded() {
    let input = (prop_oneof![vec(any::<u8>(), 0..2048), sse_bytes()], vec(any::<usize>(), 0..8));
    check("sse::decoder_arbitrary", input, |(bytes, cuts)| {
        let mut d = Decoder::default();
        let mut events: Vec<Event> = Vec::new();
        for c in chunks(&bytes, &cuts) {
            d.feed(&c, |e| events.push(e));
        }
        for e in &events {
            ensure!(!e.name.is_empty(), "an event without a name: {e:?}");
            ensure!(e.data.len() <= MAX_EVENT_BYTES, "an event over the cap: {} bytes", e.data.len());
        }
        // Feeding the same bytes whole gives the same events: chunking never changes the result.
        let mut whole = Decoder::default();
        let mut again: Vec<Event> = Vec::new();
        whole.feed(&bytes, |e| again.push(e));
        ensure!(again == events, "chunked {events:?} != whole {again:?}");
        Ok(())
    });
}

/// One event as the stream endpoint writes it.
#[derive(Debug, Clone)]
struct Sent {
    name: String,
    id: Option<u64>,
    data: Vec<u8>,
}

fn sent() -> impl Strategy<Value = Sent> {
    let name = prop_oneof![Just("message".to_owned()), Just("missed".to_owned()), "[a-z]{1,12}"];
    (name, any::<Option<u64>>(), vec(any::<u8>(), 0..200)).prop_map(|(name, id, data)| Sent { name, id, data })
}

#[test]
fn encoded_events_decode_back_however_they_are_split() {
    let input = (vec(sent(), 0..12), vec(any::<usize>(), 0..16), any::<bool>());
    check("sse::encode_decode_roundtrip", input, |(events, cuts, keepalives)| {
        let mut wire = sse::RETRY.to_vec();
        for e in &events {
            sse::event(&mut wire, &e.name, e.id, &e.data);
            if keepalives {
                wire.extend_from_slice(sse::KEEPALIVE);
            }
        }
        let mut d = Decoder::default();
        let mut got: Vec<Event> = Vec::new();
        for c in chunks(&wire, &cuts) {
            d.feed(&c, |e| got.push(e));
        }
        ensure!(got.len() == events.len(), "{} events sent, {} decoded: {got:?}", events.len(), got.len());
        for (s, g) in events.iter().zip(&got) {
            // The encoder breaks data at CR and LF into fields; the decoder joins them with LF.
            let data: Vec<u8> = s.data.iter().map(|&b| if b == b'\r' { b'\n' } else { b }).collect();
            ensure!(g.name == s.name, "name {:?} came back as {:?}", s.name, g.name);
            ensure!(g.id == s.id.map(|i| i.to_string()), "id {:?} came back as {:?}", s.id, g.id);
            ensure!(g.data == data, "data {:?} came back as {:?}", s.data, g.data);
        }
        ensure!(d.dropped == 0, "nothing is over the cap, yet {} dropped", d.dropped);
        Ok(())
    });
}
