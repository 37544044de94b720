//! Dockerfile words: quote removal, escapes and `$variable` substitution, as BuildKit's
//! shell lexer does them.
//!
//! This is not a shell. There is no command substitution, no arithmetic, no field
//! splitting on `IFS`, no globbing of file names: only the quoting rules and the parameter
//! expansions the Dockerfile reference lists. Which instructions expand their arguments, and
//! with which variables, is the builder's business; this module turns one word (or one
//! line of words) into text.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hash::BuildHasher;

/// Variables a word may refer to: the build's ARGs and ENVs as one lookup.
///
/// Implemented for `BTreeMap<String, String>`, `HashMap<String, String>`, slices of
/// `(name, value)` pairs (the last pair for a name wins, as in an environment list) and
/// any closure `Fn(&str) -> Option<String>`. A variable set to the empty string is *set*:
/// `${v-w}` and `${v:-w}` tell the two apart.
///
/// ```
/// use layercake::build::Lexer;
///
/// let lexer = Lexer::default();
/// let env = |name: &str| (name == "HOME").then(|| "/root".to_string());
/// assert_eq!(lexer.process_word("$HOME/.cache", &env)?, "/root/.cache");
/// let pairs = [("V", "1"), ("V", "2")];
/// assert_eq!(lexer.process_word("v$V", &pairs[..])?, "v2");
/// # Ok::<(), layercake::build::WordError>(())
/// ```
pub trait Variables {
    /// The value of `name`, or `None` when it is not set.
    fn lookup(&self, name: &str) -> Option<Cow<'_, str>>;
}

impl Variables for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).map(|v| Cow::Borrowed(v.as_str()))
    }
}

impl<S: BuildHasher> Variables for HashMap<String, String, S> {
    fn lookup(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).map(|v| Cow::Borrowed(v.as_str()))
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Variables for [(K, V)] {
    fn lookup(&self, name: &str) -> Option<Cow<'_, str>> {
        self.iter()
            .rev()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| Cow::Borrowed(v.as_ref()))
    }
}

impl<F: Fn(&str) -> Option<String>> Variables for F {
    fn lookup(&self, name: &str) -> Option<Cow<'_, str>> {
        self(name).map(Cow::Owned)
    }
}

/// The Dockerfile word lexer: removes quotes and escapes and substitutes variables.
///
/// The escape character is `\` unless the Dockerfile's `# escape=` directive says `` ` ``.
///
/// | form | result |
/// | --- | --- |
/// | `$v`, `${v}` | the value of `v`, empty when unset |
/// | `${v:-w}` / `${v-w}` | `w` when `v` is unset or empty / unset, else the value |
/// | `${v:+w}` / `${v+w}` | `w` when `v` is set and not empty / set, else empty |
/// | `${v:?m}` / `${v?m}` | an error saying `m` when `v` is unset or empty / unset |
/// | `${v#p}` / `${v##p}` | the value without its shortest / longest prefix matching `p` |
/// | `${v%p}` / `${v%%p}` | the value without its shortest / longest suffix matching `p` |
/// | `${v/p/r}` / `${v//p/r}` | the first / every longest match of `p` replaced by `r` |
///
/// `w`, `m`, `p` and `r` are words themselves: they may quote and refer to variables.
/// Patterns are shell patterns: `*`, `?`, `[a-z]`, `[!a-z]`, and the escape character
/// (or quotes) for a literal `*`, `?`, `[`, `}` or `/`. A `$` that no name follows is
/// literal.
///
/// Single quotes keep everything literal. Double quotes keep everything but `$`, and there
/// the escape character escapes only `"`, `$` and itself. Outside quotes the escape
/// character escapes any character, and one at the very end is dropped.
///
/// ```
/// use layercake::build::Lexer;
/// use std::collections::BTreeMap;
///
/// let env = BTreeMap::from([("VERSION".to_string(), "1.2.3".to_string())]);
/// let lexer = Lexer::new('\\');
/// assert_eq!(lexer.process_word("app-${VERSION%.*}.tar", &env)?, "app-1.2.tar");
/// assert_eq!(lexer.process_word("'$VERSION' \"$VERSION\"", &env)?, "$VERSION 1.2.3");
/// assert_eq!(lexer.process_word("${ARCH:-amd64}", &env)?, "amd64");
/// # Ok::<(), layercake::build::WordError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
}

