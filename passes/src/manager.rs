//! Pass managers anchored on op names, built from a parsed pipeline, with
//! verify-each and instrumentation hooks (IR printing, timing).

use std::io::Write;
use std::time::{Duration, Instant};

use mllm_ir::print::{print_function, print_module};
use mllm_ir::verify::{verify_function, verify_module};
use mllm_ir::{Function, IrError, Module};

use crate::pass::{Anchor, FuncContext, Pass, PassError, PassResult, PassStats};
use crate::pipeline::{parse_pipeline, Element, Pipeline};
use crate::registry::Registry;

/// The IR a pass ran on, for instrumentation.
#[derive(Clone, Copy)]
pub enum IrUnit<'a> {
    /// A module pass.
    Module(&'a Module),
    /// A function pass.
    Function(&'a Function),
}

impl IrUnit<'_> {
    /// Textual form.
    pub fn print(&self) -> String {
        match self {
            IrUnit::Module(m) => print_module(m),
            IrUnit::Function(f) => print_function(f),
        }
    }
    /// `builtin.module` or `func.func @name`.
    pub fn describe(&self) -> String {
        match self {
            IrUnit::Module(_) => "builtin.module".into(),
            IrUnit::Function(f) => format!("func.func @{}", f.name),
        }
    }
}

