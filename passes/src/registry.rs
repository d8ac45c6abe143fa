//! The explicit pass registry: every pass with its anchor, summary and typed
//! options, plus named pipelines. Nothing registers itself: [`crate::register_all`]
//! lists every pass.

use std::collections::BTreeMap;

use crate::pass::{Anchor, Pass, PassError};

/// Type of a pass option.
#[derive(Debug, Clone, Copy)]
pub enum OptKind {
    /// `true` / `false` (a bare key means `true`).
    Bool,
    /// Non-negative integer.
    UInt,
    /// Signed integer.
    Int,
    /// Floating-point number.
    Float,
    /// Free-form string.
    Str,
    /// One of a fixed set of words.
    Enum(&'static [&'static str]),
}

impl OptKind {
    fn describe(self) -> String {
        match self {
            OptKind::Bool => "a bool (true/false)".into(),
            OptKind::UInt => "an unsigned integer".into(),
            OptKind::Int => "an integer".into(),
            OptKind::Float => "a number".into(),
            OptKind::Str => "a string".into(),
            OptKind::Enum(v) => format!("one of {}", v.join(", ")),
        }
    }
}

/// Declaration of one option.
#[derive(Debug, Clone, Copy)]
pub struct OptSpec {
    /// Name (kebab-case).
    pub name: &'static str,
    /// Type.
    pub kind: OptKind,
    /// Default value, as text.
    pub default: &'static str,
    /// One-line help.
    pub help: &'static str,
}

/// A parsed option value.
#[derive(Debug, Clone, PartialEq)]
pub enum OptValue {
    /// Bool.
    Bool(bool),
    /// Integer (UInt and Int).
    Int(i64),
    /// Float.
    Float(f64),
    /// String or enum word.
    Str(String),
}

/// Typed option values of one pass instance (defaults filled in).
#[derive(Debug, Clone, Default)]
pub struct Options {
    values: BTreeMap<&'static str, OptValue>,
}

impl Options {
    /// Bool option (false if absent).
    pub fn bool(&self, name: &str) -> bool {
        matches!(self.values.get(name), Some(OptValue::Bool(true)))
    }
    /// Integer option (0 if absent).
    pub fn int(&self, name: &str) -> i64 {
        match self.values.get(name) {
            Some(OptValue::Int(i)) => *i,
            _ => 0,
        }
    }
    /// Unsigned option as usize (0 if absent).
    pub fn usize(&self, name: &str) -> usize {
        self.int(name).max(0) as usize
    }
    /// Float option (0 if absent).
    pub fn float(&self, name: &str) -> f64 {
        match self.values.get(name) {
            Some(OptValue::Float(f)) => *f,
            Some(OptValue::Int(i)) => *i as f64,
            _ => 0.0,
        }
    }
    /// String option ("" if absent).
    pub fn str(&self, name: &str) -> &str {
        match self.values.get(name) {
            Some(OptValue::Str(s)) => s,
            _ => "",
        }
    }
}

fn parse_value(pass: &str, spec: &OptSpec, raw: &str) -> Result<OptValue, PassError> {
    let bad = || {
        PassError::Pipeline(format!(
            "option '{}' of pass '{pass}' expects {}, got '{raw}'",
            spec.name,
            spec.kind.describe()
        ))
    };
    Ok(match spec.kind {
        OptKind::Bool => match raw {
            "" | "true" | "1" => OptValue::Bool(true),
            "false" | "0" => OptValue::Bool(false),
            _ => return Err(bad()),
        },
        OptKind::UInt => OptValue::Int(raw.parse::<u32>().map_err(|_| bad())? as i64),
        OptKind::Int => OptValue::Int(raw.parse::<i64>().map_err(|_| bad())?),
        OptKind::Float => OptValue::Float(raw.parse::<f64>().map_err(|_| bad())?),
        OptKind::Str => OptValue::Str(raw.trim_matches('"').to_owned()),
        OptKind::Enum(words) => {
            if words.contains(&raw) {
                OptValue::Str(raw.to_owned())
            } else {
                return Err(bad());
            }
        }
    })
}

