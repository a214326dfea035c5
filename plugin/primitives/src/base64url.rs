//! Base64url without padding (RFC 4648 §5), the alphabet that survives in a
//! header value and a baggage member without escaping.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub fn encode_into(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = match chunk {
            [a, b, c] => u32::from_be_bytes([0, *a, *b, *c]),
            [a, b] => u32::from_be_bytes([0, *a, *b, 0]),
            [a] => u32::from_be_bytes([0, *a, 0, 0]),
            _ => 0,
        };
        let digits = chunk.len() + 1;
        for i in 0..digits {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]);
        }
    }
}

pub fn encode(data: &[u8]) -> String {
    let mut out = Vec::new();
    encode_into(data, &mut out);
    // The alphabet is ASCII, so this cannot fail; map rather than unwrap.
    String::from_utf8(out).unwrap_or_default()
}

fn digit(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    } as u32)
}

/// Decodes unpadded base64url; `None` for any byte outside the alphabet, a
/// length that no encoding has (4n+1), or non-zero bits left over in the last
/// digit (so each byte string has exactly one accepted encoding).
pub fn decode(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    for chunk in text.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= digit(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        let keep = chunk.len() - 1;
        if bytes[1 + keep..].iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(&bytes[1..1 + keep]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4648_vectors_without_padding() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"fooba", "Zm9vYmE"),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(encode(plain), encoded);
            assert_eq!(decode(encoded.as_bytes()).as_deref(), Some(plain));
        }
    }

    #[test]
    fn url_safe_digits_replace_plus_and_slash() {
        assert_eq!(encode(&[0xfb, 0xff]), "-_8");
        assert_eq!(decode(b"-_8"), Some(vec![0xfb, 0xff]));
        assert_eq!(decode(b"+/8"), None);
    }

    #[test]
    fn every_byte_string_round_trips() {
        let data: Vec<u8> = (0..=255u8).collect();
        for len in 0..data.len() {
            assert_eq!(
                decode(encode(&data[..len]).as_bytes()).as_deref(),
                Some(&data[..len])
            );
        }
    }

    #[test]
    fn rejects_padding_bad_lengths_and_non_canonical_tails() {
        assert_eq!(decode(b"Zg=="), None, "padding is not part of the alphabet");
        assert_eq!(decode(b"Zm9vY"), None, "4n+1 digits encode nothing");
        assert_eq!(
            decode(b"Zh"),
            None,
            "low bits of the last digit must be zero"
        );
        assert_eq!(decode(b"Zm9 v"), None);
        assert_eq!(decode("Zm9é".as_bytes()), None);
    }
}
