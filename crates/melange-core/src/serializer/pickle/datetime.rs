//! `datetime.datetime` on both sides: the reader turns the pickled state into the string
//! Python's `datetime.isoformat()` returns; this module's serde helpers make the writer emit a
//! real `datetime.datetime`.
//!
//! Mark a field with `#[serde(with = "melange_core::serializer::pickle::datetime")]` (or
//! `...::datetime::option` for an `Option`). The field's type must serialize as an ISO 8601 /
//! RFC 3339 string (`String`, chrono's `DateTime<Tz>`, `time::OffsetDateTime` with its
//! `rfc3339` serde helper, ...) and deserialize from one. Other serializers (JSON) see the
//! plain string, so the same struct still works with them.
//!
//! ```
//! use melange_core::serializer::pickle::datetime;
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct OrderCreated {
//!     order_id: u64,
//!     #[serde(with = "datetime")]
//!     occurred_on: String,
//!     #[serde(with = "datetime::option", default)]
//!     shipped_on: Option<String>,
//! }
//! ```

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The newtype-struct name the writer recognises as "this string is a `datetime`".
pub(crate) const MARKER: &str = "__melange_pickle_datetime";

/// Serializes `value` (which must serialize as an ISO 8601 string) so that the pickle writer
/// emits a `datetime.datetime`; other serializers see the string unchanged.
pub fn serialize<T, S>(value: &T, serializer: S) -> Result<S::Ok, S::Error>
where
    T: Serialize + ?Sized,
    S: Serializer,
{
    serializer.serialize_newtype_struct(MARKER, value)
}

/// Deserializes the field from the ISO 8601 string the reader produces for a `datetime`.
pub fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    T::deserialize(deserializer)
}

/// The same helpers for an `Option` field: `None` is Python's `None`.
pub mod option {
    use super::{Deserialize, Deserializer, MARKER, Serialize, Serializer};

    struct Marked<'a, T: ?Sized>(&'a T);

    impl<T: Serialize + ?Sized> Serialize for Marked<'_, T> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_newtype_struct(MARKER, self.0)
        }
    }

    /// Serializes `Some` as a `datetime.datetime` and `None` as `None`.
    pub fn serialize<T, S>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error>
    where
        T: Serialize,
        S: Serializer,
    {
        match value {
            Some(value) => serializer.serialize_some(&Marked(value)),
            None => serializer.serialize_none(),
        }
    }

    /// Deserializes `None` or the ISO 8601 string of a `datetime`.
    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(deserializer)
    }
}

/// Formats a UTC offset in seconds as `isoformat` does: `+HH:MM`, or `+HH:MM:SS` when the
/// seconds are not zero.
pub(crate) fn format_offset(seconds: i64) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    if sec == 0 {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}:{m:02}:{sec:02}")
    }
}

fn format_clock(out: &mut String, h: u8, m: u8, s: u8, micros: u32) {
    out.push_str(&format!("{h:02}:{m:02}:{s:02}"));
    if micros != 0 {
        out.push_str(&format!(".{micros:06}"));
    }
}

/// `datetime.datetime.isoformat()` of a pickled 10-byte state, or `None` when the state is
/// not a valid datetime.
pub(crate) fn format_datetime(state: &[u8], offset: Option<i64>) -> Option<String> {
    let [y0, y1, month, day, h, m, s, u0, u1, u2] = *state else {
        return None;
    };
    let year = u16::from(y0) << 8 | u16::from(y1);
    let month = month & 0x7f; // the high bit is `fold`
    let micros = u32::from(u0) << 16 | u32::from(u1) << 8 | u32::from(u2);
    if !(1..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || h > 23
        || m > 59
        || s > 59
        || micros > 999_999
    {
        return None;
    }
    let mut out = format!("{year:04}-{month:02}-{day:02}T");
    format_clock(&mut out, h, m, s, micros);
    if let Some(offset) = offset {
        out.push_str(&format_offset(offset));
    }
    Some(out)
}

/// `datetime.date.isoformat()` of a pickled 4-byte state.
pub(crate) fn format_date(state: &[u8]) -> Option<String> {
    let [y0, y1, month, day] = *state else {
        return None;
    };
    let year = u16::from(y0) << 8 | u16::from(y1);
    if !(1..=9999).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(format!("{year:04}-{month:02}-{day:02}"))
}

/// `datetime.time.isoformat()` of a pickled 6-byte state.
pub(crate) fn format_time(state: &[u8], offset: Option<i64>) -> Option<String> {
    let [h, m, s, u0, u1, u2] = *state else {
        return None;
    };
    let h = h & 0x7f; // the high bit is `fold`
    let micros = u32::from(u0) << 16 | u32::from(u1) << 8 | u32::from(u2);
    if h > 23 || m > 59 || s > 59 || micros > 999_999 {
        return None;
    }
    let mut out = String::new();
    format_clock(&mut out, h, m, s, micros);
    if let Some(offset) = offset {
        out.push_str(&format_offset(offset));
    }
    Some(out)
}

/// A datetime parsed from an ISO 8601 string: Python's pickled state and UTC offset.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// The 10-byte state `datetime.datetime` is rebuilt from.
    pub state: [u8; 10],
    /// The offset from UTC in seconds; `None` for a naive datetime.
    pub offset: Option<i32>,
}

