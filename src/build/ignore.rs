//! `.dockerignore`: the file's lines, Docker's pattern language, and which context paths a
//! build leaves out (the docker CLI's context walk and moby's pattern matcher, as rules).

use std::fmt;
use std::fs;
use std::io;
use std::path::Path;

use crate::error::{Error, Result};

/// The most `Ignore::from_dir` reads of a `.dockerignore`.
const MAX_BYTES: u64 = 4 << 20;
/// The patterns of a `.dockerignore` file: which paths of a build context are left out.
///
/// The rules are Docker's (the docker CLI reads the file; moby's pattern matcher decides):
///
/// - One pattern a line. A line that *starts* with `#` is a comment; blank lines are
///   skipped; whitespace around a pattern is trimmed.
/// - A pattern is cleaned as a path (`./a//b/` is `a/b`, `a/../b` is `b`) and a leading `/`
///   is dropped: every pattern is anchored at the context root.
/// - `*` is any run of characters but `/`; `?` one character but `/`; `[a-z]`, `[^a-z]` a
///   character class; `\` makes the next character literal; `**` any number of
///   directories (`**/x`, `a/**/x`, `a/**`).
/// - A pattern that matches a path also matches everything below it.
/// - `!` re-includes what an earlier pattern left out; the last pattern that matches a path
///   (or one of its parents) decides.
///
/// Where Docker's matcher leaks its implementation (it turns a pattern into a regular
/// expression), this type keeps the documented meaning instead, and so differs from the
/// docker 20.10 CLI in these corners (checked against it): `+ ( ) | { }` are regex
/// operators there (`a+b` leaves out `aab`, not `a+b`; later Docker escapes them, as here),
/// `^` is an anchor there (`x^y` matches nothing), `\d`, `\w`, `\s` are regex classes there
/// (here `\d` is a literal `d`); and 20.10 matches a pattern against only one parent of a
/// path, the one with as many components as the pattern (`**/deep` does not leave out
/// `a/b/deep/f` once `!a/b/deep/keep` makes the walk look inside); later Docker and
/// BuildKit try every parent, as here.
///
/// ```
/// use layercake::build::Ignore;
///
/// let ignore = Ignore::parse("# build output\ntarget\n*.log\n!keep.log\n")?;
/// assert!(ignore.excludes("target/debug/app"));
/// assert!(ignore.excludes("build.log"));
/// assert!(!ignore.excludes("keep.log"));
/// assert!(!ignore.excludes("logs/build.log")); // `*` does not cross `/`
/// # Ok::<(), layercake::build::IgnoreError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

/// A pattern of a `.dockerignore` that Docker would refuse: which line, what is wrong.
///
/// ```
/// use layercake::build::{Ignore, IgnoreErrorKind};
///
/// let err = Ignore::parse("target\n[a-\n").unwrap_err();
/// assert_eq!(err.line(), 2);
/// assert_eq!(err.kind(), &IgnoreErrorKind::BadClass);
/// assert_eq!(err.to_string(), ".dockerignore line 2: `[a-`: a malformed character class");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreError {
    line: usize,
    pattern: String,
    kind: IgnoreErrorKind,
}

/// What is wrong with a `.dockerignore` pattern (see [`IgnoreError`]).
///
/// ```
/// use layercake::build::{Ignore, IgnoreErrorKind};
///
/// let err = Ignore::parse("!\n").unwrap_err();
/// assert_eq!(err.kind(), &IgnoreErrorKind::LoneExclamation);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IgnoreErrorKind {
    /// `!` with nothing after it.
    LoneExclamation,
    /// A `[` with no closing `]`, an empty class, a range with a missing end, or a range
    /// whose start is after its end.
    BadClass,
    /// A `\` at the end of the pattern, escaping nothing.
    TrailingBackslash,
}

impl IgnoreError {
    /// The line of the file, from 1.
    ///
    /// ```
    /// let err = layercake::build::Ignore::parse("a\n\nb\\").unwrap_err();
    /// assert_eq!(err.line(), 3);
    /// ```
    pub fn line(&self) -> usize {
        self.line
    }

