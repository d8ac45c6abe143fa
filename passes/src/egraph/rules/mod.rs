//! Rule sets of the e-graph driver, one theme per file. See `README.md` here.

pub mod canonical;
pub mod layout;
pub mod lpbq;
pub mod slicing;

use crate::egraph::Rule;

/// Every rule, by set name (`lpbq` is not here: its rules need a weight-store context,
/// see [`lpbq::LpbqFold::rules`]).
pub fn rule_set(name: &str) -> Option<Vec<&'static dyn Rule>> {
    match name {
        "canonical" => Some(canonical::RULES.to_vec()),
        "layout" => Some(layout::RULES.to_vec()),
        "slicing" => Some(slicing::RULES.to_vec()),
        _ => None,
    }
}
