//! An instruction's text taken apart: its keyword, its flags (`--name[=value]`, checked
//! against the keyword's), its arguments as the reference reads each keyword's (JSON arrays,
//! words, quoted words, `key=value` pairs, ONBUILD's trigger) and the words that open
//! heredocs; then the argument counts and values the reference requires.

use super::instruction::{Args, Flag, FlagKind, Form, Heredoc, Instruction, Keyword};
use super::text::Logical;
use crate::error::Result;

/// Parses the instruction at byte `start` of a logical line.
pub(super) fn parse(logical: &Logical<'_>, start: usize, escape: char) -> Result<Instruction> {
    let text = &logical.text;
    let lead = text[start..].len() - text[start..].trim_start().len();
    let name_at = start + lead;
    let line = text[name_at..].trim_end();
    let name_len = line.find(char::is_whitespace).unwrap_or(line.len());
    let name = &line[..name_len];
    let keyword: Keyword = name
        .parse()
        .map_err(|_| logical.error(name_at, format!("unknown instruction: {name}")))?;
    let (_, column) = logical.position(name_at);
    let rest_at = name_at + name_len;
    let (flag_words, args_at) = split_flags(text, rest_at, name_at + line.len());
    let flags = check_flags(logical, keyword, flag_words)?;
    let args_at = args_at + (text[args_at..].len() - text[args_at..].trim_start().len());
    let rest = text[args_at..name_at + line.len()].trim_end();
    let (args, form) = parse_args(logical, keyword, rest, args_at, escape)?;
    let instruction = Instruction {
        keyword,
        flags,
        args,
        form,
        heredocs: Vec::new(),
        start_line: 0,
        end_line: 0,
        column,
        original: line.to_owned(),
    };
    check_args(logical, &instruction, args_at)?;
    Ok(instruction)
}

/// Splits the flags off the text between `from` and `to`: the words starting with `--`,
/// quotes removed and `\` escaping the next character, up to the first other word (or a
/// lone `--`). Returns each flag with its offset, and where the arguments start.
fn split_flags(text: &str, from: usize, to: usize) -> (Vec<(usize, String)>, usize) {
    let mut flags = Vec::new();
    let mut at = from;
    loop {
        let rest = &text[at..to];
        let skipped = rest.len() - rest.trim_start().len();
        at += skipped;
        if !text[at..to].starts_with("--") {
            return (flags, at);
        }
        let start = at;
        let mut word = String::new();
        let mut quote = None;
        let mut chars = text[at..to].char_indices();
        let mut end = to;
        while let Some((i, c)) = chars.next() {
            match quote {
                None if c.is_whitespace() => {
                    end = at + i;
                    break;
                }
                None if c == '\'' || c == '"' => quote = Some(c),
                Some(q) if c == q => quote = None,
                _ if c == '\\' && quote != Some('\'') => {
                    if let Some((_, next)) = chars.next() {
                        word.push(next);
                    }
                }
                _ => word.push(c),
            }
        }
        at = end;
        if word == "--" {
            return (flags, at);
        }
        flags.push((start, word));
    }
}

/// Checks flags against the instruction's: known, with a value when one is needed, a
/// boolean's `true` or `false`, given once unless repeatable.
fn check_flags(
    logical: &Logical<'_>,
    keyword: Keyword,
    words: Vec<(usize, String)>,
) -> Result<Vec<Flag>> {
    let mut flags: Vec<Flag> = Vec::new();
    for (at, word) in words {
        let word = &word[2..];
        let (name, value) = match word.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (word, None),
        };
        let Some(&(_, kind)) = keyword.flags().iter().find(|(n, _)| *n == name) else {
            return Err(logical.error(at, format!("unknown flag: {name}")));
        };
        match (kind, &value) {
            (FlagKind::Bool, Some(v))
                if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") =>
            {
                return Err(logical.error(
                    at,
                    format!("expecting boolean value for flag {name}, not: {v}"),
                ));
            }
            (FlagKind::Value | FlagKind::List, None) => {
                return Err(logical.error(at, format!("missing a value on flag: {name}")));
            }
            _ => {}
        }
        if kind != FlagKind::List && flags.iter().any(|f| f.name == name) {
            return Err(logical.error(at, format!("duplicate flag specified: {name}")));
        }
        flags.push(Flag {
            name: name.to_owned(),
            value,
        });
    }
    Ok(flags)
}