    /// The pattern as written on that line, trimmed.
    ///
    /// ```
    /// let err = layercake::build::Ignore::parse("  x[  \n").unwrap_err();
    /// assert_eq!(err.pattern(), "x[");
    /// ```
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// What is wrong.
    ///
    /// ```
    /// use layercake::build::IgnoreErrorKind;
    /// let err = layercake::build::Ignore::parse("a\\").unwrap_err();
    /// assert_eq!(err.kind(), &IgnoreErrorKind::TrailingBackslash);
    /// ```
    pub fn kind(&self) -> &IgnoreErrorKind {
        &self.kind
    }
}

impl fmt::Display for IgnoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = match self.kind {
            IgnoreErrorKind::LoneExclamation => "`!` re-includes nothing",
            IgnoreErrorKind::BadClass => "a malformed character class",
            IgnoreErrorKind::TrailingBackslash => "a trailing `\\` escapes nothing",
        };
        write!(
            f,
            ".dockerignore line {}: `{}`: {reason}",
            self.line,
            self.pattern.escape_debug()
        )
    }
}

impl std::error::Error for IgnoreError {}

/// One compiled line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    /// `!`: a match re-includes.
    reinclude: bool,
    /// The cleaned pattern, without its `!` (what the walk compares directories with).
    text: String,
    matcher: Matcher,
}

/// How a pattern is matched against a path and its parents.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Matcher {
    /// Component by component: the tokens split at each `/`, every `**` a whole component.
    /// Nearly every real pattern compiles to this.
    Segments(Vec<Segment>),
    /// Character by character over the whole path, for what does not split at `/`: a
    /// class that can match `/` (`a[/]b`, `[^x]`), a `**` inside a component (`a**b`, `x**`).
    Tokens(Vec<Token>),
}

