//! The Dockerfile parser: parser directives, comments, line continuations, heredocs and
//! each instruction's flags and arguments, as the Dockerfile reference and BuildKit's
//! parser read them. Words are not expanded here: `$VAR`, quotes in ENV values and ARG
//! defaults are kept as written, for the word lexer to expand in the instruction's
//! environment when the step runs.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

mod args;
mod instruction;
mod print;
mod text;

pub use instruction::{Args, Flag, Form, Heredoc, Instruction, Keyword};

pub(super) use args::duration_nanos;
use text::{trim_continuation, trim_newline, Logical};

/// A parsed Dockerfile: its parser directives and its instructions, in order.
///
/// Parsing follows the [Dockerfile reference]: instruction names in any case, `#` comments
/// (also between continued lines), the escape character (`\`, or `` ` `` after
/// `# escape=``) at the end of a line continuing it with the next one's indentation kept,
/// parser directives only before anything else, a UTF-8 byte order mark dropped, flags
/// `--name[=value]` before the arguments, exec form for a JSON array of strings, heredocs in
/// RUN, COPY and ADD. Every error names a line and a column.
///
/// [Dockerfile reference]: https://docs.docker.com/reference/dockerfile/
///
/// ```
/// use layercake::build::{Args, Dockerfile, Form, Keyword};
///
/// let dockerfile = Dockerfile::parse(
///     "# syntax=docker/dockerfile:1\n\
///      FROM busybox AS base\n\
///      RUN echo hello \\\n    world\n\
///      CMD [\"sh\", \"-c\", \"echo $HOME\"]\n",
/// )?;
/// assert_eq!(dockerfile.directives()[0].name(), "syntax");
/// let [from, run, cmd] = dockerfile.instructions() else { panic!() };
/// assert_eq!(from.keyword(), Keyword::From);
/// assert_eq!(run.args(), &Args::Text("echo hello     world".into()));
/// assert_eq!((run.start_line(), run.end_line()), (3, 4));
/// assert_eq!(cmd.form(), Form::Exec);
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    directives: Vec<Directive>,
    escape: char,
    instructions: Vec<Instruction>,
}

/// A parser directive (`# escape=``, `# syntax=…`, `# check=…`) from the top of a
/// Dockerfile.
///
/// ```
/// use layercake::build::Dockerfile;
///
/// let dockerfile = Dockerfile::parse("# Check = skip=all\nFROM scratch\n")?;
/// let check = &dockerfile.directives()[0];
/// assert_eq!((check.name(), check.value(), check.line()), ("check", "skip=all", 1));
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    name: String,
    value: String,
    line: usize,
}

impl Directive {
    /// The directive's name, lowercase: `escape`, `syntax` or `check`.
    ///
    /// ```
    /// # use layercake::build::Dockerfile;
    /// let dockerfile = Dockerfile::parse("# ESCAPE=`\nFROM scratch\n")?;
    /// assert_eq!(dockerfile.directives()[0].name(), "escape");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its value, trimmed.
    ///
    /// ```
    /// # use layercake::build::Dockerfile;
    /// let dockerfile = Dockerfile::parse("#syntax = docker/dockerfile:1 \nFROM scratch\n")?;
    /// assert_eq!(dockerfile.directives()[0].value(), "docker/dockerfile:1");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The line it is on, from 1.
    ///
    /// ```
    /// # use layercake::build::Dockerfile;
    /// let dockerfile = Dockerfile::parse("# syntax=a\n# escape=\\\nFROM scratch\n")?;
    /// assert_eq!(dockerfile.directives()[1].line(), 2);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn line(&self) -> usize {
        self.line
    }
}

/// The directives known to the reference; any other `# key=value` is a comment.
const DIRECTIVES: [&str; 3] = ["escape", "syntax", "check"];

/// Recognises parser directives until the first line that is not one.
struct Directives {
    done: bool,
    escape: char,
    found: Vec<Directive>,
}

