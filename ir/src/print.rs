//! The deterministic textual form.
//!
//! ```text
//! !q0 = !quant.uniform<u16:f32, scale = 1.5e-5, offset = -32768>
//! module {
//!   func.func @model.0.s1(%sequence: tensor<1x1xi32>) -> (tensor<1x1x64x!q0> {name = "logits"}) {
//!     %0 = builtin.weight {name = "model.embed_tokens.weight"} : tensor<512x64xf32>
//!     %1 = nn.embedding %sequence, %0 : tensor<1x1x64xf32> loc("embed")
//!     func.return %1
//!   }
//! }
//! ```
//! Values are renumbered per function (`%0, %1, ...`; named arguments keep their
//! name, others are `%argN`), attributes are sorted, and quantized element types used
//! more than once (or with long scale arrays) are printed once as `!qN` aliases.

use std::collections::HashMap;
use std::fmt::Write;

use crate::attr::{Attr, Attrs};
use crate::function::{Function, ValueId};
use crate::module::Module;
use crate::types::{ElemType, Encoding, QuantType, Type};

/// Arrays longer than this are printed as little-endian hex blobs.
const INLINE_ARRAY_MAX: usize = 16;

/// Prints a module.
pub fn print_module(m: &Module) -> String {
    let mut p = Printer::new(m);
    p.module(m);
    p.finish()
}

/// Prints a single function (with the aliases it needs).
pub fn print_function(f: &Function) -> String {
    let mut p = Printer::for_functions(std::slice::from_ref(f), &Attrs::new());
    p.function(f, "");
    p.finish()
}

/// A type without aliases.
pub fn type_to_string(t: &Type) -> String {
    let mut s = String::new();
    write_type(&mut s, t, &HashMap::new());
    s
}

/// Whether `s` can be printed bare as a symbol or identifier.
pub fn is_bare_ident(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '$' || c == '-')
}

struct Printer {
    out: String,
    aliases: HashMap<ElemKey, usize>,
    alias_defs: Vec<QuantType>,
    type_cache: HashMap<Type, String>,
}

/// Alias key: a quantized element type compared by content.
#[derive(PartialEq, Eq, Hash, Clone)]
struct ElemKey(QuantType);

type AliasMap = HashMap<ElemKey, usize>;

impl Printer {
    fn new(m: &Module) -> Printer {
        Printer::for_functions(&m.functions, &m.attrs)
    }

    fn for_functions(funcs: &[Function], mattrs: &Attrs) -> Printer {
        // Count quantized element types over distinct types (types are interned, so
        // counting by Type first keeps hashing of long encodings to once per type).
        let mut by_type: Vec<(Type, usize)> = Vec::new();
        let mut index: HashMap<Type, usize> = HashMap::new();
        let mut note = |t: &Type| {
            if t.quant().is_some() {
                let i = *index.entry(t.clone()).or_insert_with(|| {
                    by_type.push((t.clone(), 0));
                    by_type.len() - 1
                });
                by_type[i].1 += 1;
            }
        };
        let visit_attrs = |a: &Attrs, note: &mut dyn FnMut(&Type)| {
            for v in a.values() {
                if let Attr::Type(t) = v {
                    note(t)
                }
            }
        };
        visit_attrs(mattrs, &mut note);
        for f in funcs {
            visit_attrs(&f.attrs, &mut note);
            for a in f.args() {
                note(f.ty(*a));
            }
            for op in f.block_ops(f.entry()) {
                let o = f.op(op);
                for r in &o.results {
                    note(f.ty(*r));
                }
                visit_attrs(&o.attrs, &mut note);
            }
        }
        let mut counts: HashMap<ElemKey, usize> = HashMap::new();
        let mut order: Vec<ElemKey> = Vec::new();
        for (t, n) in &by_type {
            let Some(q) = t.quant() else { continue };
            let key = ElemKey(q.clone());
            let c = counts.entry(key.clone()).or_insert_with(|| {
                order.push(key);
                0
            });
            *c += n;
        }
        let mut aliases = HashMap::new();
        let mut alias_defs = Vec::new();
        for key in order {
            let long = encoding_len(&key.0.encoding) > INLINE_ARRAY_MAX;
            if counts[&key] >= 2 || long {
                aliases.insert(key.clone(), alias_defs.len());
                alias_defs.push(key.0);
            }
        }
        Printer {
            out: String::new(),
            aliases,
            alias_defs,
            type_cache: HashMap::new(),
        }
    }

    fn finish(self) -> String {
        let mut head = String::new();
        for (i, q) in self.alias_defs.iter().enumerate() {
            let _ = write!(head, "!q{i} = ");
            write_quant(&mut head, q);
            head.push('\n');
        }
        head + &self.out
    }