/// One `/`-separated component of a pattern (see [`Matcher::Segments`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// A component without wildcards, compared as a string (`""` for the empty component
    /// of `a/\/b`, which no cleaned path has).
    Literal(Box<str>),
    /// A component with `*`, `?` or classes, none of which matches `/` here.
    Glob(Vec<Token>),
    /// Any one component: `*` alone, or a trailing `**` (which, as paths are cleaned and
    /// parents are tried, amounts to "one more component").
    Any,
    /// `**` not at the end: any number of components, none included.
    Dirs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `*`: any run of characters but `/`.
    Star,
    /// `?`: one character but `/`.
    One,
    /// `**` (and `**/`) not at the end: nothing, or anything ending in `/`.
    Dirs,
    /// `**` at the end: anything, `/` included.
    Rest,
    /// `[...]`: ranges, inclusive; it may match `/`, as Docker's regular expression does.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Ignore {
    /// Parses the text of a `.dockerignore` file.
    ///
    /// A UTF-8 byte-order mark at the start is skipped; lines end at `\n` (and a `\r` before
    /// it is whitespace). A line whose first character is `#` is a comment (`  # x`, with
    /// spaces first, is a pattern, as in Docker).
    ///
    /// # Errors
    ///
    /// [`IgnoreError`], naming the line, for a pattern Docker refuses: a lone `!`, a bad
    /// character class (`[`, `[]`, `[a-`, `[z-a]`), a trailing `\`.
    ///
    /// ```
    /// let ignore = layercake::build::Ignore::parse("/node_modules\n./dist/\n")?;
    /// assert!(ignore.excludes("node_modules/left-pad/index.js"));
    /// assert!(ignore.excludes("dist"));
    /// assert!(!ignore.excludes("src/node_modules")); // anchored at the root
    /// # Ok::<(), layercake::build::IgnoreError>(())
    /// ```
    pub fn parse(text: &str) -> std::result::Result<Ignore, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (index, raw) in text.split('\n').enumerate() {
            if raw.starts_with('#') {
                continue;
            }
            let written = raw.trim();
            if written.is_empty() {
                continue;
            }
            let error = |kind| IgnoreError {
                line: index + 1,
                pattern: written.to_owned(),
                kind,
            };
            let (reinclude, body) = match written.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, written),
            };
            if body.is_empty() {
                return Err(error(IgnoreErrorKind::LoneExclamation));
            }
            let mut cleaned = clean(body);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let tokens = compile(&cleaned).map_err(error)?;
            let matcher = match segments(&tokens) {
                Some(segments) => Matcher::Segments(segments),
                None => Matcher::Tokens(tokens),
            };
            patterns.push(Pattern {
                reinclude,
                text: cleaned,
                matcher,
            });
        }
        Ok(Ignore { patterns })
    }

    /// Reads `root/.dockerignore`, as `docker build root` does; no file is no patterns.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) naming the file when it cannot be read,
    /// [`Error::Dockerignore`](crate::Error::Dockerignore) naming it when a pattern is bad
    /// (its source, an [`IgnoreError`], names the line),
    /// [`Error::LimitExceeded`](crate::Error::LimitExceeded) for a file over 4 MiB.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("layercake-ignore-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// assert!(layercake::build::Ignore::from_dir(&dir)?.is_empty());
    /// std::fs::write(dir.join(".dockerignore"), "*.tmp\n")?;
    /// assert!(layercake::build::Ignore::from_dir(&dir)?.excludes("a.tmp"));
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_dir(root: impl AsRef<Path>) -> Result<Ignore> {
        let file = root.as_ref().join(".dockerignore");
        let error = |source: io::Error| Error::Io {
            context: format!("reading `{}`", file.display()),
            source,
        };
        let opened = match fs::File::open(&file) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Ignore::default()),
            Err(e) => return Err(error(e)),
        };
        // Read whole, but never more than a `.dockerignore` can sensibly hold.
        let mut text = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(opened, MAX_BYTES + 1), &mut text)
            .map_err(error)?;
        crate::limits::Limits::check(".dockerignore size", text.len() as u64, MAX_BYTES)?;
        Ignore::parse(&String::from_utf8_lossy(&text)).map_err(|source| Error::Dockerignore {
            path: file.display().to_string(),
            source,
        })
    }

    /// Whether the build leaves `path` (relative to the context root, `/`-separated) out:
    /// the last pattern that matches it or one of its parent directories decides, and with
    /// none it stays in. The root itself (`""` or `.`) is never left out.
    ///
    /// ```
    /// let ignore = layercake::build::Ignore::parse("docs\n!docs/README.md\n")?;
    /// assert!(ignore.excludes("docs/guide.md"));
    /// assert!(!ignore.excludes("docs/README.md"));
    /// assert!(!ignore.excludes("README.md"));
    /// # Ok::<(), layercake::build::IgnoreError>(())
    /// ```
    pub fn excludes(&self, path: &str) -> bool {
        let cleaned;
        let path = if is_clean(path) {
            path
        } else {
            cleaned = clean(path);
            if cleaned == "." || cleaned == "/" {
                return false;
            }
            cleaned.trim_start_matches('/')
        };
        let mut excluded = false;
        for pattern in &self.patterns {
            // Only a pattern that can change the answer is worth matching.
            if pattern.reinclude != excluded {
                continue;
            }
            if pattern.matches_or_parent_matches(path) {
                excluded = !pattern.reinclude;
            }
        }
        excluded
    }

    /// Whether a walk must still look inside the excluded directory `dir`, because a `!`
    /// pattern names something below it. Docker's test is textual: a `!` pattern that starts
    /// with `dir/` (`!target/keep` for `target`); a wildcard re-include such as `!**/keep`
    /// does not make Docker look inside an excluded directory, and so not this either.
    ///
    /// ```
    /// let ignore = layercake::build::Ignore::parse("target\nnode_modules\n!target/release/app\n")?;
    /// assert!(ignore.excludes("target") && ignore.excludes("node_modules"));
    /// assert!(ignore.descends_into("target"));
    /// assert!(ignore.descends_into("target/release"));
    /// assert!(!ignore.descends_into("node_modules"));
    /// # Ok::<(), layercake::build::IgnoreError>(())
    /// ```
    pub fn descends_into(&self, dir: &str) -> bool {
        let cleaned;
        let dir = if is_clean(dir) {
            dir
        } else {
            cleaned = clean(dir);
            cleaned.trim_start_matches('/')
        };
        // `text/` starts with `dir/`: `text` is `dir`, or `dir` and a `/` start it.
        self.patterns.iter().filter(|p| p.reinclude).any(|p| {
            p.text == dir
                || (p.text.starts_with(dir) && p.text.as_bytes().get(dir.len()) == Some(&b'/'))
        })
    }

    /// Whether there are no patterns (nothing is left out).
    ///
    /// ```
    /// assert!(layercake::build::Ignore::parse("# nothing\n\n")?.is_empty());
    /// # Ok::<(), layercake::build::IgnoreError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

