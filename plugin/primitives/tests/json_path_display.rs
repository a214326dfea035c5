#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A `json::Path` prints as its rendered path, the form compile's error messages put in front
//! of their reason (`flags.checkout.rules[1]: ...`).
use sluice_primitives::json::Path;

#[test]
fn a_path_prints_as_it_renders() {
    let root = Path::Root;
    let flags = root.key("flags");
    let checkout = flags.key("checkout");
    let rules = checkout.key("rules");
    let second = rules.index(1);
    assert_eq!(second.to_string(), "flags.checkout.rules[1]");
    assert_eq!(
        format!("{second}: unknown operator"),
        "flags.checkout.rules[1]: unknown operator"
    );
    let list = root.index(0);
    let name = list.key("name");
    assert_eq!(name.to_string(), "[0].name");
    assert_eq!(root.to_string(), "");
    // The same text as `render`, which parse errors use.
    assert_eq!(format!("{name}"), name.render());
}
