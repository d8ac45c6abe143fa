//! Modules: an ordered list of functions plus module attributes and the weight store
//! their `builtin.weight` ops refer to.

use crate::attr::Attrs;
use crate::function::Function;
use crate::weights::WeightStore;
use crate::Location;

/// `module { func.func ... }`.
#[derive(Debug, Clone, Default)]
pub struct Module {
    /// Optional symbol name (`module @name`).
    pub name: Option<String>,
    /// Module attributes (e.g. `weights = "model.safetensors"`).
    pub attrs: Attrs,
    /// Functions in order.
    pub functions: Vec<Function>,
    /// Weights referenced by name from `builtin.weight` ops. Not part of the textual form.
    pub weights: WeightStore,
    /// Source position of the `module` keyword, if parsed.
    pub src: Option<Location>,
}

impl Module {
    /// An empty module.
    pub fn new() -> Module {
        Module::default()
    }

    /// The function named `name`.
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// The function named `name`, mutably.
    pub fn function_mut(&mut self, name: &str) -> Option<&mut Function> {
        self.functions.iter_mut().find(|f| f.name == name)
    }

    /// Total number of linked ops in all functions.
    pub fn num_ops(&self) -> usize {
        self.functions.iter().map(|f| f.num_ops()).sum()
    }
}
