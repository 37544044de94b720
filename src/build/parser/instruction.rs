//! One instruction: its keyword, its flags, its arguments as the reference parses each
//! keyword's, and its heredocs.

use std::fmt;
use std::str::FromStr;

use super::args;
use super::text::Logical;
use crate::error::{Error, Result};

/// An instruction's name.
///
/// Written in any case in a Dockerfile; [`Display`](fmt::Display) gives it uppercase.
///
/// ```
/// use layercake::build::Keyword;
///
/// assert_eq!("stopSignal".parse::<Keyword>()?, Keyword::StopSignal);
/// assert_eq!(Keyword::StopSignal.to_string(), "STOPSIGNAL");
/// assert!("FORM".parse::<Keyword>().is_err());
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Keyword {
    /// `ADD`
    Add,
    /// `ARG`
    Arg,
    /// `CMD`
    Cmd,
    /// `COPY`
    Copy,
    /// `ENTRYPOINT`
    Entrypoint,
    /// `ENV`
    Env,
    /// `EXPOSE`
    Expose,
    /// `FROM`
    From,
    /// `HEALTHCHECK`
    Healthcheck,
    /// `LABEL`
    Label,
    /// `MAINTAINER` (deprecated, still read)
    Maintainer,
    /// `ONBUILD`
    Onbuild,
    /// `RUN`
    Run,
    /// `SHELL`
    Shell,
    /// `STOPSIGNAL`
    StopSignal,
    /// `USER`
    User,
    /// `VOLUME`
    Volume,
    /// `WORKDIR`
    Workdir,
}

const KEYWORDS: [Keyword; 18] = [
    Keyword::Add,
    Keyword::Arg,
    Keyword::Cmd,
    Keyword::Copy,
    Keyword::Entrypoint,
    Keyword::Env,
    Keyword::Expose,
    Keyword::From,
    Keyword::Healthcheck,
    Keyword::Label,
    Keyword::Maintainer,
    Keyword::Onbuild,
    Keyword::Run,
    Keyword::Shell,
    Keyword::StopSignal,
    Keyword::User,
    Keyword::Volume,
    Keyword::Workdir,
];

impl Keyword {
    /// The name, uppercase.
    ///
    /// ```
    /// assert_eq!(layercake::build::Keyword::Workdir.as_str(), "WORKDIR");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::Add => "ADD",
            Keyword::Arg => "ARG",
            Keyword::Cmd => "CMD",
            Keyword::Copy => "COPY",
            Keyword::Entrypoint => "ENTRYPOINT",
            Keyword::Env => "ENV",
            Keyword::Expose => "EXPOSE",
            Keyword::From => "FROM",
            Keyword::Healthcheck => "HEALTHCHECK",
            Keyword::Label => "LABEL",
            Keyword::Maintainer => "MAINTAINER",
            Keyword::Onbuild => "ONBUILD",
            Keyword::Run => "RUN",
            Keyword::Shell => "SHELL",
            Keyword::StopSignal => "STOPSIGNAL",
            Keyword::User => "USER",
            Keyword::Volume => "VOLUME",
            Keyword::Workdir => "WORKDIR",
        }
    }

    /// The flags the instruction takes, and of which kind.
    pub(super) fn flags(self) -> &'static [(&'static str, FlagKind)] {
        use FlagKind::{Bool, List, Value};
        match self {
            Keyword::From => &[("platform", Value)],
            Keyword::Run => &[("mount", List), ("network", Value), ("security", Value)],
            Keyword::Copy => &[
                ("from", Value),
                ("chown", Value),
                ("chmod", Value),
                ("link", Bool),
                ("parents", Bool),
                ("exclude", List),
            ],
            Keyword::Add => &[
                ("chown", Value),
                ("chmod", Value),
                ("checksum", Value),
                ("keep-git-dir", Bool),
                ("link", Bool),
                ("exclude", List),
            ],
            Keyword::Healthcheck => &[
                ("interval", Value),
                ("timeout", Value),
                ("start-period", Value),
                ("start-interval", Value),
                ("retries", Value),
            ],
            _ => &[],
        }
    }
}

