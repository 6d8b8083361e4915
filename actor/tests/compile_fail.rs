//! Misuse of `dispatch!` fails to compile with a readable message.

#[test]
fn compile_fail() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
