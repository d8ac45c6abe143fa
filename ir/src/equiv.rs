//! Structural equality of modules: same functions, ops, attributes, types, names and
//! dataflow, ignoring value ids, erased storage and source positions.

use std::collections::HashMap;

use crate::function::{Function, ValueId};
use crate::module::Module;

/// Compares two modules; `Err` describes the first difference.
pub fn module_eq(a: &Module, b: &Module) -> Result<(), String> {
    if a.name != b.name {
        return Err(format!("module names differ: {:?} vs {:?}", a.name, b.name));
    }
    if a.attrs != b.attrs {
        return Err("module attributes differ".into());
    }
    if a.functions.len() != b.functions.len() {
        return Err(format!(
            "{} functions vs {}",
            a.functions.len(),
            b.functions.len()
        ));
    }
    for (fa, fb) in a.functions.iter().zip(&b.functions) {
        function_eq(fa, fb).map_err(|e| format!("@{}: {e}", fa.name))?;
    }
    Ok(())
}

/// Compares two functions; `Err` describes the first difference.
pub fn function_eq(a: &Function, b: &Function) -> Result<(), String> {
    if a.name != b.name {
        return Err(format!("names differ: {} vs {}", a.name, b.name));
    }
    if a.attrs != b.attrs || a.arg_names != b.arg_names || a.result_names != b.result_names {
        return Err("attributes or argument/result names differ".into());
    }
    if a.args().len() != b.args().len() {
        return Err("argument counts differ".into());
    }
    let mut map: HashMap<ValueId, ValueId> = HashMap::new();
    for (i, (x, y)) in a.args().iter().zip(b.args()).enumerate() {
        if a.ty(*x) != b.ty(*y) {
            return Err(format!(
                "argument #{i} types differ: {} vs {}",
                a.ty(*x),
                b.ty(*y)
            ));
        }
        map.insert(*x, *y);
    }
    let oa = a.op_ids();
    let ob = b.op_ids();
    if oa.len() != ob.len() {
        return Err(format!("{} ops vs {}", oa.len(), ob.len()));
    }
    for (i, (x, y)) in oa.iter().zip(&ob).enumerate() {
        let (x, y) = (a.op(*x), b.op(*y));
        let here = format!("op #{i} ({})", x.kind.name());
        if x.kind != y.kind {
            return Err(format!(
                "{here}: kinds differ ({} vs {})",
                x.kind.name(),
                y.kind.name()
            ));
        }
        if x.attrs != y.attrs {
            return Err(format!(
                "{here}: attributes differ: {:?} vs {:?}",
                x.attrs, y.attrs
            ));
        }
        if x.name != y.name {
            return Err(format!(
                "{here}: names differ: {:?} vs {:?}",
                x.name, y.name
            ));
        }
        if x.operands.len() != y.operands.len() || x.results.len() != y.results.len() {
            return Err(format!("{here}: operand or result counts differ"));
        }
        for (j, (p, q)) in x.operands.iter().zip(&y.operands).enumerate() {
            if map.get(p) != Some(q) {
                return Err(format!("{here}: operand #{j} comes from a different value"));
            }
        }
        for (p, q) in x.results.iter().zip(&y.results) {
            if a.ty(*p) != b.ty(*q) {
                return Err(format!(
                    "{here}: result types differ: {} vs {}",
                    a.ty(*p),
                    b.ty(*q)
                ));
            }
            map.insert(*p, *q);
        }
    }
    Ok(())
}