impl Default for Lexer {
    /// A lexer with the default escape character, `\`.
    fn default() -> Lexer {
        Lexer::new('\\')
    }
}

impl Lexer {
    /// A lexer with `escape` as its escape character (`\`, or `` ` `` after an
    /// `# escape=`` ` `` directive).
    ///
    /// ```
    /// use layercake::build::Lexer;
    ///
    /// let env: &[(&str, &str)] = &[];
    /// let lexer = Lexer::new('`');
    /// assert_eq!(lexer.process_word(r"C:\dir\`$x", env)?, r"C:\dir\$x");
    /// # Ok::<(), layercake::build::WordError>(())
    /// ```
    pub fn new(escape: char) -> Lexer {
        Lexer { escape }
    }

    /// The escape character.
    ///
    /// ```
    /// assert_eq!(layercake::build::Lexer::default().escape(), '\\');
    /// ```
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Expands `word` into one string: quotes and escapes removed, variables substituted,
    /// whitespace kept (as for `WORKDIR`, `USER`, `LABEL` values or one `ENV` value).
    ///
    /// # Errors
    ///
    /// [`WordError`] for an unmatched quote, an unterminated or malformed `${`, and a
    /// `${v?m}` or `${v:?m}` whose variable is missing.
    ///
    /// ```
    /// use layercake::build::Lexer;
    ///
    /// let env = [("DIR", "/opt/app")];
    /// let lexer = Lexer::default();
    /// assert_eq!(lexer.process_word(r#"$DIR/my\ file "x  y""#, &env[..])?, "/opt/app/my file x  y");
    /// assert!(lexer.process_word("${DIR", &env[..]).is_err());
    /// # Ok::<(), layercake::build::WordError>(())
    /// ```
    pub fn process_word<E: Variables + ?Sized>(
        &self,
        word: &str,
        env: &E,
    ) -> Result<String, WordError> {
        Ok(self.process_word_with_matches(word, env)?.word)
    }

    /// Expands `text` and splits it into words on whitespace that is not quoted or escaped
    /// (as for `EXPOSE`, `VOLUME` or the names of `ARG` and `ENV`). Whitespace that a
    /// variable's value brings in splits too, unless the variable is in double quotes; an
    /// empty word (`""`) is dropped.
    ///
    /// # Errors
    ///
    /// As [`Lexer::process_word`].
    ///
    /// ```
    /// use layercake::build::Lexer;
    ///
    /// let env = [("PORTS", "80/tcp  443/tcp")];
    /// let lexer = Lexer::default();
    /// assert_eq!(lexer.process_words("$PORTS 8080", &env[..])?, ["80/tcp", "443/tcp", "8080"]);
    /// assert_eq!(lexer.process_words("\"$PORTS\" a\\ b", &env[..])?, ["80/tcp  443/tcp", "a b"]);
    /// # Ok::<(), layercake::build::WordError>(())
    /// ```
    pub fn process_words<E: Variables + ?Sized>(
        &self,
        text: &str,
        env: &E,
    ) -> Result<Vec<String>, WordError> {
        Ok(self.process_word_with_matches(text, env)?.words)
    }