/// Hooks around every pass execution.
pub trait Instrumentation {
    /// Before a pass runs on `ir`.
    fn before_pass(&mut self, _pass: &str, _ir: IrUnit<'_>) {}
    /// After a pass succeeded.
    fn after_pass(
        &mut self,
        _pass: &str,
        _ir: IrUnit<'_>,
        _result: PassResult,
        _stats: &PassStats,
        _time: Duration,
    ) {
    }
    /// After a pass failed.
    fn after_failed(&mut self, _pass: &str, _ir: IrUnit<'_>, _err: &PassError) {}
}

enum Item {
    Pass(Box<dyn Pass>),
    Nested(PassManager),
}

/// A pass manager anchored on an op name.
pub struct PassManager {
    anchor: Anchor,
    items: Vec<Item>,
    /// Verify after every pass that changed the IR (on by default).
    pub verify_each: bool,
}

impl PassManager {
    /// An empty manager anchored on `anchor`.
    pub fn new(anchor: Anchor) -> Self {
        PassManager {
            anchor,
            items: Vec::new(),
            verify_each: true,
        }
    }

    /// Parses `text` and builds the manager with passes from `registry`.
    pub fn parse(text: &str, registry: &Registry) -> Result<PassManager, PassError> {
        let p = parse_pipeline(text)?;
        Self::from_pipeline(&p, registry)
    }

    /// Builds a manager from a parsed pipeline.
    pub fn from_pipeline(p: &Pipeline, registry: &Registry) -> Result<PassManager, PassError> {
        if p.anchor != "builtin.module" {
            return Err(PassError::Pipeline(format!(
                "col {}: a pipeline must be anchored on 'builtin.module', found '{}'",
                p.col, p.anchor
            )));
        }
        let mut pm = PassManager::new(Anchor::Module);
        pm.add_elements(&p.elements, registry)?;
        Ok(pm)
    }

    fn add_elements(&mut self, elements: &[Element], registry: &Registry) -> Result<(), PassError> {
        for e in elements {
            match e {
                Element::Nested(n) => {
                    let anchor = match n.anchor.as_str() {
                        "func.func" => Anchor::Function,
                        "builtin.module" => Anchor::Module,
                        other => {
                            return Err(PassError::Pipeline(format!(
                                "col {}: unknown anchor op '{other}' (expected 'func.func')",
                                n.col
                            )))
                        }
                    };
                    if anchor == Anchor::Module || self.anchor == Anchor::Function {
                        return Err(PassError::Pipeline(format!(
                            "col {}: '{}' cannot be nested under '{}'",
                            n.col,
                            n.anchor,
                            self.anchor.op_name()
                        )));
                    }
                    let mut sub = PassManager::new(anchor);
                    sub.add_elements(&n.elements, registry)?;
                    self.items.push(Item::Nested(sub));
                }
                Element::Pass { name, options, col } => {
                    if let Some(np) = registry.pipeline(name) {
                        if self.anchor != Anchor::Module {
                            return Err(PassError::Pipeline(format!(
                                "col {col}: pipeline '{name}' runs on 'builtin.module' and cannot be nested under '{}'",
                                self.anchor.op_name()
                            )));
                        }
                        if !options.is_empty() {
                            return Err(PassError::Pipeline(format!(
                                "col {col}: pipeline '{name}' takes no options"
                            )));
                        }
                        let inner = parse_pipeline(&format!("builtin.module({})", np.elements))?;
                        self.add_elements(&inner.elements, registry)?;
                        continue;
                    }
                    let Some(info) = registry.pass(name) else {
                        let hint = registry
                            .suggest(name)
                            .map(|s| format!(" (did you mean '{s}'?)"))
                            .unwrap_or_default();
                        return Err(PassError::Pipeline(format!(
                            "col {col}: unknown pass '{name}'{hint}; see --list-passes"
                        )));
                    };
                    if info.anchor != self.anchor {
                        let msg = match info.anchor {
                            Anchor::Function => format!(
                                "col {col}: pass '{name}' runs on 'func.func' ops but is nested under '{}': did you mean to nest under func.func? e.g. builtin.module(func.func({name}))",
                                self.anchor.op_name()
                            ),
                            Anchor::Module => format!(
                                "col {col}: pass '{name}' runs on 'builtin.module' and cannot be nested under '{}'; move it out of func.func(...)",
                                self.anchor.op_name()
                            ),
                        };
                        return Err(PassError::Pipeline(msg));
                    }
                    let opts = info.parse_options(options).map_err(|e| match e {
                        PassError::Pipeline(m) => PassError::Pipeline(format!("col {col}: {m}")),
                        e => e,
                    })?;
                    self.items.push(Item::Pass((info.create)(&opts)?));
                }
            }
        }
        Ok(())
    }

    /// Sets verify-each on this manager and all nested ones.
    pub fn set_verify_each(&mut self, on: bool) {
        self.verify_each = on;
        for i in &mut self.items {
            if let Item::Nested(n) = i {
                n.set_verify_each(on);
            }
        }
    }

    /// Number of passes (recursively).
    pub fn len(&self) -> usize {
        self.items
            .iter()
            .map(|i| match i {
                Item::Pass(_) => 1,
                Item::Nested(n) => n.len(),
            })
            .sum()
    }

    /// Whether the manager holds no pass.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs the pipeline on a module.
    pub fn run(
        &mut self,
        m: &mut Module,
        instr: &mut [&mut dyn Instrumentation],
    ) -> Result<PassResult, PassError> {
        let verify = self.verify_each;
        let mut any = PassResult::Unchanged;
        for item in &mut self.items {
            match item {
                Item::Pass(p) => {
                    let check = verify.then_some(verify_module as Verifier<Module>);
                    any = any.or(instrumented(
                        p.name(),
                        m,
                        |m| IrUnit::Module(m),
                        check,
                        instr,
                        |m, stats| p.run_on_module(m, stats),
                    )?);
                }
                Item::Nested(n) => {
                    let weights = &mut m.weights;
                    for f in m.functions.iter_mut() {
                        any = any.or(n.run_function(f, weights, verify, instr)?);
                    }
                }
            }
        }
        Ok(any)
    }

    fn run_function(
        &mut self,
        f: &mut Function,
        weights: &mut mllm_ir::WeightStore,
        verify: bool,
        instr: &mut [&mut dyn Instrumentation],
    ) -> Result<PassResult, PassError> {
        let mut any = PassResult::Unchanged;
        for item in &mut self.items {
            let Item::Pass(p) = item else { continue };
            let check = verify.then_some(verify_function as Verifier<Function>);
            any = any.or(instrumented(
                p.name(),
                f,
                |f| IrUnit::Function(f),
                check,
                instr,
                |f, stats| p.run_on_function(f, &mut FuncContext { weights, stats }),
            )?);
        }
        Ok(any)
    }
}

/// A verifier of the IR a pass ran on.
type Verifier<T> = fn(&T) -> Result<(), IrError>;

/// Runs one pass on `target` with the instrumentation hooks around it, timing it, and
/// verifying afterwards (with `check`) when it changed the IR.
fn instrumented<T>(
    name: &'static str,
    target: &mut T,
    unit: fn(&T) -> IrUnit<'_>,
    check: Option<Verifier<T>>,
    instr: &mut [&mut dyn Instrumentation],
    run: impl FnOnce(&mut T, &mut PassStats) -> Result<PassResult, PassError>,
) -> Result<PassResult, PassError> {
    for i in instr.iter_mut() {
        i.before_pass(name, unit(target));
    }
    let mut stats = PassStats::default();
    let t = Instant::now();
    let r = run(target, &mut stats);
    let dt = t.elapsed();
    let r = r.and_then(|r| {
        if let (Some(check), PassResult::Changed) = (check, r) {
            check(target).map_err(|e| PassError::Verify {
                pass: name.into(),
                source: e,
            })?;
        }
        Ok(r)
    });
    match &r {
        Ok(res) => {
            for i in instr.iter_mut() {
                i.after_pass(name, unit(target), *res, &stats, dt);
            }
        }
        Err(e) => {
            for i in instr.iter_mut() {
                i.after_failed(name, unit(target), e);
            }
        }
    }
    r
}

/// Which passes to print IR around.
#[derive(Debug, Clone, Default)]
pub enum PassFilter {
    /// None.
    #[default]
    None,
    /// Every pass.
    All,
    /// Passes with these names.
    Named(Vec<String>),
}

impl PassFilter {
    fn matches(&self, pass: &str) -> bool {
        match self {
            PassFilter::None => false,
            PassFilter::All => true,
            PassFilter::Named(v) => v.iter().any(|n| n == pass),
        }
    }
}

/// `--print-ir-*` instrumentation: writes IR dumps to a writer (stderr in `mllm-opt`).
pub struct IrPrinter<W: Write> {
    /// Print before these passes.
    pub before: PassFilter,
    /// Print after these passes.
    pub after: PassFilter,
    /// Only print "after" dumps when the pass changed the IR.
    pub only_on_change: bool,
    /// Print the IR after a pass fails.
    pub after_failure: bool,
    /// Destination.
    pub out: W,
}

impl<W: Write> Instrumentation for IrPrinter<W> {
    fn before_pass(&mut self, pass: &str, ir: IrUnit<'_>) {
        if self.before.matches(pass) {
            let _ = write!(
                self.out,
                "// -----// IR Dump Before {pass} ({}) //----- //\n{}\n",
                ir.describe(),
                ir.print()
            );
        }
    }
    fn after_pass(
        &mut self,
        pass: &str,
        ir: IrUnit<'_>,
        result: PassResult,
        _: &PassStats,
        _: Duration,
    ) {
        if self.after.matches(pass) && (!self.only_on_change || result == PassResult::Changed) {
            let _ = write!(
                self.out,
                "// -----// IR Dump After {pass} ({}) //----- //\n{}\n",
                ir.describe(),
                ir.print()
            );
        }
    }
    fn after_failed(&mut self, pass: &str, ir: IrUnit<'_>, _: &PassError) {
        if self.after_failure {
            let _ = write!(
                self.out,
                "// -----// IR Dump After {pass} Failed ({}) //----- //\n{}\n",
                ir.describe(),
                ir.print()
            );
        }
    }
}

/// Per-pass wall time and statistics (`--timing`).
#[derive(Default)]
pub struct Timing {
    rows: Vec<TimingRow>,
}

/// Pass name, total time, runs, statistics.
type TimingRow = (String, Duration, usize, Vec<(String, String)>);

impl Instrumentation for Timing {
    fn after_pass(
        &mut self,
        pass: &str,
        _: IrUnit<'_>,
        _: PassResult,
        stats: &PassStats,
        time: Duration,
    ) {
        let row = match self.rows.iter_mut().find(|r| r.0 == pass) {
            Some(r) => r,
            None => {
                self.rows
                    .push((pass.to_owned(), Duration::ZERO, 0, Vec::new()));
                let n = self.rows.len() - 1;
                &mut self.rows[n]
            }
        };
        row.1 += time;
        row.2 += 1;
        row.3.extend(stats.entries.iter().cloned());
    }
}

impl Timing {
    /// The report, in first-run order, wall time in seconds.
    pub fn report(&self) -> String {
        let total: Duration = self.rows.iter().map(|r| r.1).sum();
        let mut s = String::from(
            "===-------------------------------------------------------------------------===\n",
        );
        s.push_str("                          Pass execution timing report\n");
        s.push_str(
            "===-------------------------------------------------------------------------===\n",
        );
        s.push_str(&format!(
            "  Total Execution Time: {:.6} seconds\n\n",
            total.as_secs_f64()
        ));
        s.push_str("  ----Wall Time----  ----Runs----  ----Name----\n");
        for (name, t, n, stats) in &self.rows {
            let pct = if total.is_zero() {
                0.0
            } else {
                100.0 * t.as_secs_f64() / total.as_secs_f64()
            };
            s.push_str(&format!(
                "  {:.6} ({:5.1}%)  {:>12}  {name}\n",
                t.as_secs_f64(),
                pct,
                n
            ));
            for (k, v) in stats {
                s.push_str(&format!("      {k}: {v}\n"));
            }
        }
        s.push_str(&format!(
            "  {:.6} (100.0%)  {:>12}  Total\n",
            total.as_secs_f64(),
            ""
        ));
        s
    }
}