    fn module(&mut self, m: &Module) {
        self.out.push_str("module");
        if let Some(n) = &m.name {
            self.out.push(' ');
            write_symbol(&mut self.out, n);
        }
        if !m.attrs.is_empty() {
            self.out.push_str(" attributes ");
            let a = self.attrs_str(&m.attrs);
            self.out.push_str(&a);
        }
        self.out.push_str(" {\n");
        for f in &m.functions {
            self.function(f, "  ");
        }
        self.out.push_str("}\n");
    }

    fn ty(&mut self, t: &Type) -> String {
        if let Some(s) = self.type_cache.get(t) {
            return s.clone();
        }
        let mut s = String::new();
        write_type(&mut s, t, &self.aliases);
        self.type_cache.insert(t.clone(), s.clone());
        s
    }

    fn attrs_str(&self, a: &Attrs) -> String {
        let mut s = String::from("{");
        for (i, (k, v)) in a.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            if is_bare_ident(k) {
                s.push_str(k);
            } else {
                write_string(&mut s, k);
            }
            s.push_str(" = ");
            write_attr(&mut s, v, &self.aliases);
        }
        s.push('}');
        s
    }

    fn function(&mut self, f: &Function, indent: &str) {
        let mut names: HashMap<ValueId, String> = HashMap::new();
        let _ = write!(self.out, "{indent}func.func ");
        write_symbol(&mut self.out, &f.name);
        self.out.push('(');
        for (i, a) in f.args().iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            let name = match f.arg_names.get(i).and_then(|n| n.as_ref()) {
                Some(n) if is_value_name(n) => format!("%{n}"),
                Some(n) => {
                    let mut s = String::from("%");
                    write_string(&mut s, n);
                    s
                }
                None => format!("%arg{i}"),
            };
            let t = self.ty(f.ty(*a));
            let _ = write!(self.out, "{name}: {t}");
            names.insert(*a, name);
        }
        self.out.push(')');
        let ret = f.returned();
        if !ret.is_empty() || !f.result_names.is_empty() {
            self.out.push_str(" -> (");
            for (i, v) in ret.iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                let t = self.ty(f.ty(*v));
                self.out.push_str(&t);
                if let Some(Some(n)) = f.result_names.get(i) {
                    self.out.push_str(" {name = ");
                    write_string(&mut self.out, n);
                    self.out.push('}');
                }
            }
            self.out.push(')');
        }
        if !f.attrs.is_empty() {
            let a = self.attrs_str(&f.attrs);
            let _ = write!(self.out, " attributes {a}");
        }
        self.out.push_str(" {\n");
        let mut next = 0usize;
        for op in f.block_ops(f.entry()) {
            let o = f.op(op);
            self.out.push_str(indent);
            self.out.push_str("  ");
            for (i, r) in o.results.iter().enumerate() {
                let n = format!("%{next}");
                next += 1;
                if i > 0 {
                    self.out.push_str(", ");
                }
                self.out.push_str(&n);
                names.insert(*r, n);
            }
            if !o.results.is_empty() {
                self.out.push_str(" = ");
            }
            self.out.push_str(o.kind.name());
            for (i, v) in o.operands.iter().enumerate() {
                self.out.push_str(if i == 0 { " " } else { ", " });
                match names.get(v) {
                    Some(n) => self.out.push_str(n),
                    None => self.out.push_str("%<undefined>"),
                }
            }
            if !o.attrs.is_empty() {
                self.out.push(' ');
                let a = self.attrs_str(&o.attrs);
                self.out.push_str(&a);
            }
            match o.results.len() {
                0 => {}
                1 => {
                    let t = self.ty(f.ty(o.results[0]));
                    let _ = write!(self.out, " : {t}");
                }
                _ => {
                    let ts: Vec<String> = o.results.iter().map(|r| self.ty(f.ty(*r))).collect();
                    let _ = write!(self.out, " : ({})", ts.join(", "));
                }
            }
            if let Some(n) = &o.name {
                self.out.push_str(" loc(");
                write_string(&mut self.out, n);
                self.out.push(')');
            }
            self.out.push('\n');
        }
        let _ = writeln!(self.out, "{indent}}}");
    }
}

fn is_value_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && n.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '.')
        && !is_positional_arg(n)
}