/// A registered pass.
#[derive(Clone, Copy)]
pub struct PassInfo {
    /// Kebab-case name.
    pub name: &'static str,
    /// One-line description.
    pub summary: &'static str,
    /// Anchor op.
    pub anchor: Anchor,
    /// Options.
    pub options: &'static [OptSpec],
    /// Creates an instance from parsed options.
    pub create: fn(&Options) -> Result<Box<dyn Pass>, PassError>,
}

impl PassInfo {
    /// Parses raw `key=value` options against the declared ones.
    pub fn parse_options(&self, raw: &[(String, String)]) -> Result<Options, PassError> {
        let mut values = BTreeMap::new();
        for spec in self.options {
            values.insert(spec.name, parse_value(self.name, spec, spec.default)?);
        }
        for (k, v) in raw {
            let Some(spec) = self.options.iter().find(|s| s.name == k) else {
                let known: Vec<&str> = self.options.iter().map(|s| s.name).collect();
                let list = if known.is_empty() {
                    "it takes no options".to_string()
                } else {
                    format!("options: {}", known.join(", "))
                };
                return Err(PassError::Pipeline(format!(
                    "pass '{}' has no option '{k}' ({list})",
                    self.name
                )));
            };
            values.insert(spec.name, parse_value(self.name, spec, v)?);
        }
        Ok(Options { values })
    }
}

/// A named pipeline (e.g. `cleanup`).
#[derive(Debug, Clone, Copy)]
pub struct NamedPipeline {
    /// Name.
    pub name: &'static str,
    /// One-line description.
    pub summary: &'static str,
    /// Elements it expands to, anchored on `builtin.module` (without the anchor).
    pub elements: &'static str,
}

/// All passes and named pipelines.
#[derive(Default, Clone)]
pub struct Registry {
    passes: BTreeMap<&'static str, PassInfo>,
    pipelines: BTreeMap<&'static str, NamedPipeline>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }
    /// A registry holding every pass of this crate.
    pub fn with_all() -> Self {
        let mut r = Self::new();
        crate::register_all(&mut r);
        r
    }
    /// Registers a pass.
    pub fn register(&mut self, info: PassInfo) {
        self.passes.insert(info.name, info);
    }
    /// Registers a named pipeline.
    pub fn register_pipeline(&mut self, p: NamedPipeline) {
        self.pipelines.insert(p.name, p);
    }
    /// Looks a pass up.
    pub fn pass(&self, name: &str) -> Option<&PassInfo> {
        self.passes.get(name)
    }
    /// Looks a named pipeline up.
    pub fn pipeline(&self, name: &str) -> Option<&NamedPipeline> {
        self.pipelines.get(name)
    }
    /// Passes in name order.
    pub fn passes(&self) -> impl Iterator<Item = &PassInfo> {
        self.passes.values()
    }
    /// Named pipelines in name order.
    pub fn pipelines(&self) -> impl Iterator<Item = &NamedPipeline> {
        self.pipelines.values()
    }
    /// The closest known name, for "did you mean" hints.
    pub fn suggest(&self, name: &str) -> Option<&'static str> {
        self.passes
            .keys()
            .chain(self.pipelines.keys())
            .map(|k| (mllm_ir::parse::edit_distance(name, k), *k))
            .filter(|(d, _)| *d <= 3)
            .min()
            .map(|(_, k)| k)
    }
    /// `--list-passes` text.
    pub fn describe(&self) -> String {
        let mut s = String::from("Passes:\n");
        for p in self.passes.values() {
            s.push_str(&format!(
                "  {:<20} [{}] {}\n",
                p.name,
                p.anchor.op_name(),
                p.summary
            ));
            for o in p.options {
                s.push_str(&format!(
                    "      {}={} (default {}): {}\n",
                    o.name,
                    o.kind.describe(),
                    if o.default.is_empty() {
                        "\"\""
                    } else {
                        o.default
                    },
                    o.help
                ));
            }
        }
        s.push_str("Pipelines:\n");
        for p in self.pipelines.values() {
            s.push_str(&format!(
                "  {:<20} {} = builtin.module({})\n",
                p.name, p.summary, p.elements
            ));
        }
        s
    }
}
