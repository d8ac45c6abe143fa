//! Functions (graphs): append-only arenas of values, ops, blocks and regions, plus a
//! layout (a doubly linked list of ops per block) that gives program order. Erasing an
//! op unlinks it; its storage stays until the function is compacted.

use id_arena::{Arena, Id};
use smallvec::SmallVec;

use crate::attr::{Attr, Attrs};
use crate::ops::OpKind;
use crate::types::Type;
use crate::Location;

/// A value id (`%3`).
pub type ValueId = Id<ValueData>;
/// An op id.
pub type OpId = Id<OpData>;
/// A block id (`^bb0`).
pub type BlockId = Id<BlockData>;
/// A region id.
pub type RegionId = Id<RegionData>;

/// Where a value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueDef {
    /// Result `index` of an op.
    OpResult(OpId, u32),
    /// Argument `index` of a block.
    BlockArg(BlockId, u32),
}

/// A value: its type and definition.
#[derive(Debug, Clone)]
pub struct ValueData {
    /// Type of the value.
    pub ty: Type,
    /// Definition.
    pub def: ValueDef,
}

/// An op: kind, operands, results, attributes and its place in the layout.
#[derive(Debug, Clone)]
pub struct OpData {
    /// Which op.
    pub kind: OpKind,
    /// Operand values.
    pub operands: SmallVec<[ValueId; 4]>,
    /// Result values.
    pub results: SmallVec<[ValueId; 1]>,
    /// Attributes, sorted by name.
    pub attrs: Attrs,
    /// Nested regions (none of the current ops has any).
    pub regions: SmallVec<[RegionId; 1]>,
    /// Symbolic name of the op (`loc("model.layers.0.self_attn.q_proj")`), used by
    /// recipes and diagnostics. Part of the IR.
    pub name: Option<String>,
    /// Source position this op was parsed from (diagnostics only, not part of the IR).
    pub src: Option<Location>,
    /// Block the op is linked into, if any.
    pub parent: Option<BlockId>,
    /// Previous op in the block.
    pub prev: Option<OpId>,
    /// Next op in the block.
    pub next: Option<OpId>,
}

/// A basic block: arguments and a linked list of ops.
#[derive(Debug, Clone, Default)]
pub struct BlockData {
    /// Block arguments.
    pub args: SmallVec<[ValueId; 8]>,
    /// First op.
    pub first: Option<OpId>,
    /// Last op.
    pub last: Option<OpId>,
    /// Region holding this block.
    pub parent: Option<RegionId>,
}

/// A region: an ordered list of blocks.
#[derive(Debug, Clone, Default)]
pub struct RegionData {
    /// Blocks in order; the first is the entry block.
    pub blocks: SmallVec<[BlockId; 1]>,
}

/// A function (a graph): `func.func @name(args) -> (results) { body }`.
#[derive(Debug, Clone)]
pub struct Function {
    /// Symbol name (e.g. `model.0.s32`).
    pub name: String,
    /// Argument names, one per entry-block argument (graph input names).
    pub arg_names: Vec<Option<String>>,
    /// Result names, one per returned value (graph output names).
    pub result_names: Vec<Option<String>>,
    /// Function attributes.
    pub attrs: Attrs,
    /// Value storage.
    pub values: Arena<ValueData>,
    /// Op storage.
    pub ops: Arena<OpData>,
    /// Block storage.
    pub blocks: Arena<BlockData>,
    /// Region storage.
    pub regions: Arena<RegionData>,
    /// Body region.
    pub body: RegionId,
    /// Source position of the `func.func` keyword, if parsed.
    pub src: Option<Location>,
}

impl Function {
    /// A new function with an empty entry block.
    pub fn new(name: impl Into<String>) -> Function {
        let mut regions = Arena::new();
        let mut blocks = Arena::new();
        let body = regions.alloc(RegionData::default());
        let entry = blocks.alloc(BlockData {
            parent: Some(body),
            ..Default::default()
        });
        regions[body].blocks.push(entry);
        Function {
            name: name.into(),
            arg_names: Vec::new(),
            result_names: Vec::new(),
            attrs: Attrs::new(),
            values: Arena::new(),
            ops: Arena::new(),
            blocks,
            regions,
            body,
            src: None,
        }
    }

