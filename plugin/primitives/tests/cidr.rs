//! CIDR networks and Envoy socket addresses as a config author writes them (`cidr`,
//! `allow_sources`): prefix lengths at their edges, families kept apart, IPv4-mapped IPv6.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use sluice_primitives::cidr::{parse_socket_ip, Cidr};
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> Cidr {
    Cidr::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

/// The addresses among `addrs` inside `cidr`, in order.
fn inside<'a>(cidr: &str, addrs: &[&'a str]) -> Vec<&'a str> {
    let n = net(cidr);
    addrs
        .iter()
        .copied()
        .filter(|a| n.contains(ip(a)))
        .collect()
}

const V4: [&str; 8] = [
    "0.0.0.0",
    "10.0.0.0",
    "10.1.2.3",
    "10.255.255.255",
    "11.0.0.0",
    "9.255.255.255",
    "192.168.1.7",
    "255.255.255.255",
];

#[test]
fn ipv4_prefixes_from_0_to_32() {
    assert_eq!(inside("0.0.0.0/0", &V4), V4);
    assert_eq!(inside("0.0.0.0/1", &V4), &V4[..6]);
    assert_eq!(
        inside("128.0.0.0/1", &V4),
        ["192.168.1.7", "255.255.255.255"]
    );
    assert_eq!(
        inside("10.0.0.0/8", &V4),
        ["10.0.0.0", "10.1.2.3", "10.255.255.255"]
    );
    // Host bits in the config are ignored: 10.9.9.9/8 is 10.0.0.0/8.
    assert_eq!(
        inside("10.9.9.9/8", &V4),
        ["10.0.0.0", "10.1.2.3", "10.255.255.255"]
    );
    assert_eq!(inside("10.1.2.2/31", &V4), ["10.1.2.3"]);
    assert_eq!(inside("10.1.2.3/32", &V4), ["10.1.2.3"]);
    assert_eq!(inside("10.1.2.3", &V4), ["10.1.2.3"]);
    assert_eq!(inside("255.255.255.255/32", &V4), ["255.255.255.255"]);
    assert_eq!(inside("0.0.0.0/32", &V4), ["0.0.0.0"]);
}

#[test]
fn ipv6_prefixes_from_0_to_128() {
    let addrs = [
        "::",
        "::1",
        "2001:db8::1",
        "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db9::",
        "fd00::7",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ];
    assert_eq!(inside("::/0", &addrs), addrs);
    assert_eq!(
        inside("2001:db8::/32", &addrs),
        ["2001:db8::1", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"]
    );
    assert_eq!(inside("fd00::/8", &addrs), ["fd00::7"]);
    assert_eq!(
        inside("8000::/1", &addrs),
        ["fd00::7", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]
    );
    assert_eq!(inside("::1/128", &addrs), ["::1"]);
    assert_eq!(inside("::1", &addrs), ["::1"]);
    assert_eq!(inside("::/127", &addrs), ["::", "::1"]);
    assert_eq!(
        inside("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", &addrs),
        ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]
    );
}

#[test]
fn families_do_not_mix() {
    // An IPv6 network never holds an IPv4 address, even one whose bits would fit.
    for v6 in ["::/0", "::/96", "::/64"] {
        assert!(!net(v6).contains(ip("10.1.2.3")), "{v6}");
        assert!(!net(v6).contains(ip("0.0.0.0")), "{v6}");
    }
    // An IPv4 network never holds a plain IPv6 address.
    for v4 in ["0.0.0.0/0", "0.0.0.0/1"] {
        assert!(!net(v4).contains(ip("::1")), "{v4}");
        assert!(!net(v4).contains(ip("2001:db8::1")), "{v4}");
    }
}