    /// Expands `word` as [`Lexer::process_word`] and [`Lexer::process_words`] do, and says
    /// which variables it referred to: the build cache and the `|1 VER=1.0 /bin/sh -c`
    /// history strings depend on the ARGs a step used.
    ///
    /// A name counts once it is looked up, even where its value is not used (the `w` of
    /// `${v:-w}` when `v` is set).
    ///
    /// # Errors
    ///
    /// As [`Lexer::process_word`].
    ///
    /// ```
    /// use layercake::build::Lexer;
    ///
    /// let env = [("VER", "1.0")];
    /// let expansion = Lexer::default().process_word_with_matches("v$VER-${OS:-linux}", &env[..])?;
    /// assert_eq!(expansion.word(), "v1.0-linux");
    /// assert!(expansion.matched().contains("VER"));
    /// assert!(expansion.unmatched().contains("OS"));
    /// # Ok::<(), layercake::build::WordError>(())
    /// ```
    pub fn process_word_with_matches<E: Variables + ?Sized>(
        &self,
        word: &str,
        env: &E,
    ) -> Result<Expansion, WordError> {
        let mut scan = Scan {
            src: word,
            pos: 0,
            escape: self.escape,
            env: &|name: &str| env.lookup(name).map(Cow::into_owned),
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        };
        let mut words = Words::default();
        let word = scan.run(None, Mode::Cooked, &mut words)?;
        Ok(Expansion {
            word,
            words: words.finish(),
            matched: scan.matched,
            unmatched: scan.unmatched,
        })
    }
}

/// The result of [`Lexer::process_word_with_matches`]: the expanded word, its split form,
/// and the variables it referred to.
///
/// ```
/// use layercake::build::Lexer;
///
/// let env = [("A", "x y")];
/// let expansion = Lexer::default().process_word_with_matches("$A $B", &env[..])?;
/// assert_eq!(expansion.word(), "x y ");
/// assert_eq!(expansion.words(), ["x", "y"]);
/// assert_eq!(expansion.matched().iter().collect::<Vec<_>>(), ["A"]);
/// assert_eq!(expansion.unmatched().iter().collect::<Vec<_>>(), ["B"]);
/// # Ok::<(), layercake::build::WordError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    word: String,
    words: Vec<String>,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl Expansion {
    /// The expanded text as one word, as [`Lexer::process_word`] returns it.
    ///
    /// ```
    /// let env: &[(&str, &str)] = &[];
    /// let e = layercake::build::Lexer::default().process_word_with_matches("'a b'", env)?;
    /// assert_eq!(e.word(), "a b");
    /// # Ok::<(), layercake::build::WordError>(())
    /// ```
    pub fn word(&self) -> &str {
        &self.word
    }

    /// The expanded text split into words, as [`Lexer::process_words`] returns it.
    ///
    /// ```
    /// let env: &[(&str, &str)] = &[];
    /// let e = layercake::build::Lexer::default().process_word_with_matches("'a b' c", env)?;
    /// assert_eq!(e.words(), ["a b", "c"]);
    /// # Ok::<(), layercake::build::WordError>(())
    /// ```
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The names that were looked up and set (possibly to the empty string), sorted.
    ///
    /// ```
    /// let env = [("EMPTY", "")];
    /// let e = layercake::build::Lexer::default().process_word_with_matches("${EMPTY:-x}", &env[..])?;
    /// assert!(e.matched().contains("EMPTY"));
    /// # Ok::<(), layercake::build::WordError>(())
    /// ```
    pub fn matched(&self) -> &BTreeSet<String> {
        &self.matched
    }

    /// The names that were looked up and not set, sorted.
    ///
    /// ```
    /// let env: &[(&str, &str)] = &[];
    /// let e = layercake::build::Lexer::default().process_word_with_matches("$NOPE", env)?;
    /// assert!(e.unmatched().contains("NOPE"));
    /// # Ok::<(), layercake::build::WordError>(())
    /// ```
    pub fn unmatched(&self) -> &BTreeSet<String> {
        &self.unmatched
    }

    /// The expanded word, by value.
    ///
    /// ```
    /// let env = [("A", "1")];
    /// let e = layercake::build::Lexer::default().process_word_with_matches("$A", &env[..])?;
    /// assert_eq!(e.into_word(), "1");
    /// # Ok::<(), layercake::build::WordError>(())
    /// ```
    pub fn into_word(self) -> String {
        self.word
    }
}