    /// The entry block.
    pub fn entry(&self) -> BlockId {
        self.regions[self.body].blocks[0]
    }

    /// Arguments of the entry block (graph inputs).
    pub fn args(&self) -> &[ValueId] {
        &self.blocks[self.entry()].args
    }

    /// Appends an argument to the entry block.
    pub fn add_arg(&mut self, ty: Type, name: Option<&str>) -> ValueId {
        let entry = self.entry();
        let idx = self.blocks[entry].args.len() as u32;
        let v = self.values.alloc(ValueData {
            ty,
            def: ValueDef::BlockArg(entry, idx),
        });
        self.blocks[entry].args.push(v);
        self.arg_names.push(name.map(str::to_owned));
        v
    }

    /// Type of a value.
    pub fn ty(&self, v: ValueId) -> &Type {
        &self.values[v].ty
    }

    /// Changes the type of a value (used by quantization passes).
    pub fn set_ty(&mut self, v: ValueId, ty: Type) {
        self.values[v].ty = ty;
    }

    /// An op.
    pub fn op(&self, id: OpId) -> &OpData {
        &self.ops[id]
    }

    /// An op, mutably.
    pub fn op_mut(&mut self, id: OpId) -> &mut OpData {
        &mut self.ops[id]
    }

    /// The op defining `v`, if it is an op result.
    pub fn def_op(&self, v: ValueId) -> Option<OpId> {
        match self.values[v].def {
            ValueDef::OpResult(op, _) => Some(op),
            ValueDef::BlockArg(..) => None,
        }
    }

    /// Creates an op (not linked into any block) with fresh result values.
    pub fn create_op(
        &mut self,
        kind: OpKind,
        operands: &[ValueId],
        result_types: &[Type],
        attrs: Attrs,
    ) -> OpId {
        let op = self.ops.alloc(OpData {
            kind,
            operands: operands.iter().copied().collect(),
            results: SmallVec::new(),
            attrs,
            regions: SmallVec::new(),
            name: None,
            src: None,
            parent: None,
            prev: None,
            next: None,
        });
        for (i, t) in result_types.iter().enumerate() {
            let v = self.values.alloc(ValueData {
                ty: t.clone(),
                def: ValueDef::OpResult(op, i as u32),
            });
            self.ops[op].results.push(v);
        }
        op
    }

    /// Links `op` at the end of `block`.
    pub fn append(&mut self, block: BlockId, op: OpId) {
        let last = self.blocks[block].last;
        {
            let o = &mut self.ops[op];
            o.parent = Some(block);
            o.prev = last;
            o.next = None;
        }
        match last {
            Some(l) => self.ops[l].next = Some(op),
            None => self.blocks[block].first = Some(op),
        }
        self.blocks[block].last = Some(op);
    }

    /// Links `op` right before `anchor` (which must be linked).
    pub fn insert_before(&mut self, anchor: OpId, op: OpId) {
        let block = self.ops[anchor].parent;
        let prev = self.ops[anchor].prev;
        {
            let o = &mut self.ops[op];
            o.parent = block;
            o.prev = prev;
            o.next = Some(anchor);
        }
        self.ops[anchor].prev = Some(op);
        match prev {
            Some(p) => self.ops[p].next = Some(op),
            None => {
                if let Some(b) = block {
                    self.blocks[b].first = Some(op)
                }
            }
        }
    }

    /// Unlinks `op` from its block ("erase"); its storage stays.
    pub fn unlink(&mut self, op: OpId) {
        let (block, prev, next) = {
            let o = &self.ops[op];
            (o.parent, o.prev, o.next)
        };
        let Some(block) = block else { return };
        match prev {
            Some(p) => self.ops[p].next = next,
            None => self.blocks[block].first = next,
        }
        match next {
            Some(n) => self.ops[n].prev = prev,
            None => self.blocks[block].last = prev,
        }
        let o = &mut self.ops[op];
        o.parent = None;
        o.prev = None;
        o.next = None;
    }

