//! Every bad config under tests/fixtures fails with its specific message; `# expect:`
//! lines at the top of each file say what the error must contain.

use std::path::Path;

use portcullis::config::Config;

#[test]
fn every_bad_fixture_fails_with_its_message() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let expects: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        assert!(
            !expects.is_empty(),
            "{} has no `# expect:` line",
            path.display()
        );
        let err = Config::load(&path).expect_err(&format!("{} should be refused", path.display()));
        let msg = err.to_string();
        for want in expects {
            assert!(
                msg.contains(want),
                "{}:\n  wanted: {want}\n  got: {msg}",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} fixtures found");
}

#[test]
fn the_demo_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/portcullis.toml");
    let config = Config::load(&path).unwrap();
    assert_eq!(config.resource_roles.len(), 2);
    assert!(config.listen.postgres.is_some());
}

#[test]
fn a_missing_file_is_named() {
    let err = Config::load(Path::new("/nonexistent/portcullis.toml")).unwrap_err();
    assert!(
        err.to_string()
            .contains("/nonexistent/portcullis.toml: no such file")
    );
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[[groups]]\nname = \"g\"\n[[users]]\nname = \"alice\"\ngroups = [\"g\"]\npassword = \"Very-Secret-Literal\"\n",
    )
    .unwrap();
    let config = Config::load(&path).unwrap();
    assert!(!format!("{config:?}").contains("Very-Secret-Literal"));
}
