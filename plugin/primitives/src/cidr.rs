//! IP networks (`10.0.0.0/8`, `2001:db8::/32`) and socket addresses as Envoy
//! reports them (`1.2.3.4:5678`, `[::1]:80`).
use std::fmt;
use std::net::IpAddr;

/// A parsed network. IPv4 networks match IPv4 addresses and IPv4-mapped IPv6
/// addresses; IPv6 networks match IPv6 addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: u128,
    mask: u128,
    v4: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrError(pub String);

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Cidr {
    /// Parses `addr/prefix`; a bare address is a single-host network.
    pub fn parse(text: &str) -> Result<Cidr, CidrError> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| not_a_cidr(text, "bad address"))?;
        let (bits, width, v4) = match addr {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32u32, true),
            IpAddr::V6(a) => (u128::from(a), 128u32, false),
        };
        let prefix = match prefix_text {
            None => width,
            Some(p) => match p.parse::<u32>() {
                Ok(n) if n <= width && !p.starts_with('+') => n,
                _ => return Err(not_a_cidr(text, &format!("prefix must be 0..={width}"))),
            },
        };
        let mask = if prefix == 0 {
            0
        } else {
            (!0u128 << (width - prefix)) & width_mask(width)
        };
        Ok(Cidr {
            network: bits & mask,
            mask,
            v4,
        })
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        let (bits, v4) = match addr {
            IpAddr::V4(a) => (u128::from(u32::from(a)), true),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) if self.v4 => (u128::from(u32::from(v4)), true),
                _ => (u128::from(a), false),
            },
        };
        v4 == self.v4 && bits & self.mask == self.network
    }
}

#[cold]
#[inline(never)]
fn not_a_cidr(text: &str, why: &str) -> CidrError {
    CidrError(format!("`{text}` is not a CIDR: {why}"))
}

fn width_mask(width: u32) -> u128 {
    if width == 128 {
        !0
    } else {
        (1u128 << width) - 1
    }
}

/// The IP of an address as Envoy writes `source.address`: `ip:port`,
/// `[v6]:port`, or a bare IP.
pub fn parse_socket_ip(text: &str) -> Option<IpAddr> {
    // The usual case, `a.b.c.d:port`, read in one pass: std's parser would first fail on the
    // whole text (as IPv4, then as IPv6) and then run again on the part before the port.
    if let Some((ip, rest)) = ipv4_prefix(text.as_bytes()) {
        return match rest {
            [] => Some(ip),
            [b':', port @ ..] if !port.contains(&b':') => Some(ip),
            _ => None,
        };
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    text.rsplit_once(':').and_then(|(ip, _)| ip.parse().ok())
}

/// A dotted-quad IPv4 address at the start of `text`, as std reads one (four decimal octets up
/// to 255, no leading zeros), and what follows it.
fn ipv4_prefix(text: &[u8]) -> Option<(IpAddr, &[u8])> {
    let mut octets = [0u8; 4];
    let (mut octet, mut digits, mut value) = (0, 0, 0u32);
    for (at, &b) in text.iter().enumerate() {
        match b {
            b'0'..=b'9' if digits < 3 && !(digits == 1 && value == 0) => {
                value = value * 10 + u32::from(b - b'0');
                digits += 1;
            }
            b'.' if digits > 0 && octet < 3 && value <= 255 => {
                octets[octet] = value as u8;
                (octet, digits, value) = (octet + 1, 0, 0);
            }
            _ => return ipv4_end(octets, octet, digits, value, text.get(at..)?),
        }
    }
    ipv4_end(octets, octet, digits, value, &[])
}

/// The address once its last octet has ended, if there were four; a fourth digit or a digit
/// after a leading zero ends it too, so what follows starts with a digit and is refused.
fn ipv4_end(
    mut octets: [u8; 4],
    octet: usize,
    digits: u32,
    value: u32,
    rest: &[u8],
) -> Option<(IpAddr, &[u8])> {
    if octet != 3 || digits == 0 || value > 255 || rest.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    octets[3] = value as u8;
    Some((IpAddr::from(octets), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The one-pass reading takes every IPv4 address itself (falling back to std's parser
    /// would give the same answer, only slower), and stops where the address ends.
    #[test]
    fn every_ipv4_octet_is_read_in_one_pass() {
        for n in 0..=255u8 {
            for (text, rest) in [
                (format!("{n}.1.2.3"), ""),
                (format!("1.{n}.2.3:80"), ":80"),
                (format!("1.2.{n}.3:"), ":"),
                (format!("1.2.3.{n}:443"), ":443"),
            ] {
                let (ip, after) = ipv4_prefix(text.as_bytes()).unwrap();
                assert_eq!(
                    ip,
                    text.split(':').next().unwrap().parse::<IpAddr>().unwrap()
                );
                assert_eq!(after, rest.as_bytes(), "{text}");
            }
        }
        for refused in [
            "256.1.2.3",
            "1.2.3.256",
            "01.2.3.4",
            "1.2.3.04",
            "1.2.3",
            "1.2.3.",
            "1..2.3",
        ] {
            assert_eq!(ipv4_prefix(refused.as_bytes()), None, "{refused}");
        }
    }

    #[test]
    fn matches_v4_and_v6_networks() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.2.3")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::7")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.1.2.3")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("192.168.1.7")
            .unwrap()
            .contains(ip("192.168.1.7")));
        assert!(!Cidr::parse("192.168.1.7")
            .unwrap()
            .contains(ip("192.168.1.8")));
    }

    #[test]
    fn rejects_bad_networks() {
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "x/8",
            "::/129",
            "10.0.0.0/-1",
            "10.0.0.0/",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_envoy_socket_addresses() {
        assert_eq!(parse_socket_ip("1.2.3.4:5678"), Some(ip("1.2.3.4")));
        assert_eq!(parse_socket_ip("[::1]:80"), Some(ip("::1")));
        assert_eq!(parse_socket_ip("::1"), Some(ip("::1")));
        assert_eq!(parse_socket_ip("nonsense"), None);
    }
}