impl Pattern {
    /// Whether the pattern matches `path` (cleaned, not rooted, not empty) or one of its
    /// parents.
    fn matches_or_parent_matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Segments(segments) => segments_match_prefix(segments, path),
            Matcher::Tokens(tokens) => {
                tokens_match(tokens, path)
                    || path
                        .match_indices('/')
                        .any(|(at, _)| tokens_match(tokens, &path[..at]))
            }
        }
    }
}

impl Segment {
    /// Whether the segment matches `component` (one non-empty component of a path).
    fn matches(&self, component: &str) -> bool {
        match self {
            Segment::Literal(literal) => **literal == *component,
            Segment::Glob(tokens) => glob_match(tokens, component),
            Segment::Any => true,
            Segment::Dirs => false,
        }
    }
}

impl Token {
    /// Whether a one-character token (`c`, `?`, a class) matches `c`.
    fn matches_char(&self, c: char) -> bool {
        match self {
            Token::Char(want) => *want == c,
            Token::One => c != '/',
            Token::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
            Token::Star | Token::Dirs | Token::Rest => false,
        }
    }
}

/// Splits a pattern's tokens into components, or `None` when they do not split: a class
/// that can match `/`, or a `**` with something before it in its component.
///
/// Why this is the same match: `*`, `?` and the remaining classes never match `/`, so
/// each component of the pattern lines up with one component of the path; a `**` not at
/// the end (`Dirs`, which took the `/` after it) matches nothing or whole components
/// ending in `/`, so what follows starts a component; a trailing `**` (`Rest`) after a `/`
/// matches the rest, which for a cleaned path (no trailing `/`) is one or more components,
/// and with parents tried that is "one more component".
fn segments(tokens: &[Token]) -> Option<Vec<Segment>> {
    let mut segments = Vec::new();
    let mut component: Vec<Token> = Vec::new();
    let mut rest = false;
    for token in tokens {
        match token {
            Token::Char('/') => segments.push(Segment::new(std::mem::take(&mut component))),
            Token::Dirs | Token::Rest if !component.is_empty() => return None,
            Token::Dirs => segments.push(Segment::Dirs),
            Token::Rest => {
                segments.push(Segment::Any);
                rest = true;
            }
            class @ Token::Class { .. } if class.matches_char('/') => return None,
            other => component.push(other.clone()),
        }
    }
    if !rest {
        segments.push(Segment::new(component));
    }
    Some(segments)
}

impl Segment {
    /// The segment for one component's tokens (none of them `/`, `**`, or matching `/`).
    fn new(tokens: Vec<Token>) -> Segment {
        if let [Token::Star] = tokens[..] {
            // Components of a cleaned path are never empty.
            return Segment::Any;
        }
        let literal: Option<String> = tokens
            .iter()
            .map(|t| match t {
                Token::Char(c) => Some(*c),
                _ => None,
            })
            .collect();
        match literal {
            Some(literal) => Segment::Literal(literal.into_boxed_str()),
            None => Segment::Glob(tokens),
        }
    }
}

/// Whether `segments` match `path` (cleaned, not rooted, not empty) or one of its parents:
/// whether they match its first components. Each segment matches one component but `Dirs`,
/// which matches any number; on a mismatch, the last `Dirs` seen takes one more component
/// and matching resumes after it (the classic wildcard walk, linear but for that
/// backtracking, and complete because `Dirs` matches any run of components).
fn segments_match_prefix(segments: &[Segment], path: &str) -> bool {
    if let [Segment::Dirs, last] = segments {
        // `**/x`, the commonest shape: whether any component matches `x`.
        return path.split('/').any(|component| last.matches(component));
    }
    let (mut s, mut at) = (0, 0);
    // After the last `Dirs`: the next segment, and where its components start.
    let mut resume: Option<(usize, usize)> = None;
    loop {
        match segments.get(s) {
            None => return true,
            Some(Segment::Dirs) => {
                s += 1;
                resume = Some((s, at));
                continue;
            }
            Some(Segment::Literal(literal)) => {
                // Compared in place: no need to find the component's end first.
                let rest = path.get(at..).unwrap_or("");
                let end = literal.len();
                if !literal.is_empty()
                    && rest.starts_with(&**literal)
                    && matches!(rest.as_bytes().get(end), None | Some(b'/'))
                {
                    s += 1;
                    at += end + 1;
                    continue;
                }
            }
            Some(segment) => {
                if let Some((component, next)) = component_at(path, at) {
                    if segment.matches(component) {
                        s += 1;
                        at = next;
                        continue;
                    }
                }
            }
        }
        match resume.and_then(|(rs, ra)| Some((rs, component_at(path, ra)?.1))) {
            Some((rs, next)) => {
                resume = Some((rs, next));
                s = rs;
                at = next;
            }
            None => return false,
        }
    }
}

