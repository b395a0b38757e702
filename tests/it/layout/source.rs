//! Reading Rust source without a parser: comments and literals blanked out (newlines kept, so
//! offsets and line numbers stay true), the string literals collected, and the extent of every
//! `#[cfg(test)]` module found.

use std::ops::Range;

/// One source file, cleaned.
pub struct Source {
    /// The text with comments, string, byte-string and char literals replaced by spaces
    /// (newlines kept), so that paths and calls can be searched without false hits.
    pub code: String,
    /// Every string literal (plain, raw, byte): its offset in the file and its content as
    /// written (escapes not decoded).
    pub strings: Vec<(usize, String)>,
    /// The byte ranges of `#[cfg(test)] mod x { … }` blocks.
    pub test_blocks: Vec<Range<usize>>,
    /// Names of `#[cfg(test)] mod x;` declarations (their files are test code).
    pub test_files: Vec<String>,
}

impl Source {
    pub fn new(text: &str) -> Source {
        let (code, strings) = blank(text);
        let (test_blocks, test_files) = test_modules(&code);
        Source { code, strings, test_blocks, test_files }
    }

    /// Whether `offset` is inside a `#[cfg(test)]` module.
    pub fn in_test(&self, offset: usize) -> bool {
        self.test_blocks.iter().any(|r| r.contains(&offset))
    }

    /// The code with the `#[cfg(test)]` modules blanked too.
    pub fn code_without_tests(&self) -> String {
        let mut b = self.code.clone().into_bytes();
        for r in &self.test_blocks {
            for c in &mut b[r.clone()] {
                if *c != b'\n' {
                    *c = b' ';
                }
            }
        }
        String::from_utf8(b).unwrap_or_default()
    }
}

