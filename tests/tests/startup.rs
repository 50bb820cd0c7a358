//! `pagan-serve` start-up failures: each exits with a status that says what kind of failure
//! (2 bad flags, 1 cannot start) and a message that says which.

use std::net::TcpListener;
use std::process::Output;

use pagan_e2e::command;

fn serve(args: &[&str]) -> Output {
    command("pagan-serve")
        .args(args)
        .output()
        .expect("spawn pagan-serve")
}

fn stderr(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    )
}

#[test]
fn bad_flags_exit_2() {
    for args in [
        &["--bind", "not-an-address"][..],
        &["--provider", "tpu"],
        &["--max-images", "many"],
        &["--no-such-flag"],
    ] {
        let o = serve(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(args[0]),
            "{args:?}: the message names the flag: {}",
            stderr(&o)
        );
    }
}

#[test]
fn a_missing_models_folder_is_refused_with_the_fix() {
    let tmp = tempfile::tempdir().expect("tmp");
    let missing = tmp.path().join("nowhere");
    let o = serve(&[
        "--models",
        &missing.display().to_string(),
        "--bind",
        "127.0.0.1:0",
    ]);
    let text = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("nowhere") && text.contains("--models"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn a_port_in_use_is_refused_naming_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let o = serve(&["--models", &tmp.path().display().to_string(), "--bind", &addr]);
    let text = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains(&addr) && text.contains("cannot listen"), "{text}");
    drop(taken);
}

#[test]
fn a_public_address_without_a_token_is_refused_with_the_reason() {
    let tmp = tempfile::tempdir().expect("tmp");
    let models = tmp.path().display().to_string();
    let o = serve(&["--models", &models, "--bind", "0.0.0.0:0"]);
    let text = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("0.0.0.0:0") && text.contains("--token") && text.contains("--allow-unauthenticated"),
        "{text}"
    );
    let empty = tmp.path().join("empty-token");
    std::fs::write(&empty, "\n").expect("write");
    let o = serve(&[
        "--models",
        &models,
        "--bind",
        "127.0.0.1:0",
        "--token-file",
        &empty.display().to_string(),
    ]);
    let text = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("token is empty"), "{text}");
    // The override from the environment takes the usual words for true and false: with it,
    // start-up goes on to the next check (here the missing models folder).
    let missing = tmp.path().join("nowhere").display().to_string();
    for (word, code, says) in [
        ("1", 1, "nowhere"),
        ("yes", 1, "nowhere"),
        ("0", 1, "--allow-unauthenticated"),
        ("maybe", 2, "maybe"),
    ] {
        let o = command("pagan-serve")
            .env("PAGAN_ALLOW_UNAUTHENTICATED", word)
            .args(["--models", &missing, "--bind", "0.0.0.0:0"])
            .output()
            .expect("spawn pagan-serve");
        let text = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{word}: {text}");
        assert!(text.contains(says), "{word}: {text}");
    }
}
