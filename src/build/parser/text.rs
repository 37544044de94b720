//! Lines of a Dockerfile: newlines, the escape character that continues a line, and the
//! logical line made of several physical ones, which maps its offsets back to lines and
//! columns for errors.

use crate::error::Error;

/// A line without its line ending (`\n`, `\r\n`, any trailing `\r` and `\n`).
pub(super) fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// Splits off a continuation: the escape character at the end of the line, followed by
/// nothing but spaces and tabs and not itself escaped (`\\` at the end ends the line).
/// Returns the line without it, and whether it continues.
pub(super) fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let end = line.trim_end_matches([' ', '\t']);
    if let Some(before) = end.strip_suffix(escape) {
        if !before.ends_with(escape) {
            return (before, true);
        }
    }
    (line, false)
}

/// One instruction's text: its physical lines joined, continuations and comments removed.
#[derive(Debug, Default)]
pub(super) struct Logical<'a> {
    /// The joined text.
    pub text: String,
    segments: Vec<Segment<'a>>,
}

/// Where a piece of the logical line comes from.
#[derive(Debug)]
struct Segment<'a> {
    /// Its offset in the logical text.
    start: usize,
    /// Its line number, from 1.
    line: usize,
    /// The physical line, and the offset in it where the piece starts.
    physical: &'a str,
    offset: usize,
}

impl<'a> Logical<'a> {
    /// Appends `part`, which starts at byte `offset` of line `line` (`physical`).
    pub fn push(&mut self, part: &str, line: usize, physical: &'a str, offset: usize) {
        self.segments.push(Segment {
            start: self.text.len(),
            line,
            physical,
            offset,
        });
        self.text.push_str(part);
    }

    /// The line and column (from 1, in characters) of a byte offset in the text.
    pub fn position(&self, at: usize) -> (usize, usize) {
        let at = at.min(self.text.len());
        let Some(segment) = self.segments.iter().rev().find(|s| s.start <= at) else {
            return (1, 1);
        };
        let before = self
            .physical_prefix(segment)
            .chars()
            .count()
            .saturating_add(
                self.text
                    .get(segment.start..at)
                    .map_or(0, |s| s.chars().count()),
            );
        (segment.line, before + 1)
    }

    fn physical_prefix(&self, segment: &Segment<'a>) -> &'a str {
        segment.physical.get(..segment.offset).unwrap_or("")
    }

    /// An error at a byte offset of the text.
    pub fn error(&self, at: usize, reason: impl Into<String>) -> Error {
        let (line, column) = self.position(at);
        Error::Dockerfile {
            line,
            column,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation() {
        assert_eq!(trim_continuation("a \\", '\\'), ("a ", true));
        assert_eq!(trim_continuation("a \\ \t", '\\'), ("a ", true));
        assert_eq!(trim_continuation("\\", '\\'), ("", true));
        assert_eq!(trim_continuation("a \\\\", '\\'), ("a \\\\", false));
        assert_eq!(trim_continuation("a `", '`'), ("a ", true));
        assert_eq!(trim_continuation("a \\", '`'), ("a \\", false));
    }

    #[test]
    fn positions() {
        let mut logical = Logical::default();
        logical.push("RUN a ", 2, "  RUN a \\", 2);
        logical.push("  b", 4, "  b", 0);
        assert_eq!(logical.position(0), (2, 3));
        assert_eq!(logical.position(4), (2, 7));
        assert_eq!(logical.position(8), (4, 3));
    }
}
