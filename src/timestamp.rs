//! [`Timestamp`]: an RFC 3339 time as configs carry it, typed, with its original text kept.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::error::{Error, Result};

/// A point in time as an image config writes it (`created` of a history entry): RFC 3339,
/// parsed into seconds and nanoseconds since the Unix epoch, with the text it was read from
/// kept, so a config read and written again is the same bytes (the same [`ImageId`](crate::ImageId)).
///
/// Two timestamps are equal when they name the same instant, whatever their text
/// (`2024-01-01T01:00:00+01:00` is `2024-01-01T00:00:00Z`); `Display` and [`as_str`](Self::as_str)
/// give the text.
///
/// ```
/// use layercake::config::Timestamp;
///
/// let t: Timestamp = "2023-11-14T23:13:20.5+01:00".parse()?;
/// assert_eq!((t.unix_seconds(), t.subsec_nanos()), (1_700_000_000, 500_000_000));
/// assert_eq!(t.to_string(), "2023-11-14T23:13:20.5+01:00", "the text as read");
/// assert_eq!(Timestamp::from_unix(1_700_000_000).as_str(), "2023-11-14T22:13:20Z");
/// assert!(Timestamp::from_unix(1_700_000_000) < t);
/// assert!("yesterday".parse::<Timestamp>().is_err());
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Clone)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
    text: Box<str>,
}

impl Timestamp {
    /// The time `secs` seconds after the Unix epoch, written as Docker writes it
    /// (`2023-11-14T22:13:20Z`, UTC, no fraction).
    ///
    /// ```
    /// use layercake::config::Timestamp;
    ///
    /// assert_eq!(Timestamp::from_unix(0).to_string(), "1970-01-01T00:00:00Z");
    /// ```
    pub fn from_unix(secs: i64) -> Timestamp {
        Timestamp {
            secs,
            nanos: 0,
            text: crate::config::rfc3339(secs).into(),
        }
    }

    /// Parses RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`), as Go's `time.Time`
    /// reads a config.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the text if it is not RFC 3339.
    ///
    /// ```
    /// use layercake::config::Timestamp;
    ///
    /// let t = Timestamp::parse("2024-02-29T12:00:00Z")?;
    /// assert_eq!(t, Timestamp::from_unix(1_709_208_000));
    /// assert!(Timestamp::parse("2023-02-29T12:00:00Z").is_err(), "not a leap year");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Timestamp> {
        let (secs, nanos) = parse_rfc3339(text.as_bytes()).ok_or_else(|| {
            Error::config(format!(
                "invalid RFC 3339 time `{}`",
                crate::error::lossy(text.as_bytes())
            ))
        })?;
        Ok(Timestamp {
            secs,
            nanos,
            text: text.into(),
        })
    }

    /// Seconds since the Unix epoch (negative before it).
    ///
    /// ```
    /// use layercake::config::Timestamp;
    ///
    /// assert_eq!(Timestamp::parse("1970-01-01T00:01:00Z")?.unix_seconds(), 60);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn unix_seconds(&self) -> i64 {
        self.secs
    }

    /// The fraction of the second, in nanoseconds.
    ///
    /// ```
    /// use layercake::config::Timestamp;
    ///
    /// assert_eq!(Timestamp::parse("2024-01-01T00:00:00.123456789Z")?.subsec_nanos(), 123_456_789);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// The text, exactly as read (or as [`from_unix`](Self::from_unix) wrote it).
    ///
    /// ```
    /// use layercake::config::Timestamp;
    ///
    /// let t = Timestamp::parse("2024-01-01T00:00:00.000000000Z")?;
    /// assert_eq!(t.as_str(), "2024-01-01T00:00:00.000000000Z");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// `(seconds, nanoseconds)` since the epoch, or `None` if `s` is not RFC 3339.
fn parse_rfc3339(s: &[u8]) -> Option<(i64, u32)> {
    fn digits(s: &[u8], n: usize) -> Option<i64> {
        if s.len() < n || !s[..n].iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(s[..n].iter().fold(0, |a, d| a * 10 + i64::from(d - b'0')))
    }
    if s.len() < 20 || s[4] != b'-' || s[7] != b'-' || s[13] != b':' || s[16] != b':' {
        return None;
    }
    if !matches!(s[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (digits(s, 4)?, digits(&s[5..], 2)?, digits(&s[8..], 2)?);
    let (hour, min, sec) = (
        digits(&s[11..], 2)?,
        digits(&s[14..], 2)?,
        digits(&s[17..], 2)?,
    );
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month) || day < 1 || day > month_days[month as usize - 1] {
        return None;
    }
    if hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(b'.') = rest.first() {
        let n = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        for (i, d) in rest[1..=n].iter().enumerate() {
            if i < 9 {
                nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
            }
        }
        rest = &rest[1 + n..];
    }
    let offset = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = digits(&[*h1, *h2], 2)?;
            let m = digits(&[*m1, *m2], 2)?;
            if h > 23 || m > 59 {
                return None;
            }
            let o = h * 3600 + m * 60;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hour * 3600 + min * 60 + sec - offset, nanos))
}

impl PartialEq for Timestamp {
    fn eq(&self, other: &Timestamp) -> bool {
        (self.secs, self.nanos) == (other.secs, other.nanos)
    }
}

impl Eq for Timestamp {}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Timestamp) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timestamp {
    fn cmp(&self, other: &Timestamp) -> Ordering {
        (self.secs, self.nanos).cmp(&(other.secs, other.nanos))
    }
}

impl Hash for Timestamp {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.secs, self.nanos).hash(state);
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({:?})", &*self.text)
    }
}

impl FromStr for Timestamp {
    type Err = Error;

    fn from_str(s: &str) -> Result<Timestamp> {
        Timestamp::parse(s)
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Timestamp, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_formatter_and_keeps_the_text() {
        for secs in [
            -86_400 * 365 * 70,
            -1,
            0,
            59,
            951_782_400,
            1_700_000_000,
            4_102_444_800,
        ] {
            let t = Timestamp::from_unix(secs);
            let parsed = Timestamp::parse(t.as_str()).unwrap();
            assert_eq!((parsed.unix_seconds(), parsed.subsec_nanos()), (secs, 0));
        }
        let t = Timestamp::parse("2016-06-01T20:53:37.123456789-07:00").unwrap();
        assert_eq!(t.unix_seconds(), 1_464_839_617);
        assert_eq!(t.as_str(), "2016-06-01T20:53:37.123456789-07:00");
        for bad in [
            "",
            "2024-01-01",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00+1:00",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }
}