impl fmt::Display for Keyword {
    /// Writes the name, uppercase.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Keyword {
    type Err = Error;

    /// Reads a name in any case.
    fn from_str(name: &str) -> Result<Keyword> {
        KEYWORDS
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::Dockerfile {
                line: 1,
                column: 1,
                reason: format!("unknown instruction: {name}"),
            })
    }
}

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FlagKind {
    /// `--link`, `--link=true`, `--link=false`.
    Bool,
    /// `--from=stage`: a value, once.
    Value,
    /// `--mount=…`: a value, as many times as wanted.
    List,
}

/// A flag before an instruction's arguments: `--chown=me`, `--link`.
///
/// Quotes in a flag are removed and `\` escapes the next character, as BuildKit reads them;
/// variables are not expanded here.
///
/// ```
/// use layercake::build::Dockerfile;
///
/// let dockerfile = Dockerfile::parse("FROM scratch\nCOPY --link --chown=\"1:2\" a /\n")?;
/// let flags = dockerfile.instructions()[1].flags();
/// assert_eq!((flags[0].name(), flags[0].value()), ("link", None));
/// assert_eq!((flags[1].name(), flags[1].value()), ("chown", Some("1:2")));
/// assert_eq!(flags[1].to_string(), "--chown=1:2");
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Flag {
    pub(super) name: String,
    pub(super) value: Option<String>,
}

impl Flag {
    /// The name, without `--`.
    ///
    /// ```
    /// # use layercake::build::Dockerfile;
    /// let dockerfile = Dockerfile::parse("FROM --platform=linux/amd64 scratch\n")?;
    /// assert_eq!(dockerfile.instructions()[0].flags()[0].name(), "platform");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value after `=`, if there is one.
    ///
    /// ```
    /// # use layercake::build::Dockerfile;
    /// let dockerfile = Dockerfile::parse("FROM --platform=linux/amd64 scratch\n")?;
    /// assert_eq!(dockerfile.instructions()[0].flags()[0].value(), Some("linux/amd64"));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }
}

impl fmt::Display for Flag {
    /// Writes `--name` or `--name=value`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--{}", self.name)?;
        if let Some(value) = &self.value {
            write!(f, "={value}")?;
        }
        Ok(())
    }
}

/// Whether an instruction's arguments were a JSON array (exec form) or text (shell form).
///
/// RUN, CMD, ENTRYPOINT and HEALTHCHECK CMD in exec form run without a shell; COPY, ADD
/// and VOLUME accept a JSON array for paths with spaces; SHELL must be one.
///
/// ```
/// use layercake::build::{Dockerfile, Form};
///
/// let dockerfile = Dockerfile::parse("FROM scratch\nCMD [\"a\"]\nCMD [\"a\"\n")?;
/// assert_eq!(dockerfile.instructions()[1].form(), Form::Exec);
/// // Not valid JSON: shell form.
/// assert_eq!(dockerfile.instructions()[2].form(), Form::Shell);
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Form {
    /// Text, or whitespace-separated words.
    #[default]
    Shell,
    /// A JSON array of strings.
    Exec,
}