impl Directives {
    /// Looks at a line (leading whitespace removed) while directives may still come.
    fn line(&mut self, line: &str, number: usize) -> Result<()> {
        if self.done {
            return Ok(());
        }
        let Some((name, value)) = directive(line) else {
            self.done = true;
            return Ok(());
        };
        let name = name.to_ascii_lowercase();
        if !DIRECTIVES.contains(&name.as_str()) {
            self.done = true;
            return Ok(());
        }
        let column = 1;
        if self.found.iter().any(|d| d.name == name) {
            return Err(Error::Dockerfile {
                line: number,
                column,
                reason: format!("only one {name} parser directive can be used"),
            });
        }
        if name == "escape" {
            self.escape = match value {
                "\\" => '\\',
                "`" => '`',
                _ => {
                    return Err(Error::Dockerfile {
                        line: number,
                        column,
                        reason: format!("invalid escape token '{value}' does not match ` or \\"),
                    })
                }
            };
        }
        self.found.push(Directive {
            name,
            value: value.to_owned(),
            line: number,
        });
        Ok(())
    }
}

/// `#`, optional whitespace, a name (a letter, then letters and digits), optional
/// whitespace, `=`, optional whitespace, a non-empty value (trailing whitespace dropped).
fn directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let end = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    let (name, rest) = rest.split_at(end);
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest.trim_start().strip_prefix('=')?.trim();
    (!value.is_empty()).then_some((name, value))
}

