//! `zkelect completions <shell>`: scripts generated from the command-line definition, so they
//! know every subcommand and option; bash's is checked with `bash -n`.

mod common;

use common::daemon::BIN;
use std::process::Command;

const SUBCOMMANDS: [&str; 7] = ["start", "run", "resign", "status", "ensemble", "bench", "completions"];

fn script(shell: &str) -> String {
    let out = Command::new(BIN).args(["completions", shell]).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn every_shell_gets_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let text = script(shell);
        assert!(text.len() > 500, "{shell}: {text}");
        for word in SUBCOMMANDS {
            assert!(text.contains(word), "the {shell} script lacks {word}");
        }
        for option in ["keep", "json", "timeout-ms", "vs-zookeeper"] {
            // fish writes `-l keep` where the others write `--keep`.
            let written = if shell == "fish" { format!("-l {option}") } else { format!("--{option}") };
            assert!(text.contains(&written), "the {shell} script lacks {written}");
        }
    }
    assert!(script("fish").contains("complete -c zkelect"));
    assert!(script("zsh").starts_with("#compdef zkelect"));
}

#[test]
fn bash_accepts_the_bash_script() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("zkelect.bash");
    std::fs::write(&path, script("bash")).expect("write");
    let out = Command::new("bash").arg("-n").arg(&path).output().expect("bash");
    assert!(out.status.success(), "bash -n: {}", String::from_utf8_lossy(&out.stderr));
    // And it registers the completion when sourced.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p zkelect", path.display()))
        .output()
        .expect("bash");
    assert!(String::from_utf8_lossy(&out.stdout).contains("zkelect"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = Command::new(BIN).args(["completions", "tcsh"]).output().expect("run");
    assert_eq!(out.status.code(), Some(64));
}
