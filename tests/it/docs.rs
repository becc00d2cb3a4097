//! The man pages in man/: every environment variable the code reads is
//! documented in one of them, every option of an applet's --help is on its
//! page, references between our pages resolve, and groff finds nothing to
//! warn about.
//!
//! The variable scan reads the Rust source of src/ and applets/ (test
//! modules left out) with a small lexer, and finds variable names three ways:
//!
//! * calls of the functions that read the environment — `Env::get`,
//!   `get_str`, `is_set`, `std::env::var`, `var_os`, env_logger's
//!   `parse_env` — and of every function or closure that passes one of its
//!   `&str` parameters on to such a call (found by the scan itself, so a new
//!   helper such as config/env.rs's `nonempty(env, "X")` is followed without
//!   being listed here);
//! * `config::ENV_VARS`;
//! * as a net for names that reach a reader through a table or a `match`
//!   (auth's `DISABLE_*` switches): every string literal that looks like a
//!   variable name. Those that are words the code prints or compares, not
//!   variables, are listed in [`NOT_VARIABLES`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const EXE: &str = env!("CARGO_BIN_EXE_indilookup");

/// Functions that read an environment variable named by their argument.
const READERS: &[&str] = &["get", "get_str", "is_set", "var", "var_os", "parse_env"];

/// Upper-case string literals in the code that are not environment
/// variables: flag and permission names printed by inquerytest, SASL
/// mechanism names, words of C-compatible output. Add a word here only if
/// it is never looked up in the environment; the test fails if a listed
/// word is read as a variable.
const NOT_VARIABLES: &[&str] = &[
    // SQL words the binlog follower looks for in DDL statements.
    "ALTER",
    "CREATE",
    "DATABASE",
    "DEFINER",
    "DROP",
    "EXISTS",
    "FULLTEXT",
    "IGNORE",
    "INDEX",
    "NOT",
    "OFFLINE",
    "ONLINE",
    "RENAME",
    "REPLACE",
    "SCHEMA",
    "SPATIAL",
    "TABLE",
    "TABLES",
    "TEMPORARY",
    "TRIGGER",
    "UNIQUE",
    "VIEW",
    // pw_gid flag names and the GID flag lines of inquerytest's LIMIT output.
    "BOUNCE_MAIL",
    "QA_ADMIN",
    "V_USER0",
    "V_USER1",
    "V_USER2",
    "V_USER3",
    "DIALUP",
    "IMAP",
    "POP3",
    "SMTP",
    "WEBMAIL",
    "RELAY",
    // vlimits permission words of inquerytest's LIMIT output.
    "ALLOW_CREATE",
    "ALLOW_MODIFY",
    "ALLOW_DELETE",
    "DENY_CREATE",
    "DENY_MODIFY",
    "DENY_DELETE",
    // SASL mechanism names.
    "LOGIN",
    "PLAIN",
    "XOAUTH2",
];

/// A token of Rust source, as much as the scan needs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// The text between the quotes of a string literal (escapes untouched).
    Str(String),
    Punct(char),
}

/// A token and the line it starts on.
#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

/// Split Rust source into identifiers, string literals and punctuation;
/// comments, numbers, char literals and lifetimes are dropped.
fn lex(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let count_lines = |from: usize, to: usize| b[from..to].iter().filter(|&&c| c == b'\n').count();
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            line += count_lines(start, i);
        } else if let Some((content, end)) = string_literal(b, i) {
            out.push(Token {
                tok: Tok::Str(content),
                line,
            });
            line += count_lines(start, end);
            i = end;
        } else if c == b'\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if b.get(i + 1) == Some(&b'\\') {
                i += 2;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                i += 1;
            } else if b.get(i + 2) == Some(&b'\'') {
                i += 3;
            } else {
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Ident(src[start..i].to_string()),
                line,
            });
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
        } else {
            let ch = src[i..].chars().next().unwrap_or('?');
            out.push(Token {
                tok: Tok::Punct(ch),
                line,
            });
            i += ch.len_utf8();
        }
    }
    out
}

