//! HTTP basic auth against bcrypt hashes, as exporter-toolkit does it, without blocking the
//! runtime: a bcrypt check (tens of milliseconds at cost 10) runs on the blocking pool, one at a
//! time, and its outcome is cached.
//!
//! - An unknown user is checked against a fake hash of the configured users' cost, so the
//!   answer takes as long as for a known user with a wrong password (no user enumeration by
//!   timing).
//! - Cache keys are SHA-256 digests over the length-prefixed user, hash and password, so no
//!   concatenation of one triple can equal another's (exporter-toolkit's CVE-2022-46146), and
//!   no password is kept in memory as text.
//! - Successes and failures are cached apart, each bounded, so a flood of wrong passwords
//!   cannot evict the scraper's cached success.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use base64::Engine as _;
use hyper::header::{HeaderMap, AUTHORIZATION};
use sha2::{Digest, Sha256};

use super::file::BcryptHash;

/// Outcomes kept per kind (successes, failures).
pub(crate) const CACHE_ENTRIES: usize = 64;

/// Users and their bcrypt hashes.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Users {
    hashes: BTreeMap<String, BcryptHash>,
    /// Checked for unknown users: never matches, costs what a known user's check costs.
    fake: String,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users").field("names", &self.hashes.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

impl Users {
    /// Users from checked hashes; `None` when there are none (no auth).
    pub(crate) fn new(hashes: BTreeMap<String, BcryptHash>) -> Option<Users> {
        if hashes.is_empty() {
            return None;
        }
        let fake = fake_hash(most_common_cost(&hashes));
        Some(Users { hashes, fake })
    }

    /// Users from `name → hash` text (the leakwatch config's `logs.basic_auth_users`); the
    /// error is the key path of the user whose hash is bad (`key.name`) and what is wrong.
    pub(crate) fn parse(key: &str, map: &BTreeMap<String, String>) -> Result<Option<Users>, (String, String)> {
        let mut hashes = BTreeMap::new();
        for (name, hash) in map {
            let hash = BcryptHash::parse(hash).map_err(|e| (format!("{key}.{name}"), e))?;
            hashes.insert(name.clone(), hash);
        }
        Ok(Users::new(hashes))
    }

    /// The user names.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.hashes.keys().map(String::as_str)
    }

    /// The hash to check `user` against, and whether the user exists.
    fn hash_for(&self, user: &[u8]) -> (&str, bool) {
        match std::str::from_utf8(user).ok().and_then(|u| self.hashes.get(u)) {
            Some(hash) => (&hash.0, true),
            None => (&self.fake, false),
        }
    }
}

/// The cost most hashes use (ties: the higher), so that the fake check lasts as long as the
/// typical real one.
fn most_common_cost(hashes: &BTreeMap<String, BcryptHash>) -> u32 {
    let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
    for hash in hashes.values() {
        *counts.entry(hash.cost()).or_default() += 1;
    }
    counts.into_iter().max_by_key(|&(cost, n)| (n, cost)).map(|(cost, _)| cost).unwrap_or(10)
}

/// A well-formed hash of `cost` that no password matches (its digest is of another salt's
/// output), built without running bcrypt at `cost`.
fn fake_hash(cost: u32) -> String {
    // A real hash at the cheapest cost gives a well-formed salt and digest; the cost field is
    // then raised, so checking against it costs `cost` and never matches.
    let base = bcrypt::hash_with_salt(b"leakwatch-unknown-user", 4, [7u8; 16])
        .map(|parts| parts.format_for_version(bcrypt::Version::TwoY))
        .unwrap_or_default();
    match base.get(7..) {
        Some(rest) if cost != 4 => format!("$2y${cost:02}${rest}"),
        _ => base,
    }
}

/// A swappable user set (for the log endpoints' `logs.basic_auth_users`): a config reload
/// replaces it with [`SharedUsers::replace`] and the next request sees the new users.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedUsers(Arc<RwLock<Option<Arc<Users>>>>);

impl SharedUsers {
    /// A handle over `users` (`None`: not configured).
    pub(crate) fn new(users: Option<Users>) -> Self {
        Self(Arc::new(RwLock::new(users.map(Arc::new))))
    }

