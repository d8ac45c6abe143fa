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
use std::hash::{BuildHasherDefault, Hasher};

use crate::attr::{Attr, Attrs};
use crate::function::Function;
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
    write_type(&mut s, t, &AliasMap::default());
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

/// FxHash: a fast non-cryptographic hasher for the printer's and parser's internal
/// maps (keys come from the module being printed or parsed, not from an adversary
/// that could exploit collisions beyond slowing down one run).
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64)
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64)
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i)
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64)
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with [`FxHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

struct Printer {
    out: String,
    aliases: AliasMap,
    alias_defs: Vec<QuantType>,
    type_cache: FastMap<Type, String>,
}

/// Alias key: a quantized element type compared by content.
#[derive(PartialEq, Eq, Hash, Clone)]
struct ElemKey(QuantType);

type AliasMap = FastMap<ElemKey, usize>;

impl Printer {
    fn new(m: &Module) -> Printer {
        Printer::for_functions(&m.functions, &m.attrs)
    }

    fn for_functions(funcs: &[Function], mattrs: &Attrs) -> Printer {
        // Count quantized element types over distinct types (types are interned, so
        // counting by Type first keeps hashing of long encodings to once per type).
        let mut by_type: Vec<(Type, usize)> = Vec::new();
        let mut index: FastMap<Type, usize> = FastMap::default();
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
        let mut counts: FastMap<ElemKey, usize> = FastMap::default();
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
        let mut aliases = AliasMap::default();
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
            type_cache: FastMap::default(),
        }
    }

    fn finish(self) -> String {
        let mut head = String::new();
        for (i, q) in self.alias_defs.iter().enumerate() {
            let _ = write!(head, "!q{i} = ");
            write_quant(&mut head, q);
            head.push('\n');
        }
        head.reserve_exact(self.out.len());
        head.push_str(&self.out);
        head
    }

    fn module(&mut self, m: &Module) {
        self.out.push_str("module");
        if let Some(n) = &m.name {
            self.out.push(' ');
            write_symbol(&mut self.out, n);
        }
        if !m.attrs.is_empty() {
            self.out.push_str(" attributes ");
            write_attrs(&mut self.out, &m.attrs, &self.aliases);
        }
        self.out.push_str(" {\n");
        for f in &m.functions {
            self.function(f, "  ");
        }
        self.out.push_str("}\n");
    }

    /// Appends a type (with aliases) to the output.
    fn push_ty(&mut self, t: &Type) {
        if let Some(s) = self.type_cache.get(t) {
            self.out.push_str(s);
            return;
        }
        let mut s = String::new();
        write_type(&mut s, t, &self.aliases);
        self.out.push_str(&s);
        self.type_cache.insert(t.clone(), s);
    }

    fn function(&mut self, f: &Function, indent: &str) {
        // Printed name of every value, by value index: arguments keep their (escaped)
        // names, op results are numbered.
        let mut names: Vec<Option<Name>> = vec![None; f.values.len()];
        let mut arg_text: Vec<String> = Vec::with_capacity(f.args().len());
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
            self.out.push_str(&name);
            self.out.push_str(": ");
            self.push_ty(f.ty(*a));
            names[a.index()] = Some(Name::Arg(arg_text.len()));
            arg_text.push(name);
        }
        self.out.push(')');
        let ret = f.returned();
        if !ret.is_empty() || !f.result_names.is_empty() {
            self.out.push_str(" -> (");
            for (i, v) in ret.iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                self.push_ty(f.ty(*v));
                if let Some(Some(n)) = f.result_names.get(i) {
                    self.out.push_str(" {name = ");
                    write_string(&mut self.out, n);
                    self.out.push('}');
                }
            }
            self.out.push(')');
        }
        if !f.attrs.is_empty() {
            self.out.push_str(" attributes ");
            write_attrs(&mut self.out, &f.attrs, &self.aliases);
        }
        self.out.push_str(" {\n");
        let mut next = 0usize;
        for op in f.block_ops(f.entry()) {
            let o = f.op(op);
            self.out.push_str(indent);
            self.out.push_str("  ");
            for (i, r) in o.results.iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                self.out.push('%');
                push_usize(&mut self.out, next);
                names[r.index()] = Some(Name::Result(next));
                next += 1;
            }
            if !o.results.is_empty() {
                self.out.push_str(" = ");
            }
            self.out.push_str(o.kind.name());
            for (i, v) in o.operands.iter().enumerate() {
                self.out.push_str(if i == 0 { " " } else { ", " });
                match names.get(v.index()).copied().flatten() {
                    Some(Name::Arg(i)) => self.out.push_str(&arg_text[i]),
                    Some(Name::Result(n)) => {
                        self.out.push('%');
                        push_usize(&mut self.out, n);
                    }
                    None => self.out.push_str("%<undefined>"),
                }
            }
            if !o.attrs.is_empty() {
                self.out.push(' ');
                write_attrs(&mut self.out, &o.attrs, &self.aliases);
            }
            match o.results.len() {
                0 => {}
                1 => {
                    self.out.push_str(" : ");
                    self.push_ty(f.ty(o.results[0]));
                }
                _ => {
                    self.out.push_str(" : (");
                    for (i, r) in o.results.iter().enumerate() {
                        if i > 0 {
                            self.out.push_str(", ");
                        }
                        self.push_ty(f.ty(*r));
                    }
                    self.out.push(')');
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

/// How a value is printed: an argument's name or a result number.
#[derive(Clone, Copy)]
enum Name {
    Arg(usize),
    Result(usize),
}

/// Appends a decimal number without going through `fmt`.
fn push_usize(s: &mut String, mut n: usize) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for b in &buf[i..] {
        s.push(*b as char);
    }
}

/// Appends `bytes` as lowercase hex digits.
fn push_hex(s: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    s.reserve(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
}

/// `{k = v, ...}`.
fn write_attrs(s: &mut String, a: &Attrs, aliases: &AliasMap) {
    s.push('{');
    for (i, (k, v)) in a.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        if is_bare_ident(k) {
            s.push_str(k);
        } else {
            write_string(s, k);
        }
        s.push_str(" = ");
        write_attr(s, v, aliases);
    }
    s.push('}');
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
            push_hex(s, &x.to_le_bytes());
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

fn write_int_array<T: std::fmt::Display + Copy, const N: usize>(
    s: &mut String,
    v: &[T],
    bytes: impl Fn(T) -> [u8; N],
) {
    if v.len() > INLINE_ARRAY_MAX {
        s.push_str("hex\"");
        for x in v {
            push_hex(s, &bytes(*x));
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
            write_int_array(s, offsets, |x: i32| x.to_le_bytes());
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
            write_int_array(s, block_scales, |x: u8| [x]);
            s.push('>');
        }
    }
}
