//! The example configurations under `config/` are loaded and validated, so the docs
//! cannot rot.

use callwatch::config::Config;

#[test]
fn every_example_config_loads_and_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let v = Config::load_validated(Some(&path))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(v.extensions.contains(b"8001"), "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 1, "no example config found in {}", dir.display());
}

#[test]
fn the_example_roster_names_its_agents() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/callwatch.toml");
    let v = Config::load_validated(Some(&path)).unwrap();
    let a = v.roster.lookup("8001").expect("8001 in config/agents.csv");
    assert_eq!(a.agent_id, "A1024");
    assert_eq!(a.name.as_deref(), Some("李娜"));
}