    /// Whether `op` is linked into a block.
    pub fn is_linked(&self, op: OpId) -> bool {
        self.ops[op].parent.is_some()
    }

    /// Ops of `block` in program order.
    pub fn block_ops(&self, block: BlockId) -> BlockOps<'_> {
        BlockOps {
            f: self,
            cur: self.blocks[block].first,
        }
    }

    /// Ops of the entry block in program order, collected (safe to mutate while iterating).
    pub fn op_ids(&self) -> Vec<OpId> {
        self.block_ops(self.entry()).collect()
    }

    /// Number of linked ops in the function.
    pub fn num_ops(&self) -> usize {
        self.regions[self.body]
            .blocks
            .iter()
            .map(|b| self.block_ops(*b).count())
            .sum()
    }

    /// The terminator (`func.return`) of the entry block, if present.
    pub fn terminator(&self) -> Option<OpId> {
        let last = self.blocks[self.entry()].last?;
        self.ops[last].kind.is_terminator().then_some(last)
    }

    /// Values returned by the function.
    pub fn returned(&self) -> &[ValueId] {
        match self.terminator() {
            Some(t) => &self.ops[t].operands,
            None => &[],
        }
    }

    /// Replaces every use of `from` by `to` in linked ops. O(ops); prefer a substitution
    /// map in passes that replace many values.
    pub fn replace_all_uses(&mut self, from: ValueId, to: ValueId) {
        for op in self.op_ids() {
            for o in self.ops[op].operands.iter_mut() {
                if *o == from {
                    *o = to;
                }
            }
        }
    }

    /// Number of uses of every value by linked ops, indexed by value index.
    pub fn use_counts(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.values.len()];
        for b in self.regions[self.body].blocks.iter() {
            for op in self.block_ops(*b) {
                for o in self.ops[op].operands.iter() {
                    counts[o.index()] += 1;
                }
            }
        }
        counts
    }

    /// Builder appending at the end of the entry block.
    pub fn builder(&mut self) -> crate::Builder<'_> {
        let b = self.entry();
        crate::Builder::at_end(self, b)
    }

    /// Sets an attribute on an op.
    pub fn set_attr(&mut self, op: OpId, key: &str, value: Attr) {
        self.ops[op].attrs.insert(key.to_owned(), value);
    }

    /// Rebuilds the function keeping only linked ops and their values, in program
    /// order (drops the storage of erased ops).
    pub fn compact(&self) -> Function {
        let mut out = Function::new(self.name.clone());
        out.attrs = self.attrs.clone();
        out.src = self.src.clone();
        out.result_names = self.result_names.clone();
        let mut map: std::collections::HashMap<ValueId, ValueId> = Default::default();
        for (i, a) in self.args().iter().enumerate() {
            let na = out.add_arg(self.ty(*a).clone(), self.arg_names[i].as_deref());
            map.insert(*a, na);
        }
        let entry = out.entry();
        for op in self.block_ops(self.entry()) {
            let o = &self.ops[op];
            let operands: SmallVec<[ValueId; 4]> = o
                .operands
                .iter()
                .map(|v| map.get(v).copied().unwrap_or(*v))
                .collect();
            let tys: SmallVec<[Type; 1]> = o.results.iter().map(|r| self.ty(*r).clone()).collect();
            let nop = out.create_op(o.kind, &operands, &tys, o.attrs.clone());
            out.ops[nop].name = o.name.clone();
            out.ops[nop].src = o.src.clone();
            for (r, nr) in o.results.iter().zip(out.ops[nop].results.clone()) {
                map.insert(*r, nr);
            }
            out.append(entry, nop);
        }
        out
    }
}

/// Iterator over the ops of a block in program order.
pub struct BlockOps<'a> {
    f: &'a Function,
    cur: Option<OpId>,
}

impl Iterator for BlockOps<'_> {
    type Item = OpId;
    fn next(&mut self) -> Option<OpId> {
        let c = self.cur?;
        self.cur = self.f.ops[c].next;
        Some(c)
    }
}