/// A word that cannot be expanded: what is wrong, and where in the word.
///
/// `Display` shows the reason and the byte offset; a Dockerfile parser that knows where
/// the word sits shows [`WordError::kind`] with its own line and column instead.
///
/// ```
/// use layercake::build::{Lexer, WordErrorKind};
///
/// let env: &[(&str, &str)] = &[];
/// let err = Lexer::default().process_word("ab'cd", env).unwrap_err();
/// assert_eq!(err.position(), 2);
/// assert_eq!(err.kind(), &WordErrorKind::UnterminatedQuote { quote: '\'' });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordError {
    position: usize,
    kind: WordErrorKind,
}

impl WordError {
    fn new(position: usize, kind: WordErrorKind) -> WordError {
        WordError { position, kind }
    }

    /// The byte offset in the word where the trouble starts: the opening quote, or the
    /// `$` of the substitution.
    ///
    /// ```
    /// let env: &[(&str, &str)] = &[];
    /// let err = layercake::build::Lexer::default().process_word("x${y", env).unwrap_err();
    /// assert_eq!(err.position(), 1);
    /// ```
    pub fn position(&self) -> usize {
        self.position
    }

    /// What is wrong.
    ///
    /// ```
    /// use layercake::build::WordErrorKind;
    ///
    /// let env: &[(&str, &str)] = &[];
    /// let err = layercake::build::Lexer::default().process_word("${}", env).unwrap_err();
    /// assert_eq!(err.kind(), &WordErrorKind::BadSubstitution);
    /// ```
    pub fn kind(&self) -> &WordErrorKind {
        &self.kind
    }
}

impl fmt::Display for WordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.position)
    }
}

impl std::error::Error for WordError {}

/// What is wrong with a word; the `Display` text is BuildKit's wording.
///
/// ```
/// use layercake::build::Lexer;
///
/// let env: &[(&str, &str)] = &[];
/// let err = Lexer::default().process_word("${TOKEN:?must be given}", env).unwrap_err();
/// assert_eq!(err.kind().to_string(), "TOKEN: must be given");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WordErrorKind {
    /// A `'` or `"` with no closing partner.
    UnterminatedQuote {
        /// The quote character.
        quote: char,
    },
    /// A `${` with no closing `}`.
    MissingBrace,
    /// A `${v/p` with no `/` after the pattern.
    MissingSlash,
    /// A `${` with no name: `${}`, `${:-x}`, `${{x}`.
    BadSubstitution,
    /// An operator that is not one of `:- - :+ + :? ? # ## % %% / //`, such as `${v:=x}`.
    UnsupportedModifier {
        /// The operator as written.
        modifier: String,
    },
    /// `${v?m}` with `v` unset, or `${v:?m}` with `v` unset or empty.
    Required {
        /// The variable.
        name: String,
        /// The expanded `m`, or the default message when `m` is empty.
        message: String,
    },
}

impl fmt::Display for WordErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WordErrorKind::UnterminatedQuote { quote } => {
                let which = if *quote == '\'' { "single" } else { "double" };
                write!(
                    f,
                    "unexpected end of statement while looking for matching {which}-quote"
                )
            }
            WordErrorKind::MissingBrace => f.write_str("syntax error: missing '}'"),
            WordErrorKind::MissingSlash => f.write_str("syntax error: missing '/' in ${}"),
            WordErrorKind::BadSubstitution => f.write_str("syntax error: bad substitution"),
            WordErrorKind::UnsupportedModifier { modifier } => {
                write!(
                    f,
                    "unsupported modifier ({}) in substitution",
                    Shown(modifier)
                )
            }
            WordErrorKind::Required { name, message } => {
                write!(f, "{}: {}", Shown(name), Shown(message))
            }
        }
    }
}

/// Text from the Dockerfile, with control characters escaped so that it cannot rewrite a
/// terminal.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