struct Cursor<'a> {
    s: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<u32> {
        let part = self.s.get(self.at..self.at + n)?;
        let mut v = 0u32;
        for &c in part {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        self.at += n;
        Some(v)
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.at) == Some(&c) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }
}

/// Parses `YYYY-MM-DD[T ]HH:MM[:SS[.fraction]][Z|±HH:MM[:SS]]`. Digits of the fraction past
/// microseconds are dropped (truncated), as Python keeps microseconds only.
pub(crate) fn parse(text: &str) -> Result<Parsed, String> {
    let bad =
        || format!("`{text}` is not an ISO 8601 datetime (YYYY-MM-DDTHH:MM:SS[.ffffff][+HH:MM])");
    let mut c = Cursor {
        s: text.as_bytes(),
        at: 0,
    };
    let year = c.digits(4).ok_or_else(bad)?;
    let ok = c.eat(b'-');
    let month = c.digits(2).filter(|_| ok).ok_or_else(bad)?;
    let ok = c.eat(b'-');
    let day = c.digits(2).filter(|_| ok).ok_or_else(bad)?;
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return Err(bad());
    }
    let hour = c.digits(2).ok_or_else(bad)?;
    let ok = c.eat(b':');
    let minute = c.digits(2).filter(|_| ok).ok_or_else(bad)?;
    let mut second = 0;
    let mut micros = 0;
    if c.eat(b':') {
        second = c.digits(2).ok_or_else(bad)?;
        if c.eat(b'.') || c.eat(b',') {
            let mut n = 0;
            while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
                if n < 6 {
                    micros = micros * 10 + u32::from(d - b'0');
                }
                n += 1;
                c.at += 1;
            }
            if n == 0 {
                return Err(bad());
            }
            for _ in n..6 {
                micros *= 10;
            }
        }
    }
    let offset = match c.peek() {
        None => None,
        Some(b'Z' | b'z') => {
            c.at += 1;
            Some(0)
        }
        Some(sign @ (b'+' | b'-')) => {
            c.at += 1;
            let h = c.digits(2).ok_or_else(bad)?;
            let ok = c.eat(b':');
            let m = c.digits(2).filter(|_| ok).ok_or_else(bad)?;
            let s = if c.eat(b':') {
                c.digits(2).ok_or_else(bad)?
            } else {
                0
            };
            if h > 23 || m > 59 || s > 59 {
                return Err(bad());
            }
            let total = (h * 3600 + m * 60 + s) as i32;
            Some(if sign == b'-' { -total } else { total })
        }
        Some(_) => return Err(bad()),
    };
    if c.at != c.s.len() {
        return Err(bad());
    }
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 0,
    };
    if !(1..=9999).contains(&year)
        || !(1..=days_in_month).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    let state = [
        (year >> 8) as u8,
        year as u8,
        month as u8,
        day as u8,
        hour as u8,
        minute as u8,
        second as u8,
        (micros >> 16) as u8,
        (micros >> 8) as u8,
        micros as u8,
    ];
    Ok(Parsed { state, offset })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_vector_state_like_isoformat() {
        let state = [0x07, 0xea, 0x0b, 0x1c, 0x0b, 0x28, 0x0f, 0x0b, 0xc4, 0x8d];
        assert_eq!(
            format_datetime(&state, Some(0)).unwrap(),
            "2026-11-28T11:40:15.771213+00:00"
        );
        assert_eq!(
            format_datetime(&state, None).unwrap(),
            "2026-11-28T11:40:15.771213"
        );
        assert_eq!(format_offset(-(5 * 3600 + 30 * 60)), "-05:30");
        assert_eq!(format_offset(3661), "+01:01:01");
        assert!(format_datetime(&[0; 10], None).is_none());
        assert!(format_datetime(&[0; 3], None).is_none());
    }

    #[test]
    fn parses_what_it_formats() {
        for text in [
            "2026-11-28T11:40:15.771213+00:00",
            "2026-11-28T11:40:15",
            "2024-02-29T00:00:00-05:30",
        ] {
            let parsed = parse(text).unwrap();
            let offset = parsed.offset.map(i64::from);
            assert_eq!(format_datetime(&parsed.state, offset).unwrap(), text);
        }
        let p = parse("2026-11-28 11:40:15.123456789Z").unwrap();
        assert_eq!(p.offset, Some(0));
        assert_eq!(
            format_datetime(&p.state, Some(0)).unwrap(),
            "2026-11-28T11:40:15.123456+00:00"
        );
        for bad in [
            "",
            "2026-11-28",
            "2023-02-29T00:00:00",
            "2026-11-28T11:40:15+",
            "2026-11-28T11:40:15.",
            "2026-11-28T24:00:00",
            "2026-11-28T11:40:15 ",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