/// A string literal starting at `i` ("..", b"..", r#".."#, br".."): its
/// content and the index after it.
fn string_literal(b: &[u8], i: usize) -> Option<(String, usize)> {
    let mut j = i;
    if b.get(j) == Some(&b'b') {
        j += 1;
    }
    let raw = b.get(j) == Some(&b'r');
    if raw {
        j += 1;
    }
    // An identifier such as `br` or `bar` is not a literal.
    if j > i && (i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) {
        return None;
    }
    let mut hashes = 0;
    if raw {
        while b.get(j) == Some(&b'#') {
            hashes += 1;
            j += 1;
        }
    }
    if b.get(j) != Some(&b'"') {
        return None;
    }
    let open = j + 1;
    let mut k = open;
    loop {
        let c = *b.get(k)?;
        if !raw && c == b'\\' {
            k += 2;
            continue;
        }
        if c == b'"'
            && b[k + 1..]
                .iter()
                .take(hashes)
                .filter(|&&h| h == b'#')
                .count()
                == hashes
        {
            let content = String::from_utf8_lossy(&b[open..k]).into_owned();
            return Some((content, k + 1 + hashes));
        }
        k += 1;
    }
}

/// The tokens without `#[cfg(test)]` items (the test modules, which set
/// made-up variables) and without `env!`/`option_env!` (Cargo's build-time
/// variables, not read at run time).
fn without_tests(tokens: Vec<Token>) -> Vec<Token> {
    let is = |t: &Token, want: &Tok| &t.tok == want;
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let cfg_test = [
            Tok::Punct('#'),
            Tok::Punct('['),
            Tok::Ident("cfg".into()),
            Tok::Punct('('),
            Tok::Ident("test".into()),
            Tok::Punct(')'),
            Tok::Punct(']'),
        ];
        if tokens.len() - i >= cfg_test.len()
            && cfg_test.iter().zip(&tokens[i..]).all(|(w, t)| is(t, w))
        {
            // Skip the item: up to a `;` at depth 0, or through the first
            // braced block.
            i += cfg_test.len();
            let mut depth = 0;
            while i < tokens.len() {
                match tokens[i].tok {
                    Tok::Punct('{') => depth += 1,
                    Tok::Punct('}') => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    Tok::Punct(';') if depth == 0 => {
                        i += 1;
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
            continue;
        }
        if matches!(&tokens[i].tok, Tok::Ident(m) if m == "env" || m == "option_env")
            && tokens.get(i + 1).is_some_and(|t| is(t, &Tok::Punct('!')))
            && tokens.get(i + 2).is_some_and(|t| is(t, &Tok::Punct('(')))
        {
            i = close_paren(&tokens, i + 2) + 1;
            continue;
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    out
}

/// Does this literal look like an environment variable name?
fn looks_like_variable(s: &str) -> bool {
    s.len() >= 3
        && s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
}

/// Index of the `)` that closes the `(` at `open`.
fn close_paren(t: &[Token], open: usize) -> usize {
    let mut depth = 0;
    for (k, tok) in t.iter().enumerate().skip(open) {
        match tok.tok {
            Tok::Punct('(') | Tok::Punct('[') | Tok::Punct('{') => depth += 1,
            Tok::Punct(')') | Tok::Punct(']') | Tok::Punct('}') => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    t.len()
}

/// Calls of a reader: (reader, index of the first token inside the
/// parentheses, index of the closing parenthesis).
fn reader_calls<'a>(
    t: &'a [Token],
    readers: &'a BTreeSet<String>,
) -> impl Iterator<Item = (usize, usize)> + 'a {
    (0..t.len().saturating_sub(1)).filter_map(move |i| match (&t[i].tok, &t[i + 1].tok) {
        (Tok::Ident(name), Tok::Punct('(')) if readers.contains(name) => {
            // Not the definition `fn name(`.
            let defined = i > 0 && matches!(&t[i - 1].tok, Tok::Ident(k) if k == "fn");
            (!defined).then(|| (i + 2, close_paren(t, i + 1)))
        }
        _ => None,
    })
}

/// The functions and closures that hand one of their `&str` parameters to
/// a reader: `fn nonempty(env: &Env, name: &str) { .. env.get_str(name) .. }`,
/// `let secs = |name: &str, ..| { .. number(env, name) .. }`.
fn helpers(t: &[Token], readers: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for i in 0..t.len() {
        // `fn NAME ( params ) ... { body }` or `let NAME = | params | ... { body }`
        let (name, params_start, params_end) = match (&t[i].tok, t.get(i + 1), t.get(i + 2)) {
            (Tok::Ident(k), Some(n), Some(_)) if k == "fn" => {
                let Tok::Ident(name) = &n.tok else { continue };
                // Generic parameters (`fn nonempty<'a>(`) come before the
                // parameter list; `->` inside them does not close them.
                let mut open = i + 2;
                if t[open].tok == Tok::Punct('<') {
                    let mut depth = 0;
                    while open < t.len() {
                        match t[open].tok {
                            Tok::Punct('<') => depth += 1,
                            Tok::Punct('>') if t[open - 1].tok != Tok::Punct('-') => {
                                depth -= 1;
                                if depth == 0 {
                                    open += 1;
                                    break;
                                }
                            }
                            _ => {}
                        }
                        open += 1;
                    }
                }
                if t.get(open).is_none_or(|p| p.tok != Tok::Punct('(')) {
                    continue;
                }
                (name.clone(), open + 1, close_paren(t, open))
            }
            (Tok::Ident(k), Some(n), Some(eq))
                if k == "let"
                    && eq.tok == Tok::Punct('=')
                    && t.get(i + 3).is_some_and(|p| p.tok == Tok::Punct('|')) =>
            {
                let Tok::Ident(name) = &n.tok else { continue };
                let end = (i + 4..t.len())
                    .find(|&k| t[k].tok == Tok::Punct('|'))
                    .unwrap_or(t.len());
                (name.clone(), i + 4, end)
            }
            _ => continue,
        };
        // Parameters typed `&str` (or `&'a str`).
        let params_end = params_end.min(t.len());
        let mut params = BTreeSet::new();
        for k in params_start..params_end.saturating_sub(3) {
            if let (Tok::Ident(p), Tok::Punct(':'), Tok::Punct('&')) =
                (&t[k].tok, &t[k + 1].tok, &t[k + 2].tok)
            {
                let ty = t[k + 3..params_end]
                    .iter()
                    .find(|x| matches!(x.tok, Tok::Ident(_)));
                if ty.is_some_and(|x| x.tok == Tok::Ident("str".into())) {
                    params.insert(p.clone());
                }
            }
        }
        if params.is_empty() {
            continue;
        }
        // The body: the first braced block after the parameters.
        let Some(open) = (params_end..t.len()).find(|&k| t[k].tok == Tok::Punct('{')) else {
            continue;
        };
        let body = &t[open..close_paren(t, open).min(t.len())];
        let passes_on = reader_calls(body, readers).any(|(from, to)| {
            body[from..to]
                .iter()
                .any(|x| matches!(&x.tok, Tok::Ident(p) if params.contains(p)))
        });
        if passes_on {
            found.insert(name);
        }
    }
    found
}

/// Where a name was seen: file and line.
type Seen = BTreeMap<String, Vec<String>>;

struct Scan {
    /// Names passed to a reader.
    read: Seen,
    /// Every literal that looks like a variable name.
    literals: Seen,
    /// The readers, helpers included.
    readers: BTreeSet<String>,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn scan() -> Scan {
    let mut files = Vec::new();
    for dir in ["src", "applets"] {
        rust_files(&Path::new(ROOT).join(dir), &mut files);
    }
    let sources: Vec<(String, Vec<Token>)> = files
        .iter()
        .map(|p| {
            let text = fs::read_to_string(p).unwrap();
            let shown = p.strip_prefix(ROOT).unwrap_or(p).display().to_string();
            (shown, without_tests(lex(&text)))
        })
        .collect();

    let mut readers: BTreeSet<String> = READERS.iter().map(|s| s.to_string()).collect();
    loop {
        let before = readers.len();
        for (_, t) in &sources {
            let more = helpers(t, &readers);
            readers.extend(more);
        }
        if readers.len() == before {
            break;
        }
    }

    let mut read = Seen::new();
    let mut literals = Seen::new();
    for (file, t) in &sources {
        for (from, to) in reader_calls(t, &readers) {
            for x in &t[from..to] {
                if let Tok::Str(s) = &x.tok {
                    if looks_like_variable(s) {
                        read.entry(s.clone())
                            .or_default()
                            .push(format!("{file}:{}", x.line));
                    }
                }
            }
        }
        for x in t {
            if let Tok::Str(s) = &x.tok {
                if looks_like_variable(s) {
                    literals
                        .entry(s.clone())
                        .or_default()
                        .push(format!("{file}:{}", x.line));
                }
            }
        }
    }
    Scan {
        read,
        literals,
        readers,
    }
}

/// man/*.N
fn man_pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = fs::read_dir(Path::new(ROOT).join("man"))
        .expect("man/")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| x.len() == 1 && x.as_bytes()[0].is_ascii_digit())
        })
        .collect();
    pages.sort();
    assert!(!pages.is_empty(), "no man pages in man/");
    pages
}

/// A page's text with roff font and character escapes removed, so that
/// `\fBUSE_BTREE\fR` reads as `USE_BTREE` and `\-\-envdir` as `--envdir`.
fn plain(roff: &str) -> String {
    let mut out = String::with_capacity(roff.len());
    let mut chars = roff.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('f') => {
                // \fB, \fR, \f(CW
                if chars.next() == Some('(') {
                    chars.next();
                    chars.next();
                }
                out.push(' ');
            }
            Some('-') => out.push('-'),
            Some('&') | Some('%') => {}
            Some('(') => {
                chars.next();
                chars.next();
                out.push(' ');
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Every word (letters, digits, `_`) of every man page.
fn documented_words() -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    for page in man_pages() {
        let text = plain(&fs::read_to_string(&page).unwrap());
        words.extend(
            text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| !w.is_empty())
                .map(str::to_string),
        );
    }
    words
}

fn where_seen(seen: &Seen, name: &str) -> String {
    seen.get(name).map(|v| v.join(", ")).unwrap_or_default()
}

#[test]
fn the_scan_finds_the_known_readers_and_variables() {
    let s = scan();
    // Helpers of config/, cache.rs and the inlookup applet, found by the
    // scan rather than listed: if these go missing, the lexer is broken.
    for helper in [
        "nonempty",
        "nonempty_os",
        "env_seconds",
        "env_ident",
        "env_count",
        "domain_list",
        "number",
        "secs",
    ] {
        assert!(
            s.readers.contains(helper),
            "the scan no longer sees {helper} as an environment reader; readers: {:?}",
            s.readers
        );
    }
    for var in [
        "MYSQL_HOST",
        "INFIFODIR",
        "INLOOKUP_CACHE_TTL",
        "INLOOKUP_WORKERS",
        "INLOOKUP_LOG",
        "QUERY_CACHE",
        "TCPREMOTEIP",
        "DEBUG",
    ] {
        assert!(s.read.contains_key(var), "{var} is not found as read");
    }
    // Test modules set made-up variables; they are not scanned.
    assert!(!s.literals.contains_key("NONL"), "test code was scanned");
    // Cargo's build-time variables are not run-time variables.
    assert!(!s.literals.contains_key("CARGO_PKG_VERSION"));
}

#[test]
fn every_environment_variable_the_code_reads_is_in_a_man_page() {
    let s = scan();
    let words = documented_words();
    let mut problems = Vec::new();
    for (name, at) in &s.read {
        if NOT_VARIABLES.contains(&name.as_str()) {
            problems.push(format!(
                "{name} is read from the environment ({}) but listed in NOT_VARIABLES of tests/it/docs.rs",
                at.join(", ")
            ));
        } else if !words.contains(name) {
            problems.push(format!(
                "{name} is read from the environment ({}) but no page in man/ documents it",
                at.join(", ")
            ));
        }
    }
    for name in indilookup::config::ENV_VARS {
        if !words.contains(*name) {
            problems.push(format!(
                "{name} is in config::ENV_VARS but no page in man/ documents it"
            ));
        }
    }
    for name in s.literals.keys() {
        if s.read.contains_key(name)
            || words.contains(name)
            || NOT_VARIABLES.contains(&name.as_str())
        {
            continue;
        }
        problems.push(format!(
            "{name} ({}) looks like an environment variable: document it in a page in man/, \
             or, if the code never reads it from the environment, add it to NOT_VARIABLES \
             in tests/it/docs.rs",
            where_seen(&s.literals, name)
        ));
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// The options an applet's --help shows.
fn help_options(applet: &str) -> BTreeSet<String> {
    let out = Command::new(EXE).args([applet, "--help"]).output().unwrap();
    assert!(out.status.success(), "{applet} --help failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut opts = BTreeSet::new();
    for word in text.split(|c: char| c.is_whitespace() || ",[]()|".contains(c)) {
        let word = word.split('=').next().unwrap_or("");
        let long = word
            .strip_prefix("--")
            .is_some_and(|w| w.len() > 1 && w.bytes().all(|c| c.is_ascii_lowercase() || c == b'-'));
        let short =
            word.len() == 2 && word.starts_with('-') && word.as_bytes()[1].is_ascii_alphabetic();
        if long || short {
            opts.insert(word.to_string());
        }
    }
    opts
}

#[test]
fn every_option_of_an_applets_help_is_on_its_page() {
    for (applet, page, known) in [
        (
            "inlookup",
            "inlookup.8",
            ["-f", "-i", "--envdir", "--workers"],
        ),
        (
            "inquerytest",
            "inquerytest.8",
            ["-q", "-i", "--json", "--flush"],
        ),
    ] {
        let text = plain(&fs::read_to_string(Path::new(ROOT).join("man").join(page)).unwrap());
        let options = help_options(applet);
        for k in known {
            assert!(
                options.contains(k),
                "{applet} --help: {k} not found among {options:?}"
            );
        }
        let missing: Vec<String> = options
            .into_iter()
            .filter(|o| !mentions(&text, o))
            .collect();
        assert!(
            missing.is_empty(),
            "{applet} --help shows {missing:?}, which man/{page} does not mention"
        );
    }
}

/// Does `text` name the option `opt` (`-q`, `--json`), not only a longer
/// one that starts with it?
fn mentions(text: &str, opt: &str) -> bool {
    text.match_indices(opt).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = &text[i + opt.len()..];
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
            && !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// Every option an applet's clap command knows, long and short, clap's own
/// --help and --version included.
fn clap_options(mut cmd: clap::Command) -> Vec<String> {
    cmd.build();
    let mut options = Vec::new();
    for arg in cmd.get_arguments() {
        options.extend(arg.get_long().map(|l| format!("--{l}")));
        options.extend(arg.get_short().map(|s| format!("-{s}")));
    }
    options
}

#[test]
fn every_option_clap_knows_is_on_its_page_and_in_its_help() {
    use clap::CommandFactory;
    use indilookup::cli;
    let multicall_help = cli::multicall::usage(&[]);
    let cases = [
        (
            cli::inlookup::Options::command(),
            "inlookup.8",
            Some(cli::inlookup::USAGE),
        ),
        (
            cli::inquerytest::Options::command(),
            "inquerytest.8",
            Some(cli::inquerytest::HELP),
        ),
        (
            cli::multicall::Options::command(),
            "indilookup.1",
            Some(multicall_help.as_str()),
        ),
        // Their short help is about the module, not its one option.
        (cli::vchkpass::Options::command(), "vchkpass.8", None),
        (cli::authindi::Options::command(), "authindi.8", None),
    ];
    for (cmd, page, help) in cases {
        let name = cmd.get_name().to_string();
        let text = plain(&fs::read_to_string(Path::new(ROOT).join("man").join(page)).unwrap());
        let options = clap_options(cmd);
        assert!(
            options.iter().any(|o| o == "--help"),
            "{name}: no --help among {options:?}"
        );
        let missing: Vec<&String> = options.iter().filter(|o| !mentions(&text, o)).collect();
        assert!(
            missing.is_empty(),
            "{name} has the options {missing:?}, which man/{page} does not mention"
        );
        if let Some(help) = help {
            let missing: Vec<&String> = options.iter().filter(|o| !mentions(help, o)).collect();
            assert!(
                missing.is_empty(),
                "{name} has the options {missing:?}, which its --help does not mention"
            );
        }
    }
}

#[test]
fn references_to_our_pages_resolve() {
    let ours = [
        "indilookup",
        "inlookup",
        "inquerytest",
        "inquery",
        "vchkpass",
        "authindi",
    ];
    let pages = man_pages();
    let have: BTreeSet<String> = pages
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let mut broken = Vec::new();
    for page in &pages {
        let text = plain(&fs::read_to_string(page).unwrap());
        for name in ours {
            for (i, _) in text.match_indices(name) {
                let before = text[..i].chars().next_back();
                if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/') {
                    continue;
                }
                let rest = text[i + name.len()..].trim_start_matches([' ', '"']);
                let mut it = rest.chars();
                if let (Some('('), Some(sec), Some(')')) = (it.next(), it.next(), it.next()) {
                    let target = format!("{name}.{sec}");
                    if !have.contains(&target) {
                        broken.push(format!(
                            "{} refers to {name}({sec}), but man/{target} does not exist",
                            page.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "\n{}\n", broken.join("\n"));
}

#[test]
fn groff_finds_nothing_to_warn_about() {
    let version = Command::new("groff").arg("--version").output();
    if !version.is_ok_and(|o| o.status.success()) {
        panic!(
            "groff is not installed, so the man pages cannot be checked. Install it: \
             `apt-get install groff-base` (Debian, Ubuntu), `dnf install groff-base` \
             (Fedora, RHEL), `zypper install groff` (openSUSE). CI installs it in .ci/run."
        );
    }
    for page in man_pages() {
        let out = Command::new("groff")
            .args(["-man", "-ww", "-z"])
            .arg(&page)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.is_empty(),
            "groff -man -ww -z {}:\n{said}",
            page.display()
        );
    }
}