/// How a stretch of text is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Quotes and escapes removed: the final text of a word.
    Cooked,
    /// Quotes removed, escape characters kept with what they escape: the `r` of
    /// `${v/p/r}`, as BuildKit keeps it.
    Raw,
    /// Pattern source for [`Glob`]: quoted and escaped characters made literal with the
    /// escape character, variables' values left active.
    Pattern,
}

/// The split form of a word, built alongside its text.
#[derive(Debug, Default)]
struct Words {
    done: Vec<String>,
    current: String,
    in_word: bool,
}

impl Words {
    /// A character that splits on whitespace (plain text and variables' values).
    fn split_char(&mut self, c: char) {
        if !c.is_whitespace() {
            self.current.push(c);
            self.in_word = true;
        } else if self.in_word && !self.current.is_empty() {
            self.done.push(std::mem::take(&mut self.current));
            self.in_word = false;
        }
    }

    fn split_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.split_char(c));
    }

    /// Quoted or escaped text, kept whole.
    fn raw_str(&mut self, s: &str) {
        self.current.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.current.is_empty() {
            self.done.push(self.current);
        }
        self.done
    }
}

/// One pass over a word.
struct Scan<'a> {
    src: &'a str,
    pos: usize,
    escape: char,
    env: &'a dyn Fn(&str) -> Option<String>,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl Scan<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        let value = (self.env)(name);
        if value.is_some() {
            self.matched.insert(name.to_string());
        } else {
            self.unmatched.insert(name.to_string());
        }
        value
    }

    /// Pushes `c` as literal text in `mode`.
    fn literal(&self, out: &mut String, c: char, mode: Mode) {
        if mode == Mode::Pattern && (matches!(c, '*' | '?' | '[' | ']') || c == self.escape) {
            out.push(self.escape);
        }
        out.push(c);
    }

    /// Reads up to `stop` (consumed), or to the end when `stop` is `None`. When the end
    /// comes first although a stop character was wanted, the error is `MissingBrace` at
    /// the end of the word, for the `${` that asked to say which it was.
    fn run(
        &mut self,
        stop: Option<char>,
        mode: Mode,
        words: &mut Words,
    ) -> Result<String, WordError> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.next();
                return Ok(out);
            }
            match c {
                '$' => {
                    let value = self.dollar()?;
                    out.push_str(&value);
                    words.split_str(&value);
                }
                '\'' => {
                    let text = self.single_quoted(mode)?;
                    out.push_str(&text);
                    words.raw_str(&text);
                }
                '"' => {
                    let text = self.double_quoted(mode)?;
                    out.push_str(&text);
                    words.raw_str(&text);
                }
                _ => {
                    self.next();
                    if c != self.escape {
                        out.push(c);
                        words.split_char(c);
                        continue;
                    }
                    let Some(escaped) = self.next() else {
                        // An escape character at the very end is dropped (or, in a
                        // substitution, leaves it unterminated).
                        if mode != Mode::Cooked {
                            out.push(c);
                        }
                        break;
                    };
                    let start = out.len();
                    if mode != Mode::Cooked {
                        // Kept for the pattern (or, in `r`, as BuildKit keeps it).
                        out.push(c);
                    }
                    out.push(escaped);
                    words.raw_str(&out[start..]);
                }
            }
        }
        match stop {
            // The caller knows which `${` is unterminated.
            Some(_) => Err(WordError::new(self.pos, WordErrorKind::MissingBrace)),
            None => Ok(out),
        }
    }

    fn single_quoted(&mut self, mode: Mode) -> Result<String, WordError> {
        let start = self.pos;
        self.next();
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(WordError::new(
                        start,
                        WordErrorKind::UnterminatedQuote { quote: '\'' },
                    ))
                }
                Some('\'') => return Ok(out),
                Some(c) => self.literal(&mut out, c, mode),
            }
        }
    }

    fn double_quoted(&mut self, mode: Mode) -> Result<String, WordError> {
        let start = self.pos;
        self.next();
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(WordError::new(
                        start,
                        WordErrorKind::UnterminatedQuote { quote: '"' },
                    ))
                }
                Some('"') => {
                    self.next();
                    return Ok(out);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    for c in value.chars() {
                        self.literal(&mut out, c, mode);
                    }
                }
                Some(c) => {
                    self.next();
                    if c != self.escape {
                        self.literal(&mut out, c, mode);
                        continue;
                    }
                    match self.peek() {
                        // Dropped; the missing quote is reported next.
                        None => {}
                        Some(e) if e == '"' || e == '$' || e == self.escape => {
                            self.next();
                            if mode == Mode::Raw {
                                out.push(c);
                            }
                            self.literal(&mut out, e, mode);
                        }
                        // Any other escape character is itself.
                        Some(_) => self.literal(&mut out, c, mode),
                    }
                }
            }
        }
    }

    /// A name after `$` or `${`: letters, digits and `_`; or all the digits of a
    /// positional parameter; or one special parameter character. Empty when none follows.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_numeric() => {
                while let Some(c) = self.peek().filter(|c| c.is_numeric()) {
                    self.next();
                    name.push(c);
                }
            }
            Some(c @ ('@' | '*' | '#' | '?' | '-' | '$' | '!')) => {
                self.next();
                name.push(c);
            }
            _ => {
                while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
                    self.next();
                    name.push(c);
                }
            }
        }
        name
    }

    /// A substitution, the scanner on its `$`.
    fn dollar(&mut self) -> Result<String, WordError> {
        let start = self.pos;
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(self.lookup(&name).unwrap_or_default());
        }
        self.next();
        let err = |kind| WordError::new(start, kind);
        match self.peek() {
            None => return Err(err(WordErrorKind::MissingBrace)),
            Some('{' | '}' | ':') => return Err(err(WordErrorKind::BadSubstitution)),
            Some(_) => {}
        }
        let name = self.name();
        if name.is_empty() {
            return Err(err(WordErrorKind::BadSubstitution));
        }
        // A nested word that hits the end reports the `${` it is in.
        let until = |scan: &mut Self, stop: char, mode: Mode, kind: WordErrorKind| {
            scan.run(Some(stop), mode, &mut Words::default())
                .map_err(|e| match e.kind {
                    WordErrorKind::MissingBrace if e.position == scan.src.len() => {
                        WordError::new(start, kind)
                    }
                    _ => e,
                })
        };
        let op = match self.next() {
            None => return Err(err(WordErrorKind::MissingBrace)),
            Some('}') => return Ok(self.lookup(&name).unwrap_or_default()),
            Some(':') => match self.next() {
                Some(c @ ('-' | '+' | '?')) => (true, c),
                None => return Err(err(WordErrorKind::MissingBrace)),
                Some(c) => {
                    return Err(err(WordErrorKind::UnsupportedModifier {
                        modifier: format!(":{c}"),
                    }))
                }
            },
            Some(c @ ('-' | '+' | '?' | '#' | '%')) => (false, c),
            Some('/') => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let pattern = until(self, '/', Mode::Pattern, WordErrorKind::MissingSlash)?;
                let replacement = until(self, '}', Mode::Raw, WordErrorKind::MissingBrace)?;
                let value = self.lookup(&name).unwrap_or_default();
                let glob = Glob::new(&pattern, self.escape);
                return Ok(glob.replace(&value, &replacement, all));
            }
            Some(c) => {
                return Err(err(WordErrorKind::UnsupportedModifier {
                    modifier: c.to_string(),
                }))
            }
        };
        let (null_is_unset, op) = op;
        if op == '#' || op == '%' {
            let longest = self.peek() == Some(op);
            if longest {
                self.next();
            }
            let pattern = until(self, '}', Mode::Pattern, WordErrorKind::MissingBrace)?;
            let value = self.lookup(&name).unwrap_or_default();
            let glob = Glob::new(&pattern, self.escape);
            return Ok(if op == '#' {
                glob.strip_prefix(&value, longest)
            } else {
                glob.strip_suffix(&value, longest)
            });
        }
        let word = until(self, '}', Mode::Cooked, WordErrorKind::MissingBrace)?;
        let value = self.lookup(&name);
        let present = match &value {
            None => false,
            Some(v) => !(null_is_unset && v.is_empty()),
        };
        match op {
            '-' => Ok(if present {
                value.unwrap_or_default()
            } else {
                word
            }),
            '+' => Ok(if present { word } else { String::new() }),
            _ if present => Ok(value.unwrap_or_default()),
            _ => {
                let message = if !word.is_empty() {
                    word
                } else if value.is_none() {
                    "is not allowed to be unset".to_string()
                } else {
                    "is not allowed to be empty".to_string()
                };
                Err(err(WordErrorKind::Required { name, message }))
            }
        }
    }
}