/// `argN` names are reserved for unnamed arguments.
pub(crate) fn is_positional_arg(n: &str) -> bool {
    n.strip_prefix("arg")
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

fn encoding_len(e: &Encoding) -> usize {
    match e {
        Encoding::PerTensor { .. } => 0,
        Encoding::PerAxis { scales, .. } => scales.len(),
        Encoding::Blockwise { block_scales, .. } => block_scales.len(),
    }
}

fn write_symbol(s: &mut String, name: &str) {
    s.push('@');
    if is_bare_ident(name) {
        s.push_str(name);
    } else {
        write_string(s, name);
    }
}

/// Writes a quoted, escaped string.
pub fn write_string(s: &mut String, v: &str) {
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(s, "\\{:02X}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

fn write_f64(s: &mut String, v: f64) {
    if v.is_nan() {
        s.push_str("nan");
    } else if v.is_infinite() {
        s.push_str(if v > 0.0 { "inf" } else { "-inf" });
    } else {
        let _ = write!(s, "{v:?}");
    }
}

fn write_f32(s: &mut String, v: f32) {
    if v.is_nan() {
        s.push_str("nan");
    } else if v.is_infinite() {
        s.push_str(if v > 0.0 { "inf" } else { "-inf" });
    } else {
        let _ = write!(s, "{v:?}");
    }
}

fn write_attr(s: &mut String, a: &Attr, aliases: &AliasMap) {
    match a {
        Attr::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
        Attr::Int(i) => {
            let _ = write!(s, "{i}");
        }
        Attr::Float(f) => write_f64(s, *f),
        Attr::Str(v) => write_string(s, v),
        Attr::Ints(v) => {
            s.push('[');
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                let _ = write!(s, "{x}");
            }
            s.push(']');
        }
        Attr::Floats(v) => {
            if v.is_empty() {
                s.push_str("array<f64>[]");
                return;
            }
            s.push('[');
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                write_f64(s, *x);
            }
            s.push(']');
        }
        Attr::Type(t) => write_type(s, t, aliases),
    }
}

fn write_type(s: &mut String, t: &Type, aliases: &AliasMap) {
    s.push_str("tensor<");
    for d in t.shape() {
        let _ = write!(s, "{d}x");
    }
    write_elem(s, t.elem(), aliases);
    s.push('>');
}

fn write_elem(s: &mut String, e: &ElemType, aliases: &AliasMap) {
    match e {
        ElemType::Quant(q) => {
            if !aliases.is_empty() {
                if let Some(i) = aliases.get(&ElemKey(q.clone())) {
                    let _ = write!(s, "!q{i}");
                    return;
                }
            }
            write_quant(s, q)
        }
        other => s.push_str(other.scalar_name().unwrap_or("?")),
    }
}

fn write_f32_array(s: &mut String, v: &[f32]) {
    if v.len() > INLINE_ARRAY_MAX {
        s.push_str("hex\"");
        for x in v {
            for b in x.to_le_bytes() {
                let _ = write!(s, "{b:02x}");
            }
        }
        s.push('"');
        return;
    }
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        write_f32(s, *x);
    }
    s.push(']');
}

fn write_int_array<T: std::fmt::Display + Copy>(
    s: &mut String,
    v: &[T],
    bytes: impl Fn(T) -> Vec<u8>,
) {
    if v.len() > INLINE_ARRAY_MAX {
        s.push_str("hex\"");
        for x in v {
            for b in bytes(*x) {
                let _ = write!(s, "{b:02x}");
            }
        }
        s.push('"');
        return;
    }
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{x}");
    }
    s.push(']');
}

fn write_quant(s: &mut String, q: &QuantType) {
    let st = q.storage.name();
    let ex = q.expressed.name();
    match &q.encoding {
        Encoding::PerTensor { scale, offset } => {
            let _ = write!(s, "!quant.uniform<{st}:{ex}, scale = ");
            write_f32(s, *scale);
            let _ = write!(s, ", offset = {offset}>");
        }
        Encoding::PerAxis {
            axis,
            scales,
            offsets,
        } => {
            let _ = write!(s, "!quant.per_axis<{st}:{ex}, axis = {axis}, scales = ");
            write_f32_array(s, scales);
            s.push_str(", offsets = ");
            write_int_array(s, offsets, |x: i32| x.to_le_bytes().to_vec());
            s.push('>');
        }
        Encoding::Blockwise {
            axis,
            block_size,
            block_scale_bits,
            block_scales,
            channel_scales,
        } => {
            let _ = write!(
                s,
                "!quant.lpbq<{st}:{ex}, axis = {axis}, block = {block_size}, bits = {block_scale_bits}, channel_scales = "
            );
            write_f32_array(s, channel_scales);
            s.push_str(", block_scales = ");
            write_int_array(s, block_scales, |x: u8| vec![x]);
            s.push('>');
        }
    }
}