/// The 1-based line of `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&c| c == b'\n').count() + 1
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Blank comments and literals; collect string literals.
fn blank(text: &str) -> (String, Vec<(usize, String)>) {
    let s = text.as_bytes();
    let mut out = s.to_vec();
    let mut strings = Vec::new();
    let wipe = |out: &mut Vec<u8>, r: Range<usize>| {
        for c in &mut out[r] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < s.len() {
        let prev_ident = i > 0 && is_ident(s[i - 1]);
        match s[i] {
            b'/' if s.get(i + 1) == Some(&b'/') => {
                let end = s[i..].iter().position(|&c| c == b'\n').map_or(s.len(), |p| i + p);
                wipe(&mut out, i..end);
                i = end;
            }
            b'/' if s.get(i + 1) == Some(&b'*') => {
                let (mut j, mut depth) = (i + 2, 1);
                while j < s.len() && depth > 0 {
                    if s[j] == b'/' && s.get(j + 1) == Some(&b'*') {
                        depth += 1;
                        j += 2;
                    } else if s[j] == b'*' && s.get(j + 1) == Some(&b'/') {
                        depth -= 1;
                        j += 2;
                    } else {
                        j += 1;
                    }
                }
                wipe(&mut out, i..j);
                i = j;
            }
            // Raw strings: r"…", r#"…"#, br"…".
            b'r' if !prev_ident || (i > 0 && s[i - 1] == b'b' && (i < 2 || !is_ident(s[i - 2]))) => {
                let hashes = s[i + 1..].iter().take_while(|&&c| c == b'#').count();
                if s.get(i + 1 + hashes) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let start = i + 2 + hashes;
                let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
                let end =
                    s[start..].windows(close.len()).position(|w| w == close.as_slice()).map_or(s.len(), |p| start + p);
                strings.push((i, String::from_utf8_lossy(&s[start..end]).into_owned()));
                let stop = (end + close.len()).min(s.len());
                wipe(&mut out, i..stop);
                i = stop;
            }
            b'"' => {
                let mut j = i + 1;
                while j < s.len() && s[j] != b'"' {
                    j += if s[j] == b'\\' { 2 } else { 1 };
                }
                let end = j.min(s.len());
                strings.push((i, String::from_utf8_lossy(&s[i + 1..end]).into_owned()));
                wipe(&mut out, i..(end + 1).min(s.len()));
                i = end + 1;
            }
            // A char literal ('x', '\n', '\u{1F600}'), not a lifetime ('a).
            b'\'' if !prev_ident || (i > 0 && s[i - 1] == b'b') => {
                let end = if s.get(i + 1) == Some(&b'\\') {
                    // Past the escaped character, so `'\''` ends at its last quote.
                    s.get(i + 3..).and_then(|r| r.iter().position(|&c| c == b'\'')).map(|p| i + 3 + p)
                } else {
                    // One UTF-8 character, then the closing quote.
                    let ch_len = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                    (s.get(i + 1 + ch_len) == Some(&b'\'')).then_some(i + 1 + ch_len)
                };
                match end {
                    Some(e) => {
                        wipe(&mut out, i..e + 1);
                        i = e + 1;
                    }
                    None => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), strings)
}

/// `#[cfg(test)]` modules: inline blocks (their byte ranges) and out-of-line declarations.
fn test_modules(code: &str) -> (Vec<Range<usize>>, Vec<String>) {
    let (mut blocks, mut files) = (Vec::new(), Vec::new());
    let mut from = 0;
    while let Some(p) = code[from..].find("#[cfg(test)]") {
        let at = from + p;
        from = at + 1;
        // Skip further attributes and a visibility, then expect `mod NAME`.
        let mut rest = code[at + "#[cfg(test)]".len()..].trim_start();
        while rest.starts_with("#[") {
            let close = rest.find(']').unwrap_or(rest.len() - 1);
            rest = rest[close + 1..].trim_start();
        }
        if let Some(r) = rest.strip_prefix("pub") {
            rest = r.trim_start();
            if rest.starts_with('(') {
                rest = rest[rest.find(')').map_or(0, |c| c + 1)..].trim_start();
            }
        }
        let Some(r) = rest.strip_prefix("mod ") else { continue };
        let r = r.trim_start();
        let name: String = r.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let after = r[name.len()..].trim_start();
        if after.starts_with(';') {
            files.push(name);
        } else if after.starts_with('{') {
            let open = code.len() - after.len();
            blocks.push(at..matching_brace(code, open));
        }
    }
    (blocks, files)
}

/// The offset just past the `}` matching the `{` at `open` (in cleaned code).
pub fn matching_brace(code: &str, open: usize) -> usize {
    let mut depth = 0usize;
    for (i, c) in code.bytes().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    code.len()
}

#[test]
fn comments_strings_and_chars_are_blanked_and_strings_collected() {
    let src = "let q = '\\''; let a = \"crate::x\"; // super::y\n/* self::z /* nested */ */ let c = 'x'; let l: &'a str = r#\"q\"#;\nfn f<'a>() {}\n";
    let s = Source::new(src);
    assert!(!s.code.contains("crate::") && !s.code.contains("super::") && !s.code.contains("self::"), "{}", s.code);
    assert!(s.code.contains("<'a>"), "lifetimes stay: {}", s.code);
    assert_eq!(s.code.len(), src.len());
    assert_eq!(s.code.matches('\n').count(), 3);
    let strings: Vec<&str> = s.strings.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(strings, ["crate::x", "q"]);
}

#[test]
fn test_modules_are_found_inline_and_out_of_line() {
    let src = "fn a() {}\n#[cfg(test)]\nmod tests {\n    fn b() { let x = \"t\"; }\n}\n#[cfg(test)]\n#[path = \"p.rs\"]\nmod more;\nfn c() {}\n";
    let s = Source::new(src);
    assert_eq!(s.test_files, ["more"]);
    assert_eq!(s.test_blocks.len(), 1);
    let (at, _) = s.strings.iter().find(|(_, t)| t == "t").expect("string");
    assert!(s.in_test(*at));
    assert!(s.code_without_tests().contains("fn c()"));
    assert!(!s.code_without_tests().contains("fn b()"));
}