/// The component of `path` that starts at byte `at`, and where the next one starts; `None`
/// past the last.
fn component_at(path: &str, at: usize) -> Option<(&str, usize)> {
    let rest = path.get(at..)?;
    let len = rest.find('/').unwrap_or(rest.len());
    Some((&rest[..len], at + len + 1))
}

/// Whether `tokens` (`*` and one-character tokens, none matching `/`) match all of
/// `component`: the classic wildcard walk, on the last `*` seen taking one more character
/// after a mismatch.
fn glob_match(tokens: &[Token], component: &str) -> bool {
    // The one-character tokens after the last `*` can only match the last characters:
    // check them first, from the end, where most components fail (`*.py[cod]` on `lib.rs`)
    // before any walk.
    let (mut tokens, mut component) = (tokens, component);
    while let Some((last, rest)) = tokens.split_last() {
        if *last == Token::Star {
            break;
        }
        let Some(c) = component.chars().next_back() else {
            return false;
        };
        if !last.matches_char(c) {
            return false;
        }
        component = &component[..component.len() - c.len_utf8()];
        tokens = rest;
    }
    let (mut t, mut i) = (0, 0);
    // After the last `*`: the next token, and where its characters start.
    let mut resume: Option<(usize, usize)> = None;
    loop {
        match tokens.get(t) {
            None if i == component.len() => return true,
            None => {}
            Some(Token::Star) => {
                t += 1;
                resume = Some((t, i));
                continue;
            }
            Some(token) => {
                if let Some(c) = component[i..].chars().next() {
                    if token.matches_char(c) {
                        t += 1;
                        i += c.len_utf8();
                        continue;
                    }
                }
            }
        }
        match resume
            .and_then(|(rt, ri)| Some((rt, ri + component[ri..].chars().next()?.len_utf8())))
        {
            Some((rt, next)) => {
                resume = Some((rt, next));
                t = rt;
                i = next;
            }
            None => return false,
        }
    }
}

/// Whether `tokens` match all of `path`, character by character (the general matcher:
/// a table of reachable positions, rebuilt for every token).
fn tokens_match(tokens: &[Token], path: &str) -> bool {
    let path: Vec<char> = path.chars().collect();
    // reached[i]: the tokens so far can consume exactly the first i characters.
    let mut reached = vec![false; path.len() + 1];
    reached[0] = true;
    for token in tokens {
        let mut next = vec![false; path.len() + 1];
        for start in 0..=path.len() {
            if !reached[start] {
                continue;
            }
            match token {
                Token::Char(c) => {
                    if path.get(start) == Some(c) {
                        next[start + 1] = true;
                    }
                }
                Token::One => {
                    if path.get(start).is_some_and(|&c| c != '/') {
                        next[start + 1] = true;
                    }
                }
                Token::Class { negated, ranges } => {
                    if let Some(&c) = path.get(start) {
                        let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                        if inside != *negated {
                            next[start + 1] = true;
                        }
                    }
                }
                Token::Star => {
                    next[start] = true;
                    for (end, &c) in path.iter().enumerate().skip(start) {
                        if c == '/' {
                            break;
                        }
                        next[end + 1] = true;
                    }
                }
                Token::Rest => {
                    for slot in &mut next[start..] {
                        *slot = true;
                    }
                }
                Token::Dirs => {
                    next[start] = true;
                    for (end, &c) in path.iter().enumerate().skip(start) {
                        if c == '/' {
                            next[end + 1] = true;
                        }
                    }
                }
            }
        }
        reached = next;
    }
    reached[path.len()]
}

