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

#[test]
fn readme_and_tour_open_with_an_image_file() {
    let readme = read("README.md");
    let first_example = at(&readme, "## Open an image file");
    assert!(first_example < at(&readme, "## A short example"));
    let section = &readme[first_example..at(&readme, "## A short example")];
    for step in [
        "archive::load(",
        "read_dir(\"etc\")",
        ".layer()",
        "tree.read(",
    ] {
        assert!(
            section.contains(step),
            "the README's first example lacks {step}"
        );
    }
    let lib = read("src/lib.rs");
    let tour = at(&lib, "//! ## Open an image file");
    assert!(tour < at(&lib, "//! ## A tour"));
    let section = &lib[tour..at(&lib, "//! ## A tour")];
    for step in [
        "archive::load(",
        "read_dir(\"etc\")",
        ".layer()",
        "tree.read(",
    ] {
        assert!(
            section.contains(step),
            "the tour's first example lacks {step}"
        );
    }
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
