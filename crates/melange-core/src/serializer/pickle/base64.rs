//! Base64 as Python's `codecs.encode(data, "base64")` writes it (lines of 76 characters, each
//! ending with `\n`) and as `codecs.decode` reads it (line breaks and spaces ignored).

use super::error::PickleError;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// Characters per line of `base64.encodebytes`.
const LINE: usize = 76;

/// Encodes like Python's `base64.encodebytes`: a `\n` after every 76 characters and at the end
/// (nothing at all for empty input).
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4 * (LINE + 1) / LINE + 1);
    let mut column = 0;
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = [
            ALPHABET[(n >> 18) as usize & 63],
            ALPHABET[(n >> 12) as usize & 63],
            if chunk.len() > 1 {
                ALPHABET[(n >> 6) as usize & 63]
            } else {
                b'='
            },
            if chunk.len() > 2 {
                ALPHABET[n as usize & 63]
            } else {
                b'='
            },
        ];
        for c in chars {
            out.push(char::from(c));
            column += 1;
            if column == LINE {
                out.push('\n');
                column = 0;
            }
        }
    }
    if column > 0 {
        out.push('\n');
    }
    out
}

fn value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes standard base64 with padding, skipping ASCII whitespace. Unlike Python's lenient
/// decoder it rejects any other character that is not in the alphabet.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, PickleError> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut quad = [0u32; 4];
    let mut filled = 0;
    let mut padding = 0;
    for (position, c) in text.bytes().enumerate() {
        if c.is_ascii_whitespace() {
            continue;
        }
        let invalid = || PickleError::Base64 { position };
        if c == b'=' {
            // Padding only in the last two places of a quad.
            if filled < 2 {
                return Err(invalid());
            }
            padding += 1;
            quad[filled] = 0;
        } else {
            if padding > 0 {
                return Err(invalid());
            }
            quad[filled] = value(c).ok_or_else(invalid)?;
        }
        filled += 1;
        if filled == 4 {
            let n = (quad[0] << 18) | (quad[1] << 12) | (quad[2] << 6) | quad[3];
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            out.extend_from_slice(&bytes[..3 - padding]);
            filled = 0;
            if padding > 0 {
                // Nothing but whitespace may follow the padding.
                padding = 3;
            }
        } else if padding == 3 {
            return Err(invalid());
        }
    }
    if filled != 0 {
        return Err(PickleError::Base64 {
            position: text.len(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_like_python() {
        assert_eq!(encode(b""), "");
        assert_eq!(encode(b"a"), "YQ==\n");
        assert_eq!(encode(b"ab"), "YWI=\n");
        assert_eq!(encode(b"abc"), "YWJj\n");
        // 57 bytes make exactly one 76-character line.
        let line = encode(&[0u8; 57]);
        assert_eq!(line.len(), 77);
        assert!(line.ends_with('\n'));
        let two = encode(&[0u8; 58]);
        assert_eq!(two.lines().map(str::len).collect::<Vec<_>>(), vec![76, 4]);
        assert!(two.ends_with("AA==\n"));
    }

    #[test]
    fn decodes_what_it_encodes_and_rejects_garbage() {
        for n in 0..200 {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 % 256) as u8).collect();
            assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
        }
        assert!(decode("YQ=").is_err());
        assert!(decode("Y===").is_err());
        assert!(decode("YQ==YQ==").is_err());
        assert!(decode("YQ*=").is_err());
        assert_eq!(decode(" Y Q = = \r\n").unwrap(), b"a");
    }
}