#[test]
fn ipv4_mapped_ipv6_addresses() {
    // An IPv4 network holds the IPv4-mapped form of its addresses (dual-stack listeners).
    assert!(net("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
    assert!(!net("10.0.0.0/8").contains(ip("::ffff:11.1.2.3")));
    assert!(net("0.0.0.0/0").contains(ip("::ffff:1.1.1.1")));
    // An IPv6 network written over the mapped range holds them as IPv6.
    assert!(net("::ffff:0:0/96").contains(ip("::ffff:10.1.2.3")));
    assert!(!net("::ffff:0:0/96").contains(ip("10.1.2.3")));
    assert!(!net("2001:db8::/32").contains(ip("::ffff:10.1.2.3")));
}

#[test]
fn bad_networks_name_the_problem() {
    let err = |s: &str| Cidr::parse(s).unwrap_err().to_string();
    assert_eq!(
        err("10.0.0.0/33"),
        "`10.0.0.0/33` is not a CIDR: prefix must be 0..=32"
    );
    assert_eq!(
        err("::/129"),
        "`::/129` is not a CIDR: prefix must be 0..=128"
    );
    assert_eq!(
        err("10.0.0.0/+8"),
        "`10.0.0.0/+8` is not a CIDR: prefix must be 0..=32"
    );
    assert_eq!(
        err("10.0.0.0/"),
        "`10.0.0.0/` is not a CIDR: prefix must be 0..=32"
    );
    assert_eq!(err("10.0.0/8"), "`10.0.0/8` is not a CIDR: bad address");
    assert_eq!(err("office"), "`office` is not a CIDR: bad address");
    assert!(Cidr::parse("10.0.0.0/32").is_ok());
    assert!(Cidr::parse("::/128").is_ok());
    assert!(Cidr::parse("::/0").is_ok());
}

#[test]
fn socket_addresses_as_envoy_writes_them() {
    assert_eq!(parse_socket_ip("10.1.2.3:51234"), Some(ip("10.1.2.3")));
    assert_eq!(parse_socket_ip("10.1.2.3"), Some(ip("10.1.2.3")));
    assert_eq!(
        parse_socket_ip("[2001:db8::1]:443"),
        Some(ip("2001:db8::1"))
    );
    assert_eq!(
        parse_socket_ip("[::ffff:10.1.2.3]:80"),
        Some(ip("::ffff:10.1.2.3"))
    );
    assert_eq!(parse_socket_ip("2001:db8::1"), Some(ip("2001:db8::1")));
    assert_eq!(parse_socket_ip("[2001:db8::1"), None);
    assert_eq!(parse_socket_ip("[office]:80"), None);
    assert_eq!(parse_socket_ip("office:80"), None);
    assert_eq!(parse_socket_ip(""), None);
}

/// `source.address` is read as std reads addresses: the one-pass IPv4 reading gives the same
/// answer as parsing the whole text, then `[v6]:port`, then the part before the last `:`, for
/// every text in a generated mix of valid, invalid and borderline addresses.
#[test]
fn socket_addresses_read_as_std_reads_them() {
    fn std_reading(text: &str) -> Option<IpAddr> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Some(ip);
        }
        if let Some(rest) = text.strip_prefix('[') {
            return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
        }
        text.rsplit_once(':').and_then(|(ip, _)| ip.parse().ok())
    }
    let octets = [
        "0", "00", "01", "1", "9", "10", "99", "100", "199", "249", "255", "256", "300", "999",
        "1000", "0255", "", "a", "-1", "+1", " 1",
    ];
    let tails = [
        "", ":", ":80", ":65535", ":x", ":8:0", ".5", "x", " ", "]:80", "::", "/24", "\n",
    ];
    let mut texts = vec![
        "::1".to_string(),
        "[::1]:80".to_string(),
        "::ffff:10.0.0.1".to_string(),
        "[::ffff:10.0.0.1]:443".to_string(),
        "fe80::1:abcd".to_string(),
        "1.2.3".to_string(),
        "1.2.3.".to_string(),
        "1..2.3".to_string(),
        ".1.2.3.4".to_string(),
    ];
    for a in octets {
        for b in ["0", "255", a] {
            for tail in tails {
                texts.push(format!("{a}.{b}.7.{a}{tail}"));
                texts.push(format!("10.{a}.{b}.1{tail}"));
                texts.push(format!("192.168.{b}.{a}{tail}"));
            }
        }
    }
    let mut read = 0;
    for text in &texts {
        let expected = std_reading(text);
        read += usize::from(expected.is_some());
        assert_eq!(parse_socket_ip(text), expected, "{text:?}");
    }
    // The mix holds both kinds, so the comparison covers both answers.
    assert!(
        read > 100 && read < texts.len() - 100,
        "{read} of {}",
        texts.len()
    );
}
