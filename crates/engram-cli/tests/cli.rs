//! Command-line cases in `tests/cmd/*.toml`, run with trycmd against the built `engram` binary.

#[test]
fn cli_cases() {
    trycmd::TestCases::new().case("tests/cmd/*.toml");
}