/// An instruction's arguments, as the parser leaves them for variable expansion.
///
/// ```
/// use layercake::build::{Args, Dockerfile};
///
/// let dockerfile = Dockerfile::parse(
///     "FROM scratch\nENV A=1 B=\"two words\"\nUSER me\nEXPOSE 80 443/udp\n",
/// )?;
/// let [_, env, user, expose] = dockerfile.instructions() else { panic!() };
/// assert_eq!(
///     env.args(),
///     &Args::Pairs(vec![("A".into(), "1".into()), ("B".into(), "\"two words\"".into())])
/// );
/// assert_eq!(user.args(), &Args::Text("me".into()));
/// assert_eq!(expose.args(), &Args::List(vec!["80".into(), "443/udp".into()]));
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Args {
    /// The rest of the line as one string: the shell form of RUN, CMD and ENTRYPOINT;
    /// MAINTAINER, STOPSIGNAL, USER and WORKDIR.
    Text(String),
    /// Words: a JSON array (exec form), or whitespace-separated words for FROM, EXPOSE,
    /// COPY, ADD and VOLUME; ARG's `name[=default]` words (quotes kept); HEALTHCHECK's type
    /// (`NONE` or `CMD`) then its command (one string in shell form).
    List(Vec<String>),
    /// ENV's and LABEL's `key=value` pairs (quotes and escapes kept for expansion); the
    /// legacy `ENV key value` form is one pair whose value is the rest of the line.
    Pairs(Vec<(String, String)>),
    /// ONBUILD's trigger.
    Trigger(Box<Instruction>),
}

impl Args {
    /// The arguments as strings, as `--print` shows them: pairs as `key=value`, a trigger
    /// as nothing (it is an instruction).
    ///
    /// ```
    /// # use layercake::build::Args;
    /// let pairs = Args::Pairs(vec![("A".into(), "1".into())]);
    /// assert_eq!(pairs.to_strings(), ["A=1"]);
    /// ```
    pub fn to_strings(&self) -> Vec<String> {
        match self {
            Args::Text(text) => vec![text.clone()],
            Args::List(words) => words.clone(),
            Args::Pairs(pairs) => pairs.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            Args::Trigger(_) => Vec::new(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        match self {
            Args::Text(text) => text.is_empty(),
            Args::List(words) => words.is_empty(),
            Args::Pairs(pairs) => pairs.is_empty(),
            Args::Trigger(_) => false,
        }
    }
}

/// A heredoc of RUN, COPY or ADD: `<<EOF` and the lines up to the one that is `EOF`.
///
/// ```
/// use layercake::build::Dockerfile;
///
/// let dockerfile = Dockerfile::parse("FROM scratch\nRUN <<-'END' sh\n\techo $HOME\n\tEND\n")?;
/// let heredoc = &dockerfile.instructions()[1].heredocs()[0];
/// assert_eq!(heredoc.name(), "END");
/// assert_eq!(heredoc.content(), "echo $HOME\n");
/// assert!(heredoc.is_chomped() && !heredoc.expands());
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub(super) name: String,
    pub(super) content: String,
    pub(super) expand: bool,
    pub(super) chomp: bool,
    pub(super) fd: Option<u32>,
}

impl Heredoc {
    /// The delimiter word, quotes removed.
    ///
    /// ```
    /// # use layercake::build::Dockerfile;
    /// let dockerfile = Dockerfile::parse("FROM scratch\nCOPY <<\"A\" /a\nx\nA\n")?;
    /// assert_eq!(dockerfile.instructions()[1].heredocs()[0].name(), "A");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lines between the instruction and the delimiter, each with its newline; for
    /// `<<-`, with their leading tabs removed.
    ///
    /// ```
    /// # use layercake::build::Dockerfile;
    /// let dockerfile = Dockerfile::parse("FROM scratch\nCOPY <<A /a\none\n  two\nA\n")?;
    /// assert_eq!(dockerfile.instructions()[1].heredocs()[0].content(), "one\n  two\n");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn content(&self) -> &str {
        &self.content
    }

