//! Graphviz (`dot`) view of functions: one node per argument and op, one edge per
//! use, labelled with the value's type.

use std::collections::HashMap;
use std::fmt::Write;

use mllm_ir::{Function, Module, ValueId};

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Renders one function as a `digraph`.
pub fn function_to_dot(f: &Function) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "digraph \"{}\" {{", esc(&f.name));
    s.push_str("  rankdir=TB;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n");
    let mut src: HashMap<ValueId, String> = HashMap::new();
    for (i, a) in f.args().iter().enumerate() {
        let name = f.arg_names[i].clone().unwrap_or_else(|| format!("arg{i}"));
        let _ = writeln!(
            s,
            "  a{i} [shape=ellipse, label=\"%{}\\n{}\"];",
            esc(&name),
            esc(&f.ty(*a).to_string())
        );
        src.insert(*a, format!("a{i}"));
    }
    for (n, op) in f.block_ops(f.entry()).enumerate() {
        let o = f.op(op);
        let mut label = o.kind.name().to_string();
        if let Some(nm) = &o.name {
            let _ = write!(label, "\\n{}", esc(nm));
        }
        if let Some(mllm_ir::Attr::Str(w)) = o.attrs.get("name") {
            let _ = write!(label, "\\n\\\"{}\\\"", esc(w));
        }
        let _ = writeln!(s, "  n{n} [label=\"{label}\"];");
        for v in &o.operands {
            if let Some(from) = src.get(v) {
                let _ = writeln!(
                    s,
                    "  {from} -> n{n} [label=\"{}\"];",
                    esc(&f
                        .ty(*v)
                        .shape()
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join("x"))
                );
            }
        }
        for r in &o.results {
            src.insert(*r, format!("n{n}"));
        }
    }
    s.push_str("}\n");
    s
}

/// Renders the named function (or every function) of a module.
pub fn module_to_dot(m: &Module, func: Option<&str>) -> Result<String, String> {
    match func {
        Some(name) => m
            .function(name)
            .map(function_to_dot)
            .ok_or_else(|| format!("no function @{name} in the module")),
        None => Ok(m.functions.iter().map(function_to_dot).collect()),
    }
}