/// A shell pattern: `*`, `?`, bracket expressions, and the escape character for a literal.
#[derive(Debug)]
struct Glob {
    tokens: Vec<Token>,
}

#[derive(Debug, Clone)]
enum Token {
    Literal(char),
    Any,
    Star,
    Class {
        negated: bool,
        items: Vec<ClassItem>,
    },
}

#[derive(Debug, Clone)]
enum ClassItem {
    Range(char, char),
    Named(fn(char) -> bool),
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::Any => true,
            // Stars are handled by `Glob::prefix_ends`, never one character at a time.
            Token::Star => false,
            Token::Class { negated, items } => {
                let hit = items.iter().any(|item| match item {
                    ClassItem::Range(lo, hi) => (*lo..=*hi).contains(&c),
                    ClassItem::Named(f) => f(c),
                });
                hit != *negated
            }
        }
    }
}

fn named_class(name: &str) -> Option<fn(char) -> bool> {
    Some(match name {
        "alpha" => |c: char| c.is_alphabetic(),
        "digit" => |c: char| c.is_ascii_digit(),
        "alnum" => |c: char| c.is_alphanumeric(),
        "upper" => |c: char| c.is_uppercase(),
        "lower" => |c: char| c.is_lowercase(),
        "space" => |c: char| c.is_whitespace(),
        "blank" => |c: char| c == ' ' || c == '\t',
        "punct" => |c: char| c.is_ascii_punctuation(),
        "xdigit" => |c: char| c.is_ascii_hexdigit(),
        "cntrl" => |c: char| c.is_control(),
        _ => return None,
    })
}

