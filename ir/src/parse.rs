//! Parser of the textual form (see [`crate::print`] for the grammar by example).
//! Errors carry `file:line:col` and say what was expected.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use smallvec::SmallVec;

use crate::attr::{Attr, Attrs};
use crate::function::{Function, ValueId};
use crate::module::Module;
use crate::ops::OpKind;
use crate::print::FastMap;
use crate::types::{ElemType, Encoding, Expressed, QuantType, Storage, Type};
use crate::{Diagnostic, IrError, Location};

/// Parses and verifies a module.
pub fn parse_verified(text: &str, file: &str) -> Result<Module, IrError> {
    let m = parse_module(text, file)?;
    crate::verify::verify_module(&m)?;
    Ok(m)
}

/// Parses a module from text (without verifying it). `file` names the source in
/// diagnostics.
pub fn parse_module(text: &str, file: &str) -> Result<Module, IrError> {
    parse_module_at(text, file, 0)
}

/// Parses a module whose first line is line `line_offset + 1` of `file` (used for
/// `--split-input-file` chunks).
pub fn parse_module_at(text: &str, file: &str, line_offset: u32) -> Result<Module, IrError> {
    let mut p = Parser {
        src: text.as_bytes(),
        text,
        pos: 0,
        line: 1 + line_offset,
        line_start: 0,
        file: Arc::from(file),
        aliases: HashMap::new(),
        col_cache: Cell::new((0, 0, 1)),
    };
    p.file_top()
}

struct Parser<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    line: u32,
    line_start: usize,
    file: Arc<str>,
    aliases: HashMap<String, QuantType>,
    /// `(line_start, pos, col)` of the last computed location, so columns are counted
    /// incrementally along a line instead of from its start every time.
    col_cache: Cell<(usize, usize, u32)>,
}

type PResult<T> = Result<T, IrError>;

impl<'a> Parser<'a> {
    fn loc(&self) -> Location {
        let pos = self.pos.min(self.text.len());
        let (ls, p, c) = self.col_cache.get();
        let col = if ls == self.line_start && p <= pos {
            c + self.text[p..pos].chars().count() as u32
        } else {
            self.text[self.line_start..pos].chars().count() as u32 + 1
        };
        self.col_cache.set((self.line_start, pos, col));
        Location {
            file: self.file.clone(),
            line: self.line,
            col,
        }
    }

    fn err<T>(&self, msg: impl Into<String>) -> PResult<T> {
        Err(IrError::Parse(Diagnostic {
            loc: Some(self.loc()),
            message: msg.into(),
        }))
    }

