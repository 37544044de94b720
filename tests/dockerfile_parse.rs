//! The Dockerfile parser against the reference (https://docs.docker.com/reference/dockerfile/)
//! and BuildKit's parser: one test a documented behaviour, the errors included, and the
//! shapes `layercake build --print` writes.

use layercake::build::{Args, Dockerfile, Form, Instruction, Keyword};
use layercake::Error;

fn parse(text: &str) -> Dockerfile {
    Dockerfile::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// The error's line, column and reason.
fn error(text: &str) -> (usize, usize, String) {
    match Dockerfile::parse(text) {
        Err(Error::Dockerfile {
            line,
            column,
            reason,
        }) => (line, column, reason),
        other => panic!("{text:?}: expected a Dockerfile error, got {other:?}"),
    }
}

/// The instruction after `FROM scratch`.
fn second(text: &str) -> Instruction {
    let dockerfile = parse(&format!("FROM scratch\n{text}"));
    dockerfile.instructions()[1].clone()
}

fn text(s: &str) -> Args {
    Args::Text(s.into())
}

fn list(words: &[&str]) -> Args {
    Args::List(words.iter().map(|w| w.to_string()).collect())
}

fn pairs(pairs: &[(&str, &str)]) -> Args {
    Args::Pairs(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

// Parser directives.

#[test]
fn escape_backtick_on_a_windows_dockerfile() {
    let windows = "# escape=`\n\nFROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\\\n";
    let dockerfile = parse(windows);
    assert_eq!(dockerfile.escape(), '`');
    let [_, copy, run] = dockerfile.instructions() else {
        panic!("{dockerfile:?}")
    };
    assert_eq!(copy.args(), &list(&["testfile.txt", "c:\\"]));
    assert_eq!(run.args(), &text("dir c:\\"));
}

#[test]
fn without_the_directive_a_windows_path_continues_the_line() {
    // The reference's example of what goes wrong: `\` at the end joins the lines.
    let dockerfile = parse("FROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\n");
    let copy = &dockerfile.instructions()[1];
    assert_eq!(dockerfile.instructions().len(), 2);
    assert_eq!(copy.args(), &list(&["testfile.txt", "c:RUN", "dir", "c:"]));
}

#[test]
fn backtick_continues_a_line() {
    let dockerfile = parse("# escape=`\nFROM scratch\nRUN echo a `\n  b\n");
    assert_eq!(dockerfile.instructions()[1].args(), &text("echo a   b"));
}

#[test]
fn directive_after_a_comment_is_a_comment() {
    let dockerfile = parse("# About my dockerfile\n# escape=`\nFROM scratch\nRUN a \\\n b\n");
    assert!(dockerfile.directives().is_empty());
    assert_eq!(dockerfile.escape(), '\\');
    assert_eq!(dockerfile.instructions()[1].args(), &text("a  b"));
}

#[test]
fn directive_after_an_instruction_or_blank_line_is_a_comment() {
    assert!(parse("FROM scratch\n# escape=`\n").directives().is_empty());
    assert!(parse("\n# escape=`\nFROM scratch\n")
        .directives()
        .is_empty());
}

#[test]
fn unknown_directive_is_a_comment_and_ends_directives() {
    let dockerfile = parse("# unknowndirective=value\n# escape=`\nFROM scratch\n");
    assert!(dockerfile.directives().is_empty());
    assert_eq!(dockerfile.escape(), '\\');
}

#[test]
fn directive_twice_is_an_error() {
    let (line, column, reason) = error("# escape=\\\n# escape=`\nFROM scratch\n");
    assert_eq!((line, column), (2, 1));
    assert_eq!(reason, "only one escape parser directive can be used");
    let (line, _, reason) = error("# syntax=a\n# Syntax=b\nFROM scratch\n");
    assert_eq!(
        (line, reason.as_str()),
        (2, "only one syntax parser directive can be used")
    );
}

#[test]
fn directives_are_case_insensitive_with_whitespace_allowed() {
    for top in [
        "#directive=value",
        "# directive =value",
        "#\tdirective= value",
    ] {
        // Not a known directive: a comment.
        assert!(parse(&format!("{top}\nFROM scratch\n"))
            .directives()
            .is_empty());
    }
    for top in ["#escape=`", "# ESCAPE =`", "#\tEscape= ` ", "  # escape=`"] {
        let dockerfile = parse(&format!("{top}\nFROM scratch\n"));
        assert_eq!(dockerfile.escape(), '`', "{top}");
        assert_eq!(dockerfile.directives()[0].name(), "escape");
        assert_eq!(dockerfile.directives()[0].value(), "`");
    }
}

#[test]
fn syntax_and_check_directives_are_kept() {
    let dockerfile = parse(
        "# syntax=docker/dockerfile:1\n# check=skip=JSONArgsRecommended;error=true\nFROM scratch\n",
    );
    let names: Vec<(&str, &str)> = dockerfile
        .directives()
        .iter()
        .map(|d| (d.name(), d.value()))
        .collect();
    assert_eq!(
        names,
        [
            ("syntax", "docker/dockerfile:1"),
            ("check", "skip=JSONArgsRecommended;error=true")
        ]
    );
}

#[test]
fn escape_other_than_backslash_or_backtick_is_an_error() {
    let (line, _, reason) = error("# escape=x\nFROM scratch\n");
    assert_eq!(line, 1);
    assert!(reason.starts_with("invalid escape token 'x'"), "{reason}");
}

#[test]
fn directives_do_not_continue() {
    // A directive line ending in `\` is not continued: the next line is an instruction.
    let dockerfile = parse("# syntax=a \\\nFROM scratch\n");
    assert_eq!(dockerfile.directives()[0].value(), "a \\");
    assert_eq!(dockerfile.instructions().len(), 1);
}

// Text: BOM, comments, continuations.

#[test]
fn byte_order_mark_is_dropped() {
    let dockerfile = parse("\u{feff}# escape=`\nFROM scratch\n");
    assert_eq!(dockerfile.escape(), '`');
    let dockerfile = parse("\u{feff}FROM scratch\n");
    assert_eq!(dockerfile.instructions()[0].keyword(), Keyword::From);
}

#[test]
fn comments_are_removed_and_hash_in_arguments_kept() {
    let dockerfile =
        parse("# comment\n  # indented comment\nFROM scratch\nRUN echo hello # world\n");
    assert_eq!(dockerfile.instructions().len(), 2);
    assert_eq!(
        dockerfile.instructions()[1].args(),
        &text("echo hello # world")
    );
}

#[test]
fn comments_inside_continuations_are_removed() {
    // The reference's example.
    let run = second("RUN echo hello \\\n# comment\nworld\n");
    assert_eq!(run.args(), &text("echo hello world"));
    let run = second("RUN apt-get update && \\\n    # a note\n    apt-get install x\n");
    assert_eq!(run.args(), &text("apt-get update &&     apt-get install x"));
}

#[test]
fn continuation_allows_trailing_whitespace() {
    let run = second("RUN a \\ \t\n  b\n");
    assert_eq!(run.args(), &text("a   b"));
}

#[test]
fn escaped_escape_at_the_end_does_not_continue() {
    let dockerfile = parse("FROM scratch\nRUN echo a\\\\\nRUN b\n");
    assert_eq!(dockerfile.instructions().len(), 3);
    assert_eq!(dockerfile.instructions()[1].args(), &text("echo a\\\\"));
}

#[test]
fn empty_continuation_lines_are_skipped() {
    let run = second("RUN a \\\n\n   \n  b\n");
    assert_eq!(run.args(), &text("a   b"));
    assert_eq!((run.start_line(), run.end_line()), (2, 5));
}

#[test]
fn indentation_of_continued_lines_is_kept() {
    let run = second("RUN set -e; \\\n    make \\\n\tinstall\n");
    assert_eq!(run.args(), &text("set -e;     make \tinstall"));
    assert_eq!(run.original(), "RUN set -e;     make \tinstall");
}

#[test]
fn continuation_on_the_last_line_ends_the_instruction() {
    let run = second("RUN a \\");
    assert_eq!(run.args(), &text("a"));
}

#[test]
fn crlf_line_endings() {
    let dockerfile = parse("FROM scratch\r\nRUN a \\\r\n b\r\nCMD [\"c\"]\r\n");
    assert_eq!(dockerfile.instructions()[1].args(), &text("a  b"));
    assert_eq!(dockerfile.instructions()[2].args(), &list(&["c"]));
}

// Instructions.

#[test]
fn instruction_names_are_case_insensitive() {
    let dockerfile = parse("from scratch\nRun a\ncoPY a b\n");
    let keywords: Vec<Keyword> = dockerfile
        .instructions()
        .iter()
        .map(|i| i.keyword())
        .collect();
    assert_eq!(keywords, [Keyword::From, Keyword::Run, Keyword::Copy]);
}

#[test]
fn unknown_instruction_names_line_and_column() {
    let (line, column, reason) = error("FROM scratch\n\n  FOO bar\n");
    assert_eq!((line, column), (3, 3));
    assert_eq!(reason, "unknown instruction: FOO");
    let err = Dockerfile::parse("FROM scratch\nRUNN x\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "dockerfile line 2, column 1: unknown instruction: RUNN"
    );
}

#[test]
fn unknown_instruction_inside_a_continuation() {
    let (line, column, _) = error("FROM scratch\nRUN a \\\n  b\n  BAD x \\\n  y\n");
    assert_eq!((line, column), (4, 3));
}

#[test]
fn error_messages_escape_the_input() {
    let err = Dockerfile::parse("FROM scratch\n\u{1b}[31m x\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "dockerfile line 2, column 1: unknown instruction: \\x1b[31m"
    );
}

#[test]
fn instruction_before_from_is_an_error_but_arg_is_not() {
    let (line, _, reason) = error("# c\nRUN true\nFROM scratch\n");
    assert_eq!(line, 2);
    assert!(reason.contains("before the first FROM"), "{reason}");
    let dockerfile = parse("ARG V=1\nARG W\nFROM busybox:$V\n");
    assert_eq!(dockerfile.instructions().len(), 3);
}

#[test]
fn file_with_no_instructions_is_an_error() {
    assert_eq!(error("").2, "file with no instructions");
    assert_eq!(
        error("# syntax=x\n\n# only comments\n").2,
        "file with no instructions"
    );
}

// Exec and shell form.

#[test]
fn exec_form_is_a_json_array_of_strings() {
    let cmd = second("CMD [\"echo\", \"hi\"]\n");
    assert_eq!(
        (cmd.args(), cmd.form()),
        (&list(&["echo", "hi"]), Form::Exec)
    );
    let cmd = second("CMD [ ]\n");
    assert_eq!((cmd.args(), cmd.form()), (&list(&[]), Form::Exec));
    assert_eq!(
        error("FROM scratch\nRUN []\n").2,
        "RUN requires at least one argument"
    );
}

#[test]
fn invalid_json_is_shell_form() {
    for (line, args) in [
        ("CMD [\"a\"", "[\"a\""),
        ("CMD ['a']", "['a']"),
        ("ENTRYPOINT [\"a\"] b", "[\"a\"] b"),
        ("RUN echo [\"a\"]", "echo [\"a\"]"),
    ] {
        let instruction = second(line);
        assert_eq!(instruction.form(), Form::Shell, "{line}");
        assert_eq!(instruction.args(), &text(args), "{line}");
    }
}

#[test]
fn json_escapes_are_decoded() {
    let cmd = second(r#"CMD ["echo", "a\"b", "\u00e9\t", "c:\\d"]"#);
    assert_eq!(cmd.args(), &list(&["echo", "a\"b", "\u{e9}\t", "c:\\d"]));
}

#[test]
fn json_array_with_a_non_string_is_an_error() {
    let (line, column, reason) = error("FROM scratch\nCMD [\"a\", 1]\n");
    assert_eq!((line, column), (2, 5));
    assert!(reason.contains("strings only"), "{reason}");
}

#[test]
fn copy_add_and_volume_accept_json() {
    let copy = second("COPY [\"my file\", \"/dst dir/\"]\n");
    assert_eq!(
        (copy.args(), copy.form()),
        (&list(&["my file", "/dst dir/"]), Form::Exec)
    );
    let volume = second("VOLUME [\"/data\"]\n");
    assert_eq!(volume.args(), &list(&["/data"]));
    let volume = second("VOLUME /var/log /var/db\n");
    assert_eq!(
        (volume.args(), volume.form()),
        (&list(&["/var/log", "/var/db"]), Form::Shell)
    );
}

#[test]
fn shell_must_be_json() {
    let shell = second("SHELL [\"powershell\", \"-command\"]\n");
    assert_eq!(shell.args(), &list(&["powershell", "-command"]));
    let (_, _, reason) = error("FROM scratch\nSHELL /bin/bash -c\n");
    assert_eq!(reason, "SHELL requires the arguments to be in JSON form");
    assert_eq!(
        error("FROM scratch\nSHELL []\n").2,
        "SHELL requires at least one argument"
    );
}

#[test]
fn cmd_and_entrypoint_may_be_empty_but_run_may_not() {
    assert_eq!(second("CMD []\n").args(), &list(&[]));
    assert_eq!(second("ENTRYPOINT\n").args(), &list(&[]));
    assert_eq!(
        error("FROM scratch\nRUN\n").2,
        "RUN requires at least one argument"
    );
}

// ENV, LABEL, ARG.

#[test]
fn env_key_value_pairs_keep_quotes_and_escapes() {
    let env = second("ENV MY_NAME=\"John Doe\" MY_DOG=Rex\\ The\\ Dog MY_CAT=fluffy\n");
    assert_eq!(
        env.args(),
        &pairs(&[
            ("MY_NAME", "\"John Doe\""),
            ("MY_DOG", "Rex\\ The\\ Dog"),
            ("MY_CAT", "fluffy")
        ])
    );
    let env = second("ENV A='single $x' B=\"a \\\"q\\\"\" C=\n");
    assert_eq!(
        env.args(),
        &pairs(&[("A", "'single $x'"), ("B", "\"a \\\"q\\\"\""), ("C", "")])
    );
}

#[test]
fn env_legacy_form_takes_the_rest_of_the_line() {
    let env = second("ENV MY_VAR my-value with  spaces\n");
    assert_eq!(env.args(), &pairs(&[("MY_VAR", "my-value with  spaces")]));
    assert_eq!(
        error("FROM scratch\nENV ONLY\n").2,
        "ENV must have two arguments"
    );
}

#[test]
fn env_pairs_across_continuations() {
    let env = second("ENV A=1 \\\n    B=2\n");
    assert_eq!(env.args(), &pairs(&[("A", "1"), ("B", "2")]));
}

#[test]
fn env_errors() {
    let (_, _, reason) = error("FROM scratch\nENV A=1 B\n");
    assert!(reason.contains("can't find = in \"B\""), "{reason}");
    assert_eq!(
        error("FROM scratch\nENV =x\n").2,
        "ENV names can not be blank"
    );
    assert_eq!(
        error("FROM scratch\nENV\n").2,
        "ENV requires at least one argument"
    );
}

#[test]
fn label_several_pairs() {
    let label = second(
        "LABEL \"com.example.vendor\"=\"ACME Incorporated\" version=1.0 description=\"This text \\\nillustrates\"\n",
    );
    assert_eq!(
        label.args(),
        &pairs(&[
            ("\"com.example.vendor\"", "\"ACME Incorporated\""),
            ("version", "1.0"),
            ("description", "\"This text illustrates\"")
        ])
    );
    assert_eq!(label.args().to_strings()[1], "version=1.0");
    assert_eq!(
        error("FROM scratch\nLABEL\n").2,
        "LABEL requires at least one argument"
    );
}

#[test]
fn arg_several_names_with_and_without_defaults() {
    let dockerfile = parse("ARG A B=2 C=\"x y\"\nFROM scratch\n");
    assert_eq!(
        dockerfile.instructions()[0].args(),
        &list(&["A", "B=2", "C=\"x y\""])
    );
    assert_eq!(
        error("ARG\nFROM scratch\n").2,
        "ARG requires at least one argument"
    );
}

// ONBUILD.

#[test]
fn onbuild_holds_one_instruction() {
    let onbuild = second("ONBUILD ADD . /app/src\n");
    let Args::Trigger(trigger) = onbuild.args() else {
        panic!("{onbuild:?}")
    };
    assert_eq!(trigger.keyword(), Keyword::Add);
    assert_eq!(trigger.args(), &list(&[".", "/app/src"]));
    let onbuild = second("onbuild run --mount=type=cache,target=/c [\"make\"]\n");
    let Args::Trigger(trigger) = onbuild.args() else {
        panic!("{onbuild:?}")
    };
    assert_eq!(trigger.flag("mount"), Some("type=cache,target=/c"));
    assert_eq!(trigger.form(), Form::Exec);
}

#[test]
fn onbuild_errors() {
    let reason = error("FROM scratch\nONBUILD ONBUILD RUN x\n").2;
    assert!(reason.contains("ONBUILD ONBUILD"), "{reason}");
    for trigger in ["FROM", "maintainer"] {
        let reason = error(&format!("FROM scratch\nONBUILD {trigger} x\n")).2;
        assert_eq!(
            reason,
            format!(
                "{} isn't allowed as an ONBUILD trigger",
                trigger.to_uppercase()
            )
        );
    }
    assert_eq!(
        error("FROM scratch\nONBUILD\n").2,
        "ONBUILD requires at least one argument"
    );
    let (line, column, reason) = error("FROM scratch\nONBUILD   BOGUS x\n");
    assert_eq!(
        (line, column, reason.as_str()),
        (2, 11, "unknown instruction: BOGUS")
    );
    let (_, column, reason) = error("FROM scratch\nONBUILD COPY --nope a b\n");
    assert_eq!((column, reason.as_str()), (14, "unknown flag: nope"));
}

#[test]
fn onbuild_trigger_heredoc() {
    let onbuild = second("ONBUILD RUN <<EOF\necho hi\nEOF\n");
    let Args::Trigger(trigger) = onbuild.args() else {
        panic!("{onbuild:?}")
    };
    assert_eq!(trigger.heredocs()[0].content(), "echo hi\n");
    assert_eq!(onbuild.end_line(), 4);
}

// Heredocs.

#[test]
fn heredoc_in_run() {
    let run = second("RUN <<EOF\napt-get update\napt-get install -y curl\nEOF\nCMD x\n");
    assert_eq!(run.args(), &text("<<EOF"));
    let heredoc = &run.heredocs()[0];
    assert_eq!(heredoc.name(), "EOF");
    assert_eq!(
        heredoc.content(),
        "apt-get update\napt-get install -y curl\n"
    );
    assert!(heredoc.expands() && !heredoc.is_chomped());
    assert_eq!((run.start_line(), run.end_line()), (2, 5));
}

#[test]
fn heredoc_with_a_command() {
    let run = second("RUN python3 <<EOF\nprint(\"hi\")\nEOF\n");
    assert_eq!(run.args(), &text("python3 <<EOF"));
    assert_eq!(run.heredocs()[0].content(), "print(\"hi\")\n");
}

#[test]
fn heredoc_quoted_delimiters_do_not_expand() {
    for delimiter in ["\"EOF\"", "'EOF'", "E\"O\"F"] {
        let run = second(&format!("RUN <<{delimiter}\necho $HOME\nEOF\n"));
        let heredoc = &run.heredocs()[0];
        assert_eq!(heredoc.name(), "EOF", "{delimiter}");
        assert!(!heredoc.expands(), "{delimiter}");
        assert_eq!(heredoc.content(), "echo $HOME\n");
    }
}

#[test]
fn heredoc_dash_strips_leading_tabs() {
    let run = second("RUN <<-EOF\n\techo a\n\t\t  b\n\tEOF\n");
    let heredoc = &run.heredocs()[0];
    assert!(heredoc.is_chomped());
    assert_eq!(heredoc.content(), "echo a\n  b\n");
    // Without `-`, a tab-indented delimiter does not end the heredoc.
    let (_, _, reason) = error("FROM scratch\nRUN <<EOF\n\techo a\n\tEOF\n");
    assert_eq!(reason, "unterminated heredoc EOF");
}

#[test]
fn several_heredocs_on_one_line() {
    let copy = second("COPY <<FILE1 <<FILE2 /dest/\ncontent 1\nFILE1\ncontent 2\nFILE2\n");
    assert_eq!(copy.args(), &list(&["<<FILE1", "<<FILE2", "/dest/"]));
    let contents: Vec<(&str, &str)> = copy
        .heredocs()
        .iter()
        .map(|h| (h.name(), h.content()))
        .collect();
    assert_eq!(
        contents,
        [("FILE1", "content 1\n"), ("FILE2", "content 2\n")]
    );
    let run = second("RUN <<A cat /dev/stdin - 3<<B\na\nA\nb\nB\n");
    assert_eq!(run.heredocs().len(), 2);
    assert_eq!(run.heredocs()[1].fd(), Some(3));
}

#[test]
fn heredoc_content_up_to_the_delimiter_line_only() {
    // `EOF` inside a line, or with spaces around it, is content.
    let add = second("ADD <<EOF /a\nEOF is not here\n EOF\nEOF\n");
    assert_eq!(add.heredocs()[0].content(), "EOF is not here\n EOF\n");
    // The last line need not end in a newline.
    let run = second("RUN <<EOF\nx\nEOF");
    assert_eq!(run.heredocs()[0].content(), "x\n");
}

#[test]
fn heredocs_only_in_run_copy_add_shell_form() {
    let cmd = second("CMD <<EOF\nRUN x\n");
    assert!(cmd.heredocs().is_empty());
    let run = second("RUN [\"cat\", \"<<EOF\"]\nRUN x\n");
    assert!(run.heredocs().is_empty());
    let run = second("RUN echo \"<<EOF\" a<<EOF\nRUN x\n");
    assert!(run.heredocs().is_empty());
}

#[test]
fn heredoc_errors() {
    let (line, column, reason) = error("FROM scratch\nRUN cat <<EOF\nno end\n");
    assert_eq!(
        (line, column, reason.as_str()),
        (2, 9, "unterminated heredoc EOF")
    );
    let (_, _, reason) = error("FROM scratch\nCOPY a <<EOF\nx\nEOF\n");
    assert_eq!(reason, "COPY cannot accept a heredoc as a destination");
}

// Flags.

#[test]
fn flags_before_the_arguments() {
    let copy = second(
        "COPY --from=build --chown=me:grp --chmod=0644 --link --parents --exclude=*.md --exclude=x a b /d/\n",
    );
    let flags: Vec<String> = copy.flags().iter().map(|f| f.to_string()).collect();
    assert_eq!(
        flags,
        [
            "--from=build",
            "--chown=me:grp",
            "--chmod=0644",
            "--link",
            "--parents",
            "--exclude=*.md",
            "--exclude=x"
        ]
    );
    assert_eq!(copy.args(), &list(&["a", "b", "/d/"]));
    assert_eq!(copy.flag("link"), Some("true"));
    let run = second("RUN --mount=type=cache,target=/a --mount=type=tmpfs,target=/b --network=none --security=insecure make\n");
    assert_eq!(run.flags().len(), 4);
    assert_eq!(run.args(), &text("make"));
    let add = second("ADD --checksum=sha256:abc --keep-git-dir=true --link=false a /b\n");
    assert_eq!(add.flags().len(), 3);
}

#[test]
fn flag_values_lose_their_quotes() {
    let copy = second("COPY --chown=\"a b\" --from='x' a /b\n");
    assert_eq!(copy.flag("chown"), Some("a b"));
    assert_eq!(copy.flag("from"), Some("x"));
}

#[test]
fn flags_end_at_the_first_other_word_or_double_dash() {
    let run = second("RUN echo --mount=x\n");
    assert!(run.flags().is_empty());
    assert_eq!(run.args(), &text("echo --mount=x"));
    let run = second("RUN --network=host -- --version\n");
    assert_eq!(run.flags().len(), 1);
    assert_eq!(run.args(), &text("--version"));
}

#[test]
fn unknown_flag_is_an_error() {
    let (line, column, reason) = error("FROM scratch\nCOPY --frm=x a b\n");
    assert_eq!((line, column, reason.as_str()), (2, 6, "unknown flag: frm"));
    assert_eq!(error("FROM scratch\nENV --x=1 A=b\n").2, "unknown flag: x");
    assert_eq!(
        error("FROM scratch\nRUN --from=x y\n").2,
        "unknown flag: from"
    );
    assert_eq!(
        error("FROM scratch\nADD --from=x y z\n").2,
        "unknown flag: from"
    );
}

#[test]
fn flag_values_are_checked() {
    assert_eq!(
        error("FROM scratch\nCOPY --from a b\n").2,
        "missing a value on flag: from"
    );
    assert_eq!(
        error("FROM scratch\nCOPY --link=yes a b\n").2,
        "expecting boolean value for flag link, not: yes"
    );
    assert_eq!(
        error("FROM scratch\nCOPY --from=a --from=b a b\n").2,
        "duplicate flag specified: from"
    );
}

// HEALTHCHECK, FROM and the instructions of one argument.

#[test]
fn healthcheck_none_and_cmd() {
    let none = second("HEALTHCHECK NONE\n");
    assert_eq!(none.args(), &list(&["NONE"]));
    let cmd = second(
        "HEALTHCHECK --interval=5m --timeout=3s --start-period=1s --start-interval=5s --retries=3 \\\n  CMD curl -f http://localhost/ || exit 1\n",
    );
    assert_eq!(cmd.flags().len(), 5);
    assert_eq!(
        (cmd.args(), cmd.form()),
        (
            &list(&["CMD", "curl -f http://localhost/ || exit 1"]),
            Form::Shell
        )
    );
    let exec = second("HEALTHCHECK CMD [\"curl\", \"-f\", \"http://x/\"]\n");
    assert_eq!(
        (exec.args(), exec.form()),
        (&list(&["CMD", "curl", "-f", "http://x/"]), Form::Exec)
    );
}

#[test]
fn healthcheck_errors() {
    let e = |line: &str| error(&format!("FROM scratch\n{line}\n")).2;
    assert_eq!(
        e("HEALTHCHECK NONE x"),
        "HEALTHCHECK NONE takes no arguments"
    );
    assert_eq!(
        e("HEALTHCHECK CMD"),
        "missing command after HEALTHCHECK CMD"
    );
    assert_eq!(
        e("HEALTHCHECK RUN x"),
        "unknown type \"RUN\" in HEALTHCHECK (try CMD)"
    );
    assert_eq!(
        e("HEALTHCHECK"),
        "HEALTHCHECK requires at least one argument"
    );
    assert!(e("HEALTHCHECK --retries=0 CMD x").contains("--retries"));
    assert!(e("HEALTHCHECK --interval=5 CMD x").contains("--interval"));
    assert_eq!(e("HEALTHCHECK --every=5s CMD x"), "unknown flag: every");
}

#[test]
fn from_with_a_stage_name_and_platform() {
    let dockerfile =
        parse("FROM --platform=$BUILDPLATFORM golang:1.22 AS Build-1\nFROM scratch as final\n");
    let [build, last] = dockerfile.instructions() else {
        panic!()
    };
    assert_eq!(build.flag("platform"), Some("$BUILDPLATFORM"));
    assert_eq!(build.args(), &list(&["golang:1.22", "AS", "Build-1"]));
    assert_eq!(last.args(), &list(&["scratch", "as", "final"]));
}

#[test]
fn from_errors() {
    assert_eq!(
        error("FROM a b\n").2,
        "FROM requires either one or three arguments"
    );
    assert_eq!(
        error("FROM a AS\n").2,
        "FROM requires either one or three arguments"
    );
    assert_eq!(
        error("FROM a FOR b\n").2,
        "FROM requires either one or three arguments"
    );
    let reason = error("FROM a AS 1st\n").2;
    assert!(
        reason.starts_with("invalid name for build stage: \"1st\""),
        "{reason}"
    );
    assert_eq!(
        error("FROM\n").2,
        "FROM requires either one or three arguments"
    );
}

#[test]
fn one_argument_instructions_take_the_rest_of_the_line() {
    assert_eq!(
        second("WORKDIR /path to/dir\n").args(),
        &text("/path to/dir")
    );
    assert_eq!(second("USER app:app\n").args(), &text("app:app"));
    assert_eq!(second("STOPSIGNAL SIGKILL\n").args(), &text("SIGKILL"));
    assert_eq!(
        second("MAINTAINER Jane <j@x>\n").args(),
        &text("Jane <j@x>")
    );
    for keyword in ["WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER"] {
        assert_eq!(
            error(&format!("FROM scratch\n{keyword}\n")).2,
            format!("{keyword} requires exactly one argument")
        );
    }
}

#[test]
fn expose_and_volume_need_arguments() {
    assert_eq!(
        second("EXPOSE 80/tcp 53/udp\n").args(),
        &list(&["80/tcp", "53/udp"])
    );
    assert_eq!(
        error("FROM scratch\nEXPOSE\n").2,
        "EXPOSE requires at least one argument"
    );
    assert_eq!(
        error("FROM scratch\nVOLUME\n").2,
        "VOLUME requires at least one argument"
    );
    assert_eq!(
        error("FROM scratch\nVOLUME [\"\"]\n").2,
        "VOLUME specified can not be an empty string"
    );
}

#[test]
fn copy_needs_a_destination() {
    let reason = error("FROM scratch\nCOPY a\n").2;
    assert!(
        reason.starts_with("COPY requires at least two arguments"),
        "{reason}"
    );
    let reason = error("FROM scratch\nADD [\"a\"]\n").2;
    assert!(
        reason.starts_with("ADD requires at least two arguments"),
        "{reason}"
    );
}

// `--print`, through the library and the command line.

#[test]
fn print_shapes() {
    let dockerfile = parse(
        "FROM scratch\nENV A=1 B=\"x y\"\nCMD [\"a\"]\nCOPY <<EOF /x\nhi\nEOF\nONBUILD RUN --network=none make\n",
    );
    let printed = dockerfile.print();
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(
        lines,
        [
            r#"{"instruction":"FROM","flags":[],"args":["scratch"]}"#,
            r#"{"instruction":"ENV","flags":[],"args":["A=1","B=\"x y\""]}"#,
            r#"{"instruction":"CMD","flags":[],"args":["a"],"json":true}"#,
            r#"{"instruction":"COPY","flags":[],"args":["<<EOF","/x"],"heredocs":[{"name":"EOF","content":"hi\n","expand":true}]}"#,
            r#"{"instruction":"ONBUILD","flags":[],"args":[{"instruction":"RUN","flags":["--network=none"],"args":["make"]}]}"#,
        ]
    );
    for line in lines {
        serde_json::from_str::<serde_json::Value>(line).expect("each line is JSON");
    }
}

#[cfg(feature = "cli")]
mod cli {
    use std::process::{Command, Output};

    fn run(args: &[&str], dockerfile: &str) -> Output {
        let dir = std::env::temp_dir().join(format!(
            "layercake-dockerfile-parse-{}-{}",
            std::process::id(),
            args.len() + dockerfile.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("Dockerfile");
        std::fs::write(&file, dockerfile).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_layercake"))
            .args(args)
            .arg("-f")
            .arg(&file)
            .env("LAYERCAKE_ROOT", "/nonexistent/layercake-test-root")
            .output()
            .expect("run layercake");
        std::fs::remove_dir_all(&dir).unwrap();
        out
    }

    #[test]
    fn print_writes_one_json_object_a_line() {
        let out = run(
            &["build", "--print"],
            "FROM busybox\nCOPY --chown=me foo /tmp/\nLABEL a=b c=\"d e\"\nRUN <<'EOF'\necho $x\nEOF\nENTRYPOINT [\"sh\"]\nONBUILD COPY a /b\n",
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines,
            [
                r#"{"instruction":"FROM","flags":[],"args":["busybox"]}"#,
                r#"{"instruction":"COPY","flags":["--chown=me"],"args":["foo","/tmp/"]}"#,
                r#"{"instruction":"LABEL","flags":[],"args":["a=b","c=\"d e\""]}"#,
                r#"{"instruction":"RUN","flags":[],"args":["<<'EOF'"],"heredocs":[{"name":"EOF","content":"echo $x\n","expand":false}]}"#,
                r#"{"instruction":"ENTRYPOINT","flags":[],"args":["sh"],"json":true}"#,
                r#"{"instruction":"ONBUILD","flags":[],"args":[{"instruction":"COPY","flags":[],"args":["a","/b"]}]}"#,
            ]
        );
    }

    #[test]
    fn print_reports_parse_errors_with_line_and_column() {
        let out = run(&["build", "--print"], "FROM busybox\n  NOPE x\n");
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(
            stderr,
            "layercake: dockerfile line 2, column 3: unknown instruction: NOPE\n"
        );
    }
}

#[test]
fn parsed_values_are_send_and_sync() {
    fn check<T: Send + Sync + Clone + PartialEq + std::fmt::Debug>() {}
    check::<Dockerfile>();
    check::<Instruction>();
    check::<layercake::build::Directive>();
    check::<layercake::build::Heredoc>();
    check::<layercake::build::Flag>();
    check::<Args>();
    check::<Keyword>();
    check::<Form>();
    // And a parse is deterministic: the same text, the same value.
    let text = "FROM scratch\nRUN <<A\nx\nA\n";
    assert_eq!(parse(text), parse(text));
    assert_eq!(parse(text).to_string(), parse(text).print());
}
