//! The `meso` binary beside the running test or bench (`target/<profile>/meso`): agents run it as
//! the command executor, so it must be the one built from these sources. Under cargo it is brought
//! up to date first (a no-op when it is), in the same profile.

use std::path::PathBuf;

pub fn meso_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the running program's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<program>");
    let program = profile_dir.join("meso");
    let cargo = std::env::var("CARGO").ok();
    if cargo.is_some() || !program.exists() {
        let mut args = vec!["build", "-q", "-p", "meso-actors", "--bin", "meso"];
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            args.push("--release");
        }
        let ok = std::process::Command::new(cargo.as_deref().unwrap_or("cargo"))
            .args(&args)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "cannot build the meso binary (cargo {})",
            args.join(" ")
        );
    }
    assert!(program.exists(), "{} is missing", program.display());
    program
}