    /// The users now.
    pub(crate) fn current(&self) -> Option<Arc<Users>> {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Replaces the users for every later request.
    pub(crate) fn replace(&self, users: Option<Users>) {
        *self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = users.map(Arc::new);
    }
}

/// The `user:password` of an `Authorization: Basic` header, as bytes.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(Vec<u8>, Vec<u8>)> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim_ascii()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

/// Checks credentials against user sets, caching outcomes. One per server.
#[derive(Debug, Default)]
pub(crate) struct Verifier {
    successes: Mutex<Cache>,
    failures: Mutex<Cache>,
    /// One bcrypt at a time (it is CPU-bound; more would only queue on the blocking pool).
    bcrypt: tokio::sync::Mutex<()>,
}

impl Verifier {
    /// Whether the request's basic credentials name one of `users` with the right password.
    pub(crate) async fn check(&self, users: &Users, headers: &HeaderMap) -> bool {
        let Some((user, password)) = basic_credentials(headers) else { return false };
        let (hash, known) = users.hash_for(&user);
        let key = cache_key(&user, hash, &password);
        if lock(&self.successes).contains(&key) {
            return known;
        }
        if lock(&self.failures).contains(&key) {
            return false;
        }
        let hash = hash.to_owned();
        let _turn = self.bcrypt.lock().await;
        let matched = tokio::task::spawn_blocking(move || bcrypt::verify(&password, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        let ok = known && matched;
        if ok { lock(&self.successes) } else { lock(&self.failures) }.insert(key);
        ok
    }
}

fn lock(cache: &Mutex<Cache>) -> std::sync::MutexGuard<'_, Cache> {
    cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// SHA-256 over length-prefixed fields: distinct triples never share a key.
fn cache_key(user: &[u8], hash: &str, password: &[u8]) -> [u8; 32] {
    let mut digest = Sha256::new();
    for field in [user, hash.as_bytes(), password] {
        digest.update((field.len() as u64).to_be_bytes());
        digest.update(field);
    }
    digest.finalize().into()
}

/// A bounded set; the oldest entry leaves first.
#[derive(Debug, Default)]
struct Cache {
    keys: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

impl Cache {
    fn contains(&self, key: &[u8; 32]) -> bool {
        self.keys.contains(key)
    }

    fn insert(&mut self, key: [u8; 32]) {
        if !self.keys.insert(key) {
            return;
        }
        self.order.push_back(key);
        while self.order.len() > CACHE_ENTRIES {
            if let Some(old) = self.order.pop_front() {
                self.keys.remove(&old);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn basic(user: &str, password: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        h.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Basic {token}")).unwrap());
        h
    }

    fn users(pairs: &[(&str, &str)]) -> Users {
        let map = pairs.iter().map(|(u, h)| (u.to_string(), h.to_string())).collect();
        Users::parse("basic_auth_users", &map).unwrap().unwrap()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    /// exporter-toolkit's `web_config_users_noTLS.good.yml` users (dave's password is dave123).
    const TOOLKIT_USERS: &[(&str, &str)] = &[
        ("alice", "$2y$12$1DpfPeqF9HzHJt.EWswy1exHluGfbhnn3yXhR7Xes6m3WJqFg0Wby"),
        ("dave", "$2y$10$2UXri9cIDdgeKjBo4Rlpx.U3ZLDV8X1IxKmsfOvhcM5oXQt/mLmXq"),
    ];

    #[test]
    fn right_wrong_and_unknown() {
        let users = users(TOOLKIT_USERS);
        let verifier = Verifier::default();
        runtime().block_on(async {
            assert!(verifier.check(&users, &basic("dave", "dave123")).await);
            assert!(!verifier.check(&users, &basic("dave", "bad")).await);
            assert!(!verifier.check(&users, &basic("nonexistent", "dave123")).await);
            assert!(!verifier.check(&users, &HeaderMap::new()).await);
            // Cached answers stay right.
            assert!(verifier.check(&users, &basic("dave", "dave123")).await);
            assert!(!verifier.check(&users, &basic("dave", "bad")).await);
        });
        assert_eq!((lock(&verifier.successes).len(), lock(&verifier.failures).len()), (1, 2));
    }

    /// exporter-toolkit's `TestByPassBasicAuthVuln` (CVE-2022-46146): a user name that ends in
    /// a known hash, and a password that starts with the fake hash, must not poison the cache.
    #[test]
    fn cache_poisoning_is_impossible() {
        let users = users(TOOLKIT_USERS);
        let verifier = Verifier::default();
        runtime().block_on(async {
            let poison = format!("alice{}", TOOLKIT_USERS[0].1);
            assert!(!verifier.check(&users, &basic(&poison, "fakepassword")).await);
            let sneaky = format!("{}fakepassword", users.fake);
            assert!(!verifier.check(&users, &basic("alice", &sneaky)).await);
        });
        assert_ne!(cache_key(b"ab", "c", b"d"), cache_key(b"a", "bc", b"d"));
    }

    #[test]
    fn unknown_users_are_checked_against_a_fake_hash_of_the_same_cost() {
        let users = users(TOOLKIT_USERS);
        let (hash, known) = users.hash_for(b"nobody");
        assert!(!known);
        let parts: bcrypt::HashParts = hash.parse().unwrap();
        assert_eq!(parts.get_cost(), 12, "ties go to the higher cost");
        assert_eq!(bcrypt::verify("", hash).ok(), Some(false), "a real bcrypt check that fails");
        let (hash, known) = users.hash_for(b"\xff\xfe");
        assert!(!known && hash == users.fake, "non-UTF-8 names are unknown users");
    }

    #[test]
    fn headers_are_parsed_strictly() {
        assert_eq!(basic_credentials(&basic("a", "b:c")), Some((b"a".to_vec(), b"b:c".to_vec())));
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("basic YTpi"));
        assert_eq!(basic_credentials(&h), Some((b"a".to_vec(), b"b".to_vec())), "the scheme is case-insensitive");
        for bad in ["Bearer YTpi", "Basic !!!", "Basic YWI=", "Basic", ""] {
            h.insert(AUTHORIZATION, HeaderValue::from_static(bad));
            assert_eq!(basic_credentials(&h), None, "{bad}");
        }
    }

    #[test]
    fn the_cache_is_bounded_and_swaps_are_seen() {
        let mut cache = Cache::default();
        for i in 0..(CACHE_ENTRIES as u8 + 10) {
            cache.insert([i; 32]);
        }
        assert_eq!(cache.len(), CACHE_ENTRIES);
        assert!(!cache.contains(&[0; 32]) && cache.contains(&[CACHE_ENTRIES as u8 + 9; 32]));
        let shared = SharedUsers::new(None);
        assert!(shared.current().is_none());
        shared.replace(Some(users(TOOLKIT_USERS)));
        assert_eq!(shared.current().unwrap().names().collect::<Vec<_>>(), ["alice", "dave"]);
        let (key, err) =
            Users::parse("logs.basic_auth_users", &[("eve".to_string(), "doe".to_string())].into()).unwrap_err();
        assert_eq!(key, "logs.basic_auth_users.eve");
        assert!(!err.contains("doe"), "{err}");
    }
}
