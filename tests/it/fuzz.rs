//! The fuzz targets' short run: every body of `indilookup::fuzz` gets the
//! committed seed corpus (`fuzz/seeds/<target>/`), every regression input
//! found so far (`fuzz/regressions/<target>/`), and then a fixed number of
//! mutations of them made by a seeded generator, so every run tries the same
//! inputs. The long, coverage-guided runs are done with `cargo fuzz` (see
//! docs/fuzzing.md).

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use indilookup::fuzz::{Body, Rng, TARGETS};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Mutated inputs per target. Small enough for a debug build to finish in
/// seconds; the fuzzer proper does the long search.
const MUTATIONS: usize = 20_000;

/// Values that parsers compare with: separators, NULs, length boundaries.
const BYTES: &[u8] = b"\0\x01\x7f\x80\xff\n\t :@%,=$/.{}#";
const INTS: &[i32] = &[
    0,
    1,
    -1,
    -2,
    4,
    128,
    4091,
    4092,
    4093,
    4096,
    i32::MAX,
    i32::MIN,
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        let at = rng.below(len + 1);
        match rng.below(8) {
            0 if len > 0 => input[at.min(len - 1)] ^= 1 << rng.below(8),
            1 if len > 0 => input[at.min(len - 1)] = BYTES[rng.below(BYTES.len())],
            2 => input.insert(at, rng.next_u64() as u8),
            3 => {
                let end = (at + 1 + rng.below(8)).min(len);
                input.drain(at..end);
            }
            4 => {
                let end = (at + rng.below(16)).min(len);
                let copy = input[at..end].to_vec();
                let to = rng.below(len + 1);
                input.splice(to..to, copy);
            }
            5 => {
                // Splice: this input's head, another one's tail.
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len() + 1);
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            6 => {
                let int = INTS[rng.below(INTS.len())].to_ne_bytes();
                let at = at.min(len.saturating_sub(4));
                let end = (at + 4).min(len);
                input.splice(at..end, int);
            }
            _ => input.insert(at, BYTES[rng.below(BYTES.len())]),
        }
    }
}

/// Every file of `dir`, sorted by name; none when it does not exist.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| {
            let path = e.expect("directory entry").path();
            let data = fs::read(&path).expect("corpus file");
            (path.display().to_string(), data)
        })
        .collect();
    out.sort();
    out
}

/// Runs `body` on `input`; on a panic, says which input it was.
fn run(target: &str, body: Body, what: &str, input: &[u8]) {
    if let Err(panic) = panic::catch_unwind(AssertUnwindSafe(|| body(input))) {
        eprintln!(
            "fuzz target {target} failed on {what}: {} bytes: {:?}",
            input.len(),
            input.escape_ascii().to_string()
        );
        panic::resume_unwind(panic);
    }
}

fn replay_and_mutate(target: &str) {
    let body = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, body)| *body)
        .expect("a fuzz target of that name");
    let fuzz = Path::new(ROOT).join("fuzz");
    let seeds = files(&fuzz.join("seeds").join(target));
    assert!(!seeds.is_empty(), "no seed corpus for {target}");
    let regressions = files(&fuzz.join("regressions").join(target));
    for (name, input) in seeds.iter().chain(&regressions) {
        run(target, body, name, input);
    }

    let corpus: Vec<Vec<u8>> = seeds
        .into_iter()
        .chain(regressions)
        .map(|(_, d)| d)
        .collect();
    let seed = target.bytes().fold(0x9E37_79B9_7F4A_7C15u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    });
    let mut rng = Rng(seed);
    for i in 0..MUTATIONS {
        let mut input = corpus[rng.below(corpus.len())].clone();
        mutate(&mut rng, &mut input, &corpus);
        run(target, body, &format!("mutation {i}"), &input);
    }
}

macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay_and_mutate(stringify!($name));
            }
        )*

        /// Every target of the library is run here.
        #[test]
        fn every_target_is_run() {
            let run = [$(stringify!($name)),*];
            let defined: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
            assert_eq!(run.as_slice(), defined.as_slice());
        }
    };
}

targets!(request, frames, reply, pwstruct, vchkpass, authindi, control, auth);

/// The cargo-fuzz crate has a target of the same name for every body, and
/// that target calls it.
#[test]
fn every_target_has_a_cargo_fuzz_binary() {
    let fuzz = Path::new(ROOT).join("fuzz");
    let manifest = fs::read_to_string(fuzz.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for (name, _) in TARGETS {
        assert!(
            manifest.contains(&format!(
                "name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\""
            )),
            "no [[bin]] {name} in fuzz/Cargo.toml"
        );
        let source = fs::read_to_string(fuzz.join("fuzz_targets").join(format!("{name}.rs")))
            .expect("the target's source");
        assert!(
            source.contains(&format!("indilookup::fuzz::{name}(data)")),
            "fuzz_targets/{name}.rs does not call indilookup::fuzz::{name}"
        );
    }
}
