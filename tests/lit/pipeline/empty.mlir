// pipeline: builtin.module()
// An empty pipeline and an empty module are fine.
module {
}