impl Glob {
    fn new(pattern: &str, escape: char) -> Glob {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            tokens.push(match c {
                '*' => Token::Star,
                '?' => Token::Any,
                '[' => match Glob::class(&chars[i..], escape) {
                    Some((token, used)) => {
                        i += used;
                        token
                    }
                    None => Token::Literal('['),
                },
                c if c == escape && i < chars.len() => {
                    i += 1;
                    Token::Literal(chars[i - 1])
                }
                c => Token::Literal(c),
            });
        }
        Glob { tokens }
    }

    /// A bracket expression after its `[`, with how many characters it used (including
    /// the `]`); `None` when no `]` closes it, and the `[` is literal.
    fn class(chars: &[char], escape: char) -> Option<(Token, usize)> {
        let mut i = 0;
        let negated = matches!(chars.first(), Some('!' | '^'));
        if negated {
            i += 1;
        }
        let mut items = Vec::new();
        let first = i;
        loop {
            let c = *chars.get(i)?;
            if c == ']' && i > first {
                return Some((Token::Class { negated, items }, i + 1));
            }
            if c == '[' && chars.get(i + 1) == Some(&':') {
                let rest = &chars[i + 2..];
                if let Some(end) = rest.windows(2).position(|w| w == [':', ']']) {
                    let name: String = rest[..end].iter().collect();
                    if let Some(f) = named_class(&name) {
                        items.push(ClassItem::Named(f));
                        i += 2 + end + 2;
                        continue;
                    }
                }
            }
            let (lo, used) = if c == escape && i + 1 < chars.len() {
                (chars[i + 1], 2)
            } else {
                (c, 1)
            };
            i += used;
            if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
                let (hi, used) = if chars[i + 1] == escape && i + 2 < chars.len() {
                    (chars[i + 2], 3)
                } else {
                    (chars[i + 1], 2)
                };
                i += used;
                items.push(ClassItem::Range(lo, hi));
            } else {
                items.push(ClassItem::Range(lo, lo));
            }
        }
    }

    /// For every `k` in `0..=s.len()`, whether `s[..k]` matches: one pass over `s` with
    /// the set of pattern positions reached so far (no backtracking, so a long value
    /// against a pattern of many stars costs `s.len() × pattern length`).
    fn prefix_ends(&self, s: &[char]) -> Vec<bool> {
        let m = self.tokens.len();
        let close = |set: &mut Vec<bool>| {
            for t in 0..m {
                if set[t] && matches!(self.tokens[t], Token::Star) {
                    set[t + 1] = true;
                }
            }
        };
        let mut set = vec![false; m + 1];
        set[0] = true;
        close(&mut set);
        let mut ends = Vec::with_capacity(s.len() + 1);
        ends.push(set[m]);
        for &c in s {
            let mut next = vec![false; m + 1];
            for t in (0..m).filter(|&t| set[t]) {
                match &self.tokens[t] {
                    Token::Star => next[t] = true,
                    token if token.matches(c) => next[t + 1] = true,
                    _ => {}
                }
            }
            close(&mut next);
            set = next;
            ends.push(set[m]);
        }
        ends
    }

    /// Whether the whole of `s` matches.
    #[cfg(test)]
    fn matches(&self, s: &[char]) -> bool {
        self.prefix_ends(s)[s.len()]
    }

    /// The same pattern read backwards, to match suffixes as prefixes of the reversed value.
    fn reversed(&self) -> Glob {
        Glob {
            tokens: self.tokens.iter().rev().cloned().collect(),
        }
    }

    fn pick(ends: &[bool], longest: bool) -> Option<usize> {
        if longest {
            ends.iter().rposition(|&e| e)
        } else {
            ends.iter().position(|&e| e)
        }
    }

    fn strip_prefix(&self, value: &str, longest: bool) -> String {
        let s: Vec<char> = value.chars().collect();
        match Glob::pick(&self.prefix_ends(&s), longest) {
            Some(k) => s[k..].iter().collect(),
            None => value.to_string(),
        }
    }

    fn strip_suffix(&self, value: &str, longest: bool) -> String {
        let reversed: Vec<char> = value.chars().rev().collect();
        match Glob::pick(&self.reversed().prefix_ends(&reversed), longest) {
            Some(k) => reversed[k..].iter().rev().collect(),
            None => value.to_string(),
        }
    }

    /// The leftmost, then longest, match starting at or after `from`.
    fn find(&self, s: &[char], from: usize) -> Option<(usize, usize)> {
        (from..=s.len())
            .find_map(|a| Glob::pick(&self.prefix_ends(&s[a..]), true).map(|k| (a, a + k)))
    }

    /// `${v/p/r}` and `${v//p/r}`. An empty pattern matches the empty string (before every
    /// character, for `//`), as BuildKit's regular expressions do; an empty match right
    /// after a match is skipped.
    fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let s: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut pos = 0;
        let mut previous_end = None;
        while pos <= s.len() {
            let Some((a, b)) = self.find(&s, pos) else {
                break;
            };
            if a == b && previous_end == Some(a) {
                if a == s.len() {
                    break;
                }
                out.extend(&s[pos..=a]);
                pos = a + 1;
                continue;
            }
            out.extend(&s[pos..a]);
            out.push_str(replacement);
            previous_end = Some(b);
            if a < b {
                pos = b;
            } else if a < s.len() {
                out.push(s[a]);
                pos = a + 1;
            } else {
                pos = a + 1;
            }
            if !all {
                break;
            }
        }
        if pos <= s.len() {
            out.extend(&s[pos..]);
        }
        out
    }
}

#[cfg(test)]
mod tests;
