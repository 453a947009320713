//! What `#[webhook_handlers]` accepts and what it says about mistakes, pinned by
//! trybuild. Regenerate the `.stderr` files with `TRYBUILD=overwrite` and read every
//! diff.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
