//! What `#[webhook_handlers]` accepts and what it says about mistakes, pinned by
//! trybuild. Regenerate the `.stderr` files with `TRYBUILD=overwrite` and read every
//! diff. Each fail case's `main` builds a receiver and mounts it, so its `.stderr`
//! shows that the attribute's own error is the only one.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("fail/*.rs");
    cases.pass("pass/*.rs");
}
