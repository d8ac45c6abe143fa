//! `mllm-ir`: the typed SSA IR of the compiler.
//!
//! - [`types`]: interned tensor types; quantized element types carry their encoding.
//! - [`ops`]: the closed op set and its info table.
//! - [`function`], [`module`]: arenas of values/ops/blocks/regions with a linked-list layout.
//! - [`builder`]: op creation with inferred result types.
//! - [`verify`]: per-op verifier.
//! - [`print`], [`parse`]: the deterministic textual form and its parser.
//! - [`weights`]: the mmap-backed weight store that `builtin.weight` refers to.

pub mod attr;
pub mod builder;
pub mod equiv;
pub mod error;
pub mod function;
pub mod infer;
pub mod module;
pub mod ops;
pub mod parse;
pub mod print;
pub mod types;
pub mod verify;
pub mod weights;

pub use attr::{Attr, Attrs, AttrsExt};
pub use builder::{attrs, Builder};
pub use error::{Diagnostic, IrError, Location};
pub use function::{BlockId, Function, OpData, OpId, RegionId, ValueDef, ValueId};
pub use module::Module;
pub use ops::{OpInfo, OpKind};
pub use types::{ElemType, Encoding, Expressed, QuantType, Storage, Type};
pub use weights::{WDType, Weight, WeightBytes, WeightData, WeightStore};
