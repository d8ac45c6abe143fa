//! MLIR's textual pass-pipeline grammar, parsed and printed back identically:
//!
//! ```text
//! pipeline ::= anchor '(' element (',' element)* ')'
//! element  ::= pipeline | pass-name options?
//! options  ::= '{' (key ('=' value)?)* '}'      // options separated by spaces
//! ```
//! e.g. `builtin.module(func.func(cse,canonicalize),sha-split{heads=16})`.

use std::fmt;

use crate::pass::PassError;

/// One element of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Element {
    /// A pass (or named pipeline) with its raw options, in the order written.
    Pass {
        /// Pass name.
        name: String,
        /// `key=value` options (`value` is empty for a bare `key`).
        options: Vec<(String, String)>,
        /// 1-based column of the name in the pipeline text.
        col: usize,
    },
    /// A nested pipeline anchored on an op name.
    Nested(Pipeline),
}

/// A pipeline anchored on an op name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    /// Anchor op name (`builtin.module`, `func.func`).
    pub anchor: String,
    /// Elements in order.
    pub elements: Vec<Element>,
    /// 1-based column of the anchor.
    pub col: usize,
}

impl fmt::Display for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.anchor)?;
        for (i, e) in self.elements.iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            write!(f, "{e}")?;
        }
        write!(f, ")")
    }
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Element::Nested(p) => write!(f, "{p}"),
            Element::Pass { name, options, .. } => {
                write!(f, "{name}")?;
                if !options.is_empty() {
                    write!(f, "{{")?;
                    for (i, (k, v)) in options.iter().enumerate() {
                        if i > 0 {
                            write!(f, " ")?;
                        }
                        if v.is_empty() {
                            write!(f, "{k}")?;
                        } else {
                            write!(f, "{k}={v}")?;
                        }
                    }
                    write!(f, "}}")?;
                }
                Ok(())
            }
        }
    }
}

struct P<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
}

fn perr<T>(col: usize, msg: impl fmt::Display) -> Result<T, PassError> {
    Err(PassError::Pipeline(format!("col {col}: {msg}")))
}

impl<'a> P<'a> {
    fn ws(&mut self) {
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }
    fn col(&self) -> usize {
        self.text[..self.pos].chars().count() + 1
    }
    fn name(&mut self) -> &'a str {
        self.ws();
        let start = self.pos;
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
        {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn elements(&mut self, open_col: usize) -> Result<Vec<Element>, PassError> {
        let mut out = Vec::new();
        self.ws();
        if self.s.get(self.pos) == Some(&b')') {
            self.pos += 1;
            return Ok(out);
        }
        loop {
            self.ws();
            let col = self.col();
            let name = self.name();
            if name.is_empty() {
                return match self.s.get(self.pos) {
                    None => perr(open_col, "unbalanced parentheses: '(' is never closed"),
                    Some(c) => perr(col, format!("expected a pass name, found '{}'", *c as char)),
                };
            }
            self.ws();
            match self.s.get(self.pos) {
                Some(b'(') => {
                    self.pos += 1;
                    let elements = self.elements(col)?;
                    out.push(Element::Nested(Pipeline {
                        anchor: name.to_owned(),
                        elements,
                        col,
                    }));
                }
                Some(b'{') => {
                    self.pos += 1;
                    let options = self.options(col)?;
                    out.push(Element::Pass {
                        name: name.to_owned(),
                        options,
                        col,
                    });
                }
                _ => out.push(Element::Pass {
                    name: name.to_owned(),
                    options: Vec::new(),
                    col,
                }),
            }
            self.ws();
            match self.s.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b')') => {
                    self.pos += 1;
                    return Ok(out);
                }
                None => return perr(open_col, "unbalanced parentheses: '(' is never closed"),
                Some(c) => {
                    return perr(
                        self.col(),
                        format!("expected ',' or ')', found '{}'", *c as char),
                    )
                }
            }
        }
    }

    fn options(&mut self, pass_col: usize) -> Result<Vec<(String, String)>, PassError> {
        let mut out = Vec::new();
        loop {
            self.ws();
            match self.s.get(self.pos) {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(out);
                }
                None => {
                    return perr(
                        pass_col,
                        "unbalanced braces: option list '{' is never closed",
                    )
                }
                _ => {}
            }
            let kcol = self.col();
            let key = self.name();
            if key.is_empty() {
                let c = self.s[self.pos] as char;
                return perr(kcol, format!("expected an option name, found '{c}'"));
            }
            let mut value = String::new();
            if self.s.get(self.pos) == Some(&b'=') {
                self.pos += 1;
                let start = self.pos;
                let mut depth = 0i32;
                let mut quote = false;
                while let Some(&c) = self.s.get(self.pos) {
                    if quote {
                        if c == b'"' {
                            quote = false;
                        }
                    } else {
                        match c {
                            b'"' => quote = true,
                            b'{' | b'(' | b'[' => depth += 1,
                            b'}' | b')' | b']' if depth > 0 => depth -= 1,
                            b'}' => break,
                            c if c.is_ascii_whitespace() && depth == 0 => break,
                            _ => {}
                        }
                    }
                    self.pos += 1;
                }
                if quote {
                    return perr(kcol, "unterminated string in option value");
                }
                value = self.text[start..self.pos].to_owned();
                if value.is_empty() {
                    return perr(kcol, format!("option '{key}' has '=' but no value"));
                }
            }
            out.push((key.to_owned(), value));
        }
    }
}