/// The words of a line split at whitespace the way the heredoc finder sees them: quotes
/// and backslash escapes kept in the words, with each word's offset.
pub(super) fn raw_words(text: &str) -> Vec<(usize, &str)> {
    let mut words = Vec::new();
    let mut start = None;
    let mut quote = None;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        if start.is_none() {
            if c.is_whitespace() {
                continue;
            }
            start = Some(i);
        }
        match quote {
            None if c.is_whitespace() => {
                if let Some(begin) = start.take() {
                    words.push((begin, &text[begin..i]));
                }
                continue;
            }
            None if c == '\'' || c == '"' => quote = Some(c),
            Some(q) if c == q => quote = None,
            _ if c == '\\' && quote != Some('\'') => {
                chars.next();
            }
            _ => {}
        }
    }
    if let Some(begin) = start {
        words.push((begin, &text[begin..]));
    }
    words
}

/// A heredoc opened by a word: digits (a file descriptor), `<<`, an optional `-`, and a
/// delimiter word without `<`.
pub(super) fn heredoc_word(word: &str) -> Option<Heredoc> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let rest = word[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let name = unquote(rest);
    if name.is_empty() {
        return None;
    }
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    Some(Heredoc {
        expand: quotes(&name) == quotes(rest),
        name,
        content: String::new(),
        chomp,
        fd: word[..digits].parse().ok(),
    })
}

/// A word with its quotes removed and its backslash escapes applied.
fn unquote(word: &str) -> String {
    let mut out = String::new();
    let mut quote = None;
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match quote {
            None if c == '\'' || c == '"' => quote = Some(c),
            Some(q) if c == q => quote = None,
            _ if c == '\\' && quote != Some('\'') => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Whitespace as the reference splits words at: space, tab, vertical tab, form feed, CR.
fn is_split_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0b' | '\x0c' | '\r')
}

/// Words split at whitespace, with their offsets from `base`.
fn split_words(text: &str, base: usize) -> Vec<(usize, String)> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (is_split_space(c), start) {
            (true, Some(s)) => {
                words.push((base + s, text[s..i].to_owned()));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push((base + s, text[s..].to_owned()));
    }
    words
}

/// Words as ARG, ENV and LABEL read them: split at whitespace outside quotes, quotes and
/// escapes kept (the escape character at the very end dropped).
fn quoted_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut in_word = false;
    let mut quote = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            None => {
                if c.is_whitespace() {
                    if in_word && (blank_ok || !word.is_empty()) {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    in_word = false;
                    blank_ok = false;
                    continue;
                }
                in_word = true;
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    blank_ok = true;
                }
                if c == escape {
                    // An escape character at the very end is dropped.
                    if let Some(next) = chars.next() {
                        word.push(c);
                        word.push(next);
                    }
                    continue;
                }
                word.push(c);
            }
            Some(q) => {
                if c == q {
                    quote = None;
                }
                if c == escape && q != '\'' {
                    match chars.next() {
                        Some(next) => {
                            word.push(c);
                            word.push(next);
                        }
                        None => quote = None,
                    }
                    continue;
                }
                word.push(c);
            }
        }
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// A JSON array: `None` if the text is not valid JSON (shell form), else its strings.
fn json_array(text: &str) -> Option<std::result::Result<Vec<String>, ()>> {
    if !text.starts_with('[') {
        return None;
    }
    match serde_json::from_str::<serde_json::Value>(text).ok()? {
        serde_json::Value::Array(items) => Some(
            items
                .into_iter()
                .map(|item| match item {
                    serde_json::Value::String(s) => Ok(s),
                    _ => Err(()),
                })
                .collect(),
        ),
        _ => None,
    }
}

const NOT_STRINGS: &str = "when using JSON array syntax, arrays must be comprised of strings only";