    fn err_at<T>(&self, loc: Location, msg: impl Into<String>) -> PResult<T> {
        Err(IrError::Parse(Diagnostic {
            loc: Some(loc),
            message: msg.into(),
        }))
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                    self.line_start = self.pos;
                }
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'/' if self.src.get(self.pos + 1) == Some(&b'/') => {
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    /// What is at the cursor, for "found ..." messages.
    fn found(&self) -> String {
        match self.peek() {
            None => "end of input".into(),
            Some(_) => {
                let rest = &self.text[self.pos..];
                let end = rest
                    .char_indices()
                    .find(|(i, c)| *i > 0 && (c.is_whitespace() || ",(){}<>[]:=".contains(*c)))
                    .map(|(i, _)| i)
                    .unwrap_or(rest.len())
                    .max(rest.chars().next().map(|c| c.len_utf8()).unwrap_or(1));
                let tok: String = rest[..end.min(rest.len())]
                    .chars()
                    .flat_map(char::escape_default)
                    .collect();
                format!("'{tok}'")
            }
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8, what: &str) -> PResult<()> {
        if self.eat(c) {
            Ok(())
        } else {
            self.err(format!(
                "expected '{}' {what}, found {}",
                c as char,
                self.found()
            ))
        }
    }

    fn eat_str(&mut self, s: &str) -> bool {
        self.skip_ws();
        if self.src[self.pos..].starts_with(s.as_bytes()) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn ident_bytes(c: u8) -> bool {
        c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'$' || c == b'-'
    }

    /// Bare identifier (letters, digits, `_ . $ -`), starting with a letter or `_`.
    fn ident(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {}
            _ => return None,
        }
        while let Some(c) = self.peek() {
            if Self::ident_bytes(c) {
                self.pos += 1;
            } else {
                break;
            }
        }
        Some(&self.text[start..self.pos])
    }

    fn keyword(&mut self, kw: &str) -> bool {
        self.skip_ws();
        let save = (self.pos, self.line, self.line_start);
        match self.ident() {
            Some(w) if w == kw => true,
            _ => {
                (self.pos, self.line, self.line_start) = save;
                false
            }
        }
    }

    fn string(&mut self) -> PResult<String> {
        self.skip_ws();
        if self.peek() != Some(b'"') {
            return self.err(format!("expected a string, found {}", self.found()));
        }
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return self.err("unterminated string");
            };
            match c {
                b'"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                b'\n' => return self.err("newline in string"),
                b'\\' => {
                    self.pos += 1;
                    match self.peek() {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'n') => out.push('\n'),
                        Some(b't') => out.push('\t'),
                        Some(h) if h.is_ascii_hexdigit() => {
                            let hex = self.text.get(self.pos..self.pos + 2).unwrap_or("");
                            match u8::from_str_radix(hex, 16) {
                                Ok(v) => {
                                    out.push(v as char);
                                    self.pos += 1;
                                }
                                Err(_) => return self.err("bad \\XX escape in string"),
                            }
                        }
                        _ => return self.err("unknown escape in string"),
                    }
                    self.pos += 1;
                }
                _ => {
                    // Copy the run up to the next quote, backslash or newline (ASCII
                    // delimiters, so the run ends on a char boundary).
                    let rest = &self.src[self.pos..];
                    let n = rest
                        .iter()
                        .position(|c| matches!(c, b'"' | b'\\' | b'\n'))
                        .unwrap_or(rest.len());
                    out.push_str(&self.text[self.pos..self.pos + n]);
                    self.pos += n;
                }
            }
        }
    }

    /// A number token: returns its text and whether it is a float.
    fn number(&mut self) -> Option<(&'a str, bool)> {
        self.skip_ws();
        let start = self.pos;
        let mut p = self.pos;
        if self.src.get(p) == Some(&b'-') {
            p += 1;
        }
        for kw in ["nan", "inf"] {
            if self.src[p..].starts_with(kw.as_bytes())
                && !self.src.get(p + 3).is_some_and(|c| Self::ident_bytes(*c))
            {
                self.pos = p + 3;
                // `-nan` reads as the canonical NaN: the printer spells every NaN `nan`.
                let from = if kw == "nan" { p } else { start };
                return Some((&self.text[from..self.pos], true));
            }
        }
        let digits = |p: &mut usize| {
            let s = *p;
            while self.src.get(*p).is_some_and(u8::is_ascii_digit) {
                *p += 1;
            }
            *p > s
        };
        if !digits(&mut p) {
            return None;
        }
        let mut float = false;
        if self.src.get(p) == Some(&b'.') {
            float = true;
            p += 1;
            digits(&mut p);
        }
        if matches!(self.src.get(p), Some(b'e' | b'E')) {
            let mut q = p + 1;
            if matches!(self.src.get(q), Some(b'+' | b'-')) {
                q += 1;
            }
            if digits(&mut q) {
                float = true;
                p = q;
            }
        }
        self.pos = p;
        Some((&self.text[start..p], float))
    }

    fn int(&mut self, what: &str) -> PResult<i64> {
        let loc = self.loc_after_ws();
        match self.number() {
            Some((t, false)) => match t.parse::<i64>() {
                Ok(v) => Ok(v),
                Err(_) => self.err_at(loc, format!("integer {t} out of range for {what}")),
            },
            Some((t, true)) => self.err_at(
                loc,
                format!("expected an integer for {what}, found float {t}"),
            ),
            None => self.err(format!(
                "expected an integer for {what}, found {}",
                self.found()
            )),
        }
    }

    fn f32_(&mut self, what: &str) -> PResult<f32> {
        let loc = self.loc_after_ws();
        match self.number() {
            Some((t, _)) => match t.parse::<f32>() {
                Ok(v) => Ok(v),
                Err(_) => self.err_at(loc, format!("bad number {t} for {what}")),
            },
            None => self.err(format!(
                "expected a number for {what}, found {}",
                self.found()
            )),
        }
    }

    fn loc_after_ws(&mut self) -> Location {
        self.skip_ws();
        self.loc()
    }

    // ---------------------------------------------------------------- top level

    fn file_top(&mut self) -> PResult<Module> {
        let mut module = Module::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(b'!') {
                self.alias_def()?;
            } else {
                break;
            }
        }
        self.skip_ws();
        let loc = self.loc();
        if self.keyword("module") || self.keyword("builtin.module") {
            module.src = Some(loc);
            self.skip_ws();
            if self.peek() == Some(b'@') {
                module.name = Some(self.symbol()?);
            }
            if self.keyword("attributes") {
                module.attrs = self.attr_dict()?;
            }
            self.expect(b'{', "to open the module body")?;
            loop {
                self.skip_ws();
                if self.eat(b'}') {
                    break;
                }
                if self.peek().is_none() {
                    return self.err("expected '}' to close the module, found end of input");
                }
                let f = self.function()?;
                module.functions.push(f);
            }
        } else {
            // Implicit module: a sequence of functions.
            loop {
                self.skip_ws();
                if self.peek().is_none() {
                    break;
                }
                let f = self.function()?;
                module.functions.push(f);
            }
        }
        self.skip_ws();
        if self.peek().is_some() {
            return self.err(format!("expected end of input, found {}", self.found()));
        }
        Ok(module)
    }

    fn alias_def(&mut self) -> PResult<()> {
        self.expect(b'!', "")?;
        let loc = self.loc();
        let Some(name) = self.ident() else {
            return self.err(format!(
                "expected an alias name after '!', found {}",
                self.found()
            ));
        };
        if name.starts_with("quant.") {
            return self.err_at(
                loc,
                "expected a type alias definition (`!name = !quant...`)",
            );
        }
        if self.aliases.contains_key(name) {
            return self.err_at(loc, format!("redefinition of type alias !{name}"));
        }
        self.expect(b'=', "after the alias name")?;
        self.expect(b'!', "before the aliased quantized type")?;
        let q = self.quant_after_bang()?;
        self.aliases.insert(name.to_owned(), q);
        Ok(())
    }

    fn symbol(&mut self) -> PResult<String> {
        self.expect(b'@', "to start a symbol name")?;
        if self.peek() == Some(b'"') {
            return self.string();
        }
        match self.ident() {
            Some(n) => Ok(n.to_owned()),
            None => self.err(format!(
                "expected a symbol name after '@', found {}",
                self.found()
            )),
        }
    }

    fn function(&mut self) -> PResult<Function> {
        self.skip_ws();
        let floc = self.loc();
        if !self.keyword("func.func") {
            return self.err(format!("expected 'func.func', found {}", self.found()));
        }
        let name = self.symbol()?;
        let mut f = Function::new(name);
        f.src = Some(floc);
        let mut values: FastMap<Cow<'a, str>, ValueId> = FastMap::default();
        self.expect(b'(', "to open the argument list")?;
        if !self.eat(b')') {
            loop {
                let aloc = self.loc_after_ws();
                let vname = self.value_name()?;
                self.expect(b':', "after the argument name")?;
                let ty = self.ty()?;
                let arg_name = if crate::print::is_positional_arg(&vname) {
                    None
                } else {
                    Some(&*vname)
                };
                let v = f.add_arg(ty, arg_name);
                if values.insert(vname.clone(), v).is_some() {
                    return self.err_at(aloc, format!("redefinition of value %{vname}"));
                }
                if self.eat(b')') {
                    break;
                }
                self.expect(b',', "or ')' in the argument list")?;
            }
        }
        let mut declared: Option<Vec<Type>> = None;
        if self.eat_str("->") {
            let mut tys = Vec::new();
            if self.eat(b'(') {
                if !self.eat(b')') {
                    loop {
                        tys.push(self.ty()?);
                        let mut rname = None;
                        self.skip_ws();
                        if self.peek() == Some(b'{') {
                            let rloc = self.loc();
                            let a = self.attr_dict()?;
                            for (k, v) in a {
                                match (k.as_str(), v) {
                                    ("name", Attr::Str(s)) => rname = Some(s),
                                    _ => {
                                        return self.err_at(
                                            rloc,
                                            format!(
                                                "unknown result attribute '{k}' (expected 'name')"
                                            ),
                                        )
                                    }
                                }
                            }
                        }
                        f.result_names.push(rname);
                        if self.eat(b')') {
                            break;
                        }
                        self.expect(b',', "or ')' in the result list")?;
                    }
                }
            } else {
                tys.push(self.ty()?);
                f.result_names.push(None);
            }
            declared = Some(tys);
        }
        if self.keyword("attributes") {
            f.attrs = self.attr_dict()?;
        }
        self.expect(b'{', "to open the function body")?;
        let entry = f.entry();
        let mut saw_return = false;
        loop {
            self.skip_ws();
            if self.eat(b'}') {
                break;
            }
            if self.peek().is_none() {
                return self.err(format!(
                    "expected '}}' to close function @{}, found end of input",
                    f.name
                ));
            }
            let oloc = self.loc();
            if saw_return {
                return self.err("op after func.return: the terminator must be the last op");
            }
            let op = self.op(&mut f, &mut values)?;
            f.ops[op].src = Some(oloc.clone());
            f.append(entry, op);
            if f.op(op).kind == OpKind::Return {
                saw_return = true;
                let ret: SmallVec<[ValueId; 4]> = f.op(op).operands.clone();
                match &declared {
                    Some(tys) => {
                        if tys.len() != ret.len() {
                            return self.err_at(
                                oloc,
                                format!(
                                    "func.return has {} operands but @{} declares {} results",
                                    ret.len(),
                                    f.name,
                                    tys.len()
                                ),
                            );
                        }
                        for (i, (v, t)) in ret.iter().zip(tys).enumerate() {
                            if f.ty(*v) != t {
                                return self.err_at(
                                    oloc,
                                    format!(
                                        "func.return operand #{i} has type {} but the function declares {t}",
                                        f.ty(*v)
                                    ),
                                );
                            }
                        }
                    }
                    None => {
                        if !ret.is_empty() {
                            return self.err_at(
                                oloc,
                                format!(
                                    "func.return has operands but @{} declares no results",
                                    f.name
                                ),
                            );
                        }
                    }
                }
            }
        }
        if !saw_return {
            let at = f.src.clone().unwrap_or_else(|| self.loc());
            return self.err_at(at, format!("function @{} has no func.return", f.name));
        }
        Ok(f)
    }

    fn value_name(&mut self) -> PResult<Cow<'a, str>> {
        self.skip_ws();
        if self.peek() != Some(b'%') {
            return self.err(format!(
                "expected a value name (%name), found {}",
                self.found()
            ));
        }
        self.pos += 1;
        if self.peek() == Some(b'"') {
            return self.string().map(Cow::Owned);
        }
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' {
                self.pos += 1;
            } else {
                break;
            }
        }
        if start == self.pos {
            return self.err(format!(
                "expected a value name after '%', found {}",
                self.found()
            ));
        }
        Ok(Cow::Borrowed(&self.text[start..self.pos]))
    }

    fn op(
        &mut self,
        f: &mut Function,
        values: &mut FastMap<Cow<'a, str>, ValueId>,
    ) -> PResult<crate::OpId> {
        let mut result_names: SmallVec<[(Cow<'a, str>, Location); 1]> = SmallVec::new();
        self.skip_ws();
        if self.peek() == Some(b'%') {
            loop {
                let l = self.loc_after_ws();
                result_names.push((self.value_name()?, l));
                if !self.eat(b',') {
                    break;
                }
            }
            self.expect(b'=', "after the result names")?;
        }
        let kloc = self.loc_after_ws();
        let Some(opname) = self.ident() else {
            return self.err(format!("expected an op name, found {}", self.found()));
        };
        let Some(kind) = op_by_name(opname) else {
            let hint = suggest(opname);
            return self.err_at(kloc, format!("unknown op '{opname}'{hint}"));
        };
        let mut operands: SmallVec<[ValueId; 4]> = SmallVec::new();
        self.skip_ws();
        if self.peek() == Some(b'%') {
            loop {
                self.skip_ws();
                // The location is only needed for the error: remember where we are.
                let mark = (self.pos, self.line, self.line_start);
                let n = self.value_name()?;
                match values.get(&n) {
                    Some(v) => operands.push(*v),
                    None => {
                        (self.pos, self.line, self.line_start) = mark;
                        return self.err(format!("use of undefined value %{n}"));
                    }
                }
                if !self.eat(b',') {
                    break;
                }
            }
        }
        let mut attrs = Attrs::new();
        self.skip_ws();
        if self.peek() == Some(b'{') {
            attrs = self.attr_dict()?;
        }
        let mut tys: Vec<Type> = Vec::new();
        if self.eat(b':') {
            if self.eat(b'(') {
                if !self.eat(b')') {
                    loop {
                        tys.push(self.ty()?);
                        if self.eat(b')') {
                            break;
                        }
                        self.expect(b',', "or ')' in the result type list")?;
                    }
                }
            } else {
                tys.push(self.ty()?);
            }
        }
        if tys.len() != result_names.len() {
            return self.err_at(
                kloc,
                format!(
                    "'{opname}' defines {} results but {} result types are given",
                    result_names.len(),
                    tys.len()
                ),
            );
        }
        let mut name = None;
        if self.keyword("loc") {
            self.expect(b'(', "after 'loc'")?;
            name = Some(self.string()?);
            self.expect(b')', "to close loc(...)")?;
        }
        // A float-list attribute written with integers (`value = [1, 2]`) is stored as
        // floats, so consumers reading it as a float list see its values.
        for (k, ak) in kind
            .info()
            .required_attrs
            .iter()
            .chain(kind.info().optional_attrs)
        {
            if *ak == crate::ops::AttrKind::Floats {
                if let Some(Attr::Ints(v)) = attrs.get(*k) {
                    let fl = v.iter().map(|x| *x as f64).collect();
                    attrs.insert((*k).to_owned(), Attr::Floats(fl));
                }
            }
        }
        let op = f.create_op(kind, &operands, &tys, attrs);
        f.ops[op].name = name;
        for ((n, l), v) in result_names.into_iter().zip(f.op(op).results.clone()) {
            if values.insert(n.clone(), v).is_some() {
                return self.err_at(l, format!("redefinition of value %{n}"));
            }
        }
        Ok(op)
    }

    // ---------------------------------------------------------------- attributes

    fn attr_dict(&mut self) -> PResult<Attrs> {
        self.expect(b'{', "to open an attribute dictionary")?;
        let mut out = Attrs::new();
        if self.eat(b'}') {
            return Ok(out);
        }
        loop {
            self.skip_ws();
            let kloc = self.loc();
            let key = if self.peek() == Some(b'"') {
                self.string()?
            } else {
                match self.ident() {
                    Some(k) => k.to_owned(),
                    None => {
                        return self.err(format!(
                            "expected an attribute name, found {}",
                            self.found()
                        ))
                    }
                }
            };
            self.expect(b'=', &format!("after attribute name '{key}'"))?;
            let v = self.attr_value()?;
            if out.insert(key.clone(), v).is_some() {
                return self.err_at(kloc, format!("duplicate attribute '{key}'"));
            }
            if self.eat(b'}') {
                return Ok(out);
            }
            self.expect(b',', "or '}' in the attribute dictionary")?;
        }
    }

    fn attr_value(&mut self) -> PResult<Attr> {
        self.skip_ws();
        match self.peek() {
            Some(b'"') => return Ok(Attr::Str(self.string()?)),
            Some(b'[') => {
                self.pos += 1;
                return self.list(false);
            }
            _ => {}
        }
        if self.eat_str("array<f64>") {
            self.expect(b'[', "after array<f64>")?;
            return self.list(true);
        }
        if self.keyword("true") {
            return Ok(Attr::Bool(true));
        }
        if self.keyword("false") {
            return Ok(Attr::Bool(false));
        }
        if self.src[self.pos..].starts_with(b"tensor<") {
            return Ok(Attr::Type(self.ty()?));
        }
        let loc = self.loc();
        match self.number() {
            Some((t, false)) => match t.parse::<i64>() {
                Ok(v) => Ok(Attr::Int(v)),
                Err(_) => self.err_at(loc, format!("integer {t} out of range")),
            },
            Some((t, true)) => match t.parse::<f64>() {
                Ok(v) => Ok(Attr::Float(v)),
                Err(_) => self.err_at(loc, format!("bad float {t}")),
            },
            None => self.err(format!(
                "expected an attribute value (number, string, bool, list or type), found {}",
                self.found()
            )),
        }
    }

    /// After '[': a list of numbers.
    fn list(&mut self, force_float: bool) -> PResult<Attr> {
        let mut ints = Vec::new();
        let mut floats = Vec::new();
        let mut any_float = force_float;
        if !self.eat(b']') {
            loop {
                let loc = self.loc_after_ws();
                match self.number() {
                    Some((t, is_f)) => {
                        let f: f64 = match t.parse() {
                            Ok(v) => v,
                            Err(_) => return self.err_at(loc, format!("bad number {t}")),
                        };
                        if is_f {
                            any_float = true;
                        } else {
                            match t.parse::<i64>() {
                                Ok(v) => ints.push(v),
                                Err(_) => {
                                    return self.err_at(loc, format!("integer {t} out of range"))
                                }
                            }
                        }
                        floats.push(f);
                    }
                    None => {
                        return self.err(format!(
                            "expected a number in the list, found {}",
                            self.found()
                        ))
                    }
                }
                if self.eat(b']') {
                    break;
                }
                self.expect(b',', "or ']' in the list")?;
            }
        }
        Ok(if any_float {
            Attr::Floats(floats)
        } else {
            Attr::Ints(ints)
        })
    }

    // ---------------------------------------------------------------- types

    fn ty(&mut self) -> PResult<Type> {
        self.skip_ws();
        if !self.src[self.pos..].starts_with(b"tensor<") {
            return self.err(format!(
                "expected a type (tensor<...>), found {}",
                self.found()
            ));
        }
        let tloc = self.loc();
        self.pos += 7;
        let mut shape = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                Some(c) if c.is_ascii_digit() => {
                    let dloc = self.loc();
                    let start = self.pos;
                    while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.pos += 1;
                    }
                    let t = &self.text[start..self.pos];
                    match t.parse::<usize>() {
                        Ok(d) if d > 0 => shape.push(d),
                        _ => {
                            return self.err_at(
                                dloc,
                                format!("bad dimension {t}: dimensions are positive integers"),
                            )
                        }
                    }
                    if self.peek() != Some(b'x') {
                        return self.err(format!(
                            "expected 'x' after dimension {t}, found {}",
                            self.found()
                        ));
                    }
                    self.pos += 1;
                }
                _ => break,
            }
        }
        if crate::infer::checked_numel(&shape).is_none() {
            return self.err_at(tloc, "tensor type has too many elements");
        }
        let elem = self.elem()?;
        self.expect(b'>', "to close tensor<...>")?;
        Ok(Type::tensor(shape, elem))
    }

    fn elem(&mut self) -> PResult<ElemType> {
        self.skip_ws();
        if self.peek() == Some(b'!') {
            self.pos += 1;
            let save = (self.pos, self.line, self.line_start);
            let loc = self.loc();
            let Some(name) = self.ident() else {
                return self.err(format!(
                    "expected a type alias or !quant type, found {}",
                    self.found()
                ));
            };
            if name.starts_with("quant.") {
                (self.pos, self.line, self.line_start) = save;
                return Ok(ElemType::Quant(self.quant_after_bang()?));
            }
            return match self.aliases.get(name) {
                Some(q) => Ok(ElemType::Quant(q.clone())),
                None => self.err_at(loc, format!("undefined type alias !{name}")),
            };
        }
        let loc = self.loc();
        match self.ident() {
            Some(n) => match ElemType::from_scalar_name(n) {
                Some(e) => Ok(e),
                None => self.err_at(
                    loc,
                    format!("unknown element type '{n}' (expected f32, f16, bf16, i1, i8, i16, i32, i64, u8, u16 or !quant...)"),
                ),
            },
            None => self.err(format!("expected an element type, found {}", self.found())),
        }
    }

    /// After '!': `quant.uniform<...>`, `quant.per_axis<...>` or `quant.lpbq<...>`.
    fn quant_after_bang(&mut self) -> PResult<QuantType> {
        let loc = self.loc();
        let Some(kind) = self.ident() else {
            return self.err(format!("expected a quantized type, found {}", self.found()));
        };
        let kind = kind.to_owned();
        if !matches!(
            kind.as_str(),
            "quant.uniform" | "quant.per_axis" | "quant.lpbq"
        ) {
            return self.err_at(
                loc,
                format!("unknown quantized type '!{kind}' (expected !quant.uniform, !quant.per_axis or !quant.lpbq)"),
            );
        }
        self.expect(b'<', &format!("after !{kind}"))?;
        let sloc = self.loc_after_ws();
        let storage = match self.ident().and_then(Storage::from_name) {
            Some(s) => s,
            None => {
                return self.err_at(sloc, "expected a storage type (u8, u16, i8, i4, i16, i32)")
            }
        };
        self.expect(b':', "between storage and expressed types")?;
        let eloc = self.loc_after_ws();
        let expressed = match self.ident() {
            Some("f32") => Expressed::F32,
            Some("f16") => Expressed::F16,
            _ => return self.err_at(eloc, "expected an expressed type (f32 or f16)"),
        };
        let mut fields: HashMap<String, (Location, Field)> = HashMap::new();
        while self.eat(b',') {
            let kloc = self.loc_after_ws();
            let Some(key) = self.ident() else {
                return self.err(format!(
                    "expected a parameter name in !{kind}, found {}",
                    self.found()
                ));
            };
            let key = key.to_owned();
            self.expect(b'=', &format!("after '{key}'"))?;
            let vloc = self.loc_after_ws();
            let value = match key.as_str() {
                "scale" => Field::F32(self.f32_("scale")?),
                "scales" | "channel_scales" => Field::F32s(self.f32_array(&key)?),
                "offsets" => Field::I32s(self.i32_array()?),
                "block_scales" => Field::U8s(self.u8_array()?),
                "offset" | "axis" | "block" | "bits" => Field::Int(self.int(&key)?),
                _ => return self.err_at(kloc, format!("unknown parameter '{key}' in !{kind}")),
            };
            if fields.insert(key.clone(), (vloc, value)).is_some() {
                return self.err_at(kloc, format!("duplicate parameter '{key}' in !{kind}"));
            }
        }
        self.expect(b'>', &format!("to close !{kind}<...>"))?;
        let mut take = |k: &str| -> PResult<(Location, Field)> {
            match fields.remove(k) {
                Some(v) => Ok(v),
                None => self.err_at(loc.clone(), format!("!{kind} needs parameter '{k}'")),
            }
        };
        let int_in =
            |p: &Parser, (l, f): (Location, Field), k: &str, lo: i64, hi: i64| -> PResult<i64> {
                match f {
                    Field::Int(v) if (lo..=hi).contains(&v) => Ok(v),
                    Field::Int(v) => {
                        p.err_at(l, format!("'{k}' = {v} is out of range {lo}..={hi}"))
                    }
                    _ => p.err_at(l, format!("'{k}' must be an integer")),
                }
            };
        let encoding = match kind.as_str() {
            "quant.uniform" => {
                let scale = match take("scale")? {
                    (_, Field::F32(s)) => s,
                    (l, _) => return self.err_at(l, "'scale' must be a number"),
                };
                let offset = int_in(
                    self,
                    take("offset")?,
                    "offset",
                    i32::MIN as i64,
                    i32::MAX as i64,
                )? as i32;
                Encoding::PerTensor { scale, offset }
            }
            "quant.per_axis" => {
                let axis = int_in(self, take("axis")?, "axis", 0, 64)? as u32;
                let scales = match take("scales")? {
                    (_, Field::F32s(v)) => v,
                    (l, _) => return self.err_at(l, "'scales' must be a float array"),
                };
                let offsets = match take("offsets")? {
                    (_, Field::I32s(v)) => v,
                    (l, _) => return self.err_at(l, "'offsets' must be an integer array"),
                };
                Encoding::PerAxis {
                    axis,
                    scales: scales.into(),
                    offsets: offsets.into(),
                }
            }
            _ => {
                let axis = int_in(self, take("axis")?, "axis", 0, 64)? as u32;
                let block_size = int_in(self, take("block")?, "block", 1, u32::MAX as i64)? as u32;
                let block_scale_bits = int_in(self, take("bits")?, "bits", 1, 8)? as u32;
                let channel_scales = match take("channel_scales")? {
                    (_, Field::F32s(v)) => v,
                    (l, _) => return self.err_at(l, "'channel_scales' must be a float array"),
                };
                let block_scales = match take("block_scales")? {
                    (_, Field::U8s(v)) => v,
                    (l, _) => return self.err_at(l, "'block_scales' must be a u8 array"),
                };
                Encoding::Blockwise {
                    axis,
                    block_size,
                    block_scale_bits,
                    block_scales: block_scales.into(),
                    channel_scales: channel_scales.into(),
                }
            }
        };
        if let Some((k, (l, _))) = fields.into_iter().next() {
            return self.err_at(l, format!("parameter '{k}' does not apply to !{kind}"));
        }
        Ok(QuantType {
            storage,
            expressed,
            encoding,
        })
    }

    fn hex_blob(&mut self, elem: usize) -> PResult<Vec<u8>> {
        // after `hex`
        let s = self.string()?;
        if s.len() % 2 != 0 || (s.len() / 2) % elem != 0 {
            return self.err(format!(
                "hex blob length {} is not a multiple of {} bytes",
                s.len() / 2,
                elem
            ));
        }
        // Digit values, 0xff for non-hex bytes.
        const DIGIT: [u8; 256] = {
            let mut t = [0xffu8; 256];
            let mut i = 0;
            while i < 10 {
                t[b'0' as usize + i] = i as u8;
                i += 1;
            }
            let mut i = 0;
            while i < 6 {
                t[b'a' as usize + i] = 10 + i as u8;
                t[b'A' as usize + i] = 10 + i as u8;
                i += 1;
            }
            t
        };
        let mut out = Vec::with_capacity(s.len() / 2);
        let mut bad = false;
        for pair in s.as_bytes().chunks_exact(2) {
            let (h, l) = (DIGIT[pair[0] as usize], DIGIT[pair[1] as usize]);
            bad |= (h | l) == 0xff;
            out.push(h.wrapping_mul(16).wrapping_add(l));
        }
        if bad {
            return self.err("bad hex digit in hex blob");
        }
        Ok(out)
    }

    fn f32_array(&mut self, what: &str) -> PResult<Vec<f32>> {
        if self.keyword("hex") {
            let b = self.hex_blob(4)?;
            return Ok(b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect());
        }
        self.expect(b'[', &format!("to open '{what}'"))?;
        let mut out = Vec::new();
        if self.eat(b']') {
            return Ok(out);
        }
        loop {
            out.push(self.f32_(what)?);
            if self.eat(b']') {
                return Ok(out);
            }
            self.expect(b',', "or ']'")?;
        }
    }

    fn i32_array(&mut self) -> PResult<Vec<i32>> {
        if self.keyword("hex") {
            let b = self.hex_blob(4)?;
            return Ok(b
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect());
        }
        self.expect(b'[', "to open 'offsets'")?;
        let mut out = Vec::new();
        if self.eat(b']') {
            return Ok(out);
        }
        loop {
            let l = self.loc_after_ws();
            let v = self.int("offsets")?;
            match i32::try_from(v) {
                Ok(v) => out.push(v),
                Err(_) => return self.err_at(l, format!("offset {v} does not fit in i32")),
            }
            if self.eat(b']') {
                return Ok(out);
            }
            self.expect(b',', "or ']'")?;
        }
    }

    fn u8_array(&mut self) -> PResult<Vec<u8>> {
        if self.keyword("hex") {
            return self.hex_blob(1);
        }
        self.expect(b'[', "to open 'block_scales'")?;
        let mut out = Vec::new();
        if self.eat(b']') {
            return Ok(out);
        }
        loop {
            let l = self.loc_after_ws();
            let v = self.int("block_scales")?;
            match u8::try_from(v) {
                Ok(v) => out.push(v),
                Err(_) => return self.err_at(l, format!("block scale {v} does not fit in u8")),
            }
            if self.eat(b']') {
                return Ok(out);
            }
            self.expect(b',', "or ']'")?;
        }
    }
}

enum Field {
    Int(i64),
    F32(f32),
    F32s(Vec<f32>),
    I32s(Vec<i32>),
    U8s(Vec<u8>),
}

/// Op kind by `dialect.op` name (hashed; the op table is scanned only once).
fn op_by_name(name: &str) -> Option<OpKind> {
    static BY_NAME: OnceLock<HashMap<&'static str, OpKind>> = OnceLock::new();
    BY_NAME
        .get_or_init(|| OpKind::ALL.iter().map(|k| (k.name(), *k)).collect())
        .get(name)
        .copied()
}

/// " (did you mean 'x'?)" for a near-miss op name.
fn suggest(name: &str) -> String {
    let best = OpKind::ALL
        .iter()
        .map(|k| (edit_distance(name, k.name()), k.name()))
        .min();
    match best {
        Some((d, n)) if d <= 3 => format!(" (did you mean '{n}'?)"),
        _ => String::new(),
    }
}

/// Levenshtein distance (small strings).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let c = if a[i - 1] == b[j - 1] { 0 } else { 1 };
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + c);
        }
        prev = cur;
    }
    prev[b.len()]
}