impl Dockerfile {
    /// Parses a Dockerfile.
    ///
    /// # Errors
    ///
    /// [`Error::Dockerfile`], naming the line and column, for anything the reference calls
    /// an error: an unknown instruction, an unknown flag or a flag without its value, a
    /// parser directive twice or an escape other than `\` and `` ` ``, a non-string in a JSON
    /// array, SHELL not in JSON form, arguments missing or too many (`WORKDIR`, `FROM a b`),
    /// `ONBUILD ONBUILD`, `ONBUILD FROM`, an unterminated heredoc, an instruction before the
    /// first FROM other than ARG, a file with no instruction.
    ///
    /// ```
    /// use layercake::build::Dockerfile;
    ///
    /// let err = Dockerfile::parse("FROM scratch\n\n  FORM busybox\n").unwrap_err();
    /// assert_eq!(err.to_string(), "dockerfile line 3, column 3: unknown instruction: FORM");
    /// ```
    pub fn parse(text: &str) -> Result<Dockerfile> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut directives = Directives {
            done: false,
            escape: '\\',
            found: Vec::new(),
        };
        let mut instructions = Vec::new();
        let mut next = 0;
        while next < lines.len() {
            let number = next + 1;
            let body = trim_newline(lines[next]);
            next += 1;
            let stripped = body.trim_start();
            directives.line(stripped, number)?;
            if stripped.is_empty() || stripped.starts_with('#') {
                continue;
            }
            let escape = directives.escape;
            let mut logical = Logical::default();
            let (part, mut continued) = trim_continuation(stripped, escape);
            logical.push(part, number, body, body.len() - stripped.len());
            while continued && next < lines.len() {
                let number = next + 1;
                let body = trim_newline(lines[next]);
                next += 1;
                let stripped = body.trim_start();
                // A comment or an empty line continues the instruction.
                if stripped.is_empty() || stripped.starts_with('#') {
                    continue;
                }
                let (part, more) = trim_continuation(body, escape);
                logical.push(part, number, body, 0);
                continued = more;
            }
            if logical.text.trim().is_empty() {
                continue;
            }
            let mut instruction = args::parse(&logical, 0, escape)?;
            instruction.set_lines(number, next);
            let found = instruction.heredoc_words(&logical);
            for (at, mut heredoc) in found {
                let mut content = String::new();
                let mut terminated = false;
                while next < lines.len() {
                    let raw = lines[next];
                    next += 1;
                    let mut candidate = trim_newline(raw);
                    if heredoc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == heredoc.name {
                        terminated = true;
                        break;
                    }
                    content.push_str(if heredoc.chomp {
                        raw.trim_start_matches('\t')
                    } else {
                        raw
                    });
                }
                if !terminated {
                    return Err(logical.error(at, format!("unterminated heredoc {}", heredoc.name)));
                }
                heredoc.content = content;
                instruction.add_heredoc(heredoc);
            }
            instruction.set_lines(number, next);
            instructions.push(instruction);
        }
        check_stages(&instructions, lines.len())?;
        Ok(Dockerfile {
            directives: directives.found,
            escape: directives.escape,
            instructions,
        })
    }

    /// The parser directives, in the order they came.
    ///
    /// ```
    /// # use layercake::build::Dockerfile;
    /// // A directive after a comment is a comment.
    /// let dockerfile = Dockerfile::parse("# about\n# escape=`\nFROM scratch\n")?;
    /// assert!(dockerfile.directives().is_empty());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn directives(&self) -> &[Directive] {
        &self.directives
    }

    /// The escape character: `\`, or `` ` `` when the `escape` directive says so. The word
    /// lexer needs it to expand arguments.
    ///
    /// ```
    /// # use layercake::build::Dockerfile;
    /// let dockerfile = Dockerfile::parse("# escape=`\nFROM scratch\n")?;
    /// assert_eq!(dockerfile.escape(), '`');
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn escape(&self) -> char {
        self.escape
    }

    /// The instructions, in order.
    ///
    /// ```
    /// # use layercake::build::{Dockerfile, Keyword};
    /// let dockerfile = Dockerfile::parse("ARG V=1\nfrom busybox:$V\nrun true\n")?;
    /// let keywords: Vec<Keyword> = dockerfile.instructions().iter().map(|i| i.keyword()).collect();
    /// assert_eq!(keywords, [Keyword::Arg, Keyword::From, Keyword::Run]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn instructions(&self) -> &[Instruction] {
        &self.instructions
    }

    /// The instructions as JSON, one object a line (what `layercake build --print` shows):
    /// `instruction`, `flags` as written (`--chown=me`), `args` before variable expansion
    /// (ENV and LABEL as `"k=v"`, ONBUILD's trigger as one nested object), `"json":true`
    /// for the exec form, and `heredocs` as `{"name","content","expand"}` when there are any.
    ///
    /// ```
    /// # use layercake::build::Dockerfile;
    /// let dockerfile = Dockerfile::parse("FROM scratch\nCOPY --chown=me foo /tmp/\n")?;
    /// assert_eq!(
    ///     dockerfile.print(),
    ///     "{\"instruction\":\"FROM\",\"flags\":[],\"args\":[\"scratch\"]}\n\
    ///      {\"instruction\":\"COPY\",\"flags\":[\"--chown=me\"],\"args\":[\"foo\",\"/tmp/\"]}\n"
    /// );
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn print(&self) -> String {
        let mut out = String::new();
        for instruction in &self.instructions {
            out.push_str(&instruction.print());
            out.push('\n');
        }
        out
    }
}

impl FromStr for Dockerfile {
    type Err = Error;

    /// Parses a Dockerfile, as [`Dockerfile::parse`].
    fn from_str(text: &str) -> Result<Dockerfile> {
        Dockerfile::parse(text)
    }
}

impl fmt::Display for Dockerfile {
    /// Writes [`Dockerfile::print`]'s JSON lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.print())
    }
}

/// A Dockerfile has instructions, and only ARGs come before its first FROM.
fn check_stages(instructions: &[Instruction], lines: usize) -> Result<()> {
    if instructions.is_empty() {
        return Err(Error::Dockerfile {
            line: lines.max(1),
            column: 1,
            reason: "file with no instructions".into(),
        });
    }
    let Some(first) = instructions.iter().find(|i| i.keyword() != Keyword::Arg) else {
        return Err(Error::Dockerfile {
            line: lines.max(1),
            column: 1,
            reason: "no FROM: the file has no stage to build".into(),
        });
    };
    if first.keyword() != Keyword::From {
        return Err(Error::Dockerfile {
            line: first.start_line(),
            column: first.column(),
            reason: format!(
                "{} before the first FROM: only ARG may come before it",
                first.keyword()
            ),
        });
    }
    Ok(())
}