/// Whether `clean` leaves `path` as it is and it is not rooted (the common case, which
/// needs no copy): not empty, no empty or `.` components, `..` only at the start.
fn is_clean(path: &str) -> bool {
    let mut leading = true;
    !path.is_empty()
        && path.split('/').all(|part| match part {
            "" | "." => false,
            ".." => leading,
            _ => {
                leading = false;
                true
            }
        })
}

/// Cleans a `/`-separated path as Go's `filepath.Clean` does: no empty or `.` components,
/// `..` folded where it can be, no trailing `/`; `.` for nothing.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// Turns a cleaned pattern into tokens, with Docker's meaning for each character.
fn compile(pattern: &str) -> std::result::Result<Vec<Token>, IgnoreErrorKind> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                tokens.push(if chars.peek().is_none() {
                    Token::Rest
                } else {
                    Token::Dirs
                });
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::One),
            '\\' => match chars.next() {
                Some(escaped) => tokens.push(Token::Char(escaped)),
                None => return Err(IgnoreErrorKind::TrailingBackslash),
            },
            '[' => tokens.push(class(&mut chars)?),
            other => tokens.push(Token::Char(other)),
        }
    }
    Ok(tokens)
}

/// The rest of a `[...]` class, after its `[`: Go's `filepath.Match` syntax (which Docker
/// checks patterns with): an optional `^`, then one or more `c` or `c-c`, where `-` and `]`
/// must be escaped with `\`.
fn class(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> std::result::Result<Token, IgnoreErrorKind> {
    let negated = chars.next_if_eq(&'^').is_some();
    let mut ranges = Vec::new();
    loop {
        if !ranges.is_empty() && chars.next_if_eq(&']').is_some() {
            return Ok(Token::Class { negated, ranges });
        }
        let lo = class_char(chars)?;
        let hi = if chars.next_if_eq(&'-').is_some() {
            class_char(chars)?
        } else {
            lo
        };
        if lo > hi {
            return Err(IgnoreErrorKind::BadClass);
        }
        ranges.push((lo, hi));
    }
}

fn class_char(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> std::result::Result<char, IgnoreErrorKind> {
    let c = match chars.next() {
        None | Some('-') | Some(']') => return Err(IgnoreErrorKind::BadClass),
        Some('\\') => chars.next().ok_or(IgnoreErrorKind::BadClass)?,
        Some(c) => c,
    };
    // Go's check: a class character is never the last of the pattern (no `]` can follow).
    if chars.peek().is_none() {
        return Err(IgnoreErrorKind::BadClass);
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::{clean, compile, is_clean, segments, tokens_match, Ignore, Matcher, Segment};

    /// The character-by-character matcher on `path` and each parent: what `Segments` must
    /// agree with.
    fn by_tokens(pattern: &str, path: &str) -> bool {
        let tokens = compile(pattern).expect(pattern);
        tokens_match(&tokens, path)
            || path
                .match_indices('/')
                .any(|(at, _)| tokens_match(&tokens, &path[..at]))
    }

    fn by_segments(pattern: &str, path: &str) -> Option<bool> {
        let segments = segments(&compile(pattern).expect(pattern))?;
        Some(super::segments_match_prefix(&segments, path))
    }

    const PATHS: &[&str] = &[
        "a",
        "b",
        "ab",
        "a/b",
        "a/x/b",
        "ax/b",
        "a/xb",
        "axb",
        "a/b/c",
        "a/b/c/d",
        "x/a/b",
        "x/y/a/b/z",
        "a/a/a/b",
        "a/b/a/b",
        ".git",
        ".git/HEAD",
        "x/.git/objects/ab",
        "a.log",
        "x/a.log",
        "x/y/z.log/w",
        ".log",
        "x/.log",
        "x.o",
        "build/x.o",
        "build/a/b/x.o",
        "build/a/b/x.o/y",
        "é",
        "é/b",
        "aé/b",
        "..",
        "../a",
        "../../a/b",
        "a*b",
        "a?b",
        "[a]",
        "x/y",
    ];

    #[test]
    fn segments_agree_with_the_token_matcher() {
        let patterns = [
            "a",
            "a/b",
            "a/*",
            "*",
            "*/b",
            "*/*/*",
            "**",
            "**/b",
            "**/a/b",
            "a/**",
            "a/**/b",
            "a/**/**/b",
            "**/**",
            "**/a/**/b",
            "a/**b",
            "**/*.log",
            "*.log",
            "**.log",
            ".git",
            "**/.git",
            "build/**/*.o",
            "a?b",
            "?",
            "?/b",
            "[a-c]",
            "[a-c]/[^x/]",
            "[^/]/b",
            "a\\*b",
            "a\\?b",
            "\\[a]",
            "a/\\/b",
            "\\/a",
            "/",
            "..",
            "../a",
            "../**/b",
            "é",
            "?/b",
            "*é/b",
            "a*b*",
            "*a*b",
            "**/a/*/b",
        ];
        for pattern in patterns {
            let pattern = &clean(pattern);
            for path in PATHS {
                let Some(got) = by_segments(pattern, path) else {
                    panic!("{pattern:?} does not split into segments");
                };
                assert_eq!(got, by_tokens(pattern, path), "{pattern:?} on {path:?}");
            }
        }
    }

    #[test]
    fn what_does_not_split_is_matched_by_tokens_and_still_right() {
        for (pattern, cases) in [
            // `**` inside a component: nothing, or anything ending in `/`.
            (
                "a**b",
                &[("ab", true), ("a/b", true), ("ax/b", true), ("axb", false)][..],
            ),
            (
                "a**/b",
                &[("ab", true), ("a/b", true), ("a/x/b", true), ("ax/b", true)],
            ),
            // A trailing `**` after something: anything from there, `/` included.
            (
                "x**",
                &[("x", true), ("xyz", true), ("x/y", true), ("y", false)],
            ),
            // Classes that match `/`.
            ("a[/]b", &[("a/b", true), ("ab", false), ("a/b/c", true)]),
            ("a[^x]b", &[("a/b", true), ("ayb", true), ("axb", false)]),
            ("[^x]", &[("y", true), ("y/z", true), ("x/y", false)]),
            ("a[.-0]b", &[("a/b", true), ("a.b", true), ("a0b", true)]),
        ] {
            let ignore = Ignore::parse(pattern).expect(pattern);
            assert!(
                matches!(ignore.patterns[0].matcher, Matcher::Tokens(_)),
                "{pattern:?}"
            );
            for &(path, want) in cases {
                assert_eq!(ignore.excludes(path), want, "{pattern:?} on {path:?}");
                assert_eq!(by_tokens(pattern, path), want, "{pattern:?} on {path:?}");
            }
        }
    }

    #[test]
    fn segments_by_shape() {
        let of = |pattern: &str| segments(&compile(pattern).expect(pattern)).expect(pattern);
        assert_eq!(
            of("a/b"),
            [Segment::Literal("a".into()), Segment::Literal("b".into())]
        );
        assert_eq!(of("**/a"), [Segment::Dirs, Segment::Literal("a".into())]);
        assert_eq!(of("a/**"), [Segment::Literal("a".into()), Segment::Any]);
        assert_eq!(of("*/x"), [Segment::Any, Segment::Literal("x".into())]);
        // An escaped wildcard is a literal; an escaped `/` still separates.
        assert_eq!(of("a\\*"), [Segment::Literal("a*".into())]);
        assert_eq!(
            of("a\\/b"),
            [Segment::Literal("a".into()), Segment::Literal("b".into())]
        );
        assert!(matches!(of("*.log")[..], [Segment::Glob(_)]));
        assert!(matches!(of("[ab]")[..], [Segment::Glob(_)]));
    }

    #[test]
    fn edge_cases_through_excludes() {
        for (patterns, cases) in [
            // `**` at the start, in the middle, at the end.
            (
                "**/x",
                &[
                    ("x", true),
                    ("a/x", true),
                    ("a/b/x/c", true),
                    ("a/xy", false),
                ][..],
            ),
            (
                "a/**/x",
                &[
                    ("a/x", true),
                    ("a/b/c/x", true),
                    ("b/a/x", false),
                    ("a/bx", false),
                ],
            ),
            (
                "a/**",
                &[
                    ("a", false),
                    ("a/b", true),
                    ("a/b/c", true),
                    ("ab/c", false),
                ],
            ),
            ("**", &[("a", true), ("a/b", true)]),
            // Backtracking over `**` and `*`.
            (
                "**/a/b",
                &[("a/a/b", true), ("a/a/a/c/a/b", true), ("a/b/a", true)],
            ),
            (
                "*a*b",
                &[("xaxb", true), ("ab", true), ("aab", true), ("aba", false)],
            ),
            // Escapes.
            ("a\\*b", &[("a*b", true), ("axb", false)]),
            ("\\[x\\]", &[("[x]", true), ("x", false)]),
            // A trailing `/` is cleaned away: it matches files too, as in Docker.
            (
                "dist/",
                &[("dist", true), ("dist/a", true), ("distx", false)],
            ),
            // Patterns and paths cleaned.
            (
                "./a/../b/./c",
                &[("b/c", true), ("./b//c/", true), ("/b/c/d", true)],
            ),
            (
                "a",
                &[
                    ("x/../a", true),
                    ("./a", true),
                    ("a/.", true),
                    ("..", false),
                ],
            ),
            ("../a", &[("../a", true), ("../a/b", true), ("a", false)]),
            (
                "*",
                &[(".", false), ("", false), ("/", false), ("..", true)],
            ),
            // Non-ASCII: `?` is one character.
            ("?", &[("é", true), ("éé", false)]),
        ] {
            let ignore = Ignore::parse(patterns).expect(patterns);
            for &(path, want) in cases {
                assert_eq!(ignore.excludes(path), want, "{patterns:?} on {path:?}");
            }
        }
    }

    mod prop {
        use super::super::{clean, Ignore};
        use super::by_tokens;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4096))]

            /// `excludes` (segments where the pattern splits, tokens where not, paths
            /// cleaned only when needed) against the plain rule: clean the path, match the
            /// tokens on it and on each parent.
            #[test]
            fn excludes_agrees_with_the_token_matcher(
                pattern in r"(/|a|b|\*|\*\*|\?|\[ab\]|\[\^a\]|\[\^/\]|\\\*|\.\.|\.){1,6}",
                path in r"/?(a|b|ab|\.\.|\.|)(/(a|b|ab|\.\.|\.|)){0,5}/?",
            ) {
                let Ok(ignore) = Ignore::parse(&pattern) else {
                    return Ok(());
                };
                let cleaned = clean(&path);
                let want = cleaned != "." && cleaned != "/"
                    && by_tokens(&ignore.patterns[0].text, cleaned.trim_start_matches('/'));
                prop_assert_eq!(ignore.excludes(&path), want, "{:?} on {:?}", pattern, path);
            }
        }
    }

    #[test]
    fn descends_into_is_the_textual_prefix_test() {
        let ignore = Ignore::parse("*\n!a/b/c\n!ab\n!/x\n!.\n!../up/k\n").unwrap();
        for dir in [
            "", ".", "/", "a", "a/", "./a", "a/b", "a/b/c", "a/b/c/d", "ab", "a/bc", "x", "/x",
            "..", "../up", "b",
        ] {
            let slashed = format!("{}/", clean(dir).trim_start_matches('/'));
            let want = ignore
                .patterns
                .iter()
                .filter(|p| p.reinclude)
                .any(|p| format!("{}/", p.text).starts_with(&slashed));
            assert_eq!(ignore.descends_into(dir), want, "{dir:?}");
        }
    }

    #[test]
    fn is_clean_is_clean_unchanged() {
        for path in [
            "", ".", "..", "a", "a/b", "/a", "a/", "a//b", "./a", "a/.", "a/./b", "a/..", "../a",
            "../../a", "a/../b", "..a", "a..", ".a/..b", "/", "../..",
        ] {
            // `.` is left to `clean`, and `excludes` then answers for the root.
            let unchanged = clean(path) == path && path != "." && !path.starts_with('/');
            assert_eq!(is_clean(path), unchanged, "{path:?}");
        }
    }

    #[test]
    fn clean_is_go_filepath_clean() {
        for (input, want) in [
            ("", "."),
            (".", "."),
            ("./a//b/", "a/b"),
            ("a/../b", "b"),
            ("../a", "../a"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("/", "/"),
            ("//a", "/a"),
        ] {
            assert_eq!(clean(input), want, "{input:?}");
        }
    }
}