    /// Whether variables in the content are to be expanded: not when any part of the
    /// delimiter was quoted (`<<"EOF"`, `<<'EOF'`).
    ///
    /// ```
    /// # use layercake::build::Dockerfile;
    /// let dockerfile = Dockerfile::parse("FROM scratch\nCOPY <<A <<'B' /d/\n$x\nA\n$y\nB\n")?;
    /// let heredocs = dockerfile.instructions()[1].heredocs();
    /// assert!(heredocs[0].expands() && !heredocs[1].expands());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn expands(&self) -> bool {
        self.expand
    }

    /// Whether it was `<<-`: leading tabs removed from the content and the delimiter line.
    ///
    /// ```
    /// # use layercake::build::Dockerfile;
    /// let dockerfile = Dockerfile::parse("FROM scratch\nRUN <<-A\n\ttrue\n\tA\n")?;
    /// assert!(dockerfile.instructions()[1].heredocs()[0].is_chomped());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn is_chomped(&self) -> bool {
        self.chomp
    }

    /// The file descriptor before `<<` (`3<<EOF`), if one was written.
    ///
    /// ```
    /// # use layercake::build::Dockerfile;
    /// let dockerfile = Dockerfile::parse("FROM scratch\nRUN cat 3<<A\nx\nA\n")?;
    /// assert_eq!(dockerfile.instructions()[1].heredocs()[0].fd(), Some(3));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn fd(&self) -> Option<u32> {
        self.fd
    }
}

/// One instruction of a Dockerfile.
///
/// ```
/// use layercake::build::{Args, Dockerfile, Keyword};
///
/// let dockerfile = Dockerfile::parse("FROM scratch\nONBUILD RUN --network=none make\n")?;
/// let onbuild = &dockerfile.instructions()[1];
/// let Args::Trigger(trigger) = onbuild.args() else { panic!() };
/// assert_eq!(trigger.keyword(), Keyword::Run);
/// assert_eq!(trigger.flags()[0].to_string(), "--network=none");
/// assert_eq!(onbuild.original(), "ONBUILD RUN --network=none make");
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub(super) keyword: Keyword,
    pub(super) flags: Vec<Flag>,
    pub(super) args: Args,
    pub(super) form: Form,
    pub(super) heredocs: Vec<Heredoc>,
    pub(super) start_line: usize,
    pub(super) end_line: usize,
    pub(super) column: usize,
    pub(super) original: String,
}

