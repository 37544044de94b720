//! The docs a new user reads first say what issue 9 asks of them (the examples themselves
//! run as doc tests).

fn read(path: &str) -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_owned() + path).unwrap()
}

/// Where a heading is, or a failure naming it.
fn at(text: &str, heading: &str) -> usize {
    text.find(heading)
        .unwrap_or_else(|| panic!("no heading `{heading}`"))
}

/// Asserts that the section of `text` from heading `from` to heading `to` comes first and
/// does what a new user comes for: open an image file, list /etc with each file's layer,
/// read a file.
fn opens_an_image_file(text: &str, from: &str, to: &str, whose: &str) {
    let (start, end) = (at(text, from), at(text, to));
    assert!(start < end, "{whose}: `{from}` comes before `{to}`");
    for step in [
        "archive::load(",
        "read_dir(\"etc\")",
        ".layer()",
        "tree.read(",
    ] {
        assert!(
            text[start..end].contains(step),
            "{whose}: the first example lacks {step}"
        );
    }
}

#[test]
fn readme_and_tour_open_with_an_image_file() {
    opens_an_image_file(
        &read("README.md"),
        "## Open an image file",
        "## A short example",
        "README",
    );
    opens_an_image_file(
        &read("src/lib.rs"),
        "//! ## Open an image file",
        "//! ## A tour",
        "crate tour",
    );
}

#[test]
fn debug_builds_are_usable_and_the_readme_says_how() {
    let profile = "[profile.dev.package.\"*\"]\nopt-level = 3";
    assert!(
        read("Cargo.toml").contains(profile),
        "Cargo.toml optimises dependencies"
    );
    let readme = read("README.md");
    assert!(
        readme.contains(profile),
        "the README shows the same profile"
    );
}
