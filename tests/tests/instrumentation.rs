//! `--print-ir-after-failure` and verify-each with a pass that fails. None of the
//! registered passes can produce invalid IR, so this test registers two test-only
//! passes next to the real ones and runs the `mllm-opt` driver in-process:
//! `test-break-types` changes a result type so the IR no longer verifies (caught by
//! verify-each), `test-fail` returns an error itself.

use mllm_ir::{Function, Type};
use mllm_passes::driver::{run_opt, OptConfig};
use mllm_passes::{
    Anchor, FuncContext, Options, Pass, PassError, PassFilter, PassInfo, PassResult, Registry,
};

/// Gives the first op's result a type with one extra element.
struct BreakTypes;

impl Pass for BreakTypes {
    fn name(&self) -> &'static str {
        "test-break-types"
    }
    fn anchor(&self) -> Anchor {
        Anchor::Function
    }
    fn run_on_function(
        &mut self,
        f: &mut Function,
        _: &mut FuncContext<'_>,
    ) -> Result<PassResult, PassError> {
        let Some(op) = f
            .op_ids()
            .into_iter()
            .find(|o| !f.op(*o).results.is_empty())
        else {
            return Ok(PassResult::Unchanged);
        };
        let r = f.op(op).results[0];
        let t = f.ty(r).clone();
        let bigger = Type::tensor(vec![t.numel() + 1], t.elem().clone());
        f.set_ty(r, bigger);
        Ok(PassResult::Changed)
    }
}

/// Always fails.
struct Fail;

impl Pass for Fail {
    fn name(&self) -> &'static str {
        "test-fail"
    }
    fn anchor(&self) -> Anchor {
        Anchor::Function
    }
    fn run_on_function(
        &mut self,
        f: &mut Function,
        _: &mut FuncContext<'_>,
    ) -> Result<PassResult, PassError> {
        Err(PassError::Failed {
            pass: "test-fail".into(),
            message: format!("@{} cannot be processed", f.name),
        })
    }
}

fn registry() -> Registry {
    let mut r = Registry::with_all();
    r.register(PassInfo {
        name: "test-break-types",
        summary: "test only: breaks result types",
        anchor: Anchor::Function,
        options: &[],
        create: |_: &Options| Ok(Box::new(BreakTypes)),
    });
    r.register(PassInfo {
        name: "test-fail",
        summary: "test only: fails",
        anchor: Anchor::Function,
        options: &[],
        create: |_: &Options| Ok(Box::new(Fail)),
    });
    r
}

const INPUT: &str = "func.func @f(%x: tensor<2xf32>) -> (tensor<2xf32>) {
  %0 = nn.neg %x : tensor<2xf32>
  %1 = nn.neg %x : tensor<2xf32>
  %2 = nn.add %0, %1 : tensor<2xf32>
  func.return %2
}
";

fn config(pipeline: &str, after_failure: bool) -> OptConfig {
    OptConfig {
        pipeline: Some(pipeline.to_owned()),
        after_failure,
        ..Default::default()
    }
}

#[test]
fn verify_each_catches_a_pass_that_breaks_the_ir_and_dumps_it() {
    let cfg = config("builtin.module(func.func(cse,test-break-types,dce))", true);
    let out = run_opt(INPUT, "in.mlir", &cfg, &registry());
    assert!(!out.ok, "broken IR must fail verify-each");
    assert!(
        out.stdout.is_empty(),
        "no output module on failure: {}",
        out.stdout
    );
    let dump = "// -----// IR Dump After test-break-types Failed (func.func @f) //----- //";
    let at = out
        .stderr
        .find(dump)
        .unwrap_or_else(|| panic!("no failure dump in:\n{}", out.stderr));
    // The dump shows the IR as the failing pass left it: cse already merged the negs,
    // and the first result now has 3 elements.
    let after = &out.stderr[at..];
    assert!(after.contains("%0 = nn.neg %x : tensor<3xf32>"), "{after}");
    assert_eq!(after.matches("= nn.neg").count(), 1, "{after}");
    // The diagnostic points at the op (line 2 of the input) and names the pass.
    let diag = out
        .stderr
        .lines()
        .find(|l| l.contains(": error: "))
        .unwrap_or_else(|| panic!("no diagnostic in:\n{}", out.stderr));
    assert!(
        diag.starts_with("in.mlir:2:3: error: 'nn.neg' op"),
        "{diag}"
    );
    assert!(diag.ends_with("(after pass 'test-break-types')"), "{diag}");
    // dce never ran: no dump for it even with after-all printing.
    let cfg = OptConfig {
        print_after: PassFilter::All,
        ..config("builtin.module(func.func(cse,test-break-types,dce))", true)
    };
    let out = run_opt(INPUT, "in.mlir", &cfg, &registry());
    assert!(out.stderr.contains("IR Dump After cse"), "{}", out.stderr);
    assert!(!out.stderr.contains("IR Dump After dce"), "{}", out.stderr);
}

#[test]
fn failure_dump_is_off_by_default() {
    let cfg = config("builtin.module(func.func(test-break-types))", false);
    let out = run_opt(INPUT, "in.mlir", &cfg, &registry());
    assert!(!out.ok);
    assert!(!out.stderr.contains("IR Dump"), "{}", out.stderr);
    assert!(out.stderr.contains(": error: "), "{}", out.stderr);
}

#[test]
fn verify_each_false_defers_the_check_to_the_end() {
    // Without verify-each the broken IR is only caught by the final verification,
    // so no pass is blamed and no failure dump is printed.
    let cfg = OptConfig {
        verify_each: false,
        ..config("builtin.module(func.func(test-break-types,cse))", true)
    };
    let out = run_opt(INPUT, "in.mlir", &cfg, &registry());
    assert!(!out.ok);
    assert!(!out.stderr.contains("IR Dump"), "{}", out.stderr);
    assert!(!out.stderr.contains("after pass"), "{}", out.stderr);
    assert!(
        out.stderr.contains("in.mlir:2:3: error: 'nn.neg' op"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_failing_pass_is_reported_with_its_message_and_dump() {
    let cfg = config("builtin.module(func.func(test-fail))", true);
    let out = run_opt(INPUT, "in.mlir", &cfg, &registry());
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains("// -----// IR Dump After test-fail Failed (func.func @f) //----- //"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("@f cannot be processed"),
        "{}",
        out.stderr
    );
    // The dumped IR is the unchanged input function.
    assert_eq!(out.stderr.matches("= nn.neg").count(), 2, "{}", out.stderr);
}