/// Parses the arguments after the flags, as each keyword reads them.
fn parse_args(
    logical: &Logical<'_>,
    keyword: Keyword,
    rest: &str,
    at: usize,
    escape: char,
) -> Result<(Args, Form)> {
    let maybe_json = |text: &str, offset: usize| -> Result<Option<Vec<String>>> {
        match json_array(text) {
            None => Ok(None),
            Some(Ok(words)) => Ok(Some(words)),
            Some(Err(())) => Err(logical.error(offset, NOT_STRINGS)),
        }
    };
    let words = |text: &str, offset: usize| -> Vec<String> {
        split_words(text, offset)
            .into_iter()
            .map(|(_, w)| w)
            .collect()
    };
    Ok(match keyword {
        Keyword::Run | Keyword::Cmd | Keyword::Entrypoint | Keyword::Shell => {
            match maybe_json(rest, at)? {
                Some(words) => (Args::List(words), Form::Exec),
                None if rest.is_empty() => (Args::List(Vec::new()), Form::Shell),
                None => (Args::Text(rest.to_owned()), Form::Shell),
            }
        }
        Keyword::Add | Keyword::Copy | Keyword::Volume => match maybe_json(rest, at)? {
            Some(words) => (Args::List(words), Form::Exec),
            None => (Args::List(words(rest, at)), Form::Shell),
        },
        Keyword::From | Keyword::Expose => (Args::List(words(rest, at)), Form::Shell),
        Keyword::Arg => (Args::List(quoted_words(rest, escape)), Form::Shell),
        Keyword::Env | Keyword::Label => (
            Args::Pairs(pairs(logical, keyword, rest, at, escape)?),
            Form::Shell,
        ),
        Keyword::Maintainer | Keyword::StopSignal | Keyword::User | Keyword::Workdir => {
            if rest.is_empty() {
                (Args::List(Vec::new()), Form::Shell)
            } else {
                (Args::Text(rest.to_owned()), Form::Shell)
            }
        }
        Keyword::Healthcheck => {
            let typ_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let command = rest[typ_len..].trim_start();
            let command_at = at + (rest.len() - command.len());
            let mut list = vec![rest[..typ_len].to_owned()];
            let mut form = Form::Shell;
            if rest.is_empty() {
                list.clear();
            } else if let Some(words) = maybe_json(command, command_at)? {
                list.extend(words);
                form = Form::Exec;
            } else if !command.is_empty() {
                list.push(command.to_owned());
            }
            (Args::List(list), form)
        }
        Keyword::Onbuild => {
            if rest.is_empty() {
                return Err(logical.error(at, "ONBUILD requires at least one argument"));
            }
            let name = rest.split(char::is_whitespace).next().unwrap_or("");
            if name.eq_ignore_ascii_case("ONBUILD") {
                return Err(
                    logical.error(at, "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
                );
            }
            if name.eq_ignore_ascii_case("FROM") || name.eq_ignore_ascii_case("MAINTAINER") {
                return Err(logical.error(
                    at,
                    format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        name.to_uppercase()
                    ),
                ));
            }
            let trigger = parse(logical, at, escape)?;
            (Args::Trigger(Box::new(trigger)), Form::Shell)
        }
    })
}

/// ENV's and LABEL's pairs: `k=v` words, or the legacy `k v` (the first word without `=`).
fn pairs(
    logical: &Logical<'_>,
    keyword: Keyword,
    rest: &str,
    at: usize,
    escape: char,
) -> Result<Vec<(String, String)>> {
    let words = quoted_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let Some(split) = rest.find(is_split_space) else {
            return Err(logical.error(at, format!("{keyword} must have two arguments")));
        };
        let value = rest[split..].trim_start_matches(is_split_space);
        return Ok(vec![(rest[..split].to_owned(), value.to_owned())]);
    }
    let mut pairs = Vec::new();
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(logical.error(
                at,
                format!("syntax error - can't find = in {word:?}. Must be of the form: name=value"),
            ));
        };
        if key.is_empty() {
            return Err(logical.error(at, format!("{keyword} names can not be blank")));
        }
        pairs.push((key.to_owned(), value.to_owned()));
    }
    Ok(pairs)
}

