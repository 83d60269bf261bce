//! Compile errors of `#[listener]` and `#[derive(Message)]`, and code that must compile.

/// The `.stderr` files are rustc 1.95's output with every feature on, as `scripts/test` builds
/// (some messages name traits by path when the `pickle` feature adds a second `Message`).
#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