/// Parses a pipeline. A bare comma-separated list without an anchor
/// (`cse,canonicalize`) is an error that suggests the anchored form.
pub fn parse_pipeline(text: &str) -> Result<Pipeline, PassError> {
    let mut p = P {
        s: text.as_bytes(),
        text,
        pos: 0,
    };
    p.ws();
    let col = p.col();
    let anchor = p.name();
    if anchor.is_empty() {
        return match p.s.get(p.pos) {
            None => perr(col, "empty pipeline"),
            Some(c) => perr(
                col,
                format!(
                    "expected an op anchor such as 'builtin.module', found '{}'",
                    *c as char
                ),
            ),
        };
    }
    p.ws();
    if p.s.get(p.pos) != Some(&b'(') {
        return perr(
            col,
            format!(
                "expected '(' after '{anchor}': a pipeline is anchored on an op, e.g. 'builtin.module(func.func({anchor}))'"
            ),
        );
    }
    p.pos += 1;
    let elements = p.elements(col)?;
    p.ws();
    if p.pos < p.s.len() {
        let c = p.s[p.pos] as char;
        let msg = if c == ')' {
            "unbalanced parentheses: unexpected ')'".to_string()
        } else {
            format!("unexpected '{c}' after the pipeline")
        };
        return perr(p.col(), msg);
    }
    Ok(Pipeline {
        anchor: anchor.to_owned(),
        elements,
        col,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_back_identically() {
        for s in [
            "builtin.module(func.func(cse,canonicalize),sha-split{heads=16})",
            "builtin.module()",
            "builtin.module(func.func(canonicalize{max-iterations=3 region-simplify}),dce)",
            "builtin.module(x{a={b c} d=\"q r\"})",
        ] {
            assert_eq!(parse_pipeline(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn reports_unbalanced_and_bad_tokens() {
        let e = parse_pipeline("builtin.module(func.func(cse)")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unbalanced parentheses"), "{e}");
        let e = parse_pipeline("builtin.module(cse))")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unexpected ')'"), "{e}");
        let e = parse_pipeline("builtin.module(cse{a=1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("never closed"), "{e}");
        let e = parse_pipeline("cse,dce").unwrap_err().to_string();
        assert!(e.contains("expected '(' after 'cse'"), "{e}");
    }
}