/// The argument counts and values the reference requires of each instruction.
fn check_args(logical: &Logical<'_>, instruction: &Instruction, at: usize) -> Result<()> {
    let keyword = instruction.keyword;
    let error = |reason: String| Err(logical.error(at, reason));
    let list: &[String] = match &instruction.args {
        Args::List(words) => words,
        _ => &[],
    };
    match keyword {
        Keyword::Env | Keyword::Label | Keyword::Arg | Keyword::Expose | Keyword::Volume
            if instruction.args.is_empty() =>
        {
            error(format!("{keyword} requires at least one argument"))
        }
        Keyword::Run if instruction.args.is_empty() => {
            error("RUN requires at least one argument".into())
        }
        Keyword::Maintainer | Keyword::StopSignal | Keyword::User | Keyword::Workdir
            if instruction.args.is_empty() =>
        {
            error(format!("{keyword} requires exactly one argument"))
        }
        Keyword::Volume if list.iter().any(|v| v.trim().is_empty()) => {
            error("VOLUME specified can not be an empty string".into())
        }
        Keyword::Shell if instruction.form != Form::Exec => {
            error("SHELL requires the arguments to be in JSON form".into())
        }
        Keyword::Shell if list.is_empty() => error("SHELL requires at least one argument".into()),
        Keyword::Add | Keyword::Copy => check_copy(logical, instruction, list, at),
        Keyword::From => check_from(logical, list, at),
        Keyword::Healthcheck => check_healthcheck(logical, instruction, list, at),
        _ => Ok(()),
    }
}

fn check_copy(
    logical: &Logical<'_>,
    instruction: &Instruction,
    list: &[String],
    at: usize,
) -> Result<()> {
    let keyword = instruction.keyword;
    let Some(dest) = list.last().filter(|_| list.len() >= 2) else {
        return Err(logical.error(
            at,
            format!(
                "{keyword} requires at least two arguments, but only one was provided. \
                 Destination could not be determined"
            ),
        ));
    };
    if instruction.form == Form::Shell && heredoc_word(dest).is_some() {
        return Err(logical.error(
            at,
            format!("{keyword} cannot accept a heredoc as a destination"),
        ));
    }
    Ok(())
}

fn check_from(logical: &Logical<'_>, list: &[String], at: usize) -> Result<()> {
    match list {
        [_] => Ok(()),
        [_, as_, name] if as_.eq_ignore_ascii_case("as") => {
            let lower = name.to_ascii_lowercase();
            let valid = lower.starts_with(|c: char| c.is_ascii_lowercase())
                && lower
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if valid {
                Ok(())
            } else {
                Err(logical.error(
                    at,
                    format!(
                        "invalid name for build stage: {name:?}, name can't start with a number \
                         or contain symbols"
                    ),
                ))
            }
        }
        _ => Err(logical.error(at, "FROM requires either one or three arguments")),
    }
}

fn check_healthcheck(
    logical: &Logical<'_>,
    instruction: &Instruction,
    list: &[String],
    at: usize,
) -> Result<()> {
    let Some(typ) = list.first() else {
        return Err(logical.error(at, "HEALTHCHECK requires at least one argument"));
    };
    if typ.eq_ignore_ascii_case("NONE") {
        if list.len() > 1 {
            return Err(logical.error(at, "HEALTHCHECK NONE takes no arguments"));
        }
    } else if typ.eq_ignore_ascii_case("CMD") {
        if list.len() < 2 {
            return Err(logical.error(at, "missing command after HEALTHCHECK CMD"));
        }
    } else {
        return Err(logical.error(at, format!("unknown type {typ:?} in HEALTHCHECK (try CMD)")));
    }
    for flag in &instruction.flags {
        let value = flag.value.as_deref().unwrap_or("");
        let valid = if flag.name == "retries" {
            value.parse::<u32>().is_ok_and(|n| n >= 1)
        } else {
            duration_nanos(value).is_some_and(|ns| ns == 0 || ns >= 1_000_000)
        };
        if !valid {
            return Err(logical.error(
                at,
                format!("invalid value for HEALTHCHECK --{}: {value:?}", flag.name),
            ));
        }
    }
    Ok(())
}

/// A Go duration (`30s`, `1m30s`, `1.5h`, `500ms`) in nanoseconds.
pub(crate) fn duration_nanos(text: &str) -> Option<u128> {
    if text == "0" {
        return Some(0);
    }
    let mut rest = text;
    let mut total: f64 = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    Some(total.round() as u128)
}
