//! The module's batched bucket hashing (wasm SIMD128 lanes, plugin/engine/src/salt_table.rs)
//! against the native engine, which hashes the same salts with plain arrays: a config with enough
//! rollout and ramp salts of every alignment that every batch is used, users and sessions with
//! keys of many lengths.
mod common;

use std::time::UNIX_EPOCH;

/// 80 flags whose names (their salts) have lengths 1..=40: rollouts by user, a quarter of them
/// by session, and ramps.
fn config() -> String {
    let flags: Vec<String> = (0..80)
        .map(|i| {
            let name = format!("f{i:02}{}", "x".repeat(i % 38));
            let by = if i % 4 == 0 { r#""bucket_by": "session","# } else { "" };
            let rollout = format!(r#"{{ "on": {}, "off": {} }}"#, 10 + i % 80, 90 - i % 80);
            let ramp = if i % 3 == 0 {
                r#""schedule": { "ramp": { "start": "2020-01-01T00:00:00Z", "duration": "36500d", "from": 0, "to": 100 } },"#
            } else {
                ""
            };
            format!(r#""{name}": {{ {by} {ramp} "rules": [{{ "rollout": {rollout} }}] }}"#)
        })
        .collect();
    format!(
        r#"{{ "version": 1,
  "identity": {{ "user": [{{ "header": "x-user-id" }}], "session": [{{ "header": "x-session-id" }}] }},
  "flags": {{ {} }},
  "outputs": {{ "flags_header": "x-sluice-flags" }} }}"#,
        flags.join(",\n")
    )
}

#[test]
fn batched_buckets_in_the_module_match_the_native_engine() {
    let config = config();
    let plan = sluice_core::compile::load(config.as_bytes()).unwrap();
    let mut host = common::plugin("sluice.wasm")
        .host()
        .plugin_config(&config)
        .build()
        .unwrap();
    let now_ms = host.now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    for n in 0..120usize {
        // Keys of lengths 1..=70, and requests without a session or without a user.
        let user = format!("{n}{}", "u".repeat(n * 7 % 70));
        let session = format!("s{}", "k".repeat(n * 3 % 41));
        let mut request = host.request();
        if n % 10 != 3 {
            request = request.header("x-user-id", &user);
        }
        if n % 10 != 7 {
            request = request.header("x-session-id", &session);
        }
        let out = request.send().unwrap();
        let native = common::native_sets(&plan, &out, None, now_ms);
        let flags = native.get("x-sluice-flags").cloned().unwrap_or_default();
        let module = out.request_header("x-sluice-flags").unwrap_or_default();
        assert_eq!(module, flags, "request {n}");
        assert!(flags.contains("=on") && flags.contains("=off"), "{flags}");
    }
}
