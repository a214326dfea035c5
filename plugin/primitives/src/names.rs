//! The module's two name maps. Every distinct hash map type is a copy of hashbrown's code in the
//! .wasm (its rehash alone is 1–2 KB, and V8 compiles every function into each Envoy), so name
//! lookups share two types: a name → index map over names borrowed from the config (the value
//! indexes a list the caller keeps), and one that owns its names.
use fnv::FnvHashMap;

/// Names borrowed from a config being compiled, each to an index.
pub type NameIndex<'a> = FnvHashMap<&'a str, usize>;

/// Owned names, each to an index.
pub type OwnedNameIndex = FnvHashMap<Box<str>, usize>;
