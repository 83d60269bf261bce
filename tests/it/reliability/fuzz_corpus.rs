//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the very functions the
//! `cargo fuzz` targets call (`fuzz/src/lib.rs`, compiled here as a module), so CI checks every
//! input the fuzzer kept: each one decodes or is rejected with a typed error, none panics.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

#[path = "../../../fuzz/src/lib.rs"]
mod targets;

fn corpus_files(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|error| {
        panic!(
            "the fuzz corpus {} is missing ({error}); it is committed with the fuzz target \
             (see fuzz/README.md)",
            dir.display()
        )
    });
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a corpus directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "the fuzz corpus {} is empty: nothing would be replayed",
        dir.display()
    );
    files
}

#[test]
fn every_fuzz_corpus_input_decodes_or_is_rejected_with_a_typed_error() {
    let mut panicked = Vec::new();
    for &target in targets::TARGETS {
        let (mut decoded, mut rejected) = (0, 0);
        for file in corpus_files(target) {
            let data = std::fs::read(&file).expect("a readable corpus file");
            let outcome = catch_unwind(AssertUnwindSafe(|| targets::run(target, &data)));
            match outcome {
                Err(_) => panicked.push(file.display().to_string()),
                Ok(None) => panic!("`{target}` is listed in TARGETS but does not run"),
                Ok(Some(Ok(value))) => {
                    // Something was decoded: the wire targets also say from which layout.
                    if target != "pickle_decode" {
                        assert!(value.message.is_some(), "{}", file.display());
                    }
                    // The decoded value is plain data: it is written back as JSON.
                    assert!(serde_json::to_string(&value.value).is_ok());
                    decoded += 1;
                }
                Ok(Some(Err(rejection))) => {
                    assert!(!rejection.to_string().is_empty(), "{rejection:?}");
                    rejected += 1;
                }
            }
        }
        eprintln!("fuzz corpus {target}: {decoded} decoded, {rejected} rejected");
        // The seeds are valid messages: a corpus that only fails means the target broke.
        assert!(decoded > 0, "no input of the `{target}` corpus decodes");
    }
    assert!(
        panicked.is_empty(),
        "these corpus inputs panic: {panicked:#?}"
    );
}

#[test]
fn an_unknown_target_runs_nothing() {
    assert!(targets::run("no_such_target", b"x").is_none());
}