impl Instruction {
    /// Its keyword.
    ///
    /// ```
    /// # use layercake::build::{Dockerfile, Keyword};
    /// let dockerfile = Dockerfile::parse("From scratch\n")?;
    /// assert_eq!(dockerfile.instructions()[0].keyword(), Keyword::From);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn keyword(&self) -> Keyword {
        self.keyword
    }

    /// Its flags, in order.
    ///
    /// ```
    /// # use layercake::build::Dockerfile;
    /// let dockerfile = Dockerfile::parse("FROM scratch\nRUN --mount=type=cache,target=/c true\n")?;
    /// assert_eq!(dockerfile.instructions()[1].flags()[0].value(), Some("type=cache,target=/c"));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn flags(&self) -> &[Flag] {
        &self.flags
    }

    /// The value of a flag given once (the last one, if it was repeated).
    ///
    /// ```
    /// # use layercake::build::Dockerfile;
    /// let dockerfile = Dockerfile::parse("FROM scratch\nCOPY --from=build /a /b\n")?;
    /// assert_eq!(dockerfile.instructions()[1].flag("from"), Some("build"));
    /// assert_eq!(dockerfile.instructions()[1].flag("chown"), None);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|f| f.name == name)
            .map(|f| f.value.as_deref().unwrap_or("true"))
    }

    /// Its arguments.
    ///
    /// ```
    /// # use layercake::build::{Args, Dockerfile};
    /// let dockerfile = Dockerfile::parse("FROM scratch\nWORKDIR /a b\n")?;
    /// assert_eq!(dockerfile.instructions()[1].args(), &Args::Text("/a b".into()));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn args(&self) -> &Args {
        &self.args
    }

    /// Exec form (a JSON array) or shell form.
    ///
    /// ```
    /// # use layercake::build::{Dockerfile, Form};
    /// let dockerfile = Dockerfile::parse("FROM scratch\nRUN [\"true\"]\n")?;
    /// assert_eq!(dockerfile.instructions()[1].form(), Form::Exec);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn form(&self) -> Form {
        self.form
    }

    /// Its heredocs, in the order they appear on its line.
    ///
    /// ```
    /// # use layercake::build::Dockerfile;
    /// let dockerfile = Dockerfile::parse("FROM scratch\nRUN <<A cat - <<B\na\nA\nb\nB\n")?;
    /// let names: Vec<&str> =
    ///     dockerfile.instructions()[1].heredocs().iter().map(|h| h.name()).collect();
    /// assert_eq!(names, ["A", "B"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn heredocs(&self) -> &[Heredoc] {
        &self.heredocs
    }

    /// The line it starts on, from 1.
    ///
    /// ```
    /// # use layercake::build::Dockerfile;
    /// let dockerfile = Dockerfile::parse("\n# c\nFROM scratch\n")?;
    /// assert_eq!(dockerfile.instructions()[0].start_line(), 3);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn start_line(&self) -> usize {
        self.start_line
    }

    /// The last line it takes: continuations and heredocs included.
    ///
    /// ```
    /// # use layercake::build::Dockerfile;
    /// let dockerfile = Dockerfile::parse("FROM scratch\nRUN <<A\nx\nA\n")?;
    /// assert_eq!(dockerfile.instructions()[1].end_line(), 4);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn end_line(&self) -> usize {
        self.end_line
    }

    /// The instruction's text as one line: continuations joined, comments removed, leading
    /// whitespace dropped (heredoc contents not included). ONBUILD keeps its trigger's text
    /// from this.
    ///
    /// ```
    /// # use layercake::build::Dockerfile;
    /// let dockerfile = Dockerfile::parse("FROM scratch\n  RUN a \\\n# note\n  b\n")?;
    /// assert_eq!(dockerfile.instructions()[1].original(), "RUN a   b");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn original(&self) -> &str {
        &self.original
    }

    /// The instruction as one line of JSON, as [`Dockerfile::print`](super::Dockerfile::print)
    /// writes it.
    ///
    /// ```
    /// # use layercake::build::Dockerfile;
    /// let dockerfile = Dockerfile::parse("FROM scratch\nCMD [\"a\", \"b\"]\n")?;
    /// assert_eq!(
    ///     dockerfile.instructions()[1].print(),
    ///     r#"{"instruction":"CMD","flags":[],"args":["a","b"],"json":true}"#
    /// );
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn print(&self) -> String {
        super::print::instruction(self)
    }

    /// The column of its keyword.
    pub(super) fn column(&self) -> usize {
        self.column
    }

    pub(super) fn set_lines(&mut self, start: usize, end: usize) {
        self.start_line = start;
        self.end_line = end;
        if let Args::Trigger(trigger) = &mut self.args {
            trigger.set_lines(start, end);
        }
    }

    /// Adds a heredoc's content; an ONBUILD's belong to its trigger.
    pub(super) fn add_heredoc(&mut self, heredoc: Heredoc) {
        match &mut self.args {
            Args::Trigger(trigger) => trigger.add_heredoc(heredoc),
            _ => self.heredocs.push(heredoc),
        }
    }

    /// The heredocs its line opens, with their offsets in the logical line: RUN, COPY and
    /// ADD in shell form (or as ONBUILD's trigger) may have them.
    pub(super) fn heredoc_words(&self, logical: &Logical<'_>) -> Vec<(usize, Heredoc)> {
        let target = match &self.args {
            Args::Trigger(trigger) => trigger,
            _ => self,
        };
        let can = matches!(target.keyword, Keyword::Run | Keyword::Copy | Keyword::Add)
            && target.form == Form::Shell;
        if !can {
            return Vec::new();
        }
        args::raw_words(&logical.text)
            .into_iter()
            .filter_map(|(at, word)| args::heredoc_word(word).map(|h| (at, h)))
            .collect()
    }
}
