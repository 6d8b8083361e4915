//! Misuse fails to compile with a readable message: `dispatch!` without arms, an `ask` of a message without a reply type, a typed reference sent what its service does not take or expected to answer another type, a service served without a handler for one of its requests.

#[test]
fn compile_fail() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
