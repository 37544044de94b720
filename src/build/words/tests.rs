//! The word lexer's tables: every operator, quoting and escape rule, and error, as BuildKit
//! behaves (its `envVarTest` and `wordsTest` semantics, in tables of our own).

use super::*;

/// The variables every table runs with.
const ENV: &[(&str, &str)] = &[
    ("PWD", "/home"),
    ("SHELL", "bash"),
    ("KOREAN", "한국어"),
    ("NULL", ""),
    ("FOO", "xxyy"),
    ("FILE", "archive.tar.gz"),
    ("PATHS", "/usr/local/bin:/usr/bin"),
    ("URL", "http://example.com/a/b"),
    ("STAR", "a*b"),
    ("BRACKET", "[x]"),
    ("SPACE", "abc  def"),
    ("LEADING", "  ab c"),
    ("TRAILING", "ab c   "),
];

const ERR: &str = "<error>";

fn word(lexer: Lexer, input: &str) -> String {
    match lexer.process_word(input, ENV) {
        Ok(w) => w,
        Err(_) => ERR.to_string(),
    }
}

fn check_words(lexer: Lexer, cases: &[(&str, &str)]) {
    let mut failures = Vec::new();
    for (input, expected) in cases {
        let got = word(lexer, input);
        if got != *expected {
            failures.push(format!("{input:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// Quote removal and escapes, outside and inside quotes (BuildKit's envVarTest rules).
#[test]
fn quoting_and_escapes() {
    check_words(
        Lexer::default(),
        &[
            ("hello", "hello"),
            ("he'll'o", "hello"),
            ("he'llo", ERR),
            (r"he\'llo", "he'llo"),
            (r"he\\'llo", ERR),
            (r"abc\tdef", "abctdef"),
            (r#""abc\tdef""#, r"abc\tdef"),
            (r#""abc\\tdef""#, r"abc\tdef"),
            (r"'abc\tdef'", r"abc\tdef"),
            (r"hello\", "hello"),
            (r"hello\\", r"hello\"),
            (r#""hello"#, ERR),
            (r#""hello\""#, ERR),
            (r#""hel'lo""#, "hel'lo"),
            ("'hello", ERR),
            (r"'hello\'", r"hello\"),
            (r"'hello\there'", r"hello\there"),
            (r"'hello\\there'", r"hello\\there"),
            (r#""''""#, "''"),
            (r#"'"hello"'"#, r#""hello""#),
            (r#""a\"b""#, r#"a"b"#),
            (r#""a\$b""#, "a$b"),
            (r#""a\b""#, r"a\b"),
            (r#""$SHELL's""#, "bash's"),
            ("'$PWD'", "$PWD"),
            (r"'\$PWD'", r"\$PWD"),
            (r#"'he\$PWD'"#, r"he\$PWD"),
            ("'he${XX}'", "he${XX}"),
            (r#""he'$PWD'""#, "he'/home'"),
            (r"a\ b", "a b"),
            ("  a  b ", "  a  b "),
            ("", ""),
            ("안'녕'하세요", "안녕하세요"),
            ("안'녕하세요", ERR),
            (r"안녕\'하세요", "안녕'하세요"),
            (r"안녕\t하세요", "안녕t하세요"),
            (r#""안녕\t하세요""#, r"안녕\t하세요"),
        ],
    );
}

// `$name` and `${name}`, and a `$` that is literal.
#[test]
fn plain_substitution() {
    check_words(
        Lexer::default(),
        &[
            ("$.", "$."),
            ("$", "$"),
            ("a$", "a$"),
            ("$ a", "$ a"),
            ("$/x", "$/x"),
            ("$1", ""),
            ("he$1x", "hex"),
            ("he$12x", "hex"),
            ("he$.x", "he$.x"),
            ("he$pwd.", "he."),
            ("he$PWD", "he/home"),
            ("$PWD$SHELL", "/homebash"),
            ("$PWD-x", "/home-x"),
            ("$SHELL_X", ""),
            (r"he\$PWD", "he$PWD"),
            (r"he\\$PWD", r"he\/home"),
            (r#""he\$PWD""#, "he$PWD"),
            (r#""he\\$PWD""#, r"he\/home"),
            (r"\${}", "${}"),
            (r"\${}aaa", "${}aaa"),
            (r"he\${}xx", "he${}xx"),
            ("${}", ERR),
            ("${}aaa", ERR),
            ("he${}xx", ERR),
            ("he${hi}xx", "hexx"),
            ("he${PWD}", "he/home"),
            ("${PWD}x", "/homex"),
            (r#""he${PWD}""#, "he/home"),
            ("he${.}", ERR),
            ("he${PWD", ERR),
            ("${", ERR),
            ("${{aaa}", ERR),
            ("${aaa}}", "}"),
            ("${aaa", ERR),
            ("$KOREAN", "한국어"),
            ("안녕$KOREAN", "안녕한국어"),
            ("안녕${KOREAN}!", "안녕한국어!"),
            // Special parameters are names that are never set.
            ("a$$b", "ab"),
            ("a$?b", "ab"),
            ("a$@b", "ab"),
            ("${#}", ""),
        ],
    );
}

// `:-`, `-`, `:+`, `+`, `:?`, `?`, with nested words.
#[test]
fn default_alternative_and_required() {
    check_words(
        Lexer::default(),
        &[
            ("he${XXX:-000}xx", "he000xx"),
            ("he${PWD:-000}xx", "he/homexx"),
            ("he${XXX:-$PWD}xx", "he/homexx"),
            ("he${XXX:-${PWD:-yyy}}xx", "he/homexx"),
            ("he${XXX:-${YYY:-yyy}}xx", "heyyyxx"),
            ("he${XXX:YYY}", ERR),
            ("he${XXX:+${PWD}}xx", "hexx"),
            ("he${PWD:+${XXX}}xx", "hexx"),
            ("he${PWD:+${SHELL}}xx", "hebashxx"),
            ("he${XXX:+000}xx", "hexx"),
            ("he${PWD:+000}xx", "he000xx"),
            ("he${PWD:=000}xx", ERR),
            ("he${PWD=000}xx", ERR),
            ("he${PWD:+${PWD}:}xx", "he/home:xx"),
            (r"he${XXX:-\$PWD:}xx", "he$PWD:xx"),
            (r"he${XXX:-\${PWD}z}xx", "he${PWDz}xx"),
            ("${aaa:-bbb}}", "bbb}"),
            ("${aaa:-bbb", ERR),
            ("${aaa:-bbb}", "bbb"),
            ("${aaa:-${bbb:-ccc}}", "ccc"),
            ("${aaa:-bbb ${foo}", ERR),
            ("${aaa:-bbb {foo}", "bbb {foo"),
            ("${:}", ERR),
            ("${:-bbb}", ERR),
            ("${:+bbb}", ERR),
            ("${NULL-x}", ""),
            ("${NULL:-x}", "x"),
            ("${NULL+x}", "x"),
            ("${NULL:+x}", ""),
            ("${XXX-x}", "x"),
            ("${XXX+x}", ""),
            ("${XXX:-}", ""),
            ("${PWD:-}", "/home"),
            (r#"${XXX:-"a  b"}"#, "a  b"),
            ("${XXX:-'$PWD'}", "$PWD"),
            (r#"${XXX:-"}"}"#, "}"),
            (r"${XXX:-a\}b}", "a}b"),
            ("${PWD?nope}", "/home"),
            ("${NULL?nope}", ""),
            ("${XXX?nope}", ERR),
            ("${PWD:?nope}", "/home"),
            ("${NULL:?nope}", ERR),
            ("${XXX:?}", ERR),
            ("안녕${XXX:-${YYY:-yyy}}xx", "안녕yyyxx"),
        ],
    );
}

// `#`, `##`, `%`, `%%` with shell patterns.
#[test]
fn prefix_and_suffix_removal() {
    check_words(
        Lexer::default(),
        &[
            ("${FOO#x}", "xyy"),
            ("${FOO##x}", "xyy"),
            ("${FOO#*x}", "xyy"),
            ("${FOO##*x}", "yy"),
            ("${FOO#*x*y}", "y"),
            ("${FOO##*x*y}", ""),
            ("${FOO#*}", "xxyy"),
            ("${FOO##*}", ""),
            ("${FOO#}", "xxyy"),
            ("${FOO##}", "xxyy"),
            ("${FOO#z}", "xxyy"),
            ("${FOO#?}", "xyy"),
            ("${FOO#??}", "yy"),
            ("${FOO%y}", "xxy"),
            ("${FOO%y*}", "xxy"),
            ("${FOO%%y*}", "xx"),
            ("${FOO%*}", "xxyy"),
            ("${FOO%%*}", ""),
            ("${FOO%}", "xxyy"),
            ("${FOO%%$NULL}", "xxyy"),
            ("${FOO#$NULL}", "xxyy"),
            ("${FILE%.*}", "archive.tar"),
            ("${FILE%%.*}", "archive"),
            ("${FILE#*.}", "tar.gz"),
            ("${FILE##*.}", "gz"),
            ("${FILE%.t?r.gz}", "archive"),
            ("${FILE#[a-c]}", "rchive.tar.gz"),
            ("${FILE#[!a]}", "archive.tar.gz"),
            ("${FILE#[^b]}", "rchive.tar.gz"),
            ("${FILE##[[:alpha:]]*[.]}", "gz"),
            ("${FILE%[[:digit:]]}", "archive.tar.gz"),
            (r"${STAR#a\*}", "b"),
            (r#"${STAR#a"*"}"#, "b"),
            ("${STAR#a'*'}", "b"),
            (r"${STAR%\*b}", "a"),
            ("${STAR#a?}", "b"),
            (r#"${STAR#"a?"}"#, "a*b"),
            ("${PWD#$PWD}", ""),
            (r#"${PWD#"/"}"#, "home"),
            ("${PWD#/}", "home"),
            ("${XXX#x}", ""),
            ("${BRACKET#[}", "x]"),
            ("${BRACKET%]}", "[x"),
            ("${BRACKET#[[]}", "x]"),
            (r"${BRACKET#\[}", "x]"),
            ("${FOO#x", ERR),
            ("${KOREAN#한}", "국어"),
            ("${KOREAN%어}", "한국"),
            ("${KOREAN#?}", "국어"),
        ],
    );
}

// `/` and `//`: leftmost-longest match, replaced once or everywhere.
#[test]
fn pattern_replacement() {
    check_words(
        Lexer::default(),
        &[
            ("${PATHS/:/ }", "/usr/local/bin /usr/bin"),
            (r"${URL/http:\/\//https://}", "https://example.com/a/b"),
            (r"${URL//\//|}", "http:||example.com|a|b"),
            ("${FOO/x/z}", "zxyy"),
            ("${FOO//x/z}", "zzyy"),
            ("${FOO//x*/z}", "z"),
            ("${FOO/?/}", "xyy"),
            ("${FOO/[xy]/Q}", "Qxyy"),
            ("${FOO//[!x]/Q}", "xxQQ"),
            ("${FOO/nope/Q}", "xxyy"),
            ("${FOO/$NULL/ww}", "wwxxyy"),
            ("${FOO//$NULL/-}", "-x-x-y-y-"),
            ("${FOO///}", "xxyy"),
            ("${XXX///}", ""),
            ("${XXX/a/b}", ""),
            ("${FOO/x/$SHELL}", "bashxyy"),
            // The replacement keeps its escape characters, as in BuildKit.
            (r"${PWD//\//\/}", r"\/home"),
            ("${FOO//}", ERR),
            ("${FOO//ww}", ERR),
            ("${FOO/x}", ERR),
            ("${KOREAN/국/-}", "한-어"),
        ],
    );
}

// The `# escape=`` ` `` directive: backslashes are ordinary, backticks escape.
#[test]
fn backtick_escape() {
    check_words(
        Lexer::new('`'),
        &[
            ("a`$b", "a$b"),
            (r"C:\path\$PWD", r"C:\path\/home"),
            ("\"a`\"b\"", "a\"b"),
            (r#""a\b""#, r"a\b"),
            ("\"a``b\"", "a`b"),
            ("a` b", "a b"),
            ("hello`", "hello"),
            ("${STAR#a`*}", "b"),
            ("${XXX:-a`}b}", "a}b"),
            (r"he\'llo", ERR),
        ],
    );
}

// Splitting on whitespace that is not quoted, escaped or in a quoted variable
// (BuildKit's wordsTest rules).
#[test]
fn word_splitting() {
    let lexer = Lexer::default();
    let cases: &[(&str, &[&str])] = &[
        ("hello", &["hello"]),
        ("hello${hi}bye", &["hellobye"]),
        ("hello${SPACE}bye", &["helloabc", "defbye"]),
        (r#"hello"${SPACE}"bye"#, &["helloabc  defbye"]),
        (r#"hello "${SPACE}"bye"#, &["hello", "abc  defbye"]),
        ("hello${LEADING}def", &["hello", "ab", "cdef"]),
        (r#"hello"${LEADING}" def"#, &["hello  ab c", "def"]),
        ("hello${LEADING}", &["hello", "ab", "c"]),
        ("hello${TRAILING}", &["helloab", "c"]),
        ("hello${TRAILING}d", &["helloab", "c", "d"]),
        (r#"hello"${TRAILING}"d"#, &["helloab c   d"]),
        (r#"hel"lo${TRAILING}""#, &["helloab c   "]),
        (r#"hello" there  ""#, &["hello there  "]),
        ("hello there", &["hello", "there"]),
        ("  hello   there  ", &["hello", "there"]),
        ("a\tb\nc", &["a", "b", "c"]),
        (r"hello\ there", &["hello there"]),
        (r#"hello\" there"#, &["hello\"", "there"]),
        (r#"hello"\\there""#, &[r"hello\there"]),
        (r#"hello"\there""#, &[r"hello\there"]),
        (r"hello'\\there'", &[r"hello\\there"]),
        (r"hello'\there'", &[r"hello\there"]),
        ("hello'$there'", &["hello$there"]),
        (r#"a "" b"#, &["a", "b"]),
        (r#""""#, &[]),
        ("'' x", &["x"]),
        ("", &[]),
        ("${XXX:-a b} c", &["a", "b", "c"]),
        (r#""${XXX:-a b}" c"#, &["a b", "c"]),
        ("80/tcp 443", &["80/tcp", "443"]),
        ("A=$PWD B=\"x y\"", &["A=/home", "B=x y"]),
    ];
    let mut failures = Vec::new();
    for (input, expected) in cases {
        match lexer.process_words(input, ENV) {
            Ok(got) if got == *expected => {}
            got => failures.push(format!("{input:?}: expected {expected:?}, got {got:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(lexer.process_words(r#"hello" there"#, ENV).is_err());
}

// Which names a word looked up, set or not.
#[test]
fn matched_and_unmatched() {
    let lexer = Lexer::default();
    let cases: &[(&str, &str, &[&str], &[&str])] = &[
        ("x", "x", &[], &[]),
        ("x ${UNUSED}", "x ", &[], &["UNUSED"]),
        ("x ${PWD}", "x /home", &["PWD"], &[]),
        (
            "${FOO-aaa} ${NULL-bbb} ${BAZ-ccc}",
            "xxyy  ccc",
            &["FOO", "NULL"],
            &["BAZ"],
        ),
        (
            "${FOO:-aaa} ${NULL:-bbb} ${BAZ:-ccc}",
            "xxyy bbb ccc",
            &["FOO", "NULL"],
            &["BAZ"],
        ),
        ("${XXX:-$PWD}", "/home", &["PWD"], &["XXX"]),
        // The default is expanded, and its names count, even when unused.
        ("${PWD:-$XXX}", "/home", &["PWD"], &["XXX"]),
        ("${FOO#$NULL}", "xxyy", &["FOO", "NULL"], &[]),
        (
            "${FOO/$NULL/$SHELL}",
            "bashxxyy",
            &["FOO", "NULL", "SHELL"],
            &[],
        ),
        ("'$PWD'", "$PWD", &[], &[]),
        (r"\$PWD", "$PWD", &[], &[]),
        ("\"$PWD\"", "/home", &["PWD"], &[]),
        ("$PWD$PWD", "/home/home", &["PWD"], &[]),
        ("${ABC:-.}${FOO%x}${ABC:-.}", ".xxyy.", &["FOO"], &["ABC"]),
    ];
    for (input, expected, matched, unmatched) in cases {
        let e = lexer.process_word_with_matches(input, ENV).unwrap();
        assert_eq!(e.word(), *expected, "{input:?}");
        assert_eq!(
            e.matched().iter().collect::<Vec<_>>(),
            *matched,
            "{input:?}"
        );
        assert_eq!(
            e.unmatched().iter().collect::<Vec<_>>(),
            *unmatched,
            "{input:?}"
        );
    }
}

// Each error: its kind and where it starts.
#[test]
fn errors_name_kind_and_position() {
    use WordErrorKind::*;
    let quote = |quote| UnterminatedQuote { quote };
    let modifier = |m: &str| UnsupportedModifier {
        modifier: m.to_string(),
    };
    let required = |name: &str, message: &str| Required {
        name: name.to_string(),
        message: message.to_string(),
    };
    let cases: Vec<(&str, usize, WordErrorKind)> = vec![
        ("ab'cd", 2, quote('\'')),
        ("\"x", 0, quote('"')),
        ("ok \"x\\\"", 3, quote('"')),
        ("x${y", 1, MissingBrace),
        ("${", 0, MissingBrace),
        ("${x:", 0, MissingBrace),
        ("${x#a", 0, MissingBrace),
        ("a ${x:-${y}", 2, MissingBrace),
        ("${x:-${y", 5, MissingBrace),
        ("${x:-'a}", 5, quote('\'')),
        ("${}", 0, BadSubstitution),
        ("a${:-x}", 1, BadSubstitution),
        ("${{x}", 0, BadSubstitution),
        ("${.}", 0, BadSubstitution),
        ("${x:=y}", 0, modifier(":=")),
        ("${x=y}", 0, modifier("=")),
        ("${x:#y}", 0, modifier(":#")),
        ("${x/y}", 0, MissingSlash),
        (
            "${NULL:?}",
            0,
            required("NULL", "is not allowed to be empty"),
        ),
        ("${XXX?}", 0, required("XXX", "is not allowed to be unset")),
        ("${XXX:?}", 0, required("XXX", "is not allowed to be unset")),
        ("x ${XXX:?need $SHELL}", 2, required("XXX", "need bash")),
    ];
    for (input, position, kind) in cases {
        let err = Lexer::default().process_word(input, ENV).unwrap_err();
        assert_eq!((err.position(), err.kind()), (position, &kind), "{input:?}");
    }
}

#[test]
fn error_display() {
    let show = |input: &str| {
        let err = Lexer::default().process_word(input, ENV).unwrap_err();
        (err.kind().to_string(), err.to_string())
    };
    assert_eq!(
        show("x${y"),
        (
            "syntax error: missing '}'".to_string(),
            "syntax error: missing '}' at byte 1".to_string()
        )
    );
    assert_eq!(
        show("'a").0,
        "unexpected end of statement while looking for matching single-quote"
    );
    assert_eq!(
        show("\"a").0,
        "unexpected end of statement while looking for matching double-quote"
    );
    assert_eq!(show("${}").0, "syntax error: bad substitution");
    assert_eq!(show("${a/b}").0, "syntax error: missing '/' in ${}");
    assert_eq!(
        show("${a:=b}").0,
        "unsupported modifier (:=) in substitution"
    );
    assert_eq!(show("${TOKEN:?set it}").0, "TOKEN: set it");
    // Control characters from the Dockerfile are shown escaped.
    assert_eq!(show("${TOKEN:?a\u{1b}[2Jb}").0, "TOKEN: a\\u{1b}[2Jb");
}

#[test]
fn variables_from_maps_slices_and_closures() {
    let lexer = Lexer::default();
    let btree = BTreeMap::from([("A".to_string(), "1".to_string())]);
    let hash = HashMap::from([("A".to_string(), "2".to_string())]);
    let pairs = [("A", "3"), ("A", "4")];
    let closure = |name: &str| (name == "A").then(|| "5".to_string());
    assert_eq!(lexer.process_word("$A$B", &btree).unwrap(), "1");
    assert_eq!(lexer.process_word("$A$B", &hash).unwrap(), "2");
    assert_eq!(lexer.process_word("$A$B", &pairs[..]).unwrap(), "4");
    assert_eq!(lexer.process_word("$A$B", &closure).unwrap(), "5");
    let dynamic: &dyn Variables = &btree;
    assert_eq!(lexer.process_word("${B:-$A}", dynamic).unwrap(), "1");
}

#[test]
fn glob_matches_whole_strings() {
    let cases: &[(&str, &str, bool)] = &[
        ("", "", true),
        ("", "a", false),
        ("*", "", true),
        ("*", "abc", true),
        ("a*c", "abbbc", true),
        ("a*c", "abbb", false),
        ("*a*b*", "xxaxxbxx", true),
        ("*a*b*", "xxbxxaxx", false),
        ("a?c", "abc", true),
        ("a?c", "ac", false),
        ("[a-c]x", "bx", true),
        ("[a-c]x", "dx", false),
        ("[!a-c]x", "dx", true),
        ("[]]", "]", true),
        ("[!]]", "a", true),
        ("[a-]", "-", true),
        (r"\*", "*", true),
        (r"\*", "a", false),
        ("[", "[", true),
        ("[[:upper:]]*", "Abc", true),
        ("[[:upper:]]*", "abc", false),
        ("**", "abc", true),
    ];
    for (pattern, text, expected) in cases {
        let text: Vec<char> = text.chars().collect();
        assert_eq!(
            Glob::new(pattern, '\\').matches(&text),
            *expected,
            "{pattern:?} against {text:?}"
        );
    }
}

// Many stars against a long value that never matches: no backtracking blow-up.
#[test]
fn long_values_against_many_stars() {
    let lexer = Lexer::default();
    let long = "a".repeat(100_000);
    let env = [("V", long.as_str())];
    let pattern = "*a*a*a*a*a*a*b";
    for op in ["#", "##", "%", "%%"] {
        let word = format!("${{V{op}{pattern}}}");
        assert_eq!(
            lexer.process_word(&word, &env[..]).unwrap().len(),
            long.len()
        );
    }
    let short = "a".repeat(1_000);
    let env = [("V", short.as_str())];
    let word = format!("${{V//{pattern}/x}}");
    assert_eq!(lexer.process_word(&word, &env[..]).unwrap(), short);
    assert_eq!(lexer.process_word("${V//a*a/x}", &env[..]).unwrap(), "x");
    assert_eq!(lexer.process_word("${V%%a*a}", &env[..]).unwrap(), "");
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Lexer>();
    check::<Expansion>();
    check::<WordError>();
    check::<WordErrorKind>();
}
